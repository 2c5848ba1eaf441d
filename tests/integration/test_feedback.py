"""Labels join their decisions; the concept switch is flagged with a retrain recommendation."""

from __future__ import annotations

import signal
from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson
from confluent_kafka import Producer

from models.datasets import agrawal_stream
from schemas.contracts import DeadLetter, DriftAlert
from tests.support.kafka import group_offsets
from tests.support.scorer import ScorerSetup
from tests.support.waiting import wait_until


def test_labels_join_and_concept_drift_recommends_retraining(scorer_setup: ScorerSetup) -> None:
    start = datetime(2026, 2, 1, tzinfo=UTC)
    stream = list(agrawal_stream(12_000, seed=71, drift_at=6_000, drift_factor=1.5, start=start,
                                 interval=timedelta(milliseconds=10), run_id="fb"))  # fmt: skip
    scorer_setup.env["SCORER_MONITOR_WINDOW_SECONDS"] = "5"
    scorer_setup.env["SCORER_FEEDBACK_WAIT_SECONDS"] = "30"  # the stream spans 120 s
    scorer_setup.env["SCORER_JOIN_COMMIT_SECONDS"] = "0.2"
    engine, owner = scorer_setup.serve(), scorer_setup.monitor()
    scorer_setup.produce([(e.event["entity_id"].encode(), orjson.dumps(e.event)) for e in stream])
    reader = scorer_setup.consumer("decisions", "drift-alerts", "events.dlq")
    topics = scorer_setup.topics
    seen = scorer_setup.read(
        reader, lambda m: sum(x.topic() == topics["decisions"] for x in m) >= len(stream)
    )

    # Labels arrive as a stream, not as one backlog: each chunk is published once the join
    # has read the last, so the join routes them in about their time order (a backlog read
    # partition by partition would reach the label windows out of order, past their lateness).
    producer = Producer({"bootstrap.servers": scorer_setup.bootstrap, "linger.ms": 5})
    join_group = scorer_setup.env["SCORER_JOIN_GROUP_ID"]
    for first in range(0, len(stream), 500):
        for labelled in stream[first : first + 500]:
            when = datetime.fromisoformat(labelled.event["event_time"]) + timedelta(seconds=1)
            feedback = {"event_id": labelled.event["event_id"], "label": labelled.label,
                        "label_time": when.isoformat()}  # fmt: skip
            producer.produce(topics["feedback"], orjson.dumps(feedback),
                             feedback["event_id"].encode())  # fmt: skip
            producer.poll(0)
        assert producer.flush(30) == 0
        wait_until(
            lambda: all(o.lag == 0 for o in group_offsets(scorer_setup.bootstrap, join_group,
                                                          topics["feedback"]).values()),
            "the join to read the labels published so far", engines=[scorer_setup],
        )  # fmt: skip
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
