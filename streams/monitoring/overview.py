"""What an operator reads first: the latest state of every drift episode, and the latest
fairness report per attribute, from the records the monitor owner published."""

from __future__ import annotations

from typing import Any


def alert_overview(
    alerts: list[dict[str, Any]], reports: list[dict[str, Any]], model: str | None = None
) -> dict[str, Any]:
    """Latest record per drift episode (split into open and resolved, newest first) and the
    latest fairness report per attribute and basis, with how many windows alerted.

    >>> a = {"alert_id": "feature:x@3", "status": "open", "detected_at": "t1",
    ...      "model": {"name": "m"}}
    >>> s = alert_overview([a, {**a, "status": "resolved", "detected_at": "t2"}], [])
    >>> [e["status"] for e in s["resolved"]], s["open"]
    (['resolved'], [])
    """
    if model is not None:
        alerts = [a for a in alerts if a.get("model", {}).get("name") == model]
        reports = [r for r in reports if r.get("model", {}).get("name") == model]
    latest: dict[str, dict[str, Any]] = {}
    for alert in sorted(alerts, key=lambda a: str(a.get("detected_at"))):
        latest[alert["alert_id"]] = alert
    episodes = sorted(latest.values(), key=lambda a: str(a.get("detected_at")), reverse=True)
    fairness: dict[str, dict[str, Any]] = {}
    alerted: dict[str, int] = {}
    for report in sorted(reports, key=lambda r: str(r.get("generated_at"))):
        basis = str(report.get("report_id", "")).split("@")[0] or report["attribute"]
        fairness[basis] = report
        alerted[basis] = alerted.get(basis, 0) + (report.get("status") == "alert")
    return {
        "open": [a for a in episodes if a["status"] == "open"],
        "resolved": [a for a in episodes if a["status"] == "resolved"],
        "fairness": [
            {"basis": basis, "alert_windows": alerted[basis], "latest": report}
            for basis, report in sorted(fairness.items())
        ],
    }
