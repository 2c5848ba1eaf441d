"""Thresholds for a stated false-alarm budget, calibrated on the reference by simulation.

**Budget.** A monitor kind has a budget ``B``: the expected number of events between two
false alarms (default 10,000,000). A window of ``n`` events may then raise a false alarm
with probability ``n / B``; the monitor's ``T`` tests (one per feature) share it evenly
(Bonferroni), so each test runs at ``alpha = n / (B * T)`` (one-sided tests at ``2 alpha``
on the symmetric statistic). The expected number of false alarms over ``E`` events is then
at most ``E / B`` whatever the window lengths, and an episode (one alert) needs at least one
false breach, so false *alerts* are rarer still.

**Threshold.** A test compares window counts with reference counts by the two-sample G
statistic (:mod:`streams.monitoring.likelihood_ratio`), asymptotically chi-square with
``k - 1`` degrees of freedom. Its finite-sample scale for *this* reference and window size
is calibrated by a parametric bootstrap from the reference: draw cell probabilities from
the posterior of the reference counts (Dirichlet ``R + 1/2``, so the reference's own
sampling error is included), draw a window of ``n`` events, compute G; the mean over the
draws divided by ``k - 1`` is a Bartlett factor ``b``, and the threshold is
``max(b, 1) * chi2.isf(alpha, k - 1)``. (Estimating a 1e-6 quantile directly would need
tens of millions of draws; Bartlett-corrected likelihood-ratio tails are accurate far out,
and measured tail rates at 1e-5 and 1e-6 over 10 million draws agreed with the nominal ones
to within a factor of about 1.5 for deciles, 20 skewed categories, a binary and cells of
1 % and 0.5 %; the floor at 1 keeps the rule conservative.)

**Window size.** Thresholds are computed at ``n`` rounded *down* to a geometric grid (eight
points per doubling) and cached, with ``alpha`` taken at the grid point: conservative, and
at most about 80 calibrations between 100 and 100,000 events. Draws are seeded from the
configured seed, ``n`` and the reference counts, so every process computes the same
thresholds.

**Power.** For a 0.5 standard-deviation mean shift of a normal feature binned at training
deciles, G is noncentral with noncentrality about ``0.22 n``; with 20 features at a budget
of 1e7, ``alpha = n / 2e8`` gives thresholds of 44.8 (n = 200), 42.6 (n = 500) and 41.0
(n = 1,000), against median G of 54, 121 and 229 (power 0.75, 1.00, 1.00 in simulation). A
window of about 500 events therefore detects such a shift in the first window that is
mostly shifted: within two windows, about 1,000 events.

>>> grid_events(500), grid_events(1000), grid_events(1024)
(469, 939, 1024)
>>> test = TwoSampleTest((1000, 1000, 1000, 1000), budget_events=1e7, tests=4)
>>> round(test.threshold(500), 1), test.alpha(500)
(26.0, 1.1725e-05)
"""

from __future__ import annotations

import functools
import math
import zlib
from dataclasses import dataclass

import numpy as np
from scipy import stats

from schemas.errors import MonitoringError
from streams.monitoring.likelihood_ratio import g_statistic

GRID_STEPS = 8
"""Grid points per doubling of the window size."""


def grid_events(n: int) -> int:
    """The largest grid size at or below ``n`` (``floor(2 ** (j / 8))`` for integer ``j``)."""
    if n < 1:
        raise MonitoringError(f"a window needs at least one event, got {n}")
    step = math.floor(GRID_STEPS * math.log2(n) + 1e-9)
    size = math.floor(2.0 ** (step / GRID_STEPS))
    while size > n:
        step -= 1
        size = math.floor(2.0 ** (step / GRID_STEPS))
    return max(1, size)


@functools.lru_cache(maxsize=16_384)
def bartlett_factor(reference: tuple[int, ...], events: int, draws: int, seed: int) -> float:
    """Mean of G over ``draws`` simulated null windows of ``events``, over ``k - 1``."""
    counts = np.asarray(reference, dtype=np.float64)
    tag = zlib.crc32(np.asarray(reference, dtype=np.int64).tobytes())
    rng = np.random.default_rng([seed, events, tag])
    probabilities = rng.dirichlet(counts + 0.5, size=draws)
    windows = rng.multinomial(events, probabilities)
    return float(g_statistic(windows, counts).mean() / (counts.size - 1))


@dataclass(frozen=True)
class TwoSampleTest:
    """A calibrated G test of one count vector against its reference counts.

    ``tests`` is how many tests share the monitor's budget; ``one_sided`` tests use twice
    the level on G and the caller checks the direction.
    """

    reference: tuple[int, ...]
    budget_events: float
    tests: int
    one_sided: bool = False
    draws: int = 20_000
    seed: int = 0

    def __post_init__(self) -> None:
        if len(self.reference) < 2 or sum(self.reference) < 1:
            raise MonitoringError(f"a test needs two cells and a reference, got {self.reference}")

    @property
    def cells(self) -> int:
        return len(self.reference)

    def alpha(self, events: int) -> float:
        """The test's level for a window of ``events`` (taken at its grid size)."""
        level = grid_events(events) / (self.budget_events * self.tests)
        return min(0.5, 2.0 * level if self.one_sided else level)

    def threshold(self, events: int) -> float:
        """The G value above which a window of ``events`` breaches."""
        return _threshold(self, grid_events(events))

    @functools.cached_property
    def reference_array(self) -> np.ndarray:
        return np.asarray(self.reference, dtype=np.float64)

    def statistic(self, counts: np.ndarray) -> float:
        return float(g_statistic(counts, self.reference_array))


@functools.lru_cache(maxsize=65_536)
def _threshold(test: TwoSampleTest, size: int) -> float:
    factor = bartlett_factor(test.reference, size, test.draws, test.seed)
    return float(max(factor, 1.0) * stats.chi2.isf(test.alpha(size), test.cells - 1))


def reference_counts(proportions: list[float], count: int) -> tuple[int, ...]:
    """Counts behind reference shares of ``count`` values (shares are exact ratios)."""
    return tuple(round(p * count) for p in proportions)
