"""What the report shows, read from the registry and bounded snapshots of the topics
(:mod:`streams.kafka.reader`): nothing newer than the moment the report started."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from models.registry import Registry
from schemas.errors import ConfigError
from streams.core.decode import decode_events
from streams.kafka.reader import TopicRecord, json_objects, read_latest
from streams.report.sections import ReportData
from streams.settings import Settings


def latest(
    settings: Settings, topic: str, count: int | None, since_ms: int | None
) -> list[TopicRecord]:
    """The newest ``count`` records of ``topic`` (None: all) by timestamp, oldest first."""
    records = read_latest(settings, topic, count, since_ms=since_ms)
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


def collect_report(
    settings: Settings, *, model: str, events: int, since: datetime | None = None
) -> ReportData:
    """Read the registry and the topics into a :class:`ReportData` for ``model``."""
    registry = Registry(settings.registry)
    manifest = registry.manifest(model, registry.resolve(model))
    since_ms = None if since is None else int(since.timestamp() * 1000)
    raw = latest(settings, settings.topic_events, events, since_ms)
    decoded = decode_events([r.value for r in raw])
    decisions = [
        d for d in json_objects(latest(settings, settings.topic_decisions, events, since_ms))
        if (d.get("model") or {}).get("name") == model
    ]  # fmt: skip
    alerts = [
        a for a in json_objects(latest(settings, settings.topic_drift_alerts, None, since_ms))
        if (a.get("model") or {}).get("name") == model
    ]  # fmt: skip
    fairness = [
        f for f in json_objects(
            latest(settings, settings.topic_fairness_reports, None, since_ms))
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
