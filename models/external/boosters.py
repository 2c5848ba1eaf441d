"""LightGBM and XGBoost boosters from elsewhere: stored in their own formats, explained by
their own exact contributions.

A binary booster's raw output is its margin, the log-odds, and both libraries attribute it
exactly with path-dependent TreeSHAP (``pred_contrib`` / ``pred_contribs``): one column per
booster feature, then the expected value, the same for every row. Each booster feature is
one of the user's columns, in the feature spec's order, so the contributions are already
one per feature.

- LightGBM: a ``lightgbm.Booster`` or a fitted ``LGBMClassifier`` with objective ``binary``
  or ``cross_entropy`` (a ``sigmoid`` other than 1 scales the raw score, and so its
  contributions, to log-odds). A model fitted on pandas categoricals keeps their categories
  (``pandas_categorical``): a category reaches LightGBM as its position in that list, one
  the model does not know as NaN, as LightGBM's own pandas path does. A feature declared
  categorical on integer codes reads the code from the user's numeric column.
- XGBoost: an ``xgboost.Booster`` or a fitted ``XGBClassifier`` with objective
  ``binary:logistic``, over numeric features, and categorical ones when the model keeps its
  categories (XGBoost >= 3.1 fitted on a pandas DataFrame with category dtype): a category
  reaches XGBoost as its position in the model's list. A booster that carries a best
  iteration (early stopping) is scored up to it, as ``XGBClassifier`` scores it; it is not
  sliced, since XGBoost's slicing drops the categories.

Models are stored in the libraries' own formats, never pickled: LightGBM's text model
(``lightgbm-text``) and XGBoost's JSON (``xgboost-json``; UBJSON, ``xgboost-ubj``, loads too).

LightGBM computes in float64. XGBoost computes in float32: its margin and its contributions
are each accumulated over trees in float32, so ``base + Σ contributions`` meets the margin
to float32 precision of the margin's size (below 1e-6 for a small model, near 1e-5 for
hundreds of trees), and its probability is a float32 logistic (up to about 5e-8 from the
float64 logistic of its own margin). The served score is the logistic of XGBoost's own
margin, and the explanation XGBoost's own contributions; registration therefore allows the
score one float32 rounding of the library's probability (:attr:`XGBoostModel.score_resolution`)
and the additivity the bound of float32 summation over the trees, ``trees · ε₃₂ · (|base| +
Σ|φ|)``, at its largest over the registration rows (``additivity_limit`` in the explainer
constants; the promotion gate uses it too).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from models.explain.base import ExplanationBatch, FloatArray
from models.external.base import ModelInputs, OutputSpace, RawBatch
from models.featurespec import Feature, FeatureKind, FeatureSpec
from schemas.errors import ExplainerError, RegistryError, ScoringError

if TYPE_CHECKING:
    import lightgbm
    import xgboost

LIGHTGBM_TEXT: Final = "lightgbm-text"
XGBOOST_JSON: Final = "xgboost-json"
XGBOOST_UBJ: Final = "xgboost-ubj"

MARGIN_THREADS: Final = 1
"""Threads of a margin or probability call (a few milliseconds a batch)."""
CONTRIBUTION_THREADS: Final = min(
    2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
)
"""Threads of a contributions call (hundreds of milliseconds a batch)."""
# Chosen by measurement on the 2-core host, 500-row batches, 100 trees of 31 leaves (LightGBM)
# or depth 6 (XGBoost), 11 features, with a busy-loop process standing in for the broker.
# Serving (margin + contributions) with 2 contribution threads against 1: x1.8 (LightGBM
# 1230 -> 2310 events/s) and x1.9 (XGBoost 1200 -> 2250) alone; beside a process busy half the
# time x1.3; beside one busy all the time x1.2 and x1.1. Margin calls alone with 2 threads:
# idle x1.3-1.8, but beside a busy process x0.7 (LightGBM) and x0.16 (XGBoost): the OpenMP
# team of a millisecond call waits on its preempted half. A model's own setting is never
# used (LightGBM keeps the trainer's `num_threads`, which may be 64).

_XGBOOST_NUMERIC_TYPES: Final = frozenset({"float", "q", "int", "i"})
_LIGHTGBM_BINARY: Final = frozenset({"binary", "cross_entropy"})
_PICKLE_PROTOCOLS: Final = range(2, 6)


@dataclass(frozen=True)
class _BoosterColumns:
    """What a booster reads: its feature names and the categories of its categorical ones."""

    names: list[str]
    """The booster's feature names, generic (``Column_0``, ``f0``) when it was fitted
    without any."""
    named: bool
    categories: dict[int, list[str]]
    """Position of a categorical feature -> its categories as text, in code order."""

    def inputs(self) -> ModelInputs:
        return ModelInputs(
            columns=list(self.names) if self.named else None,
            categorical={self.names[j]: list(values) for j, values in self.categories.items()},
            handles_missing=True,
        )


@dataclass(frozen=True)
class _InputMatrix:
    """Turns a :class:`RawBatch` into the booster's float64 input matrix, once per batch:
    numeric columns as they are (NaN when missing), categorical ones as the codes the
    booster reads.

    >>> matrix = _InputMatrix(((1, "region", {"north": 0.0, "south": 1.0}),))
    >>> batch = RawBatch(
    ...     columns=["income", "region"],
    ...     numeric=np.array([[1.5, np.nan], [np.nan, np.nan]]),
    ...     text={"region": np.array(["south", "west"], dtype=object)},
    ... )
    >>> matrix(batch).tolist()
    [[1.5, 1.0], [nan, nan]]
    """

    codes: tuple[tuple[int, str, dict[str, float]], ...]
    """Per categorical column: its position, its feature name, and category text -> code."""

    def __call__(self, batch: RawBatch) -> FloatArray:
        if not self.codes:
            return batch.numeric
        X = batch.numeric.copy()
        for position, name, lookup in self.codes:
            X[:, position] = [lookup.get(value, math.nan) for value in batch.text[name]]
        return X


class _CompiledBooster(ABC):
    """Scoring and explanation of a binary booster over one feature spec; a subclass makes
    the three library calls on the input matrix."""

    method: str
    library: str
    output_space: OutputSpace = "log_odds"

    def __init__(self, matrix: _InputMatrix, width: int) -> None:
        self._matrix = matrix
        self._width = width

    @abstractmethod
    def _margin(self, X: FloatArray) -> FloatArray:
        """The library's margin (log-odds) of every row."""

    @abstractmethod
    def _contributions(self, X: FloatArray) -> FloatArray:
        """The library's own contributions; the last column is the base value."""

    @abstractmethod
    def _probability(self, X: FloatArray) -> FloatArray:
        """The library's own probability of the adverse class."""

    def raw(self, batch: RawBatch) -> FloatArray:
        X = self._matrix(batch)
        if not len(X):
            return np.zeros(0)
        try:
            return self._margin(X)
        except Exception as exc:  # the library's own error, in one line
            raise ScoringError(f"{self.library} could not score: {_one_line(exc)}") from exc

    def library_probability(self, batch: RawBatch) -> FloatArray:
        X = self._matrix(batch)
        if not len(X):
            return np.zeros(0)
        try:
            return self._probability(X)
        except Exception as exc:
            raise ScoringError(f"{self.library} could not score: {_one_line(exc)}") from exc

    def explain(self, batch: RawBatch) -> ExplanationBatch:
        """The library's contributions (its last column is the base value) and its margin;
        an empty batch still gets the base value, from one all-missing row."""
        X = self._matrix(batch)
        rows = X if len(X) else np.full((1, self._width), np.nan)
        try:
            contributions = self._contributions(rows)
            raw = self._margin(rows)
        except Exception as exc:
            raise ExplainerError(f"{self.library} could not explain: {_one_line(exc)}") from exc
        expected = contributions[:, -1]
        if not np.all(expected == expected[0]):
            raise ExplainerError(f"{self.library} gave a base value that varies by row")
        return ExplanationBatch(
            base_value=float(expected[0]),
            contributions=np.ascontiguousarray(contributions[: len(X), :-1]),
            raw=raw[: len(X)],
            method=self.method,
            per_feature=True,
        )


# LightGBM -----------------------------------------------------------------------------


class LightGBMFamily:
    """Binary LightGBM boosters, stored as LightGBM's text model."""

    kind = "lightgbm"
    description = (
        "lightgbm (a lightgbm.Booster or fitted LGBMClassifier, objective binary or cross_entropy)"
    )

    def accepts(self, model: Any) -> bool:
        lgb = sys.modules.get("lightgbm")  # not imported yet: no model of its can exist
        return lgb is not None and isinstance(model, lgb.Booster | lgb.LGBMModel)

    def inputs(self, model: Any) -> ModelInputs:
        return _lightgbm_header(_lightgbm_booster(model)).columns.inputs()

    def dumps(self, model: Any) -> tuple[str, bytes]:
        booster = _lightgbm_booster(model)
        _lightgbm_header(booster)
        return LIGHTGBM_TEXT, booster.model_to_string().encode("utf-8")

    def loads(self, fmt: str, data: bytes) -> Any:
        if fmt != LIGHTGBM_TEXT:
            raise RegistryError(f"a LightGBM model is stored as {LIGHTGBM_TEXT!r}, not {fmt!r}")
        return _lightgbm_from_text(data, "the stored artifact")

    def compile(self, model: Any, spec: FeatureSpec, constants: dict[str, Any]) -> LightGBMModel:
        booster = _lightgbm_booster(model)
        header = _lightgbm_header(booster)
        matrix = _input_matrix(spec, header.columns, "LightGBM", unknown_refused=False)
        return LightGBMModel(booster, matrix, header.sigmoid)

    def constants(self, model: Any, spec: FeatureSpec, background: RawBatch) -> dict[str, Any]:
        return {}


class LightGBMModel(_CompiledBooster):
    """A LightGBM booster scoring and explaining batches of one feature spec.

    With ``sigmoid`` other than 1 the probability is ``1 / (1 + exp(-sigmoid * raw_score))``,
    so the log-odds, and every contribution, are the raw score's times ``sigmoid``.
    """

    method = "lightgbm_contrib"
    library = "LightGBM"

    def __init__(self, booster: lightgbm.Booster, matrix: _InputMatrix, sigmoid: float) -> None:
        super().__init__(matrix, booster.num_feature())
        self._booster = booster
        self._scale = sigmoid

    def _predict(self, X: FloatArray, threads: int, **output: bool) -> FloatArray:
        values = self._booster.predict(X, num_threads=threads, **output)
        return np.asarray(values, dtype=np.float64)

    def _margin(self, X: FloatArray) -> FloatArray:
        raw = self._predict(X, MARGIN_THREADS, raw_score=True)
        return raw * self._scale if self._scale != 1.0 else raw

    def _contributions(self, X: FloatArray) -> FloatArray:
        contributions = self._predict(X, CONTRIBUTION_THREADS, pred_contrib=True)
        return contributions * self._scale if self._scale != 1.0 else contributions

    def _probability(self, X: FloatArray) -> FloatArray:
        return self._predict(X, MARGIN_THREADS)


@dataclass(frozen=True)
class _LightGBMHeader:
    columns: _BoosterColumns
    sigmoid: float


def read_lightgbm_file(path: str | Path) -> lightgbm.Booster:
    """The binary booster in a LightGBM text model file (``Booster.save_model``);
    RegistryError in one line when the file is not one."""
    booster = _lightgbm_from_text(_read_file(path), str(path))
    _lightgbm_header(booster)
    return booster


def _lightgbm_from_text(data: bytes, origin: str) -> lightgbm.Booster:
    advice = "save it with booster.save_model('model.txt'), LightGBM's text format"
    _refuse_pickle(data, origin, advice)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise RegistryError(f"{origin} is not a LightGBM text model (not text); {advice}") from None
    if text.split("\n", 1)[0].strip() != "tree":
        raise RegistryError(
            f"{origin} is not a LightGBM text model (no 'tree' first line); {advice}"
        )
    lgb = _import_lightgbm()
    try:
        return lgb.Booster(model_str=text)
    except lgb.basic.LightGBMError as exc:
        raise RegistryError(f"{origin} is not a valid LightGBM model: {_one_line(exc)}") from exc


def _lightgbm_booster(model: Any) -> lightgbm.Booster:
    lgb = _import_lightgbm()
    if isinstance(model, lgb.Booster):
        return model
    if isinstance(model, lgb.LGBMModel):
        try:
            return model.booster_
        except (AttributeError, ValueError) as exc:  # sklearn's NotFittedError is both
            raise RegistryError(f"the {type(model).__name__} is not fitted") from exc
    raise RegistryError(
        f"expected a lightgbm.Booster or LGBMClassifier, got {type(model).__name__}"
    )


def _lightgbm_header(booster: lightgbm.Booster) -> _LightGBMHeader:
    """The objective, feature names and categories of ``booster``, read from its text model
    (with one iteration's trees: the rest does not change them); refused unless it is a
    binary classifier that LightGBM can explain."""
    text = booster.model_to_string(num_iteration=1)
    header = dict(
        line.split("=", 1) for line in text.split("\nTree=", 1)[0].splitlines() if "=" in line
    )
    objective = header.get("objective", "").split()
    if not objective:
        raise RegistryError(
            "the LightGBM model names no objective (a custom one?); "
            "only objective 'binary' or 'cross_entropy' can be served"
        )
    if objective[0] not in _LIGHTGBM_BINARY or header.get("num_class", "1") != "1":
        raise RegistryError(
            f"LightGBM objective {' '.join(objective)!r} is not a binary classifier; "
            "only objective 'binary' or 'cross_entropy' can be served"
        )
    if "\nis_linear=1" in text:
        raise RegistryError(
            "the LightGBM model has linear trees, which LightGBM cannot explain "
            "(no pred_contrib); train it without linear_tree"
        )
    options = dict(token.split(":", 1) for token in objective[1:] if ":" in token)
    names = list(booster.feature_name())
    columns = _BoosterColumns(
        names=names,
        named=names != [f"Column_{j}" for j in range(len(names))],
        categories=_lightgbm_categories(booster, text, names),
    )
    return _LightGBMHeader(columns, float(options.get("sigmoid", "1")))


def _lightgbm_categories(
    booster: lightgbm.Booster, text: str, names: list[str]
) -> dict[int, list[str]]:
    """Position -> categories of each feature fitted on a pandas categorical.

    LightGBM keeps one category list per pandas categorical column, in column order, and
    the positions of its categorical features in its parameters: the two pair up in order.
    When their counts differ (an ordered categorical, read as its codes, or integer columns
    declared categorical beside pandas ones) the pairing is unknown, and refused.
    """
    lists = booster.pandas_categorical or []
    if not lists:
        return {}
    match = re.search(r"^\[categorical_feature: *(.*)\]$", text, re.MULTILINE)
    declared = (match.group(1) if match else "").removeprefix("name:")
    positions = sorted(
        int(token) if token.isdigit() else names.index(token)
        for token in declared.split(",")
        if token.isdigit() or token in names
    )
    if len(positions) != len(lists):
        raise RegistryError(
            f"the LightGBM model keeps {len(lists)} pandas category list(s) but declares "
            f"{len(positions)} categorical feature(s), so which column a list belongs to is "
            "unknown; train it with each categorical column as an unordered pandas category"
        )
    return {
        j: [_category_text(value) for value in values]
        for j, values in zip(positions, lists, strict=True)
    }


def _import_lightgbm() -> Any:
    try:
        import lightgbm
    except ImportError as exc:
        raise RegistryError(
            "LightGBM models need lightgbm: pip install 'streaming-scorer[lightgbm]'"
        ) from exc
    return lightgbm


# XGBoost ------------------------------------------------------------------------------


class XGBoostFamily:
    """Binary XGBoost boosters, stored as XGBoost's JSON model."""

    kind = "xgboost"
    description = "xgboost (an xgboost.Booster or fitted XGBClassifier, objective binary:logistic)"

    def accepts(self, model: Any) -> bool:
        xgb = sys.modules.get("xgboost")  # not imported yet: no model of its can exist
        return xgb is not None and isinstance(model, xgb.Booster | xgb.XGBModel)

    def inputs(self, model: Any) -> ModelInputs:
        return _xgboost_columns(_xgboost_booster(model)).inputs()

    def dumps(self, model: Any) -> tuple[str, bytes]:
        booster = _xgboost_booster(model)
        _xgboost_columns(booster)
        return XGBOOST_JSON, bytes(booster.save_raw("json"))

    def loads(self, fmt: str, data: bytes) -> Any:
        if fmt not in (XGBOOST_JSON, XGBOOST_UBJ):
            raise RegistryError(
                f"an XGBoost model is stored as {XGBOOST_JSON!r} or {XGBOOST_UBJ!r}, not {fmt!r}"
            )
        return _xgboost_from_bytes(data, "the stored artifact")

    def compile(self, model: Any, spec: FeatureSpec, constants: dict[str, Any]) -> XGBoostModel:
        booster = _xgboost_booster(model)
        matrix = _input_matrix(spec, _xgboost_columns(booster), "XGBoost", unknown_refused=True)
        return XGBoostModel(booster, matrix)

    def constants(self, model: Any, spec: FeatureSpec, background: RawBatch) -> dict[str, Any]:
        """``additivity_limit``: the float32 summation bound of the module doc, at its largest
        over ``background``, never below the float64 tolerance of 1e-6."""
        compiled = self.compile(model, spec, {})
        explained = compiled.explain(background)
        trees = max(1, compiled.trees)
        magnitude = abs(explained.base_value) + np.abs(explained.contributions).sum(axis=1)
        bound = trees * float(np.finfo(np.float32).eps) * float(magnitude.max(initial=0.0))
        return {"additivity_limit": max(1e-6, bound)}


class XGBoostModel(_CompiledBooster):
    """An XGBoost booster scoring and explaining batches of one feature spec.

    Each call builds a ``DMatrix`` with the booster's own feature names and types. The
    margin includes ``base_score`` (as log-odds), and so does the contributions' last
    column, so nothing is added here. The booster's ``nthread`` is set before each call
    that needs another thread count than the last.
    """

    method = "xgboost_contrib"
    library = "XGBoost"
    score_resolution = 2.0 * float(np.finfo(np.float32).eps)
    """XGBoost's probability is a float32 logistic of its margin: within two float32
    epsilons of the exact logistic of that margin, which is the served score."""

    def __init__(self, booster: xgboost.Booster, matrix: _InputMatrix) -> None:
        super().__init__(matrix, booster.num_features())
        self._booster = booster
        self._threads = 0
        self._names = booster.feature_names
        self._types = booster.feature_types
        self._iterations = _xgboost_iterations(booster)
        start, end = self._iterations
        self.trees = (end - start) if end else booster.num_boosted_rounds()
        """Boosting rounds scored: the float32 sums over trees of the module doc."""

    def _predict(self, X: FloatArray, threads: int, **output: bool) -> FloatArray:
        xgb = _import_xgboost()
        data = xgb.DMatrix(
            X,
            missing=np.nan,
            feature_names=self._names,
            feature_types=self._types,
            enable_categorical="c" in (self._types or []),
            nthread=MARGIN_THREADS,
        )
        if threads != self._threads:  # a booster parameter in XGBoost, not a call's
            self._booster.set_param({"nthread": threads})
            self._threads = threads
        values = self._booster.predict(data, iteration_range=self._iterations, **output)
        return np.asarray(values, dtype=np.float64)

    def _margin(self, X: FloatArray) -> FloatArray:
        return self._predict(X, MARGIN_THREADS, output_margin=True)

    def _contributions(self, X: FloatArray) -> FloatArray:
        return self._predict(X, CONTRIBUTION_THREADS, pred_contribs=True)

    def _probability(self, X: FloatArray) -> FloatArray:
        return self._predict(X, MARGIN_THREADS)


def read_xgboost_file(path: str | Path) -> xgboost.Booster:
    """The binary booster in an XGBoost JSON (``.json``) or UBJSON (``.ubj``) model file
    (``save_model``); RegistryError in one line when the file is not one."""
    booster = _xgboost_from_bytes(_read_file(path), str(path))
    _xgboost_columns(_xgboost_booster(booster))
    return booster


def _xgboost_from_bytes(data: bytes, origin: str) -> xgboost.Booster:
    advice = "save it with booster.save_model('model.json'), XGBoost's JSON format"
    _refuse_pickle(data, origin, advice)
    if not data.lstrip()[:1] == b"{":  # a JSON or UBJSON model is one object
        raise RegistryError(f"{origin} is not an XGBoost JSON or UBJSON model; {advice}")
    xgb = _import_xgboost()
    booster = xgb.Booster()
    try:
        booster.load_model(bytearray(data))
    except xgb.core.XGBoostError as exc:
        raise RegistryError(
            f"{origin} is not a valid XGBoost model: {_one_line(exc)}; {advice}"
        ) from exc
    return booster


def _xgboost_booster(model: Any) -> xgboost.Booster:
    """The booster of ``model``, refused unless it is a one-target binary:logistic one."""
    xgb = _import_xgboost()
    if isinstance(model, xgb.XGBModel):
        try:
            booster = model.get_booster()
        except (AttributeError, ValueError) as exc:  # sklearn's NotFittedError is both
            raise RegistryError(f"the {type(model).__name__} is not fitted") from exc
    elif isinstance(model, xgb.Booster):
        booster = model
    else:
        raise RegistryError(
            f"expected an xgboost.Booster or XGBClassifier, got {type(model).__name__}"
        )
    learner = json.loads(booster.save_config())["learner"]
    objective = learner["objective"]["name"]
    outputs = learner["learner_model_param"]
    if objective != "binary:logistic" or int(outputs.get("num_class", "0")) > 1:
        raise RegistryError(
            f"XGBoost objective {objective!r} is not a binary classifier; "
            "only objective 'binary:logistic' can be served"
        )
    if int(outputs.get("num_target", "1")) != 1:
        raise RegistryError("the XGBoost model has several targets; only one can be served")
    return booster


def _xgboost_iterations(booster: xgboost.Booster) -> tuple[int, int]:
    """The iteration range scored: up to the best iteration when the booster carries one
    (early stopping), as ``XGBClassifier`` predicts; every tree otherwise."""
    best = booster.attr("best_iteration")
    booster_name = json.loads(booster.save_config())["learner"]["gradient_booster"]["name"]
    if best is None or booster_name == "gblinear":  # a linear booster has no iterations
        return (0, 0)
    return (0, int(best) + 1)


def _xgboost_columns(booster: xgboost.Booster) -> _BoosterColumns:
    """Feature names and categories of ``booster``; refused for a feature type it cannot
    be fed, or a categorical feature whose categories the model does not keep."""
    width = booster.num_features()
    names = booster.feature_names or [f"f{j}" for j in range(width)]
    types = booster.feature_types or ["float"] * width
    unknown = sorted({t for t in types if t != "c" and t not in _XGBOOST_NUMERIC_TYPES})
    if unknown:
        raise RegistryError(f"XGBoost feature type(s) {unknown} cannot be served")
    kept = _xgboost_categories(booster, width) if "c" in types else [None] * width
    categories: dict[int, list[str]] = {}
    for j, kind in enumerate(types):
        values = kept[j]
        if kind == "c" and values is None:
            raise RegistryError(
                f"XGBoost feature {names[j]!r} is categorical but the model keeps no "
                "categories; train it on a pandas DataFrame with category dtype under "
                "XGBoost >= 3.1"
            )
        if kind == "c" and values is not None:
            categories[j] = values
    return _BoosterColumns(
        names=list(names),
        named=names != [f"f{j}" for j in range(width)],
        categories=categories,
    )


def _xgboost_categories(booster: xgboost.Booster, width: int) -> list[list[str] | None]:
    """Per feature, the categories the model keeps (its JSON ``cats``), None for one
    without: strings are stored as UTF-8 bytes cut at offsets, numbers as values."""
    model = json.loads(bytes(booster.save_raw("json")))
    encoded = model["learner"]["gradient_booster"]["model"].get("cats", {}).get("enc", [])
    if not encoded:
        return [None] * width
    if len(encoded) != width:
        raise RegistryError("the XGBoost model's categories do not match its features")
    kept: list[list[str] | None] = []
    for column in encoded:
        values = column.get("values", [])
        if "offsets" in column:
            offsets = column["offsets"]
            text = bytes(value & 0xFF for value in values)
            categories = [text[a:b].decode("utf-8") for a, b in itertools.pairwise(offsets)]
        else:
            categories = [_category_text(value) for value in values]
        kept.append(categories or None)
    return kept


def _import_xgboost() -> Any:
    try:
        import xgboost
    except ImportError as exc:
        raise RegistryError(
            "XGBoost models need xgboost: pip install 'streaming-scorer[xgboost]'"
        ) from exc
    return xgboost


# Both ---------------------------------------------------------------------------------


def _input_matrix(
    spec: FeatureSpec, columns: _BoosterColumns, library: str, *, unknown_refused: bool
) -> _InputMatrix:
    """The input matrix of ``spec``'s batches for a booster reading ``columns``; refused
    when the two do not describe the same columns."""
    if len(spec.features) != len(columns.names):
        raise RegistryError(
            f"the {library} model reads {len(columns.names)} columns, the feature spec has "
            f"{len(spec.features)}"
        )
    if columns.named and spec.names != columns.names:
        j = next(
            j for j, (a, b) in enumerate(zip(spec.names, columns.names, strict=True)) if a != b
        )
        raise RegistryError(
            f"column {j} is {columns.names[j]!r} in the {library} model but "
            f"{spec.names[j]!r} in the feature spec"
        )
    codes = []
    for j, feature in enumerate(spec.features):
        model_categories = columns.categories.get(j)
        if (feature.kind is FeatureKind.CATEGORICAL) != (model_categories is not None):
            reads = "categories" if model_categories is not None else "numbers"
            raise RegistryError(
                f"the {library} model reads {reads} in column {feature.name!r}, the feature "
                f"spec says it is {feature.kind.value}"
            )
        if model_categories is not None:
            lookup = _codes(feature, model_categories, library, unknown_refused)
            codes.append((j, feature.name, lookup))
    return _InputMatrix(tuple(codes))


def _codes(
    feature: Feature, model_categories: list[str], library: str, unknown_refused: bool
) -> dict[str, float]:
    """Each spec category -> the code the booster reads, its position in the model's list.

    A category the model lacks is left out (read as NaN, as LightGBM reads it), or refused
    (``unknown_refused``: XGBoost refuses to score it); a spec sharing no category with the
    model is refused either way.
    """
    position: dict[str, float] = {}
    for code, text in enumerate(model_categories):
        position.setdefault(text, float(code))
        position.setdefault(text.strip(), float(code))  # as the spec trims categories
    lookup = {text: position[text] for text in feature.categories if text in position}
    unknown = [text for text in feature.categories if text not in lookup]
    if unknown and (unknown_refused or not lookup):
        raise RegistryError(
            f"feature {feature.name!r}: categories {unknown[:5]} of the feature spec are "
            f"unknown to the {library} model, which knows {model_categories[:10]}"
        )
    return lookup


def _category_text(value: Any) -> str:
    """A model's category as an event's text: ``3`` for an integer or a whole float."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _read_file(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise RegistryError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _refuse_pickle(data: bytes, origin: str, advice: str) -> None:
    """Refuse a pickle (protocol 2 and later) by its first two bytes, never loading it."""
    if len(data) >= 2 and data[0] == 0x80 and data[1] in _PICKLE_PROTOCOLS:
        raise RegistryError(f"{origin} is a pickle, which is never loaded; {advice}")


def _one_line(exc: BaseException) -> str:
    """The first line of a library's message, without XGBoost's ``[time] file:line:``."""
    lines = str(exc).strip().splitlines()
    return re.sub(r"^\[[\d:]+\] \S+:\d+: ", "", lines[0]) if lines else type(exc).__name__
