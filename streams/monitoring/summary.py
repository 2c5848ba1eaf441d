"""Mergeable window summaries: named count vectors that add up across processes.

A :class:`WindowSummary` is everything the monitors know about one window of one stream:
integer count vectors keyed by name (bin counts per feature, category counts, missing
counts, score-bin counts, error counts, per-group decision and outcome counts), the number
of events, the Kafka offsets covered per partition and the first and last event times.
Every field merges exactly (integer addition, min/max, union), so merging is associative
and commutative and the summary of a union of disjoint event sets is the merge of their
summaries. Verdicts are functions of the counts alone, hence identical however the events
were split.

Merging refuses overlapping offset ranges of one partition: within a partition offsets
only grow, so an overlap means the same records were counted twice (a replay after a
rebalance or restart).

>>> a = WindowSummary("events", 3, 60.0, events=2, counts={"x": np.array([1, 1])},
...                   offsets={0: (10, 11)}, first_time=181.0, last_time=185.0)
>>> b = WindowSummary("events", 3, 60.0, events=1, counts={"x": np.array([0, 1])},
...                   offsets={1: (4, 4)}, first_time=200.0, last_time=200.0)
>>> merged = a.merge(b)
>>> merged.counts["x"].tolist(), merged.events, merged.offsets, merged.start, merged.end
([1, 2], 3, {0: (10, 11), 1: (4, 4)}, 180.0, 240.0)
>>> WindowSummary.from_dict(merged.to_dict()) == merged
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from schemas.errors import MonitoringError
from streams.monitoring.windows import partition_runs

Stream = Literal["events", "labels"]
SUMMARY_VERSION = 1


@dataclass
class WindowSummary:
    """Count vectors of one event-time window of one stream (see module doc)."""

    stream: Stream
    window_id: int
    length: float
    events: int = 0
    counts: dict[str, np.ndarray] = field(default_factory=dict)
    offsets: dict[int, tuple[int, int]] = field(default_factory=dict)
    first_time: float | None = None
    last_time: float | None = None

    @property
    def start(self) -> float:
        return self.window_id * self.length

    @property
    def end(self) -> float:
        return (self.window_id + 1) * self.length

    def vector(self, name: str, size: int) -> np.ndarray:
        """The count vector ``name``, zeros when the window has none."""
        found = self.counts.get(name)
        return np.zeros(size, dtype=np.int64) if found is None else found

    def merge(self, other: WindowSummary) -> WindowSummary:
        """The summary of both windows' events (a new object; inputs are unchanged)."""
        if (self.stream, self.window_id, self.length) != (
            other.stream,
            other.window_id,
            other.length,
        ):
            raise MonitoringError(
                f"cannot merge {other.stream} window {other.window_id} (length "
                f"{other.length}) into {self.stream} window {self.window_id} ({self.length})"
            )
        counts = dict(self.counts)
        for name, vector in other.counts.items():
            mine = counts.get(name)
            if mine is None:
                counts[name] = vector.copy()
            elif mine.shape != vector.shape:
                raise MonitoringError(
                    f"count vector {name!r}: shapes {mine.shape} and {vector.shape}"
                )
            else:
                counts[name] = mine + vector
        offsets = dict(self.offsets)
        for partition, (first, last) in other.offsets.items():
            if partition in offsets:
                a, b = offsets[partition]
                if first <= b and a <= last:
                    raise MonitoringError(
                        f"window {self.window_id}: offsets {first}-{last} of partition "
                        f"{partition} overlap {a}-{b} already counted (a replay?)"
                    )
                offsets[partition] = (min(a, first), max(b, last))
            else:
                offsets[partition] = (first, last)
        return WindowSummary(
            self.stream,
            self.window_id,
            self.length,
            self.events + other.events,
            counts,
            offsets,
            _pick(min, self.first_time, other.first_time),
            _pick(max, self.last_time, other.last_time),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WindowSummary):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (for a summaries topic); :meth:`from_dict` reverses it."""
        return {
            "version": SUMMARY_VERSION,
            "stream": self.stream,
            "window_id": self.window_id,
            "length": self.length,
            "events": self.events,
            "first_time": self.first_time,
            "last_time": self.last_time,
            "offsets": {str(p): [a, b] for p, (a, b) in sorted(self.offsets.items())},
            "counts": {name: self.counts[name].tolist() for name in sorted(self.counts)},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WindowSummary:
        try:
            if data["version"] != SUMMARY_VERSION or data["stream"] not in ("events", "labels"):
                raise ValueError(f"version {data['version']!r}, stream {data['stream']!r}")
            return cls(
                stream=data["stream"],
                window_id=int(data["window_id"]),
                length=float(data["length"]),
                events=int(data["events"]),
                counts={k: np.asarray(v, dtype=np.int64) for k, v in data["counts"].items()},
                offsets={int(p): (int(a), int(b)) for p, (a, b) in data["offsets"].items()},
                first_time=None if data["first_time"] is None else float(data["first_time"]),
                last_time=None if data["last_time"] is None else float(data["last_time"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MonitoringError(f"not a window summary: {exc}") from exc


def _pick(choose: Any, a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else float(choose(a, b))


def _offset_ranges(partitions: np.ndarray, offsets: np.ndarray) -> dict[int, tuple[int, int]]:
    """Each partition's lowest and highest offset."""
    order, starts = partition_runs(partitions)
    part, off = partitions[order], offsets[order]
    lows = np.minimum.reduceat(off, starts).tolist()
    highs = np.maximum.reduceat(off, starts).tolist()
    return dict(zip(part[starts].tolist(), zip(lows, highs, strict=True), strict=True))


def _per_window(
    windows: int,
    position: np.ndarray,
    times: np.ndarray,
    partitions: np.ndarray,
    offsets: np.ndarray,
) -> tuple[list[dict[int, tuple[int, int]]], np.ndarray, np.ndarray, np.ndarray]:
    """Per window: each partition's offset range, the events, the first and last time."""
    order = np.lexsort((offsets, partitions, position))
    pos_sorted, part_sorted, off_sorted = position[order], partitions[order], offsets[order]
    breaks = np.flatnonzero((np.diff(pos_sorted) != 0) | (np.diff(part_sorted) != 0)) + 1
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks, [order.size]]) - 1
    ranges: list[dict[int, tuple[int, int]]] = [{} for _ in range(windows)]
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        ranges[int(pos_sorted[s])][int(part_sorted[s])] = (int(off_sorted[s]), int(off_sorted[e]))
    events = np.bincount(position, minlength=windows)
    first = np.full(windows, np.inf)
    last = np.full(windows, -np.inf)
    np.minimum.at(first, position, times)
    np.maximum.at(last, position, times)
    return ranges, events, first, last


def split_by_window(
    stream: Stream,
    length: float,
    window_ids: np.ndarray,
    position: np.ndarray,
    vectors: dict[str, np.ndarray],
    times: np.ndarray,
    partitions: np.ndarray,
    offsets: np.ndarray,
) -> list[WindowSummary]:
    """One summary per distinct window of a batch.

    ``window_ids`` are the sorted distinct ids and ``position`` each event's index into
    them; ``vectors`` hold one row per id; ``times``, ``partitions``, ``offsets`` are per event.
    """
    if window_ids.size == 1:  # the usual batch: the ranges are each partition's
        ranges, events = [_offset_ranges(partitions, offsets)], np.array([position.size])
        first, last = np.array([times.min()]), np.array([times.max()])
    else:
        ranges, events, first, last = _per_window(
            window_ids.size, position, times, partitions, offsets
        )
    summaries = []
    for j, window_id in enumerate(window_ids.tolist()):
        counts = {name: rows[j] for name, rows in vectors.items() if rows[j].any()}
        summaries.append(
            WindowSummary(
                stream,
                int(window_id),
                length,
                int(events[j]),
                counts,
                ranges[j],
                float(first[j]),
                float(last[j]),
            )
        )
    return summaries
