"""Fixtures of the unit tests: registered models, and the command line run in-process.

``registered_logistic``, ``registered_gbt`` and ``registered_river`` are the three model
kinds trained on the same 3,000 Agrawal rows (seed 21), each version 1 of ``loans`` in a
registry of its own, once per session: tests read them and never change them (a test that
registers more versions or moves aliases builds its own with ``register_models``).
"""

from __future__ import annotations

from functools import partial

import pytest

from models.manifest import ModelKind
from tests.support.cli import ScorerCli, run_scorer
from tests.support.models import Registered, RegisterModels, TrainModel


def _registered(
    kind: ModelKind,
    train_model: TrainModel,
    register_models: RegisterModels,
) -> Registered:
    (registered,) = register_models(train_model(kind, rows=3000, seed=21))
    return registered


@pytest.fixture(scope="session")
def registered_logistic(train_model: TrainModel, register_models: RegisterModels) -> Registered:
    return _registered("logistic", train_model, register_models)


@pytest.fixture(scope="session")
def registered_gbt(train_model: TrainModel, register_models: RegisterModels) -> Registered:
    return _registered("gbt", train_model, register_models)


@pytest.fixture(scope="session")
def registered_river(train_model: TrainModel, register_models: RegisterModels) -> Registered:
    return _registered("river-logistic", train_model, register_models)


@pytest.fixture
def scorer_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> ScorerCli:
    """``scorer`` in this process, as tester@ci, with a broker address nothing listens on and
    no registry from the environment (commands name theirs with ``--registry``)."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")  # nothing listens there
    monkeypatch.setenv("SCORER_ACTOR", "tester@ci")
    monkeypatch.delenv("SCORER_REGISTRY", raising=False)
    return partial(run_scorer, capsys)
