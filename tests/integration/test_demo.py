"""`scorer demo` (what `make run` shows): a model, live decisions, dead letters, a drift alert."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.support.scorer import ScorerSetup


def test_demo_trains_serves_and_alerts(scorer_setup: ScorerSetup) -> None:
    env = {**scorer_setup.env, "SCORER_REGISTRY": str(scorer_setup.registry.root / "fresh"),
           "SCORER_METRICS_PORT": "0", "SCORER_MONITOR_LATENESS_SECONDS": "0.5"}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", "demo", "--kind", "logistic", "--count", "12000",
         "--rate", "3000", "--drift-at", "4500", "--window-seconds", "1"],
        env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "registered demo v1" in out and "as champion" in out
    summary = out.strip().splitlines()[-1]
    assert "published 12,000 events, 11,880 decisions, 120 dead letters" in summary
    alerted = int(summary.split(" dead letters, ")[1].split(" drift")[0])
    assert alerted >= 1, out[-3000:]
    assert "feature:loan" in out
    # the final figures are the run's own (mean throughput, whole-run latency), never zero
    # (off a terminal the live view's last line has no newline: the line may follow it)
    runs = [line.split("run: ", 1)[1] for line in out.splitlines() if "run: " in line]
    assert len(runs) == 1, out[-3000:]
    run = runs[0]
    figures = re.search(r"throughput ([\d,]+) /s \(mean\), end-to-end p50 / p99 (\d+) / (\d+)", run)
    assert figures, run
    rate, p50, p99 = (int(g.replace(",", "")) for g in figures.groups())
    assert rate > 0 and p99 > 0 and p50 <= p99, run
    assert "11,880 decisions" in run
