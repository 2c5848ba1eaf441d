"""Reading bounded snapshots of topics: what a report or a replay sees, and nothing newer.

A snapshot is fixed when it starts (each partition up to its high watermark then), so a
reader finishes even while producers keep writing.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from confluent_kafka import Consumer, TopicPartition

from models.registry import Registry
from schemas.errors import BrokerError, ConfigError
from streams.core.decode import decode_events
from streams.report.sections import ReportData
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


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: datetime) -> datetime:
    """A start time from an ISO-8601 timestamp or a duration back from ``now``.

    >>> now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    >>> parse_since("90m", now).isoformat(), parse_since("2024-05-01T10:00:00Z", now).hour
    ('2024-05-01T10:30:00+00:00', 10)
    """
    value = text.strip()
    if value[-1:].lower() in _UNITS and value[:-1].replace(".", "", 1).isdigit():
        return now - timedelta(seconds=float(value[:-1]) * _UNITS[value[-1].lower()])
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(
            f"--since {text!r}: expected an ISO-8601 time or a duration such as 30m, 2h, 1d"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _json_records(records: list[TopicRecord]) -> list[dict[str, Any]]:
    values = []
    for record in records:
        try:
            value = orjson.loads(record.value or b"")
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict):
            values.append(value)
    return values


def collect_report(
    settings: Settings, *, model: str, events: int, since: datetime | None = None
) -> ReportData:
    """Read the registry and the topics into a :class:`ReportData` for ``model``."""
    registry = Registry(settings.registry)
    manifest = registry.manifest(model, registry.resolve(model))
    since_ms = None if since is None else int(since.timestamp() * 1000)
    raw = read_latest(settings, settings.topic_events, events, since_ms)
    decoded = decode_events([r.value for r in raw])
    decisions = [
        d for d in _json_records(read_latest(settings, settings.topic_decisions, events, since_ms))
        if (d.get("model") or {}).get("name") == model
    ]  # fmt: skip
    alerts = [
        a for a in _json_records(read_latest(settings, settings.topic_drift_alerts, None, since_ms))
        if (a.get("model") or {}).get("name") == model
    ]  # fmt: skip
    fairness = [
        f for f in _json_records(
            read_latest(settings, settings.topic_fairness_reports, None, since_ms))
        if (f.get("model") or {}).get("name") == model
    ]  # fmt: skip
    return ReportData(
        model=model,
        version=manifest.version,
        sha256=manifest.artifact.sha256,
        spec=manifest.feature_spec,
        reference=manifest.reference,
        features=[event["features"] for event in decoded.events],
        events_read=len(raw),
        events_undecodable=len(decoded.rejects),
        scores=[float(d["score"]) for d in decisions if isinstance(d.get("score"), float | int)],
        decisions=Counter(str(d.get("decision")) for d in decisions),
        alerts=alerts,
        fairness=fairness,
        generated_at=datetime.now(UTC),
        since=since,
        topics={
            "events": settings.topic_events,
            "decisions": settings.topic_decisions,
            "alerts": settings.topic_drift_alerts,
            "fairness": settings.topic_fairness_reports,
        },
    )
