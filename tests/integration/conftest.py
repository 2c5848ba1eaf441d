"""Fixtures for tests that run the scorer against the real broker."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from models.registry import Registry
from models.training import TrainedModel
from tests.support.kafka import unique
from tests.support.models import RegisterModels, TrainModel
from tests.support.scorer import TOPIC_SETTINGS, ScorerSetup


@pytest.fixture(scope="session")
def trained_logistic(train_model: TrainModel) -> TrainedModel:
    return train_model(rows=3000, seed=31)


@pytest.fixture
def scorer_setup(
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    tmp_path: Path,
    trained_logistic: TrainedModel,
    register_models: RegisterModels,
) -> Iterator[ScorerSetup]:
    topics = {name: topic_factory(name.replace(".", "-"), partitions=parts)
              for name, (_, parts) in TOPIC_SETTINGS.items()}  # fmt: skip
    registry = Registry(tmp_path / "registry")
    register_models(trained_logistic, registry=registry, champion=1)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "SCORER_"))}
    env.update({setting: topics[name] for name, (setting, _) in TOPIC_SETTINGS.items()})
    env.update({
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "SCORER_REGISTRY": str(registry.root),
        "SCORER_MODEL": "loans", "SCORER_GROUP_ID": unique("scorer"), "SCORER_MAX_WAIT_MS": "20",
        "SCORER_MONITOR_GROUP_ID": unique("monitor"), "SCORER_MONITOR_CHECKPOINT_SECONDS": "1",
        "SCORER_JOIN_GROUP_ID": unique("join"), "SCORER_JOIN_STATE_DIR": str(tmp_path / "join"),
    })  # fmt: skip
    setup = ScorerSetup(kafka_bootstrap, topics, registry, "loans", env)
    yield setup
    for process in setup.processes:
        if process.poll() is None:
            process.kill()
        process.wait(30)
