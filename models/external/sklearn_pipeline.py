"""scikit-learn pipelines trained elsewhere: per-column preprocessing, then a binary classifier.

A pipeline is accepted when every step before the last transforms each input column on its
own (``ColumnTransformer``, ``Pipeline``, ``OneHotEncoder``, ``OrdinalEncoder``, the standard,
min-max and robust scalers, ``SimpleImputer``, ``'passthrough'``) and the last step is a
binary classifier with classes ``[0, 1]`` that is explained exactly: a logistic model is
linear in its transformed input (log-odds), a tree model is explained by TreeSHAP.

Walking the fitted transformers (``ColumnTransformer.transformers_`` and
``output_indices_``, ``OneHotEncoder.categories_`` and ``drop_idx_``,
``SimpleImputer.indicator_.features_``, nested pipelines composed) gives the raw column each
transformed column comes from: a one-hot group, a scaled or imputed value and its missing
indicator all come from one column, and a step that could mix columns is refused. The final
step's attributions over the transformed columns are summed back through that map, so the
explanation has one contribution per raw column.

Scoring a batch calls the preprocessing's own ``transform`` once, so scikit-learn's input
checks run once per batch as they do in ``predict_proba``; the final step is then evaluated
by our compiled path (:class:`~models.explain.linear.LinearExplainer` or
:class:`~models.explain.treeshap.TreeShapExplainer`), which registration checks against the
pipeline's ``predict_proba``.

>>> import numpy as np
>>> from sklearn.impute import SimpleImputer
>>> from sklearn.pipeline import make_pipeline
>>> X, y = np.array([[0.0, 5.0], [1.0, np.nan], [2.0, 4.0], [3.0, 3.0]]), [0, 0, 1, 1]
>>> pipeline = make_pipeline(
...     SimpleImputer(add_indicator=True), StandardScaler(), LogisticRegression()
... ).fit(X, y)
>>> column_map(pipeline).source.tolist()  # column 1's value and its missing indicator
[0, 1, 1]
>>> SklearnFamily().inputs(pipeline)
ModelInputs(columns=None, categorical={}, handles_missing=True)
"""

from __future__ import annotations

import io
import math
import zipfile
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV, SGDClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    RobustScaler,
    StandardScaler,
)
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils import get_tags

from models.artifacts import SKOPS_TRUSTED_TYPES, load_skops, skops_untrusted_types
from models.explain.base import Explainer, ExplanationBatch, FloatArray, row_sums
from models.explain.linear import LinearExplainer
from models.explain.treeshap import TreeShapExplainer
from models.external.base import ModelInputs, OutputSpace, RawBatch
from models.featurespec import FeatureKind, FeatureSpec
from schemas.errors import ArtifactIntegrityError, RegistryError

IntArray = npt.NDArray[np.intp]

DESCRIPTION: Final[str] = (
    "scikit-learn: a Pipeline (or a bare estimator) whose steps before the last are "
    "ColumnTransformer, Pipeline, OneHotEncoder, OrdinalEncoder, StandardScaler, MinMaxScaler, "
    "RobustScaler, SimpleImputer or 'passthrough', ending in a binary classifier with classes "
    "[0, 1]: LogisticRegression, LogisticRegressionCV, SGDClassifier(loss='log_loss'), "
    "DecisionTreeClassifier, RandomForestClassifier, ExtraTreesClassifier, "
    "GradientBoostingClassifier or HistGradientBoostingClassifier"
)
"""What the family accepts, as a refusal lists it."""

SKLEARN_TRUSTED_TYPES: Final[frozenset[str]] = SKOPS_TRUSTED_TYPES | frozenset(
    {
        # beyond the project's own list: more builtins, numpy scalars and random states
        "builtins.slice",
        "numpy.number",
        "numpy.uint64",
        "numpy.random._generator.Generator",
        # the column check a HistGradientBoostingClassifier with categorical features keeps
        "functools.partial",
        "sklearn.utils.validation.check_array",
        # preprocessing
        "sklearn.compose._column_transformer.ColumnTransformer",
        "sklearn.compose._column_transformer.make_column_selector",
        "sklearn.preprocessing._function_transformer.FunctionTransformer",
        "sklearn.preprocessing._encoders.OneHotEncoder",
        "sklearn.preprocessing._encoders.OrdinalEncoder",
        "sklearn.preprocessing._data.MinMaxScaler",
        "sklearn.preprocessing._data.RobustScaler",
        "sklearn.impute._base.SimpleImputer",
        "sklearn.impute._base.MissingIndicator",
        # linear classifiers
        "sklearn.linear_model._logistic.LogisticRegressionCV",
        "sklearn.linear_model._stochastic_gradient.SGDClassifier",
        # trees, forests and boosting, with the parts they keep
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._classes.ExtraTreeClassifier",
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.ensemble._forest.ExtraTreesClassifier",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.preprocessing._label.LabelEncoder",
    }
)
"""Every type a scikit-learn pipeline's skops file may name: the project's own list
(:data:`models.artifacts.SKOPS_TRUSTED_TYPES`) and the types skops writes for the other
accepted steps and classifiers; a file naming any other type is refused."""

_SCALERS: Final = (StandardScaler, MinMaxScaler, RobustScaler)
_LINEAR: Final = (LogisticRegression, LogisticRegressionCV, SGDClassifier)
_TREES: Final = (
    DecisionTreeClassifier,
    RandomForestClassifier,
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
)


def _refusal(reason: str) -> RegistryError:
    return RegistryError(f"{reason}; supported families: {DESCRIPTION}")


class _Nan(IntEnum):
    """What a NaN in a raw numeric value becomes in one transformed column."""

    ABSENT = 0
    """Never NaN: imputed, or encoded as a category."""
    PASSED = 1
    """NaN where the raw value is NaN (a scaler keeps it)."""
    REFUSED = 2
    """A step on the way raises on it."""


class _Column(NamedTuple):
    """A transformed column: the raw column it comes from, and what a NaN there becomes."""

    raw: int
    nan: _Nan


@dataclass
class _Encoded:
    """The categories that encoders of one raw column know."""

    categories: list[Any] = field(default_factory=list)
    tolerant: bool = True
    """Whether every encoder of the column accepts an unknown category."""


def _is_nan(value: Any) -> bool:
    return isinstance(value, float | np.floating) and math.isnan(value)


def _is_passthrough(step: Any) -> bool:
    return step is None or (isinstance(step, str) and step == "passthrough")


def _check_width(step: Any, inputs: list[_Column]) -> None:
    width = getattr(step, "n_features_in_", None)
    if width is None:
        raise RegistryError(f"{type(step).__name__} is not fitted")
    if width != len(inputs):
        raise RegistryError(
            f"{type(step).__name__} was fitted on {width} columns but receives {len(inputs)}"
        )


def _walk(step: Any, inputs: list[_Column], encoded: dict[int, _Encoded]) -> list[_Column]:
    """The transformed columns ``step`` makes of ``inputs``, recording encoder categories."""
    if _is_passthrough(step):
        return inputs
    kind = type(step)
    if kind is Pipeline:
        for _, inner in step.steps:
            inputs = _walk(inner, inputs, encoded)
        return inputs
    if kind is ColumnTransformer:
        return _walk_column_transformer(step, inputs, encoded)
    if kind is FunctionTransformer and step.func is None:  # how 'passthrough' is fitted
        _check_width(step, inputs)
        return _refusing_nan(inputs) if step.validate else inputs  # check_array refuses NaN
    if kind in _SCALERS:
        _check_width(step, inputs)
        return inputs
    if kind is SimpleImputer:
        return _walk_imputer(step, inputs)
    if kind is OneHotEncoder:
        return _walk_one_hot(step, inputs, encoded)
    if kind is OrdinalEncoder:
        return _walk_ordinal(step, inputs, encoded)
    raise _refusal(
        f"{kind.__name__} is not a supported preprocessing step (only steps whose every output "
        "column comes from exactly one input column are)"
    )


def _walk_column_transformer(
    step: Any, inputs: list[_Column], encoded: dict[int, _Encoded]
) -> list[_Column]:
    _check_width(step, inputs)
    names = getattr(step, "feature_names_in_", None)
    names = None if names is None else [str(name) for name in names]
    width = max((part.stop for part in step.output_indices_.values()), default=0)
    slots: list[_Column | None] = [None] * width
    for name, transformer, columns in step.transformers_:
        selected = [inputs[j] for j in _column_indices(columns, names, len(inputs))]
        if not selected or (isinstance(transformer, str) and transformer == "drop"):
            produced: list[_Column] = []
        else:
            produced = _walk(transformer, selected, encoded)
        part = step.output_indices_[name]
        if len(produced) != part.stop - part.start:
            raise RegistryError(
                f"ColumnTransformer part {name!r} makes {len(produced)} columns, "
                f"its output_indices_ say {part.stop - part.start}"
            )
        slots[part] = produced
    if any(slot is None for slot in slots):
        raise RegistryError("ColumnTransformer output columns are not all accounted for")
    return [slot for slot in slots if slot is not None]


def _column_indices(columns: Any, names: list[str] | None, n: int) -> list[int]:
    """Positions of a ColumnTransformer column selection (names, indices, slice or mask)."""
    positions = list(range(n))

    def position(name: Any) -> int:
        if names is None or str(name) not in names:
            raise RegistryError(f"ColumnTransformer selects unknown column {name!r}")
        return names.index(str(name))

    if isinstance(columns, str):
        return [position(columns)]
    if isinstance(columns, int | np.integer) and not isinstance(columns, bool):
        return [positions[int(columns)]]
    if isinstance(columns, slice):
        if isinstance(columns.start, str) or isinstance(columns.stop, str):  # by label, inclusive
            start = 0 if columns.start is None else position(columns.start)
            stop = n - 1 if columns.stop is None else position(columns.stop)
            return positions[start : stop + 1]
        return positions[columns]
    array = np.asarray(columns)
    if array.dtype == np.bool_:
        return [int(j) for j in np.flatnonzero(array)]
    if array.dtype.kind in "iu":
        return [positions[int(j)] for j in array.reshape(-1)]
    return [position(name) for name in array.reshape(-1).tolist()]


def _refusing_nan(columns: list[_Column]) -> list[_Column]:
    """``columns`` as a step that raises on NaN leaves them."""
    return [_Column(c.raw, _Nan.REFUSED) if c.nan is _Nan.PASSED else c for c in columns]


def _after_imputer(state: _Nan, imputes_nan: bool) -> _Nan:
    if state is _Nan.REFUSED or (state is _Nan.PASSED and not imputes_nan):
        return _Nan.REFUSED  # an imputer of other values refuses NaN
    return _Nan.ABSENT


def _walk_imputer(step: Any, inputs: list[_Column]) -> list[_Column]:
    _check_width(step, inputs)
    imputes_nan = _is_nan(step.missing_values)
    kept = [
        j
        for j, statistic in enumerate(step.statistics_)
        if step.keep_empty_features or not _is_nan(statistic)  # all-missing columns are dropped
    ]
    indicated = [] if step.indicator_ is None else [int(j) for j in step.indicator_.features_]
    return [_Column(inputs[j].raw, _after_imputer(inputs[j].nan, imputes_nan)) for j in kept] + [
        _Column(inputs[j].raw, _after_imputer(inputs[j].nan, imputes_nan)) for j in indicated
    ]


def _after_encoder(state: _Nan, accepts_nan: bool, emits_nan: bool) -> _Nan:
    if state is _Nan.ABSENT:
        return state
    if state is _Nan.REFUSED or not accepts_nan:
        return _Nan.REFUSED
    return _Nan.PASSED if emits_nan else _Nan.ABSENT


def _record(encoded: dict[int, _Encoded], raw: int, categories: Any, tolerant: bool) -> None:
    entry = encoded.setdefault(raw, _Encoded())
    entry.categories += [c for c in categories if c not in entry.categories]
    entry.tolerant = entry.tolerant and tolerant


def _walk_one_hot(step: Any, inputs: list[_Column], encoded: dict[int, _Encoded]) -> list[_Column]:
    _check_width(step, inputs)
    tolerant = step.handle_unknown != "error"
    infrequent = getattr(step, "infrequent_categories_", None)  # only when grouping is enabled
    outputs: list[_Column] = []
    for j, (column, categories) in enumerate(zip(inputs, step.categories_, strict=True)):
        width = len(categories)
        if infrequent is not None and infrequent[j] is not None:
            width -= len(infrequent[j]) - 1  # the infrequent categories share one column
        if step.drop_idx_ is not None and step.drop_idx_[j] is not None:
            width -= 1
        _record(encoded, column.raw, categories, tolerant)
        accepts_nan = tolerant or any(_is_nan(c) for c in categories)
        outputs += [_Column(column.raw, _after_encoder(column.nan, accepts_nan, False))] * width
    if len(outputs) != len(step.get_feature_names_out()):
        raise RegistryError("OneHotEncoder output width does not match its categories")
    return outputs


def _walk_ordinal(step: Any, inputs: list[_Column], encoded: dict[int, _Encoded]) -> list[_Column]:
    _check_width(step, inputs)
    tolerant = step.handle_unknown == "use_encoded_value"
    outputs = []
    for column, categories in zip(inputs, step.categories_, strict=True):
        _record(encoded, column.raw, categories, tolerant)
        if any(_is_nan(c) for c in categories):
            state = _after_encoder(column.nan, True, _is_nan(step.encoded_missing_value))
        else:
            state = _after_encoder(column.nan, tolerant, tolerant and _is_nan(step.unknown_value))
        outputs.append(_Column(column.raw, state))
    return outputs


@dataclass(frozen=True)
class ColumnMap:
    """Where each column the final step reads comes from, among the model's input columns."""

    source: IntArray
    """(n_transformed,) the raw column of each transformed column."""
    n_raw: int

    @property
    def grouping(self) -> FloatArray:
        """(n_transformed, n_raw) 0/1: ``contributions_transformed @ grouping`` sums per raw
        column."""
        matrix = np.zeros((self.source.size, self.n_raw))
        matrix[np.arange(self.source.size), self.source] = 1.0
        return matrix

    def sum_per_raw(self, contributions: FloatArray) -> FloatArray:
        """``contributions @ grouping``, each sum taken left to right so that a row's result
        does not depend on the rows batched with it."""
        out = np.zeros((contributions.shape[0], self.n_raw))
        for raw in range(self.n_raw):
            columns = np.flatnonzero(self.source == raw)
            if columns.size:
                out[:, raw] = row_sums(contributions[:, columns])
        return out


def _text_categories(entry: _Encoded) -> list[str] | None:
    """An encoder's categories when they are text (the column is read as categories)."""
    known = [c for c in entry.categories if c is not None and not _is_nan(c)]
    if not known or not all(isinstance(c, str) for c in known):
        return None
    return [str(c) for c in known]


@dataclass(frozen=True)
class _Plan:
    """A fitted scikit-learn model read apart: what it reads, how it transforms, what ends it."""

    preprocessing: Any | None
    """Every step before the last, as one transformer; None when there is none."""
    final: Any
    linear: bool
    n_raw: int
    columns: list[str] | None
    """``feature_names_in_``: the model was fitted on a DataFrame with these columns."""
    column_map: ColumnMap
    categorical: dict[int, _Encoded]
    """Raw columns read as text categories, by position."""
    handles_missing: bool


def _split(model: Any) -> tuple[Any | None, Any, Any]:
    """The preprocessing (None when there is none), the final step and the first step."""
    if type(model) is not Pipeline:
        return None, model, model
    final = model.steps[-1][1]
    before = [step for _, step in model.steps[:-1] if not _is_passthrough(step)]
    return (model[:-1] if before else None), final, (before[0] if before else final)


def _check_final(final: Any) -> bool:
    """Refuse a final step that cannot be explained exactly; True for a linear one."""
    kind = type(final)
    if kind not in _LINEAR + _TREES:
        raise _refusal(f"{kind.__name__} is not supported as the final step")
    if kind is SGDClassifier and final.loss != "log_loss":
        raise _refusal(f"SGDClassifier with loss {final.loss!r} has no log-odds output")
    classes = getattr(final, "classes_", None)
    if classes is None:
        raise RegistryError(f"{kind.__name__} is not fitted")
    classes = np.asarray(classes)
    if classes.dtype.kind not in "biuf" or classes.tolist() != [0, 1]:
        raise RegistryError(
            f"{kind.__name__} has classes {classes.tolist()}; only binary classifiers with "
            "classes [0, 1] (1 = adverse) are accepted"
        )
    return kind in _LINEAR


def _plan(model: Any) -> _Plan:
    """Read ``model`` apart, refusing (RegistryError) what this family cannot serve exactly."""
    preprocessing, final, first = _split(model)
    linear = _check_final(final)
    n_raw = getattr(first, "n_features_in_", None)
    if n_raw is None:
        raise RegistryError(f"{type(first).__name__} is not fitted")
    names = getattr(first, "feature_names_in_", None)
    encoded: dict[int, _Encoded] = {}
    raw_columns = [_Column(j, _Nan.PASSED) for j in range(int(n_raw))]
    transformed = _walk(preprocessing, raw_columns, encoded)
    _check_width(final, transformed)
    if not get_tags(final).input_tags.allow_nan:
        transformed = _refusing_nan(transformed)
    categorical = {raw: e for raw, e in encoded.items() if _text_categories(e) is not None}
    return _Plan(
        preprocessing=preprocessing,
        final=final,
        linear=linear,
        n_raw=int(n_raw),
        columns=None if names is None else [str(name) for name in names],
        column_map=ColumnMap(np.array([c.raw for c in transformed], dtype=np.intp), int(n_raw)),
        categorical=categorical,
        handles_missing=not any(
            c.nan is _Nan.REFUSED and c.raw not in categorical for c in transformed
        ),
    )


def column_map(model: Any) -> ColumnMap:
    """Where each column a fitted model's final step reads comes from (RegistryError when
    the model is not one this family serves)."""
    return _plan(model).column_map


def _model_input(plan: _Plan, batch: RawBatch) -> Any:
    """What the model reads: a DataFrame when it was fitted on one, else the numbers."""
    return batch.numeric if plan.columns is None else batch.frame(plan.columns)


def _transformed(plan: _Plan, batch: RawBatch) -> FloatArray:
    """The final step's input: one ``transform`` of the preprocessing, dense float64."""
    X = _model_input(plan, batch)
    Z = X if plan.preprocessing is None else plan.preprocessing.transform(X)
    if hasattr(Z, "toarray"):  # a sparse one-hot output
        Z = Z.toarray()
    return np.asarray(Z, dtype=np.float64)


class SklearnPipelineModel:
    """A scikit-learn model compiled for one feature spec: the pipeline's own ``transform``
    once per batch (scikit-learn's input checks run there), then the final step evaluated
    and explained by our compiled path, its attributions summed per raw column."""

    def __init__(self, model: Any, plan: _Plan, explainer: Explainer) -> None:
        self.model = model
        self.plan = plan
        self.explainer = explainer
        self.method = explainer.method
        self.output_space: OutputSpace = getattr(explainer, "output_space", "log_odds")
        self.grouping = plan.column_map.grouping
        self._last: tuple[RawBatch, FloatArray] | None = None

    def _transformed(self, batch: RawBatch) -> FloatArray:
        """The batch transformed, once: scoring asks for the output, then the explanation."""
        last = self._last
        if last is not None and last[0] is batch:
            return last[1]
        Z = _transformed(self.plan, batch)
        self._last = (batch, Z)
        return Z

    def raw(self, batch: RawBatch) -> FloatArray:
        return self.explainer.raw_output(self._transformed(batch))

    def explain(self, batch: RawBatch) -> ExplanationBatch:
        explained = self.explainer.explain(self._transformed(batch))
        return ExplanationBatch(
            base_value=explained.base_value,
            contributions=self.plan.column_map.sum_per_raw(explained.contributions),
            raw=explained.raw,
            method=self.method,
            per_feature=True,
        )

    def library_probability(self, batch: RawBatch) -> FloatArray:
        probability = self.model.predict_proba(_model_input(self.plan, batch))[:, 1]
        return np.asarray(probability, dtype=np.float64)


def _check_spec(plan: _Plan, spec: FeatureSpec) -> None:
    """Refuse a feature spec that does not describe the columns the model reads."""
    if plan.columns is not None and spec.names != plan.columns:
        raise RegistryError(
            f"the feature spec's columns {spec.names} are not the model's {plan.columns}"
        )
    if len(spec.features) != plan.n_raw:
        raise RegistryError(
            f"the feature spec has {len(spec.features)} features, the model reads {plan.n_raw}"
        )
    for raw, feature in enumerate(spec.features):
        encoded = plan.categorical.get(raw)
        is_text = feature.kind is FeatureKind.CATEGORICAL
        if plan.columns is None and is_text:
            raise RegistryError(
                f"feature {feature.name!r} is categorical but the model was fitted on a numeric "
                "array; fit the pipeline on a pandas DataFrame"
            )
        if is_text != (encoded is not None):
            how = "as text categories" if encoded is not None else "as numbers"
            raise RegistryError(
                f"the model reads {feature.name!r} {how}, the feature spec says {feature.kind}"
            )
        if encoded is not None and not encoded.tolerant:
            unknown = sorted(set(feature.categories) - set(_text_categories(encoded) or []))
            if unknown:
                raise RegistryError(
                    f"feature {feature.name!r} has categories {unknown} that the model's "
                    "encoder does not know and would refuse"
                )


def _linear_explainer(final: Any, constants: dict[str, Any]) -> LinearExplainer:
    coef = np.asarray(final.coef_, dtype=np.float64)
    intercept = float(np.asarray(final.intercept_, dtype=np.float64).reshape(-1)[0])
    mean = constants.get("transformed_mean")
    if mean is None or len(mean) != coef.size:
        raise RegistryError(
            f"linear explainer constants need 'transformed_mean' of {coef.size} values"
        )
    return LinearExplainer(coef.reshape(-1), intercept, mean)


def _load_trusted(data: bytes, where: str, error: type[RegistryError]) -> Any:
    """A model from skops bytes, only when every type the file names is trusted."""
    hint = f"; supported families: {DESCRIPTION}"
    return load_skops(data, SKLEARN_TRUSTED_TYPES, where, error, hint)


def read_skops_file(path: Path | str) -> Any:
    """A user's scikit-learn model from a ``.skops`` file, loaded under the trusted types.

    Refused with one line (RegistryError): a file that is not a skops archive (a pickle or a
    joblib dump), a file naming a type not on :data:`SKLEARN_TRUSTED_TYPES`.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise RegistryError(f"cannot read {path}: {exc.strerror}") from exc
    if data[:1] == b"\x80":  # PROTO, how a pickle (and an uncompressed joblib file) starts
        raise RegistryError(
            f"{path} is a pickle: pickle files are not accepted; save the model with skops.io.dump"
        )
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise RegistryError(f"{path} is not a skops file; save the model with skops.io.dump")
    return _load_trusted(data, str(path), RegistryError)


class SklearnFamily:
    """scikit-learn models: a pipeline of per-column preprocessing ending in a binary
    classifier, stored with skops under :data:`SKLEARN_TRUSTED_TYPES`.

    :meth:`accepts` recognises any model whose final step is scikit-learn's, so that an
    unsupported one is refused by :meth:`inputs` or :meth:`compile` with the reason.
    """

    kind = "sklearn"
    description = DESCRIPTION

    def accepts(self, model: Any) -> bool:
        final = model.steps[-1][1] if type(model) is Pipeline else model
        return type(final).__module__.split(".")[0] == "sklearn"

    def inputs(self, model: Any) -> ModelInputs:
        plan = _plan(model)
        if plan.columns is None and plan.categorical:
            raise RegistryError(
                "the model encodes text categories but was fitted on an array without column "
                "names; fit the pipeline on a pandas DataFrame"
            )
        columns = plan.columns or []
        return ModelInputs(
            columns=plan.columns,
            categorical={
                columns[raw]: _text_categories(encoded)
                for raw, encoded in sorted(plan.categorical.items())
            },
            handles_missing=plan.handles_missing,
        )

    def dumps(self, model: Any) -> tuple[str, bytes]:
        data = sio.dumps(model)
        untrusted = skops_untrusted_types(data, SKLEARN_TRUSTED_TYPES)
        if untrusted:
            raise _refusal(
                f"cannot store {type(model).__name__}: type(s) {', '.join(untrusted)} are not "
                "on the trusted list"
            )
        return "skops", data

    def loads(self, fmt: str, data: bytes) -> Any:
        if fmt != "skops":
            raise ArtifactIntegrityError(f"a scikit-learn artifact is skops, not {fmt!r}")
        return _load_trusted(data, "scikit-learn artifact", ArtifactIntegrityError)

    def compile(
        self, model: Any, spec: FeatureSpec, constants: dict[str, Any]
    ) -> SklearnPipelineModel:
        plan = _plan(model)
        _check_spec(plan, spec)
        explainer: Explainer = (
            _linear_explainer(plan.final, constants)
            if plan.linear
            else TreeShapExplainer(plan.final)
        )
        return SklearnPipelineModel(model, plan, explainer)

    def constants(self, model: Any, spec: FeatureSpec, background: RawBatch) -> dict[str, Any]:
        """``transformed_mean`` (the mean of the final step's input over ``background``) for a
        linear model, the reference its contributions are centred on; nothing for trees."""
        plan = _plan(model)
        _check_spec(plan, spec)
        if not plan.linear:
            return {}
        mean = _transformed(plan, background).mean(axis=0)
        if not np.all(np.isfinite(mean)):
            raise RegistryError("the transformed registration data holds NaN or infinite values")
        return {"transformed_mean": mean.tolist()}
