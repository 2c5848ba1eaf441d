"""Exact path-dependent TreeSHAP for scikit-learn tree models, vectorised over a batch.

The path-dependent value of a coalition ``S`` (as in the ``tree_path_dependent`` TreeSHAP of
Lundberg et al., with node cover ``weighted_n_node_samples``) follows ``x`` at splits on
features in ``S`` and averages both children by cover elsewhere. Summed over leaves it is

    v(S) = Σ_leaves value · Π_{j ∈ F ∩ S} 1[x_j ∈ (lo_j, hi_j]] · Π_{j ∈ F ∖ S} r_j

where ``F`` are the distinct features on the leaf's path, ``(lo_j, hi_j]`` the interval the
path imposes on feature ``j`` and ``r_j`` the product of the cover ratios of its splits on
``j``. Each leaf is a product game over ``F`` alone, so its Shapley values are exact when
computed over ``F`` only; the batch Shapley values are their sum. Instead of walking trees row
by row, every leaf is compiled once: for short paths the Shapley values of all ``2^|F|``
in/out patterns are tabulated and a row only looks up its pattern; long paths are evaluated
per row with a polynomial (elementary symmetric) dynamic programme.

scikit-learn compares ``float32(x) <= threshold``, and so do we: every row reaches the same
leaves as in the model, and the raw output equals its ``decision_function`` (or ``predict``)
up to the order of summation. A NaN follows the split's ``missing_go_to_left``, as in
scikit-learn's trees.

>>> import numpy as np
>>> from sklearn.tree import DecisionTreeRegressor
>>> X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
>>> tree = DecisionTreeRegressor().fit(X, [0.0, 0.0, 0.0, 4.0])
>>> batch = TreeShapExplainer(tree).explain(X[3:])
>>> batch.base_value, batch.contributions.tolist(), batch.raw.tolist()
(1.0, [[1.5, 1.5]], [4.0])
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor
from sklearn.tree import DecisionTreeRegressor

from models.explain.base import (
    ExplainerError,
    ExplanationBatch,
    FloatArray,
    as_design_matrix,
    row_sums,
)

IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]
_Condition = tuple[float, float, float, bool]
"""What a path imposes on one feature: lo, hi (x in (lo, hi]), cover ratio, NaN allowed."""

_CHUNK_ELEMENTS = 1 << 17
"""Rows are processed in chunks of about this many (row, path condition) pairs: cache-sized."""


@dataclass(frozen=True)
class _Leaf:
    """A leaf compiled to its path conditions, one per distinct feature on the path."""

    features: tuple[int, ...]
    lo: tuple[float, ...]
    hi: tuple[float, ...]
    ratio: tuple[float, ...]
    nan_ok: tuple[bool, ...]
    value: float


def _unpack(model: Any) -> tuple[list[Any], float, float, int]:
    """Trees, the scale applied to each tree's output, the constant raw offset, n_columns."""
    if isinstance(model, GradientBoostingClassifier | GradientBoostingRegressor):
        if not hasattr(model, "estimators_"):
            raise ExplainerError("the gradient-boosting model is not fitted")
        if isinstance(model, GradientBoostingClassifier):
            if model.estimators_.shape[1] != 1:
                raise ExplainerError("only binary gradient-boosting classifiers are supported")
            if model.loss != "log_loss":
                raise ExplainerError(f"loss {model.loss!r} has no log-odds raw output")
        trees = [estimator.tree_ for estimator in model.estimators_[:, 0]]
        offset = _init_raw(model)
        return trees, float(model.learning_rate), offset, int(model.n_features_in_)
    if isinstance(model, DecisionTreeRegressor):
        if not hasattr(model, "tree_"):
            raise ExplainerError("the decision tree is not fitted")
        if model.tree_.n_outputs != 1:
            raise ExplainerError("only single-output decision trees are supported")
        return [model.tree_], 1.0, 0.0, int(model.n_features_in_)
    raise ExplainerError(f"TreeSHAP does not support {type(model).__name__}")


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


def _cover_ratio(tree: Any, child: int, parent: int) -> float:
    cover = tree.weighted_n_node_samples
    if cover[parent] > 0:
        return float(cover[child] / cover[parent])
    # A zero-weight node (possible with subsampling): fall back to sample counts.
    count = tree.n_node_samples
    return float(count[child] / count[parent])


def _leaves(tree: Any, scale: float) -> Iterator[_Leaf]:
    """Every leaf with a non-zero value, with its path conditions merged per feature."""
    left, right = tree.children_left, tree.children_right
    feature, threshold = tree.feature, tree.threshold
    values = tree.value[:, 0, 0]
    nan_left = getattr(tree, "missing_go_to_left", np.zeros(tree.node_count, dtype=bool))
    stack: list[tuple[int, dict[int, _Condition]]] = [(0, {})]
    while stack:
        node, path = stack.pop()
        if left[node] == right[node]:  # a leaf: both children are TREE_LEAF
            value = scale * float(values[node])
            if value != 0.0:
                items = sorted(path.items())
                yield _Leaf(
                    features=tuple(j for j, _ in items),
                    lo=tuple(c[0] for _, c in items),
                    hi=tuple(c[1] for _, c in items),
                    ratio=tuple(c[2] for _, c in items),
                    nan_ok=tuple(c[3] for _, c in items),
                    value=value,
                )
            continue
        j, t = int(feature[node]), float(threshold[node])
        lo, hi, ratio, nan_ok = path.get(j, (-math.inf, math.inf, 1.0, True))
        to_left = bool(nan_left[node])
        for child, goes_left in ((int(left[node]), True), (int(right[node]), False)):
            child_ratio = ratio * _cover_ratio(tree, child, node)
            condition: _Condition = (
                (lo, min(hi, t), child_ratio, nan_ok and to_left)
                if goes_left
                else (max(lo, t), hi, child_ratio, nan_ok and not to_left)
            )
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


class _LeafGroup:
    """Leaves whose paths hold the same number ``m`` of distinct features, laid out flat."""

    def __init__(self, leaves: list[_Leaf], n_columns: int) -> None:
        self.m = len(leaves[0].features)
        self.n_leaves = len(leaves)
        self.n_columns = n_columns
        self.feature = np.array([leaf.features for leaf in leaves], dtype=np.intp).reshape(-1)
        self.lo = np.array([leaf.lo for leaf in leaves], dtype=np.float64).reshape(-1)
        self.hi = np.array([leaf.hi for leaf in leaves], dtype=np.float64).reshape(-1)
        self.nan_ok = np.array([leaf.nan_ok for leaf in leaves], dtype=bool).reshape(-1)
        self.ratio = np.array([leaf.ratio for leaf in leaves], dtype=np.float64)
        self.value = np.array([leaf.value for leaf in leaves], dtype=np.float64)
        self._index: IntArray = np.empty(0, dtype=np.intp)

    @property
    def size(self) -> int:
        """Number of (leaf, feature) conditions: the work per row."""
        return int(self.feature.size)

    def inside(self, X32: FloatArray, has_nan: bool) -> BoolArray:
        """(n, L, m): does each row satisfy each path condition, routed the way sklearn does."""
        x = X32[:, self.feature]
        inside: BoolArray = (x > self.lo) & (x <= self.hi)
        if has_nan:
            inside = np.where(np.isnan(x), self.nan_ok, inside)
        return inside.reshape(X32.shape[0], self.n_leaves, self.m)

    def raw(self, X32: FloatArray, has_nan: bool) -> FloatArray:
        """Sum of the values of the leaves each row reaches."""
        reached = self.inside(X32, has_nan).all(axis=2)
        return row_sums(reached * self.value)

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

    def explain(self, X32: FloatArray, has_nan: bool, out: FloatArray) -> FloatArray:
        bits = self.inside(X32, has_nan).view(np.uint8)
        patterns = bits[:, :, 0].copy()
        for slot in range(1, self.m):
            patterns |= bits[:, :, slot] << slot
        looked_up = self.table.take(patterns + self.leaf_row, axis=0)
        summed = self._scatter(self.columns, looked_up, self.n_columns + 1)
        out += summed[:, : self.n_columns]
        return summed[:, self.n_columns]


class _DynamicGroup(_LeafGroup):
    """Long paths: the polynomial programme evaluated per row."""

    def explain(self, X32: FloatArray, has_nan: bool, out: FloatArray) -> FloatArray:
        inside = self.inside(X32, has_nan)
        phi = _product_game_shapley(inside.astype(np.float64), self.ratio, self.value)
        out += self._scatter(self.feature, phi, self.n_columns)
        return row_sums(inside.all(axis=2) * self.value)


class TreeShapExplainer:
    """Exact path-dependent TreeSHAP of a binary GradientBoostingClassifier (log-odds),
    a GradientBoostingRegressor or a single-output DecisionTreeRegressor.

    ``max_table_features`` bounds the path length (distinct features) for which every
    in/out pattern is tabulated at construction (2^m·(m+1) floats per leaf); longer paths use
    the per-row programme. Both are exact; the table is faster. Values beyond the float32
    range are refused, as scikit-learn refuses them.
    """

    method = "tree_shap"

    def __init__(self, model: Any, *, max_table_features: int = 6) -> None:
        if not 0 <= max_table_features <= 8:
            raise ExplainerError("max_table_features must be between 0 and 8")
        trees, scale, offset, self.n_columns = _unpack(model)
        leaves = [leaf for tree in trees for leaf in _leaves(tree, scale)]
        constant = [offset] + [leaf.value for leaf in leaves if not leaf.features]
        self._offset = math.fsum(constant)
        self.base_value = math.fsum(
            constant + [leaf.value * math.prod(leaf.ratio) for leaf in leaves if leaf.features]
        )
        by_size: dict[int, list[_Leaf]] = {}
        for leaf in leaves:
            if leaf.features:
                by_size.setdefault(len(leaf.features), []).append(leaf)
        self._groups = [
            (_TabulatedGroup if m <= max_table_features else _DynamicGroup)(group, self.n_columns)
            for m, group in sorted(by_size.items())
        ]
        work_per_row = sum(group.size for group in self._groups)
        self._chunk_rows = max(1, _CHUNK_ELEMENTS // max(work_per_row, 1))
        self._verify(model)

    def _verify(self, model: Any) -> None:
        """Guard against a scikit-learn whose trees no longer mean what we compiled."""
        probe = np.zeros((1, self.n_columns))
        output = model.decision_function(probe) if hasattr(model, "decision_function") else None
        expected = float(np.asarray(output if output is not None else model.predict(probe))[0])
        actual = float(self.raw_output(probe)[0])
        if not math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-9):
            raise ExplainerError(
                f"compiled trees disagree with the model: {actual!r} != {expected!r}"
            )

    def _prepare(self, X: npt.ArrayLike) -> tuple[FloatArray, bool]:
        """``X`` rounded to float32 (sklearn's tree input) and held in float64."""
        X = as_design_matrix(X, self.n_columns)
        with np.errstate(over="ignore"):  # out-of-range values are refused just below
            X32 = X.astype(np.float32).astype(np.float64)
        finite = np.isfinite(X32)
        if finite.all():
            return X32, False
        if np.isinf(X32).any():
            raise ExplainerError("design matrix holds values outside the float32 range")
        return X32, True

    def raw_output(self, X: npt.ArrayLike) -> FloatArray:
        """The model's raw output: log-odds for a classifier, the prediction for a regressor."""
        X32, has_nan = self._prepare(X)
        raw = np.full(X32.shape[0], self._offset)
        for start in range(0, X32.shape[0], self._chunk_rows):
            rows = slice(start, start + self._chunk_rows)
            for group in self._groups:
                raw[rows] += group.raw(X32[rows], has_nan)
        return raw

    def explain(self, X: npt.ArrayLike) -> ExplanationBatch:
        """Exact Shapley values of the path-dependent value function for every row."""
        X32, has_nan = self._prepare(X)
        contributions = np.zeros(X32.shape)
        raw = np.full(X32.shape[0], self._offset)
        for start in range(0, X32.shape[0], self._chunk_rows):
            rows = slice(start, start + self._chunk_rows)
            for group in self._groups:
                raw[rows] += group.explain(X32[rows], has_nan, contributions[rows])
        return ExplanationBatch(
            base_value=self.base_value, contributions=contributions, raw=raw, method=self.method
        )
