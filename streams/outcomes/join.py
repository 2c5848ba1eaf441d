"""Joining late labels to the decisions they judge.

Upstream publishes ``Feedback(event_id, label, label_time)`` once an outcome is known. The
joiner remembers, for every decision read from the decisions topic, what the monitors need
(score, decision, context, event time, model), for ``retention_s`` of event time. A label
joins its decision once: a second label for the same event is a ``DUPLICATE_LABEL``; a label for an
event older than the retention is ``LABEL_TOO_LATE``; a label for an event the joiner has
no decision for is ``LABEL_UNKNOWN_EVENT``. Rejected labels go to the dead-letter topic like
any other invalid input. Memory is bounded by the retention and by ``max_entries``.

>>> joiner = FeedbackJoiner(retention_s=3600)
>>> joiner.remember(["e1"], [0.9], ["decline"], [{"age_band": "60+"}], [1000.0])
>>> labels = [(0, "e1", 1, 1500.0), (1, "e1", 1, 1600.0), (2, "e9", 0, 1600.0)]
>>> joined, rejects = joiner.join(labels)
>>> [(j.index, j.score, j.label) for j in joined]
[(0, 0.9, 1)]
>>> [(r[0], r[1].value) for r in rejects]
[(1, 'DUPLICATE_LABEL'), (2, 'LABEL_UNKNOWN_EVENT')]
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from schemas.contracts import RejectReason


@dataclass(frozen=True, slots=True)
class Joined:
    """One label joined to its decision; ``index`` is the feedback record's batch index."""

    index: int
    score: float
    decision: str
    label: int
    label_time: float
    context: dict[str, str]
    model: tuple[str, int] | None = None


@dataclass(slots=True)
class _Snapshot:
    score: float
    decision: str
    context: dict[str, str]
    event_time: float
    model: tuple[str, int] | None = None
    labelled: bool = False


class FeedbackJoiner:
    """Decisions by event_id within a retention window, and labels joined to them once."""

    def __init__(self, retention_s: float, max_entries: int = 2_000_000) -> None:
        self.retention_s = retention_s
        self.max_entries = max_entries
        self._snapshots: OrderedDict[str, _Snapshot] = OrderedDict()
        self._newest = float("-inf")

    def __len__(self) -> int:
        return len(self._snapshots)

    def remember(
        self,
        event_ids: Sequence[str],
        scores: Sequence[float],
        decisions: Sequence[str],
        contexts: Sequence[dict[str, str]],
        event_times: Sequence[float],
        models: Sequence[tuple[str, int] | None] | None = None,
    ) -> None:
        """Keep what the monitors need of each decision; forget what left the retention.

        ``models`` names the (name, version) that made each decision, so that its label
        feeds that version's monitors.
        """
        store = self._snapshots
        for event_id, score, decision, context, when, model in zip(
            event_ids,
            scores,
            decisions,
            contexts,
            event_times,
            models or [None] * len(event_ids),
            strict=True,
        ):
            if event_id not in store:  # a re-scored duplicate keeps its first snapshot
                store[event_id] = _Snapshot(score, decision, context, when, model)
            if when > self._newest:
                self._newest = when
        horizon = self._newest - self.retention_s
        while store and (
            len(store) > self.max_entries or next(iter(store.values())).event_time < horizon
        ):
            store.popitem(last=False)

    def join(
        self, labels: Sequence[tuple[int, str, int, float]]
    ) -> tuple[list[Joined], list[tuple[int, RejectReason, str]]]:
        """Join ``(index, event_id, label, label_time)``; rejects carry a reason and detail."""
        joined: list[Joined] = []
        rejects: list[tuple[int, RejectReason, str]] = []
        for index, event_id, label, label_time in labels:
            snapshot = self._snapshots.get(event_id)
            if snapshot is None:
                rejects.append(
                    (
                        index,
                        RejectReason.LABEL_UNKNOWN_EVENT,
                        f"no decision for event {event_id!r} is held (the event is "
                        f"unknown, or older than the {self.retention_s:.0f}s retention)",
                    )
                )
            elif label_time - snapshot.event_time > self.retention_s:
                rejects.append(
                    (
                        index,
                        RejectReason.LABEL_TOO_LATE,
                        f"label for {event_id!r} arrived "
                        f"{label_time - snapshot.event_time:.0f}s after the event; "
                        f"the retention is {self.retention_s:.0f}s",
                    )
                )
            elif snapshot.labelled:
                rejects.append(
                    (
                        index,
                        RejectReason.DUPLICATE_LABEL,
                        f"event {event_id!r} already has a label; applied once",
                    )
                )
            else:
                snapshot.labelled = True
                joined.append(
                    Joined(
                        index,
                        snapshot.score,
                        snapshot.decision,
                        label,
                        label_time,
                        snapshot.context,
                        snapshot.model,
                    )
                )
        return joined, rejects


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
                    "label_time": feedback.label_time.timestamp(),
                },
            )
        )
    return accepted, rejects


def parse_decisions(values: Sequence[bytes | None]) -> tuple[list[dict[str, Any]], int]:
    """The decision records the join can hold, and how many were unusable.

    The scorer writes every decision, so an unusable one (not JSON, or missing what the join
    keeps) is a record some other producer put on the topic: it is skipped and counted, never
    allowed to stop the process reading it.

    >>> good = b'{"event_id": "e1", "score": 0.2, "decision": "approve", "input_hash": "h", '
    >>> good += b'"event_time": "2024-05-01T00:00:00Z", "model": {"name": "m", "version": 1}}'
    >>> rows, skipped = parse_decisions([good, b"{not json", None, b'{"event_id": "e2"}'])
    >>> [r["event_id"] for r in rows], skipped
    (['e1'], 3)
    """
    rows: list[dict[str, Any]] = []
    skipped = 0
    for value in values:
        try:
            row = orjson.loads(value or b"null")
            usable = (
                isinstance(row["event_id"], str)
                and isinstance(row["score"], int | float)
                and isinstance(row["decision"], str)
                and isinstance(row["input_hash"], str)
                and isinstance(row["model"]["name"], str)
                and isinstance(row["model"]["version"], int)
            )
            datetime.fromisoformat(row["event_time"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            usable = False
        if usable:
            rows.append(row)
        else:
            skipped += 1
    return rows, skipped
