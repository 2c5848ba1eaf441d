"""The report as a browser draws it: headless Chromium renders the page and every plot.

The probe (:mod:`tests.support.browser`), added to a copy of the page for the test only,
measures each ``svg.plot`` in the laid-out page, then draws it onto a canvas and counts the
coloured pixels there. Chromium is Debian's package (``make browser`` installs it).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from streams.report.sections import render_report
from tests.support.browser import assert_plots_drawn, probe_page, screenshot
from tests.support.report import report_data


def test_chromium_draws_every_plot_of_the_report(tmp_path: Path) -> None:
    html = render_report(report_data())
    probe = probe_page(html, tmp_path)
    assert_plots_drawn(probe, Counter({"salary (numeric)": 1, "car (categorical)": 1,
                                       "owner (boolean)": 1, "model score": 1,
                                       "drift-alert episodes": 1,
                                       "age_band: selection rate": 1}))  # fmt: skip
    tops = [p["top"] for p in probe["plots"]]
    assert tops == sorted(tops)  # features, scores, alerts, fairness: top to bottom
    page = tmp_path / "report.html"
    page.write_text(html, encoding="utf-8")
    assert screenshot(page, tmp_path, probe["height"]) == (1280, probe["height"])
