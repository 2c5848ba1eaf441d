"""LightGBM and XGBoost boosters serve what the libraries compute, after storage.

Each model is fitted on a pandas frame of the user's columns, stored and loaded through
its family, compiled for a feature spec, and fed events through the spec's vectoriser and
:func:`raw_batch`, as serving feeds them. The references are the fitted estimator's own
``predict_proba`` and contributions on a pandas frame of the same events, a path that shares
nothing with the compiled one (no codes, no stored bytes).
"""

from __future__ import annotations

import pickle
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from models.external.base import RawBatch, raw_batch
from models.external.boosters import (
    LightGBMFamily,
    XGBoostFamily,
    read_lightgbm_file,
    read_xgboost_file,
)
from models.featurespec import Feature, FeatureSpec
from models.scoring_model import probability
from schemas.errors import RegistryError, ScorerError

SCORE_TOLERANCE = 1e-9
ADDITIVITY_TOLERANCE = 1e-6
FLOAT32_PROBABILITY = 1e-7
"""XGBoost's probability is a float32 logistic of its float32 margin: it is within a few
float32 ulps (6e-8 near 0.5) of the float64 logistic of that margin, never within 1e-9."""

REGIONS = ["north", "south", "east", "west"]
"""The order the user's pandas categorical has, which is not the spec's order."""


def _spec(regions: list[str], *, region: bool = True) -> FeatureSpec:
    features = [
        Feature(name="income", kind="numeric", nullable=True, impute=50.0),
        Feature(name="age", kind="numeric"),
        Feature(name="region", kind="categorical", categories=regions),
        Feature(name="owner", kind="boolean"),
    ]
    return FeatureSpec(features=[f for f in features if region or f.name != "region"])


def _events(n: int, seed: int, regions: list[str]) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    income = rng.normal(50, 15, n).round(2)
    missing = rng.random(n) < 0.2
    return [
        {
            "income": None if missing[i] else float(income[i]),
            "age": float(rng.integers(18, 80)),
            "region": str(rng.choice(regions)),
            "owner": bool(rng.random() < 0.4),
        }
        for i in range(n)
    ]


def _frame(events: list[dict[str, Any]], *, region: bool = True) -> pd.DataFrame:
    """The events as the user's frame: NaN for a missing income, region as a category."""
    frame = pd.DataFrame(events)
    frame["income"] = frame["income"].astype(float)
    frame["region"] = pd.Categorical(frame["region"])
    return frame if region else frame.drop(columns="region")


def _labels(events: list[dict[str, Any]], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logit = np.array(
        [
            0.08 * ((e["income"] if e["income"] is not None else 40.0) - 50.0)
            + 0.03 * (e["age"] - 45.0)
            + {"north": 0.8, "south": -0.6, "east": 0.2, "west": -0.3}.get(e["region"], 0.0)
            + (0.7 if e["owner"] else 0.0)
            for e in events
        ]
    )
    return (rng.random(len(events)) < 1.0 / (1.0 + np.exp(-logit))).astype(int)


def _batch(spec: FeatureSpec, events: list[dict[str, Any]]) -> RawBatch:
    """The events' batch as serving builds it (features the spec lacks left out)."""
    vectorised = spec.vectorise([{name: event[name] for name in spec.names} for event in events])
    assert not vectorised.rejects
    return raw_batch(spec, vectorised.X)


@pytest.fixture(scope="module")
def lightgbm_classifier() -> lgb.LGBMClassifier:
    events = _events(400, seed=1, regions=REGIONS)
    frame = _frame(events)
    frame["region"] = pd.Categorical(frame["region"], categories=REGIONS)
    return lgb.LGBMClassifier(n_estimators=20, num_leaves=7, n_jobs=1, verbose=-1).fit(
        frame, _labels(events, seed=2)
    )


@pytest.fixture(scope="module")
def xgboost_classifier() -> xgb.XGBClassifier:
    events = _events(400, seed=3, regions=REGIONS)
    return xgb.XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1).fit(
        _frame(events, region=False), _labels(events, seed=4)
    )


def _stored(family: LightGBMFamily | XGBoostFamily, model: Any) -> Any:
    fmt, data = family.dumps(model)
    assert isinstance(data, bytes)
    assert not data.startswith(b"\x80")  # never a pickle
    return family.loads(fmt, data)


def test_lightgbm_scores_as_its_own_predict_proba_after_storage(
    lightgbm_classifier: lgb.LGBMClassifier,
) -> None:
    family = LightGBMFamily()
    assert family.accepts(lightgbm_classifier)
    assert family.dumps(lightgbm_classifier)[0] == "lightgbm-text"
    spec = _spec([*sorted(REGIONS), "central"])  # "central": unknown to the model
    events = _events(300, seed=5, regions=[*REGIONS, "central"])
    assert "central" in {event["region"] for event in events}  # read as NaN, as LightGBM does
    model = family.compile(_stored(family, lightgbm_classifier), spec, {})
    batch = _batch(spec, events)

    served = probability(model.raw(batch))
    own = lightgbm_classifier.predict_proba(_frame(events))[:, 1]

    assert model.output_space == "log_odds"
    assert np.max(np.abs(served - own)) <= SCORE_TOLERANCE
    assert np.max(np.abs(model.library_probability(batch) - own)) <= SCORE_TOLERANCE


def test_lightgbm_explanations_are_its_own_contributions(
    lightgbm_classifier: lgb.LGBMClassifier,
) -> None:
    family = LightGBMFamily()
    spec = _spec(sorted(REGIONS))
    events = _events(300, seed=6, regions=REGIONS)
    model = family.compile(_stored(family, lightgbm_classifier), spec, {})

    explained = model.explain(_batch(spec, events))
    own = lightgbm_classifier.booster_.predict(_frame(events), pred_contrib=True)

    assert explained.per_feature and explained.method == "lightgbm_contrib"
    assert np.array_equal(explained.contributions, own[:, :-1])
    assert np.all(own[:, -1] == explained.base_value)
    assert np.max(explained.additivity_error()) <= ADDITIVITY_TOLERANCE
    assert np.array_equal(explained.raw, model.raw(_batch(spec, events)))


def test_lightgbm_inputs_are_its_columns_and_pandas_categories(
    lightgbm_classifier: lgb.LGBMClassifier,
) -> None:
    inputs = LightGBMFamily().inputs(lightgbm_classifier)

    assert inputs.columns == ["income", "age", "region", "owner"]
    assert inputs.categorical == {"region": REGIONS}
    assert inputs.handles_missing


def test_lightgbm_sigmoid_is_scaled_to_log_odds() -> None:
    events = _events(300, seed=7, regions=REGIONS)
    frame = _frame(events, region=False)
    booster = lgb.train(
        {"objective": "binary", "sigmoid": 0.5, "num_leaves": 7, "verbose": -1, "num_threads": 1},
        lgb.Dataset(frame, _labels(events, seed=8)),
        num_boost_round=20,
    )
    spec = _spec(REGIONS, region=False)
    model = LightGBMFamily().compile(_stored(LightGBMFamily(), booster), spec, {})
    batch = _batch(spec, events)

    explained = model.explain(batch)

    assert np.max(np.abs(probability(model.raw(batch)) - booster.predict(frame))) <= 1e-9
    assert np.max(explained.additivity_error()) <= ADDITIVITY_TOLERANCE


@pytest.mark.parametrize("fmt", ["json", "ubj"])
def test_xgboost_scores_as_its_own_margin_after_storage(
    xgboost_classifier: xgb.XGBClassifier, fmt: str
) -> None:
    family = XGBoostFamily()
    assert family.accepts(xgboost_classifier)
    assert family.dumps(xgboost_classifier)[0] == "xgboost-json"
    data = bytes(xgboost_classifier.get_booster().save_raw(fmt))
    spec = _spec(REGIONS, region=False)
    events = _events(300, seed=9, regions=REGIONS)
    model = family.compile(family.loads(f"xgboost-{fmt}", data), spec, {})
    batch = _batch(spec, events)
    frame = _frame(events, region=False)

    raw = model.raw(batch)
    own_margin = xgboost_classifier.predict(frame, output_margin=True).astype(np.float64)
    own = xgboost_classifier.predict_proba(frame)[:, 1].astype(np.float64)

    assert np.array_equal(raw, own_margin)
    assert np.array_equal(model.library_probability(batch), own)
    assert np.max(np.abs(probability(raw) - own)) <= FLOAT32_PROBABILITY


def test_xgboost_explanations_are_its_own_contributions(
    xgboost_classifier: xgb.XGBClassifier,
) -> None:
    family = XGBoostFamily()
    spec = _spec(REGIONS, region=False)
    events = _events(300, seed=10, regions=REGIONS)
    model = family.compile(_stored(family, xgboost_classifier), spec, {})

    explained = model.explain(_batch(spec, events))
    matrix = xgb.DMatrix(_frame(events, region=False))
    own = xgboost_classifier.get_booster().predict(matrix, pred_contribs=True)

    assert explained.per_feature and explained.method == "xgboost_contrib"
    assert np.array_equal(explained.contributions, own[:, :-1].astype(np.float64))
    assert np.all(own[:, -1] == np.float32(explained.base_value))
    assert np.max(explained.additivity_error()) <= ADDITIVITY_TOLERANCE


def test_xgboost_categories_kept_by_the_model_map_exactly() -> None:
    """XGBoost >= 3.1 keeps a pandas frame's categories; an early-stopped classifier is
    scored up to its best iteration, as its predict_proba is."""
    events = _events(600, seed=11, regions=REGIONS)
    frame = _frame(events)
    frame["region"] = pd.Categorical(frame["region"], categories=REGIONS)
    labels = _labels(events, seed=12)
    classifier = xgb.XGBClassifier(
        n_estimators=60, max_depth=3, enable_categorical=True, early_stopping_rounds=3
    ).fit(frame[:400], labels[:400], eval_set=[(frame[400:], labels[400:])], verbose=False)
    assert classifier.best_iteration + 1 < classifier.get_booster().num_boosted_rounds()
    family = XGBoostFamily()
    spec = _spec(sorted(REGIONS))
    model = family.compile(_stored(family, classifier), spec, {})
    batch = _batch(spec, events)

    explained = model.explain(batch)
    own = classifier.predict_proba(_frame(events))[:, 1]  # re-coded by XGBoost itself

    assert family.inputs(classifier).categorical == {"region": REGIONS}
    assert np.array_equal(model.library_probability(batch), own.astype(np.float64))
    assert np.max(np.abs(probability(model.raw(batch)) - own)) <= FLOAT32_PROBABILITY
    assert np.max(explained.additivity_error()) <= ADDITIVITY_TOLERANCE


def test_generic_feature_names_give_no_columns() -> None:
    events = _events(200, seed=13, regions=REGIONS)
    X = _frame(events, region=False).to_numpy(dtype=float)
    y = _labels(events, seed=14)
    booster = lgb.train({"objective": "binary", "verbose": -1}, lgb.Dataset(X, y), 5)
    classifier = xgb.XGBClassifier(n_estimators=5, n_jobs=1).fit(X, y)

    assert LightGBMFamily().inputs(booster).columns is None
    assert XGBoostFamily().inputs(classifier).columns is None
    spec = _spec(REGIONS, region=False)  # names of the data file, in the model's order
    compiled = XGBoostFamily().compile(_stored(XGBoostFamily(), classifier), spec, {})
    own = classifier.predict_proba(X)[:, 1].astype(np.float64)
    assert np.array_equal(compiled.library_probability(_batch(spec, events)), own)


def test_lightgbm_integer_coded_categories_read_the_number() -> None:
    """A feature declared categorical on integer codes keeps no category list: the user's
    column holds the codes, and the model reads that number."""
    events = _events(300, seed=16, regions=REGIONS)
    frame = _frame(events, region=False)
    frame["age"] = frame["age"] % 5  # five integer codes
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 7, "verbose": -1, "num_threads": 1},
        lgb.Dataset(frame, _labels(events, seed=17), categorical_feature=["age"]),
        num_boost_round=20,
    )
    spec = _spec(REGIONS, region=False)
    coded = [{**event, "age": event["age"] % 5} for event in events]
    model = LightGBMFamily().compile(_stored(LightGBMFamily(), booster), spec, {})

    assert LightGBMFamily().inputs(booster).categorical == {}
    served = probability(model.raw(_batch(spec, coded)))
    assert np.max(np.abs(served - booster.predict(frame))) <= SCORE_TOLERANCE


def test_only_boosters_are_accepted(lightgbm_classifier: lgb.LGBMClassifier) -> None:
    assert not LightGBMFamily().accepts(xgb.XGBClassifier())
    assert not XGBoostFamily().accepts(lightgbm_classifier)
    assert not LightGBMFamily().accepts(object())


def _multiclass_lightgbm() -> Any:
    X = np.random.default_rng(0).normal(size=(90, 2))
    return lgb.LGBMClassifier(n_estimators=2, verbose=-1).fit(X, np.arange(90) % 3)


def _regression_lightgbm() -> Any:
    X = np.random.default_rng(0).normal(size=(60, 2))
    return lgb.LGBMRegressor(n_estimators=2, verbose=-1).fit(X, X[:, 0])


def _linear_tree_lightgbm() -> Any:
    X = np.random.default_rng(0).normal(size=(60, 2))
    data = lgb.Dataset(X, X[:, 0] > 0)
    return lgb.train({"objective": "binary", "linear_tree": True, "verbose": -1}, data, 2)


def _multiclass_xgboost() -> Any:
    X = np.random.default_rng(0).normal(size=(90, 2))
    return xgb.XGBClassifier(n_estimators=2).fit(X, np.arange(90) % 3)


def _regression_xgboost() -> Any:
    X = np.random.default_rng(0).normal(size=(60, 2))
    return xgb.XGBRegressor(n_estimators=2).fit(X, X[:, 0])


def _categories_not_kept_xgboost() -> Any:
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=60), rng.integers(0, 3, 60)])
    data = xgb.DMatrix(X, X[:, 1] > 0, feature_types=["float", "c"], enable_categorical=True)
    return xgb.train({"objective": "binary:logistic"}, data, 2)


@pytest.mark.parametrize(
    ("family", "build", "expected"),
    [
        (LightGBMFamily(), _multiclass_lightgbm, "multiclass"),
        (LightGBMFamily(), _regression_lightgbm, "regression"),
        (LightGBMFamily(), _linear_tree_lightgbm, "linear trees"),
        (XGBoostFamily(), _multiclass_xgboost, "multi:softprob"),
        (XGBoostFamily(), _regression_xgboost, "reg:squarederror"),
        (XGBoostFamily(), _categories_not_kept_xgboost, "keeps no categories"),
    ],
    ids=[
        "lightgbm-multiclass",
        "lightgbm-regression",
        "lightgbm-linear-trees",
        "xgboost-multiclass",
        "xgboost-regression",
        "xgboost-categories-not-kept",
    ],
)
def test_unservable_models_are_refused_in_one_line(
    family: LightGBMFamily | XGBoostFamily, build: Any, expected: str
) -> None:
    model = build()
    assert family.accepts(model)

    with pytest.raises(RegistryError, match=expected) as refused:
        family.dumps(model)

    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("reader", [read_lightgbm_file, read_xgboost_file])
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (pickle.dumps({"model": [1.0, 2.0]}), "is a pickle"),
        (np.random.default_rng(0).bytes(512), "is not a"),
    ],
    ids=["pickle", "random-bytes"],
)
def test_reading_a_file_that_is_no_model_is_refused_in_one_line(
    tmp_path: Any, reader: Any, content: bytes, expected: str
) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(content)

    with pytest.raises(ScorerError, match=expected) as refused:
        reader(path)

    assert "\n" not in str(refused.value) and str(path) in str(refused.value)


def test_reading_saved_models_gives_their_boosters(
    tmp_path: Any, lightgbm_classifier: lgb.LGBMClassifier, xgboost_classifier: xgb.XGBClassifier
) -> None:
    lightgbm_classifier.booster_.save_model(tmp_path / "model.txt")
    xgboost_classifier.save_model(tmp_path / "model.json")
    xgboost_classifier.save_model(tmp_path / "model.ubj")
    events = _events(50, seed=15, regions=REGIONS)

    booster = read_lightgbm_file(tmp_path / "model.txt")
    expected = lightgbm_classifier.predict_proba(_frame(events))[:, 1]
    assert np.array_equal(booster.predict(_frame(events)), expected)
    for name in ("model.json", "model.ubj"):
        frame = xgb.DMatrix(_frame(events, region=False))
        own = xgboost_classifier.get_booster().predict(frame)
        assert np.array_equal(read_xgboost_file(tmp_path / name).predict(frame), own)


def test_a_spec_that_disagrees_with_the_model_is_refused(
    lightgbm_classifier: lgb.LGBMClassifier,
) -> None:
    numeric_region = FeatureSpec(
        features=[
            Feature(name="income", kind="numeric", nullable=True),
            Feature(name="age", kind="numeric"),
            Feature(name="region", kind="numeric"),
            Feature(name="owner", kind="boolean"),
        ]
    )
    reordered = FeatureSpec(features=list(reversed(_spec(REGIONS).features)))

    with pytest.raises(RegistryError, match="reads categories in column 'region'"):
        LightGBMFamily().compile(lightgbm_classifier, numeric_region, {})
    with pytest.raises(RegistryError, match="column 0 is 'income'"):
        LightGBMFamily().compile(lightgbm_classifier, reordered, {})
    with pytest.raises(RegistryError, match="unknown to the LightGBM model"):
        LightGBMFamily().compile(lightgbm_classifier, _spec(["central", "coast"]), {})
