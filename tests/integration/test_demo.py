"""`scorer demo` (what `make run` shows): a model, live decisions, dead letters, a drift alert."""

from __future__ import annotations

import subprocess
import sys

from tests.integration.conftest import ScorerSetup


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
