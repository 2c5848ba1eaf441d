"""False alarms under the budget: none on 1,000,000 stationary events, and honest rates.

The stream is drawn from the same distributions as the reference sample (20 features, two
nullable, plus scores); windows of 50 s at 10 events/s hold 500 events.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from streams.monitoring import MonitorConfig, MonitorSet
from streams.monitoring.calibration import TwoSampleTest
from streams.monitoring.likelihood_ratio import g_statistic
from tests.support.synthetic import SyntheticModel

DRIFT_KINDS = ("feature", "missing", "prediction")


def run_stationary(
    synthetic: SyntheticModel, events: int, budget: float, seed: int
) -> tuple[list[dict], MonitorSet]:
    config = MonitorConfig(
        window_seconds=50.0, lateness_seconds=5.0, event_partitions=4, budget_events=budget
    )
    monitors = MonitorSet(synthetic.manifest, config)
    rng = np.random.default_rng(seed)
    records: list[dict] = []
    for start in range(0, events, 20_000):
        batch, _ = synthetic.batch(rng, start, min(20_000, events - start))
        records += monitors.observe(batch)
    records += monitors.flush()
    return [r for r in records if "alert_id" in r], monitors


def test_no_drift_alert_in_a_million_stationary_events(synthetic: SyntheticModel) -> None:
    alerts, monitors = run_stationary(synthetic, 1_000_000, budget=1e7, seed=101)
    counters = monitors.stats()["counters"]
    assert len(monitors.monitors["events"]) == 20 + 2 + 1  # features, missing rates, scores
    assert counters["events.counted"] == 1_000_000
    assert counters["events.windows"] == 2_000
    assert counters["tests.feature"] == 2_000 * 20
    assert alerts == []
    expected = monitors.stats()["expected_false_breaches"]
    # the budget says 1e6 / 1e7 = 0.1 false breaches per kind; grid rounding makes it less
    assert all(0.05 < expected[kind] <= 0.1 for kind in DRIFT_KINDS)


def test_false_breach_rate_matches_a_loose_budget(synthetic: SyntheticModel) -> None:
    """At a budget of 1 per 20,000 events the breaches are countable: about 25 per kind in
    500,000 events. Not more than the budget (up to Poisson noise), and not uselessly
    conservative either."""
    _, monitors = run_stationary(synthetic, 500_000, budget=2e4, seed=202)
    stats = monitors.stats()
    counters, expected = stats["counters"], stats["expected_false_breaches"]
    for kind in DRIFT_KINDS:
        assert 20.0 < expected[kind] <= 25.0
        assert counters.get(f"breaches.{kind}", 0) <= expected[kind] + 3 * math.sqrt(expected[kind])
    observed = sum(counters.get(f"breaches.{kind}", 0) for kind in DRIFT_KINDS)
    assert observed >= 0.5 * sum(expected[kind] for kind in DRIFT_KINDS)


@pytest.mark.parametrize(
    "shares",
    [
        [0.1] * 10,
        [0.95, 0.045, 0.005],  # a rare cell: where Pearson's chi-square fails
        [0.6, 0.3, 0.07, 0.02, 0.01],
        [0.3, 0.7],
    ],
    ids=["deciles", "rare-cell", "skewed", "binary"],
)
def test_threshold_level_holds_by_direct_simulation(shares: list[float]) -> None:
    """200,000 null windows of 500 events against a 20,000-row reference, at level 1e-3."""
    reference = tuple(round(s * 20_000) for s in shares)
    test = TwoSampleTest(reference, budget_events=500 / 1e-3, tests=1)
    alpha, threshold = test.alpha(500), test.threshold(500)
    rng = np.random.default_rng(7)
    truth = rng.dirichlet(np.asarray(reference) + 0.5, size=200_000)  # reference error included
    windows = rng.multinomial(500, truth)
    rate = float((g_statistic(windows, np.asarray(reference)) > threshold).mean())
    assert 0.4 * alpha <= rate <= 1.3 * alpha, (rate, alpha)
