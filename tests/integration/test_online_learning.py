"""`scorer learn`: a river champion learns from labels; the learned version is registered,
announced, and not promoted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
from confluent_kafka import Producer

from models.datasets import agrawal_stream
from schemas.contracts import ModelEvent
from tests.support.models import RegisterModels, TrainModel
from tests.support.scorer import ScorerSetup


def test_learned_version_is_registered_with_its_parent_and_not_promoted(
    scorer_setup: ScorerSetup, train_model: TrainModel, register_models: RegisterModels
) -> None:
    setup = scorer_setup
    trained = train_model("river-logistic", rows=3_000, seed=13)
    register_models(trained, name="online", registry=setup.registry, champion=1)
    setup.env["SCORER_MODEL"] = "online"
    stream = list(agrawal_stream(3_000, seed=17, drift_at=1_000, run_id="learn",
                                 start=datetime(2026, 4, 1, tzinfo=UTC)))  # fmt: skip
    setup.serve()
    setup.produce([(e.event["entity_id"].encode(), orjson.dumps(e.event)) for e in stream])
    decisions = setup.consumer("decisions")
    setup.read(decisions, lambda m: len(m) >= len(stream))
    decisions.close()

    setup.start("join", env=setup.env)  # labels reach the learner joined, as outcomes
    learner = setup.start("learn", "--every", "2000", "--max-versions", "1", env=setup.env)
    producer = Producer({"bootstrap.servers": setup.bootstrap, "linger.ms": 5})
    for e in stream:
        when = datetime.fromisoformat(e.event["event_time"]) + timedelta(minutes=5)
        label = {"event_id": e.event["event_id"], "label": e.label, "label_time": when.isoformat()}
        producer.produce(setup.topics["feedback"], orjson.dumps(label), label["event_id"].encode())
    assert producer.flush(30) == 0
    output = learner.communicate(timeout=180)[0].decode()
    assert learner.returncode == 0, output[-3000:]
    assert "registered online version(s): 2" in output

    child = setup.registry.manifest("online", 2)
    assert child.training.parent_version == 1 and child.training.rows >= 2_000
    assert child.training.params["online"]["evaluation"].startswith("prequential")
    assert setup.registry.aliases("online")["champion"] == 1  # never swapped in silently
    assert setup.registry.load("online", 2).estimator.weights != trained.estimator.weights

    events = setup.consumer("model-events")
    announced = setup.read(events, lambda m: len(m) >= 1, processes=False)
    event = ModelEvent.model_validate_json(announced[0].value())
    assert (event.event_type, event.version, event.actor) == ("registered", 2, "scorer-learn")
    assert event.sha256 == child.artifact.sha256 and "not promoted" in (event.reason or "")
