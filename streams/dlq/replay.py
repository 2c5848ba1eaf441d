"""The Kafka side of a replay: read the DLQ, publish what the plan says, record the ledger.

The replay tool is a consumer group of its own on the DLQ (``scorer-dlq-replay`` by
default). It reads the selected DLQ range as a snapshot, plans (:mod:`streams.dlq.plan`),
publishes each record to the events topic under its original key with headers naming the
dead letter it came from, waits until the broker acknowledged every one, and only then
commits the ledger (:mod:`streams.dlq.ledger`). A record whose delivery failed is not
recorded, so the next run offers it again; nothing is lost, and at worst (a crash between
publishing and committing) a record is published twice, which the scorer's at-least-once
contract already allows for (deduplicate on ``event_id``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from models.featurespec import FeatureSpec
from schemas.errors import BrokerError
from streams.dlq import ReplayError
from streams.dlq.fix import Fix
from streams.dlq.ledger import ReplayLedger
from streams.dlq.plan import Candidate, DlqRecord, ReplayPlan, Selection, plan_replay
from streams.report.collect import read_ranges
from streams.settings import Settings

DEFAULT_GROUP = "scorer-dlq-replay"


@dataclass(frozen=True)
class ReplayRun:
    """What one run read, decided and published."""

    plan: ReplayPlan
    records_read: int
    published: int
    target_topic: str
    dry_run: bool
    skipped: int = 0
    """Dead letters below the ledger's committed offsets: replayed before, so not read."""


def replay_headers(
    candidate: Candidate, dlq_topic: str, fix: Fix | None
) -> list[tuple[str, str | bytes | None]]:
    """Headers of a re-published record: the dead letter it came from and the fix it got."""
    letter = candidate.letter
    headers: list[tuple[str, str | bytes | None]] = [
        ("dlq_topic", dlq_topic.encode()),
        ("dlq_partition", str(candidate.partition).encode()),
        ("dlq_offset", str(candidate.offset).encode()),
        ("dlq_reason", (letter.reason.value if letter else "").encode()),
        ("replay_fix", (fix.digest if fix else "none").encode()),
        ("replayed_at", datetime.now(UTC).isoformat().encode()),
    ]
    if letter is not None and letter.event_id:
        headers.insert(0, ("event_id", letter.event_id.encode()))
    return headers


class Replayer:
    """One replay run against ``settings``' DLQ and events topics."""

    def __init__(self, settings: Settings, *, group: str = DEFAULT_GROUP) -> None:
        self.settings = settings
        self.topic = settings.topic_dlq
        self.consumer = Consumer(
            settings.kafka_config(
                **{
                    "group.id": group,
                    "isolation.level": "read_committed",
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                    "log_level": 3,
                }
            )
        )

    def close(self) -> None:
        self.consumer.close()

    def run(
        self,
        selection: Selection,
        *,
        fix: Fix | None = None,
        spec: FeatureSpec | None = None,
        again: bool = False,
        dry_run: bool = False,
    ) -> ReplayRun:
        partitions = self._partitions(selection.partition)
        ledgers = self._ledgers(partitions)
        ranges = {}
        skipped = 0
        for partition in partitions:
            low, high = self.consumer.get_watermark_offsets(
                TopicPartition(self.topic, partition), timeout=10
            )
            first = max(low, selection.from_offset or 0)
            end = high if selection.to_offset is None else min(high, selection.to_offset + 1)
            start = first if again else max(first, ledgers[partition].committed)
            skipped += max(0, min(start, end) - first)
            ranges[partition] = (start, end)
        read = read_ranges(self.consumer, self.topic, ranges)
        records = [DlqRecord(r.partition, r.offset, r.value, r.timestamp_ms) for r in read]
        plan = plan_replay(records, selection, ledgers, fix=fix, spec=spec, again=again)
        published = 0
        if not dry_run and plan.to_publish:
            published = self._publish(plan.to_publish, ledgers, fix)
        return ReplayRun(
            plan, len(records), published, self.settings.topic_events, dry_run, skipped
        )

    def _partitions(self, only: int | None) -> list[int]:
        metadata = self.consumer.list_topics(self.topic, timeout=10).topics.get(self.topic)
        if metadata is None or metadata.error is not None:
            raise BrokerError(
                f"dead-letter topic {self.topic!r} not found at {self.settings.bootstrap_servers}"
            )
        partitions = sorted(metadata.partitions)
        if only is not None:
            if only not in partitions:
                raise ReplayError(
                    f"{self.topic!r} has no partition {only} (it has {len(partitions)})"
                )
            return [only]
        return partitions

    def _ledgers(self, partitions: list[int]) -> dict[int, ReplayLedger]:
        try:
            committed = self.consumer.committed(
                [TopicPartition(self.topic, p) for p in partitions], timeout=10
            )
        except KafkaException as exc:
            raise BrokerError(f"cannot read the replay ledger: {exc}") from exc
        return {tp.partition: ReplayLedger.decode(tp.offset, tp.metadata) for tp in committed}

    def _publish(
        self, candidates: list[Candidate], ledgers: dict[int, ReplayLedger], fix: Fix | None
    ) -> int:
        producer = Producer(
            self.settings.kafka_config(
                **{"enable.idempotence": True, "linger.ms": 5, "log_level": 3}
            )
        )
        delivered: list[Candidate] = []
        failures: list[str] = []

        def report(candidate: Candidate) -> Any:
            def on_delivery(error: KafkaError | None, _message: Message) -> None:
                if error is None:
                    delivered.append(candidate)
                else:
                    failures.append(f"dlq[{candidate.partition}]@{candidate.offset}: {error}")

            return on_delivery

        topic = self.settings.topic_events
        for candidate in candidates:
            while True:
                try:
                    producer.produce(
                        topic,
                        candidate.value,
                        candidate.key,
                        headers=replay_headers(candidate, self.topic, fix),
                        on_delivery=report(candidate),
                    )
                    break
                except BufferError:
                    producer.poll(0.1)
            producer.poll(0)
        deadline = time.monotonic() + 60
        while len(delivered) + len(failures) < len(candidates) and time.monotonic() < deadline:
            producer.flush(1)
        self._commit(ledgers, delivered)
        missing = len(candidates) - len(delivered)
        if missing:
            reason = failures[0] if failures else "no acknowledgement within 60 s"
            raise ReplayError(
                f"{missing} of {len(candidates)} records were not published ({reason}); "
                "they stay unreplayed: run the replay again"
            )
        return len(delivered)

    def _commit(self, ledgers: dict[int, ReplayLedger], delivered: list[Candidate]) -> None:
        offsets = []
        for partition in sorted({c.partition for c in delivered}):
            ledger = ledgers[partition].add(c.offset for c in delivered if c.partition == partition)
            offsets.append(TopicPartition(self.topic, partition, ledger.committed, ledger.encode()))
        if not offsets:
            return
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            raise ReplayError(
                f"records were published but the replay ledger could not be committed ({exc}); "
                "a new run would publish them again"
            ) from exc
