"""The replay comparison (``scorer replay --out FILE``) as a page of the operator's report.

Built from the JSON-ready report of :func:`streams.release.replay.replay_report`, with the same
plots and page as ``scorer report``: the decision mix of both models, the flips by
direction, the score shift's quantiles, reason codes gained and lost, and the selection
rate per group of every context attribute against the disparate-impact floor.

>>> report = {"candidate": {"name": "m", "version": 2}, "compared": 2,
...           "flips": {"matrix": {"approve": {"approve": 1, "decline": 1},
...                                "decline": {"approve": 0, "decline": 0}},
...                     "by_direction": {"approve->decline": 1}, "flip_rate": 0.5,
...                     "compared": 2, "flipped": 1, "newly_adverse": 1,
...                     "newly_favourable": 0},
...           "score_shift": {"count": 0}, "reason_codes": {"gained": {}, "lost": {}},
...           "fairness": {}, "performance": {"labelled": 0}}
>>> html = render_replay(report)
>>> html.count('class="plot"') >= 2, "approve-&gt;decline" in html  # escaped
(True, True)
"""

from __future__ import annotations

from typing import Any

from streams.report.page import Figure, Section, note, render_page, table
from streams.report.plots import Series, compact, paired_bars

DI_FLOOR = 0.8


def _decision_mix(flips: dict[str, Any]) -> Figure:
    matrix: dict[str, dict[str, int]] = flips.get("matrix", {})
    labels = list(matrix)
    total = max(int(flips.get("compared", 0)), 1)
    champion = [sum(matrix[a].values()) / total for a in labels]
    candidate = [sum(matrix[a].get(b, 0) for a in labels) / total for b in labels]
    svg = paired_bars(
        labels,
        [Series("champion (recorded)", champion), Series("candidate (replayed)", candidate)],
        title="decision mix",
    )
    return Figure(svg, f"{flips.get('compared', 0):,} events decided by both models")


def _flips(flips: dict[str, Any]) -> Figure:
    directions: dict[str, int] = flips.get("by_direction", {})
    svg = paired_bars(
        list(directions) or ["none"],
        [Series("events", [float(v) for v in directions.values()] or [0.0])],
        title="decision flips by direction",
        value_format=compact,
    )
    return Figure(
        svg,
        f"flip rate {flips.get('flip_rate', 0.0):.2%}: {flips.get('newly_adverse', 0)} newly "
        f"adverse, {flips.get('newly_favourable', 0)} newly favourable",
    )


def _score_shift(shift: dict[str, Any]) -> Figure | None:
    quantiles: dict[str, float] = shift.get("quantiles", {})
    if not quantiles:
        return None
    values = list(quantiles.values())
    low = min([*values, 0.0])
    svg = paired_bars(
        list(quantiles),
        [Series("candidate - champion (shifted by the lowest)", [v - low for v in values])],
        title="score shift quantiles",
        value_format=lambda v: f"{v + low:+.3f}",
    )
    return Figure(
        svg, f"mean shift {shift['mean']:+.4f}, mean |shift| {shift['mean_abs']:.4f}, "
        f"largest |shift| {shift['max_abs']:.4f}"
    )  # fmt: skip


def _reasons(codes: dict[str, Any]) -> Figure | None:
    gained: dict[str, int] = codes.get("gained", {})
    lost: dict[str, int] = codes.get("lost", {})
    names = sorted(set(gained) | set(lost), key=lambda c: -(gained.get(c, 0) + lost.get(c, 0)))
    if not names:
        return None
    names = names[:12]
    svg = paired_bars(
        names,
        [Series("gained", [float(gained.get(c, 0)) for c in names]),
         Series("lost", [float(lost.get(c, 0)) for c in names])],
        title="reason codes gained and lost (adverse under both)",
        value_format=compact,
    )  # fmt: skip
    return Figure(
        svg, f"{codes.get('changed', 0)} of {codes.get('compared', 0)} reason sets changed"
    )


def _fairness(attribute: str, sides: dict[str, Any]) -> Figure:
    groups = sorted(set(sides["champion"]["groups"]) | set(sides["candidate"]["groups"]))
    series = [
        Series(side, [float(sides[side]["groups"].get(g, {}).get("selection_rate", 0.0))
                      for g in groups])
        for side in ("champion", "candidate")
    ]  # fmt: skip
    svg = paired_bars(groups, series, title=f"adverse decision rate by {attribute}")
    ratios = ", ".join(
        f"{side} DI {sides[side]['disparate_impact_ratio']:.3f}"
        if sides[side].get("disparate_impact_ratio") is not None
        else f"{side} DI -"
        for side in ("champion", "candidate")
    )
    return Figure(svg, f"{ratios} (floor {DI_FLOOR})")


def replay_sections(report: dict[str, Any]) -> list[Section]:
    """The comparison as report sections."""
    flips = report.get("flips", {})
    figures = [_decision_mix(flips), _flips(flips)]
    shift = _score_shift(report.get("score_shift", {}))
    reasons = _reasons(report.get("reason_codes", {}))
    performance = report.get("performance", {})
    rows = [
        [side, _metric(performance.get(side, {}).get("roc_auc")),
         _metric(performance.get(side, {}).get("accuracy"))]
        for side in ("champion", "candidate") if side in performance
    ]  # fmt: skip
    fairness = report.get("fairness", {})
    return [
        Section("decisions", "Decisions", figures=figures),
        Section(
            "scores",
            "Scores and reasons",
            figures=[f for f in (shift, reasons) if f is not None],
            html="" if shift or reasons else note("no scores to compare"),
        ),
        Section(
            "fairness",
            "Fairness by group",
            figures=[_fairness(a, sides) for a, sides in sorted(fairness.items())],
            html="" if fairness else note("the events carry no context attributes"),
        ),
        Section(
            "performance",
            "Performance on labelled events",
            html=table(["model", "ROC AUC", "accuracy"], rows)
            if rows
            else note(f"{performance.get('labelled', 0)} labelled events: nothing to compare"),
        ),
    ]


def render_replay(report: dict[str, Any]) -> str:
    """A self-contained HTML page of the replay comparison."""
    candidate = report.get("candidate", {})
    label = f"{candidate.get('name', '?')} v{candidate.get('version', '?')}"
    return render_page(
        f"Replay of {label} against the recorded champion",
        replay_sections(report),
        subtitle=f"{report.get('compared', 0):,} recorded events compared",
    )


def _metric(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
