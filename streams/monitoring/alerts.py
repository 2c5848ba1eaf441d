"""DriftAlert-shaped records from episode transitions (plain dicts, contract-valid).

``alert_id`` names the episode, ``{monitor_id}@{window id that opened it}``: the opening
record, its one possible escalation and its resolution share it, so a consumer keyed by
alert id sees one alert per episode. ``detected_at`` is the wall-clock time the verdict was
made; everything else is a function of the window counts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from schemas.contracts import SCHEMA_VERSION
from streams.monitoring.episodes import Transition
from streams.monitoring.summary import WindowSummary


def iso(seconds: float) -> str:
    """Epoch seconds as RFC 3339 UTC text.

    >>> iso(0.0)
    '1970-01-01T00:00:00Z'
    """
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def drift_window(summary: WindowSummary) -> dict[str, Any]:
    """The DriftWindow of a window summary: its bounds, events and offsets covered."""
    return {
        "start_time": iso(summary.start),
        "end_time": iso(summary.end),
        "events": summary.events,
        "offsets": {str(p): [a, b] for p, (a, b) in sorted(summary.offsets.items())},
    }


def severity(transition: Transition) -> str:
    """``critical`` when retraining is recommended, ``warning`` for other openings, ``info``
    for resolutions."""
    if transition.status == "resolved":
        return "info"
    return "critical" if transition.retrain_rule else "warning"


def drift_alert(
    transition: Transition,
    *,
    model: dict[str, Any],
    budget_events: float,
    detected_at: datetime,
) -> dict[str, Any]:
    """The DriftAlert record of an episode transition."""
    verdict = transition.verdict
    current = dict(verdict.current)
    current["episode"] = dict(transition.episode)
    return {
        "schema_version": SCHEMA_VERSION,
        "alert_id": transition.alert_id,
        "monitor_id": verdict.monitor_id,
        "monitor": verdict.monitor,
        "feature": verdict.feature,
        "status": transition.status,
        "statistic": verdict.statistic,
        "value": float(verdict.value),
        "threshold": float(verdict.threshold),
        "budget_events": float(budget_events),
        "window": drift_window(transition.window),
        "reference": verdict.reference,
        "current": current,
        "severity": severity(transition),
        "model": model,
        "retrain_recommended": transition.retrain_rule is not None,
        "retrain_rule": transition.retrain_rule,
        "detected_at": detected_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }
