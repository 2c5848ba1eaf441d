"""Exact explanations of a river online logistic regression: weight times (scaled) input.

River's ``LogisticRegression`` outputs ``sigmoid(intercept + Σ_j w_j z_j)``, so its log-odds
are additive in the columns with the reference point ``z = 0``: each column contributes
``w_j · z_j`` and the base value is the intercept. ``z`` is the design-matrix column after
the optional fixed standardisation done outside river at training, ``(x_j − mean_j) /
scale_j`` (the manifest's ``scale_mean`` and ``scale_std``), and then after a river
``StandardScaler`` when the model is such a pipeline (zero when the running variance is zero,
as river does); either way the reference point is a mean of the inputs. The model keeps
learning, so the weights and statistics are read afresh at every call: each batch is
explained with one consistent snapshot of the model as it is at that moment.

>>> import numpy as np
>>> from river import linear_model
>>> model = linear_model.LogisticRegression()
>>> model.learn_one({"a": 1.0, "b": 2.0}, True)
>>> explainer = RiverLinearExplainer(model, columns=["a", "b", "c"])
>>> batch = explainer.explain(np.array([[1.0, 2.0, 3.0]]))
>>> batch.base_value, batch.contributions.round(3).tolist()
(0.005, [[0.005, 0.02, 0.0]])
>>> bool(abs(batch.base_value + batch.contributions.sum() - batch.raw[0]) < 1e-12)
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from river import compose, linear_model, preprocessing

from models.explain.base import (
    ExplainerError,
    ExplanationBatch,
    FloatArray,
    as_design_matrix,
    row_sums,
)


def _unpack(model: Any) -> tuple[preprocessing.StandardScaler | None, Any]:
    steps = list(model.steps.values()) if isinstance(model, compose.Pipeline) else [model]
    *transformers, estimator = steps
    if not isinstance(estimator, linear_model.LogisticRegression):
        raise ExplainerError(f"river explainer does not support {type(estimator).__name__}")
    if len(transformers) > 1 or not all(
        isinstance(step, preprocessing.StandardScaler) for step in transformers
    ):
        names = ", ".join(type(step).__name__ for step in transformers)
        raise ExplainerError(f"only a StandardScaler may precede the regression, found {names}")
    return (transformers[0] if transformers else None), estimator


def _statistic(values: Any, column: str) -> float:
    """A scaler statistic without touching river's defaultdicts (reading would insert)."""
    value = values.get(column)
    if value is None:
        return 0.0
    return float(value.get()) if hasattr(value, "get") else float(value)


class RiverLinearExplainer:
    """Explains a river LogisticRegression, bare or behind a StandardScaler, over ``columns``."""

    method = "river_linear"

    def __init__(
        self,
        model: Any,
        columns: Sequence[str],
        *,
        input_mean: npt.ArrayLike | None = None,
        input_scale: npt.ArrayLike | None = None,
    ) -> None:
        self._scaler, self._regression = _unpack(model)
        self.columns = tuple(columns)
        if len(set(self.columns)) != len(self.columns):
            raise ExplainerError("column names must be unique")
        self.n_columns = len(self.columns)
        self._input_mean = self._fixed(input_mean, "input_mean", 0.0)
        self._input_scale = self._fixed(input_scale, "input_scale", 1.0)
        if np.any(self._input_scale == 0.0):
            raise ExplainerError("input_scale must not hold zeros")

    def _fixed(self, values: npt.ArrayLike | None, name: str, default: float) -> FloatArray:
        if values is None:
            return np.full(self.n_columns, default)
        vector = np.array(values, dtype=np.float64).reshape(-1)
        if vector.shape != (self.n_columns,) or not np.all(np.isfinite(vector)):
            raise ExplainerError(f"{name} must hold {self.n_columns} finite numbers")
        vector.setflags(write=False)
        return vector

    @classmethod
    def from_manifest_constants(
        cls, model: Any, columns: Sequence[str], constants: dict[str, Any]
    ) -> RiverLinearExplainer:
        """From the manifest's explainer constants: ``scale_mean`` and ``scale_std`` (the
        standardisation applied to the design matrix before river saw it), if present."""
        method = constants.get("method", cls.method)
        if method != cls.method:
            raise ExplainerError(f"constants are for method {method!r}, not {cls.method!r}")
        recorded = constants.get("columns")
        if recorded is not None and list(recorded) != list(columns):
            raise ExplainerError("the constants were recorded for other columns")
        return cls(
            model,
            columns,
            input_mean=constants.get("scale_mean"),
            input_scale=constants.get("scale_std"),
        )

    @property
    def base_value(self) -> float:
        """The current intercept: the log-odds at the reference point."""
        return float(self._regression.intercept)

    def _snapshot(self) -> tuple[FloatArray, float, FloatArray, FloatArray | None]:
        """Weights (0 where absent), intercept, and the scaler's means and deviations."""
        weights = self._regression.weights
        w = np.array([float(weights.get(column, 0.0)) for column in self.columns])
        intercept = float(self._regression.intercept)
        scaler = self._scaler
        if scaler is None:
            return w, intercept, np.zeros(self.n_columns), None
        means = np.array([_statistic(scaler.means, column) for column in self.columns])
        if not scaler.with_std:
            return w, intercept, means, None
        # v ** 0.5 rather than np.sqrt: the same operation as river, hence the same bits.
        stds = [_statistic(scaler.vars, column) ** 0.5 for column in self.columns]
        return w, intercept, means, np.array(stds, dtype=np.float64)

    def _terms(self, X: npt.ArrayLike) -> tuple[FloatArray, float]:
        """Per-column terms ``w_j · z_j`` of the model's dot product, and the intercept."""
        X = as_design_matrix(X, self.n_columns)
        w, intercept, means, stds = self._snapshot()
        z = (X - self._input_mean) / self._input_scale - means
        if stds is not None:
            z = np.divide(z, stds, out=np.zeros_like(z), where=stds != 0)
        return z * w, intercept

    def raw_output(self, X: npt.ArrayLike) -> FloatArray:
        """Log-odds ``intercept + Σ w_j z_j``, as river computes them before its sigmoid."""
        terms, intercept = self._terms(X)
        return row_sums(terms) + intercept

    def explain(self, X: npt.ArrayLike) -> ExplanationBatch:
        """Contributions ``w_j · z_j`` from one snapshot of the model."""
        terms, intercept = self._terms(X)
        return ExplanationBatch(
            base_value=intercept,
            contributions=terms,
            raw=row_sums(terms) + intercept,
            method=self.method,
        )
