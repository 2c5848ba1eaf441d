"""Nothing unservable enters the registry: registration and verify load, score and explain."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from models.artifacts import save_artifact
from models.featurespec import Feature, FeatureSpec
from models.manifest import MANIFEST_FILE, TrainingInfo
from models.reference import build_reference
from models.registry import ALIASES_FILE, Registry
from schemas.errors import RegistryError
from streams.cli import main

RNG = np.random.default_rng(5)
X = RNG.normal(size=(300, 3))
Y = (X[:, 0] - X[:, 2] + RNG.normal(scale=0.5, size=300) > 0).astype(int)
ROWS = [{f"x{j}": float(v) for j, v in enumerate(row)} for row in X]
SPEC = FeatureSpec(features=[Feature(name=f"x{i}", kind="numeric") for i in range(3)])


def fields(**changes: Any) -> dict[str, Any]:
    """Manifest fields as training writes them: reference statistics of the training rows."""
    return {
        "feature_spec": SPEC,
        "reference": build_reference(SPEC, ROWS),
        "training": TrainingInfo(
            dataset="synthetic",
            rows=300,
            holdout_rows=0,
            seed=5,
            data_sha256="cd" * 32,
            code_version="test",
        ),
        **changes,
    }


def scaled_logistic() -> Pipeline:
    return Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]).fit(X, Y)


def trees() -> GradientBoostingClassifier:
    return GradientBoostingClassifier(n_estimators=8, max_depth=2, random_state=0).fit(X, Y)


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "registry")


def contents(registry: Registry, name: str) -> dict[str, Any]:
    """Everything a reader of the registry can see of ``name``."""
    folder = registry.root / name
    files = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    aliases = (folder / ALIASES_FILE).read_text() if (folder / ALIASES_FILE).exists() else None
    return {"files": files, "aliases": aliases, "names": registry.names()}


def scorer(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
           registry: Registry, *argv: str) -> tuple[int, str, str]:  # fmt: skip
    monkeypatch.setenv("SCORER_REGISTRY", str(registry.root))
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- refusals at registration ----------------------------------------------------------------


def test_a_bare_logistic_regression_without_reference_mean_is_refused(registry: Registry):
    bare = LogisticRegression().fit(X, Y)
    with pytest.raises(RegistryError) as refused:
        registry.register(bare, name="bare", kind="logistic", manifest_fields=fields())
    message = str(refused.value)
    assert message.startswith("refused to register 'bare': check build failed:")
    assert "reference_mean" in message and "\n" not in message
    assert type(refused.value).__name__ == "UnservableModel"
    assert registry.versions("bare") == [] and registry.names() == []
    # with the constant training writes, the same estimator is servable
    explainer = {"method": "linear", "reference_mean": X.mean(axis=0).tolist()}
    manifest = registry.register(bare, name="bare", kind="logistic",
                                 manifest_fields=fields(explainer=explainer))  # fmt: skip
    assert manifest.version == 1 and registry.verify("bare", 1) == manifest


def test_a_boosted_model_registered_as_logistic_is_refused(registry: Registry):
    with pytest.raises(RegistryError, match=r"check build failed: .*GradientBoostingClassifier"):
        registry.register(trees(), name="mislabelled", kind="logistic", manifest_fields=fields())
    assert registry.versions("mislabelled") == []


def test_a_refusal_leaves_nothing_in_the_registry(registry: Registry):
    registry.register(scaled_logistic(), name="loans", kind="logistic", manifest_fields=fields())
    registry.set_alias("loans", "champion", 1, actor="test")
    before = contents(registry, "loans")
    history = registry.history("loans")
    for model, kind in [(LogisticRegression().fit(X, Y), "logistic"), (trees(), "logistic")]:
        with pytest.raises(RegistryError, match="check build failed"):
            registry.register(model, name="loans", kind=kind, manifest_fields=fields())
    assert contents(registry, "loans") == before
    assert before["files"] == ["1", ".lock", ALIASES_FILE] or set(before["files"]) == {
        "1", ".lock", ALIASES_FILE}  # fmt: skip
    assert not [p for p in (registry.root / "loans").iterdir() if p.name.startswith(".tmp")]
    assert registry.versions("loans") == [1]
    assert registry.aliases("loans") == {"champion": 1} and registry.history("loans") == history
    # the next good version takes the next number: nothing was claimed by the refusals
    assert registry.register(trees(), name="loans", kind="gbt",
                             manifest_fields=fields()).version == 2  # fmt: skip


def test_rows_given_by_the_caller_are_checked_against_the_spec(registry: Registry):
    with pytest.raises(RegistryError, match=r"check rows failed: 1 of 2 rows from rows given"):
        registry.register(scaled_logistic(), name="loans", kind="logistic",
                          manifest_fields=fields(), sample_rows=[ROWS[0], {"x0": 1.0}])  # fmt: skip
    assert registry.versions("loans") == []
    manifest = registry.register(scaled_logistic(), name="loans", kind="logistic",
                                 manifest_fields=fields(), sample_rows=ROWS[:50])  # fmt: skip
    assert manifest.version == 1


# --- good versions ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["logistic", "gbt"])
def test_a_good_model_registers_and_verifies_on_its_reference(registry: Registry, kind: str):
    model = scaled_logistic() if kind == "logistic" else trees()
    manifest = registry.register(model, name="good", kind=kind, manifest_fields=fields())
    checked, measured = registry.check("good", 1)
    assert checked == manifest
    assert measured.source == "reference statistics" and measured.rows > 0
    assert measured.max_score_error <= 1e-9 and measured.max_additivity_error <= 1e-6


def test_cli_verify_passes_a_good_version(
    registry: Registry, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    manifest = registry.register(trees(), name="good", kind="gbt", manifest_fields=fields())
    code, out, err = scorer(monkeypatch, capsys, registry, "models", "verify", "good", "1")
    assert (code, out.strip(), err) == (0, f"ok good v1 sha256 {manifest.artifact.sha256}", "")


# --- verify on a tampered version ------------------------------------------------------------


def _swap_artifact(registry: Registry, name: str, version: int, model: Any, tmp: Path) -> None:
    """Replace a version's artifact with another model's, and its manifest's hash with the
    new one (so that only loading and scoring can tell)."""
    folder = registry.root / name / str(version)
    tmp.mkdir()
    info = save_artifact(model, "gbt", tmp)
    os.chmod(folder, 0o755)
    for file in (info.file, MANIFEST_FILE):
        os.chmod(folder / file, 0o644)
    (folder / info.file).write_bytes((tmp / info.file).read_bytes())
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest["artifact"] = info.model_dump()
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))


def test_verify_refuses_a_tampered_artifact_and_names_the_check(
    registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    registry.register(scaled_logistic(), name="loans", kind="logistic", manifest_fields=fields())
    registry.register(scaled_logistic(), name="loans", kind="logistic", manifest_fields=fields())
    _swap_artifact(registry, "loans", 1, trees(), tmp_path / "swap")
    with pytest.raises(
        RegistryError, match=r"^loans v1: check build failed: .*not a fitted linear"
    ):
        registry.verify("loans", 1)
    code, out, err = scorer(monkeypatch, capsys, registry, "models", "verify", "loans")
    assert code == 1
    assert out.startswith("ok loans v2 sha256 ")
    assert err.startswith("scorer: error: loans v1: check build failed: ")
    assert len(err.strip().splitlines()) == 1
    with pytest.raises(RegistryError, match="check build failed"):
        registry.set_alias("loans", "champion", 1, actor="test")  # nor can it be promoted
    assert registry.aliases("loans") == {}
