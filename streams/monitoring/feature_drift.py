"""Feature drift against the training reference: distributions and missing rates.

One :class:`FeatureDriftMonitor` per input feature compares the window's histogram with the
training histogram stored in the model manifest's ``reference``
(:mod:`models.reference`): a numeric feature by the training deciles (bin ``i`` holds
``edges[i-1] <= x < edges[i]``, the same ``searchsorted(..., side="right")`` rule; missing
values are left out), a categorical feature by its categories, a boolean by false/true. One
:class:`MissingRateMonitor` per nullable feature compares the window's missing count with
the training missing rate. Both use the calibrated two-sample G test
(:mod:`streams.monitoring.calibration`); the ``feature`` budget is split across the feature
tests and the ``missing`` budget across the missing-rate tests. The statistic is ``g_test``;
alerts also carry the window's PSI and shares.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.featurespec import Feature, FeatureKind, FeatureSpec
from streams.monitoring.base import MonitorKind, Verdict, count_by_window
from streams.monitoring.batch import ObservedBatch
from streams.monitoring.calibration import TwoSampleTest, reference_counts
from streams.monitoring.likelihood_ratio import psi, shares
from streams.monitoring.summary import Stream, WindowSummary


def g_verdict(
    monitor_id: str,
    monitor: MonitorKind,
    feature: str | None,
    test: TwoSampleTest,
    counts: np.ndarray,
    min_events: int,
    reference: dict[str, Any],
) -> Verdict | None:
    """The G-test verdict on ``counts`` (None below ``min_events``)."""
    events = int(counts.sum())
    if events < min_events:
        return None
    value = test.statistic(counts)
    threshold = test.threshold(events)
    return Verdict(
        monitor_id=monitor_id,
        monitor=monitor,
        feature=feature,
        statistic="g_test",
        value=value,
        threshold=threshold,
        breach=value > threshold,
        events=events,
        reference=reference,
        current={
            "count": events,
            "counts": counts.tolist(),
            "proportions": shares(counts),
            "psi": psi(counts, np.asarray(test.reference)),
            "alpha": test.alpha(events),
        },
    )


class HistogramTest:
    """A window histogram tested against reference counts; shared by histogram monitors.

    Subclasses set ``cells`` and ``reference`` (counts per cell) before ``configure``.
    """

    cells: int
    reference: tuple[int, ...]
    test: TwoSampleTest | None = None
    budget_events: float = 0.0

    @property
    def testable(self) -> bool:
        return self.cells >= 2 and sum(self.reference) > 0

    def configure(self, budget_events: float, tests: int, draws: int, seed: int) -> None:
        self.budget_events = budget_events
        self.test = TwoSampleTest(self.reference, budget_events, tests, draws=draws, seed=seed)


class FeatureDriftMonitor(HistogramTest):
    """One feature's histogram per window against the training histogram."""

    monitor: MonitorKind = "feature"
    stream: Stream = "events"

    def __init__(
        self, feature: Feature, spec: FeatureSpec, stats: dict[str, Any], min_events: int
    ) -> None:
        self.feature = feature.name
        self.monitor_id = f"feature:{feature.name}"
        self.min_events = min_events
        columns = spec.columns
        self._column = columns.index(feature.column_names()[0])
        self._missing = (
            columns.index(f"{feature.name}__missing")
            if f"{feature.name}__missing" in columns
            else None
        )
        self.kind = feature.kind
        if feature.kind is FeatureKind.NUMERIC:
            self._edges = np.asarray(stats["edges"], dtype=np.float64)
            self.cells = self._edges.size + 1
            self._reference_info: dict[str, Any] = {"edges": stats["edges"]}
            proportions = stats["proportions"]
        else:
            labels = list(stats["frequencies"])
            self.cells = len(labels)
            self._category_numbers = np.arange(self.cells, dtype=np.float64)
            self._reference_info = {"categories": labels}
            proportions = [stats["frequencies"][c] for c in labels]
        self.reference = reference_counts(proportions, int(stats["count"]))
        self._reference_info.update(
            count=int(stats["count"]), proportions=shares(np.asarray(self.reference))
        )

    def _cells(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        if self.kind is FeatureKind.NUMERIC:
            values = X[:, self._column]
            present = None if self._missing is None else X[:, self._missing] < 0.5
            if present is not None:
                values = values[present]
            return np.searchsorted(self._edges, values, side="right"), present
        if self.kind is FeatureKind.CATEGORICAL:
            # A scored row has exactly one 1.0 among its category's columns, so the
            # product with the column numbers is the set column's, as argmax would find it
            # (a matrix-vector product costs a sixth of argmax over the strided block).
            block = X[:, self._column : self._column + self.cells]
            return (block @ self._category_numbers).astype(np.intp), None
        return (X[:, self._column] > 0.5).astype(np.intp), None

    def count(
        self, batch: ObservedBatch, position: np.ndarray, windows: int
    ) -> dict[str, np.ndarray]:
        cells, present = self._cells(batch.X)
        where = position if present is None else position[present]
        return {self.monitor_id: count_by_window(where, cells, windows, self.cells)}

    def evaluate(self, summary: WindowSummary) -> Verdict | None:
        assert self.test is not None, "configure() first"
        counts = summary.vector(self.monitor_id, self.cells)
        return g_verdict(
            self.monitor_id,
            "feature",
            self.feature,
            self.test,
            counts,
            self.min_events,
            self._reference_info,
        )


class MissingRateMonitor:
    """One nullable feature's missing count per window against the training missing rate."""

    monitor: MonitorKind = "missing"
    stream: Stream = "events"

    def __init__(
        self, feature: Feature, spec: FeatureSpec, stats: dict[str, Any], rows: int, min_events: int
    ) -> None:
        self.feature = feature.name
        self.monitor_id = f"missing:{feature.name}"
        self.min_events = min_events
        self._missing = spec.columns.index(f"{feature.name}__missing")
        missing = round(float(stats["missing_rate"]) * rows)
        self.reference = (rows - missing, missing)
        self._reference_info = {"rows": rows, "missing_rate": float(stats["missing_rate"])}
        self.test: TwoSampleTest | None = None
        self.budget_events = 0.0

    def configure(self, budget_events: float, tests: int, draws: int, seed: int) -> None:
        self.budget_events = budget_events
        self.test = TwoSampleTest(self.reference, budget_events, tests, draws=draws, seed=seed)

    def count(
        self, batch: ObservedBatch, position: np.ndarray, windows: int
    ) -> dict[str, np.ndarray]:
        missing = (batch.X[:, self._missing] > 0.5).astype(np.intp)
        return {self.monitor_id: count_by_window(position, missing, windows, 2)}

    def evaluate(self, summary: WindowSummary) -> Verdict | None:
        assert self.test is not None, "configure() first"
        counts = summary.vector(self.monitor_id, 2)
        verdict = g_verdict(
            self.monitor_id,
            "missing",
            self.feature,
            self.test,
            counts,
            self.min_events,
            self._reference_info,
        )
        if verdict is not None:
            verdict.current["missing_rate"] = float(counts[1] / counts.sum())
        return verdict


def feature_monitors(
    spec: FeatureSpec, reference: dict[str, Any], min_events: int
) -> tuple[list[FeatureDriftMonitor], list[MissingRateMonitor]]:
    """The distribution and missing-rate monitors a reference supports (unconfigured)."""
    stats_of = reference.get("features", {})
    rows = int(reference.get("rows", 0))
    drift: list[FeatureDriftMonitor] = []
    missing: list[MissingRateMonitor] = []
    for feature in spec.features:
        stats = stats_of.get(feature.name)
        if stats is None:
            continue
        monitor = FeatureDriftMonitor(feature, spec, stats, min_events)
        if monitor.testable:
            drift.append(monitor)
        if feature.kind is FeatureKind.NUMERIC and feature.nullable and rows > 0:
            missing.append(MissingRateMonitor(feature, spec, stats, rows, min_events))
    return drift, missing
