"""The Kafka side of a republish: read the DLQ, publish what the plan says, record the ledger.

The republish tool is a consumer group of its own on the DLQ (``scorer-dlq-republish`` by
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

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from models.featurespec import FeatureSpec
from schemas.errors import BrokerError, RepublishError
from streams.dlq.fix import Fix
from streams.dlq.ledger import RepublishLedger
from streams.dlq.plan import Candidate, DlqRecord, RepublishPlan, Selection, plan_republish
from streams.kafka import clients
from streams.kafka.reader import TopicReader
from streams.settings import Settings

DEFAULT_GROUP = "scorer-dlq-republish"


@dataclass(frozen=True)
class RepublishRun:
    """What one run read, decided and published."""

    plan: RepublishPlan
    records_read: int
    published: int
    target_topic: str
    dry_run: bool
    skipped: int = 0
    """Dead letters below the ledger's committed offsets: republished before, so not read."""


def republish_headers(
    candidate: Candidate, dlq_topic: str, fix: Fix | None
) -> list[tuple[str, str | bytes | None]]:
    """Headers of a re-published record: the dead letter it came from and the fix it got."""
    letter = candidate.letter
    headers: list[tuple[str, str | bytes | None]] = [
        ("dlq_topic", dlq_topic.encode()),
        ("dlq_partition", str(candidate.partition).encode()),
        ("dlq_offset", str(candidate.offset).encode()),
        ("dlq_reason", (letter.reason.value if letter else "").encode()),
        ("republish_fix", (fix.digest if fix else "none").encode()),
        ("republished_at", datetime.now(UTC).isoformat().encode()),
    ]
    if letter is not None and letter.event_id:
        headers.insert(0, ("event_id", letter.event_id.encode()))
    return headers


class Republisher:
    """One republish run against ``settings``' DLQ and events topics."""

    def __init__(self, settings: Settings, *, group: str = DEFAULT_GROUP) -> None:
        self.settings = settings
        self.topic = settings.topic_dlq
        self.reader = TopicReader(settings)
        self.consumer = clients.group_consumer(settings, group)  # keeps the ledger's commits

    def close(self) -> None:
        self.reader.close()
        self.consumer.close()

    def run(
        self,
        selection: Selection,
        *,
        fix: Fix | None = None,
        spec: FeatureSpec | None = None,
        again: bool = False,
        dry_run: bool = False,
    ) -> RepublishRun:
        partitions = self._partitions(selection.partition)
        ledgers = self._ledgers(partitions)
        ranges = {}
        skipped = 0
        for partition in partitions:
            low, high = self.reader.watermarks(self.topic, partition)
            first = max(low, selection.from_offset or 0)
            end = high if selection.to_offset is None else min(high, selection.to_offset + 1)
            start = first if again else max(first, ledgers[partition].committed)
            skipped += max(0, min(start, end) - first)
            ranges[partition] = (start, end)
        read = self.reader.read(self.topic, ranges)
        records = [DlqRecord(r.partition, r.offset, r.value, r.timestamp_ms) for r in read]
        plan = plan_republish(records, selection, ledgers, fix=fix, spec=spec, again=again)
        published = 0
        if not dry_run and plan.to_publish:
            published = self._publish(plan.to_publish, ledgers, fix)
        return RepublishRun(
            plan, len(records), published, self.settings.topic_events, dry_run, skipped
        )

    def _partitions(self, only: int | None) -> list[int]:
        partitions = self.reader.partitions(self.topic) or []
        if only is not None:
            if only not in partitions:
                raise RepublishError(
                    f"{self.topic!r} has no partition {only} (it has {len(partitions)})"
                )
            return [only]
        return partitions

    def _ledgers(self, partitions: list[int]) -> dict[int, RepublishLedger]:
        try:
            committed = self.consumer.committed(
                [TopicPartition(self.topic, p) for p in partitions], timeout=10
            )
        except KafkaException as exc:
            raise BrokerError(f"cannot read the republish ledger: {exc}") from exc
        return {tp.partition: RepublishLedger.decode(tp.offset, tp.metadata) for tp in committed}

    def _publish(
        self, candidates: list[Candidate], ledgers: dict[int, RepublishLedger], fix: Fix | None
    ) -> int:
        producer = clients.producer(self.settings)
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
                        headers=republish_headers(candidate, self.topic, fix),
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
            raise RepublishError(
                f"{missing} of {len(candidates)} records were not published ({reason}); "
                "they stay unrepublished: run the republish again"
            )
        return len(delivered)

    def _commit(self, ledgers: dict[int, RepublishLedger], delivered: list[Candidate]) -> None:
        offsets = []
        for partition in sorted({c.partition for c in delivered}):
            ledger = ledgers[partition].add(c.offset for c in delivered if c.partition == partition)
            offsets.append(TopicPartition(self.topic, partition, ledger.committed, ledger.encode()))
        if not offsets:
            return
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            raise RepublishError(
                f"records were published but the republish ledger could not be committed ({exc}); "
                "a new run would publish them again"
            ) from exc
