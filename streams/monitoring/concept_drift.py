"""Concept drift from joined labels: the error rate against training, with AUC and accuracy.

The monitor takes joined (score, decision, label) triples (label 1 = adverse outcome). An
event is an *error* when ``score >= policy.classification_threshold`` disagrees with its
label, exactly as the training ``accuracy`` metric is computed on the holdout. Per label
window it tests the window's error count against the holdout's (``(1 - accuracy) *
holdout_rows`` errors) with the calibrated two-sample G test, one-sided: only a *higher*
error rate is drift (the statistic is G when the window's rate is above the holdout's, else
0, and the level is doubled accordingly). The whole ``concept`` budget goes to this one test.

Why not river's DDM or ADWIN on the error stream: both are sequential over an event order,
which is not the same when partitions are split over processes, and neither states a false
alarm rate per event (DDM's warning/drift levels and ADWIN's ``delta`` are per-step
heuristics). A windowed test on mergeable counts is order-free and calibrated to the
budget; ``tests/bench/bench_monitoring.py`` runs both river detectors on the same streams
for comparison.

Windowed ROC AUC (from per-label score histograms of 100 equal bins; ties count one half)
and accuracy are reported beside the training values in every concept alert.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from streams.monitoring.base import MonitorKind, Verdict, count_by_window
from streams.monitoring.batch import LabelledBatch
from streams.monitoring.calibration import TwoSampleTest
from streams.monitoring.summary import Stream, WindowSummary

SCORE_BINS = 100


def binned_auc(negatives: np.ndarray, positives: np.ndarray) -> float | None:
    """ROC AUC from score histograms of the two classes (ties count one half).

    >>> binned_auc(np.array([2, 0, 0]), np.array([0, 1, 1]))
    1.0
    >>> binned_auc(np.array([1, 1]), np.array([1, 1]))
    0.5
    """
    n_neg, n_pos = int(negatives.sum()), int(positives.sum())
    if n_neg == 0 or n_pos == 0:
        return None
    below = np.concatenate([[0], np.cumsum(negatives)[:-1]])
    wins = float((positives * (below + 0.5 * negatives)).sum())
    return wins / (n_neg * n_pos)


class ErrorRateMonitor:
    """Labelled error rate per window against the holdout error rate."""

    monitor_id = "concept:error_rate"
    monitor: MonitorKind = "concept"
    stream: Stream = "labels"
    counts_name = "concept:errors"
    scores_name = "concept:scores"

    def __init__(self, metrics: dict[str, float], threshold: float, min_labels: int) -> None:
        self.classification_threshold = threshold
        self.min_labels = min_labels
        holdout = int(metrics["holdout_rows"])
        errors = round((1.0 - float(metrics["accuracy"])) * holdout)
        self.reference = (holdout - errors, errors)
        self.reference_error_rate = errors / holdout
        self._reference_info: dict[str, Any] = {
            "holdout_rows": holdout,
            "error_rate": self.reference_error_rate,
            "accuracy": float(metrics["accuracy"]),
            "roc_auc": metrics.get("roc_auc"),
            "classification_threshold": threshold,
        }
        self.test: TwoSampleTest | None = None
        self.budget_events = 0.0

    def configure(self, budget_events: float, tests: int, draws: int, seed: int) -> None:
        self.budget_events = budget_events
        self.test = TwoSampleTest(
            self.reference, budget_events, tests, one_sided=True, draws=draws, seed=seed
        )

    def count(
        self, batch: LabelledBatch, position: np.ndarray, windows: int
    ) -> dict[str, np.ndarray]:
        predicted = batch.scores >= self.classification_threshold
        errors = (predicted != (batch.labels == 1)).astype(np.intp)
        bins = np.clip(np.floor(batch.scores * SCORE_BINS), 0, SCORE_BINS - 1).astype(np.intp)
        return {
            self.counts_name: count_by_window(position, errors, windows, 2),
            self.scores_name: count_by_window(
                position, batch.labels * SCORE_BINS + bins, windows, 2 * SCORE_BINS
            ),
        }

    def evaluate(self, summary: WindowSummary) -> Verdict | None:
        assert self.test is not None, "configure() first"
        counts = summary.vector(self.counts_name, 2)
        labelled = int(counts.sum())
        if labelled < self.min_labels:
            return None
        rate = float(counts[1] / labelled)
        value = self.test.statistic(counts) if rate > self.reference_error_rate else 0.0
        threshold = self.test.threshold(labelled)
        scores = summary.vector(self.scores_name, 2 * SCORE_BINS)
        negatives, positives = scores[:SCORE_BINS], scores[SCORE_BINS:]
        return Verdict(
            monitor_id=self.monitor_id,
            monitor="concept",
            feature=None,
            statistic="error_rate_g",
            value=value,
            threshold=threshold,
            breach=value > threshold,
            events=labelled,
            reference=self._reference_info,
            current={
                "labelled": labelled,
                "errors": int(counts[1]),
                "error_rate": rate,
                "accuracy": 1.0 - rate,
                "roc_auc": binned_auc(negatives, positives),
                "positives": int(positives.sum()),
                "alpha": self.test.alpha(labelled),
            },
        )
