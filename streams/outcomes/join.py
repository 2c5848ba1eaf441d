"""The outcome join: labels joined to the decisions they judge, by event_id, once.

A stream-stream join in event time, as Kafka Streams builds one. Both sides reach a join
partition by their event_id (:func:`partition_for`), and either may come first:

- a decision is held (score, decision, context, model, times) for ``retention_s`` of event
  time; a label already waiting for it joins it at once;
- a label whose decision is held joins it, unless that decision has a label already
  (``DUPLICATE_LABEL``) or the label came more than ``retention_s`` after the event
  (``LABEL_TOO_LATE``);
- a label whose decision is not held waits for it. It becomes ``LABEL_UNKNOWN_EVENT`` only
  once the decisions have been read past the label's time plus ``wait_s`` on every
  partition of the decisions topic.

How far the decisions have been read comes from the instances routing them: with each
transaction, the router of decisions partition *s* tells every join partition the newest
event time it has routed from *s*, and whether it has read *s* to its end (:meth:`mark`).
The decisions' clock (:meth:`decisions_read_to`) is the oldest of those marks over the
partitions still being read, or, when every partition has been read to its end, the newest
event time marked or held (an idle partition holds nothing back). A partition read to a
later time than the others (one router ahead of another, a backlog read unevenly) therefore
cannot make a label unknown before its decision was read. Retention counts from the newest
event time held.

Each joined label makes one outcome record (:func:`outcome_record`); each rejected label a
dead letter with the feedback record's own bytes and coordinates, kept while it waited.

>>> import tempfile, pathlib
>>> store = PartitionStore(pathlib.Path(tempfile.mkdtemp()) / "0")
>>> join = OutcomeJoin(store, retention_s=3600, wait_s=60, sources=1)
>>> def label(event_id, at):
...     return {"event_id": event_id, "label": 1, "label_time": "-", "t": at, "source": {}}
>>> join.label(label("e1", 1000.0))  # before its decision: it waits
([], [])
>>> [o["event_id"] for o in join.decision(snapshot("e1", 990.0))]
['e1']
>>> _, rejects = join.label(label("e1", 1001.0))
>>> [r.reason.value for r in rejects]
['DUPLICATE_LABEL']
>>> join.label(label("e9", 1002.0))
([], [])
>>> join.decision(snapshot("e2", 1063.0))
[]
>>> join.mark(0, 1063.0, read_to_end=False)  # decisions partition 0 is read past 1002 + 60 s
>>> [(r.label["event_id"], r.reason.value) for r in join.expire()]
[('e9', 'LABEL_UNKNOWN_EVENT')]
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from schemas.contracts import SCHEMA_VERSION, RejectReason
from streams.outcomes.join_store import DECISION, LABEL, PartitionStore


def partition_for(event_id: str, partitions: int) -> int:
    """The join partition of an event: CRC-32 of its id, so every instance agrees.

    >>> partition_for("e1", 6), partition_for("e1", 6) == partition_for("e1", 6)
    (5, True)
    """
    return zlib.crc32(event_id.encode()) % partitions


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def snapshot(event_id: str, event_time: float, **fields: Any) -> dict[str, Any]:
    """A decision snapshot as the join holds it (the doctests' and tests' shorthand)."""
    return {
        "event_id": event_id,
        "entity_id": fields.get("entity_id", event_id),
        "model": fields.get("model", {"name": "m", "version": 1, "sha256": "0" * 64}),
        "score": fields.get("score", 0.5),
        "decision": fields.get("decision", "approve"),
        "context": fields.get("context", {}),
        "input_hash": fields.get("input_hash", "0" * 64),
        "event_time": datetime.fromtimestamp(event_time, UTC).isoformat(),
        "t": event_time,
    }


@dataclass(frozen=True, slots=True)
class LabelReject:
    """A label the join refused: the routed label (with its source record) and why."""

    label: dict[str, Any]
    reason: RejectReason
    detail: str


class OutcomeJoin:
    """The join over one partition's :class:`PartitionStore` (see the module doc)."""

    def __init__(
        self, store: PartitionStore, retention_s: float, wait_s: float, sources: int
    ) -> None:
        self.store, self.retention_s, self.wait_s = store, retention_s, wait_s
        self.sources = sources
        self.marks: dict[int, tuple[float | None, bool]] = {}
        """Per decisions partition: the newest event time routed from it, and whether its
        router has read it to its end (not kept in the store: the routers send them again)."""

    def mark(self, source: int, newest: float | None, read_to_end: bool) -> None:
        """How far decisions partition ``source`` has been read (see the module doc). The
        newest time known for it never goes back: a router that just took the partition
        over knows only what it routed itself."""
        known = self.marks.get(source, (None, False))[0]
        if newest is None or (known is not None and known > newest):
            newest = known
        self.marks[source] = (newest, read_to_end)

    def decisions_read_to(self) -> float:
        """The event time the decisions have been read past on every partition."""
        if len(self.marks) < self.sources:
            return float("-inf")  # a partition not heard of yet holds everything back
        reading = [t for t, done in self.marks.values() if not done]
        if reading:
            return float("-inf") if None in reading else min(t for t in reading if t is not None)
        # every decision there is was routed: the newest one held or marked is the clock
        read = [t for t, _ in self.marks.values() if t is not None]
        return max([*read, self.store.stream_time])

    def decision(self, held: dict[str, Any]) -> list[dict[str, Any]]:
        """Hold a decision snapshot; the outcome of a label that waited for it, if one did.
        Call :meth:`expire` after a batch: the stream time may have moved."""
        store, event_id = self.store, held["event_id"]
        key = DECISION + event_id.encode()
        outcomes: list[dict[str, Any]] = []
        if store.get(key) is None:  # a re-scored duplicate keeps its first snapshot
            waiting = store.label(event_id)
            labelled = waiting is not None
            if waiting is not None:
                store.put(LABEL + event_id.encode(), None)
                outcomes.append(outcome_record(held, waiting))
            store.put(key, orjson.dumps({**held, "labelled": labelled}))
        return outcomes

    def label(self, label: dict[str, Any]) -> tuple[list[dict[str, Any]], list[LabelReject]]:
        """Join a routed label, or keep it waiting; its outcome or its rejection."""
        store, event_id = self.store, label["event_id"]
        held = store.decision(event_id)
        if held is None:
            if store.get(LABEL + event_id.encode()) is not None:
                return [], [self._reject(label, RejectReason.DUPLICATE_LABEL)]
            if self.decisions_read_to() > label["t"] + self.wait_s:
                return [], [self._reject(label, RejectReason.LABEL_UNKNOWN_EVENT)]
            deadline = label["t"] + self.wait_s
            store.put(LABEL + event_id.encode(), orjson.dumps({**label, "deadline": deadline}))
            return [], []
        if held["labelled"]:
            return [], [self._reject(label, RejectReason.DUPLICATE_LABEL)]
        if label["t"] - held["t"] > self.retention_s:
            return [], [self._reject(label, RejectReason.LABEL_TOO_LATE, held)]
        store.put(DECISION + event_id.encode(), orjson.dumps({**held, "labelled": True}))
        return [outcome_record(held, label)], []

    def expire(self) -> list[LabelReject]:
        """Labels whose wait the decisions were read past become unknown; decisions past the
        retention are forgotten."""
        store, read_to = self.store, self.decisions_read_to()
        rejects = []
        for event_id in store.older_than(b"w", read_to):
            waiting = store.label(event_id.decode())
            if waiting is not None and waiting["deadline"] < read_to:
                store.put(LABEL + event_id, None)
                rejects.append(self._reject(waiting, RejectReason.LABEL_UNKNOWN_EVENT))
        for event_id in store.older_than(b"t", store.stream_time - self.retention_s):
            store.put(DECISION + event_id, None)
        return rejects

    def _reject(
        self, label: dict[str, Any], reason: RejectReason, held: dict[str, Any] | None = None
    ) -> LabelReject:
        event_id = label["event_id"]
        if reason is RejectReason.DUPLICATE_LABEL:
            detail = f"event {event_id!r} already has a label; applied once"
        elif reason is RejectReason.LABEL_TOO_LATE and held is not None:
            detail = (
                f"label for {event_id!r} arrived {label['t'] - held['t']:.0f}s after the "
                f"event; the retention is {self.retention_s:.0f}s"
            )
        else:
            detail = (
                f"no decision for event {event_id!r} was read within {self.wait_s:.0f}s of "
                f"event time after the label's time (the event is unknown, or older than the "
                f"{self.retention_s:.0f}s retention)"
            )
        return LabelReject(label, reason, detail)


def outcome_record(held: dict[str, Any], label: dict[str, Any]) -> dict[str, Any]:
    """The joined outcome (contract ``Outcome``): what the monitors and the learner need."""
    return {
        "schema_version": SCHEMA_VERSION,
        "event_id": held["event_id"],
        "entity_id": held["entity_id"],
        "model": held["model"],
        "score": held["score"],
        "decision": held["decision"],
        "label": label["label"],
        "context": held["context"],
        "input_hash": held["input_hash"],
        "event_time": held["event_time"],
        "label_time": label["label_time"],
    }


# --- the join's inputs: decisions and feedback records, as routed to a join partition ---------


def parse_feedback(
    values: Sequence[bytes | None],
) -> tuple[list[tuple[int, dict[str, Any]]], list[tuple[int, RejectReason, str]]]:
    """Validate Feedback records; invalid ones become (index, reason, detail) rejects."""
    from pydantic import ValidationError

    from schemas.contracts import Feedback, reject_reason_for, validation_detail

    accepted: list[tuple[int, dict[str, Any]]] = []
    rejects: list[tuple[int, RejectReason, str]] = []
    for index, value in enumerate(values):
        if value is None:
            rejects.append((index, RejectReason.SCHEMA_VIOLATION, "record has no value"))
            continue
        try:
            feedback = Feedback.model_validate_json(value)
        except ValidationError as exc:
            rejects.append((index, reject_reason_for(exc), validation_detail(exc)))
            continue
        accepted.append(
            (
                index,
                {
                    "event_id": feedback.event_id,
                    "label": feedback.label,
                    "label_time": feedback.label_time.isoformat(),
                    "t": feedback.label_time.timestamp(),
                },
            )
        )
    return accepted, rejects


def parse_decisions(
    values: Sequence[bytes | None],
) -> tuple[list[tuple[int, dict[str, Any]]], int]:
    """The decision snapshots the join can hold, by index, and how many were unusable.

    The scorer writes every decision, so an unusable one (not JSON, or missing what the join
    keeps) is a record some other producer put on the topic: it is skipped and counted, never
    allowed to stop the process reading it.

    >>> good = b'{"event_id": "e1", "entity_id": "a", "score": 0.2, "decision": "approve", '
    >>> good += b'"input_hash": "h", "event_time": "2024-05-01T00:00:00Z", '
    >>> good += b'"model": {"name": "m", "version": 1, "sha256": "s"}}'
    >>> rows, skipped = parse_decisions([good, b"{not json", None, b'{"event_id": "e2"}'])
    >>> [(i, r["event_id"], r["t"]) for i, r in rows], skipped
    ([(0, 'e1', 1714521600.0)], 3)
    """
    rows: list[tuple[int, dict[str, Any]]] = []
    skipped = 0
    for index, value in enumerate(values):
        try:
            row = orjson.loads(value or b"null")
            model = row["model"]
            usable = (
                isinstance(row["event_id"], str)
                and isinstance(row["entity_id"], str)
                and isinstance(row["score"], int | float)
                and isinstance(row["decision"], str)
                and isinstance(row["input_hash"], str)
                and isinstance(model["name"], str)
                and isinstance(model["version"], int)
                and isinstance(model["sha256"], str)
            )
            when = epoch(row["event_time"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            usable = False
        if not usable:
            skipped += 1
            continue
        rows.append(
            (
                index,
                {
                    "event_id": row["event_id"],
                    "entity_id": row["entity_id"],
                    "model": {k: model[k] for k in ("name", "version", "sha256")},
                    "score": float(row["score"]),
                    "decision": row["decision"],
                    "context": row.get("context") or {},
                    "input_hash": row["input_hash"],
                    "event_time": row["event_time"],
                    "t": when,
                },
            )
        )
    return rows, skipped
