"""The monitor owner's judgement without Kafka, fed what the scorers really publish.

The inputs are built by the scoring side itself (:class:`BatchProcessor` with
:class:`EngineMonitors` over Agrawal events, one covariate and concept drift halfway): the
summary exports of one scorer reading both partitions of ``events``, the same traffic scored
by two scorers (one per partition), and the outcomes the outcome join makes of the decisions
and a label for every event. The Kafka side (:mod:`streams.outcomes.service`) adds the batch
order and checkpoints; its pure parts are tested at the end.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from models.datasets import agrawal, agrawal_stream
from models.registry import Registry
from models.scoring_model import ScoringModel
from models.training import train
from schemas.contracts import DriftAlert, FairnessReport
from streams.engine.model_watch import ServingModels
from streams.engine.monitors import EngineMonitors
from streams.engine.processor import BatchProcessor
from streams.engine.records import ConsumedRecord
from streams.observability import ScorerMetrics
from streams.outcomes.join import OutcomeJoin, parse_decisions, parse_feedback
from streams.outcomes.join_store import PartitionStore
from streams.outcomes.owner import MonitorOwner, epoch, record_output
from streams.outcomes.service import (
    _nested,
    batch_outputs,
    checkpoint_positions,
    checkpoint_value,
)
from streams.settings import Settings

SETTINGS = Settings(bootstrap_servers="127.0.0.1:1", monitor_window_seconds=300.0)
T0 = datetime(2024, 1, 1, tzinfo=UTC)
EVENTS, DRIFT_AT = 3000, 1500
WALL_CLOCK = ("detected_at", "generated_at")


@dataclass(frozen=True)
class Traffic:
    """What the owner reads, as record values (see the module doc)."""

    registry: Registry
    single: list[bytes]
    split: list[bytes]
    outcomes: list[bytes]


def published(model: ScoringModel, batches: list[list[ConsumedRecord]], topic: str) -> list[bytes]:
    """The values one scorer publishes to ``topic`` for ``batches``, in order."""
    metrics = ScorerMetrics()
    scorer = BatchProcessor(
        SETTINGS, lambda: ServingModels(model, None), metrics, EngineMonitors(SETTINGS, metrics)
    )
    outputs = [output for batch in batches for output in scorer.process(batch)]
    return [value for output_topic, _, value, _ in outputs if output_topic == topic]


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Traffic:
    registry = Registry(Path(tmp_path_factory.mktemp("registry")))
    trained = train(agrawal(2000, seed=3), "logistic", seed=3)
    for _ in range(2):  # v2: the same model registered again, for two serving versions
        registry.register(trained.estimator, name="loans", kind="logistic",
                          manifest_fields=trained.manifest_fields)  # fmt: skip
    model = ScoringModel.from_loaded(registry.load("loans", 1))
    stream = list(agrawal_stream(EVENTS, seed=5, drift_at=DRIFT_AT, start=T0, run_id="owner"))
    records = [
        ConsumedRecord(orjson.dumps(e.event), None, SETTINGS.topic_events, i % 2, i // 2, 0)
        for i, e in enumerate(stream)
    ]
    summaries = SETTINGS.topic_monitor_summaries
    batches = [records[b : b + 500] for b in range(0, EVENTS, 500)]
    single = published(model, batches, summaries)
    per_scorer = [
        published(model, [part[b : b + 250] for b in range(0, len(part), 250)], summaries)
        for part in (records[0::2], records[1::2])
    ]
    split = [value for pair in zip(*per_scorer, strict=True) for value in pair]
    decisions = published(model, batches, SETTINGS.topic_decisions)
    feedback = [
        label(e.event["event_id"], e.label, T0 + timedelta(seconds=i + 30))
        for i, e in enumerate(stream)
    ]
    join = OutcomeJoin(PartitionStore(tmp_path_factory.mktemp("join")), 86_400, 60, sources=1)
    for _, held in parse_decisions(decisions)[0]:
        join.decision(held)
    outcomes = [join.label(f)[0][0] for _, f in parse_feedback(feedback)[0]]
    return Traffic(registry, single, split, [orjson.dumps(o) for o in outcomes])


def label(event_id: str, value: int, at: datetime) -> bytes:
    return orjson.dumps({"event_id": event_id, "label": value, "label_time": at.isoformat()})


def owner_of(traffic: Traffic, settings: Settings = SETTINGS, partitions: int = 2) -> MonitorOwner:
    return MonitorOwner(settings, traffic.registry, partitions, 1, ScorerMetrics())


def comparable(records: list[dict[str, Any]]) -> list[str]:
    """Records as canonical JSON without their wall-clock stamps, in order."""
    return [
        json.dumps({k: v for k, v in r.items() if k not in WALL_CLOCK}, sort_keys=True)
        for r in records
    ]


def alerts(records: list[dict[str, Any]]) -> set[tuple[str, str | None, str]]:
    return {(r["monitor"], r.get("feature"), r["status"]) for r in records if "alert_id" in r}


def labels_of(
    owner: MonitorOwner, values: list[bytes | None], first_offset: int = 0
) -> list[dict[str, Any]]:
    """Outcomes read from partition 0 of ``outcomes``, from ``first_offset`` on."""
    offsets = list(range(first_offset, first_offset + len(values)))
    return owner.outcomes(list(values), [0] * len(values), offsets)


def count(metrics: ScorerMetrics, metric: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(metric, labels) or 0.0


# --- summaries -------------------------------------------------------------------------------


def test_summaries_become_drift_alerts_and_fairness_reports(traffic: Traffic) -> None:
    owner = owner_of(traffic)
    records = owner.summaries(list(traffic.single))

    assert ("feature", "loan", "open") in alerts(records)  # the shifted feature
    assert ("prediction", None, "open") in alerts(records)
    reports = [r for r in records if "alert_id" not in r]
    assert reports and {r["attribute"] for r in reports} == {"age_band"}
    for record in records:
        (DriftAlert if "alert_id" in record else FairnessReport).model_validate(record)
    stats = owner.sets[("loans", 1)].stats()
    assert stats["counters"]["events.windows"] == 9  # 10 windows; the last one is still open
    assert len(stats["pending_windows"]["events"]) == 1


def test_summaries_of_two_scorers_give_the_verdicts_of_one(traffic: Traffic) -> None:
    single = owner_of(traffic).summaries(list(traffic.single))
    split = owner_of(traffic).summaries(list(traffic.split))

    assert len(traffic.split) == 2 * len(traffic.single)
    assert alerts(single) and comparable(split) == comparable(single)


def test_a_replayed_summary_is_skipped(traffic: Traffic) -> None:
    """A scorer that crashed before its commit scores the batches again: their summaries
    repeat offsets already merged and are dropped whole."""
    once = owner_of(traffic)
    expected = once.summaries(list(traffic.single))
    replayed = owner_of(traffic)
    single = traffic.single
    records = replayed.summaries(single[:4] + single[2:4] + single[4:] + single[-1:])

    assert replayed.skipped_summaries == 3 and once.skipped_summaries == 0
    assert comparable(records) == comparable(expected)
    assert replayed.state() == once.state()


def test_unreadable_summaries_are_skipped_and_counted(traffic: Traffic) -> None:
    owner = owner_of(traffic)
    export = orjson.loads(traffic.single[0])
    broken: list[bytes | None] = [
        b"{not json",
        None,
        orjson.dumps({"streams": {}}),  # no model
        orjson.dumps({**export, "model": {"name": "loans", "version": "one"}}),
        orjson.dumps({**export, "model": {"name": "unknown", "version": 1}}),  # not registered
        orjson.dumps({**export, "model": {"name": "loans", "version": 7}}),
        orjson.dumps({"model": export["model"]}),  # a model but no streams
        orjson.dumps({**export, "model": {**export["model"], "sha256": "0" * 64}}),  # not v1's
    ]
    records = owner.summaries([*broken, *traffic.single])

    assert comparable(records) == comparable(owner_of(traffic).summaries(list(traffic.single)))
    assert count(owner.metrics, "scorer_errors_total", kind="monitor_summary") == len(broken)
    assert list(owner.sets) == [("loans", 1)]


def test_an_idle_partition_holds_windows_until_it_is_moved_along(traffic: Traffic) -> None:
    """Three partitions, data on two: the third holds every window open, unless
    ``monitor_idle_seconds`` moves it along once it trails the newest watermark that much."""
    held = owner_of(traffic, partitions=3)
    assert held.summaries(list(traffic.single)) == []

    idle = SETTINGS.model_copy(update={"monitor_idle_seconds": 600.0})
    moved = owner_of(traffic, idle, partitions=3).summaries(list(traffic.single))
    assert ("feature", "loan", "open") in alerts(moved)


# --- joined outcomes -------------------------------------------------------------------------


def test_unusable_outcome_records_are_skipped_and_counted(traffic: Traffic) -> None:
    owner = owner_of(traffic)
    garbage: list[bytes | None] = [b"{not json", None, b'{"event_id": "e"}',
                                   b'{"model": {"name": "loans", "version": 1}}']  # fmt: skip
    labels_of(owner, [*garbage, *traffic.outcomes[:10]])  # never raises
    assert count(owner.metrics, "scorer_errors_total", kind="outcome_record") == len(garbage)
    assert owner.sets[("loans", 1)].counters["labels.counted"] == 10


def test_joined_labels_become_concept_drift_alerts(traffic: Traffic) -> None:
    owner = owner_of(traffic)
    records = labels_of(owner, list(traffic.outcomes))

    assert ("concept", None, "open") in alerts(records)  # the labels' concept changed
    assert owner.sets[("loans", 1)].counters["labels.counted"] == EVENTS
    for record in records:
        (DriftAlert if "alert_id" in record else FairnessReport).model_validate(record)


def test_a_label_feeds_the_monitors_of_the_version_that_decided(
    traffic: Traffic, caplog: pytest.LogCaptureFixture
) -> None:
    def decided_by(value: bytes, version: int) -> bytes:
        outcome = orjson.loads(value)
        return orjson.dumps({**outcome, "model": {**outcome["model"], "version": version}})

    versions = [1] * 6 + [2] * 3 + [9]  # v9: a version the registry does not hold
    owner = owner_of(traffic)
    labels_of(owner, [decided_by(v, n) for v, n in zip(traffic.outcomes, versions, strict=False)])

    counted = {key: s.counters["labels.counted"] for key, s in owner.sets.items()}
    assert counted == {("loans", 1): 6, ("loans", 2): 3}
    assert any("loans:v9 not monitored" in r.getMessage() for r in caplog.records)


# --- checkpoints -------------------------------------------------------------------------------


def test_a_restored_owner_continues_where_the_checkpointed_one_stood(traffic: Traffic) -> None:
    """State through the service's checkpoint JSON, restored into a new owner: the same
    records as without the interruption, and a summary merged before the checkpoint is
    still known as merged."""
    half = EVENTS // 2
    running = owner_of(traffic)
    running.summaries(traffic.single[:3])
    labels_of(running, traffic.outcomes[:half])
    saved = checkpoint_value("owner", {}, running.state(), T0)

    restored = owner_of(traffic)
    restored.restore(orjson.loads(saved)["monitors"])
    assert restored.state() == orjson.loads(orjson.dumps(running.state()))

    after = [traffic.single[1], *traffic.single[3:]]  # one replayed from before the checkpoint
    expected = running.summaries(after) + labels_of(running, traffic.outcomes[half:], half)
    records = restored.summaries(after) + labels_of(restored, traffic.outcomes[half:], half)
    assert restored.skipped_summaries == running.skipped_summaries == 1
    assert alerts(expected) >= {("feature", "loan", "open"), ("concept", None, "open")}
    assert comparable(records) == comparable(expected)


def test_a_checkpoint_holds_the_positions_and_the_state_it_covers(traffic: Traffic) -> None:
    owner = owner_of(traffic)
    owner.summaries(traffic.single[:2])
    positions = {("monitor-summaries", 0): 2, ("decisions", 10): 7, ("decisions", 2): 9}
    written = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    checkpoint = orjson.loads(checkpoint_value("scorer-monitor", positions, owner.state(), written))

    assert checkpoint["owner"] == "scorer-monitor"
    assert checkpoint["offsets"] == {
        "decisions": {"2": 9, "10": 7},
        "monitor-summaries": {"0": 2},
    }
    assert checkpoint_positions(checkpoint) == positions
    assert epoch(checkpoint["written_at"]) == written.timestamp()
    assert checkpoint["monitors"] == orjson.loads(orjson.dumps(owner.state()))
    assert checkpoint["monitors"][0]["merged_offsets"] == {"0": 499, "1": 499}


def test_positions_nest_by_topic_in_partition_order() -> None:
    nested = _nested({("feedback", 10): 4, ("feedback", 2): 9, ("decisions", 0): 1})
    assert nested == {"decisions": {"0": 1}, "feedback": {"2": 9, "10": 4}}
    assert list(nested["feedback"]) == ["2", "10"]  # numeric order, not text order
    assert _nested({}) == {}


# --- outputs -----------------------------------------------------------------------------------


def test_alert_and_report_records_go_to_their_topics_keyed_and_counted(traffic: Traffic) -> None:
    records = owner_of(traffic).summaries(list(traffic.single))
    alert = next(r for r in records if "alert_id" in r)
    report = next(r for r in records if "alert_id" not in r)
    resolved = {**alert, "status": "resolved"}
    metrics = ScorerMetrics()

    outputs = [record_output(SETTINGS, metrics, r) for r in (alert, report, resolved)]

    assert [(topic, key) for topic, key, _, _ in outputs] == [
        (SETTINGS.topic_drift_alerts, alert["monitor_id"].encode()),
        (SETTINGS.topic_fairness_reports, b"age_band"),
        (SETTINGS.topic_drift_alerts, alert["monitor_id"].encode()),
    ]
    assert orjson.loads(outputs[0][2]) == alert
    assert outputs[1][3] == [("model_name", b"loans"), ("model_version", b"1")]
    monitor = alert["monitor"]
    assert count(metrics, "scorer_drift_alerts_total", monitor=monitor, status="open") == 1
    assert count(metrics, "scorer_drift_alerts_total", monitor=monitor, status="resolved") == 1
    assert count(metrics, "scorer_fairness_reports_total", attribute="age_band",
                 status=report["status"]) == 1  # fmt: skip


def test_a_batch_judges_summaries_and_outcomes_into_alert_and_report_records(
    traffic: Traffic,
) -> None:
    s = SETTINGS

    def consumed(topic: str, values: list[bytes]) -> list[ConsumedRecord]:
        return [ConsumedRecord(v, b"k", topic, 0, 40 + i, 1_700_000_000_000)
                for i, v in enumerate(values)]  # fmt: skip

    by_topic = {
        s.topic_outcomes: consumed(s.topic_outcomes, list(traffic.outcomes)),
        s.topic_monitor_summaries: consumed(s.topic_monitor_summaries, list(traffic.single)),
    }
    owner = owner_of(traffic)
    outputs = batch_outputs(s, ScorerMetrics(), owner, by_topic)

    assert {topic for topic, _, _, _ in outputs} == {s.topic_drift_alerts, s.topic_fairness_reports}
    assert owner.sets[("loans", 1)].counters["labels.counted"] == EVENTS
    assert ("concept", None, "open") in alerts([orjson.loads(v) for _, _, v, _ in outputs])
