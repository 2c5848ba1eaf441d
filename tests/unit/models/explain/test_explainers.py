"""Every explainer keeps the same contract (river's ``checks`` pattern), plus what is
particular to the linear and river explainers.

The contract: base value plus contributions equals the raw output; the raw output is the
real model's log-odds; inputs are not mutated; an event's explanation does not depend on
the batch it arrives in; shapes and types are as declared.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from river import compose, linear_model, optim, preprocessing
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler
from sklearn.tree import DecisionTreeRegressor

from models.explain import (
    Explainer,
    ExplainerError,
    LinearExplainer,
    RiverLinearExplainer,
    TreeShapExplainer,
    explainer_for,
)

N_GAUSSIAN, N_ONE_HOT = 22, 8
N_COLUMNS = N_GAUSSIAN + N_ONE_HOT
COLUMNS = [f"c{j}" for j in range(N_COLUMNS)]
METHODS = {"linear", "tree_shap", "river_linear"}


def design_matrix(n: int, seed: int) -> np.ndarray:
    """Gaussian columns and two one-hot groups of four columns, like a vectorised event."""
    rng = np.random.default_rng(seed)
    X = np.zeros((n, N_COLUMNS))
    X[:, :N_GAUSSIAN] = rng.normal(size=(n, N_GAUSSIAN)) * rng.uniform(0.5, 3.0, N_GAUSSIAN)
    X[:, :N_GAUSSIAN] += rng.uniform(-2.0, 2.0, N_GAUSSIAN)
    for group in range(2):
        start = N_GAUSSIAN + 4 * group
        X[np.arange(n), start + rng.integers(0, 4, size=n)] = 1.0
    return X


def labels(X: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logit = 0.8 * X[:, 0] - 0.5 * X[:, 1] * X[:, 2] + X[:, N_GAUSSIAN] - X[:, N_GAUSSIAN + 5]
    return (logit + rng.normal(size=len(X)) > 0).astype(int)


X_TRAIN = design_matrix(2000, seed=1)
Y_TRAIN = labels(X_TRAIN, seed=2)
X_TEST = design_matrix(1000, seed=3)


def logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def river_raw(model: Any, transform: Callable[[np.ndarray], np.ndarray] = lambda X: X) -> Any:
    """The river model's log-odds, one event at a time, through ``predict_proba_one``."""

    def raw(X: np.ndarray) -> np.ndarray:
        rows = transform(X)
        return np.array(
            [
                logit(model.predict_proba_one(dict(zip(COLUMNS, row, strict=True)))[True])
                for row in rows
            ]
        )

    return raw


def train_river(model: Any, X: np.ndarray, y: np.ndarray) -> Any:
    for row, label in zip(X.tolist(), y.tolist(), strict=True):
        model.learn_one(dict(zip(COLUMNS, row, strict=True)), bool(label))
    return model


@dataclass(frozen=True)
class Case:
    explainer: Explainer
    model_raw: Callable[[np.ndarray], np.ndarray]


def linear_pipeline() -> Case:
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    pipeline.fit(X_TRAIN, Y_TRAIN)
    return Case(LinearExplainer.from_model(pipeline), pipeline.decision_function)


def linear_bare() -> Case:
    model = LogisticRegression(max_iter=2000).fit(X_TRAIN, Y_TRAIN)
    explainer = LinearExplainer.from_model(model, reference_mean=X_TRAIN.mean(axis=0))
    return Case(explainer, model.decision_function)


def linear_from_constants() -> Case:
    case = linear_pipeline()
    assert isinstance(case.explainer, LinearExplainer)
    constants = json.loads(json.dumps(case.explainer.to_constants()))
    return Case(LinearExplainer.from_constants(constants), case.model_raw)


def gradient_boosting(**options: int) -> Case:
    model = GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=0)
    model.fit(X_TRAIN, Y_TRAIN)
    explainer = TreeShapExplainer(model, **options)
    return Case(explainer, model.decision_function)


def decision_tree() -> Case:
    model = DecisionTreeRegressor(max_depth=7, random_state=0).fit(X_TRAIN, Y_TRAIN)
    return Case(TreeShapExplainer(model), model.predict)


def river_bare() -> Case:
    model = linear_model.LogisticRegression(optimizer=optim.SGD(0.02))
    train_river(model, X_TRAIN, Y_TRAIN)
    return Case(RiverLinearExplainer(model, COLUMNS), river_raw(model))


def river_scaled() -> Case:
    model = compose.Pipeline(
        preprocessing.StandardScaler(), linear_model.LogisticRegression(optimizer=optim.SGD(0.05))
    )
    train_river(model, X_TRAIN, Y_TRAIN)
    return Case(RiverLinearExplainer(model, COLUMNS), river_raw(model))


def river_standardised_outside() -> Case:
    """As training does it: columns standardised by fixed statistics before river sees them."""
    mean = X_TRAIN.mean(axis=0)
    std = X_TRAIN.std(axis=0)
    std = np.where(std > 0.0, std, 1.0)
    model = linear_model.LogisticRegression(optimizer=optim.SGD(0.05))
    train_river(model, (X_TRAIN - mean) / std, Y_TRAIN)
    constants = {
        "method": "river_linear",
        "columns": COLUMNS,
        "scale_mean": mean.tolist(),
        "scale_std": std.tolist(),
    }
    explainer = RiverLinearExplainer.from_manifest_constants(model, COLUMNS, constants)
    return Case(explainer, river_raw(model, lambda X: (X - mean) / std))


CASES: dict[str, Callable[[], Case]] = {
    "linear-pipeline": linear_pipeline,
    "linear-bare": linear_bare,
    "linear-constants": linear_from_constants,
    "tree_shap-gbc": gradient_boosting,
    "tree_shap-gbc-tabulated": lambda: gradient_boosting(max_tree_cells=0),
    "tree_shap-gbc-dynamic": lambda: gradient_boosting(max_tree_cells=0, max_table_features=0),
    "tree_shap-tree": decision_tree,
    "river_linear": river_bare,
    "river_linear-scaled": river_scaled,
    "river_linear-manifest": river_standardised_outside,
}


@pytest.fixture(scope="module", params=list(CASES))
def case(request: pytest.FixtureRequest) -> Case:
    return CASES[request.param]()


# The contract, for every explainer.


def test_base_plus_contributions_is_the_raw_output(case: Case) -> None:
    batch = case.explainer.explain(X_TEST)
    total = batch.base_value + batch.contributions.sum(axis=1)
    np.testing.assert_allclose(total, batch.raw, rtol=1e-9, atol=1e-9)
    assert np.all(batch.additivity_error() <= 1e-6)


def test_raw_output_is_the_model_log_odds(case: Case) -> None:
    expected = case.model_raw(X_TEST)
    assert np.ptp(expected) > 0.5, "the model should not be constant"
    np.testing.assert_allclose(case.explainer.explain(X_TEST).raw, expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(case.explainer.raw_output(X_TEST), expected, rtol=1e-9, atol=1e-9)


def test_input_is_not_mutated(case: Case) -> None:
    X = X_TEST.copy()
    X.setflags(write=False)
    case.explainer.explain(X)
    case.explainer.raw_output(X)
    np.testing.assert_array_equal(X, X_TEST)


def test_one_row_is_explained_as_within_a_batch(case: Case) -> None:
    batch = case.explainer.explain(X_TEST)
    for i in (0, 1, 357, len(X_TEST) - 1):
        single = case.explainer.explain(X_TEST[i : i + 1])
        assert single.base_value == batch.base_value
        np.testing.assert_array_equal(single.contributions[0], batch.contributions[i])
        np.testing.assert_array_equal(single.raw[0], batch.raw[i])


def test_shapes_and_types(case: Case) -> None:
    assert isinstance(case.explainer, Explainer)
    batch = case.explainer.explain(X_TEST[:17])
    assert batch.method == case.explainer.method and batch.method in METHODS
    assert isinstance(batch.base_value, float)
    assert batch.contributions.shape == (17, N_COLUMNS)
    assert batch.contributions.dtype == np.float64
    assert batch.raw.shape == (17,) and batch.raw.dtype == np.float64
    assert len(batch) == 17
    assert case.explainer.raw_output(X_TEST[:17]).shape == (17,)
    empty = case.explainer.explain(np.empty((0, N_COLUMNS)))
    assert empty.contributions.shape == (0, N_COLUMNS) and empty.raw.shape == (0,)


def test_a_matrix_of_the_wrong_width_is_refused(case: Case) -> None:
    with pytest.raises(ExplainerError, match="shape"):
        case.explainer.explain(np.zeros((3, N_COLUMNS + 1)))
    with pytest.raises(ExplainerError, match="shape"):
        case.explainer.raw_output(np.zeros(N_COLUMNS))


# Linear explainer.


def test_linear_contributions_are_weight_times_centred_input() -> None:
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    pipeline.fit(X_TRAIN, Y_TRAIN)
    scaler, regression = pipeline[0], pipeline[-1]
    explainer = LinearExplainer.from_model(pipeline)
    weights = regression.coef_[0] / scaler.scale_
    expected = weights * (X_TEST - scaler.mean_)
    np.testing.assert_allclose(explainer.explain(X_TEST).contributions, expected, rtol=1e-12)
    at_reference = explainer.explain(scaler.mean_[None, :])
    np.testing.assert_allclose(at_reference.contributions, 0.0, atol=1e-15)
    assert at_reference.raw[0] == pytest.approx(explainer.base_value, abs=1e-12)


def test_linear_reference_mean_moves_the_base_not_the_output() -> None:
    model = LogisticRegression(max_iter=2000).fit(X_TRAIN, Y_TRAIN)
    at_mean = LinearExplainer.from_model(model, reference_mean=X_TRAIN.mean(axis=0))
    at_zero = LinearExplainer.from_model(model, reference_mean=np.zeros(N_COLUMNS))
    assert at_zero.base_value == pytest.approx(float(model.intercept_[0]), abs=1e-12)
    assert at_mean.base_value == pytest.approx(
        float(model.decision_function(X_TRAIN.mean(axis=0)[None, :])[0]), abs=1e-9
    )
    np.testing.assert_array_equal(at_mean.raw_output(X_TEST), at_zero.raw_output(X_TEST))


def test_linear_constants_round_trip_through_json() -> None:
    explainer = linear_pipeline().explainer
    assert isinstance(explainer, LinearExplainer)
    text = json.dumps(explainer.to_constants())
    rebuilt = LinearExplainer.from_constants(json.loads(text))
    original, copy = explainer.explain(X_TEST), rebuilt.explain(X_TEST)
    assert copy.base_value == original.base_value
    np.testing.assert_array_equal(copy.contributions, original.contributions)
    np.testing.assert_array_equal(copy.raw, original.raw)


@pytest.mark.parametrize(
    "build",
    [
        lambda: LinearExplainer.from_model(LogisticRegression().fit(X_TRAIN, Y_TRAIN)),
        lambda: LinearExplainer.from_model(
            LogisticRegression(max_iter=2000).fit(X_TRAIN, Y_TRAIN + (X_TRAIN[:, 3] > 1))
        ),
        lambda: LinearExplainer.from_model(
            make_pipeline(PolynomialFeatures(), LogisticRegression()).fit(X_TRAIN[:, :3], Y_TRAIN)
        ),
        lambda: LinearExplainer.from_model(DecisionTreeRegressor().fit(X_TRAIN, Y_TRAIN)),
        lambda: LinearExplainer.from_constants({"method": "tree_shap", "weights": [1.0]}),
        lambda: LinearExplainer.from_constants({"weights": [1.0], "intercept": 0.0}),
        lambda: LinearExplainer([1.0, 2.0], 0.0, [0.0]),
    ],
    ids=[
        "no-reference",
        "multiclass",
        "not-a-scaler",
        "not-linear",
        "other-method",
        "missing-key",
        "shape-mismatch",
    ],
)
def test_linear_refuses_what_it_cannot_explain(build: Callable[[], Any]) -> None:
    with pytest.raises(ExplainerError):
        build()


# River explainer.


def test_river_unseen_column_contributes_nothing() -> None:
    model = linear_model.LogisticRegression()
    train_river(model, X_TRAIN[:200], Y_TRAIN[:200])
    explainer = RiverLinearExplainer(model, [*COLUMNS, "never_seen"])
    X = np.c_[X_TEST[:50], np.full(50, 7.0)]
    batch = explainer.explain(X)
    assert np.all(batch.contributions[:, -1] == 0.0)
    assert batch.base_value == model.intercept
    np.testing.assert_allclose(
        batch.contributions[:, :-1], X_TEST[:50] * [model.weights[c] for c in COLUMNS]
    )


def test_river_explains_the_model_as_it_learns() -> None:
    model = compose.Pipeline(preprocessing.StandardScaler(), linear_model.LogisticRegression())
    train_river(model, X_TRAIN[:300], Y_TRAIN[:300])
    explainer = RiverLinearExplainer(model, COLUMNS)
    before = explainer.explain(X_TEST[:100])
    train_river(model, X_TRAIN[300:], Y_TRAIN[300:])
    after = explainer.explain(X_TEST[:100])
    assert not np.allclose(before.contributions, after.contributions)
    np.testing.assert_allclose(after.raw, river_raw(model)(X_TEST[:100]), rtol=1e-9, atol=1e-9)


def test_river_explainer_does_not_touch_the_scaler() -> None:
    model = compose.Pipeline(preprocessing.StandardScaler(), linear_model.LogisticRegression())
    for row, label in zip(X_TRAIN[:100, :5].tolist(), Y_TRAIN[:100].tolist(), strict=True):
        model.learn_one(dict(zip(COLUMNS[:5], row, strict=True)), bool(label))
    scaler = model.steps["StandardScaler"]
    seen = dict(scaler.means)
    RiverLinearExplainer(model, COLUMNS).explain(X_TEST[:10])
    assert dict(scaler.means) == seen


@pytest.mark.parametrize(
    "build",
    [
        lambda: RiverLinearExplainer(linear_model.LinearRegression(), COLUMNS),
        lambda: RiverLinearExplainer(
            compose.Pipeline(preprocessing.MinMaxScaler(), linear_model.LogisticRegression()),
            COLUMNS,
        ),
        lambda: RiverLinearExplainer(linear_model.LogisticRegression(), ["a", "a"]),
        lambda: RiverLinearExplainer.from_manifest_constants(
            linear_model.LogisticRegression(), COLUMNS, {"columns": ["other"]}
        ),
        lambda: RiverLinearExplainer(
            linear_model.LogisticRegression(), COLUMNS, input_scale=np.zeros(N_COLUMNS)
        ),
    ],
    ids=["not-logistic", "other-transformer", "duplicate-columns", "other-columns", "zero-scale"],
)
def test_river_refuses_what_it_cannot_explain(build: Callable[[], Any]) -> None:
    with pytest.raises(ExplainerError):
        build()


# Dispatch.


def test_explainer_for_picks_the_exact_explainer() -> None:
    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(X_TRAIN, Y_TRAIN)
    boosting = GradientBoostingClassifier(n_estimators=3).fit(X_TRAIN, Y_TRAIN)
    river_model = linear_model.LogisticRegression()
    assert isinstance(explainer_for(pipeline), LinearExplainer)
    assert isinstance(explainer_for(boosting), TreeShapExplainer)
    assert isinstance(explainer_for(river_model, columns=COLUMNS), RiverLinearExplainer)
    with pytest.raises(ExplainerError, match="column names"):
        explainer_for(river_model)
