"""``scorer monitor``: the one owner of every monitor's verdict.

Scoring processes count their batches into window summaries
(:mod:`streams.engine.monitors`). This process reads three topics and judges:

- ``monitor-summaries``: merged into one :class:`~streams.monitoring.monitor_set.MonitorSet`
  per model version; a window is evaluated once every partition of the events topic has
  passed it, so the verdicts are those of one process over all partitions.
- ``decisions``: remembered by event_id (score, decision, context, event time, model) for
  the feedback retention.
- ``feedback``: labels joined to those decisions once; joined labels feed concept drift and
  outcome fairness of the version that decided; rejected labels go to the dead-letter topic.

Its outputs (drift alerts, fairness reports, dead letters) and a checkpoint of its state are
written in Kafka transactions together with the input offsets they cover, every
``monitor_checkpoint_seconds``. After a crash, the next owner (same transactional id, which
fences the old one and aborts its open transaction) restores the last checkpoint, rebuilds
the label join from the decisions and feedback it covers, and reads on from its offsets: a
read_committed reader sees the alerts an uninterrupted run would have written, once.

A window is evaluated only when every partition of its stream has passed it, so a partition
that stops receiving data holds windows open (keyed traffic reaches every partition). For
sparse topics, ``monitor_idle_seconds`` moves a partition along once its watermark trails the
newest one by that much event time. It is off by default because it is only safe when it
exceeds how far apart in event time the scorers read their partitions: scorers run at
different speeds, and a busy partition moved along early has its later counts dropped as late.

Run one owner per deployment; a second one started with the same group id fences the first.
Duplicates of scored batches (at-least-once after a scoring process crashed) are dropped when
a whole summary repeats offsets already merged; a partly repeated summary is counted twice.
Serve with ``--exactly-once`` where monitor counts must be exact across scorer crashes.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)

from models.registry import Registry
from schemas.contracts import SCHEMA_VERSION, RejectReason
from schemas.errors import BrokerError, ScorerError
from streams.engine.label_gate import LabelGate
from streams.engine.monitors import monitor_config
from streams.engine.processor import ConsumedRecord, dead_letter_outputs
from streams.engine.service import Service, consumed, partition_count, usable
from streams.feedback import FeedbackJoiner, Joined, parse_feedback
from streams.monitoring.batch import LabelledBatch
from streams.monitoring.monitor_set import MonitorSet
from streams.monitoring.summary import Stream
from streams.observability import Health, ScorerMetrics
from streams.settings import Settings

log = logging.getLogger(__name__)

Output = tuple[str, bytes | None, bytes, list[tuple[str, str | bytes | None]]]
ModelKey = tuple[str, int]


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


class MonitorOwner:
    """The owner's logic, without Kafka: inputs in, alert and report records out."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        event_partitions: int,
        label_partitions: int,
        metrics: ScorerMetrics | None = None,
    ) -> None:
        self.settings, self.registry = settings, registry
        self.metrics = metrics or ScorerMetrics()
        self.config = monitor_config(
            settings, event_partitions=event_partitions, label_partitions=label_partitions
        )
        self.idle_seconds = settings.monitor_idle_seconds
        self.sets: dict[ModelKey, MonitorSet] = {}
        self.joiner = FeedbackJoiner(settings.feedback_retention_seconds)
        self.merged_offsets: dict[ModelKey, dict[int, int]] = defaultdict(dict)
        self.skipped_summaries = 0

    # --- inputs -----------------------------------------------------------------------------

    def summaries(self, values: list[bytes | None]) -> list[dict[str, Any]]:
        """Merge summary exports in order; the records of the windows they made final."""
        records: list[dict[str, Any]] = []
        for value in values:
            try:
                export = orjson.loads(value or b"null")
                key = (str(export["model"]["name"]), int(export["model"]["version"]))
                monitors = self._for(key)
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, ScorerError) as exc:
                log.error("summary skipped: %s", exc)
                self.metrics.errors.labels("monitor_summary").inc()
                continue
            if self._replayed(key, export):
                self.skipped_summaries += 1
                continue
            records += monitors.merge_summary(export)
            records += self._move_idle(monitors, "events")
        return records

    def decisions(self, values: list[bytes | None]) -> None:
        """Remember the champion's decisions for the label join."""
        rows = [orjson.loads(v) for v in values if v is not None]
        if not rows:
            return
        self.joiner.remember(
            [r["event_id"] for r in rows],
            [float(r["score"]) for r in rows],
            [r["decision"] for r in rows],
            [r.get("context") or {} for r in rows],
            [_epoch(r["event_time"]) for r in rows],
            [(r["model"]["name"], int(r["model"]["version"])) for r in rows],
        )

    def labels(
        self, values: list[bytes | None], partitions: list[int], offsets: list[int]
    ) -> tuple[list[dict[str, Any]], list[tuple[int, RejectReason, str]]]:
        """Join labels; records of the label windows made final, and rejected labels."""
        accepted, rejects = parse_feedback(values)
        joined, join_rejects = self.joiner.join(
            [(i, f["event_id"], f["label"], f["label_time"]) for i, f in accepted]
        )
        rejects += join_rejects
        self.metrics.labels.labels("joined").inc(len(joined))
        self.metrics.labels.labels("rejected").inc(len(rejects))
        by_model: dict[ModelKey, list[Joined]] = defaultdict(list)
        for item in joined:
            if item.model is not None:
                by_model[item.model].append(item)
        records: list[dict[str, Any]] = []
        for key, items in sorted(by_model.items()):
            try:
                monitors = self._for(key)
            except ScorerError as exc:
                log.error("labels of %s:v%d not monitored: %s", *key, exc)
                continue
            records += monitors.observe_labels(
                LabelledBatch(
                    [j.score for j in items],
                    [j.decision for j in items],
                    [j.label for j in items],
                    [j.label_time for j in items],
                    [partitions[j.index] for j in items],
                    [offsets[j.index] for j in items],
                    [j.context for j in items],
                )
            )
            records += self._move_idle(monitors, "labels")
        return records, rejects

    # --- checkpoints ------------------------------------------------------------------------

    def state(self) -> list[dict[str, Any]]:
        return [
            {
                **monitors.state(),
                "merged_offsets": {str(p): o for p, o in self.merged_offsets[key].items()},
            }
            for key, monitors in sorted(self.sets.items())
        ]

    def restore(self, states: list[dict[str, Any]]) -> None:
        for state in states:
            key = (str(state["model"]["name"]), int(state["model"]["version"]))
            self._for(key).restore(state)
            self.merged_offsets[key] = {int(p): int(o) for p, o in state["merged_offsets"].items()}

    # --- internals --------------------------------------------------------------------------

    def _for(self, key: ModelKey) -> MonitorSet:
        monitors = self.sets.get(key)
        if monitors is None:
            manifest = self.registry.manifest(*key)
            monitors = self.sets[key] = MonitorSet(manifest, self.config)
            log.info("monitoring %s:v%d", *key)
        return monitors

    def _replayed(self, key: ModelKey, export: dict[str, Any]) -> bool:
        """True when every offset of the export was merged before (a re-scored batch)."""
        merged = self.merged_offsets[key]
        highs = {
            int(p): int(o)
            for p, o in export["streams"].get("events", {}).get("high_offsets", {}).items()
        }
        lows: dict[int, int] = {}
        for window in export["streams"].get("events", {}).get("windows", []):
            for p, (low, _) in window["offsets"].items():
                lows[int(p)] = min(lows.get(int(p), low), low)
        if lows and all(low <= merged.get(p, -1) for p, low in lows.items()):
            return True
        for p, high in highs.items():
            merged[p] = max(merged.get(p, -1), high)
        return False

    def _move_idle(self, monitors: MonitorSet, stream: Stream) -> list[dict[str, Any]]:
        clock = monitors.clocks[stream]
        if self.idle_seconds is None or not clock.partitions or not clock.watermarks:
            return []
        newest = max(clock.watermarks.values())
        records: list[dict[str, Any]] = []
        for partition in range(clock.partitions):
            mark = clock.watermarks.get(partition, -math.inf)
            if newest - mark > self.idle_seconds:
                records += monitors.advance_watermark(stream, partition, newest - self.idle_seconds)
        return records


class MonitorService(Service):
    """:class:`MonitorOwner` on Kafka: transactions, checkpoints, restore, signals."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry | None = None,
        metrics: ScorerMetrics | None = None,
        health: Health | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or ScorerMetrics()
        self.health = health or Health()
        self.owner_id = settings.monitor_group_id
        super().__init__()
        self.consumer = Consumer(
            settings.kafka_config(**{
                "group.id": settings.monitor_group_id, "enable.auto.commit": False,
                "isolation.level": "read_committed", "auto.offset.reset": "earliest",
                "log_level": 4,
            })
        )  # fmt: skip
        self.partitions = {topic: partition_count(self.consumer, topic) for topic in self._inputs()}
        self.owner = MonitorOwner(
            settings,
            registry or Registry(settings.registry),
            partition_count(self.consumer, settings.topic_events),
            self.partitions.get(settings.topic_feedback, 0),
            self.metrics,
        )
        self.producer = Producer(
            settings.kafka_config(**{
                "transactional.id": f"{self.owner_id}-owner", "acks": "all",
                "enable.idempotence": True, "linger.ms": 20, "compression.type": "lz4",
                "message.max.bytes": 16_000_000, "log_level": 4,
            })
        )  # fmt: skip
        self.positions: dict[tuple[str, int], int] = {}
        s = settings
        self.gate = LabelGate(
            self.consumer,
            [TopicPartition(s.topic_decisions, p)
             for p in range(self.partitions.get(s.topic_decisions, 0))],
            [TopicPartition(s.topic_feedback, p)
             for p in range(self.partitions.get(s.topic_feedback, 0))],
        )  # fmt: skip

    def _inputs(self) -> list[str]:
        s = self.settings
        topics = [s.topic_monitor_summaries]
        if s.join_feedback:
            topics += [s.topic_decisions, s.topic_feedback]
        return topics

    # --- lifecycle --------------------------------------------------------------------------

    def run(self) -> None:
        self.producer.init_transactions(30)  # fences an older owner, aborts its transaction
        self._restore()
        self.consumer.assign(
            [TopicPartition(t, p, self.positions.get((t, p), OFFSET_BEGINNING))
             for t, n in self.partitions.items() for p in range(n)]
        )  # fmt: skip
        log.info("monitor owner %s reading %s", self.owner_id, ", ".join(self.partitions))
        self.health.set(True, "")
        self.producer.begin_transaction()
        self.gate.seen()  # the restore took its time: the decisions' stall clock starts now
        last_commit = time.monotonic()
        try:
            while not self._stopping.is_set():
                self.health.heartbeat()
                self.gate.update()  # labels wait until the decisions are read
                messages = [
                    m for m in self.consumer.consume(1000, timeout=0.1) if usable(m, self.metrics)
                ]
                if messages:
                    self._process(messages)
                if time.monotonic() - last_commit >= self.settings.monitor_checkpoint_seconds:
                    self._commit()
                    last_commit = time.monotonic()
            self._commit(final=True)
        finally:
            self.health.set(False, "stopped")
            self.consumer.close()
            log.info("monitor owner stopped")

    # --- one batch --------------------------------------------------------------------------

    def _process(self, messages: list[Message]) -> None:
        s = self.settings
        by_topic: dict[str, list[ConsumedRecord]] = defaultdict(list)
        for record in map(consumed, messages):
            by_topic[record.topic].append(record)
            self.positions[(record.topic, record.partition)] = record.offset + 1
        # decisions first, so that a label read in the same batch as its decision joins it
        decisions = by_topic.get(s.topic_decisions, [])
        if decisions:
            self.gate.seen()
            self.owner.decisions([r.value for r in decisions])
        records = self.owner.summaries(
            [r.value for r in by_topic.get(s.topic_monitor_summaries, [])]
        )
        outputs: list[Output] = []
        labels = by_topic.get(s.topic_feedback, [])
        if labels:
            label_records, rejects = self.owner.labels(
                [r.value for r in labels], [r.partition for r in labels], [r.offset for r in labels]
            )
            records += label_records
            outputs += dead_letter_outputs(s, self.metrics, labels, rejects)
        outputs = [record_output(s, self.metrics, r) for r in records] + outputs
        for topic, key, value, headers in outputs:
            self.producer.produce(topic, value, key, headers=headers)
        self.producer.poll(0)

    # --- checkpoints ------------------------------------------------------------------------

    def _commit(self, final: bool = False) -> None:
        """Checkpoint and offsets into the open transaction; commit; open the next one."""
        checkpoint = {
            "schema_version": SCHEMA_VERSION,
            "owner": self.owner_id,
            "offsets": _nested(self.positions),
            "monitors": self.owner.state(),
            "written_at": datetime.now(UTC).isoformat(),
        }
        self.producer.produce(
            self.settings.topic_monitor_checkpoints,
            orjson.dumps(checkpoint, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS),
            self.owner_id.encode(),
        )
        if self.positions:
            self.producer.send_offsets_to_transaction(
                [TopicPartition(t, p, o) for (t, p), o in sorted(self.positions.items())],
                self.consumer.consumer_group_metadata(),
                30,
            )
        self.producer.commit_transaction(60)
        if not final:
            self.producer.begin_transaction()

    def _restore(self) -> None:
        checkpoint = self._last_checkpoint()
        if checkpoint is None:
            log.info("no checkpoint for %s: starting from the beginning", self.owner_id)
            return
        self.owner.restore(checkpoint["monitors"])
        for topic, parts in checkpoint["offsets"].items():
            for partition, offset in parts.items():
                self.positions[(topic, int(partition))] = int(offset)
        self._rebuild_join(_epoch(checkpoint["written_at"]))
        log.info(
            "restored %s from its checkpoint of %s (%d monitor set(s), %d decisions held)",
            self.owner_id, checkpoint["written_at"], len(checkpoint["monitors"]),
            len(self.owner.joiner),
        )  # fmt: skip

    def _last_checkpoint(self) -> dict[str, Any] | None:
        topic = self.settings.topic_monitor_checkpoints
        records = _read_range(
            self.settings, {(topic, p): None for p in range(partition_count(self.consumer, topic))}
        )
        found = None
        for message in records:
            if message.key() == self.owner_id.encode():
                found = message.value()
        return None if found is None else orjson.loads(found)

    def _rebuild_join(self, written_at: float) -> None:
        """The label join's state is the decisions (and labels) of the retention before the
        checkpoint: read them again up to the checkpoint's offsets."""
        s = self.settings
        if not s.join_feedback:
            return
        horizon_ms = int((written_at - s.feedback_retention_seconds) * 1000)
        for topic in (s.topic_decisions, s.topic_feedback):
            ranges: dict[tuple[str, int], int | None] = {
                (topic, p): self.positions.get((topic, p), 0) for p in range(self.partitions[topic])
            }
            messages = _read_range(s, ranges, since_ms=horizon_ms)
            if topic == s.topic_decisions:
                self.owner.decisions([m.value() for m in messages])
            else:  # mark what was joined before; the records it made are in the checkpoint
                accepted, _ = parse_feedback([m.value() for m in messages])
                self.owner.joiner.join(
                    [(i, f["event_id"], f["label"], f["label_time"]) for i, f in accepted]
                )


def record_output(settings: Settings, metrics: ScorerMetrics, record: dict[str, Any]) -> Output:
    """An alert or fairness record as an output to its topic, counted and logged."""
    if "alert_id" in record:
        topic, key = settings.topic_drift_alerts, record["monitor_id"]
        status = "resolved" if record.get("status") == "resolved" else "open"
        metrics.alerts.labels(record.get("monitor", "?"), status).inc()
        log.warning(
            "drift %s: %s %s (%s=%.4g, threshold %.4g, retrain %s)",
            status, record.get("monitor"), record.get("feature") or "",
            record.get("statistic"), record.get("value", np.nan),
            record.get("threshold", np.nan), record.get("retrain_recommended"),
        )  # fmt: skip
    else:
        topic, key = settings.topic_fairness_reports, record["attribute"]
        metrics.fairness.labels(record["attribute"], record.get("status", "?")).inc()
    headers: list[tuple[str, str | bytes | None]] = [
        ("model_name", str(record["model"]["name"]).encode()),
        ("model_version", str(record["model"]["version"]).encode()),
    ]
    return (topic, key.encode(), orjson.dumps(record), headers)


def _nested(positions: dict[tuple[str, int], int]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for (topic, partition), offset in sorted(positions.items()):
        out[topic][str(partition)] = offset
    return dict(out)


def _read_range(
    settings: Settings,
    ends: dict[tuple[str, int], int | None],
    since_ms: int | None = None,
) -> list[Message]:
    """Committed records of each partition from ``since_ms`` (or the start) to its end
    offset (None: the current end), read without a consumer group."""
    consumer = Consumer(
        settings.kafka_config(**{
            "group.id": "unused", "enable.auto.commit": False, "isolation.level": "read_committed",
            "enable.partition.eof": True, "log_level": 4,
        })
    )  # fmt: skip
    try:
        starts: dict[tuple[str, int], int] = {}
        stops: dict[tuple[str, int], int] = {}
        for (topic, partition), end in ends.items():
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), 10)
            stop = high if end is None else min(end, high)
            start = low
            if since_ms is not None:
                found = consumer.offsets_for_times([TopicPartition(topic, partition, since_ms)], 10)
                start = max(low, found[0].offset) if found[0].offset >= 0 else stop
            if start < stop:
                starts[(topic, partition)], stops[(topic, partition)] = start, stop
        if not starts:
            return []
        consumer.assign([TopicPartition(t, p, o) for (t, p), o in starts.items()])
        records: list[Message] = []
        remaining = dict(stops)
        deadline = time.monotonic() + 120
        while remaining and time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=0.5):
                topic, partition, offset = consumed(message)[2:5]
                if (topic, partition) not in remaining:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        remaining.pop((topic, partition))  # markers end short of `stop`
                    continue
                if offset < remaining[(topic, partition)]:
                    records.append(message)
                if offset + 1 >= remaining[(topic, partition)]:
                    remaining.pop((topic, partition))
        if remaining:
            raise BrokerError(f"could not read back {sorted(remaining)} within 120 s")
        return records
    finally:
        consumer.close()
