"""What ``scorer learn`` adds to :class:`models.online.OnlineLearner`, with no broker.

The learner service reads raw record values from two topics, the events and the outcomes the
outcome join made of the decisions and labels; :func:`learn_batch` turns one batch of them
into learning, and :func:`register_learned` decides whether the learned
copy becomes a version (test-then-train itself is tested in tests/unit/test_online.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from models.datasets import agrawal_stream
from models.online import OnlineLearner
from models.registry import Registry
from models.scoring_model import ScoringModel
from models.training import TrainedModel
from streams.core.scoring import score_batch
from streams.learning.learner import learn_batch, register_learned, registered_reason
from streams.outcomes.join import OutcomeJoin, parse_decisions, parse_feedback
from streams.outcomes.join_store import PartitionStore
from tests.support.models import RegisterModels, TrainModel

NAME = "loans"
SOURCE = "online:outcomes"
T0 = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Traffic:
    """Record values as the learner reads them: events, and the champion's decisions joined to
    their labels."""

    events: list[bytes]
    outcomes: list[bytes]
    labels: list[int]


@pytest.fixture(scope="module")
def trained(train_model: TrainModel) -> TrainedModel:
    return train_model("river-logistic", rows=1500, seed=5)


@pytest.fixture
def registry(tmp_path: Path, trained: TrainedModel, register_models: RegisterModels) -> Registry:
    registry = Registry(tmp_path / "registry")
    register_models(trained, name=NAME, registry=registry, champion=1)
    return registry


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory, trained: TrainedModel) -> Traffic:
    registry = Registry(tmp_path_factory.mktemp("scoring"))
    registry.register(trained.estimator, name=NAME, kind="river-logistic",
                      manifest_fields=trained.manifest_fields)  # fmt: skip
    model = ScoringModel.from_loaded(registry.load(NAME, 1))
    stream = list(agrawal_stream(400, seed=9, start=T0, run_id="learn"))
    events = [e.event for e in stream]
    decisions = score_batch(model, events, explain=False).decisions
    feedback = [
        orjson.dumps({"event_id": e.event["event_id"], "label": e.label,
                      "label_time": (T0 + timedelta(seconds=i + 60)).isoformat()})
        for i, e in enumerate(stream)
    ]  # fmt: skip
    join = OutcomeJoin(PartitionStore(tmp_path_factory.mktemp("join")), 86_400, 60, sources=1)
    for _, held in parse_decisions([orjson.dumps(d) for d in decisions])[0]:
        join.decision(held)
    outcomes = [orjson.dumps(join.label(f)[0][0]) for _, f in parse_feedback(feedback)[0]]
    return Traffic([orjson.dumps(e) for e in events], outcomes, [e.label for e in stream])


def learner_of(registry: Registry) -> OnlineLearner:
    champion = registry.load(NAME, "champion")
    return OnlineLearner(champion.manifest, champion.estimator)


def test_a_batch_learns_the_outcomes_read_with_their_events(
    registry: Registry, traffic: Traffic
) -> None:
    learner = learner_of(registry)
    learned = learn_batch(
        learner,
        [*traffic.events, b"{not json", None],  # the scorer dead-letters these
        [*traffic.outcomes, b"{not json", None, b'{"model": null}'],  # skipped, not fatal
    )

    assert learned == len(traffic.labels)
    assert learner.refused == {}
    assert learner.labels == traffic.labels  # each label scored, then learned, in order
    assert learn_batch(learner, [], traffic.outcomes[:5]) == 0  # learned once only
    assert learner.refused == {"duplicate": 5}


def test_outcomes_read_before_their_events_are_not_learned(
    registry: Registry, traffic: Traffic
) -> None:
    """Why the label gate holds outcomes back until the events are read: an outcome whose
    event the learner has not seen yet is refused as unknown."""
    learner = learner_of(registry)
    assert learn_batch(learner, [], traffic.outcomes) == 0
    assert learner.refused == {"unknown": len(traffic.outcomes)}

    assert learn_batch(learner, traffic.events, traffic.outcomes) == len(traffic.labels)


def test_an_outcome_whose_event_changed_is_not_learned(
    registry: Registry, traffic: Traffic
) -> None:
    """The decision's input_hash, carried by the outcome, pins the features it scored."""
    event = orjson.loads(traffic.events[0])
    event["features"] = {**event["features"], "salary": event["features"]["salary"] + 1}
    learner = learner_of(registry)
    assert learn_batch(learner, [orjson.dumps(event)], traffic.outcomes[:1]) == 0
    assert learner.refused == {"hash_mismatch": 1}


def test_a_batch_without_labels_learns_nothing(registry: Registry, traffic: Traffic) -> None:
    learner = learner_of(registry)
    weights = dict(learner.model.weights)

    assert learn_batch(learner, traffic.events, []) == 0
    assert dict(learner.model.weights) == weights and learner.labels == []


def test_a_version_is_registered_once_the_labels_hold_both_classes(
    registry: Registry, traffic: Traffic
) -> None:
    learner = learner_of(registry)
    positives = [o for o, y in zip(traffic.outcomes, traffic.labels, strict=True) if y == 1]
    negatives = [o for o, y in zip(traffic.outcomes, traffic.labels, strict=True) if y == 0]
    one_class = learn_batch(learner, traffic.events, positives)

    assert register_learned(registry, learner, NAME, 1, SOURCE) is None  # no ROC AUC yet
    assert registry.versions(NAME) == [1]

    both = one_class + learn_batch(learner, [], negatives)
    manifest = register_learned(registry, learner, NAME, 1, SOURCE)
    assert manifest is not None
    assert (manifest.version, manifest.kind) == (2, "river-logistic")
    training = manifest.training
    assert (training.parent_version, training.dataset, training.rows) == (1, SOURCE, both)
    assert training.params["online"]["labels"] == both == len(traffic.labels)
    assert registry.load(NAME, 2).estimator.weights == dict(learner.model.weights)
    assert registry.aliases(NAME) == {"champion": 1}  # registered, never promoted
    reason = registered_reason(manifest, both)
    assert reason == (
        f"online learning: {both} labels after v1; "
        f"prequential ROC AUC {manifest.metrics['roc_auc']:.3f}; not promoted"
    )


def test_each_version_is_the_child_of_the_last_with_the_labels_since(
    registry: Registry, traffic: Traffic
) -> None:
    learner = learner_of(registry)
    half = len(traffic.outcomes) // 2
    first = learn_batch(learner, traffic.events, traffic.outcomes[:half])
    v2 = register_learned(registry, learner, NAME, 1, SOURCE)
    second = learn_batch(learner, [], traffic.outcomes[half:])
    v3 = register_learned(registry, learner, NAME, 2, SOURCE)

    assert v2 is not None and v3 is not None
    assert [(v.version, v.training.parent_version, v.training.rows) for v in (v2, v3)] == [
        (2, 1, first),
        (3, 2, second),
    ]
    assert registry.load(NAME, 3).estimator.weights == dict(learner.model.weights)
    assert registry.load(NAME, 2).estimator.weights != registry.load(NAME, 3).estimator.weights
