"""The two-sample likelihood-ratio (G) statistic of window counts against reference counts.

For window counts ``c`` (``n`` events) and reference counts ``R`` (``N`` events) over the
same ``k`` cells, with pooled shares ``pi = (c + R) / (n + N)``::

    G = 2 * sum(c * ln(c / (n * pi)) + R * ln(R / (N * pi)))          (0 * ln 0 = 0)

is the likelihood-ratio statistic of "both samples come from one distribution". Under that
hypothesis it is asymptotically chi-square with ``k - 1`` degrees of freedom *whatever the
cell probabilities*, and it treats the reference as the finite sample it is (a window is
not compared with the truth but with ``N`` training rows). Pearson's chi-square was
rejected: its far tail is much heavier than chi-square when a cell is rare (measured: at a
nominal 1e-6 the true rate was up to 30 times higher for a 1 % cell), whereas G stayed
within a factor of about 1.5 of the nominal rate down to 1e-6 for every case tried.

PSI (population stability index, ``sum((q - p) * ln(q / p))`` over shares smoothed by half
a count per cell) is reported beside it for operators used to it; it is not the test.

>>> float(g_statistic(np.array([50, 50]), np.array([500, 500])))
0.0
>>> round(float(g_statistic(np.array([80, 20]), np.array([500, 500]))), 3)
35.275
>>> round(psi(np.array([80, 20]), np.array([500, 500])), 3)
0.406
"""

from __future__ import annotations

import numpy as np


def _xlogx_over(x: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """``x * ln(x / expected)`` with ``0 * ln 0 = 0``."""
    safe_x = np.where(x > 0, x, 1.0)
    safe_e = np.where(expected > 0, expected, 1.0)
    return np.where(x > 0, x * np.log(safe_x / safe_e), 0.0)


def g_statistic(counts: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """G of each row of ``counts`` (shape ``(..., k)``) against ``reference`` (``(k,)``)."""
    c = np.asarray(counts, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if c.ndim == 1:
        return np.asarray(_g_one(c, r))
    n = c.sum(axis=-1, keepdims=True)
    total = r.sum()
    pooled = (c + r) / (n + total)
    g = 2.0 * (_xlogx_over(c, n * pooled) + _xlogx_over(r, total * pooled)).sum(axis=-1)
    return np.maximum(g, 0.0)  # rounding can leave -1e-13 for identical shares


def _g_one(c: np.ndarray, r: np.ndarray) -> float:
    """G of one count vector (the per-window path: no temporaries over empty cells)."""
    n, total = c.sum(), r.sum()
    both = (c + r) / (n + total)
    seen, known = c > 0, r > 0
    g = (c[seen] * np.log(c[seen] / (n * both[seen]))).sum()
    g += (r[known] * np.log(r[known] / (total * both[known]))).sum()
    return max(2.0 * float(g), 0.0)


def psi(counts: np.ndarray, reference: np.ndarray) -> float:
    """Population stability index of window shares against reference shares."""
    c = np.asarray(counts, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    k = c.size
    q = (c + 0.5) / (c.sum() + 0.5 * k)
    p = (r + 0.5) / (r.sum() + 0.5 * k)
    return float(((q - p) * np.log(q / p)).sum())


def shares(counts: np.ndarray) -> list[float]:
    """Counts as shares (all zeros when empty), JSON-able."""
    total = counts.sum()
    return [float(x) for x in (counts / total if total else np.zeros(counts.size))]
