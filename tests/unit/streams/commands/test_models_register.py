"""``scorer models register``: a model from elsewhere in, or a one-line refusal and nothing
written. No broker: registration reads files and writes the registry only."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC

from models.external.base import raw_batch
from models.external.register import register_model
from models.registry import Registry
from models.scoring_model import ScoringModel
from tests.support.cli import ScorerCli
from tests.support.credit import (
    CATEGORICAL,
    CONTEXT,
    FEATURES,
    NUMERIC,
    TARGET,
    adverse_labels,
    credit_frame,
    features_of,
)

COMPLETE = [c for c in NUMERIC if c != "income"]  # columns without missing values


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return credit_frame(600, seed=11)


def _pipeline(frame: pd.DataFrame) -> Any:
    prepare = ColumnTransformer([
        ("numbers", StandardScaler(), COMPLETE),
        ("categories", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
    ])  # fmt: skip
    model = make_pipeline(prepare, LogisticRegression(max_iter=500))
    return model.fit(frame[COMPLETE + CATEGORICAL], adverse_labels(frame))


def _files(tmp_path: Path, frame: pd.DataFrame, model: Any, columns: list[str]) -> list[str]:
    artifact, data = tmp_path / "model.skops", tmp_path / "data.csv"
    sio.dump(model, artifact)
    frame[[*columns, CONTEXT, TARGET]].to_csv(data, index=False)
    registry = str(tmp_path / "registry")
    return ["--artifact", str(artifact), "--data", str(data), "--target", TARGET,
            "--context", CONTEXT, "--registry", registry]  # fmt: skip


def _refused(scorer_cli: ScorerCli, tmp_path: Path, *argv: str) -> str:
    code, out, err = scorer_cli("models", "register", "credit", *argv)
    assert code != 0 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert Registry(tmp_path / "registry").versions("credit") == []
    return lines[0]


def test_a_pipeline_is_registered_in_its_own_columns(
    scorer_cli: ScorerCli, tmp_path: Path, frame: pd.DataFrame
) -> None:
    model = _pipeline(frame)
    argv = _files(tmp_path, frame, model, COMPLETE + CATEGORICAL)
    code, out, err = scorer_cli("models", "register", "credit", *argv, "--adverse", "bad")
    assert code == 0, err
    assert out.startswith("registered credit v1 (sklearn, linear explanations in log_odds)")
    registry = Registry(tmp_path / "registry")
    manifest = registry.manifest("credit", 1)
    assert manifest.feature_spec.names == COMPLETE + CATEGORICAL
    region = manifest.feature_spec.features[COMPLETE.index("age") + 2]
    assert region.name == "region" and region.categories == ["east", "north", "south", "west"]
    assert manifest.lineage["source"] == "file" and manifest.artifact.format == "skops"
    assert manifest.metrics["holdout_rows"] == len(frame)
    assert "given at registration" in manifest.fairness["basis"]
    assert set(manifest.fairness["attributes"]) == {CONTEXT}
    assert set(manifest.reference["features"]) == set(COMPLETE + CATEGORICAL)
    # served as the library scores, from the stored bytes
    scoring = ScoringModel.from_loaded(registry.load("credit", 1))
    rows = [{c: r[c] for c in COMPLETE + CATEGORICAL} for r in features_of(frame.head(50))]
    X = manifest.feature_spec.vectorise(rows).X
    served = scoring.score(scoring.raw_output(X))
    library = model.predict_proba(frame.head(50)[COMPLETE + CATEGORICAL])[:, 1]
    assert np.abs(served - library).max() <= 1e-12
    explained = scoring.explainer.explain(X)
    assert explained.per_feature and explained.contributions.shape == (50, 5)
    total = explained.contributions.sum(axis=1) + explained.base_value
    assert np.abs(total - explained.raw).max() <= 1e-12
    regions = raw_batch(manifest.feature_spec, X).text["region"].tolist()
    assert regions == [row["region"] for row in rows]
    code, out, _ = scorer_cli("models", "verify", "credit", "--registry", str(registry.root))
    assert code == 0 and out.startswith("ok credit v1")


def test_an_unsupported_estimator_is_refused_with_the_supported_families(
    scorer_cli: ScorerCli, tmp_path: Path, frame: pd.DataFrame
) -> None:
    model = SVC(kernel="rbf").fit(frame[COMPLETE], adverse_labels(frame))
    reason = _refused(scorer_cli, tmp_path, *_files(tmp_path, frame, model, COMPLETE),
                      "--adverse", "bad")  # fmt: skip
    assert "SVC" in reason and "LogisticRegression" in reason and "RandomForest" in reason


def test_a_pickle_is_refused_whatever_its_name(
    scorer_cli: ScorerCli, tmp_path: Path, frame: pd.DataFrame
) -> None:
    argv = _files(tmp_path, frame, _pipeline(frame), COMPLETE + CATEGORICAL)
    disguised = tmp_path / "model-in-disguise.skops"
    disguised.write_bytes(pickle.dumps(_pipeline(frame)))
    argv[1] = str(disguised)
    assert "pickle files are not accepted" in _refused(
        scorer_cli, tmp_path, *argv, "--adverse", "bad"
    )
    plain = tmp_path / "model.pkl"
    plain.write_bytes(pickle.dumps({"not": "a model"}))
    argv[1] = str(plain)
    assert "pickle files are not accepted" in _refused(
        scorer_cli, tmp_path, *argv, "--adverse", "bad"
    )


def test_columns_that_do_not_match_the_data_are_named(
    scorer_cli: ScorerCli, tmp_path: Path, frame: pd.DataFrame
) -> None:
    model = _pipeline(frame)
    lacking = _files(tmp_path, frame, model, COMPLETE)  # the data lacks region, employment
    reason = _refused(scorer_cli, tmp_path, *lacking, "--adverse", "bad")
    assert "['region', 'employment']" in reason and "the data lacks" in reason
    extra = _files(tmp_path, frame, model, FEATURES)  # the data adds income
    reason = _refused(scorer_cli, tmp_path, *extra, "--adverse", "bad")
    assert "['income']" in reason and "does not read" in reason


def test_a_target_that_is_not_0_1_needs_adverse(
    scorer_cli: ScorerCli, tmp_path: Path, frame: pd.DataFrame
) -> None:
    argv = _files(tmp_path, frame, _pipeline(frame), COMPLETE + CATEGORICAL)
    reason = _refused(scorer_cli, tmp_path, *argv)
    assert "--adverse VALUE" in reason and "'bad'" in reason and "'good'" in reason


def test_a_tampered_artifact_fails_verify(
    scorer_cli: ScorerCli, tmp_path: Path, frame: pd.DataFrame
) -> None:
    registry = Registry(tmp_path / "registry")
    data = frame[COMPLETE + CATEGORICAL + [CONTEXT, TARGET]]
    manifest = register_model(_pipeline(frame), data, name="credit", target=TARGET,
                              adverse="bad", context=[CONTEXT], registry=registry)  # fmt: skip
    path = registry.root / "credit" / "1" / manifest.artifact.file
    os.chmod(path.parent, 0o755)
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    code, _, err = scorer_cli("models", "verify", "credit", "--registry", str(registry.root))
    assert code != 0 and "sha256 mismatch" in err and len(err.strip().splitlines()) == 1


def test_a_model_reading_unnamed_columns_takes_the_data_order(
    scorer_cli: ScorerCli, tmp_path: Path, frame: pd.DataFrame
) -> None:
    model = LogisticRegression().fit(frame[COMPLETE].to_numpy(), adverse_labels(frame))
    argv = _files(tmp_path, frame, model, COMPLETE)
    code, out, err = scorer_cli("models", "register", "credit", *argv, "--adverse", "bad", "--json")
    assert code == 0, err
    assert [f["name"] for f in json.loads(out)["feature_spec"]["features"]] == COMPLETE
