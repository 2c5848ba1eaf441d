"""Labels join their decisions; the concept switch is flagged with a retrain recommendation."""

from __future__ import annotations

import signal
from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson
from confluent_kafka import Producer

from models.datasets import agrawal_stream
from schemas.contracts import DeadLetter, DriftAlert
from tests.support.scorer import ScorerSetup


def test_labels_join_and_concept_drift_recommends_retraining(scorer_setup: ScorerSetup) -> None:
    start = datetime(2026, 2, 1, tzinfo=UTC)
    stream = list(agrawal_stream(12_000, seed=71, drift_at=6_000, drift_factor=1.5, start=start,
                                 interval=timedelta(milliseconds=10), run_id="fb"))  # fmt: skip
    scorer_setup.env["SCORER_MONITOR_WINDOW_SECONDS"] = "5"
    scorer_setup.env["SCORER_FEEDBACK_WAIT_SECONDS"] = "30"  # the stream spans 120 s
    engine, owner = scorer_setup.serve(), scorer_setup.monitor()
    scorer_setup.produce([(e.event["entity_id"].encode(), orjson.dumps(e.event)) for e in stream])
    reader = scorer_setup.consumer("decisions", "drift-alerts", "events.dlq")
    topics = scorer_setup.topics
    seen = scorer_setup.read(
        reader, lambda m: sum(x.topic() == topics["decisions"] for x in m) >= len(stream)
    )

    producer = Producer({"bootstrap.servers": scorer_setup.bootstrap, "linger.ms": 5})
    for labelled in stream:
        when = datetime.fromisoformat(labelled.event["event_time"]) + timedelta(seconds=1)
        feedback = {"event_id": labelled.event["event_id"], "label": labelled.label,
                    "label_time": when.isoformat()}  # fmt: skip
        producer.produce(topics["feedback"], orjson.dumps(feedback), feedback["event_id"].encode())
        producer.poll(0)
    duplicate = {"event_id": stream[10].event["event_id"],
                 "label": 1, "label_time": start.isoformat()}  # fmt: skip
    unknown = {"event_id": "never-scored", "label": 0, "label_time": start.isoformat()}
    for extra in (duplicate, unknown):
        producer.produce(topics["feedback"], orjson.dumps(extra), extra["event_id"].encode())
    assert producer.flush(30) == 0

    def concept_alert_and_letters(messages: list) -> bool:
        concept = any(
            m.topic() == topics["drift-alerts"] and orjson.loads(m.value())["monitor"] == "concept"
            for m in messages
        )
        return concept and sum(m.topic() == topics["events.dlq"] for m in messages) >= 2

    seen += scorer_setup.read(reader, concept_alert_and_letters)
    reader.close()
    for process in (engine, owner):
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0

    alerts = [DriftAlert.model_validate_json(m.value()) for m in seen
              if m.topic() == topics["drift-alerts"]]  # fmt: skip
    concept = [a for a in alerts if a.monitor == "concept" and a.status == "open"]
    assert concept and concept[0].retrain_recommended and concept[0].retrain_rule
    drift_time = start + timedelta(milliseconds=10 * 6_000)
    assert concept[0].window.end_time is not None and concept[0].window.end_time > drift_time
    assert not [a for a in alerts if a.status == "open" and a.window.end_time <= drift_time]
    letters = [DeadLetter.model_validate_json(m.value()) for m in seen
               if m.topic() == topics["events.dlq"]]  # fmt: skip
    assert Counter(letter.reason.value for letter in letters) == Counter(
        {"DUPLICATE_LABEL": 1, "LABEL_UNKNOWN_EVENT": 1}
    )
    assert all(letter.source_topic == topics["feedback"] for letter in letters)
