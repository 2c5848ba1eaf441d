"""Windowed fairness reports per context attribute (FairnessReport-shaped dicts).

Per attribute and final window, each group's counts are summed like every other count
vector, and the report's numbers come from :mod:`models.fairness` (the same maths as at
training): selection rate (share of favourable decisions, i.e. not review or decline),
disparate-impact ratio (lowest over highest selection rate) and demographic-parity
difference, over the groups with at least ``min_group_count`` members.

Two bases, because decisions and outcomes arrive on different clocks:

- ``decisions`` reports, from scored events (windows of event time): selection rates only;
- ``outcomes`` reports, from joined labels (windows of label time): over the labelled
  decisions, selection rates plus tpr (favourable share among label-0 members) and fpr
  (favourable share among label-1 members) and their gaps (max minus min).

Status: ``insufficient_data`` when any group seen in the window has fewer than
``min_group_count`` members; otherwise ``alert`` when the disparate-impact ratio is below
``di_threshold`` (default 0.8, the four-fifths rule), else ``ok`` (also when no group was
selected at all: the ratio is then undefined, and no group is favoured over another).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np

from models.fairness import (
    GroupRates,
    demographic_parity_difference,
    disparate_impact_ratio,
    equal_opportunity_difference,
    fpr_difference,
    reference_group,
    undefined_gaps,
)
from models.policy import ADVERSE_DECISIONS
from schemas.contracts import SCHEMA_VERSION
from streams.monitoring.alerts import drift_window
from streams.monitoring.base import count_by_window
from streams.monitoring.batch import LabelledBatch, ObservedBatch, context_groups
from streams.monitoring.summary import Stream, WindowSummary

Basis = Literal["decisions", "outcomes"]
_PREFIX = "fairness:"


_MAX_NAMES_KEPT = 4096
"""Group names kept encoded per monitor (a context attribute with endless values is cleared)."""


class FairnessMonitor:
    """Group counts of one attribute per window, and the window's FairnessReport."""

    def __init__(
        self,
        attribute: str,
        stream: Stream,
        *,
        min_group_count: int,
        di_threshold: float,
        model: dict[str, Any],
        clock: Callable[[], datetime],
    ) -> None:
        self.attribute = attribute
        self.stream = stream
        self.basis: Basis = "decisions" if stream == "events" else "outcomes"
        self.min_group_count = min_group_count
        self.di_threshold = di_threshold
        self.model = model
        self.clock = clock
        self.cells = 2 if stream == "events" else 6
        self._names: dict[str, str] = {}

    def _name(self, group: str) -> str:
        """The group's count vector name (each group's encoded once)."""
        name = self._names.get(group)
        if name is None:
            if len(self._names) >= _MAX_NAMES_KEPT:
                self._names.clear()
            name = self._names[group] = _PREFIX + json.dumps([self.attribute, group])
        return name

    def count(
        self, batch: ObservedBatch | LabelledBatch, position: np.ndarray, windows: int
    ) -> dict[str, np.ndarray]:
        """Per group, the window counts of ``self.cells`` cells: events and favourable ones
        (and on the labels stream good, good and favourable, bad, bad and favourable), all
        from one count over (window, group, label, favourable)."""
        groups, group_of = context_groups(batch.context, self.attribute, len(batch))
        favourable = (~np.isin(batch.decisions, list(ADVERSE_DECISIONS))).astype(np.intp)
        size = len(groups)
        label = batch.labels.astype(np.intp) if isinstance(batch, LabelledBatch) else 0
        cell = (group_of * 2 + label) * 2 + favourable
        counts = count_by_window(position, cell, windows, size * 4).reshape(windows, size, 2, 2)
        # (windows, groups, label good/bad, unfavourable/favourable)
        by_favour = counts.sum(axis=2)
        columns = [by_favour.sum(axis=-1), by_favour[..., 1]]
        if isinstance(batch, LabelledBatch):
            good, bad = counts[:, :, 0, :], counts[:, :, 1, :]
            columns += [good.sum(axis=-1), good[..., 1], bad.sum(axis=-1), bad[..., 1]]
        stacked = np.stack(columns, axis=-1)  # (windows, groups, cells)
        return {self._name(g): stacked[:, i, :] for i, g in enumerate(groups)}

    def rates(self, summary: WindowSummary) -> GroupRates:
        """Per group: count, selection_rate, labelled, tpr, fpr (as models.fairness)."""
        rates: GroupRates = {}
        for name, vector in summary.counts.items():
            if not name.startswith(_PREFIX):
                continue
            attribute, group = json.loads(name[len(_PREFIX) :])
            if attribute != self.attribute or not vector[0]:
                continue
            count, favourable = int(vector[0]), int(vector[1])
            entry: dict[str, Any] = {
                "count": count,
                "selection_rate": favourable / count,
                "labelled": 0,
                "tpr": None,
                "fpr": None,
            }
            if self.stream == "labels":
                good, good_fav, bad, bad_fav = (int(v) for v in vector[2:6])
                entry.update(
                    labelled=good + bad,
                    tpr=good_fav / good if good else None,
                    fpr=bad_fav / bad if bad else None,
                )
            rates[group] = entry
        return dict(sorted(rates.items()))

    def report(self, summary: WindowSummary) -> dict[str, Any] | None:
        """The window's FairnessReport, or None when no group was seen."""
        rates = self.rates(summary)
        if not rates:
            return None
        minimum = self.min_group_count
        ratio = disparate_impact_ratio(rates, minimum)
        if any(r["count"] < minimum for r in rates.values()):
            status = "insufficient_data"
        elif ratio is not None and ratio < self.di_threshold:
            status = "alert"
        else:
            status = "ok"
        labelled = self.stream == "labels"
        return {
            "schema_version": SCHEMA_VERSION,
            "report_id": f"fairness:{self.attribute}:{self.basis}@{summary.window_id}",
            "attribute": self.attribute,
            "window": drift_window(summary),
            "groups": [{"group": group, **values} for group, values in rates.items()],
            "reference_group": reference_group(rates, minimum),
            "disparate_impact_ratio": ratio,
            "demographic_parity_difference": demographic_parity_difference(rates, minimum),
            "tpr_gap": equal_opportunity_difference(rates, minimum) if labelled else None,
            "fpr_gap": fpr_difference(rates, minimum) if labelled else None,
            "undefined": undefined_gaps(rates, minimum, labelled=labelled),
            "status": status,
            "min_group_count": minimum,
            "di_threshold": self.di_threshold,
            "model": self.model,
            "generated_at": self.clock().astimezone(UTC).isoformat().replace("+00:00", "Z"),
        }
