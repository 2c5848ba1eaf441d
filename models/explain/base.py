"""The explainer protocol: exact, additive attributions of a model's raw output.

An explainer turns a dense float64 design matrix (events × columns) into one
:class:`ExplanationBatch`: a base value shared by every row plus one contribution per
column, such that ``base_value + contributions.sum(axis=1) == raw`` up to rounding, where
``raw`` is the model's raw output (log-odds for a binary classifier). Grouping columns back
into input features is the caller's business; explainers only see columns.

>>> import numpy as np
>>> batch = ExplanationBatch(
...     base_value=0.5,
...     contributions=np.array([[1.0, -0.25]]),
...     raw=np.array([1.25]),
...     method="linear",
... )
>>> batch.additivity_error().tolist()
[0.0]
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from operator import add
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from schemas.errors import ExplainerError

FloatArray = npt.NDArray[np.float64]

_FEW_ROWS = 8
"""Up to this many rows, :func:`row_sums` adds in Python (a small batch's fixed cost)."""


@dataclass(frozen=True)
class ExplanationBatch:
    """Attributions of one batch of events, in the model's raw output space."""

    base_value: float
    """E[f] in raw space under the explainer's reference distribution; the same for every row."""
    contributions: FloatArray
    """(n, n_columns) float64: one additive contribution per column."""
    raw: FloatArray
    """(n,) the model's raw output (log-odds), computed by the explainer's own path."""
    method: str
    """"linear", "tree_shap", "river_linear", or for a booster its own contributions
    ("lightgbm_contrib", "xgboost_contrib")."""
    per_feature: bool = False
    """True when ``contributions`` are already one per input feature (a model from
    elsewhere, explained in the user's raw columns) rather than one per design-matrix
    column."""

    def __len__(self) -> int:
        return int(self.raw.shape[0])

    def additivity_error(self) -> FloatArray:
        """Per row ``|base_value + Σ contributions − raw|``: rounding only, never approximation."""
        total = self.base_value + self.contributions.sum(axis=1)
        return np.asarray(np.abs(total - self.raw), dtype=np.float64)


@runtime_checkable
class Explainer(Protocol):
    """What the scoring core needs from an explainer: exact attributions and the raw output."""

    method: str

    def explain(self, X: FloatArray) -> ExplanationBatch:
        """Attribute the raw output of every row of ``X`` (n × n_columns) to its columns."""
        ...

    def raw_output(self, X: FloatArray) -> FloatArray:
        """The raw output (log-odds) of every row of ``X``, without attributions."""
        ...


def row_sums(terms: FloatArray) -> FloatArray:
    """Sum each row of ``terms`` (n, k) strictly left to right.

    A sequential accumulation gives every row the same bits whatever the other rows of the
    batch, unlike BLAS or numpy's pairwise reductions whose order depends on the shape; so
    an event's output does not depend on the micro-batch it arrived in.
    """
    n, k = terms.shape
    if k == 0:
        return np.zeros(n)
    if n <= _FEW_ROWS:  # Python floats add in the same IEEE order, without numpy's per-call cost
        return np.array([reduce(add, row) for row in terms.tolist()], dtype=np.float64)
    if k > 64:
        return np.asarray(np.cumsum(terms, axis=1)[:, -1], dtype=np.float64)
    total = terms[:, 0].astype(np.float64)  # a copy; same order as cumsum, but faster
    for column in range(1, k):
        total += terms[:, column]
    return total


def as_design_matrix(X: npt.ArrayLike, n_columns: int) -> FloatArray:
    """``X`` as a 2-D float64 array with ``n_columns`` columns; never a copy when it already is.

    Explainers only read the result, so a caller's array is never modified.
    """
    try:
        array = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ExplainerError(f"design matrix is not numeric: {exc}") from exc
    if array.ndim != 2 or array.shape[1] != n_columns:
        raise ExplainerError(
            f"design matrix must have shape (n, {n_columns}), got {tuple(array.shape)}"
        )
    return array
