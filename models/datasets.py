"""Training datasets: the Agrawal loan-application generator (ships with river) and CSV files.

A :class:`Dataset` holds event-style feature dicts (exactly what a producer would put in a
``ScoringEvent``), 0/1 labels where **1 is the adverse outcome**, and per-row context
attributes that are monitored for fairness but never used as features.

>>> data = agrawal(rows=4, seed=1)
>>> sorted(data.features[0]) == sorted(data.spec.names)
True
>>> "age" in data.spec.names, data.context[0]["age_band"] in AGE_BANDS
(False, True)
>>> data.labels.dtype.kind, set(data.labels.tolist()) <= {0, 1}
('i', True)
>>> data_sha256(data) == data_sha256(agrawal(rows=4, seed=1))
True
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import json
import math
import random
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from river.datasets.synth import Agrawal

from models.featurespec import Feature, FeatureKind, FeatureSpec
from schemas.errors import ContractError, ScorerError

DEFAULT_FUNCTION = 8
"""Agrawal's function 8: adverse when disposable income (salary plus commission, less
education cost and a fifth of the loan) does not cover the repayment. Functions 0-5 depend on
age, which is deliberately not a feature here, so they cannot be learnt from the features
(function 0 depends on age alone: ROC AUC 0.5); functions 6-9 do not use age."""
DEFAULT_LABEL_NOISE = 0.05
"""Share of labels flipped by default: river's labels are a deterministic function of the
features, which would give an unrealistically perfect model."""
AGE_BANDS = ("<30", "30-44", "45-59", "60+")
MAX_CSV_CATEGORIES = 100
MIN_IDENTIFIER_ROWS = 20
"""A column is taken for an identifier only from this many rows on (see ``_identifier_like``)."""

_NUMERIC = ("salary", "commission", "hvalue", "hyears", "loan")
_CATEGORICAL = {
    "elevel": [str(v) for v in range(5)],
    "car": [str(v) for v in range(1, 21)],
    "zipcode": [str(v) for v in range(9)],
}
_DESCRIPTIONS = {
    "salary": "Annual salary",
    "commission": "Annual commission (0 when salary is at least 75k)",
    "hvalue": "Value of the applicant's house",
    "hyears": "Years the house has been owned",
    "loan": "Total loan amount requested",
    "elevel": "Education level (0-4)",
    "car": "Make of car (1-20)",
    "zipcode": "Zip code of the applicant's town (0-8)",
}
_AGRAWAL_REASONS = {
    "salary": "Salary too low for the loan requested",
    "commission": "Commission income too low",
    "hvalue": "Value of house owned",
    "hyears": "Years the house has been owned",
    "loan": "Loan amount too high for the income",
    "elevel": "Education level",
    "car": "Make of car",
    "zipcode": "Area of residence",
}
_MISSING_TOKENS = frozenset({"", "na", "nan", "null", "none"})


@dataclass
class Dataset:
    """Feature dicts, 0/1 labels (1 = adverse) and monitoring-only context, row-aligned."""

    name: str
    features: list[dict[str, Any]]
    labels: np.ndarray
    context: list[dict[str, str]]
    spec: FeatureSpec
    reason_texts: dict[str, str]
    description: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if not len(self.features) == len(self.labels) == len(self.context):
            raise ScorerError(
                f"dataset {self.name!r}: {len(self.features)} feature rows, "
                f"{len(self.labels)} labels and {len(self.context)} context rows differ"
            )
        if self.labels.size and not np.isin(self.labels, (0, 1)).all():
            raise ContractError(f"dataset {self.name!r}: labels must be 0 or 1")

    def __len__(self) -> int:
        return len(self.features)

    @property
    def context_attributes(self) -> list[str]:
        """Context attribute names, in first-seen order."""
        names: dict[str, None] = {}
        for row in self.context:
            names.update(dict.fromkeys(row))
        return list(names)


# --- Agrawal ----------------------------------------------------------------------------------


def age_band(age: int) -> str:
    """The fairness-monitoring band of an age.

    >>> [age_band(a) for a in (20, 30, 44, 45, 60, 80)]
    ['<30', '30-44', '30-44', '45-59', '60+', '60+']
    """
    if age < 30:
        return AGE_BANDS[0]
    if age < 45:
        return AGE_BANDS[1]
    if age < 60:
        return AGE_BANDS[2]
    return AGE_BANDS[3]


def agrawal_spec() -> FeatureSpec:
    """The feature spec of Agrawal data: five numeric and three categorical features."""
    numeric = [
        Feature(name=n, kind=FeatureKind.NUMERIC, description=_DESCRIPTIONS[n]) for n in _NUMERIC
    ]
    categorical = [
        Feature(name=n, kind=FeatureKind.CATEGORICAL, categories=c, description=_DESCRIPTIONS[n])
        for n, c in _CATEGORICAL.items()
    ]
    return FeatureSpec(features=numeric + categorical)


class _Row(NamedTuple):
    features: dict[str, Any]
    context: dict[str, str]
    label: int


def _agrawal_rows(
    classification_function: int, seed: int, balance_classes: bool, label_noise: float
) -> Iterator[_Row]:
    if not 0.0 <= label_noise < 0.5:
        raise ScorerError(f"label_noise must be in [0, 0.5), got {label_noise}")
    try:
        source = Agrawal(
            classification_function=classification_function,
            seed=seed,
            balance_classes=balance_classes,
        )
    except ValueError as exc:
        raise ScorerError(f"invalid Agrawal parameters: {exc}") from exc
    noise = random.Random(f"label-noise-{seed}")
    for x, y in source:
        features: dict[str, Any] = {
            "salary": round(float(x["salary"]), 2),
            "commission": round(float(x["commission"]), 2),
            "hvalue": round(float(x["hvalue"]), 2),
            "hyears": int(x["hyears"]),
            "loan": round(float(x["loan"]), 2),
            "elevel": int(x["elevel"]),
            "car": int(x["car"]),
            "zipcode": int(x["zipcode"]),
        }
        label = int(y)
        if noise.random() < label_noise:
            label = 1 - label
        yield _Row(features, {"age_band": age_band(int(x["age"]))}, label)


def agrawal(
    rows: int,
    seed: int,
    classification_function: int = DEFAULT_FUNCTION,
    balance_classes: bool = False,
    *,
    label_noise: float = DEFAULT_LABEL_NOISE,
) -> Dataset:
    """``rows`` loan applications from river's Agrawal generator (no download).

    Labels are river's class, kept as they are: ``1`` is the adverse outcome. For functions
    6-9 river's class 1 means the disposable income does not cover the loan (the paper's
    group B), so 1 = adverse is the natural reading; for functions 0-5 river's class 1 is the
    paper's group A and "adverse" is only a convention (and those functions depend on age,
    which is not a feature). ``label_noise`` flips that share of labels, with a generator
    seeded from ``seed``. Age becomes the context attribute ``age_band`` (fairness
    monitoring only); categorical values are ints, as river yields them.
    """
    if rows < 1:
        raise ScorerError(f"rows must be at least 1, got {rows}")
    generated = list(
        itertools.islice(
            _agrawal_rows(classification_function, seed, balance_classes, label_noise), rows
        )
    )
    return Dataset(
        name="agrawal",
        features=[r.features for r in generated],
        labels=np.array([r.label for r in generated], dtype=np.int64),
        context=[r.context for r in generated],
        spec=agrawal_spec(),
        reason_texts=dict(_AGRAWAL_REASONS),
        description=(
            f"river Agrawal loan applications, function {classification_function}, "
            f"seed {seed}, label noise {label_noise}; label 1 = adverse"
        ),
        params={
            "generator": "river.datasets.synth.Agrawal",
            "classification_function": classification_function,
            "balance_classes": balance_classes,
            "label_noise": label_noise,
            "rows": rows,
            "seed": seed,
        },
    )


class LabelledEvent(NamedTuple):
    """A ScoringEvent-shaped dict and its true label (for publishing feedback later)."""

    event: dict[str, Any]
    label: int


def agrawal_stream(
    count: int | None = None,
    *,
    seed: int = 7,
    classification_function: int = DEFAULT_FUNCTION,
    label_noise: float = DEFAULT_LABEL_NOISE,
    drift_at: int | None = None,
    drift_function: int = 6,
    drift_feature: str = "loan",
    drift_factor: float = 1.5,
    start: datetime | None = None,
    interval: timedelta = timedelta(seconds=1),
    run_id: str | None = None,
) -> Iterator[LabelledEvent]:
    """Labelled Agrawal events; endless when ``count`` is None.

    From event number ``drift_at`` (0-based) on, labels come from ``drift_function`` (a
    concept drift) and ``drift_feature`` is multiplied by ``drift_factor`` (a covariate
    shift). The shift is applied after river labels the row, so it also changes how that
    feature relates to the label. ``event_time`` is ``start + i * interval`` when ``start``
    is given, else the wall clock; event ids are ``{run_id}-{i}`` (``run_id`` random unless
    given, so that two runs never share ids).

    >>> t0 = datetime(2024, 1, 1, tzinfo=UTC)
    >>> events = list(agrawal_stream(3, seed=1, drift_at=2, start=t0, run_id="r"))
    >>> [e.event["event_id"] for e in events], events[2].event["event_time"]
    (['r-0', 'r-1', 'r-2'], '2024-01-01T00:00:02Z')
    """
    if drift_feature not in _NUMERIC:
        raise ScorerError(f"drift_feature must be one of {list(_NUMERIC)}, got {drift_feature!r}")
    run = run_id if run_id is not None else uuid.uuid4().hex[:12]
    entities = random.Random(f"entities-{seed}")
    before = _agrawal_rows(classification_function, seed, False, label_noise)
    after = _agrawal_rows(drift_function, seed + 1, False, label_noise)
    indices = itertools.count() if count is None else range(count)
    for i in indices:
        drifted = drift_at is not None and i >= drift_at
        row = next(after if drifted else before)
        features = row.features
        if drifted:
            features[drift_feature] = round(features[drift_feature] * drift_factor, 2)
        when = datetime.now(UTC) if start is None else start + i * interval
        event = {
            "event_id": f"{run}-{i}",
            "entity_id": f"applicant-{entities.randrange(10**7):07d}",
            "event_time": when.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "features": features,
            "context": row.context,
        }
        yield LabelledEvent(event, row.label)


def agrawal_events(count: int | None = None, **options: Any) -> Iterator[dict[str, Any]]:
    """ScoringEvent-shaped dicts from :func:`agrawal_stream` (same options), without labels."""
    for labelled in agrawal_stream(count, **options):
        yield labelled.event


# --- CSV --------------------------------------------------------------------------------------


def csv_delimiter(text: str) -> str:
    r"""A ``--delimiter`` argument as the character it means; ``\t`` (as typed in a shell)
    and ``tab`` mean a tab.

    >>> csv_delimiter(";"), csv_delimiter("tab")
    (';', '\t')
    """
    if text in ("\\t", "tab"):
        return "\t"
    if len(text) != 1:
        raise argparse.ArgumentTypeError(f"one character expected, got {text!r}")
    return text


def _as_float(text: str) -> float | None:
    """The finite float in ``text``, None for a missing token; ValueError otherwise."""
    if text.strip().lower() in _MISSING_TOKENS:
        return None
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _infer_feature(name: str, values: list[str]) -> tuple[Feature, list[Any]]:
    """The feature a CSV column holds, and its values converted to event-style values."""
    try:
        numbers = [_as_float(v) for v in values]
    except ValueError:
        numbers = None
    if numbers is not None:
        present = [n for n in numbers if n is not None]
        if not present:
            raise ContractError(
                f"column {name!r} has no values; drop it or name it a context column"
            )
        nullable = len(present) < len(numbers)
        impute = float(np.mean(present))
        feature = Feature(name=name, kind=FeatureKind.NUMERIC, nullable=nullable, impute=impute)
        return feature, numbers
    lowered = {v.strip().lower() for v in values}
    if lowered <= {"true", "false"}:
        feature = Feature(name=name, kind=FeatureKind.BOOLEAN)
        return feature, [v.strip().lower() == "true" for v in values]
    trimmed = [v.strip() for v in values]  # events' category values are trimmed too
    categories = sorted(set(trimmed))
    if len(categories) > MAX_CSV_CATEGORIES:
        raise ContractError(
            f"column {name!r} has {len(categories)} distinct text values (more than "
            f"{MAX_CSV_CATEGORIES}, the most a categorical feature holds): drop it from the "
            "file or name it a context column"
        )
    return Feature(name=name, kind=FeatureKind.CATEGORICAL, categories=categories), trimmed


def _target_value(text: str) -> str:
    """A target cell as compared with ``--adverse``: trimmed, whole numbers in decimal.

    >>> [_target_value(v) for v in (" 1 ", "1.0", "0", "bad", "2.5")]
    ['1', '1', '0', 'bad', '2.5']
    """
    value = text.strip()
    try:
        number = float(value)
    except ValueError:
        return value
    if math.isfinite(number) and number.is_integer():
        return str(int(number))
    return value


def _labels(
    cells: list[str], lines: list[int], target: str, adverse: str | None, path: Path
) -> tuple[list[int], str, list[str]]:
    """0/1 labels (1 where the target is the adverse value), that value, and the values seen.

    Without ``adverse`` the target must hold 0/1 and ``1`` is adverse; with it, the target
    must hold at most two values and ``adverse`` must be one of them.
    """
    values = [_target_value(c) for c in cells]
    seen: dict[str, int] = {}
    for value, line in zip(values, lines, strict=True):
        if not value:
            raise ContractError(f"{path}: line {line}: target column {target!r} is empty")
        seen.setdefault(value, line)
    if len(seen) > 2:
        third = list(seen)[2]
        first = ", ".join(repr(v) for v in itertools.islice(seen, 5))
        more = f" and {len(seen) - 5} more" if len(seen) > 5 else ""
        raise ContractError(
            f"{path}: line {seen[third]}: target column {target!r} has {len(seen)} values "
            f"({first}{more}); it must hold two: the adverse outcome and the other"
        )
    found = ", ".join(repr(v) for v in seen)
    if adverse is None:
        if not set(seen) <= {"0", "1"}:
            raise ContractError(
                f"{path}: target column {target!r} holds {found}, not 0/1: name the value "
                "that is the adverse outcome with --adverse VALUE"
            )
        adverse = "1"
    else:
        adverse = _target_value(adverse)
        if adverse not in seen:
            raise ContractError(
                f"{path}: --adverse {adverse!r} is not a value of target column {target!r} "
                f"(it holds {found})"
            )
    return [int(v == adverse) for v in values], adverse, list(seen)


_ID_TOKENS = frozenset({"id", "ids", "uuid", "guid", "key", "index", "idx"})


def _identifier_like(name: str, cells: list[str]) -> bool:
    """Whether a column looks like a row identifier rather than a feature.

    Every value is present and distinct (in at least ``MIN_IDENTIFIER_ROWS`` rows), and the
    values are text, or whole numbers that either run consecutively or sit in a column whose
    name says id (``id``, ``app_id``, ``ApplicationId``, ``key``, ``uuid``, ``index``).
    Measurements (income, amounts) are rarely whole, distinct and consecutive at once.

    >>> _identifier_like("ref", [f"A{i}" for i in range(30)])
    True
    >>> _identifier_like("application_id", [str(10_000 + 7 * i) for i in range(30)])
    True
    >>> _identifier_like("n", [str(500 + i) for i in range(30)])
    True
    >>> _identifier_like("salary", [str(40_000 + 97 * i) for i in range(30)])
    False
    """
    values = [c.strip() for c in cells]
    if len(values) < MIN_IDENTIFIER_ROWS or len(set(values)) < len(values) or not all(values):
        return False
    try:
        numbers = [float(v) for v in values]
    except ValueError:
        return True
    if not all(math.isfinite(n) and n.is_integer() for n in numbers):
        return False
    tokens = {t.lower() for t in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])", name)}
    return bool(tokens & _ID_TOKENS) or max(numbers) - min(numbers) == len(numbers) - 1


def from_csv(
    path: str | Path,
    target: str,
    context_columns: Sequence[str] = (),
    *,
    name: str | None = None,
    max_rows: int | None = None,
    delimiter: str = ",",
    adverse: str | None = None,
    keep_features: Sequence[str] = (),
) -> Dataset:
    """A dataset from a CSV file with a header row.

    ``target`` holds two values; the one equal to ``adverse`` (compared trimmed, ``1.0`` as
    ``1``) becomes label 1, the other 0, so a model always scores the adverse outcome. Without
    ``adverse`` the target must hold 0/1 and 1 is adverse. ``context_columns`` are kept as
    monitoring-only context (strings), never features. Every other column is a feature:
    numeric when each value parses as a finite number or is missing ("", NA, NaN, null: then
    the feature is nullable and imputed with the mean), boolean when every value is
    true/false, else categorical with the values seen (trimmed, as events' values are when
    vectorised) as its categories. A column that looks like an identifier (every value
    distinct: see ``_identifier_like``) is refused unless it is in ``keep_features``.
    """
    if len(delimiter) != 1:
        raise ContractError(f"the delimiter must be one character, got {delimiter!r}")
    file = Path(path)
    try:
        with file.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            header = next(reader, None)
            body: list[tuple[int, list[str]]] = []
            for cells in reader:
                if any(cell.strip() for cell in cells):
                    body.append((reader.line_num, cells))
                if max_rows is not None and len(body) >= max_rows:
                    break
    except FileNotFoundError as exc:
        raise ScorerError(f"dataset file not found: {file}") from exc
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ScorerError(f"cannot read dataset file {file}: {exc}") from exc
    if not header:
        raise ContractError(f"{file}: empty file; expected a header row")
    header = [h.strip() for h in header]
    if len(set(header)) != len(header):
        raise ContractError(f"{file}: header repeats a column name: {header}")
    for column in (target, *context_columns, *keep_features):
        if column not in header:
            raise ContractError(f"{file}: no column {column!r}; columns are {header}")
    if target in context_columns:
        raise ContractError(f"{file}: target column {target!r} cannot also be a context column")
    for column in keep_features:
        if column == target or column in context_columns:
            role = "the target" if column == target else "a context column"
            raise ContractError(f"{file}: column {column!r} is {role}, so it cannot be a feature")
    if not body:
        raise ContractError(f"{file}: no data rows")
    for line, cells in body:
        if len(cells) != len(header):
            raise ContractError(
                f"{file}: line {line} has {len(cells)} fields; the header has {len(header)}"
            )
    columns = {h: [cells[j] for _, cells in body] for j, h in enumerate(header)}
    labels, adverse, target_values = _labels(
        columns[target], [line for line, _ in body], target, adverse, file
    )
    feature_names = [h for h in header if h != target and h not in context_columns]
    if not feature_names:
        raise ContractError(f"{file}: no feature columns left after target and context")
    identifiers = [
        c for c in feature_names if c not in keep_features and _identifier_like(c, columns[c])
    ]
    if identifiers:
        names = ", ".join(repr(c) for c in identifiers)
        keep = " ".join(f"--feature {c}" for c in identifiers)
        raise ContractError(
            f"{file}: column(s) {names} look like identifiers (every value distinct), not "
            f"features: drop them from the file, or pass {keep} to keep them"
        )
    features: list[Feature] = []
    values: list[list[Any]] = []
    for column in feature_names:
        feature, converted = _infer_feature(column, columns[column])
        features.append(feature)
        values.append(converted)
    try:
        spec = FeatureSpec(features=features)
    except ValueError as exc:
        raise ContractError(f"{file}: cannot build a feature spec: {exc}") from exc
    rows = [dict(zip(feature_names, row, strict=True)) for row in zip(*values, strict=True)]
    context = [
        {c: (columns[c][i].strip() or "unknown") for c in context_columns} for i in range(len(body))
    ]
    return Dataset(
        name=name or file.stem,
        features=rows,
        labels=np.array(labels, dtype=np.int64),
        context=context,
        spec=spec,
        reason_texts={f: f"Value of {f}" for f in feature_names},
        description=(
            f"CSV file {file.name}, target {target!r}; label 1 = adverse ({target} = {adverse!r})"
        ),
        params={
            "source": str(file),
            "target": target,
            "adverse": adverse,
            "target_values": target_values,
            "context_columns": list(context_columns),
            "delimiter": delimiter,
            "keep_features": list(keep_features),
        },
    )


# --- hashing ----------------------------------------------------------------------------------


def data_sha256(dataset: Dataset) -> str:
    """sha256 of the canonical JSON (sorted keys, compact) of each row and its label.

    Row order matters; context is not hashed (it is not model input).
    """
    digest = hashlib.sha256()
    for features, label in zip(dataset.features, dataset.labels.tolist(), strict=True):
        line = json.dumps([features, label], sort_keys=True, separators=(",", ":"), allow_nan=False)
        digest.update(line.encode())
        digest.update(b"\n")
    return digest.hexdigest()
