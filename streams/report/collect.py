"""Reading bounded snapshots of topics: what a report or a replay sees, and nothing newer.

A snapshot is fixed when it starts (each partition up to its high watermark then), so a
reader finishes even while producers keep writing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition

from schemas.errors import BrokerError
from streams.settings import Settings

Ranges = Mapping[int, tuple[int, int]]
"""Per partition, the offsets ``[start, end)`` to read."""


@dataclass(frozen=True)
class TopicRecord:
    """A record of a snapshot: where it was, when, and its value."""

    partition: int
    offset: int
    timestamp_ms: int
    value: bytes | None


def read_ranges(
    consumer: Consumer, topic: str, ranges: Ranges, timeout: float = 60.0
) -> list[TopicRecord]:
    """Every record of ``ranges``; :class:`BrokerError` if they do not all arrive in time.

    Offsets missing from a range (compacted away, or transaction markers) are not waited for:
    a partition is done once a record at or beyond its last offset arrived, or its position
    passed the end.
    """
    pending = {p: end for p, (start, end) in ranges.items() if end > start}
    if not pending:
        return []
    consumer.assign([TopicPartition(topic, p, ranges[p][0]) for p in pending])
    records: list[TopicRecord] = []
    deadline = time.monotonic() + timeout
    while pending:
        if time.monotonic() > deadline:
            raise BrokerError(
                f"timed out reading {topic!r}: partitions {sorted(pending)} did not reach "
                "their end offsets"
            )
        for message in consumer.consume(1000, timeout=0.5):
            if message.error() is not None:
                continue
            partition, offset = int(message.partition() or 0), int(message.offset() or 0)
            end = pending.get(partition)
            if end is None or offset >= end:
                continue
            records.append(TopicRecord(partition, offset, message.timestamp()[1], message.value()))
            if offset >= end - 1:
                del pending[partition]
        for position in consumer.position([TopicPartition(topic, p) for p in list(pending)]):
            if position.offset >= pending.get(position.partition, 1 << 62):
                del pending[position.partition]
    return records


def tail_ranges(
    consumer: Consumer,
    topic: str,
    partitions: list[int],
    count: int | None,
    since_ms: int | None = None,
) -> dict[int, tuple[int, int]]:
    """Per partition: the last ``count`` records (None: all), none older than ``since_ms``."""
    ranges: dict[int, tuple[int, int]] = {}
    starts: dict[int, int] = {}
    if since_ms is not None:
        found = consumer.offsets_for_times(
            [TopicPartition(topic, p, since_ms) for p in partitions], timeout=10
        )
        starts = {tp.partition: tp.offset for tp in found}
    for partition in partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        start = low if count is None else max(low, high - count)
        if partition in starts:
            start = max(start, high if starts[partition] < 0 else starts[partition])
        ranges[partition] = (start, high)
    return ranges


def read_latest(
    settings: Settings, topic: str, count: int | None, since_ms: int | None = None
) -> list[TopicRecord]:
    """The newest ``count`` records of ``topic`` (None: all) by timestamp, oldest first."""
    from streams.commands.tail import reader  # the command package imports this module

    consumer, partitions = reader(settings, topic)
    try:
        ranges = tail_ranges(consumer, topic, [tp.partition for tp in partitions], count, since_ms)
        records = read_ranges(consumer, topic, ranges)
    finally:
        consumer.close()
    records.sort(key=lambda r: (r.timestamp_ms, r.partition, r.offset))
    return records if count is None else records[-count:] if count else []
