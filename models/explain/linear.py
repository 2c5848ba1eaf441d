"""Exact explanations of a linear model: weight times centred input.

A (scaled) logistic regression is linear in its input, ``f(x) = w·x + b`` once the scaler is
folded into the weights (``w = coef / scale``, ``b = intercept − w·mean``). Against a reference
point ``μ`` (the training mean), ``f(x) = (b + w·μ) + Σ_j w_j (x_j − μ_j)``, which is
additive and is the Shapley decomposition of ``f`` when the columns are independent. Only the
three arrays are kept, so a manifest can rebuild the explainer without the model.

>>> import numpy as np
>>> explainer = LinearExplainer([2.0, -1.0], intercept=0.5, reference_mean=[1.0, 0.0])
>>> batch = explainer.explain(np.array([[3.0, 4.0]]))
>>> batch.base_value, batch.contributions.tolist(), batch.raw.tolist()
(2.5, [[4.0, -4.0]], [2.5])
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from models.explain.base import (
    ExplainerError,
    ExplanationBatch,
    FloatArray,
    as_design_matrix,
    row_sums,
)


def _frozen_vector(values: npt.ArrayLike, name: str) -> FloatArray:
    vector = np.array(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(vector)):
        raise ExplainerError(f"{name} must be finite")
    vector.setflags(write=False)
    return vector


class LinearExplainer:
    """Explains ``X @ weights + intercept`` as ``weights * (X − reference_mean)`` plus a base."""

    method = "linear"

    def __init__(
        self, weights: npt.ArrayLike, intercept: float, reference_mean: npt.ArrayLike
    ) -> None:
        self.weights = _frozen_vector(weights, "weights")
        self.reference_mean = _frozen_vector(reference_mean, "reference_mean")
        if self.weights.shape != self.reference_mean.shape:
            raise ExplainerError(
                f"weights {self.weights.shape} and reference_mean "
                f"{self.reference_mean.shape} differ in shape"
            )
        self.intercept = float(intercept)
        self.n_columns = int(self.weights.shape[0])
        self.base_value = float(self.intercept + self.weights @ self.reference_mean)

    @classmethod
    def from_model(cls, model: Any, reference_mean: npt.ArrayLike | None = None) -> LinearExplainer:
        """From a fitted binary linear classifier, bare or after an optional StandardScaler.

        ``reference_mean`` is the training mean of ``X``; it defaults to the scaler's ``mean_``
        and is required when there is no scaler to supply it.
        """
        scaler: StandardScaler | None = None
        estimator = model
        if isinstance(model, Pipeline):
            steps = [step for _, step in model.steps if step not in (None, "passthrough")]
            estimator = steps[-1] if steps else None
            for step in steps[:-1]:
                if not isinstance(step, StandardScaler) or scaler is not None:
                    raise ExplainerError(
                        "a linear pipeline may hold at most one StandardScaler before the "
                        f"estimator, found {type(step).__name__}"
                    )
                scaler = step
        coef = getattr(estimator, "coef_", None)
        if coef is None or not hasattr(estimator, "intercept_"):
            raise ExplainerError(f"{type(estimator).__name__} is not a fitted linear model")
        coef = np.asarray(coef, dtype=np.float64)
        if coef.ndim == 2 and coef.shape[0] != 1:
            raise ExplainerError("only binary (single-output) linear models are supported")
        weights = coef.reshape(-1)
        intercept = float(np.asarray(estimator.intercept_, dtype=np.float64).reshape(-1)[0])
        if scaler is not None:
            scale = scaler.scale_ if scaler.with_std else np.ones_like(weights)
            shift = scaler.mean_ if scaler.with_mean else np.zeros_like(weights)
            weights = weights / np.asarray(scale, dtype=np.float64)
            intercept -= float(weights @ np.asarray(shift, dtype=np.float64))
            if reference_mean is None and scaler.mean_ is not None:
                reference_mean = scaler.mean_
        if reference_mean is None:
            raise ExplainerError(
                "reference_mean (the training mean of X) is required without a StandardScaler"
            )
        return cls(weights, intercept, reference_mean)

    def raw_output(self, X: npt.ArrayLike) -> FloatArray:
        """``X @ weights + intercept``: the model's decision function."""
        X = as_design_matrix(X, self.n_columns)
        return row_sums(X * self.weights) + self.intercept

    def explain(self, X: npt.ArrayLike) -> ExplanationBatch:
        """Contributions ``weights * (x − reference_mean)`` for every row of ``X``."""
        X = as_design_matrix(X, self.n_columns)
        contributions = (X - self.reference_mean) * self.weights
        return ExplanationBatch(
            base_value=self.base_value,
            contributions=contributions,
            raw=self.raw_output(X),
            method=self.method,
        )

    def to_constants(self) -> dict[str, Any]:
        """JSON-serialisable constants from which :meth:`from_constants` rebuilds this."""
        return {
            "method": self.method,
            "weights": self.weights.tolist(),
            "intercept": self.intercept,
            "reference_mean": self.reference_mean.tolist(),
        }

    @classmethod
    def from_constants(cls, constants: dict[str, Any]) -> LinearExplainer:
        """Rebuild from the output of :meth:`to_constants` (for example a manifest)."""
        method = constants.get("method", cls.method)
        if method != cls.method:
            raise ExplainerError(f"constants are for method {method!r}, not {cls.method!r}")
        try:
            return cls(constants["weights"], constants["intercept"], constants["reference_mean"])
        except KeyError as exc:
            raise ExplainerError(f"linear explainer constants lack {exc.args[0]!r}") from exc
