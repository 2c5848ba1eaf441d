"""Exact, additive explanations of a model's raw output (log-odds), vectorised over batches.

Every explainer follows :class:`Explainer`: ``explain(X)`` returns an
:class:`ExplanationBatch` whose ``base_value + contributions.sum(axis=1)`` equals the raw
output ``raw`` up to rounding, per column of the design matrix:

- :class:`LinearExplainer`: scikit-learn linear models, weight × centred input;
- :class:`TreeShapExplainer`: scikit-learn trees, forests and gradient boosting, exact
  TreeSHAP (of the probability of class 1 for trees and forests of classifiers, see
  :attr:`TreeShapExplainer.output_space`);
- :class:`RiverLinearExplainer`: river logistic regression, weight × (scaled) input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy.typing as npt

from models.explain.base import Explainer, ExplainerError, ExplanationBatch
from models.explain.linear import LinearExplainer
from models.explain.river_linear import RiverLinearExplainer
from models.explain.treeshap import TREE_MODELS, TreeShapExplainer

__all__ = [
    "Explainer",
    "ExplainerError",
    "ExplanationBatch",
    "LinearExplainer",
    "RiverLinearExplainer",
    "TreeShapExplainer",
    "explainer_for",
]


def explainer_for(
    model: Any,
    *,
    columns: Sequence[str] | None = None,
    reference_mean: npt.ArrayLike | None = None,
) -> Explainer:
    """The exact explainer for a fitted model.

    ``columns`` (the design matrix's column names, in order) is needed for river models,
    ``reference_mean`` (the training mean of the design matrix) for linear models.
    """
    if type(model).__module__.startswith("river."):
        if columns is None:
            raise ExplainerError("a river model needs the ordered column names")
        return RiverLinearExplainer(model, columns)
    if isinstance(model, TREE_MODELS):
        return TreeShapExplainer(model)
    return LinearExplainer.from_model(model, reference_mean=reference_mean)
