"""The directory registry: versions, integrity checks, aliases, rollback, and its CLI."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from river import linear_model as river_linear
from river import preprocessing as river_pre
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from models.featurespec import Feature, FeatureSpec
from models.manifest import ModelManifest, TrainingInfo
from models.reference import build_reference
from models.registry import AliasMove, Registry
from schemas.errors import ArtifactIntegrityError, ModelNotFound, RegistryError
from tests.support.cli import ScorerCli

RNG = np.random.default_rng(11)
X = RNG.normal(size=(150, 3))
Y = (X[:, 0] + 0.5 * X[:, 1] + RNG.normal(scale=0.5, size=150) > 0).astype(int)
ROWS = [{f"x{j}": float(v) for j, v in enumerate(row)} for row in X]


def logistic_pipeline(c: float = 1.0) -> Pipeline:
    model = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(C=c))])
    return model.fit(X, Y)


def gbt() -> GradientBoostingClassifier:
    return GradientBoostingClassifier(n_estimators=6, max_depth=2, random_state=0).fit(X, Y)


def river_logistic() -> Any:
    model = river_pre.StandardScaler() | river_linear.LogisticRegression()
    for row, label in zip(ROWS, Y, strict=True):
        model.learn_one(row, bool(label))
    return model


@pytest.fixture
def manifest_fields() -> dict[str, Any]:
    """Every manifest field the caller of ``register`` provides, minimal but valid."""
    return {
        "feature_spec": FeatureSpec(
            features=[Feature(name=f"x{i}", kind="numeric") for i in range(3)]
        ),
        "context_attributes": ["group"],
        "metrics": {"auc": 0.81, "accuracy": 0.74},
        "fairness": {"group": {"disparate_impact": 0.93}},
        "reference": {"features": {"x0": {"mean": 0.0}, "x1": {"mean": 0.1}}, "score": {}},
        "training": TrainingInfo(
            dataset="synthetic",
            rows=150,
            holdout_rows=0,
            seed=11,
            data_sha256="ab" * 32,
            code_version="test",
        ),
    }


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "registry")


def _register(registry: Registry, fields: dict[str, Any], name: str = "demo", n: int = 1) -> None:
    for i in range(n):
        registry.register(
            logistic_pipeline(c=1.0 + i), name=name, kind="logistic", manifest_fields=fields
        )


def _artifact_path(registry: Registry, name: str, version: int) -> Path:
    manifest = registry.manifest(name, version)
    return registry.root / name / str(version) / manifest.artifact.file


def _make_writable(path: Path) -> None:
    os.chmod(path.parent, 0o755)
    os.chmod(path, 0o644)


# --- registering and loading -----------------------------------------------------------------


def test_register_and_load_each_kind(registry: Registry, manifest_fields: dict[str, Any]):
    models = {"logistic": logistic_pipeline(), "gbt": gbt(), "river-logistic": river_logistic()}
    for kind, model in models.items():
        manifest = registry.register(
            model, name=f"m-{kind}", kind=kind, manifest_fields=manifest_fields
        )
        assert (manifest.name, manifest.version, manifest.kind) == (f"m-{kind}", 1, kind)
        assert manifest.created_at.tzinfo is not None
        loaded = registry.load(f"m-{kind}", 1)
        assert loaded.manifest == manifest
        if kind == "river-logistic":
            got = [loaded.estimator.predict_proba_one(r) for r in ROWS[:25]]
            assert got == [model.predict_proba_one(r) for r in ROWS[:25]]
        else:
            np.testing.assert_array_equal(loaded.estimator.predict_proba(X), model.predict_proba(X))
    assert registry.names() == ["m-gbt", "m-logistic", "m-river-logistic"]
    files = sorted(p.name for p in (registry.root / "m-river-logistic" / "1").iterdir())
    assert files == ["artifact.pkl", "manifest.json"]


def test_versions_count_up_per_model(registry: Registry, manifest_fields: dict[str, Any]):
    _register(registry, manifest_fields, "a", 3)
    _register(registry, manifest_fields, "b", 1)
    assert registry.versions("a") == [1, 2, 3]
    assert registry.versions("b") == [1]
    assert registry.manifest("a").version == 3
    assert [registry.manifest("a", v).version for v in (1, 2, 3)] == [1, 2, 3]


def test_concurrent_registers_get_distinct_versions(
    registry: Registry, manifest_fields: dict[str, Any]
):
    model = river_logistic()
    results: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        try:
            m = registry.register(
                model, name="race", kind="river-logistic", manifest_fields=manifest_fields
            )
            results.append(m.version)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results) == list(range(1, 9))
    assert registry.versions("race") == list(range(1, 9))
    for v in range(1, 9):
        assert registry.verify("race", v).version == v
    leftovers = [p.name for p in (registry.root / "race").iterdir() if p.name.startswith(".tmp")]
    assert leftovers == []


def test_versions_are_read_only_and_never_rewritten(
    registry: Registry, manifest_fields: dict[str, Any]
):
    _register(registry, manifest_fields, n=1)
    folder = registry.root / "demo" / "1"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    _register(registry, manifest_fields, n=2)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert stat.S_IMODE(folder.stat().st_mode) == 0o555
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o444


def test_register_refuses_fields_the_registry_fills(
    registry: Registry, manifest_fields: dict[str, Any]
):
    with pytest.raises(RegistryError, match=r"must not set \['version'\]"):
        registry.register(
            logistic_pipeline(),
            name="demo",
            kind="logistic",
            manifest_fields={**manifest_fields, "version": 9},
        )


def test_invalid_manifest_leaves_nothing_behind(
    registry: Registry, manifest_fields: dict[str, Any]
):
    with pytest.raises(RegistryError, match="invalid manifest"):
        registry.register(
            logistic_pipeline(),
            name="demo",
            kind="logistic",
            manifest_fields={**manifest_fields, "metrics": {"auc": "high"}},
        )
    assert registry.versions("demo") == []
    assert list((registry.root / "demo").iterdir()) == []


def test_unknown_kind_is_refused(registry: Registry, manifest_fields: dict[str, Any]):
    with pytest.raises(RegistryError, match="unknown model kind"):
        registry.register(logistic_pipeline(), name="demo", kind="svm", manifest_fields={})


@pytest.mark.parametrize("name", ["", "../escape", "a/b", ".hidden", "-dash", "x" * 65, "ok\n"])
def test_invalid_names_are_refused(registry: Registry, manifest_fields: dict[str, Any], name: str):
    with pytest.raises(RegistryError, match="invalid model name"):
        registry.register(logistic_pipeline(), name=name, kind="logistic", manifest_fields={})
    with pytest.raises(RegistryError, match="invalid model name"):
        registry.versions(name)


def test_empty_registry_and_root_created_on_demand(
    registry: Registry, manifest_fields: dict[str, Any]
):
    assert not registry.root.exists()
    assert registry.names() == []
    assert registry.versions("demo") == []
    with pytest.raises(ModelNotFound, match=r"no model 'demo'.*models: none"):
        registry.manifest("demo")
    _register(registry, manifest_fields)
    assert registry.root.is_dir()
    assert registry.names() == ["demo"]


def test_not_found_messages_list_what_exists(registry: Registry, manifest_fields: dict[str, Any]):
    _register(registry, manifest_fields, "demo", 2)
    with pytest.raises(ModelNotFound, match=r"no model 'other'.*models: demo"):
        registry.load("other", 1)
    with pytest.raises(ModelNotFound, match="has no version 5; versions: 1, 2"):
        registry.load("demo", 5)
    with pytest.raises(ModelNotFound, match="has no challenger; aliases: none; versions: 1, 2"):
        registry.resolve("demo", "challenger")
    with pytest.raises(ModelNotFound, match="cannot resolve 'best'"):
        registry.resolve("demo", "best")


def test_resolve(registry: Registry, manifest_fields: dict[str, Any]):
    _register(registry, manifest_fields, n=3)
    assert registry.resolve("demo", None) == 3  # no champion yet: latest
    assert registry.resolve("demo", "champion") == 3
    registry.set_alias("demo", "champion", 1, actor="t")
    registry.set_alias("demo", "challenger", 2, actor="t")
    assert registry.resolve("demo", None) == 1
    assert registry.resolve("demo", "challenger") == 2
    assert registry.resolve("demo", "latest") == 3
    assert registry.resolve("demo", 2) == 2
    assert registry.resolve("demo", "3") == 3
    assert registry.load("demo").manifest.version == 1


# --- integrity -------------------------------------------------------------------------------


def test_verify_accepts_an_intact_version(registry: Registry, manifest_fields: dict[str, Any]):
    _register(registry, manifest_fields)
    manifest = registry.verify("demo")
    assert manifest.artifact.sha256 == registry.manifest("demo", 1).artifact.sha256


def test_tampered_artifact_is_refused(registry: Registry, manifest_fields: dict[str, Any]):
    _register(registry, manifest_fields)
    path = _artifact_path(registry, "demo", 1)
    _make_writable(path)
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    expected = registry.manifest("demo", 1).artifact.sha256
    for call in (lambda: registry.verify("demo", 1), lambda: registry.load("demo", 1)):
        with pytest.raises(ArtifactIntegrityError, match=f"demo v1: .*expected {expected}, got"):
            call()


def test_truncated_artifact_is_refused(registry: Registry, manifest_fields: dict[str, Any]):
    _register(registry, manifest_fields)
    path = _artifact_path(registry, "demo", 1)
    _make_writable(path)
    size = path.stat().st_size
    path.write_bytes(path.read_bytes()[: size // 2])
    with pytest.raises(
        ArtifactIntegrityError, match=f"has {size // 2} bytes, manifest says {size}"
    ):
        registry.load("demo", 1)


def test_missing_artifact_is_refused(registry: Registry, manifest_fields: dict[str, Any]):
    _register(registry, manifest_fields)
    path = _artifact_path(registry, "demo", 1)
    _make_writable(path)
    path.unlink()
    with pytest.raises(ArtifactIntegrityError, match="demo v1: artifact missing"):
        registry.verify("demo", 1)


def test_swapped_artifact_is_refused(registry: Registry, manifest_fields: dict[str, Any]):
    _register(registry, manifest_fields, n=2)
    one, two = _artifact_path(registry, "demo", 1), _artifact_path(registry, "demo", 2)
    _make_writable(two)
    two.write_bytes(one.read_bytes())
    with pytest.raises(ArtifactIntegrityError, match=r"demo v2: .*(manifest says|sha256 mismatch)"):
        registry.verify("demo", 2)
    assert registry.verify("demo", 1).version == 1


def test_corrupt_or_misplaced_manifest_is_refused(
    registry: Registry, manifest_fields: dict[str, Any]
):
    _register(registry, manifest_fields, n=2)
    two = registry.root / "demo" / "2" / "manifest.json"
    _make_writable(two)
    two.write_text((registry.root / "demo" / "1" / "manifest.json").read_text())
    with pytest.raises(ArtifactIntegrityError, match="describes demo v1"):
        registry.verify("demo", 2)
    two.write_text("{not json")
    with pytest.raises(ArtifactIntegrityError, match="demo v2: invalid manifest"):
        registry.verify("demo", 2)


def test_artifact_file_must_stay_inside_its_folder(
    registry: Registry, manifest_fields: dict[str, Any]
):
    _register(registry, manifest_fields)
    path = registry.root / "demo" / "1" / "manifest.json"
    _make_writable(path)
    data = json.loads(path.read_text())
    data["artifact"]["file"] = "../../elsewhere.skops"
    path.write_text(json.dumps(data))
    with pytest.raises(ArtifactIntegrityError, match="not a plain name"):
        registry.verify("demo", 1)


# --- aliases, promotion and rollback ---------------------------------------------------------


def test_set_alias_records_history(registry: Registry, manifest_fields: dict[str, Any]):
    _register(registry, manifest_fields, n=2)
    move = registry.set_alias("demo", "champion", 1, actor="alice", reason="first")
    assert isinstance(move, AliasMove)
    assert (move.name, move.alias, move.version, move.previous_version) == (
        "demo",
        "champion",
        1,
        None,
    )
    move = registry.set_alias("demo", "champion", 2, actor="bob")
    assert (move.version, move.previous_version) == (2, 1)
    assert registry.aliases("demo") == {"champion": 2}
    history = registry.history("demo")
    assert [(h["alias"], h["version"], h["previous_version"], h["actor"]) for h in history] == [
        ("champion", 1, None, "alice"),
        ("champion", 2, 1, "bob"),
    ]
    assert history[0]["reason"] == "first"
    assert history[1]["at"] == move.at.isoformat()
    on_disk = json.loads((registry.root / "demo" / "aliases.json").read_text())
    assert on_disk["aliases"] == {"champion": 2}
    assert len(on_disk["history"]) == 2


def test_set_alias_refuses_bad_requests(registry: Registry, manifest_fields: dict[str, Any]):
    _register(registry, manifest_fields, n=2)
    registry.set_alias("demo", "champion", 1, actor="t")
    with pytest.raises(RegistryError, match="unknown alias 'production'"):
        registry.set_alias("demo", "production", 1, actor="t")
    with pytest.raises(ModelNotFound, match="has no version 7"):
        registry.set_alias("demo", "champion", 7, actor="t")
    path = _artifact_path(registry, "demo", 2)
    _make_writable(path)
    path.write_bytes(b"tampered")
    with pytest.raises(ArtifactIntegrityError, match="demo v2"):
        registry.set_alias("demo", "champion", 2, actor="t")
    assert registry.aliases("demo") == {"champion": 1}
    assert len(registry.history("demo")) == 1


def test_clear_alias(registry: Registry, manifest_fields: dict[str, Any]):
    _register(registry, manifest_fields, n=2)
    registry.set_alias("demo", "challenger", 2, actor="t")
    move = registry.clear_alias("demo", "challenger", actor="t")
    assert (move.version, move.previous_version) == (None, 2)
    assert registry.aliases("demo") == {}
    assert registry.history("demo")[-1]["version"] is None


def test_rollback_walks_back_through_promotions(
    registry: Registry, manifest_fields: dict[str, Any]
):
    _register(registry, manifest_fields, n=3)
    for version in (1, 2, 3):
        registry.set_alias("demo", "champion", version, actor="t")
    registry.set_alias("demo", "challenger", 3, actor="t")
    move = registry.rollback("demo", actor="ops", reason="auc dropped")
    assert (move.alias, move.version, move.previous_version) == ("champion", 2, 3)
    assert registry.aliases("demo") == {"champion": 2, "challenger": 3}
    assert registry.rollback("demo", actor="ops").version == 1
    with pytest.raises(RegistryError, match="cannot roll back 'demo': champion is v1"):
        registry.rollback("demo", actor="ops")
    last = registry.history("demo")[-1]
    assert (last["alias"], last["version"], last["previous_version"], last["actor"]) == (
        "champion",
        1,
        2,
        "ops",
    )
    registry.set_alias("demo", "champion", 3, actor="t")
    assert registry.rollback("demo", actor="ops").version == 1


def test_rollback_without_an_earlier_champion(registry: Registry, manifest_fields: dict[str, Any]):
    _register(registry, manifest_fields, n=2)
    with pytest.raises(RegistryError, match="champion is not set"):
        registry.rollback("demo", actor="t")
    registry.set_alias("demo", "champion", 2, actor="t")
    with pytest.raises(RegistryError, match="no earlier champion"):
        registry.rollback("demo", actor="t")


def test_rollback_refuses_a_corrupted_target(registry: Registry, manifest_fields: dict[str, Any]):
    _register(registry, manifest_fields, n=2)
    registry.set_alias("demo", "champion", 1, actor="t")
    registry.set_alias("demo", "champion", 2, actor="t")
    path = _artifact_path(registry, "demo", 1)
    _make_writable(path)
    path.unlink()
    with pytest.raises(ArtifactIntegrityError, match="demo v1: artifact missing"):
        registry.rollback("demo", actor="t")
    assert registry.aliases("demo") == {"champion": 2}


def test_alias_reads_are_never_half_written(registry: Registry, manifest_fields: dict[str, Any]):
    model = river_logistic()  # cheap to verify, so the writers move aliases quickly
    for _ in range(3):
        registry.register(
            model, name="demo", kind="river-logistic", manifest_fields=manifest_fields
        )
    moves: list[AliasMove] = []
    reads: list[dict[str, int]] = []
    failures: list[BaseException] = []
    done = threading.Event()

    def writer(offset: int) -> None:
        try:
            for i in range(150):
                alias = ("champion", "challenger")[i % 2]
                moves.append(
                    registry.set_alias("demo", alias, 1 + (i // 2 + offset) % 3, actor="w")
                )
        except BaseException as exc:
            failures.append(exc)

    def reader() -> None:
        try:
            while not done.is_set() or len(reads) < 2000:
                reads.append(registry.aliases("demo"))
        except BaseException as exc:
            failures.append(exc)

    writers = [threading.Thread(target=writer, args=(k,)) for k in range(2)]
    reading = threading.Thread(target=reader)
    reading.start()
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    done.set()
    reading.join()
    assert failures == []
    assert len(reads) >= 2000
    for aliases in reads:
        assert set(aliases) <= {"champion", "challenger"}
        assert all(v in (1, 2, 3) for v in aliases.values())
    # no lost updates: every recorded move follows the one before it for the same alias
    history = registry.history("demo")
    assert len(history) == sum(1 for m in moves if m.version != m.previous_version)
    last: dict[str, int | None] = {"champion": None, "challenger": None}
    for entry in history:
        assert entry["previous_version"] == last[entry["alias"]]
        last[entry["alias"]] = entry["version"]
    assert registry.aliases("demo") == {k: v for k, v in last.items() if v is not None}


# --- command line ----------------------------------------------------------------------------


def test_cli_list(scorer_cli: ScorerCli, registry: Registry, manifest_fields: dict):
    code, out, _ = scorer_cli("models", "list", "--registry", str(registry.root))
    assert (code, out.strip()) == (0, f"no models in {registry.root}")
    _register(registry, manifest_fields, "demo", 2)
    registry.register(gbt(), name="trees", kind="gbt", manifest_fields=manifest_fields)
    registry.set_alias("demo", "champion", 1, actor="t")
    code, out, _ = scorer_cli("models", "--registry", str(registry.root), "list")
    lines = out.splitlines()
    assert code == 0
    assert lines[0].split() == ["MODEL", "VERSIONS", "LATEST", "CHAMPION", "CHALLENGER", "KIND"]
    assert lines[1].split() == ["demo", "2", "2", "v1", "-", "logistic"]
    assert lines[2].split() == ["trees", "1", "1", "-", "-", "gbt"]


def test_cli_show(scorer_cli: ScorerCli, registry: Registry, manifest_fields: dict):
    _register(registry, manifest_fields, "demo", 2)
    registry.set_alias("demo", "champion", 1, actor="t")
    sha = registry.manifest("demo", 1).artifact.sha256
    code, out, _ = scorer_cli("models", "show", "demo", "--registry", str(registry.root))
    assert code == 0
    assert "versions: v1 (champion), v2" in out
    assert "version v1 (champion)" in out
    assert sha in out
    assert "logistic" in out
    assert "auc=0.81" in out
    assert "dataset=synthetic rows=150" in out
    assert "disparate_impact" in out
    assert "stats for 2 of 3 features (x0, x1); none for x2" in out
    code, out, _ = scorer_cli(
        "models",
        "show",
        "demo",
        "--version",
        "2",
        "--json",
        "--registry",
        str(registry.root),
    )
    assert code == 0
    assert ModelManifest.model_validate_json(out) == registry.manifest("demo", 2)


def test_cli_verify(scorer_cli: ScorerCli, registry: Registry, manifest_fields: dict):
    _register(registry, manifest_fields, "demo", 2)
    root = str(registry.root)
    code, out, _ = scorer_cli("models", "verify", "demo", "2", "--registry", root)
    sha2 = registry.manifest("demo", 2).artifact.sha256
    assert (code, out.strip()) == (0, f"ok demo v2 sha256 {sha2}")
    code, out, _ = scorer_cli("models", "verify", "demo", "--registry", root)
    assert code == 0
    assert len(out.splitlines()) == 2
    path = _artifact_path(registry, "demo", 1)
    _make_writable(path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    code, out, err = scorer_cli("models", "verify", "demo", "1", "--registry", root)
    assert code == 1
    assert err.startswith("scorer: error: demo v1: artifact")
    assert "sha256 mismatch" in err
    code, out, err = scorer_cli("models", "verify", "demo", "--registry", root)
    assert code == 1
    assert f"ok demo v2 sha256 {sha2}" in out
    assert "demo v1" in err
    code, _, err = scorer_cli("models", "verify", "nope", "--registry", root)
    assert code == 1
    assert "no model 'nope'" in err


def test_cli_promote_and_rollback_without_a_broker(
    scorer_cli: ScorerCli, registry: Registry, manifest_fields: dict
):
    # a champion needs reference statistics for every feature (the ``reference`` gate)
    spec = manifest_fields["feature_spec"]
    _register(registry, {**manifest_fields, "reference": build_reference(spec, ROWS)}, "demo", 2)
    root = str(registry.root)
    code, out, err = scorer_cli("models", "promote", "demo", "1", "--registry", root)
    assert code == 0
    assert "demo: champion -> v1 (was -)" in out
    assert "alias moved; ModelEvent not published: broker not reachable" in err
    code, out, err = scorer_cli(
        "models", "promote", "demo", "2", "--reason", "better auc", "--registry", root
    )
    assert code == 0
    assert "demo: champion -> v2 (was v1)" in out
    assert registry.aliases("demo") == {"champion": 2}
    code, out, err = scorer_cli("models", "rollback", "demo", "--registry", root)
    assert code == 0
    assert "demo: champion -> v1 (was v2)" in out
    assert "ModelEvent not published" in err
    history = registry.history("demo")
    assert [h["version"] for h in history] == [1, 2, 1]
    assert {h["actor"] for h in history} == {"tester@ci"}
    assert history[1]["reason"] == "better auc"
    code, out, err = scorer_cli(
        "models", "promote", "demo", "2", "--alias", "challenger", "--registry", root
    )
    assert code == 0
    assert registry.aliases("demo") == {"champion": 1, "challenger": 2}


def test_cli_failures_exit_1(scorer_cli: ScorerCli, registry: Registry, manifest_fields: dict):
    _register(registry, manifest_fields, "demo", 1)
    root = str(registry.root)
    code, _, err = scorer_cli("models", "promote", "demo", "9", "--registry", root)
    assert code == 1
    assert "has no version 9; versions: 1" in err
    code, _, err = scorer_cli("models", "rollback", "demo", "--registry", root)
    assert code == 1
    assert "cannot roll back 'demo'" in err
    code, _, err = scorer_cli("models", "show", "../etc", "--registry", root)
    assert code == 1
    assert "invalid model name" in err
    assert registry.history("demo") == []
