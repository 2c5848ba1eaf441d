"""Which model versions serve: the watcher over a real registry directory, with no broker.

``listen=False`` leaves out the ``model-events`` consumer, so the watcher relies on registry
polls; ``poll_interval_s=0`` makes every :meth:`ModelWatcher.check` (a batch boundary) look.
A refusal publishes a ModelEvent: the settings point at a closed port, so publishing fails at
once with a reason (logged) instead of waiting for a broker.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from models.registry import ALIASES_FILE, Registry
from models.training import TrainedModel
from schemas.errors import ModelNotFound, ScorerError
from streams.engine.model_watch import ModelWatcher
from streams.observability import ScorerMetrics
from streams.settings import Settings
from tests.support.models import RegisterModels, TrainModel

SETTINGS = Settings(bootstrap_servers="127.0.0.1:1")
NAME = "loans"


@pytest.fixture(scope="module")
def trained(train_model: TrainModel) -> TrainedModel:
    return train_model("logistic", rows=1000, seed=21)


@pytest.fixture
def registry(tmp_path: Path, trained: TrainedModel, register_models: RegisterModels) -> Registry:
    """Three versions of ``loans``; v1 is the champion."""
    registry = Registry(tmp_path / "registry")
    register_models(trained, trained, trained, name=NAME, registry=registry, champion=1)
    return registry


def watcher(
    registry: Registry, metrics: ScorerMetrics | None = None, poll_interval_s: float = 0.0
) -> ModelWatcher:
    return ModelWatcher(
        SETTINGS, registry, NAME, metrics, poll_interval_s=poll_interval_s, listen=False
    )


def served(models: ModelWatcher) -> tuple[int, int | None]:
    challenger = models.serving.challenger
    return (
        models.serving.champion.manifest.version,
        None if challenger is None else challenger.manifest.version,
    )


def count(metrics: ScorerMetrics, metric: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(metric, labels) or 0.0


def tamper(registry: Registry, version: int) -> None:
    """Change the artifact's bytes after registration (its sha256 no longer matches)."""
    manifest = registry.manifest(NAME, version)
    folder = registry.root / NAME / str(version)
    os.chmod(folder, 0o755)
    path = folder / manifest.artifact.file
    os.chmod(path, 0o644)
    with open(path, "ab") as handle:
        handle.write(b"tampered")


def remove(registry: Registry, version: int) -> None:
    folder = registry.root / NAME / str(version)
    os.chmod(folder, 0o755)
    shutil.rmtree(folder)


def test_serves_the_champion_and_the_challenger_in_shadow(registry: Registry) -> None:
    registry.set_alias(NAME, "challenger", 2, actor="test")
    metrics = ScorerMetrics()
    models = watcher(registry, metrics)

    assert served(models) == (1, 2)
    assert models.label == "loans v1"
    for role, version in (("champion", 1), ("challenger", 2)):
        sha = registry.manifest(NAME, version).artifact.sha256
        labels = {"role": role, "name": NAME, "version": str(version), "sha256": sha}
        assert count(metrics, "scorer_model_info", **labels) == 1
    assert count(metrics, "scorer_model_swaps_total", outcome="applied") == 2


def test_a_promotion_is_served_from_the_next_batch_boundary(registry: Registry) -> None:
    metrics = ScorerMetrics()
    models = watcher(registry, metrics)
    batch_in_progress = models.serving
    registry.set_alias(NAME, "champion", 2, actor="test")

    assert served(models) == (1, None)  # nothing changes between boundaries
    assert models.check() is True
    assert served(models) == (2, None)
    assert batch_in_progress.champion.manifest.version == 1  # a batch keeps its models
    assert models.check() is False  # nothing moved since
    assert count(metrics, "scorer_model_swaps_total", outcome="applied") == 2
    assert count(metrics, "scorer_model_info", role="champion", name=NAME, version="2",
                 sha256=registry.manifest(NAME, 2).artifact.sha256) == 1  # fmt: skip


def test_a_challenger_is_set_and_cleared_without_reloading_the_champion(
    registry: Registry,
) -> None:
    metrics = ScorerMetrics()
    models = watcher(registry, metrics)
    champion = models.serving.champion

    registry.set_alias(NAME, "challenger", 3, actor="test")
    assert models.check() is True and served(models) == (1, 3)
    sha = registry.manifest(NAME, 3).artifact.sha256
    shadow = {"role": "challenger", "name": NAME, "version": "3", "sha256": sha}
    assert count(metrics, "scorer_model_info", **shadow) == 1
    registry.clear_alias(NAME, "challenger", actor="test")
    assert models.check() is True and served(models) == (1, None)
    assert models.serving.champion is champion
    assert metrics.registry.get_sample_value("scorer_model_info", shadow) is None  # gone
    info = [
        s for m in metrics.registry.collect() if m.name == "scorer_model_info" for s in m.samples
    ]
    assert [s.labels["role"] for s in info] == ["champion"]


def test_between_polls_the_registry_is_not_read(registry: Registry) -> None:
    """Without a ModelEvent the watcher looks every ``poll_interval_s`` only."""
    models = watcher(registry, poll_interval_s=3600.0)
    assert models.check() is False  # the first boundary looks: nothing moved
    registry.set_alias(NAME, "champion", 2, actor="test")

    assert models.check() is False
    assert served(models) == (1, None)  # picked up at the next poll, an hour away


def test_a_tampered_version_is_refused_once_and_the_served_one_stays(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = ScorerMetrics()
    models = watcher(registry, metrics)
    registry.set_alias(NAME, "champion", 2, actor="test")  # verified when promoted...
    tamper(registry, 2)  # ...changed afterwards

    with caplog.at_level(logging.WARNING, logger="streams.engine.model_watch"):
        assert models.check() is False
        assert models.check() is False  # not tried again
    assert served(models) == (1, None)
    refusals = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused")]
    assert len(refusals) == 1 and "v2 as champion" in refusals[0]
    assert "ArtifactIntegrityError" in refusals[0]
    assert count(metrics, "scorer_model_swaps_total", outcome="refused") == 1
    assert count(metrics, "scorer_errors_total", kind="model_load") == 1
    unpublished = [r.getMessage() for r in caplog.records if "not published" in r.getMessage()]
    assert len(unpublished) == 1 and "broker not reachable" in unpublished[0]

    registry.set_alias(NAME, "champion", 3, actor="test")  # a good version still swaps in
    assert models.check() is True and served(models) == (3, None)


def test_a_version_whose_folder_vanished_is_refused(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = ScorerMetrics()
    models = watcher(registry, metrics)
    registry.set_alias(NAME, "champion", 2, actor="test")
    remove(registry, 2)

    with caplog.at_level(logging.ERROR, logger="streams.engine.model_watch"):
        assert models.check() is False
    assert served(models) == (1, None)
    assert any("ModelNotFound" in r.getMessage() for r in caplog.records)
    assert count(metrics, "scorer_model_swaps_total", outcome="refused") == 1


def test_a_challenger_that_fails_to_load_is_not_shadowed(registry: Registry) -> None:
    registry.set_alias(NAME, "challenger", 2, actor="test")
    tamper(registry, 2)
    metrics = ScorerMetrics()
    models = watcher(registry, metrics)

    assert served(models) == (1, None)
    assert models.check() is False  # the refused challenger is not loaded again
    assert count(metrics, "scorer_model_swaps_total", outcome="refused") == 1


def half_written_aliases(registry: Registry) -> None:
    (registry.root / NAME / ALIASES_FILE).write_text('{"aliases": {"champ')


def moved_away(registry: Registry) -> None:
    registry.root.rename(registry.root.with_name("moved"))


@pytest.mark.parametrize("damage", [half_written_aliases, moved_away])
def test_an_unreadable_registry_leaves_the_served_versions_in_place(
    registry: Registry, damage: Callable[[Registry], None], caplog: pytest.LogCaptureFixture
) -> None:
    registry.set_alias(NAME, "challenger", 2, actor="test")
    metrics = ScorerMetrics()
    models = watcher(registry, metrics)
    aliases = (registry.root / NAME / ALIASES_FILE).read_bytes()
    damage(registry)

    with caplog.at_level(logging.ERROR, logger="streams.engine.model_watch"):
        assert models.check() is False
        assert models.check() is False
    assert served(models) == (1, 2)
    assert count(metrics, "scorer_errors_total", kind="model_lookup") == 2
    unreadable = [r for r in caplog.records if "registry unreadable" in r.getMessage()]
    assert len(unreadable) == 1  # one log line per problem, not one per batch
    assert count(metrics, "scorer_model_swaps_total", outcome="refused") == 0

    moved = registry.root.with_name("moved")
    if moved.exists():
        moved.rename(registry.root)
    (registry.root / NAME / ALIASES_FILE).write_bytes(aliases)  # repaired
    registry.set_alias(NAME, "champion", 3, actor="test")
    assert models.check() is True and served(models) == (3, 2)


def test_a_champion_that_cannot_be_loaded_at_start_is_an_error(registry: Registry) -> None:
    tamper(registry, 1)
    with pytest.raises(ScorerError, match="champion version cannot be loaded"):
        watcher(registry)
    with pytest.raises(ModelNotFound, match="no model 'unknown'"):
        ModelWatcher(SETTINGS, registry, "unknown", listen=False)
