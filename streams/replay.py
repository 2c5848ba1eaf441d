"""Replaying recorded traffic: read what production saw and decided, score it with a candidate.

:func:`read_recorded` reads a range of the events topic, then the champion's decisions for
those events from the decisions topic (joined by event_id; shadow decisions are ignored,
the last of duplicates wins) and their outcome labels from the feedback topic where present
(the first label of an event wins). Its consumer never joins a group and never commits: it
assigns partitions and reads offset ranges, so replaying leaves every live consumer group
untouched.

:func:`replay` scores the recorded events with the candidate through the scoring core in
batches, as ``scorer serve`` does, and :func:`replay_report` returns the whole comparison as
a JSON-ready dict (see :mod:`models.replay` for its sections).

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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from models.replay import ReplayPairs, compare
from models.scoring_model import ScoringModel
from schemas.errors import BrokerError, ConfigError
from streams.core.decode import decode_events
from streams.core.scoring import score_batch
from streams.settings import Settings

Position = datetime | dict[int, int]
REPORT_VERSION: Final = 1
DECISION_LOOKBACK: Final = timedelta(minutes=10)
"""Decisions are read from this long before the first replayed event (producer clock skew)."""
_SLICE_S: Final = 0.5
_UNREACHABLE: Final = frozenset(
    {KafkaError._ALL_BROKERS_DOWN, KafkaError._AUTHENTICATION, KafkaError._RESOLVE, KafkaError._SSL}
)


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


class _RangeReader:
    """A consumer that assigns partitions and reads offset ranges; it never joins a group."""

    def __init__(self, settings: Settings, timeout: float) -> None:
        self.bootstrap = settings.bootstrap_servers
        self.deadline = time.monotonic() + timeout
        self.errors: list[KafkaError] = []
        self.consumer = Consumer(
            settings.kafka_config(
                **{
                    "group.id": "scorer-replay",
                    "isolation.level": "read_committed",
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "log_level": 0,
                    "error_cb": self.errors.append,
                }
            )
        )

    def close(self) -> None:
        self.consumer.close()

    def partitions(self, topic: str, required: bool = True) -> list[int] | None:
        """The partitions of ``topic``; None when it does not exist and is not required."""
        while True:
            try:
                metadata = self.consumer.list_topics(topic, timeout=_SLICE_S)
            except KafkaException as exc:
                self.consumer.poll(0)
                if any(e.code() in _UNREACHABLE for e in self.errors) or self._late():
                    detail = next((e.str() for e in self.errors), str(exc))
                    raise BrokerError(
                        f"broker not reachable at {self.bootstrap}: {detail}"
                    ) from exc
                continue
            found = metadata.topics.get(topic)
            if found is None or found.error is not None:
                if required:
                    raise BrokerError(f"topic {topic!r} not found at {self.bootstrap}")
                return None
            return sorted(found.partitions)

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        try:
            low, high = self.consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=10
            )
        except KafkaException as exc:
            raise BrokerError(f"cannot read offsets of {topic}[{partition}]: {exc}") from exc
        return int(low), int(high)

    def offsets_at(self, topic: str, partitions: Iterable[int], when: datetime) -> dict[int, int]:
        """Per partition, the first offset at or after ``when`` (-1: none)."""
        ms = int(when.timestamp() * 1000)
        wanted = [TopicPartition(topic, p, ms) for p in partitions]
        try:
            found = self.consumer.offsets_for_times(wanted, timeout=10)
        except KafkaException as exc:
            raise BrokerError(f"cannot look up offsets by time in {topic}: {exc}") from exc
        return {tp.partition: int(tp.offset) for tp in found}

    def read(
        self,
        topic: str,
        ranges: dict[int, tuple[int, int]],
        handle: Callable[[Message], bool],
    ) -> None:
        """Call ``handle`` on each record of ``ranges`` until done or it returns False."""
        todo = {p: (s, e) for p, (s, e) in ranges.items() if s < e}
        if not todo:
            return
        self.consumer.assign([TopicPartition(topic, p, s) for p, (s, _) in todo.items()])
        try:
            while todo:
                if self._late():
                    left = ", ".join(f"{topic}[{p}] before {e}" for p, (_, e) in todo.items())
                    raise BrokerError(f"timed out reading recorded traffic: {left}")
                for message in self.consumer.consume(1000, timeout=_SLICE_S):
                    if message.error() is not None:
                        continue
                    partition, offset = int(message.partition() or 0), int(message.offset() or 0)
                    if partition in todo and offset < todo[partition][1] and not handle(message):
                        return
                # positions pass control records (transaction markers) that are never delivered
                positions = self.consumer.position([TopicPartition(topic, p) for p in todo])
                for tp in positions:
                    if tp.offset >= todo[tp.partition][1]:
                        del todo[tp.partition]
        finally:
            self.consumer.unassign()

    def _late(self) -> bool:
        return time.monotonic() > self.deadline


def _event_ranges(
    reader: _RangeReader,
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
        found = reader.offsets_at(topic, partitions, end)
        ends = {p: ends[p] if found[p] < 0 else min(ends[p], found[p]) for p in partitions}
    if start is None:  # the most recent max_events of each partition; trimmed after reading
        starts = {p: max(marks[p][0], ends[p] - max_events) for p in partitions}
    elif isinstance(start, dict):
        unknown = sorted(set(start) - set(partitions))
        if unknown:
            raise ConfigError(f"topic {topic!r} has no partition(s) {unknown}")
        starts = {p: max(marks[p][0], start.get(p, marks[p][0])) for p in partitions}
    else:
        found = reader.offsets_at(topic, partitions, start)
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
    reader = _RangeReader(settings, timeout)
    try:
        topic = settings.topic_events
        partitions = reader.partitions(topic) or []
        ranges = _event_ranges(reader, topic, partitions, start, end, max_events)
        traffic = RecordedTraffic(topic, ranges)
        raw: list[tuple[int, bytes | None]] = []

        def keep_event(message: Message) -> bool:
            raw.append((int(message.timestamp()[1]), message.value()))
            return start is None or len(raw) < max_events

        reader.read(topic, ranges, keep_event)
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
    finally:
        reader.close()


def _since_ranges(
    reader: _RangeReader, topic: str, partitions: list[int], since: datetime
) -> dict[int, tuple[int, int]]:
    found = reader.offsets_at(topic, partitions, since - DECISION_LOOKBACK)
    ranges = {}
    for p in partitions:
        high = reader.watermarks(topic, p)[1]
        ranges[p] = (high if found[p] < 0 else found[p], high)
    return ranges


def _read_joined(
    reader: _RangeReader,
    topic: str,
    since: datetime,
    traffic: RecordedTraffic,
    keep: Callable[[Message], bool],
) -> None:
    """Read ``topic`` from shortly before ``since`` to its end, when it exists."""
    partitions = reader.partitions(topic, required=False)
    if partitions is None:
        traffic.notes.append(f"topic {topic!r} does not exist; nothing joined from it")
        return
    reader.read(topic, _since_ranges(reader, topic, partitions, since), keep)


def _read_decisions(
    reader: _RangeReader, topic: str, since: datetime, wanted: set[str], traffic: RecordedTraffic
) -> None:
    def keep(message: Message) -> bool:
        event_id = dict(message.headers() or []).get("event_id")
        if isinstance(event_id, bytes) and event_id.decode(errors="replace") not in wanted:
            return True  # the lineage header spares parsing other events' decisions
        decision = _json(message)
        if decision.get("event_id") in wanted and not decision.get("shadow", False):
            traffic.decisions[decision["event_id"]] = decision
        return True

    _read_joined(reader, topic, since, traffic, keep)


def _read_labels(
    reader: _RangeReader, topic: str, since: datetime, wanted: set[str], traffic: RecordedTraffic
) -> None:
    def keep(message: Message) -> bool:
        feedback = _json(message)
        event_id, label = feedback.get("event_id"), feedback.get("label")
        if event_id in wanted and type(label) is int and label in (0, 1):
            traffic.labels.setdefault(event_id, label)
        return True

    _read_joined(reader, topic, since, traffic, keep)


def _json(message: Message) -> dict[str, Any]:
    """The record's JSON object value; empty when it is not one."""
    try:
        value = orjson.loads(message.value() or b"{}")
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


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
