"""Models taken from a real MLflow store: a SQLite tracking and registry database with its
artifacts in a temporary folder, filled once per module with small models of each flavor.

Registered model ``credit``: version 1 is a cloudpickled scikit-learn pipeline, version 2
the same pipeline in MLflow's default format (skops), and alias ``champion`` points at 2.
The run also holds a LightGBM Booster, a LightGBM classifier, an XGBoost Booster and a
pyfunc-only model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest
import xgboost as xgb
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from models.external.mlflow_source import MLFLOW_MISSING, fetch_mlflow_model
from schemas.errors import ModelSourceError

RNG = np.random.default_rng(11)
X = RNG.normal(size=(80, 3))
Y = (X[:, 0] - X[:, 1] + RNG.normal(scale=0.5, size=80) > 0).astype(int)

QUIET_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
}
"""No telemetry, no retries against an absent server."""


@dataclass(frozen=True)
class Store:
    tracking_uri: str
    locations: dict[str, Path]
    """Where each logged model's files are, by its name in the run."""
    model_ids: dict[str, str]
    run_id: str
    pipeline: Pipeline
    booster: lgb.Booster
    classifier: lgb.LGBMClassifier
    xgb_booster: xgb.Booster

    def file_sha256(self, model: str, file: str) -> str:
        """The sha256 of ``file`` of the model logged as ``model``, read from the store."""
        return hashlib.sha256((self.locations[model] / file).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def mlflow_module() -> Iterator[ModuleType]:
    """MLflow, imported with telemetry off and no tracking URI from the environment."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in QUIET_ENV.items():
            patch.setenv(name, value)
        for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
            patch.delenv(name, raising=False)
        import mlflow
        import mlflow.telemetry

        mlflow.telemetry.set_telemetry_client()  # re-read the switch if imported before
        levels = {name: logging.getLogger(name).level for name in ("mlflow", "alembic")}
        for name in levels:
            logging.getLogger(name).setLevel(logging.ERROR)
        yield mlflow
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@pytest.fixture(scope="module")
def store(mlflow_module: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Store:
    mlflow = mlflow_module
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"
    pipeline = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]).fit(X, Y)
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 4, "verbose": -1}, lgb.Dataset(X, Y), 5
    )
    classifier = lgb.LGBMClassifier(n_estimators=5, num_leaves=4, verbose=-1).fit(X, Y)
    xgb_booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 2}, xgb.DMatrix(X, label=Y), 5
    )
    quick: dict[str, Any] = {"pip_requirements": []}  # no requirements-inference subprocess
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        warnings.simplefilter("ignore")

        class Echo(mlflow.pyfunc.PythonModel):
            def predict(self, context: Any, model_input: list[str]) -> list[str]:
                return model_input

        patch.setenv("MLFLOW_TRACKING_URI", uri)  # the fluent logging API reads it
        client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        artifacts = Path(uri.removeprefix("sqlite:///")).parent / "artifacts"
        experiment = client.create_experiment("imports", artifact_location=str(artifacts))
        with mlflow.start_run(experiment_id=experiment) as run:
            logged = [
                mlflow.sklearn.log_model(
                    pipeline,
                    name="pickled",
                    serialization_format="cloudpickle",
                    registered_model_name="credit",
                    **quick,
                ),
                mlflow.sklearn.log_model(
                    pipeline, name="pipeline", registered_model_name="credit", **quick
                ),
                mlflow.lightgbm.log_model(booster, name="booster", **quick),
                mlflow.lightgbm.log_model(classifier, name="classifier", **quick),
                mlflow.xgboost.log_model(xgb_booster, name="xgb", **quick),
                mlflow.pyfunc.log_model(name="echo", python_model=Echo(), **quick),
            ]
        client.set_registered_model_alias("credit", "champion", "2")
        models = [client.get_logged_model(info.model_id) for info in logged]
    return Store(
        tracking_uri=uri,
        locations={model.name: Path(model.artifact_location) for model in models},
        model_ids={model.name: model.model_id for model in models},
        run_id=run.info.run_id,
        pipeline=pipeline,
        booster=booster,
        classifier=classifier,
        xgb_booster=xgb_booster,
    )


def fetch(store: Store, uri: str, workdir: Path, **options: Any) -> Any:
    return fetch_mlflow_model(uri, tracking_uri=store.tracking_uri, workdir=workdir, **options)


def refusal(store: Store, uri: str, workdir: Path, **options: Any) -> str:
    """The one-line message fetching ``uri`` is refused with."""
    with pytest.raises(ModelSourceError) as caught:
        fetch(store, uri, workdir, **options)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_version_number_loads_the_skops_pipeline_without_trust(
    store: Store, tmp_path: Path
) -> None:
    fetched = fetch(store, "models:/credit/2", tmp_path)

    assert fetched.flavor == "sklearn"
    assert isinstance(fetched.model, Pipeline)
    np.testing.assert_array_equal(fetched.model.predict_proba(X), store.pipeline.predict_proba(X))
    assert fetched.lineage == {
        "source": "mlflow",
        "uri": "models:/credit/2",
        "tracking_uri": store.tracking_uri,
        "run_id": store.run_id,
        "model_name": "credit",
        "model_version": 2,
        "alias": None,
        "artifact_path": None,
        "model_id": store.model_ids["pipeline"],
        "flavor": "sklearn",
        "artifact_file": "model.skops",
        "artifact_sha256": store.file_sha256("pipeline", "model.skops"),
        "trusted_pickle": False,
    }
    assert json.loads(json.dumps(fetched.lineage)) == fetched.lineage


def test_alias_is_resolved_to_its_version(store: Store, tmp_path: Path) -> None:
    fetched = fetch(store, "models:/credit@champion", tmp_path)

    assert (fetched.lineage["model_version"], fetched.lineage["alias"]) == (2, "champion")
    assert fetched.lineage["run_id"] == store.run_id
    np.testing.assert_array_equal(fetched.model.predict(X), store.pipeline.predict(X))


def test_run_artifact_is_fetched_by_its_path(store: Store, tmp_path: Path) -> None:
    fetched = fetch(store, f"runs:/{store.run_id}/pipeline", tmp_path)

    assert fetched.lineage["run_id"] == store.run_id
    assert fetched.lineage["artifact_path"] == "pipeline"
    assert fetched.lineage["model_id"] == store.model_ids["pipeline"]
    assert (fetched.lineage["model_name"], fetched.lineage["model_version"]) == (None, None)
    np.testing.assert_array_equal(fetched.model.predict_proba(X), store.pipeline.predict_proba(X))


def test_pickle_is_refused_without_trust_and_its_sha256_given(store: Store, tmp_path: Path) -> None:
    sha256 = store.file_sha256("pickled", "model.pkl")

    message = refusal(store, "models:/credit/1", tmp_path)

    assert f"--trust-pickle {sha256}" in message
    assert "model.pkl" in message


def test_pickle_is_refused_with_a_wrong_sha256_naming_both(store: Store, tmp_path: Path) -> None:
    wrong = "0" * 64

    message = refusal(store, "models:/credit/1", tmp_path, trust_pickle=wrong)

    assert wrong in message
    assert store.file_sha256("pickled", "model.pkl") in message


def test_pickle_is_loaded_with_its_sha256(store: Store, tmp_path: Path) -> None:
    sha256 = store.file_sha256("pickled", "model.pkl")

    fetched = fetch(store, "models:/credit/1", tmp_path, trust_pickle=sha256)

    assert fetched.lineage["trusted_pickle"] is True
    assert fetched.lineage["artifact_sha256"] == sha256
    assert fetched.lineage["model_version"] == 1
    np.testing.assert_array_equal(fetched.model.predict_proba(X), store.pipeline.predict_proba(X))


def test_lightgbm_booster_is_read_from_its_text_model(store: Store, tmp_path: Path) -> None:
    fetched = fetch(store, f"runs:/{store.run_id}/booster", tmp_path)

    assert fetched.flavor == "lightgbm"
    assert isinstance(fetched.model, lgb.Booster)
    assert (fetched.lineage["artifact_file"], fetched.lineage["trusted_pickle"]) == (
        "model.lgb",
        False,
    )
    np.testing.assert_array_equal(fetched.model.predict(X), store.booster.predict(X))


def test_lightgbm_classifier_saved_with_skops_needs_no_trust(store: Store, tmp_path: Path) -> None:
    fetched = fetch(store, f"runs:/{store.run_id}/classifier", tmp_path)

    assert isinstance(fetched.model, lgb.LGBMClassifier)
    assert fetched.lineage["trusted_pickle"] is False
    np.testing.assert_array_equal(fetched.model.predict_proba(X), store.classifier.predict_proba(X))


def test_xgboost_booster_needs_no_trust(store: Store, tmp_path: Path) -> None:
    fetched = fetch(store, f"runs:/{store.run_id}/xgb", tmp_path)

    assert fetched.flavor == "xgboost"
    assert isinstance(fetched.model, xgb.Booster)
    assert (fetched.lineage["artifact_file"], fetched.lineage["trusted_pickle"]) == (
        "model.ubj",
        False,
    )
    matrix = xgb.DMatrix(X)
    np.testing.assert_array_equal(fetched.model.predict(matrix), store.xgb_booster.predict(matrix))


def test_pyfunc_only_model_is_refused_naming_the_flavors(store: Store, tmp_path: Path) -> None:
    message = refusal(store, f"runs:/{store.run_id}/echo", tmp_path)

    assert "python_function" in message
    assert "lightgbm, sklearn, xgboost" in message


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("models:/nobody/1", "has no registered model 'nobody'"),
        ("models:/credit/9", "registered model 'credit' has no version 9"),
        ("models:/credit@nobody", "has no alias 'nobody' (aliases: champion)"),
        (f"runs:/{'0' * 32}/model", f"has no run '{'0' * 32}'"),
    ],
)
def test_what_the_store_does_not_hold_is_one_line(
    store: Store, tmp_path: Path, uri: str, expected: str
) -> None:
    assert expected in refusal(store, uri, tmp_path)


def test_absent_run_artifact_is_one_line(store: Store, tmp_path: Path) -> None:
    message = refusal(store, f"runs:/{store.run_id}/absent", tmp_path)

    assert f"runs:/{store.run_id}/absent" in message


@pytest.mark.parametrize(
    "uri", ["s3://bucket/model", "models:/credit", "models:/credit/latest", "runs:/abc", "credit"]
)
def test_other_uris_are_refused_naming_the_accepted_forms(uri: str, tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError, match=r"expected models:/<name>@<alias>, ") as caught:
        fetch_mlflow_model(uri, workdir=tmp_path)
    assert "\n" not in str(caught.value)


def test_tracking_uri_defaults_to_mlflow_environment(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.tracking_uri)

    fetched = fetch_mlflow_model("models:/credit@champion", workdir=tmp_path)

    assert fetched.lineage["tracking_uri"] == store.tracking_uri
    assert fetched.lineage["model_version"] == 2


def test_explicit_tracking_uri_leaves_mlflow_configuration_as_it_was(
    store: Store, mlflow_module: ModuleType, tmp_path: Path
) -> None:
    before = (mlflow_module.get_tracking_uri(), mlflow_module.get_registry_uri())

    fetch(store, "models:/credit/2", tmp_path)

    assert (mlflow_module.get_tracking_uri(), mlflow_module.get_registry_uri()) == before
    assert before[0] != store.tracking_uri


def test_fetch_writes_nothing_outside_its_workdir(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLflow resolves models:/ and logged-model runs:/ URIs against its global (default)
    store, which it creates in the working folder; a fetch never reaches that path."""
    monkeypatch.chdir(tmp_path)

    fetch(store, "models:/credit@champion", tmp_path / "by-alias")
    fetch(store, f"runs:/{store.run_id}/booster", tmp_path / "by-run")

    assert sorted(path.name for path in tmp_path.iterdir()) == ["by-alias", "by-run"]


def test_absent_sqlite_store_is_refused_not_created(
    mlflow_module: ModuleType, tmp_path: Path
) -> None:
    database = tmp_path / "absent.db"

    with pytest.raises(ModelSourceError, match="no MLflow database at"):
        fetch_mlflow_model(
            "models:/credit/1", tracking_uri=f"sqlite:///{database}", workdir=tmp_path / "dl"
        )
    assert not database.exists()


def test_silent_tracking_server_is_one_line(mlflow_module: ModuleType, tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(ModelSourceError, match="no MLflow tracking server answers at") as caught:
        fetch_mlflow_model(
            "models:/credit/1", tracking_uri=f"http://127.0.0.1:{port}", workdir=tmp_path
        )
    assert "\n" not in str(caught.value)


def test_password_in_tracking_uri_never_reaches_the_message(
    mlflow_module: ModuleType, tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(ModelSourceError) as caught:
        fetch_mlflow_model(
            "models:/credit/1",
            tracking_uri=f"http://ana:s3cret@127.0.0.1:{port}",
            workdir=tmp_path,
        )
    assert "s3cret" not in str(caught.value)
    assert f"http://ana:***@127.0.0.1:{port}" in str(caught.value)


def test_missing_mlflow_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` raises ImportError

    with pytest.raises(ModelSourceError) as caught:
        fetch_mlflow_model("models:/credit/1", workdir=tmp_path)
    assert str(caught.value) == MLFLOW_MISSING
