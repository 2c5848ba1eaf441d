"""The one protocol every drift monitor follows, and its verdict.

A monitor turns a batch into count vectors per window (:meth:`WindowMonitor.count`, numpy
only: ``np.searchsorted`` and ``np.bincount``, no per-event Python) and a final window
summary into a :class:`Verdict` (:meth:`WindowMonitor.evaluate`, ``None`` when the window
is too small to judge). Everything between (merging, windows, episodes, alerts) is shared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from streams.monitoring.summary import Stream, WindowSummary

MonitorKind = Literal["feature", "missing", "prediction", "concept", "performance"]


@dataclass(frozen=True)
class Verdict:
    """One monitor's judgement of one final window."""

    monitor_id: str
    monitor: MonitorKind
    feature: str | None
    statistic: str
    value: float
    threshold: float
    breach: bool
    events: int
    reference: dict[str, Any] = field(default_factory=dict)
    current: dict[str, Any] = field(default_factory=dict)


class WindowMonitor(Protocol):
    """Counts per window from a batch; a verdict per final window."""

    monitor_id: str
    monitor: MonitorKind
    stream: Stream
    budget_events: float

    def count(self, batch: Any, position: np.ndarray, windows: int) -> dict[str, np.ndarray]:
        """Count vectors, one row per window (``position`` maps events to rows)."""
        ...

    def evaluate(self, summary: WindowSummary) -> Verdict | None:
        """The verdict on a final window, or None when it has too few events."""
        ...


def count_by_window(position: np.ndarray, cells: np.ndarray, windows: int, size: int) -> np.ndarray:
    """``(windows, size)`` int64 counts of ``cells`` per window, in one ``np.bincount``.

    >>> count_by_window(np.array([0, 0, 1]), np.array([2, 0, 2]), 2, 3).tolist()
    [[1, 0, 1], [0, 0, 1]]
    """
    flat = np.bincount(position * size + cells, minlength=windows * size)
    return flat.astype(np.int64).reshape(windows, size)
