"""Prediction drift: the window's score distribution against the holdout scores at training.

Scores are binned at the deciles of the holdout scores stored in the manifest's
``reference["score"]`` and tested with the calibrated two-sample G test, with the whole
``prediction`` budget (one test). The reference is the holdout, typically a few thousand
rows, so its own sampling error matters and is part of the calibration. Alerts also carry
the window's decision mix (approve / review / decline) for context.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.policy import APPROVE, DECLINE, REVIEW
from streams.monitoring.base import MonitorKind, Verdict, count_by_window
from streams.monitoring.batch import ObservedBatch
from streams.monitoring.calibration import reference_counts
from streams.monitoring.feature_drift import HistogramTest, g_verdict
from streams.monitoring.likelihood_ratio import shares
from streams.monitoring.summary import Stream, WindowSummary

DECISION_LABELS = (APPROVE, REVIEW, DECLINE)


class PredictionDriftMonitor(HistogramTest):
    """The score histogram per window against the holdout score histogram."""

    monitor_id = "prediction:score"
    monitor: MonitorKind = "prediction"
    stream: Stream = "events"

    def __init__(self, stats: dict[str, Any], min_events: int) -> None:
        self.min_events = min_events
        self._edges = np.asarray(stats["edges"], dtype=np.float64)
        self.cells = self._edges.size + 1
        self.reference = reference_counts(stats["proportions"], int(stats["count"]))
        self._reference_info = {
            "count": int(stats["count"]),
            "edges": list(stats["edges"]),
            "proportions": shares(np.asarray(self.reference)),
        }

    def count(
        self, batch: ObservedBatch, position: np.ndarray, windows: int
    ) -> dict[str, np.ndarray]:
        cells = np.searchsorted(self._edges, batch.scores, side="right")
        decided = np.full(len(batch), len(DECISION_LABELS), dtype=np.intp)  # last: other
        for i, label in enumerate(DECISION_LABELS):
            decided[batch.decisions == label] = i
        return {
            self.monitor_id: count_by_window(position, cells, windows, self.cells),
            "prediction:decisions": count_by_window(
                position, decided, windows, len(DECISION_LABELS) + 1
            ),
        }

    def evaluate(self, summary: WindowSummary) -> Verdict | None:
        assert self.test is not None, "configure() first"
        counts = summary.vector(self.monitor_id, self.cells)
        verdict = g_verdict(
            self.monitor_id,
            "prediction",
            None,
            self.test,
            counts,
            self.min_events,
            self._reference_info,
        )
        if verdict is not None:
            decisions = summary.vector("prediction:decisions", len(DECISION_LABELS) + 1)
            verdict.current["decisions"] = dict(
                zip([*DECISION_LABELS, "other"], decisions.tolist(), strict=True)
            )
        return verdict
