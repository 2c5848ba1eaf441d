"""Reference against current: distributions, alert episodes and fairness, ready to plot.

Pure functions over the model's manifest and records already read; no Kafka here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

import numpy as np

from models.featurespec import FeatureKind, FeatureSpec
from models.reference import bin_proportions
from streams.monitoring.likelihood_ratio import psi
from streams.report.plots import Lane, Span, compact


@dataclass(frozen=True)
class Distribution:
    """Shares per bin or category of one quantity, in the reference and in current data."""

    name: str
    kind: str
    labels: list[str]
    reference: list[float]
    current: list[float]
    current_count: int
    psi: float | None


def bin_labels(edges: Sequence[float]) -> list[str]:
    """Labels of the open-ended bins of :mod:`models.reference`.

    >>> bin_labels([10.0, 20000.0])
    ['<10', '10–20k', '≥20k']
    >>> bin_labels([])
    ['all']
    """
    if not edges:
        return ["all"]
    inner = [f"{compact(a)}–{compact(b)}" for a, b in pairwise(edges)]
    return [f"<{compact(edges[0])}", *inner, f"≥{compact(edges[-1])}"]


def _psi(current: list[float], count: int, reference: list[float], ref_count: int) -> float | None:
    if not count or not reference or len(current) != len(reference):
        return None
    return psi(np.asarray(current) * count, np.asarray(reference) * max(ref_count, 1))


def numeric_distribution(
    name: str, stats: Mapping[str, Any], values: np.ndarray, kind: str = "numeric"
) -> Distribution:
    """Current ``values`` binned on the reference's decile edges."""
    edges = list(stats.get("edges") or [])
    current = bin_proportions(edges, values) if values.size else [0.0] * (len(edges) + 1)
    reference = list(stats.get("proportions") or [])
    count = int(values.size)
    return Distribution(
        name, kind, bin_labels(edges), reference, current, count,
        _psi(current, count, reference, int(stats.get("count", 0))),
    )  # fmt: skip


def feature_distributions(
    spec: FeatureSpec, reference: Mapping[str, Any], features: Sequence[Mapping[str, Any]]
) -> tuple[list[Distribution], int]:
    """One distribution per feature with reference statistics, and the events refused.

    ``features`` are events' feature mappings; they are vectorised with the model's spec,
    so the current side sees exactly what the model sees (a null numeric value, imputed for
    scoring, counts as missing here).
    """
    batch = spec.vectorise(features)
    X = batch.X
    stats_of = reference.get("features", {})
    result = []
    offset = 0
    for feature in spec.features:
        width = len(feature.column_names())
        stats = stats_of.get(feature.name)
        if stats is not None and feature.kind is FeatureKind.NUMERIC:
            values = X[:, offset]
            if feature.nullable:
                values = values[X[:, offset + 1] == 0.0]
            result.append(numeric_distribution(feature.name, stats, values))
        elif stats is not None:
            labels = list(feature.categories) or ["false", "true"]
            if feature.kind is FeatureKind.CATEGORICAL:
                shares = X[:, offset : offset + width].mean(axis=0) if len(X) else None
            else:
                share = float(X[:, offset].mean()) if len(X) else 0.0
                shares = np.array([1.0 - share, share]) if len(X) else None
            result.append(
                _category_distribution(feature.name, feature.kind, labels, stats, shares, len(X))
            )
        offset += width
    return result, len(batch.rejects)


def _category_distribution(
    name: str, kind: str, labels: list[str], stats: Mapping[str, Any], shares: np.ndarray | None,
    count: int,
) -> Distribution:  # fmt: skip
    current = [0.0] * len(labels) if shares is None else [float(s) for s in shares]
    frequencies = stats.get("frequencies", {})
    reference = [float(frequencies.get(label, 0.0)) for label in labels]
    ref_count = int(stats.get("count", 0))
    return Distribution(
        name, kind, labels, reference, current, count, _psi(current, count, reference, ref_count)
    )


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def alert_lanes(alerts: Sequence[Mapping[str, Any]], end: datetime) -> list[Lane]:
    """Episodes per monitor: an ``open`` alert starts one, its ``resolved`` alert ends it.

    An episode still open at ``end`` is drawn up to ``end`` and marked open; a resolution
    whose opening was not read (older than the data) starts at its window's start.
    """
    ordered = sorted(
        (a for a in alerts if _time(a.get("detected_at")) is not None),
        key=lambda a: str(a["detected_at"]),
    )
    lanes: dict[str, Lane] = {}
    opened: dict[str, tuple[datetime, str]] = {}
    for alert in ordered:
        monitor = str(alert.get("monitor_id", "?"))
        lane = lanes.setdefault(monitor, Lane(monitor))
        moment = _time(alert["detected_at"])
        assert moment is not None
        retrain = " retrain recommended" if alert.get("retrain_recommended") else ""
        text = f"{alert.get('statistic')}={alert.get('value')}{retrain}"
        if alert.get("status") == "open":
            opened.setdefault(monitor, (moment, text))
        elif monitor in opened:
            start, note = opened.pop(monitor)
            lane.spans.append(Span(start, moment, note=note))
        else:
            window_start = _time((alert.get("window") or {}).get("start_time")) or moment
            lane.spans.append(Span(min(window_start, moment), moment, note=text))
    for monitor, (start, note) in opened.items():
        lanes[monitor].spans.append(Span(start, max(end, start), open=True, note=note))
    return [lanes[name] for name in sorted(lanes)]


def latest_fairness(reports: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The newest fairness report of each attribute, by attribute name."""
    latest: dict[str, Mapping[str, Any]] = {}
    for report in sorted(reports, key=lambda r: str(r.get("generated_at"))):
        latest[str(report.get("attribute"))] = report
    return [latest[name] for name in sorted(latest)]
