"""Exact path-dependent TreeSHAP for scikit-learn tree models, vectorised over a batch.

The path-dependent value of a coalition ``S`` (as in the ``tree_path_dependent`` TreeSHAP of
Lundberg et al.) follows ``x`` at splits on features in ``S`` and averages both children by
node cover elsewhere. Summed over leaves it is

    v(S) = Σ_leaves value · Π_{j ∈ F ∩ S} 1[x_j ∈ A_j] · Π_{j ∈ F ∖ S} r_j

where ``F`` are the distinct features on the leaf's path, ``A_j`` the set the path allows
for feature ``j`` (an interval ``(lo_j, hi_j]``, or a set of category codes) and ``r_j`` the
product of the cover ratios of its splits on ``j``. Each leaf is a product game over ``F``
alone, so its Shapley values are exact when computed over ``F`` only; the batch Shapley
values are their sum. Instead of walking trees row by row, every leaf is compiled once: for
short paths the Shapley values of all ``2^|F|`` in/out patterns are tabulated and a row only
looks up its pattern; long paths are evaluated per row with a polynomial (elementary
symmetric) dynamic programme.

A shallow tree is compiled further, as a whole. Its thresholds cut each feature it splits on
into intervals (plus "missing"), and a row's Shapley values within that tree depend only on
which interval each of those features falls in: on its *cell*. When a tree has few cells
(a depth-3 tree has at most 3^7 = 2,187, usually a few hundred), the Shapley values and the
leaf value of every cell are computed once, by the leaf method above on one representative
point per cell, and a row costs one comparison per threshold and one lookup per tree
instead of one condition per (leaf, feature).

Every model is read as ``raw = offset + scale · Σ_trees value of the leaf reached``, in its
:data:`OutputSpace`:

- ``"log_odds"``: a binary ``GradientBoostingClassifier`` or ``HistGradientBoostingClassifier``
  (its ``decision_function``, the log-odds of ``classes_[1]``);
- ``"probability"``: a ``DecisionTreeClassifier``, ``RandomForestClassifier`` or
  ``ExtraTreesClassifier`` with classes 0 and 1 (``predict_proba(X)[:, 1]``: a leaf holds
  the weighted fraction of class 1, a forest averages its trees);
- ``"raw"``: a ``GradientBoostingRegressor`` or ``DecisionTreeRegressor`` (its ``predict``).

Rows are routed exactly as each library routes them, so every row reaches the same leaves
as in the model and the raw output equals the library's up to the order of summation.
scikit-learn's trees compare ``float32(x) <= threshold`` with cover
``weighted_n_node_samples`` (a forest's bootstrap counts included). HistGradientBoosting
compares the float64 ``x <= threshold`` with cover ``count``; a categorical column is read
as its category's code, sent left when the code is in the split's bitset. A NaN, and an
unknown category, go where the split's ``missing_go_to_left`` says.

>>> import numpy as np
>>> from sklearn.tree import DecisionTreeRegressor
>>> X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
>>> tree = DecisionTreeRegressor().fit(X, [0.0, 0.0, 0.0, 4.0])
>>> explainer = TreeShapExplainer(tree)
>>> batch = explainer.explain(X[3:])
>>> explainer.output_space, batch.base_value, batch.contributions.tolist(), batch.raw.tolist()
('raw', 1.0, [[1.5, 1.5]], [4.0])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.preprocessing import OrdinalEncoder
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from models.explain.base import (
    ExplainerError,
    ExplanationBatch,
    FloatArray,
    as_design_matrix,
    row_sums,
)

IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]

OutputSpace = Literal["log_odds", "probability", "raw"]
"""What the raw output is: the log-odds of ``classes_[1]`` (boosted classifiers), the
probability of class 1 (trees and forests of classifiers), or a regressor's prediction."""

_Condition = tuple[float, float, float, bool, BoolArray | None]
"""What a path imposes on one feature: lo, hi (x in (lo, hi], lo NaN when unbounded below,
so that -inf is inside), the cover ratio, NaN allowed, and for a categorical feature the
category codes allowed (None for a numeric one)."""

_UNCONSTRAINED: _Condition = (math.nan, math.inf, 1.0, True, None)

_TREE_THRESHOLDS: Final = 8
"""Most distinct thresholds of a tree compiled whole (a depth-3 tree has at most 7)."""

_CHUNK_ELEMENTS = 1 << 17
"""Rows are processed in chunks of about this many (row, path condition) pairs: cache-sized."""


@dataclass(frozen=True)
class _Tree:
    """One tree as flat node arrays, whatever estimator built it.

    A numeric split sends ``x`` left when ``x <= threshold``, a categorical one when the
    code of ``x`` is among the codes it sends left; NaN goes left when ``nan_left``.
    """

    left: IntArray
    """Left child of each node, -1 at a leaf."""
    right: IntArray
    feature: IntArray
    """The design-matrix column a node splits on."""
    threshold: FloatArray
    nan_left: BoolArray
    value: FloatArray
    """A leaf's output, in the model's output space (before the ensemble's scale)."""
    cover: FloatArray
    count: FloatArray
    """Cover of last resort, for the children of a node whose cover is zero."""
    categorical: dict[int, tuple[BoolArray, BoolArray]] = field(default_factory=dict)
    """Node -> (codes sent left, codes sent right), for categorical splits only."""

    def cover_ratio(self, child: int, parent: int) -> float:
        if self.cover[parent] > 0:
            return float(self.cover[child] / self.cover[parent])
        # A zero-weight node (possible with subsampling): fall back to sample counts.
        return float(self.count[child] / self.count[parent])


@dataclass(frozen=True)
class _Ensemble:
    """A model as TreeSHAP reads it: ``offset + scale · Σ_trees value of the leaf reached``."""

    trees: list[_Tree]
    scale: float
    offset: float
    n_columns: int
    output_space: OutputSpace
    float32: bool = True
    """Whether inputs are rounded to float32 before they are compared, as sklearn's trees do."""
    categories: dict[int, FloatArray] = field(default_factory=dict)
    """Categorical column -> its known values, sorted: a value's code is its position, any
    other value (NaN included) is missing."""


@dataclass(frozen=True)
class _Leaf:
    """A leaf compiled to its path conditions, one per distinct feature on the path."""

    features: tuple[int, ...]
    lo: tuple[float, ...]
    hi: tuple[float, ...]
    ratio: tuple[float, ...]
    nan_ok: tuple[bool, ...]
    codes: tuple[BoolArray | None, ...]
    value: float

    @classmethod
    def from_path(cls, path: dict[int, _Condition], value: float) -> _Leaf:
        items = sorted(path.items())
        return cls(
            features=tuple(j for j, _ in items),
            lo=tuple(c[0] for _, c in items),
            hi=tuple(c[1] for _, c in items),
            ratio=tuple(c[2] for _, c in items),
            nan_ok=tuple(c[3] for _, c in items),
            codes=tuple(c[4] for _, c in items),
            value=value,
        )


# Reading each family's trees.


def _sklearn_tree(tree: Any, output: int) -> _Tree:
    """A scikit-learn ``Tree``; ``output`` is the column of ``tree.value`` that is explained.

    For a classifier that column is class 1: since scikit-learn 1.4 ``tree.value`` holds the
    weighted class fractions, which ``predict_proba`` returns as they are.
    """
    no_missing = np.zeros(tree.node_count, dtype=bool)
    return _Tree(
        left=np.asarray(tree.children_left, dtype=np.intp),
        right=np.asarray(tree.children_right, dtype=np.intp),
        feature=np.asarray(tree.feature, dtype=np.intp),
        threshold=np.asarray(tree.threshold, dtype=np.float64),
        nan_left=np.asarray(getattr(tree, "missing_go_to_left", no_missing), dtype=bool),
        value=np.asarray(tree.value[:, 0, output], dtype=np.float64),
        cover=np.asarray(tree.weighted_n_node_samples, dtype=np.float64),
        count=np.asarray(tree.n_node_samples, dtype=np.float64),
    )


def _require_zero_one_classes(model: Any) -> None:
    """A probability model is explained as P(class 1), so its classes must be exactly 0 and 1."""
    if getattr(model, "n_outputs_", 1) != 1:
        raise ExplainerError(f"only single-output {type(model).__name__} models are supported")
    classes = np.asarray(model.classes_)
    if (
        classes.shape != (2,)
        or classes.dtype.kind not in "biuf"
        or not np.array_equal(classes, [0, 1])
    ):
        raise ExplainerError(
            f"{type(model).__name__} must be binary with classes [0, 1], got "
            f"{classes.tolist()}; its probability of class 1 is what is explained"
        )


def _gradient_boosting(model: Any) -> _Ensemble:
    if not hasattr(model, "estimators_"):
        raise ExplainerError("the gradient-boosting model is not fitted")
    space: OutputSpace = "raw"
    if isinstance(model, GradientBoostingClassifier):
        if model.estimators_.shape[1] != 1:
            raise ExplainerError("only binary gradient-boosting classifiers are supported")
        if model.loss != "log_loss":
            raise ExplainerError(f"loss {model.loss!r} has no log-odds raw output")
        space = "log_odds"
    trees = [_sklearn_tree(estimator.tree_, 0) for estimator in model.estimators_[:, 0]]
    n_columns = int(model.n_features_in_)
    return _Ensemble(trees, float(model.learning_rate), _init_raw(model), n_columns, space)


def _init_raw(model: Any) -> float:
    """The boosting's initial raw prediction, which must be a constant to be attributable."""
    init = model.init_
    if isinstance(init, str) and init == "zero":
        return 0.0
    if not isinstance(init, DummyClassifier | DummyRegressor):
        raise ExplainerError(
            f"init estimator {type(init).__name__} is not constant; cannot attribute it"
        )
    probe = np.zeros((1, int(model.n_features_in_)))
    raw_init = getattr(model, "_raw_predict_init", None)
    if raw_init is not None:
        return float(np.asarray(raw_init(probe)).reshape(-1)[0])
    tree_sum = sum(float(e.predict(probe)[0]) for e in model.estimators_[:, 0])
    output = model.decision_function(probe) if hasattr(model, "decision_function") else None
    if output is None:
        output = model.predict(probe)
    return float(np.asarray(output).reshape(-1)[0]) - model.learning_rate * tree_sum


def _decision_tree(model: Any) -> _Ensemble:
    if not hasattr(model, "tree_"):
        raise ExplainerError("the decision tree is not fitted")
    if model.tree_.n_outputs != 1:
        raise ExplainerError("only single-output decision trees are supported")
    n_columns = int(model.n_features_in_)
    if isinstance(model, DecisionTreeClassifier):
        _require_zero_one_classes(model)
        return _Ensemble([_sklearn_tree(model.tree_, 1)], 1.0, 0.0, n_columns, "probability")
    return _Ensemble([_sklearn_tree(model.tree_, 0)], 1.0, 0.0, n_columns, "raw")


def _forest(model: Any) -> _Ensemble:
    """A forest of classifiers: ``predict_proba`` averages its trees' class-1 fractions."""
    if not hasattr(model, "estimators_"):
        raise ExplainerError(f"the {type(model).__name__} is not fitted")
    _require_zero_one_classes(model)
    trees = [_sklearn_tree(estimator.tree_, 1) for estimator in model.estimators_]
    return _Ensemble(trees, 1.0 / len(trees), 0.0, int(model.n_features_in_), "probability")


def _hist_gradient_boosting(model: Any) -> _Ensemble:
    """A binary HistGradientBoostingClassifier: baseline plus the leaves of every iteration."""
    if not hasattr(model, "_predictors"):
        raise ExplainerError("the histogram gradient-boosting model is not fitted")
    if model.n_trees_per_iteration_ != 1 or len(model.classes_) != 2:
        raise ExplainerError("only binary histogram gradient-boosting classifiers are supported")
    if model.loss != "log_loss":
        raise ExplainerError(f"loss {model.loss!r} has no log-odds raw output")
    columns, categories = _hist_columns(model)
    known = model._bin_mapper.make_known_categories_bitsets() if categories else None
    trees = [
        _hist_tree(predictor, columns, categories, known)
        for iteration in model._predictors
        for predictor in iteration
    ]
    baseline = float(np.asarray(model._baseline_prediction).reshape(-1)[0])
    n_columns = int(model.n_features_in_)
    return _Ensemble(trees, 1.0, baseline, n_columns, "log_odds", False, categories)


def _hist_columns(model: Any) -> tuple[IntArray, dict[int, FloatArray]]:
    """The design-matrix column of each of the predictors' features, and the known values
    of every categorical column.

    With categorical features the model puts its input through a ColumnTransformer: an
    OrdinalEncoder (category -> code, anything else -> NaN) on the categorical columns,
    placed first, and the numeric columns as they are.
    """
    n_columns = int(model.n_features_in_)
    preprocessor = getattr(model, "_preprocessor", None)
    if preprocessor is None:
        return np.arange(n_columns, dtype=np.intp), {}
    columns = np.full(n_columns, -1, dtype=np.intp)
    categories: dict[int, FloatArray] = {}
    for name, transformer, selected in preprocessor.transformers_:
        chosen = np.zeros(n_columns, dtype=bool)
        chosen[selected] = True
        inputs = np.flatnonzero(chosen)
        outputs = np.arange(n_columns)[preprocessor.output_indices_[name]]
        if outputs.size != inputs.size:
            raise ExplainerError("cannot map HistGradientBoosting's columns to the input")
        columns[outputs] = inputs
        if name == "encoder" and inputs.size:
            categories.update(_known_categories(transformer, inputs))
    if np.any(columns < 0):
        raise ExplainerError("cannot map HistGradientBoosting's columns to the input")
    return columns, categories


def _known_categories(encoder: Any, inputs: IntArray) -> dict[int, FloatArray]:
    """Each encoded column's known values, whose positions are the codes the trees split on."""
    if not (
        isinstance(encoder, OrdinalEncoder)
        and encoder.handle_unknown == "use_encoded_value"
        and math.isnan(encoder.unknown_value)
        and encoder.max_categories is None
        and encoder.min_frequency is None
    ):
        raise ExplainerError("HistGradientBoosting encodes its categories in an unknown way")
    known: dict[int, FloatArray] = {}
    for column, values in zip(inputs.tolist(), encoder.categories_, strict=True):
        values = np.asarray(values)
        if values.dtype.kind not in "biuf":
            raise ExplainerError(
                f"HistGradientBoosting column {column} was fitted on non-numeric categories; "
                "ordinal-encode them to numbers before it"
            )
        values = values[~np.isnan(values)].astype(np.float64)
        if np.any(np.diff(values) <= 0):
            raise ExplainerError(f"HistGradientBoosting column {column}: unsorted categories")
        known[column] = values
    return known


def _hist_tree(
    predictor: Any,
    columns: IntArray,
    categories: dict[int, FloatArray],
    known: tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32]] | None,
) -> _Tree:
    """A HistGradientBoosting ``TreePredictor``, routed as its ``_predict_from_raw_data``."""
    nodes = predictor.nodes
    leaf = nodes["is_leaf"].astype(bool)
    count = nodes["count"].astype(np.float64)
    feature = np.where(leaf, -2, columns[nodes["feature_idx"]])
    categorical: dict[int, tuple[BoolArray, BoolArray]] = {}
    for node in np.flatnonzero(~leaf & nodes["is_categorical"].astype(bool)).tolist():
        if known is None:
            raise ExplainerError("a categorical split on a column not known as categorical")
        n_codes = categories[int(feature[node])].size
        categorical[node] = _category_split(predictor, known, nodes[node], n_codes)
    return _Tree(
        left=np.where(leaf, -1, nodes["left"].astype(np.intp)),
        right=np.where(leaf, -1, nodes["right"].astype(np.intp)),
        feature=feature.astype(np.intp),
        threshold=nodes["num_threshold"].astype(np.float64),
        nan_left=nodes["missing_go_to_left"].astype(bool),
        value=nodes["value"].astype(np.float64),
        cover=count,
        count=count,
        categorical=categorical,
    )


def _category_split(
    predictor: Any,
    known: tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32]],
    node: Any,
    n_codes: int,
) -> tuple[BoolArray, BoolArray]:
    """The codes a categorical split sends left and right: left if in its bitset, right if
    a known category, otherwise (an unknown category) where missing values go."""
    raw_left = predictor.raw_left_cat_bitsets
    if node["bitset_idx"] >= len(raw_left):
        raise ExplainerError("a categorical split has no bitset")
    known_bitsets, f_idx_map = known
    codes = np.arange(n_codes)

    def member(bitset: npt.NDArray[np.uint32]) -> BoolArray:
        return ((bitset[codes // 32] >> (codes % 32).astype(np.uint32)) & 1).astype(bool)

    in_left = member(raw_left[node["bitset_idx"]])
    is_known = member(known_bitsets[f_idx_map[node["feature_idx"]]])
    goes_left = in_left | (~is_known & bool(node["missing_go_to_left"]))
    return goes_left, ~goes_left


_FAMILIES: tuple[tuple[tuple[type, ...], Callable[[Any], _Ensemble]], ...] = (
    ((GradientBoostingClassifier, GradientBoostingRegressor), _gradient_boosting),
    ((HistGradientBoostingClassifier,), _hist_gradient_boosting),
    ((RandomForestClassifier, ExtraTreesClassifier), _forest),
    ((DecisionTreeClassifier, DecisionTreeRegressor), _decision_tree),
)

TREE_MODELS: tuple[type, ...] = tuple(kind for kinds, _ in _FAMILIES for kind in kinds)
"""The estimator classes :class:`TreeShapExplainer` explains (subclasses included)."""


def _unpack(model: Any) -> _Ensemble:
    for kinds, read in _FAMILIES:
        if isinstance(model, kinds):
            return read(model)
    raise ExplainerError(f"TreeSHAP does not support {type(model).__name__}")


def _library_output(model: Any, space: OutputSpace, X: FloatArray) -> FloatArray:
    """The model's own output in ``space``, computed by the library."""
    if space == "probability":
        output = np.asarray(model.predict_proba(X))[:, 1]
    elif space == "log_odds":
        output = model.decision_function(X)
    else:
        output = model.predict(X)
    return np.asarray(output, dtype=np.float64).reshape(-1)


# Compiling and evaluating the leaves.


def _leaves(tree: _Tree, scale: float) -> Iterator[_Leaf]:
    """Every leaf with a non-zero value, with its path conditions merged per feature."""
    stack: list[tuple[int, dict[int, _Condition]]] = [(0, {})]
    while stack:
        node, path = stack.pop()
        if tree.left[node] < 0:
            value = scale * float(tree.value[node])
            if value != 0.0:
                yield _Leaf.from_path(path, value)
            continue
        j = int(tree.feature[node])
        lo, hi, ratio, nan_ok, codes = path.get(j, _UNCONSTRAINED)
        to_left = bool(tree.nan_left[node])
        t = float(tree.threshold[node])
        split = tree.categorical.get(node)
        for child, goes_left in ((int(tree.left[node]), True), (int(tree.right[node]), False)):
            child_ratio = ratio * tree.cover_ratio(child, node)
            child_nan = nan_ok and to_left == goes_left
            if split is not None:
                side = split[0] if goes_left else split[1]
                allowed = side if codes is None else codes & side
                condition: _Condition = (lo, hi, child_ratio, child_nan, allowed)
            elif goes_left:
                condition = (lo, min(hi, t), child_ratio, child_nan, None)
            else:
                condition = (t if math.isnan(lo) else max(lo, t), hi, child_ratio, child_nan, None)
            stack.append((child, {**path, j: condition}))


def _product_game_shapley(g: FloatArray, r: FloatArray, value: FloatArray) -> FloatArray:
    """Shapley values of the leaf games ``v(S) = value · Π_{S} g_j · Π_{F∖S} r_j``.

    ``g`` is (..., L, m) with entries 0 or 1 (is the row inside the path interval), ``r`` is
    (L, m) and ``value`` (L,). For feature ``i`` the value is
    ``value·(g_i − r_i)·Σ_s w(s)·e_s`` where ``e_s`` is the coefficient of ``t^s`` in
    ``Π_{j≠i} (r_j + g_j t)`` and ``w(s) = s!(m−s−1)!/m!``: the full product is built once
    and ``(r_i + g_i t)`` divided out (from the top, which is stable because ``0 ≤ r_i ≤ 1``).
    """
    m = r.shape[1]
    weights = [math.factorial(s) * math.factorial(m - s - 1) / math.factorial(m) for s in range(m)]
    coef: list[FloatArray] = [np.ones(g.shape[:-1])] + [np.zeros(g.shape[:-1])] * m
    for j in range(m):
        r_j, g_j = r[:, j], g[..., j]
        for k in range(j + 1, 0, -1):
            coef[k] = coef[k] * r_j + coef[k - 1] * g_j
        coef[0] = coef[0] * r_j
    phi = np.empty(g.shape)
    for i in range(m):
        r_i, g_i = r[:, i], g[..., i]
        # g_i = 1: divide the product by (t + r_i).
        quotient = coef[m]
        inside = weights[m - 1] * quotient
        for k in range(m - 1, 0, -1):
            quotient = coef[k] - r_i * quotient
            inside = inside + weights[k - 1] * quotient
        # g_i = 0: divide the product by r_i (the term vanishes anyway when r_i = 0).
        outside = weights[0] * coef[0]
        for k in range(1, m):
            outside = outside + weights[k] * coef[k]
        outside = np.divide(outside, r_i, out=np.zeros_like(outside), where=r_i > 0)
        phi[..., i] = value * (g_i - r_i) * np.where(g_i > 0, inside, outside)
    return phi


class _Scattering:
    """Adds per-slot values of every row into per-column sums, in an order fixed per row."""

    def __init__(self) -> None:
        self._index: IntArray = np.empty(0, dtype=np.intp)

    def _scatter(self, columns: IntArray, phi: FloatArray, width: int) -> FloatArray:
        """Sum ``phi`` (n, ..., k) into (n, width) by ``columns`` (k·...,), in a fixed order.

        ``bincount`` adds the terms of each row in the same order whatever the batch, so an
        event's explanation does not depend on the events it was batched with.
        """
        n = phi.shape[0]
        per_row = columns.size
        if self._index.size < n * per_row:  # row-major, so fewer rows use a prefix
            self._index = (np.arange(n, dtype=np.intp)[:, None] * width + columns).reshape(-1)
        index = self._index[: n * per_row]
        summed = np.bincount(index, weights=phi.reshape(-1), minlength=n * width)
        return np.asarray(summed, dtype=np.float64).reshape(n, width)


class _LeafGroup(_Scattering):
    """Leaves whose paths hold the same number ``m`` of distinct features, laid out flat."""

    def __init__(self, leaves: list[_Leaf], n_columns: int) -> None:
        super().__init__()
        self.m = len(leaves[0].features)
        self.n_leaves = len(leaves)
        self.n_columns = n_columns
        self.feature = np.array([leaf.features for leaf in leaves], dtype=np.intp).reshape(-1)
        self.lo = np.array([leaf.lo for leaf in leaves], dtype=np.float64).reshape(-1)
        self.hi = np.array([leaf.hi for leaf in leaves], dtype=np.float64).reshape(-1)
        self.nan_ok = np.array([leaf.nan_ok for leaf in leaves], dtype=bool).reshape(-1)
        self.ratio = np.array([leaf.ratio for leaf in leaves], dtype=np.float64)
        self.value = np.array([leaf.value for leaf in leaves], dtype=np.float64)
        # Categorical conditions: their slots in the flat layout and, concatenated, the
        # allowed-code masks, so a row's code c in slot k is looked up at offset[k] + c.
        codes = [allowed for leaf in leaves for allowed in leaf.codes]
        masks = [allowed for allowed in codes if allowed is not None]
        self.category_slot = np.array(
            [k for k, allowed in enumerate(codes) if allowed is not None], dtype=np.intp
        )
        self.category_offset = np.cumsum([0] + [mask.size for mask in masks[:-1]], dtype=np.intp)
        self.category_allowed = np.concatenate(masks) if masks else np.zeros(0, dtype=bool)

    @property
    def size(self) -> int:
        """Number of (leaf, feature) conditions: the work per row."""
        return int(self.feature.size)

    def inside(self, X: FloatArray, has_nan: bool) -> BoolArray:
        """(n, L, m): does each row satisfy each path condition, routed as the model does."""
        x = X[:, self.feature]
        inside: BoolArray = (x <= self.hi) & ~(x <= self.lo)
        if self.category_slot.size:
            code = x[:, self.category_slot]
            code = np.where(np.isnan(code), 0.0, code).astype(np.intp)  # NaN: overridden below
            inside[:, self.category_slot] = self.category_allowed[code + self.category_offset]
        if has_nan:
            inside = np.where(np.isnan(x), self.nan_ok, inside)
        return inside.reshape(X.shape[0], self.n_leaves, self.m)

    def raw(self, X: FloatArray, has_nan: bool) -> FloatArray:
        """Sum of the values of the leaves each row reaches."""
        reached = self.inside(X, has_nan).all(axis=2)
        return row_sums(reached * self.value)


class _TabulatedGroup(_LeafGroup):
    """Short paths: the Shapley values of all 2^m in/out patterns are computed once.

    A row's pattern is the bit mask of the conditions it satisfies; one table row per
    (leaf, pattern) holds the m Shapley values and, last, the leaf value if the row reaches
    the leaf (all bits set), so one lookup yields both the contributions and the output.
    """

    def __init__(self, leaves: list[_Leaf], n_columns: int) -> None:
        super().__init__(leaves, n_columns)
        m, n_patterns = self.m, 1 << self.m
        patterns = (np.arange(n_patterns)[:, None] >> np.arange(m)) & 1
        g = np.broadcast_to(patterns[:, None, :], (n_patterns, self.n_leaves, m))
        phi = _product_game_shapley(g.astype(np.float64), self.ratio, self.value)
        table = np.zeros((self.n_leaves, n_patterns, m + 1))
        table[:, :, :m] = phi.transpose(1, 0, 2)
        table[:, -1, m] = self.value
        self.table = table.reshape(self.n_leaves * n_patterns, m + 1)
        self.leaf_row = np.arange(self.n_leaves, dtype=np.intp) * n_patterns
        features = self.feature.reshape(self.n_leaves, m)
        self.columns = np.c_[features, np.full(self.n_leaves, n_columns)].reshape(-1)

    def explain(self, X: FloatArray, has_nan: bool, out: FloatArray) -> FloatArray:
        bits = self.inside(X, has_nan).view(np.uint8)
        patterns = bits[:, :, 0].copy()
        for slot in range(1, self.m):
            patterns |= bits[:, :, slot] << slot
        looked_up = self.table.take(patterns + self.leaf_row, axis=0)
        summed = self._scatter(self.columns, looked_up, self.n_columns + 1)
        out += summed[:, : self.n_columns]
        return summed[:, self.n_columns]


class _DynamicGroup(_LeafGroup):
    """Long paths: the polynomial programme evaluated per row."""

    def explain(self, X: FloatArray, has_nan: bool, out: FloatArray) -> FloatArray:
        inside = self.inside(X, has_nan)
        phi = _product_game_shapley(inside.astype(np.float64), self.ratio, self.value)
        out += self._scatter(self.feature, phi, self.n_columns)
        return row_sums(inside.all(axis=2) * self.value)


def _leaf_groups(
    leaves: list[_Leaf], n_columns: int, max_table_features: int
) -> list[_TabulatedGroup | _DynamicGroup]:
    """The leaves that have path conditions, grouped by path length; a group is tabulated
    when its paths are at most ``max_table_features`` long."""
    by_size: dict[int, list[_Leaf]] = {}
    for leaf in leaves:
        if leaf.features:
            by_size.setdefault(len(leaf.features), []).append(leaf)
    return [
        (_TabulatedGroup if m <= max_table_features else _DynamicGroup)(group, n_columns)
        for m, group in sorted(by_size.items())
    ]


@dataclass(frozen=True)
class _TreeCells:
    """One tree compiled whole: per cell, the Shapley values of the tree's features and the
    value of the leaf reached (see the module doc).

    A value ``x`` of ``features[k]`` is in interval ``i`` when ``i`` of the feature's
    thresholds lie below it (``x > t``), in interval ``len(thresholds[k]) + 1`` when
    missing; the cell is ``Σ_k interval_k · stride_k``, with
    ``stride_k = Π_{l<k} (len(thresholds[l]) + 2)``.
    """

    features: tuple[int, ...]
    """The columns the tree splits on, ascending."""
    thresholds: tuple[FloatArray, ...]
    """Each feature's distinct thresholds, ascending."""
    strides: tuple[int, ...]
    """Each feature's stride in the cell number; the cell count is the last stride times
    the last feature's interval count."""
    phi: FloatArray
    """(cells, len(features)): the Shapley values within this tree of every cell."""
    value: FloatArray
    """(cells,): the value of the leaf that a row of the cell reaches (0 if none)."""


def _tree_cells(
    tree: _Tree, leaves: list[_Leaf], n_columns: int, max_cells: int, max_table_features: int
) -> _TreeCells | None:
    """``tree`` (whose compiled ``leaves`` are given) compiled whole, or None when it has
    more than ``max_cells`` cells or :data:`_TREE_THRESHOLDS` thresholds, or a categorical
    split (a set of codes is no interval)."""
    internal = np.flatnonzero(tree.left >= 0)
    if internal.size == 0 or tree.categorical:
        return None
    split_on = tree.feature[internal]
    features = sorted(set(split_on.tolist()))
    thresholds = [np.unique(tree.threshold[internal][split_on == j]) for j in features]
    sizes = [t.size + 2 for t in thresholds]  # intervals: below each threshold, above all, missing
    cells = math.prod(sizes)
    if cells > max_cells or sum(t.size for t in thresholds) > _TREE_THRESHOLDS:
        return None
    strides = tuple(math.prod(sizes[:k]) for k in range(len(sizes)))
    # One point per cell: a threshold lies in the interval it closes, +inf in the last
    # interval (an interval above a threshold of +inf is empty, so never looked up), NaN is
    # missing. Columns the tree does not split on do not matter.
    X = np.zeros((cells, n_columns))
    cell = np.arange(cells)
    for j, t, stride, size in zip(features, thresholds, strides, sizes, strict=True):
        X[:, j] = np.concatenate([t, [np.inf, np.nan]])[(cell // stride) % size]
    phi = np.zeros((cells, n_columns))
    value = np.zeros(cells)
    for group in _leaf_groups(leaves, n_columns, max_table_features):
        value += group.explain(X, True, phi)
    return _TreeCells(tuple(features), tuple(thresholds), strides, phi[:, features], value)


_PACK: Final = np.uint64(0x0102040810204080)
"""Eight bytes that are each 0 or 1, read as one uint64 and multiplied by this, hold them as
eight bits in their top byte (every bit lands on its own place, so nothing carries)."""


def _pack(flags: BoolArray) -> npt.NDArray[np.uint64]:
    """(n, 8·k) C-contiguous booleans as (n, k) numbers below 256, one per run of eight."""
    return (flags.view(np.uint64) * _PACK) >> np.uint64(56)


class _CellGroup(_Scattering):
    """The trees compiled whole, evaluated together.

    Each tree's thresholds are padded to eight comparisons (``x > +inf`` is never true); a
    row's eight outcomes for a tree are packed into one byte, and a table per tree turns the
    byte into the row's cell (``Σ interval · stride``). Then one table row per tree holds the
    cell's Shapley values and leaf value.
    """

    def __init__(self, trees: list[_TreeCells], n_columns: int) -> None:
        super().__init__()
        self.n_columns = n_columns
        self.n_trees = n_trees = len(trees)
        width = max(len(tree.features) for tree in trees) + 1  # Shapley values, leaf value
        columns = np.zeros((n_trees, _TREE_THRESHOLDS), dtype=np.intp)
        thresholds = np.full((n_trees, _TREE_THRESHOLDS), np.inf)
        weights = np.zeros((n_trees, _TREE_THRESHOLDS), dtype=np.intp)
        nan_columns: list[int] = []
        nan_weights: list[int] = []
        nan_starts: list[int] = []
        tables: list[FloatArray] = []
        # A tree with fewer features pads its slots with column n_columns + 1, dropped at the
        # end; the leaf value goes to column n_columns.
        slots = np.full((n_trees, width), n_columns + 1, dtype=np.intp)
        for k, tree in enumerate(trees):
            nan_starts.append(len(nan_columns))
            used = 0
            for j, t, stride in zip(tree.features, tree.thresholds, tree.strides, strict=True):
                columns[k, used : used + t.size] = j
                thresholds[k, used : used + t.size] = t
                weights[k, used : used + t.size] = stride
                used += t.size
                nan_columns.append(j)
                nan_weights.append(stride * (t.size + 1))
            table = np.zeros((tree.value.size, width))
            table[:, : len(tree.features)] = tree.phi
            table[:, -1] = tree.value
            tables.append(table)
            slots[k, : len(tree.features)] = tree.features
            slots[k, -1] = n_columns
        first_row = np.cumsum([0] + [table.shape[0] for table in tables[:-1]], dtype=np.intp)
        # byte_cell[k, byte] = first table row of tree k + the cell whose outcomes pack to byte.
        outcomes = (np.arange(256)[:, None] >> np.arange(_TREE_THRESHOLDS)) & 1
        byte = _pack(np.ascontiguousarray(outcomes, dtype=bool)).reshape(-1)
        self.byte_cell = np.zeros((n_trees, 256), dtype=np.intp)
        self.byte_cell[:, byte] = (outcomes @ weights.T).T + first_row[:, None]
        self.byte_offset = np.arange(n_trees, dtype=np.uint64) * np.uint64(256)
        self.columns = columns.reshape(-1)
        self.thresholds = thresholds.reshape(-1)
        self.nan_columns = np.array(nan_columns, dtype=np.intp)
        self.nan_weights = np.array(nan_weights, dtype=np.intp)
        self.nan_starts = np.array(nan_starts, dtype=np.intp)
        self.table = np.concatenate(tables)
        self.value = np.ascontiguousarray(self.table[:, -1])
        self.slots = slots.reshape(-1)

    @property
    def size(self) -> int:
        """Comparisons and looked-up values: the work per row."""
        return int(self.columns.size + self.slots.size)

    def cells(self, X: FloatArray, has_nan: bool) -> IntArray:
        """(n, trees): each row's table row in every tree."""
        above = X.take(self.columns, axis=1) > self.thresholds  # NaN is above nothing
        cells: IntArray = self.byte_cell.reshape(-1).take(_pack(above) + self.byte_offset)
        if has_nan:  # a missing value is in its feature's last interval
            missing = np.isnan(X[:, self.nan_columns]) * self.nan_weights
            cells += np.add.reduceat(missing, self.nan_starts, axis=1)
        return cells

    def raw(self, X: FloatArray, has_nan: bool) -> FloatArray:
        """Sum of the values of the leaves each row reaches."""
        return row_sums(self.value.take(self.cells(X, has_nan)))

    def explain(self, X: FloatArray, has_nan: bool, out: FloatArray) -> FloatArray:
        looked_up = self.table.take(self.cells(X, has_nan), axis=0)  # (n, trees, width)
        summed = self._scatter(self.slots, looked_up, self.n_columns + 2)
        out += summed[:, : self.n_columns]
        return summed[:, self.n_columns]


def _encode_categories(X: FloatArray, categories: dict[int, FloatArray]) -> FloatArray:
    """A copy of ``X`` with each categorical column replaced by its codes, NaN if unknown.

    As the model's OrdinalEncoder: a value's code is its position among the known values,
    any other value is missing; an infinite value is refused, as the encoder refuses it.
    """
    X = X.copy()
    for column, known in categories.items():
        x = X[:, column]
        if np.isinf(x).any():
            raise ExplainerError(f"categorical column {column} holds an infinite value")
        position = np.minimum(np.searchsorted(known, x), max(known.size - 1, 0))
        matched = known[position] == x if known.size else np.zeros(x.shape, dtype=bool)
        X[:, column] = np.where(matched, position, np.nan)
    return X


class TreeShapExplainer:
    """Exact path-dependent TreeSHAP of a scikit-learn tree model, in its output space.

    Explains a binary GradientBoostingClassifier or HistGradientBoostingClassifier
    (``output_space`` "log_odds"), a DecisionTreeClassifier, RandomForestClassifier or
    ExtraTreesClassifier with classes 0 and 1 ("probability" of class 1), and a
    GradientBoostingRegressor or single-output DecisionTreeRegressor ("raw"); anything else
    is refused with an ExplainerError.

    ``max_tree_cells`` bounds the cells of a tree compiled whole (one table row of its
    Shapley values per cell; 0 compiles none). The leaves of every other tree are compiled
    one by one: ``max_table_features`` bounds the path length (distinct features) for which
    every in/out pattern is tabulated at construction (2^m·(m+1) floats per leaf); longer
    paths use the per-row programme. All three are exact; the whole-tree table is the
    fastest. For scikit-learn's trees, values beyond the float32 range are refused, as
    scikit-learn refuses them.
    """

    method = "tree_shap"

    def __init__(
        self, model: Any, *, max_table_features: int = 6, max_tree_cells: int = 4096
    ) -> None:
        if not 0 <= max_table_features <= 8:
            raise ExplainerError("max_table_features must be between 0 and 8")
        if max_tree_cells < 0:
            raise ExplainerError("max_tree_cells must not be negative")
        ensemble = _unpack(model)
        self.n_columns = ensemble.n_columns
        self.output_space: OutputSpace = ensemble.output_space
        """What ``raw_output`` and the attributions are in: see :data:`OutputSpace`."""
        self._float32 = ensemble.float32
        self._categories = ensemble.categories
        per_tree = [list(_leaves(tree, ensemble.scale)) for tree in ensemble.trees]
        leaves = [leaf for tree_leaves in per_tree for leaf in tree_leaves]
        constant = [ensemble.offset] + [leaf.value for leaf in leaves if not leaf.features]
        self._offset = math.fsum(constant)
        self.base_value = math.fsum(
            constant + [leaf.value * math.prod(leaf.ratio) for leaf in leaves if leaf.features]
        )
        whole: list[_TreeCells] = []
        rest: list[_Leaf] = []
        for tree, tree_leaves in zip(ensemble.trees, per_tree, strict=True):
            cells = _tree_cells(
                tree, tree_leaves, self.n_columns, max_tree_cells, max_table_features
            )
            if cells is None:
                rest += tree_leaves
            else:
                whole.append(cells)
        self._groups: list[_CellGroup | _TabulatedGroup | _DynamicGroup] = (
            [_CellGroup(whole, self.n_columns)] if whole else []
        )
        self._groups += _leaf_groups(rest, self.n_columns, max_table_features)
        work_per_row = sum(group.size for group in self._groups)
        self._chunk_rows = max(1, _CHUNK_ELEMENTS // max(work_per_row, 1))
        self._verify(model)

    def method_counts(self) -> dict[str, int]:
        """How the model was compiled: trees compiled ``"whole"``, and leaves of the other
        trees ``"tabulated"`` or evaluated by the per-row programme (``"dynamic"``); methods
        not used are left out."""
        counts: dict[str, int] = {}
        for group in self._groups:
            if isinstance(group, _CellGroup):
                counts["whole"] = counts.get("whole", 0) + group.n_trees
            else:
                kind = "tabulated" if isinstance(group, _TabulatedGroup) else "dynamic"
                counts[kind] = counts.get(kind, 0) + group.n_leaves
        return counts

    def _verify(self, model: Any) -> None:
        """Guard against a scikit-learn whose trees no longer mean what we compiled."""
        probe = np.zeros((1, self.n_columns))
        expected = float(_library_output(model, self.output_space, probe)[0])
        actual = float(self.raw_output(probe)[0])
        if not math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-9):
            raise ExplainerError(
                f"compiled trees disagree with the model: {actual!r} != {expected!r}"
            )

    def _prepare(self, X: npt.ArrayLike) -> tuple[FloatArray, bool]:
        """``X`` as the trees compare it, held in float64, and whether it holds a NaN.

        Rounded to float32 for scikit-learn's trees; categorical columns replaced by their
        codes for HistGradientBoosting.
        """
        X = as_design_matrix(X, self.n_columns)
        if self._float32:
            with np.errstate(over="ignore"):  # out-of-range values are refused just below
                X32 = X.astype(np.float32).astype(np.float64)
            if np.isfinite(X32).all():
                return X32, False
            if np.isinf(X32).any():
                raise ExplainerError("design matrix holds values outside the float32 range")
            return X32, True
        if self._categories:
            X = _encode_categories(X, self._categories)
        return X, bool(np.isnan(X).any())

    def raw_output(self, X: npt.ArrayLike) -> FloatArray:
        """The model's output in :attr:`output_space`: log-odds, probability of class 1, or
        a regressor's prediction."""
        X, has_nan = self._prepare(X)
        raw = np.full(X.shape[0], self._offset)
        for start in range(0, X.shape[0], self._chunk_rows):
            rows = slice(start, start + self._chunk_rows)
            for group in self._groups:
                raw[rows] += group.raw(X[rows], has_nan)
        return raw

    def explain(self, X: npt.ArrayLike) -> ExplanationBatch:
        """Exact Shapley values of the path-dependent value function for every row."""
        X, has_nan = self._prepare(X)
        contributions = np.zeros(X.shape)
        raw = np.full(X.shape[0], self._offset)
        for start in range(0, X.shape[0], self._chunk_rows):
            rows = slice(start, start + self._chunk_rows)
            for group in self._groups:
                raw[rows] += group.explain(X[rows], has_nan, contributions[rows])
        return ExplanationBatch(
            base_value=self.base_value, contributions=contributions, raw=raw, method=self.method
        )
