"""The report's pure rendering: plots, distributions, episodes and the page."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta

import pytest

from models.reference import build_reference
from schemas.errors import ConfigError
from streams.report.collect import parse_since
from streams.report.drift import alert_lanes, feature_distributions, latest_fairness
from streams.report.page import Figure, Section, render_page, table
from streams.report.plots import Lane, Series, Span, paired_bars, timeline
from streams.report.sections import operator_sections, render_report
from tests.support.report import SPEC, T0, alert, report_data, rows


def rect_heights(svg: str) -> list[float]:
    return [float(h) for h in re.findall(r'class="mark"[^>]*height="([0-9.]+)"', svg)]


def test_paired_bars_scale_to_the_values() -> None:
    reference, current = [0.2, 0.5, 0.3], [0.0, 0.25, 0.75]
    svg = paired_bars(
        ["a", "b", "c"], [Series("reference", reference), Series("current", current)], title="x"
    )
    # bars by category, reference then current; the axis tops at 1.0 (a nice maximum over
    # 0.75), so each bar's height is its value times the plot's height (250 - 34 - 56 px)
    expected = [v * 160 for pair in zip(reference, current, strict=True) for v in pair]
    assert rect_heights(svg) == pytest.approx(expected, abs=0.1)
    assert svg.count('data-series="current"') == 3


def test_plot_text_is_escaped() -> None:
    svg = paired_bars(["<script>"], [Series("a&b", [1.0])], title='"t"<')
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "a&amp;b" in svg


def test_feature_distributions_compare_binned_current_with_reference() -> None:
    reference = build_reference(SPEC, rows(2000, 0.0, 1))
    same, refused = feature_distributions(SPEC, reference, rows(1000, 0.0, 2))
    shifted, _ = feature_distributions(SPEC, reference, rows(1000, 25.0, 3))
    assert refused == 0 and [d.name for d in same] == ["salary", "car", "owner"]
    salary, car, owner = same
    assert len(salary.labels) == len(salary.reference) == len(salary.current) == 10
    assert sum(salary.current) == pytest.approx(1.0) and car.labels == ["1", "2", "3"]
    assert owner.current[1] == pytest.approx(0.3, abs=0.06)
    assert salary.psi is not None and salary.psi < 0.1
    assert shifted[0].psi is not None and shifted[0].psi > 1.0  # the salary shift shows
    assert shifted[0].current[-1] > 0.7  # most current values beyond the top decile
    _, refused = feature_distributions(SPEC, reference, [{"salary": 1.0, "car": "9",
                                                          "owner": True}])  # fmt: skip
    assert refused == 1


def test_alert_episodes_open_and_resolve_per_monitor() -> None:
    alerts = [alert("feature:salary", "open", 10), alert("prediction", "open", 20),
              alert("feature:salary", "resolved", 30), alert("feature:salary", "open", 40),
              alert("feature:car", "resolved", 15)]  # fmt: skip
    lanes = {lane.label: lane for lane in alert_lanes(alerts, T0 + timedelta(minutes=60))}
    salary = lanes["feature:salary"].spans
    assert [(s.start.minute, s.end.minute, s.open) for s in salary] == [(10, 30, False),
                                                                        (40, 0, True)]  # fmt: skip
    assert lanes["prediction"].spans[0].open
    assert lanes["feature:car"].spans[0].start == T0 + timedelta(minutes=10)  # window start
    svg = timeline(list(lanes.values()), T0, T0 + timedelta(minutes=60), title="alerts")
    assert svg.count('data-state="open"') == 2 and svg.count('data-state="resolved"') == 2
    widths = [float(w) for w in re.findall(r'data-state="resolved" x="[0-9.]+" y="[0-9.]+" '
                                             r'width="([0-9.]+)"', svg)]  # fmt: skip
    assert sorted(widths) == pytest.approx([678 * 5 / 60, 678 * 20 / 60], abs=0.2)


def test_latest_fairness_keeps_the_newest_report_per_attribute() -> None:
    reports = [{"attribute": "age_band", "generated_at": "2024-05-01T12:00:00Z", "n": 1},
               {"attribute": "age_band", "generated_at": "2024-05-01T13:00:00Z", "n": 2},
               {"attribute": "sex", "generated_at": "2024-05-01T11:00:00Z", "n": 3}]  # fmt: skip
    assert [r["n"] for r in latest_fairness(reports)] == [2, 3]


def test_the_report_has_every_section_with_drawn_plots_and_no_external_resources() -> None:
    html = render_report(report_data())
    for section in ("features", "scores", "alerts", "fairness"):
        assert f'<section id="{section}">' in html
    assert html.count('<svg class="plot"') == 3 + 1 + 1 + 1
    assert "2 events were not scorable" in html and "approve 200" in html
    assert "0.8 × 40-59" in html  # the fairness threshold line
    assert not re.search(r"\b(src|href)=\"(?!#)|url\(|@import|<script|<link", html)


def test_empty_topics_give_explicit_empty_sections() -> None:
    data = report_data(features=[], scores=[], decisions=Counter(), alerts=[], fairness=[],
                       events_read=0, events_undecodable=0)  # fmt: skip
    sections = {s.id: s for s in operator_sections(data)}
    assert "no drift alerts" in sections["alerts"].html
    assert "no fairness reports" in sections["fairness"].html
    assert "No recent decisions" in sections["scores"].intro
    assert all(f.caption == "no current values" for f in sections["features"].figures)


def test_pages_compose_sections_from_other_reports() -> None:
    extra = Section("replay", "Replay comparison", "two runs",
                    [Figure(paired_bars(["a"], [Series("run 1", [1.0])], title="r"))],
                    html=table(["k", "v"], [["x", "<1>"]]))  # fmt: skip
    html = render_page("Mixed", [*operator_sections(report_data()), extra])
    assert '<a href="#replay">Replay comparison</a>' in html and "&lt;1&gt;" in html


def test_since_accepts_timestamps_and_durations() -> None:
    assert parse_since("2h", T0) == T0 - timedelta(hours=2)
    assert parse_since("1.5d", T0) == T0 - timedelta(hours=36)
    assert parse_since("2024-05-01T10:00:00", T0) == T0 - timedelta(hours=2)
    with pytest.raises(ConfigError, match="--since 'yesterday'"):
        parse_since("yesterday", T0)


def test_timeline_without_lanes_still_draws_an_axis() -> None:
    svg = timeline([Lane("m", [Span(T0, T0)])], T0, T0 + timedelta(seconds=1), title="t")
    assert rect_heights(svg) == [14.0]  # a zero-length episode is still visible
