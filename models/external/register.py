"""Register a model trained elsewhere, from a notebook or from files.

:func:`register_model` is the notebook call: a fitted estimator or booster and a pandas
DataFrame of the rows it was fit or validated on. :func:`register_dataset` does the work for
both it and ``scorer models register`` (which reads the data with
:func:`models.datasets.from_csv`):

1. the model's family is found (:func:`models.external.families.family_for_model`); anything
   else is refused with the list of supported families;
2. the feature spec is derived from the model and the data and checked against both: the
   columns must be the same (a column the model reads and the data lacks, or the reverse, is
   refused), a column the model reads as categories becomes categorical with the categories
   the model knows, and a numeric column is nullable when the data has a missing value or
   the model accepts missing values;
3. the data gives the manifest what ``scorer train`` computes from its holdout: metrics and
   fairness over the context columns on these rows (the manifest says they are the rows given
   at registration), the drift reference statistics, and the explainer's background;
4. :meth:`models.registry.Registry.register` stores the model in its family's safe format,
   loads it back from the stored bytes and refuses it unless its scores equal the library's
   own on rows of the data (<= 1e-9) and its explanations are additive (<= 1e-6).

>>> from sklearn.linear_model import LogisticRegression
>>> import pandas as pd, tempfile
>>> frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0, 0, 1, 1]})
>>> model = LogisticRegression().fit(frame[["x"]], frame["y"])
>>> manifest = register_model(model, frame, name="demo", target="y",
...                           registry=tempfile.mkdtemp())
>>> manifest.kind, manifest.version, manifest.feature_spec.names
('sklearn', 1, ['x'])
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from models.datasets import Dataset, data_sha256, from_csv
from models.external.base import ModelFamily, raw_batch
from models.external.families import family_for_model
from models.fairness import fairness_summary
from models.featurespec import Feature, FeatureKind, FeatureSpec
from models.manifest import ModelManifest, TrainingInfo
from models.policy import ADVERSE_DECISIONS, Policy
from models.reference import build_reference
from models.registry import Registry
from models.scoring_model import served_score
from models.training import code_version, score_metrics
from schemas.errors import ContractError, RegistryError

if TYPE_CHECKING:
    import pandas as pd

CHECK_ROWS: Final = 2_000
"""Rows of the data on which the registry compares served scores with the library's."""


def register_model(
    model: Any,
    data: pd.DataFrame,
    *,
    name: str,
    target: str,
    adverse: str | int | None = None,
    context: Sequence[str] = (),
    registry: str | Path | Registry,
    policy: Policy | None = None,
) -> ModelManifest:
    """Register ``model`` (fitted elsewhere) as the next version of ``name``; return its
    manifest.

    ``data`` holds the model's input columns, ``target`` (two values; ``adverse`` names the
    adverse one, default 1) and the ``context`` columns (monitoring only, never features).
    The frame is read as a CSV file with the same columns would be, so a notebook and
    ``scorer models register`` register the same version. ``registry`` is the registry's
    directory (the one ``scorer serve`` reads: ``SCORER_REGISTRY``, by default
    ``var/registry``) or a :class:`~models.registry.Registry`.
    """
    buffer = io.StringIO()
    data.to_csv(buffer, index=False, quoting=csv.QUOTE_MINIMAL, float_format=repr_float)
    dataset = dataset_from_text(
        buffer.getvalue(),
        target=target,
        adverse=None if adverse is None else str(adverse),
        context=context,
        keep=[
            c for c in _model_columns(model) if c in data.columns and c not in (target, *context)
        ],
        name="dataframe",
    )
    lineage = {"source": "python", "object": f"{type(model).__module__}.{type(model).__name__}"}
    return register_dataset(
        _registry(registry), name, model, dataset, lineage=lineage, policy=policy
    )


def repr_float(value: float) -> str:
    """Shortest text that reads back as the same float (``repr``), for CSV round trips."""
    return repr(float(value))


def dataset_from_text(
    text: str,
    *,
    target: str,
    adverse: str | None,
    context: Sequence[str],
    keep: Sequence[str],
    name: str,
) -> Dataset:
    """A dataset from CSV text, through the same reader as ``--data`` files."""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / f"{name}.csv"
        path.write_text(text, encoding="utf-8")
        return from_csv(path, target, context, name=name, adverse=adverse, keep_features=keep)


def read_data(
    path: Path,
    *,
    model: Any,
    target: str,
    adverse: str | None,
    context: Sequence[str],
    delimiter: str = ",",
) -> Dataset:
    """The ``--data`` file, read as ``scorer train`` reads CSV; the model's own columns are
    kept as features even when they look like identifiers."""
    header = _header(path, delimiter)
    keep = [c for c in _model_columns(model) if c in header and c != target and c not in context]
    return from_csv(path, target, context, adverse=adverse, delimiter=delimiter, keep_features=keep)


def _header(path: Path, delimiter: str) -> list[str]:
    """The trimmed column names of a CSV file's first row (empty when unreadable: the
    reader then says why)."""
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as handle:
            return [h.strip() for h in next(csv.reader(handle, delimiter=delimiter), [])]
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def register_dataset(
    registry: Registry,
    name: str,
    model: Any,
    dataset: Dataset,
    *,
    lineage: dict[str, Any],
    policy: Policy | None = None,
) -> ModelManifest:
    """Register ``model`` with the manifest fields computed from ``dataset`` (module doc)."""
    policy = policy or Policy()
    family = family_for_model(model)
    spec, rows = derive_spec(family, model, dataset)
    X = _design_matrix(spec, rows)
    background = raw_batch(spec, X)
    constants = family.constants(model, spec, background)
    compiled = family.compile(model, spec, constants)
    raw = np.asarray(compiled.raw(background), dtype=np.float64)
    scores = served_score(raw, compiled.output_space)
    y = dataset.labels
    if np.unique(y).size < 2:
        raise ContractError(
            f"the data has only label {int(y[0])} rows; metrics and fairness need both outcomes"
        )
    metrics = score_metrics(y, scores, policy, 0)
    del metrics["train_rows"]
    adverse = np.isin(policy.decide(scores), list(ADVERSE_DECISIONS))
    basis = f"the {len(rows)} rows of {dataset.name} given at registration"
    fairness = {
        "basis": basis,
        "favourable_decision": "approve",
        "attributes": {
            attribute: fairness_summary(
                adverse, np.array([c.get(attribute, "unknown") for c in dataset.context]), y
            )
            for attribute in dataset.context_attributes
        },
    }
    training = TrainingInfo(
        dataset=dataset.name,
        rows=0,
        holdout_rows=len(rows),
        seed=0,
        data_sha256=data_sha256(dataset),
        code_version=code_version(),
        params={"evaluation": basis, "dataset": dataset.params},
    )
    manifest_fields = {
        "feature_spec": spec,
        "context_attributes": dataset.context_attributes,
        "policy": policy,
        "reason_texts": {f: dataset.reason_texts.get(f, f"Value of {f}") for f in spec.names},
        "metrics": metrics,
        "fairness": fairness,
        "reference": build_reference(spec, rows, scores),
        "explainer": {"method": compiled.method, "output_space": compiled.output_space} | constants,
        "training": training,
        "lineage": {**lineage, "family": family.kind},
    }
    step = max(1, len(rows) // CHECK_ROWS)
    return registry.register(
        model,
        name=name,
        kind=family.kind,
        manifest_fields=manifest_fields,
        sample_rows=rows[::step][:CHECK_ROWS],
    )


def derive_spec(
    family: ModelFamily, model: Any, dataset: Dataset
) -> tuple[FeatureSpec, list[dict[str, Any]]]:
    """The feature spec, in the model's column order, and the data's rows under it."""
    inputs = family.inputs(model)
    by_name = {f.name: f for f in dataset.spec.features}
    data_columns = list(by_name)
    if inputs.columns is not None:
        lacking = [c for c in inputs.columns if c not in by_name]
        if lacking:
            raise ContractError(
                f"the model reads column(s) {lacking} that the data lacks; the data's feature "
                f"columns are {data_columns}"
            )
        unread = [c for c in data_columns if c not in inputs.columns]
        if unread:
            raise ContractError(
                f"the data has column(s) {unread} that the model does not read: drop them "
                "from the data or name them context columns"
            )
        order = list(inputs.columns)
    else:
        order = data_columns
    rows = [dict(row) for row in dataset.features]
    features = []
    for column in order:
        feature = by_name[column]
        if column in inputs.categorical:
            feature = _categorical(feature, inputs.categorical[column], rows)
        elif feature.kind is FeatureKind.CATEGORICAL:
            raise ContractError(
                f"column {column!r} holds text ({feature.categories[:3]}...) but the model "
                "reads it as a number"
            )
        elif feature.kind is FeatureKind.NUMERIC and inputs.handles_missing:
            feature = feature.model_copy(update={"nullable": True})
        features.append(feature)
    try:
        spec = FeatureSpec(features=features)
    except ValueError as exc:
        raise RegistryError(f"cannot build a feature spec from the model and data: {exc}") from exc
    return spec, [{c: row[c] for c in order} for row in rows]


def _categorical(feature: Feature, known: list[str] | None, rows: list[dict[str, Any]]) -> Feature:
    """``feature`` as the categorical column the model reads: the model's categories first,
    then any the data adds (which the model then meets as unknown, as it would in events)."""
    if feature.kind is FeatureKind.NUMERIC:
        if feature.nullable:
            raise ContractError(
                f"column {feature.name!r} is read as categories by the model but has missing "
                "values in the data"
            )
        for row in rows:
            row[feature.name] = _category_text(row[feature.name])
    elif feature.kind is FeatureKind.BOOLEAN:
        for row in rows:
            row[feature.name] = "true" if row[feature.name] else "false"
    seen = list(dict.fromkeys(str(row[feature.name]) for row in rows))
    categories = list(dict.fromkeys([*(known or []), *sorted(seen)]))
    return Feature(
        name=feature.name,
        kind=FeatureKind.CATEGORICAL,
        categories=categories,
        description=feature.description,
    )


def _category_text(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return str(value)


def _design_matrix(spec: FeatureSpec, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
    batch = spec.vectorise(rows)
    if batch.rejects:
        first = batch.rejects[0]
        raise ContractError(
            f"{len(batch.rejects)} of {len(rows)} data rows do not fit the feature spec "
            f"derived from the model; first: row {first.index + 1}: {first.detail}"
        )
    return np.asarray(batch.X, dtype=np.float64)


def _model_columns(model: Any) -> list[str]:
    """The model's input column names when it keeps them, for the identifier check."""
    try:
        columns = family_for_model(model).inputs(model).columns
    except RegistryError:
        return []
    return list(columns or [])


def _registry(registry: str | Path | Registry) -> Registry:
    return registry if isinstance(registry, Registry) else Registry(Path(registry))
