"""TreeSHAP is exact: it equals brute-force Shapley values of the path-dependent game.

The reference here shares no code with the explainer: it enumerates every coalition of
columns and evaluates the path-dependent value function by walking each tree recursively
(follow the row at a split on a feature in the coalition, otherwise average both children
weighted by cover), then applies the Shapley formula. Each tree is read straight from the
library's arrays and routed as the library's predictor routes a row; the constant offset is
what remains of the library's own output at one probe row.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pytest
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from models.explain import ExplainerError, TreeShapExplainer, explainer_for

TOLERANCE = 1e-9
EXACT = 1e-12

PATHS: dict[str, dict[str, int]] = {
    "whole-trees": {},
    "tabulated": {"max_tree_cells": 0},
    "dynamic": {"max_tree_cells": 0, "max_table_features": 0},
}
"""The explainer's three exact methods: trees compiled whole, leaves tabulated, leaves
evaluated by the polynomial programme (each later one forced by turning off the former)."""


class ReferenceTree(Protocol):
    """One tree as the reference walks it."""

    def leaf_value(self, node: int) -> float | None: ...
    def column(self, node: int) -> int: ...
    def children(self, node: int) -> tuple[int, int]: ...
    def goes_left(self, node: int, x: np.ndarray) -> bool: ...
    def cover(self, node: int) -> float: ...


@dataclass(frozen=True)
class SklearnTree:
    """A scikit-learn ``Tree``, read at column ``output`` of its values (class 1 of a classifier),
    fed rows already rounded to float32."""

    tree: Any
    output: int = 0

    def leaf_value(self, node: int) -> float | None:
        if self.tree.children_left[node] != -1:
            return None
        return float(self.tree.value[node, 0, self.output])

    def column(self, node: int) -> int:
        return int(self.tree.feature[node])

    def children(self, node: int) -> tuple[int, int]:
        return int(self.tree.children_left[node]), int(self.tree.children_right[node])

    def goes_left(self, node: int, x: np.ndarray) -> bool:
        value = x[self.tree.feature[node]]
        if math.isnan(value):
            return bool(self.tree.missing_go_to_left[node])
        return bool(value <= self.tree.threshold[node])

    def cover(self, node: int) -> float:
        return float(self.tree.weighted_n_node_samples[node])


class HistTree:
    """A HistGradientBoosting ``TreePredictor``, fed rows through the model's own
    preprocessor, routed as ``_predict_one_from_raw_data`` does, with cover ``count``."""

    def __init__(self, predictor: Any, model: Any) -> None:
        self.nodes = predictor.nodes
        self.left_bitsets = predictor.raw_left_cat_bitsets
        self.known_bitsets, self.known_row = model._bin_mapper.make_known_categories_bitsets()
        categorical = model.is_categorical_
        if categorical is None:
            self.input_column = np.arange(model.n_features_in_)
        else:  # the preprocessor puts the categorical columns first
            self.input_column = np.r_[np.flatnonzero(categorical), np.flatnonzero(~categorical)]

    def leaf_value(self, node: int) -> float | None:
        return float(self.nodes[node]["value"]) if self.nodes[node]["is_leaf"] else None

    def column(self, node: int) -> int:
        return int(self.input_column[self.nodes[node]["feature_idx"]])

    def children(self, node: int) -> tuple[int, int]:
        return int(self.nodes[node]["left"]), int(self.nodes[node]["right"])

    def goes_left(self, node: int, x: np.ndarray) -> bool:
        record = self.nodes[node]
        value = x[record["feature_idx"]]
        missing_left = bool(record["missing_go_to_left"])
        if math.isnan(value):
            return missing_left
        if not record["is_categorical"]:
            return bool(value <= record["num_threshold"])
        code = int(value)
        if in_bitset(self.left_bitsets[record["bitset_idx"]], code):
            return True
        if in_bitset(self.known_bitsets[self.known_row[record["feature_idx"]]], code):
            return False
        return missing_left

    def cover(self, node: int) -> float:
        return float(self.nodes[node]["count"])


def in_bitset(bitset: np.ndarray, value: int) -> bool:
    return bool((int(bitset[value // 32]) >> (value % 32)) & 1)


def tree_value(
    tree: ReferenceTree, x: np.ndarray, coalition: frozenset[int], node: int = 0
) -> float:
    """Path-dependent expectation of one tree's output given the coalition's values of x."""
    leaf = tree.leaf_value(node)
    if leaf is not None:
        return leaf
    left, right = tree.children(node)
    if tree.column(node) in coalition:
        return tree_value(tree, x, coalition, left if tree.goes_left(node, x) else right)
    return (
        tree.cover(left) * tree_value(tree, x, coalition, left)
        + tree.cover(right) * tree_value(tree, x, coalition, right)
    ) / tree.cover(node)


def library_output(model: Any, X: np.ndarray) -> np.ndarray:
    """What the explainer's raw output must equal: P(class 1), log-odds, or the prediction."""
    if hasattr(model, "predict_proba") and not hasattr(model, "decision_function"):
        return np.asarray(model.predict_proba(X))[:, 1]
    if hasattr(model, "decision_function"):
        return np.ravel(model.decision_function(X))
    return np.ravel(model.predict(X))


@dataclass(frozen=True)
class Game:
    """``offset + scale · Σ_trees tree value``, and how a row is put as the trees read it."""

    trees: list[ReferenceTree]
    scale: float
    offset: float
    encode: Callable[[np.ndarray], np.ndarray]


def float32_rows(X: np.ndarray) -> np.ndarray:
    return X.astype(np.float32).astype(np.float64)


def model_game(model: Any) -> Game:
    """The model's trees, their scale and the constant offset of its output."""
    encode: Callable[[np.ndarray], np.ndarray] = float32_rows
    trees: list[ReferenceTree]
    if isinstance(model, DecisionTreeClassifier):
        trees, scale = [SklearnTree(model.tree_, 1)], 1.0
    elif isinstance(model, DecisionTreeRegressor):
        trees, scale = [SklearnTree(model.tree_)], 1.0
    elif isinstance(model, RandomForestClassifier | ExtraTreesClassifier):
        trees = [SklearnTree(e.tree_, 1) for e in model.estimators_]
        scale = 1.0 / len(trees)
    elif isinstance(model, HistGradientBoostingClassifier):
        trees = [HistTree(p, model) for iteration in model._predictors for p in iteration]
        scale = 1.0
        preprocessor = model._preprocessor
        encode = np.asarray if preprocessor is None else preprocessor.transform
    else:
        trees = [SklearnTree(e.tree_) for e in model.estimators_[:, 0]]
        scale = float(model.learning_rate)
    probe = np.zeros((1, model.n_features_in_))
    x = encode(probe)[0]
    everything = frozenset(range(model.n_features_in_))
    reached = sum(tree_value(t, x, everything) for t in trees)
    offset = float(library_output(model, probe)[0]) - scale * reached
    return Game(trees, scale, offset, encode)


def brute_force_shap(model: Any, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shapley values and the empty-coalition value, by enumerating all 2^M coalitions."""
    game = model_game(model)
    n_features = X.shape[1]
    players = range(n_features)
    phi = np.zeros(X.shape)
    empty = np.zeros(X.shape[0])
    for row, x in enumerate(game.encode(X)):
        values = {}
        for size in range(n_features + 1):
            for members in itertools.combinations(players, size):
                coalition = frozenset(members)
                total = sum(tree_value(tree, x, coalition) for tree in game.trees)
                values[coalition] = game.offset + game.scale * total
        empty[row] = values[frozenset()]
        for i in players:
            for coalition, value in values.items():
                if i in coalition:
                    continue
                s = len(coalition)
                weight = (
                    math.factorial(s)
                    * math.factorial(n_features - s - 1)
                    / math.factorial(n_features)
                )
                phi[row, i] += weight * (values[coalition | {i}] - value)
    return phi, empty


def classification_data(n: int, n_features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features))
    X[:, -1] = rng.integers(0, 2, size=n)  # a one-hot-like column
    logit = X[:, 0] - 0.8 * X[:, 1] * X[:, 2] + X[:, -1] + 0.5 * rng.normal(size=n)
    return X, (logit > 0).astype(int)


@pytest.fixture(scope="module")
def gbc() -> GradientBoostingClassifier:
    X, y = classification_data(400, 5, seed=1)
    return GradientBoostingClassifier(n_estimators=5, max_depth=3, random_state=0).fit(X, y)


@pytest.fixture(scope="module")
def tree() -> DecisionTreeRegressor:
    X, y = classification_data(400, 5, seed=2)
    target = X[:, 0] * X[:, 1] + np.sin(X[:, 2]) + y
    return DecisionTreeRegressor(max_depth=4, random_state=0).fit(X, target)


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    X, _ = classification_data(12, 5, seed=3)
    return X


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("model_name", ["gbc", "tree"])
def test_equals_brute_force_shapley_values(
    model_name: str, path: str, rows: np.ndarray, request: pytest.FixtureRequest
) -> None:
    model = request.getfixturevalue(model_name)
    explainer = TreeShapExplainer(model, **PATHS[path])
    batch = explainer.explain(rows)
    expected, empty = brute_force_shap(model, rows)
    np.testing.assert_allclose(batch.contributions, expected, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(batch.base_value, empty, rtol=0, atol=TOLERANCE)


def test_deep_tree_mixes_tabulated_and_dynamic_paths() -> None:
    X, y = classification_data(600, 6, seed=4)
    model = DecisionTreeRegressor(max_depth=9, random_state=0).fit(X, X[:, 0] * X[:, 1] + y)
    explainer = TreeShapExplainer(model, max_table_features=3)
    rows = X[:4]
    expected, _ = brute_force_shap(model, rows)
    np.testing.assert_allclose(explainer.explain(rows).contributions, expected, atol=TOLERANCE)


def test_subsampled_and_weighted_boosting_uses_weighted_cover() -> None:
    X, y = classification_data(300, 4, seed=5)
    weights = np.random.default_rng(6).uniform(0.2, 3.0, size=len(y))
    model = GradientBoostingClassifier(
        n_estimators=6, max_depth=3, subsample=0.7, random_state=0
    ).fit(X, y, sample_weight=weights)
    rows = X[:6]
    expected, empty = brute_force_shap(model, rows)
    batch = TreeShapExplainer(model).explain(rows)
    np.testing.assert_allclose(batch.contributions, expected, atol=TOLERANCE)
    np.testing.assert_allclose(batch.base_value, empty, atol=TOLERANCE)


def test_regressor_and_zero_init_boosting() -> None:
    X, y = classification_data(300, 4, seed=7)
    rows = X[:5]
    for model in (
        GradientBoostingRegressor(n_estimators=4, max_depth=2, random_state=0).fit(X, X[:, 0]),
        GradientBoostingClassifier(n_estimators=4, max_depth=2, init="zero").fit(X, y),
    ):
        expected, _ = brute_force_shap(model, rows)
        batch = TreeShapExplainer(model).explain(rows)
        np.testing.assert_allclose(batch.contributions, expected, atol=TOLERANCE)


def test_unused_feature_gets_exactly_zero() -> None:
    X, y = classification_data(400, 5, seed=8)
    X[:, 3] = 2.5  # constant: no tree can split on it
    model = GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=0).fit(X, y)
    used = {int(f) for e in model.estimators_[:, 0] for f in e.tree_.feature if f >= 0}
    assert 3 not in used
    X_test, _ = classification_data(200, 5, seed=9)
    contributions = TreeShapExplainer(model).explain(X_test).contributions
    assert np.all(contributions[:, 3] == 0.0)
    assert np.all(np.abs(contributions[:, 0]) > 0)


def test_base_value_is_the_training_mean_for_a_single_tree() -> None:
    X, _ = classification_data(500, 4, seed=10)
    target = X[:, 0] + X[:, 1] ** 2
    model = DecisionTreeRegressor(max_depth=5, random_state=0).fit(X, target)
    assert TreeShapExplainer(model).base_value == pytest.approx(target.mean(), abs=1e-12)


def boundary_rows(model: GradientBoostingClassifier, base: np.ndarray) -> np.ndarray:
    """Rows putting each split's feature just around its threshold, in float64 and float32."""
    rows: list[np.ndarray] = []
    for estimator in model.estimators_[:, 0]:
        t = estimator.tree_
        for node in np.flatnonzero(t.children_left != -1):
            threshold = float(t.threshold[node])
            t32 = np.float32(threshold)
            for value in (
                threshold,
                np.nextafter(threshold, np.inf),
                np.nextafter(threshold, -np.inf),
                float(t32),
                float(np.nextafter(t32, np.float32(np.inf))),
                float(np.nextafter(t32, np.float32(-np.inf))),
            ):
                row = base[len(rows) % len(base)].copy()
                row[t.feature[node]] = value
                rows.append(row)
    return np.array(rows)


def test_raw_output_follows_sklearn_float32_thresholds(gbc: GradientBoostingClassifier) -> None:
    X, _ = classification_data(50, 5, seed=11)
    rows = boundary_rows(gbc, X)
    explainer = TreeShapExplainer(gbc)
    # The test bites: comparing in float64 would route some of these rows differently.
    features = [
        (e.tree_.feature[n], e.tree_.threshold[n])
        for e in gbc.estimators_[:, 0]
        for n in np.flatnonzero(e.tree_.children_left != -1)
    ]
    as32 = rows.astype(np.float32)
    assert any(np.any((rows[:, f] <= t) != (as32[:, f] <= t)) for f, t in features), (
        "no boundary row distinguishes float32 from float64 routing"
    )
    batch = explainer.explain(rows)
    expected = gbc.decision_function(rows)
    np.testing.assert_allclose(batch.raw, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(explainer.raw_output(rows), expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(batch.additivity_error(), 0.0, atol=1e-12)


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("trained_with_nan", [True, False])
def test_missing_values_are_routed_like_sklearn(trained_with_nan: bool, path: str) -> None:
    X, y = classification_data(500, 4, seed=12)
    rng = np.random.default_rng(13)
    X_train = X.copy()
    if trained_with_nan:
        X_train[rng.random(X.shape) < 0.15] = np.nan
    model = DecisionTreeRegressor(max_depth=4, random_state=0).fit(X_train, X[:, 0] + y)
    rows = X[:30].copy()
    rows[rng.random(rows.shape) < 0.3] = np.nan
    explainer = TreeShapExplainer(model, **PATHS[path])
    batch = explainer.explain(rows)
    np.testing.assert_allclose(batch.raw, model.predict(rows), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(batch.additivity_error(), 0.0, atol=1e-12)
    expected, _ = brute_force_shap(model, rows[:8])
    np.testing.assert_allclose(batch.contributions[:8], expected, atol=TOLERANCE)


def test_values_beyond_float32_are_rejected(gbc: GradientBoostingClassifier) -> None:
    with pytest.raises(ExplainerError, match="float32"):
        TreeShapExplainer(gbc).explain(np.full((1, 5), 1e300))


@pytest.mark.parametrize(
    "make_model",
    [
        lambda X, y: GradientBoostingClassifier(n_estimators=2).fit(X, y % 3 + (X[:, 0] > 1)),
        lambda X, y: GradientBoostingClassifier(n_estimators=2, loss="exponential").fit(X, y),
        lambda X, y: GradientBoostingClassifier(n_estimators=2, init=LogisticRegression()).fit(
            X, y
        ),
        lambda X, y: DecisionTreeRegressor(max_depth=2).fit(X, np.c_[y, y]),
        lambda X, y: RandomForestRegressor(n_estimators=2).fit(X, X[:, 0]),
        lambda X, y: GradientBoostingClassifier(),
    ],
    ids=[
        "multiclass",
        "exponential",
        "fitted-init",
        "multi-output",
        "regression-forest",
        "unfitted",
    ],
)
def test_unsupported_models_are_refused(make_model: Any) -> None:
    X, y = classification_data(100, 3, seed=14)
    with pytest.raises(ExplainerError):
        TreeShapExplainer(make_model(X, y))


def test_table_limit_is_checked(gbc: GradientBoostingClassifier) -> None:
    with pytest.raises(ExplainerError, match="max_table_features"):
        TreeShapExplainer(gbc, max_table_features=9)
    with pytest.raises(ExplainerError, match="max_tree_cells"):
        TreeShapExplainer(gbc, max_tree_cells=-1)


def test_shallow_trees_are_compiled_whole_and_deep_ones_leaf_by_leaf() -> None:
    """A depth-3 boosting is compiled whole; a deep tree's leaves are not, and a mix of both
    (the cell limit between their sizes) gives the brute-force values either way."""
    X, y = classification_data(600, 6, seed=4)
    shallow = GradientBoostingClassifier(n_estimators=8, max_depth=3, random_state=0).fit(X, y)
    deep = DecisionTreeRegressor(max_depth=9, random_state=0).fit(X, X[:, 0] * X[:, 1] + y)
    assert TreeShapExplainer(shallow).method_counts() == {"whole": 8}
    assert set(TreeShapExplainer(deep).method_counts()) == {"tabulated"}
    mixed = TreeShapExplainer(shallow, max_tree_cells=60)
    counts = mixed.method_counts()
    assert counts["whole"] and counts["whole"] < 8, counts
    expected, _ = brute_force_shap(shallow, X[:6])
    np.testing.assert_allclose(mixed.explain(X[:6]).contributions, expected, atol=TOLERANCE)


# Classifiers explained as a probability, and histogram gradient boosting.


def missing_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """15 % NaN; column 3's missingness predicts the label, so that HistGradientBoosting
    also splits on NaN alone (threshold +inf)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    X[:, -1] = rng.integers(0, 2, size=n)
    logit = X[:, 0] - 0.8 * X[:, 1] * X[:, 2] + X[:, -1] + 0.5 * rng.normal(size=n)
    X[rng.random(X.shape) < 0.15] = np.nan
    logit += 3.0 * np.where(np.isnan(X[:, 3]), 1.0, -1.0)
    return X, (logit > 0).astype(int)


LEVELS = [-2.0, 0.5, 3.0, 7.0]


def categorical_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Columns 1 (codes 0 to 7) and 3 (four levels) hold categories; 10 % NaN everywhere."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    X[:, 1] = rng.integers(0, 8, size=n)
    X[:, 3] = rng.choice(LEVELS, size=n)
    logit = (
        X[:, 0]
        + 1.5 * np.isin(X[:, 1], [1, 4, 6])
        - 1.2 * (X[:, 3] == 3.0)
        + X[:, 2] * (X[:, 3] > 0)
        + 0.3 * rng.normal(size=n)
    )
    X[rng.random(X.shape) < 0.1] = np.nan
    return X, (logit > 0.3).astype(int)


def with_unseen_categories(X: np.ndarray) -> np.ndarray:
    """Rows holding categories the model never saw, which it routes as missing values."""
    X = X.copy()
    X[::3, 1] = np.resize([8.0, -1.0, 2.5], X[::3].shape[0])
    X[1::4, 3] = 1.0
    return X


@dataclass(frozen=True)
class Fitted:
    model: Any
    rows: np.ndarray
    """Rows to explain: with NaN (but for extra trees, which scikit-learn 1.5 fits without),
    and with unseen categories for a categorical model."""
    space: str
    tolerance: float
    """How close the raw output must be to the library's own."""


def decision_tree_classifier() -> Fitted:
    X, y = missing_data(400, seed=20)
    weights = np.random.default_rng(21).uniform(0.2, 3.0, size=len(y))
    model = DecisionTreeClassifier(max_depth=4, class_weight={0: 1.0, 1: 2.0}, random_state=0)
    model.fit(X, y, sample_weight=weights)
    return Fitted(model, missing_data(300, seed=22)[0], "probability", EXACT)


def random_forest() -> Fitted:
    X, y = missing_data(400, seed=23)
    model = RandomForestClassifier(n_estimators=6, max_depth=4, random_state=0).fit(X, y)
    return Fitted(model, missing_data(300, seed=24)[0], "probability", EXACT)


def extra_trees() -> Fitted:
    X, y = classification_data(400, 5, seed=25)
    model = ExtraTreesClassifier(
        n_estimators=6, max_depth=4, bootstrap=True, class_weight="balanced", random_state=0
    ).fit(X, y)
    return Fitted(model, classification_data(300, 5, seed=26)[0], "probability", EXACT)


def hist_gradient_boosting() -> Fitted:
    X, y = missing_data(400, seed=27)
    weights = np.random.default_rng(28).uniform(0.2, 3.0, size=len(y))
    model = HistGradientBoostingClassifier(max_iter=8, max_leaf_nodes=6, random_state=0)
    model.fit(X, y, sample_weight=weights)
    return Fitted(model, missing_data(300, seed=29)[0], "log_odds", TOLERANCE)


def hist_gradient_boosting_categorical() -> Fitted:
    X, y = categorical_data(600, seed=30)
    model = HistGradientBoostingClassifier(
        max_iter=8, max_leaf_nodes=6, categorical_features=[1, 3], random_state=0
    ).fit(X, y)
    rows = with_unseen_categories(categorical_data(300, seed=31)[0])
    return Fitted(model, rows, "log_odds", TOLERANCE)


FAMILIES: dict[str, Callable[[], Fitted]] = {
    "decision-tree": decision_tree_classifier,
    "random-forest": random_forest,
    "extra-trees": extra_trees,
    "hist-boosting": hist_gradient_boosting,
    "hist-boosting-categorical": hist_gradient_boosting_categorical,
}


@pytest.fixture(scope="module", params=list(FAMILIES))
def family(request: pytest.FixtureRequest) -> Fitted:
    return FAMILIES[request.param]()


@pytest.mark.parametrize("path", list(PATHS))
def test_classifier_families_equal_brute_force_shapley_values(family: Fitted, path: str) -> None:
    explainer = TreeShapExplainer(family.model, **PATHS[path])
    rows = family.rows[:8]
    batch = explainer.explain(rows)
    expected, empty = brute_force_shap(family.model, rows)
    np.testing.assert_allclose(batch.contributions, expected, rtol=0, atol=EXACT)
    np.testing.assert_allclose(batch.base_value, empty, rtol=0, atol=EXACT)
    assert np.any(np.abs(expected) > 0.01), "the rows should have non-trivial attributions"


def test_classifier_families_give_the_library_output(family: Fitted) -> None:
    explainer = TreeShapExplainer(family.model)
    assert explainer.output_space == family.space
    batch = explainer.explain(family.rows)
    expected = library_output(family.model, family.rows)
    assert np.ptp(expected) > 0.3, "the model should not be constant"
    np.testing.assert_allclose(batch.raw, expected, rtol=0, atol=family.tolerance)
    np.testing.assert_allclose(
        explainer.raw_output(family.rows), expected, rtol=0, atol=family.tolerance
    )
    np.testing.assert_allclose(batch.additivity_error(), 0.0, atol=EXACT)
    for i in (0, 7, len(family.rows) - 1):
        single = explainer.explain(family.rows[i : i + 1])
        np.testing.assert_array_equal(single.contributions[0], batch.contributions[i])
        np.testing.assert_array_equal(single.raw[0], batch.raw[i])


def test_probability_base_value_is_the_weighted_class_one_fraction() -> None:
    X, y = classification_data(500, 4, seed=32)
    weights = np.random.default_rng(33).uniform(0.2, 3.0, size=len(y))
    model = DecisionTreeClassifier(max_depth=5, random_state=0).fit(X, y, sample_weight=weights)
    expected = float(np.sum(weights * y) / np.sum(weights))
    assert TreeShapExplainer(model).base_value == pytest.approx(expected, abs=EXACT)


def hist_boundary_rows(model: HistGradientBoostingClassifier, base: np.ndarray) -> np.ndarray:
    """Rows putting each numeric split's feature at, just above and just below its threshold,
    plus infinite values."""
    rows: list[np.ndarray] = []
    for iteration in model._predictors:
        nodes = iteration[0].nodes
        numeric = (nodes["is_leaf"] == 0) & (nodes["is_categorical"] == 0)
        for feature, threshold in zip(
            nodes["feature_idx"][numeric], nodes["num_threshold"][numeric], strict=True
        ):
            for value in (
                threshold,
                np.nextafter(threshold, np.inf),
                np.nextafter(threshold, -np.inf),
                np.inf,
                -np.inf,
            ):
                row = base[len(rows) % len(base)].copy()
                row[feature] = value
                rows.append(row)
    return np.array(rows)


def test_hist_gradient_boosting_compares_in_float64() -> None:
    fitted = hist_gradient_boosting()
    model = fitted.model
    nodes = np.concatenate([iteration[0].nodes for iteration in model._predictors])
    splits = nodes[nodes["is_leaf"] == 0]
    assert np.any(np.isinf(splits["num_threshold"])), "no split on NaN alone"
    assert np.any(splits["missing_go_to_left"] == 1) and np.any(splits["missing_go_to_left"] == 0)
    rows = hist_boundary_rows(model, fitted.rows)
    # The test bites: comparing in float32, as scikit-learn's other trees do, would route
    # some of these rows differently.
    with np.errstate(over="ignore"):
        as32 = rows.astype(np.float32).astype(np.float64)
    assert any(
        np.any((rows[:, f] <= t) != (as32[:, f] <= t))
        for f, t in zip(splits["feature_idx"], splits["num_threshold"], strict=True)
    ), "no boundary row distinguishes float32 from float64 routing"
    explainer = TreeShapExplainer(model)
    batch = explainer.explain(rows)
    expected = model.decision_function(rows)
    np.testing.assert_allclose(batch.raw, expected, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(explainer.raw_output(rows), expected, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(batch.additivity_error(), 0.0, atol=EXACT)


def test_hist_gradient_boosting_categories_are_routed_like_the_model() -> None:
    fitted = hist_gradient_boosting_categorical()
    model = fitted.model
    categorical = [
        node
        for iteration in model._predictors
        for node in iteration[0].nodes
        if not node["is_leaf"] and node["is_categorical"]
    ]
    assert {int(node["feature_idx"]) for node in categorical} == {0, 1}, (
        "both categorical columns should be split on"
    )
    rows = fitted.rows.copy()
    rows.setflags(write=False)
    explainer = TreeShapExplainer(model)
    batch = explainer.explain(rows)
    np.testing.assert_array_equal(rows, fitted.rows)
    np.testing.assert_allclose(batch.raw, model.decision_function(rows), rtol=0, atol=TOLERANCE)
    unseen = ~np.isin(rows[:, 1], np.arange(8)) & ~np.isnan(rows[:, 1])
    assert unseen.any()
    # An unseen category is routed as a missing value, and explained as one.
    as_missing = rows.copy()
    as_missing[:, 1] = np.where(unseen, np.nan, rows[:, 1])
    np.testing.assert_array_equal(explainer.explain(as_missing).contributions, batch.contributions)
    with pytest.raises(ExplainerError, match="infinite"):
        explainer.explain(np.where(np.arange(5) == 3, np.inf, rows[:2]))


def test_output_space_names_what_is_explained() -> None:
    X, y = classification_data(200, 3, seed=34)
    spaces = {
        "log_odds": [
            GradientBoostingClassifier(n_estimators=2).fit(X, y),
            HistGradientBoostingClassifier(max_iter=2).fit(X, y),
        ],
        "probability": [
            DecisionTreeClassifier(max_depth=2).fit(X, y),
            RandomForestClassifier(n_estimators=2, max_depth=2).fit(X, y),
            ExtraTreesClassifier(n_estimators=2, max_depth=2).fit(X, y),
        ],
        "raw": [
            DecisionTreeRegressor(max_depth=2).fit(X, X[:, 0]),
            GradientBoostingRegressor(n_estimators=2).fit(X, X[:, 0]),
        ],
    }
    for space, models in spaces.items():
        for model in models:
            assert TreeShapExplainer(model).output_space == space
            assert isinstance(explainer_for(model), TreeShapExplainer)


def three_classes(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    return y + (X[:, 0] > 1)


@pytest.mark.parametrize(
    ("make_model", "reason"),
    [
        (lambda X, y: DecisionTreeClassifier().fit(X, three_classes(X, y)), r"classes \[0, 1\]"),
        (
            lambda X, y: RandomForestClassifier(n_estimators=2).fit(X, three_classes(X, y)),
            r"classes \[0, 1\]",
        ),
        (
            lambda X, y: ExtraTreesClassifier(n_estimators=2).fit(X, three_classes(X, y)),
            r"classes \[0, 1\]",
        ),
        (
            lambda X, y: HistGradientBoostingClassifier(max_iter=2).fit(X, three_classes(X, y)),
            "only binary",
        ),
        (lambda X, y: DecisionTreeClassifier().fit(X, y + 1), r"got \[1, 2\]"),
        (
            lambda X, y: RandomForestClassifier(n_estimators=2).fit(X, np.where(y, "yes", "no")),
            "'yes'",
        ),
        (lambda X, y: DecisionTreeClassifier().fit(X, np.c_[y, 1 - y]), "single-output"),
        (
            lambda X, y: RandomForestClassifier(n_estimators=2).fit(X, np.c_[y, 1 - y]),
            "single-output",
        ),
        (lambda X, y: RandomForestClassifier(), "not fitted"),
        (lambda X, y: HistGradientBoostingClassifier(), "not fitted"),
        (
            lambda X, y: HistGradientBoostingClassifier(max_iter=2, categorical_features=[0]).fit(
                np.c_[np.where(y, "a", "b").astype(object), X[:, 1:]], y
            ),
            "non-numeric categories",
        ),
    ],
    ids=[
        "tree-multiclass",
        "forest-multiclass",
        "extra-trees-multiclass",
        "hist-boosting-multiclass",
        "classes-1-2",
        "string-classes",
        "tree-multi-output",
        "forest-multi-output",
        "forest-unfitted",
        "hist-boosting-unfitted",
        "string-categories",
    ],
)
def test_unsupported_classifiers_are_refused(make_model: Any, reason: str) -> None:
    X, y = classification_data(100, 3, seed=35)
    with pytest.raises(ExplainerError, match=reason):
        TreeShapExplainer(make_model(X, y))
