"""Online learning: test-then-train on labels joined to exactly the scored features."""

from __future__ import annotations

import pytest

from models.datasets import agrawal_stream
from models.online import OnlineLearner
from models.registry import LoadedModel, Registry
from models.scoring_model import ScoringModel
from schemas.errors import ConfigError
from streams.core.scoring import score_batch
from tests.support.models import Registered, RegisterModels, TrainModel


@pytest.fixture(scope="module")
def river(train_model: TrainModel, register_models: RegisterModels) -> tuple[Registry, LoadedModel]:
    """A registry whose ``loans`` v1 is a river model (2,000 Agrawal rows, seed 5), and v1."""
    (v1,) = register_models(train_model("river-logistic", rows=2_000, seed=5))
    return v1.registry, v1.loaded


def scored(loaded: LoadedModel, count: int, drift_at: int | None = None) -> tuple[list, list]:
    """Events, their decisions by the model, and the true labels."""
    stream = list(agrawal_stream(count, seed=9, drift_at=drift_at, run_id="online"))
    events = [e.event for e in stream]
    batch = score_batch(ScoringModel.from_loaded(loaded), events, received_at=0.0)
    return events, batch.decisions, [e.label for e in stream]


def test_learns_each_joined_label_once_and_registers_a_child(
    river: tuple[Registry, LoadedModel],
) -> None:
    registry, loaded = river
    learner = OnlineLearner(loaded.manifest, loaded.estimator)
    events, decisions, labels = scored(loaded, 3_000, drift_at=500)
    learner.remember_events(events)
    learner.remember_decisions(decisions)
    pairs = [(e["event_id"], y) for e, y in zip(events, labels, strict=True)]

    assert learner.learn(pairs) == 3_000
    assert learner.learn(pairs[:10]) == 0 and learner.refused["duplicate"] == 10
    assert learner.learn([("never-seen", 1)]) == 0 and learner.refused["unknown"] == 1
    before = loaded.estimator.weights
    assert any(learner.model.weights[k] != before[k] for k in before)  # it learned
    assert loaded.estimator.weights == before  # the served model is untouched

    fields = learner.version_fields(parent_version=1, source="online:test")
    assert fields is not None
    assert fields["training"].parent_version == 1 and fields["training"].rows == 3_000
    assert fields["training"].params["online"]["refused"] == {"duplicate": 10, "unknown": 1}
    assert 0.5 < fields["metrics"]["roc_auc"] <= 1.0
    manifest = registry.register(learner.model, name="loans", kind="river-logistic",
                                 manifest_fields=fields)  # fmt: skip
    assert manifest.version == 2 and registry.load("loans", 2).estimator.weights == dict(
        learner.model.weights
    )
    assert learner.version_fields(parent_version=2, source="online:test") is None  # drained


def test_features_that_were_not_the_ones_scored_are_refused(
    river: tuple[Registry, LoadedModel],
) -> None:
    _, loaded = river
    learner = OnlineLearner(loaded.manifest, loaded.estimator)
    events, decisions, labels = scored(loaded, 50)
    tampered = [{**e, "features": {**e["features"], "salary": e["features"]["salary"] + 1.0}}
                for e in events[:5]]  # fmt: skip
    learner.remember_events(tampered + events[5:])
    learner.remember_decisions(decisions)
    learned = learner.learn([(e["event_id"], y) for e, y in zip(events, labels, strict=True)])
    assert learned == 45 and learner.refused["hash_mismatch"] == 5
    assert len(learner.scores) == 45  # each learned label was scored first


def test_only_river_models_learn_online(registered_logistic: Registered) -> None:
    loaded = registered_logistic.loaded
    with pytest.raises(ConfigError, match="river"):
        OnlineLearner(loaded.manifest, loaded.estimator)
