"""Replaying recorded traffic: read what production saw and decided, score it with a candidate.

:func:`read_recorded` reads a range of the events topic, then the champion's decisions for
those events from the decisions topic (joined by event_id; shadow decisions are ignored,
the last of duplicates wins) and their outcome labels from the feedback topic where present
(the first label of an event wins). Its consumer never joins a group and never commits: it
assigns partitions and reads offset ranges, so replaying leaves every live consumer group
untouched.

:func:`replay` scores the recorded events with the candidate through the scoring core in
batches, as ``scorer serve`` does, and :func:`replay_report` returns the whole comparison as
a JSON-ready dict (see :mod:`streams.release.compare` for its sections).

Positions (``--from`` / ``--to``) are a time (ISO 8601; a naive time is UTC) or explicit
offsets ``PARTITION:OFFSET,...``:

>>> parse_position("0:120,2:7")
{0: 120, 2: 7}
>>> parse_position("2024-05-01T12:00:00Z").isoformat()
'2024-05-01T12:00:00+00:00'
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
import orjson

from models.scoring_model import ScoringModel
from schemas.errors import ConfigError
from streams.core.decode import decode_events
from streams.core.scoring import score_batch
from streams.kafka.reader import TopicReader, TopicRecord
from streams.release.compare import ReplayPairs, compare
from streams.settings import Settings

Position = datetime | dict[int, int]
REPORT_VERSION: Final = 1
DECISION_LOOKBACK: Final = timedelta(minutes=10)
"""Decisions are read from this long before the first replayed event (producer clock skew)."""


def parse_position(text: str) -> Position:
    """A time or ``PARTITION:OFFSET,...`` (see module doc); ConfigError when neither."""
    value = text.strip()
    if ":" in value and all(part.strip().count(":") == 1 for part in value.split(",")):
        try:
            pairs = [part.split(":") for part in value.split(",")]
            offsets = {int(p): int(o) for p, o in pairs}
        except ValueError:
            offsets = {}
        if offsets:
            if any(p < 0 or o < 0 for p, o in offsets.items()):
                raise ConfigError(f"position {text!r}: partitions and offsets must be >= 0")
            return offsets
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"position {text!r} is neither a time (e.g. 2024-05-01T12:00:00Z) nor "
            "PARTITION:OFFSET,... (e.g. 0:100,1:250)"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@dataclass
class RecordedTraffic:
    """Events read from the events topic, with the champion's decisions and the labels."""

    events_topic: str
    ranges: dict[int, tuple[int, int]]
    """Per partition, the offsets ``[start, end)`` read."""
    records: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    timestamps_ms: list[int] = field(default_factory=list)
    undecodable: int = 0
    decisions: dict[str, dict[str, Any]] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _event_ranges(
    reader: TopicReader,
    topic: str,
    partitions: list[int],
    start: Position | None,
    end: Position | None,
    max_events: int,
) -> dict[int, tuple[int, int]]:
    marks = {p: reader.watermarks(topic, p) for p in partitions}
    ends = {p: high for p, (_, high) in marks.items()}
    if isinstance(end, dict):
        ends = {p: min(ends[p], end.get(p, ends[p])) for p in partitions}
    elif isinstance(end, datetime):
        found = reader.offsets_at(topic, partitions, _ms(end))
        ends = {p: ends[p] if found[p] < 0 else min(ends[p], found[p]) for p in partitions}
    if start is None:  # the most recent max_events of each partition; trimmed after reading
        starts = {p: max(marks[p][0], ends[p] - max_events) for p in partitions}
    elif isinstance(start, dict):
        unknown = sorted(set(start) - set(partitions))
        if unknown:
            raise ConfigError(f"topic {topic!r} has no partition(s) {unknown}")
        starts = {p: max(marks[p][0], start.get(p, marks[p][0])) for p in partitions}
    else:
        found = reader.offsets_at(topic, partitions, _ms(start))
        starts = {p: ends[p] if found[p] < 0 else max(marks[p][0], found[p]) for p in partitions}
    return {p: (starts[p], max(starts[p], ends[p])) for p in partitions}


def read_recorded(
    settings: Settings,
    *,
    start: Position | None = None,
    end: Position | None = None,
    max_events: int = 50_000,
    timeout: float = 120.0,
) -> RecordedTraffic:
    """Read recorded events with the champion's decisions and labels (see module doc).

    Without ``start`` the most recent ``max_events`` events are read; with it, at most
    ``max_events`` from it on. ``end`` defaults to the end of each partition now.
    """
    if max_events < 1:
        raise ConfigError(f"max_events must be at least 1, got {max_events}")
    with TopicReader(settings, timeout=timeout) as reader:
        topic = settings.topic_events
        partitions = reader.partitions(topic) or []
        ranges = _event_ranges(reader, topic, partitions, start, end, max_events)
        traffic = RecordedTraffic(topic, ranges)
        raw: list[tuple[int, bytes | None]] = []
        for record in reader.records(topic, ranges):
            raw.append((record.timestamp_ms, record.value))
            if start is not None and len(raw) >= max_events:
                break
        if start is None and len(raw) > max_events:
            raw = sorted(raw, key=lambda item: item[0])[-max_events:]
        traffic.records = len(raw)
        decoded = decode_events([value for _, value in raw])
        traffic.undecodable = len(decoded.rejects)
        traffic.events = decoded.events
        traffic.timestamps_ms = [raw[i][0] for i in decoded.rows]
        if traffic.events:
            since = datetime.fromtimestamp(min(traffic.timestamps_ms) / 1000, UTC)
            wanted = {event["event_id"] for event in traffic.events}
            _read_decisions(reader, settings.topic_decisions, since, wanted, traffic)
            _read_labels(reader, settings.topic_feedback, since, wanted, traffic)
        return traffic


def _joined(
    reader: TopicReader, topic: str, since: datetime, traffic: RecordedTraffic
) -> Iterator[TopicRecord]:
    """The records of ``topic`` from shortly before ``since`` to its end, when it exists."""
    partitions = reader.partitions(topic, required=False)
    if partitions is None:
        traffic.notes.append(f"topic {topic!r} does not exist; nothing joined from it")
        return iter(())
    ranges = reader.time_ranges(
        topic, start_ms=_ms(since - DECISION_LOOKBACK), partitions=partitions
    )
    return reader.records(topic, ranges)


def _read_decisions(
    reader: TopicReader, topic: str, since: datetime, wanted: set[str], traffic: RecordedTraffic
) -> None:
    for record in _joined(reader, topic, since, traffic):
        event_id = record.header("event_id")
        if event_id is not None and event_id.decode(errors="replace") not in wanted:
            continue  # the lineage header spares parsing other events' decisions
        decision = _json(record.value)
        if decision.get("event_id") in wanted and not decision.get("shadow", False):
            traffic.decisions[decision["event_id"]] = decision


def _read_labels(
    reader: TopicReader, topic: str, since: datetime, wanted: set[str], traffic: RecordedTraffic
) -> None:
    for record in _joined(reader, topic, since, traffic):
        feedback = _json(record.value)
        event_id, label = feedback.get("event_id"), feedback.get("label")
        if event_id in wanted and type(label) is int and label in (0, 1):
            traffic.labels.setdefault(event_id, label)


def _json(value: bytes | None) -> dict[str, Any]:
    """The record's JSON object value; empty when it is not one."""
    try:
        parsed = orjson.loads(value or b"{}")
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


# --- scoring and the report -----------------------------------------------------------------


@dataclass
class Replayed:
    """The candidate's decisions of recorded events, by event_id, and what it rejected."""

    decisions: dict[str, dict[str, Any]] = field(default_factory=dict)
    rejects: dict[str, tuple[str, str]] = field(default_factory=dict)
    """event_id -> (reason, detail)."""
    additivity_errors: list[float] = field(default_factory=list)
    duplicates: int = 0


def replay(model: ScoringModel, events: list[dict[str, Any]], *, batch_size: int) -> Replayed:
    """Score ``events`` with ``model`` in batches through the scoring core; first of duplicates."""
    out = Replayed()
    seen: set[str] = set()
    unique = []
    for event in events:
        if event["event_id"] in seen:
            out.duplicates += 1
            continue
        seen.add(event["event_id"])
        unique.append(event)
    for begin in range(0, len(unique), max(1, batch_size)):
        chunk = unique[begin : begin + batch_size]
        scored = score_batch(model, chunk, received_at=time.time())
        for decision in scored.decisions:
            out.decisions[decision["event_id"]] = decision
        out.additivity_errors.extend(e["additivity_error"] for e in scored.explanations)
        for reject in scored.rejects:
            out.rejects[chunk[reject.index]["event_id"]] = (reject.reason.value, reject.detail)
    return out


def _codes(decision: dict[str, Any]) -> list[str]:
    return [code["code"] for code in decision.get("reason_codes", [])]


def build_report(
    model: ScoringModel,
    traffic: RecordedTraffic,
    replayed: Replayed,
    *,
    min_group_count: int,
) -> dict[str, Any]:
    """The replay report as a JSON-ready dict: source, event counts, then every comparison."""
    seen: set[str] = set()
    decided = []
    for event in traffic.events:
        event_id = event["event_id"]
        if event_id in traffic.decisions and event_id not in seen:
            seen.add(event_id)
            decided.append(event)
    unique_events = len({e["event_id"] for e in traffic.events})
    pairs_events = [e for e in decided if e["event_id"] in replayed.decisions]
    champion = [traffic.decisions[e["event_id"]] for e in pairs_events]
    candidate = [replayed.decisions[e["event_id"]] for e in pairs_events]
    pairs = ReplayPairs(
        event_ids=[e["event_id"] for e in pairs_events],
        champion_decisions=[d["decision"] for d in champion],
        candidate_decisions=[d["decision"] for d in candidate],
        champion_scores=np.array([d["score"] for d in champion], dtype=np.float64),
        candidate_scores=np.array([d["score"] for d in candidate], dtype=np.float64),
        champion_reasons=[_codes(d) for d in champion],
        candidate_reasons=[_codes(d) for d in candidate],
        context=[e.get("context") or {} for e in pairs_events],
        labels=np.array(
            [traffic.labels.get(e["event_id"], np.nan) for e in pairs_events], dtype=np.float64
        ),
    )
    reasons = Counter(reason for reason, _ in replayed.rejects.values())
    example = next(iter(replayed.rejects.items()), None)
    versions = Counter(f"{d['model']['name']} v{d['model']['version']}" for d in champion)
    times = traffic.timestamps_ms
    return {
        "report_version": REPORT_VERSION,
        "generated_at": datetime.now(UTC).isoformat(),
        "candidate": model.ref,
        "champion_versions": dict(versions.most_common()),
        "source": {
            "events_topic": traffic.events_topic,
            "partitions": {str(p): list(r) for p, r in sorted(traffic.ranges.items())},
            "first_record_time": _iso(min(times)) if times else None,
            "last_record_time": _iso(max(times)) if times else None,
            "notes": traffic.notes,
        },
        "events": {
            "records": traffic.records,
            "undecodable": traffic.undecodable,
            "duplicates": replayed.duplicates,
            "scored_by_candidate": len(replayed.decisions),
            "rejected_by_candidate": len(replayed.rejects),
            "candidate_reject_reasons": dict(reasons.most_common()),
            "candidate_reject_example": f"{example[0]}: {example[1][1]}" if example else None,
            "with_champion_decision": len(decided),
            "rejected_by_candidate_decided": sum(
                1 for e in decided if e["event_id"] in replayed.rejects
            ),
            "without_champion_decision": unique_events - len(decided),
            "labelled": int(np.count_nonzero(~np.isnan(np.asarray(pairs.labels)))),
        },
        **compare(pairs, min_group_count=min_group_count),
    }


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def replay_report(
    settings: Settings,
    model: ScoringModel,
    *,
    start: Position | None = None,
    end: Position | None = None,
    max_events: int = 50_000,
    min_group_count: int = 30,
    timeout: float = 120.0,
) -> tuple[dict[str, Any], np.ndarray]:
    """Read, replay and compare: the report and the additivity errors of its explanations."""
    traffic = read_recorded(settings, start=start, end=end, max_events=max_events, timeout=timeout)
    replayed = replay(model, traffic.events, batch_size=settings.max_batch)
    report = build_report(model, traffic, replayed, min_group_count=min_group_count)
    return report, np.asarray(replayed.additivity_errors, dtype=np.float64)
