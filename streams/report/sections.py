"""The operator's report: its data and its sections, built from plots and tables.

:func:`operator_sections` returns plain :class:`~streams.report.page.Section` objects, so
another page (a replay comparison, say) can mix them with sections of its own and render
everything with :func:`streams.report.page.render_page`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from models.featurespec import FeatureSpec
from streams.report.drift import (
    Distribution,
    alert_lanes,
    feature_distributions,
    latest_fairness,
    numeric_distribution,
)
from streams.report.page import Figure, Section, note, render_page, table
from streams.report.plots import Series, paired_bars, percent, timeline

PSI_WATCH = 0.1
"""A PSI from which a feature's caption says it moved (0.25 is commonly called a shift)."""


@dataclass(frozen=True)
class ReportData:
    """Everything a report shows, already read from the registry and the topics."""

    model: str
    version: int
    sha256: str
    spec: FeatureSpec
    reference: Mapping[str, Any]
    features: Sequence[Mapping[str, Any]]
    """Feature mappings of the recent, decodable events."""
    events_read: int
    events_undecodable: int
    scores: Sequence[float]
    decisions: Counter[str]
    alerts: Sequence[Mapping[str, Any]]
    fairness: Sequence[Mapping[str, Any]]
    generated_at: datetime
    since: datetime | None = None
    topics: Mapping[str, str] = field(default_factory=dict)


def _caption(d: Distribution) -> str:
    if d.current_count == 0:
        return "no current values"
    drift = "" if d.psi is None else f"; PSI {d.psi:.3f}"
    moved = " (moved)" if d.psi is not None and d.psi >= PSI_WATCH else ""
    return f"{d.current_count:,} current values{drift}{moved}"


def distribution_figure(d: Distribution, title: str | None = None) -> Figure:
    """Reference beside current shares of one distribution."""
    svg = paired_bars(
        d.labels,
        [Series("reference", d.reference), Series("current", d.current)],
        title=title or f"{d.name} ({d.kind})",
    )
    return Figure(svg, _caption(d))


def feature_section(data: ReportData) -> Section:
    distributions, refused = feature_distributions(data.spec, data.reference, data.features)
    ordered = sorted(distributions, key=lambda d: -(d.psi or 0.0))
    intro = (
        f"Training reference (decile bins, category shares) against the last "
        f"{data.events_read:,} events on the events topic, vectorised with the model's "
        f"feature spec; most moved first."
    )
    skipped = data.events_undecodable + refused
    if skipped:
        intro += f" {skipped:,} events were not scorable and are left out."
    if not distributions:
        return Section("features", "Feature distributions", intro, html=note("no reference"))
    return Section(
        "features", "Feature distributions", intro, [distribution_figure(d) for d in ordered]
    )


def score_section(data: ReportData) -> Section:
    reference = data.reference.get("score")
    intro = "Scores of the holdout set at training against the scores of recent decisions."
    if not reference:
        return Section("scores", "Score distribution", intro, html=note("no score reference"))
    scores = np.asarray(data.scores, dtype=np.float64)
    d = numeric_distribution("score", reference, scores, "probability")
    mix = ", ".join(f"{label} {n:,}" for label, n in sorted(data.decisions.items()))
    rows = [[label, f"{n:,}", percent(n / max(len(scores), 1))]
            for label, n in sorted(data.decisions.items())]  # fmt: skip
    return Section(
        "scores",
        "Score distribution",
        intro + (f" Decisions: {mix}." if mix else " No recent decisions."),
        [distribution_figure(d, "model score")],
        html=table(["decision", "count", "share"], rows) if rows else "",
    )


def alert_section(data: ReportData) -> Section:
    lanes = alert_lanes(data.alerts, data.generated_at)
    intro = "Drift-alert episodes per monitor: opened, and resolved or still open."
    if not lanes:
        return Section("alerts", "Alert timeline", intro, html=note("no drift alerts"))
    starts = [span.start for lane in lanes for span in lane.spans]
    start = min([*starts, *([data.since] if data.since else [])])
    end = max([data.generated_at, *(span.end for lane in lanes for span in lane.spans)])
    svg = timeline(lanes, start, end, title="drift-alert episodes")
    rows = [
        [a.get("detected_at"), a.get("monitor_id"), a.get("status"), a.get("severity"),
         f"{a.get('statistic')}={float(a.get('value', 0.0)):.3g}",
         "yes" if a.get("retrain_recommended") else "no"]
        for a in sorted(data.alerts, key=lambda a: str(a.get("detected_at")))[-20:]
    ]  # fmt: skip
    alerts_table = table(
        ["detected", "monitor", "status", "severity", "statistic", "retrain"], rows
    )
    return Section("alerts", "Alert timeline", intro, [Figure(svg)], html=alerts_table)


def fairness_section(data: ReportData) -> Section:
    reports = latest_fairness(data.fairness)
    intro = (
        "The latest fairness report per protected attribute: each group's share of favourable "
        "decisions; the dashed line is the reference group's share times the disparate-impact "
        "threshold."
    )
    if not reports:
        return Section("fairness", "Fairness by group", intro, html=note("no fairness reports"))
    figures, rows = [], []
    for report in reports:
        groups = report.get("groups", [])
        rates = {str(g["group"]): float(g["selection_rate"]) for g in groups}
        reference = report.get("reference_group")
        threshold = float(report.get("di_threshold", 0.8))
        line = None
        if reference in rates:
            line = (rates[reference] * threshold, f"{threshold:g} × {reference}")
        svg = paired_bars(
            list(rates), [Series("selection rate", list(rates.values()), "#2e86de")],
            title=f"{report.get('attribute')}: selection rate", line=line, y_max=1.0,
        )  # fmt: skip
        counts = ", ".join(f"{g['group']} {g['count']:,}" for g in groups)
        figures.append(Figure(svg, f"status {report.get('status')}; decisions: {counts}"))
        ratio = report.get("disparate_impact_ratio")
        rows.append([
            report.get("attribute"), report.get("status"),
            "-" if ratio is None else f"{ratio:.3f}", report.get("reference_group") or "-",
            (report.get("window") or {}).get("end_time") or "-", report.get("generated_at"),
        ])  # fmt: skip
    headers = ["attribute", "status", "DI ratio", "reference group", "window end", "generated"]
    return Section("fairness", "Fairness by group", intro, figures, html=table(headers, rows))


def operator_sections(data: ReportData) -> list[Section]:
    """Features, scores, alerts and fairness, in that order."""
    return [feature_section(data), score_section(data), alert_section(data), fairness_section(data)]


def render_report(data: ReportData) -> str:
    """The whole operator's report as one HTML document."""
    since = f" since {data.since.isoformat()}" if data.since else ""
    subtitle = (
        f"{data.model} v{data.version} (sha256 {data.sha256[:12]}) · generated "
        f"{data.generated_at.isoformat(timespec='seconds')}{since}"
    )
    topics = ", ".join(f"{k}: {v}" for k, v in data.topics.items())
    return render_page(
        f"Scorer report: {data.model}",
        operator_sections(data),
        subtitle=subtitle,
        footer=f"Read from {topics}." if topics else "",
    )
