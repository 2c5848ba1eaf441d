"""Models trained elsewhere, served on the real broker: one test per family.

Each test fits a model on :func:`tests.support.credit.credit_frame` as a notebook would,
saves it in its library's own format, registers it with ``scorer models register`` (or
imports it from a real MLflow store), promotes it, serves events carrying the data's own
columns, and checks every decision and explanation against the library itself: the score
equals the library's ``predict_proba`` for that row, the explanation is additive and names
the raw columns, and for LightGBM and XGBoost the contributions are the library's own.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from tests.support.credit import (
    CATEGORICAL,
    CONTEXT,
    FEATURES,
    NUMERIC,
    TARGET,
    adverse_labels,
    credit_events,
    credit_frame,
)
from tests.support.kafka import unique
from tests.support.scorer import ScorerSetup

pytestmark = pytest.mark.kafka

EVENTS = 400
"""Events served per family (the first rows of the frame, which the model also saw)."""


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return credit_frame(1_200, seed=5)


def _cli(setup: ScorerSetup, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *argv],
        env=setup.env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _data_file(frame: pd.DataFrame, columns: list[str], path: Path) -> Path:
    frame[[*columns, CONTEXT, TARGET]].to_csv(path, index=False)
    return path


def _register(setup: ScorerSetup, name: str, artifact: Path, data: Path) -> dict[str, Any]:
    registry = str(setup.registry.root)
    _ok(_cli(setup, "models", "register", name, "--artifact", str(artifact), "--data",
             str(data), "--target", TARGET, "--adverse", "bad", "--context", CONTEXT,
             "--registry", registry))  # fmt: skip
    return _promote_and_describe(setup, name)


def _promote_and_describe(setup: ScorerSetup, name: str) -> dict[str, Any]:
    registry = str(setup.registry.root)
    _ok(_cli(setup, "models", "promote", name, "1", "--skip-replay", "--registry", registry))
    shown = _ok(_cli(setup, "models", "show", name, "--json", "--registry", registry))
    manifest: dict[str, Any] = orjson.loads(shown)
    return manifest


def _serve_and_collect(
    setup: ScorerSetup, name: str, frame: pd.DataFrame, columns: list[str]
) -> tuple[dict[str, dict], dict[str, dict], list[dict[str, Any]]]:
    """Serve ``name`` on events of the first rows; the decisions and explanations by id."""
    events = credit_events(frame.head(EVENTS), run_id=unique(name))
    for event in events:
        event["features"] = {c: event["features"][c] for c in columns}
    env = {**setup.env, "SCORER_MODEL": name, "SCORER_GROUP_ID": unique(name)}
    setup.start("serve", "--metrics-port", "0", env=env)
    consumer = setup.consumer("decisions", "explanations")
    setup.produce([(e["entity_id"].encode(), orjson.dumps(e)) for e in events])
    wanted = {e["event_id"] for e in events}
    decisions: dict[str, dict] = {}
    explanations: dict[str, dict] = {}
    read = 0

    def until(messages: list) -> bool:
        nonlocal read
        for message in messages[read:]:
            record = orjson.loads(message.value())
            if record["event_id"] in wanted:
                target = explanations if "base_value" in record else decisions
                target[record["event_id"]] = record
        read = len(messages)
        return len(decisions) == len(explanations) == len(wanted)

    setup.read(consumer, until, timeout=180)
    consumer.close()
    return decisions, explanations, events


def _check(
    decisions: dict[str, dict],
    explanations: dict[str, dict],
    events: list[dict[str, Any]],
    library_scores: np.ndarray,
    columns: list[str],
    output_space: str = "log_odds",
    *,
    score_tolerance: float = 1e-9,
    additivity_limit: float = 1e-6,
) -> np.ndarray:
    """Score = the library's, additivity, raw column names; the contributions matrix."""
    contributions = np.zeros((len(events), len(columns)))
    for i, event in enumerate(events):
        decision = decisions[event["event_id"]]
        explanation = explanations[event["event_id"]]
        assert decision["model"]["version"] == 1
        assert abs(decision["score"] - library_scores[i]) <= score_tolerance, (i, decision)
        assert set(explanation["contributions"]) == set(columns)
        assert explanation["output_space"] == output_space
        total = explanation["base_value"] + sum(explanation["contributions"].values())
        assert abs(total - explanation["output_value"]) <= additivity_limit
        assert explanation["additivity_error"] <= additivity_limit
        for reason in decision["reason_codes"]:
            assert reason["feature"] in columns
        contributions[i] = [explanation["contributions"][c] for c in columns]
    return contributions


def _linear_pipeline() -> Any:
    prepare = ColumnTransformer([
        ("numbers", make_pipeline(SimpleImputer(), StandardScaler()), NUMERIC),
        ("categories", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
    ])  # fmt: skip
    return make_pipeline(prepare, LogisticRegression(max_iter=1_000))


def _hgb_pipeline() -> Any:
    prepare = ColumnTransformer(
        [("categories", OrdinalEncoder(), CATEGORICAL)], remainder="passthrough"
    )
    return make_pipeline(prepare, HistGradientBoostingClassifier(max_iter=40, random_state=0))


def _forest_pipeline() -> Any:
    prepare = ColumnTransformer([
        ("numbers", SimpleImputer(strategy="median"), NUMERIC),
        ("categories", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
    ])  # fmt: skip
    forest = RandomForestClassifier(n_estimators=25, max_depth=6, random_state=0)
    return make_pipeline(prepare, forest)


@pytest.mark.parametrize(
    ("family", "build", "output_space"),
    [
        ("linear", _linear_pipeline, "log_odds"),
        ("hist-gbt", _hgb_pipeline, "log_odds"),
        ("forest", _forest_pipeline, "probability"),
    ],
)
def test_scikit_learn_pipelines_are_served_as_they_score(
    scorer_setup: ScorerSetup,
    frame: pd.DataFrame,
    tmp_path: Path,
    family: str,
    build: Callable[[], Any],
    output_space: str,
) -> None:
    model = build().fit(frame[FEATURES], adverse_labels(frame))
    artifact = tmp_path / f"{family}.skops"
    sio.dump(model, artifact)
    name = f"credit-{family}"
    manifest = _register(scorer_setup, name, artifact,
                         _data_file(frame, FEATURES, tmp_path / "credit.csv"))  # fmt: skip
    assert manifest["kind"] == "sklearn"
    assert manifest["lineage"]["sha256"] == hashlib.sha256(artifact.read_bytes()).hexdigest()
    assert manifest["feature_spec"]["features"][0]["name"] in FEATURES
    decisions, explanations, events = _serve_and_collect(scorer_setup, name, frame, FEATURES)
    library = model.predict_proba(frame.head(EVENTS)[FEATURES])[:, 1]
    contributions = _check(decisions, explanations, events, library, FEATURES, output_space)
    if family == "linear":  # weight x centred input, summed over each column's one-hot group
        assert np.abs(contributions[:, FEATURES.index("region")]).max() > 0.0


def test_a_lightgbm_booster_is_explained_by_its_own_contributions(
    scorer_setup: ScorerSetup, frame: pd.DataFrame, tmp_path: Path
) -> None:
    import lightgbm as lgb

    inputs = frame[FEATURES].astype({c: "category" for c in CATEGORICAL})
    dataset = lgb.Dataset(inputs, adverse_labels(frame))
    params = {"objective": "binary", "num_leaves": 15, "verbose": -1, "seed": 0}
    booster = lgb.train(params, dataset, num_boost_round=40)
    artifact = tmp_path / "credit.txt"
    booster.save_model(artifact)
    manifest = _register(scorer_setup, "credit-lgb", artifact,
                         _data_file(frame, FEATURES, tmp_path / "credit.csv"))  # fmt: skip
    assert manifest["kind"] == "lightgbm"
    decisions, explanations, events = _serve_and_collect(
        scorer_setup, "credit-lgb", frame, FEATURES
    )
    head = inputs.head(EVENTS)
    library = booster.predict(head)
    contributions = _check(decisions, explanations, events, library, FEATURES)
    own = booster.predict(head, pred_contrib=True)
    order = booster.feature_name()
    expected = own[:, [order.index(c) for c in FEATURES]]
    np.testing.assert_allclose(contributions, expected, rtol=0, atol=1e-12)


def test_an_xgboost_booster_is_explained_by_its_own_contributions(
    scorer_setup: ScorerSetup, frame: pd.DataFrame, tmp_path: Path
) -> None:
    import xgboost as xgb

    train = xgb.DMatrix(frame[NUMERIC], label=adverse_labels(frame))
    params = {"objective": "binary:logistic", "max_depth": 4, "eta": 0.3, "seed": 0}
    booster = xgb.train(params, train, num_boost_round=40)
    artifact = tmp_path / "credit.ubj"
    booster.save_model(artifact)
    manifest = _register(scorer_setup, "credit-xgb", artifact,
                         _data_file(frame, NUMERIC, tmp_path / "credit.csv"))  # fmt: skip
    assert manifest["kind"] == "xgboost"
    decisions, explanations, events = _serve_and_collect(scorer_setup, "credit-xgb", frame, NUMERIC)
    head = xgb.DMatrix(frame.head(EVENTS)[NUMERIC])
    library = booster.predict(head).astype(float)
    # XGBoost computes in float32: its probability is a float32 logistic of its margin, and
    # its contributions add up to the margin within the float32 bound kept in the manifest
    limit = manifest["explainer"]["additivity_limit"]
    assert 1e-6 <= limit < 1e-3
    contributions = _check(decisions, explanations, events, library, NUMERIC,
                           score_tolerance=2.4e-7, additivity_limit=limit)  # fmt: skip
    own = booster.predict(head, pred_contribs=True)
    np.testing.assert_allclose(contributions, own[:, : len(NUMERIC)], rtol=0, atol=1e-12)


def test_a_model_imported_from_mlflow_is_served_without_unpickling(
    scorer_setup: ScorerSetup, frame: pd.DataFrame, tmp_path: Path
) -> None:
    import mlflow

    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(tracking)
    try:
        artifacts = (tmp_path / "mlflow-artifacts").as_uri()  # not ./mlruns beside the tests
        mlflow.create_experiment("credit", artifact_location=artifacts)
        mlflow.set_experiment(experiment_name="credit")
        model = _linear_pipeline().fit(frame[FEATURES], adverse_labels(frame))
        with mlflow.start_run() as run:
            mlflow.sklearn.log_model(  # a pickle, as most MLflow models in use are
                model,
                name="model",
                registered_model_name="credit",
                serialization_format="cloudpickle",
            )
    finally:
        mlflow.set_tracking_uri(None)
    data = str(_data_file(frame, FEATURES, tmp_path / "credit.csv"))
    common = ["--mlflow", "models:/credit/1", "--tracking-uri", tracking, "--data", data,
              "--target", TARGET, "--adverse", "bad", "--context", CONTEXT,
              "--registry", str(scorer_setup.registry.root)]  # fmt: skip
    refused = _cli(scorer_setup, "models", "import", "credit-mlflow", *common)
    assert refused.returncode != 0
    assert scorer_setup.registry.versions("credit-mlflow") == []
    digest = re.search(r"\b[0-9a-f]{64}\b", refused.stderr)
    assert digest, refused.stderr
    _ok(_cli(scorer_setup, "models", "import", "credit-mlflow", *common,
             "--trust-pickle", digest.group(0)))  # fmt: skip
    manifest = _promote_and_describe(scorer_setup, "credit-mlflow")
    assert manifest["artifact"]["format"] == "skops"
    assert manifest["lineage"]["run_id"] == run.info.run_id
    assert str(manifest["lineage"]["model_version"]) == "1"
    decisions, explanations, events = _serve_and_collect(
        scorer_setup, "credit-mlflow", frame, FEATURES
    )
    library = model.predict_proba(frame.head(EVENTS)[FEATURES])[:, 1]
    _check(decisions, explanations, events, library, FEATURES)
