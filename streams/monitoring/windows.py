"""Event-time tumbling windows, per-partition watermarks, and when a window is final.

Why event time: a window must hold the same events however the partitions are spread over
processes, so that merged summaries give the same verdicts as one process. Window ``w``
covers event times ``[w * L, (w + 1) * L)`` (``L`` = ``window_seconds``); its id is
``floor(t / L)``, a function of the event alone.

Lateness is decided **per partition**, where the order of events is fixed by the offsets:
the watermark of partition ``p`` is the largest event time seen on ``p``; window ``w`` is
*closed for p* once that watermark reaches ``(w + 1) * L + lateness``, and an event whose
window is already closed for its partition is late: counted, not used. So whether an event
counts depends only on its own partition's history, never on which process reads it or on
how partitions interleave. A window is **final** when it is closed for every partition
(all ``event_partitions`` when configured, else every partition seen so far), and is then
evaluated once, in window order.

An event whose offset is not above the highest offset already seen on its partition is a
replay (at-least-once redelivery) and is skipped.

>>> clock = WindowClock(length=10.0, lateness=2.0, partitions=1)
>>> keep, late, replayed = clock.admit(np.array([1.0, 11.0, 5.0, 13.0]), np.zeros(4, int),
...                                    np.arange(4))
>>> keep.tolist(), late, replayed, clock.final_through()
([True, True, True, True], 0, 0, 0)
>>> clock.admit(np.array([9.0]), np.zeros(1, int), np.array([4]))[0].tolist()  # wm 13 >= 12
[False]
"""

from __future__ import annotations

import math

import numpy as np


def partition_runs(partitions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The events ordered by partition, stably (``order``), and where each partition's run
    starts in that order (``starts``, one per partition present, in partition order).

    >>> order, starts = partition_runs(np.array([2, 0, 2, 1]))
    >>> order.tolist(), starts.tolist()
    ([1, 3, 0, 2], [0, 1, 2])
    """
    order = np.argsort(partitions, kind="stable")
    ordered = partitions[order]
    return order, np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))


class WindowClock:
    """Window ids, watermarks and offsets of one stream (events or labels)."""

    def __init__(self, length: float, lateness: float, partitions: int | None) -> None:
        self.length = float(length)
        self.lateness = float(lateness)
        self.partitions = partitions
        self.watermarks: dict[int, float] = {}
        self.high_offsets: dict[int, int] = {}
        self.evaluated_through: int | None = None

    def window_ids(self, times: np.ndarray) -> np.ndarray:
        return np.floor(times / self.length).astype(np.int64)

    def window_end(self, window_id: int) -> float:
        return (window_id + 1) * self.length

    def admit(
        self, times: np.ndarray, partitions: np.ndarray, offsets: np.ndarray
    ) -> tuple[np.ndarray, int, int]:
        """Which events count (mask), how many were late, how many were replays.

        Updates the watermarks and offsets. Events must be in offset order per partition.
        """
        if times.size and self._all_fresh_and_open(times, partitions, offsets):
            keep = np.ones(times.size, dtype=bool)
            return self._after_evaluation(times, keep, 0, 0)
        keep = np.zeros(times.size, dtype=bool)
        late = replayed = 0
        ends = (self.window_ids(times) + 1) * self.length + self.lateness
        for p in np.unique(partitions).tolist():
            rows = np.flatnonzero(partitions == p)
            t, o = times[rows], offsets[rows]
            wm0, off0 = self.watermarks.get(p, -math.inf), self.high_offsets.get(p, -1)
            wm_before = np.maximum(
                wm0, np.concatenate([[-math.inf], np.maximum.accumulate(t)[:-1]])
            )
            off_before = np.maximum(off0, np.concatenate([[-1], np.maximum.accumulate(o)[:-1]]))
            fresh = o > off_before
            open_ = ends[rows] > wm_before
            keep[rows] = fresh & open_
            replayed += int(np.count_nonzero(~fresh))
            late += int(np.count_nonzero(fresh & ~open_))
            self.watermarks[p] = max(wm0, float(t.max()))
            self.high_offsets[p] = max(off0, int(o.max()))
        return self._after_evaluation(times, keep, late, replayed)

    def _after_evaluation(
        self, times: np.ndarray, keep: np.ndarray, late: int, replayed: int
    ) -> tuple[np.ndarray, int, int]:
        if self.evaluated_through is not None:  # a partition first seen after its window went
            beyond = self.window_ids(times) > self.evaluated_through
            late += int(np.count_nonzero(keep & ~beyond))
            keep &= beyond
        return keep, late, replayed

    def _all_fresh_and_open(
        self, times: np.ndarray, partitions: np.ndarray, offsets: np.ndarray
    ) -> bool:
        """The usual batch, settled in a few whole-batch operations: every partition's offsets
        rise from above its highest one, and the earliest window end (with lateness) is past
        every time and watermark, so no event is a replay or late. If so, the watermarks and
        offsets are updated as :meth:`admit`'s loop would; if not, nothing is changed."""
        order, starts = partition_runs(partitions)
        part, off = partitions[order], offsets[order]
        if not np.all((off[1:] > off[:-1]) | (part[1:] != part[:-1])):
            return False
        lasts = np.concatenate([starts[1:] - 1, [order.size - 1]])
        present = part[starts].tolist()
        marks = [self.watermarks.get(p, -math.inf) for p in present]
        firsts = zip(present, off[starts].tolist(), strict=True)
        if any(o <= self.high_offsets.get(p, -1) for p, o in firsts):
            return False
        ends = (self.window_ids(times) + 1) * self.length + self.lateness
        if not ends.min() > max(float(times.max()), *marks):
            return False
        highest = np.maximum.reduceat(times[order], starts).tolist()
        for p, mark, t, o in zip(present, marks, highest, off[lasts].tolist(), strict=True):
            self.watermarks[p] = max(mark, t)
            self.high_offsets[p] = o
        return True

    def advance(self, watermarks: dict[int, float], high_offsets: dict[int, int]) -> None:
        """Take in other processes' watermarks and offsets (from merged summaries)."""
        for p, t in watermarks.items():
            self.watermarks[p] = max(self.watermarks.get(p, -math.inf), float(t))
        for p, o in high_offsets.items():
            self.high_offsets[p] = max(self.high_offsets.get(p, -1), int(o))

    def final_through(self) -> int | None:
        """The last window closed for every partition (None: none yet)."""
        expected = range(self.partitions) if self.partitions else list(self.watermarks)
        marks = [self.watermarks.get(p) for p in expected]
        if not marks or any(m is None for m in marks):
            return None
        lowest = min(m for m in marks if m is not None)
        if not math.isfinite(lowest):
            return None
        candidate = math.floor((lowest - self.lateness) / self.length)
        while self.window_end(candidate) + self.lateness > lowest:  # same test as ``admit``
            candidate -= 1
        while self.window_end(candidate + 1) + self.lateness <= lowest:
            candidate += 1
        return candidate
