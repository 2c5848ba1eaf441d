"""TreeSHAP is exact: it equals brute-force Shapley values of the path-dependent game.

The reference here shares no code with the explainer: it enumerates every coalition of
columns and evaluates the path-dependent value function by walking each tree recursively
(follow the row at a split on a feature in the coalition, otherwise average both children
weighted by cover), then applies the Shapley formula.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeRegressor

from models.explain import ExplainerError, TreeShapExplainer

TOLERANCE = 1e-9


def tree_value(tree: Any, x: np.ndarray, coalition: frozenset[int], node: int = 0) -> float:
    """Path-dependent expectation of one tree's output given the coalition's values of x."""
    left, right = tree.children_left[node], tree.children_right[node]
    if left == -1:
        return float(tree.value[node, 0, 0])
    feature = tree.feature[node]
    if feature in coalition:
        value = x[feature]
        if math.isnan(value):
            goes_left = bool(tree.missing_go_to_left[node])
        else:
            goes_left = value <= tree.threshold[node]
        return tree_value(tree, x, coalition, left if goes_left else right)
    cover = tree.weighted_n_node_samples
    return (
        cover[left] * tree_value(tree, x, coalition, left)
        + cover[right] * tree_value(tree, x, coalition, right)
    ) / cover[node]


def model_game(model: Any) -> tuple[list[Any], float, float]:
    """Trees, their scale and the constant offset of the model's raw output."""
    if isinstance(model, DecisionTreeRegressor):
        return [model.tree_], 1.0, 0.0
    trees = [estimator.tree_ for estimator in model.estimators_[:, 0]]
    probe = np.zeros((1, model.n_features_in_))
    output = model.decision_function(probe) if hasattr(model, "decision_function") else None
    raw = float(np.ravel(output if output is not None else model.predict(probe))[0])
    x32 = probe[0].astype(np.float32).astype(np.float64)
    everything = frozenset(range(model.n_features_in_))
    offset = raw - model.learning_rate * sum(tree_value(t, x32, everything) for t in trees)
    return trees, float(model.learning_rate), offset


def brute_force_shap(model: Any, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shapley values and the empty-coalition value, by enumerating all 2^M coalitions."""
    trees, scale, offset = model_game(model)
    n_features = X.shape[1]
    players = range(n_features)
    phi = np.zeros(X.shape)
    empty = np.zeros(X.shape[0])
    for row, x in enumerate(X.astype(np.float32).astype(np.float64)):
        values = {}
        for size in range(n_features + 1):
            for members in itertools.combinations(players, size):
                coalition = frozenset(members)
                total = sum(tree_value(tree, x, coalition) for tree in trees)
                values[coalition] = offset + scale * total
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


@pytest.mark.parametrize("max_table_features", [6, 0], ids=["tabulated", "dynamic"])
@pytest.mark.parametrize("model_name", ["gbc", "tree"])
def test_equals_brute_force_shapley_values(
    model_name: str, max_table_features: int, rows: np.ndarray, request: pytest.FixtureRequest
) -> None:
    model = request.getfixturevalue(model_name)
    explainer = TreeShapExplainer(model, max_table_features=max_table_features)
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


@pytest.mark.parametrize("max_table_features", [6, 0], ids=["tabulated", "dynamic"])
@pytest.mark.parametrize("trained_with_nan", [True, False])
def test_missing_values_are_routed_like_sklearn(
    trained_with_nan: bool, max_table_features: int
) -> None:
    X, y = classification_data(500, 4, seed=12)
    rng = np.random.default_rng(13)
    X_train = X.copy()
    if trained_with_nan:
        X_train[rng.random(X.shape) < 0.15] = np.nan
    model = DecisionTreeRegressor(max_depth=4, random_state=0).fit(X_train, X[:, 0] + y)
    rows = X[:30].copy()
    rows[rng.random(rows.shape) < 0.3] = np.nan
    explainer = TreeShapExplainer(model, max_table_features=max_table_features)
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
        lambda X, y: RandomForestClassifier(n_estimators=2).fit(X, y),
        lambda X, y: GradientBoostingClassifier(),
    ],
    ids=["multiclass", "exponential", "fitted-init", "multi-output", "forest", "unfitted"],
)
def test_unsupported_models_are_refused(make_model: Any) -> None:
    X, y = classification_data(100, 3, seed=14)
    with pytest.raises(ExplainerError):
        TreeShapExplainer(make_model(X, y))


def test_table_limit_is_checked(gbc: GradientBoostingClassifier) -> None:
    with pytest.raises(ExplainerError, match="max_table_features"):
        TreeShapExplainer(gbc, max_table_features=9)
