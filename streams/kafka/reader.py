"""Bounded reads of a topic: the latest records, a time range or an offset range, and nothing
newer than the moment the read was planned.

Every command, the report, both replays and the monitor owner's restore read topics through
:class:`TopicReader`. It never joins a consumer group and never commits, so reading leaves
every live group untouched, and it reads only committed records (``read_committed``): an
aborted transaction's outputs are never shown or replayed.

A read is planned as ranges, per partition ``[start, end)`` offsets, fixed when planned, so
it finishes even while producers keep writing. A partition is done once a record at or
beyond its last offset arrived, or its position passed the end (offsets missing from a range,
compacted away or taken by transaction markers, are never delivered and not waited for).

One timeout policy for every read: a read fails with :class:`BrokerError` when the broker
delivers nothing new for ``timeout`` seconds (:data:`READ_TIMEOUT_S` unless told), however
long the whole read takes; no broker answering fails at once, in one line, with the address.

>>> ranges = {0: (5, 9), 1: (3, 3)}
>>> pending(ranges)
{0: 9}
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson
from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from schemas.errors import BrokerError
from streams.kafka.clients import first_metadata, reader_consumer
from streams.settings import Settings

READ_TIMEOUT_S: Final = 30.0
"""A read gives up when the broker has delivered nothing new for this long."""
CONNECT_TIMEOUT_S: Final = 10.0
"""How long the first metadata request may take before no broker is said to answer."""
_SLICE_S: Final = 0.5

Ranges = Mapping[int, tuple[int, int]]
"""Per partition, the offsets ``[start, end)`` to read."""


@dataclass(frozen=True)
class TopicRecord:
    """One record of a bounded read: where it was, when, and what it held."""

    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()

    def header(self, name: str) -> bytes | None:
        """The first header called ``name``, or None."""
        return next((value for key, value in self.headers if key == name), None)


def pending(ranges: Ranges) -> dict[int, int]:
    """The end offset of each partition with something to read."""
    return {p: end for p, (start, end) in ranges.items() if end > start}


class TopicReader:
    """Group-less bounded reads through one consumer; close it (or use ``with``)."""

    def __init__(self, settings: Settings, *, timeout: float = READ_TIMEOUT_S) -> None:
        self.bootstrap = settings.bootstrap_servers
        self.timeout = timeout
        self._errors: list[KafkaError] = []
        self.consumer = reader_consumer(
            settings, **{"enable.partition.eof": True, "error_cb": self._errors.append}
        )

    def __enter__(self) -> TopicReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.consumer.close()

    # --- metadata ---------------------------------------------------------------------------

    def partitions(self, topic: str, *, required: bool = True) -> list[int] | None:
        """The partitions of ``topic``; None when it does not exist and is not required."""
        timeout = min(self.timeout, CONNECT_TIMEOUT_S)
        metadata = first_metadata(self.consumer, self._errors, timeout, topic)
        if metadata is None:
            raise BrokerError(f"no broker answers at {self.bootstrap}")
        found = metadata.topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            if required:
                raise BrokerError(
                    f"topic {topic!r} not found at {self.bootstrap}; "
                    "`scorer topics apply` creates it"
                )
            return None
        return sorted(found.partitions)

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        """The low and high watermark offsets of one partition."""
        try:
            low, high = self.consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=CONNECT_TIMEOUT_S
            )
        except KafkaException as exc:
            raise BrokerError(f"cannot read the offsets of {topic}[{partition}]: {exc}") from exc
        return int(low), int(high)

    def offsets_at(self, topic: str, partitions: Iterable[int], when_ms: int) -> dict[int, int]:
        """Per partition, the first offset whose timestamp is at or after ``when_ms`` (-1:
        none)."""
        wanted = [TopicPartition(topic, p, when_ms) for p in partitions]
        if not wanted:
            return {}
        try:
            found = self.consumer.offsets_for_times(wanted, timeout=CONNECT_TIMEOUT_S)
        except KafkaException as exc:
            raise BrokerError(f"cannot look up offsets by time in {topic!r}: {exc}") from exc
        return {tp.partition: int(tp.offset) for tp in found}

    # --- planning ranges --------------------------------------------------------------------

    def latest_ranges(
        self,
        topic: str,
        count: int | None,
        *,
        since_ms: int | None = None,
        partitions: Iterable[int] | None = None,
    ) -> dict[int, tuple[int, int]]:
        """Per partition: its last ``count`` records (None: all), none older than
        ``since_ms``."""
        chosen = list(self.partitions(topic) or []) if partitions is None else list(partitions)
        starts = {} if since_ms is None else self.offsets_at(topic, chosen, since_ms)
        ranges: dict[int, tuple[int, int]] = {}
        for partition in chosen:
            low, high = self.watermarks(topic, partition)
            start = low if count is None else max(low, high - count)
            if partition in starts:
                start = max(start, high if starts[partition] < 0 else starts[partition])
            ranges[partition] = (start, high)
        return ranges

    def time_ranges(
        self,
        topic: str,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        partitions: Iterable[int] | None = None,
    ) -> dict[int, tuple[int, int]]:
        """Per partition: the records with timestamps in ``[start_ms, end_ms)`` (None: from
        the start, to the current end)."""
        chosen = list(self.partitions(topic) or []) if partitions is None else list(partitions)
        firsts = {} if start_ms is None else self.offsets_at(topic, chosen, start_ms)
        lasts = {} if end_ms is None else self.offsets_at(topic, chosen, end_ms)
        ranges: dict[int, tuple[int, int]] = {}
        for partition in chosen:
            low, high = self.watermarks(topic, partition)
            end = high if lasts.get(partition, -1) < 0 else min(high, lasts[partition])
            start = low if start_ms is None else firsts.get(partition, -1)
            start = end if start < 0 else max(low, start)
            ranges[partition] = (start, max(start, end))
        return ranges

    def offset_ranges(
        self, topic: str, ends: Mapping[int, int | None], *, since_ms: int | None = None
    ) -> dict[int, tuple[int, int]]:
        """Per partition of ``ends``: from its start (or ``since_ms``) to the given end offset
        (None: the current end), clamped to what the partition holds."""
        firsts = {} if since_ms is None else self.offsets_at(topic, ends, since_ms)
        ranges: dict[int, tuple[int, int]] = {}
        for partition, end in ends.items():
            low, high = self.watermarks(topic, partition)
            stop = high if end is None else min(end, high)
            start = low if since_ms is None else firsts.get(partition, -1)
            start = stop if start < 0 else max(low, start)
            ranges[partition] = (start, max(start, stop))
        return ranges

    # --- reading ----------------------------------------------------------------------------

    def records(self, topic: str, ranges: Ranges) -> Iterator[TopicRecord]:
        """Every committed record of ``ranges``, in each partition's order; stop early by
        breaking out. :class:`BrokerError` when nothing new arrives for ``timeout`` s."""
        todo = pending(ranges)
        if not todo:
            return
        self.consumer.assign([TopicPartition(topic, p, ranges[p][0]) for p in todo])
        progressed = time.monotonic()
        try:
            while todo:
                messages = self.consumer.consume(1000, timeout=_SLICE_S)
                for message in messages:
                    partition = int(message.partition() or 0)
                    end = todo.get(partition)
                    if end is None:
                        continue
                    error = message.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            del todo[partition]  # markers can end a partition short of `end`
                        continue
                    offset = int(message.offset() or 0)
                    if offset < end:
                        yield _record(message, partition, offset)
                    if offset >= end - 1:
                        del todo[partition]
                if messages:
                    progressed = time.monotonic()
                for position in self.consumer.position([TopicPartition(topic, p) for p in todo]):
                    if position.offset >= todo.get(position.partition, 1 << 62):
                        del todo[position.partition]
                if todo and time.monotonic() - progressed > self.timeout:
                    left = ", ".join(f"{topic}[{p}] before {e}" for p, e in sorted(todo.items()))
                    raise BrokerError(
                        f"reading stopped: nothing arrived for {self.timeout:g} s ({left})"
                    )
        finally:
            self.consumer.unassign()

    def follow(self, topic: str, starts: Mapping[int, int]) -> Iterator[TopicRecord]:
        """Every committed record from ``starts`` on, as it arrives, without end."""
        self.consumer.assign([TopicPartition(topic, p, o) for p, o in starts.items()])
        try:
            while True:
                for message in self.consumer.consume(500, timeout=_SLICE_S):
                    if message.error() is None:
                        partition, offset = (
                            int(message.partition() or 0),
                            int(message.offset() or 0),
                        )
                        yield _record(message, partition, offset)
        finally:
            self.consumer.unassign()

    def read(self, topic: str, ranges: Ranges) -> list[TopicRecord]:
        """The records of ``ranges`` as a list."""
        return list(self.records(topic, ranges))


def read_latest(
    settings: Settings,
    topic: str,
    count: int | None,
    *,
    since_ms: int | None = None,
    timeout: float = READ_TIMEOUT_S,
) -> list[TopicRecord]:
    """The last ``count`` records of each partition of ``topic`` (None: all, none older than
    ``since_ms``), oldest first by timestamp."""
    with TopicReader(settings, timeout=timeout) as reader:
        records = reader.read(topic, reader.latest_ranges(topic, count, since_ms=since_ms))
    records.sort(key=lambda r: (r.timestamp_ms, r.partition, r.offset))
    return records


def json_objects(records: Iterable[TopicRecord]) -> list[dict[str, Any]]:
    """The values that are JSON objects (every output of the scorer); others are skipped."""
    values = []
    for record in records:
        try:
            value = orjson.loads(record.value or b"")
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict):
            values.append(value)
    return values


def _record(message: Message, partition: int, offset: int) -> TopicRecord:
    headers: Any = message.headers() or ()
    return TopicRecord(
        partition, offset, message.timestamp()[1], message.key(), message.value(), tuple(headers)
    )
