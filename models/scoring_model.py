"""A registered model version made ready to score: raw output, explainer, spec and policy.

:class:`ScoringModel` is what the scoring core holds. It is built once per loaded version
(at start-up and at each hot swap), never per batch. ``raw_output`` is the model's own
log-odds (scikit-learn's ``decision_function`` on the whole batch, one call); the explainer
attributes that output exactly, and the difference between the two is reported per event
as the explanation's additivity error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from models.explain.base import Explainer, FloatArray
from models.explain.linear import LinearExplainer
from models.explain.treeshap import TreeShapExplainer
from models.featurespec import FeatureSpec
from models.manifest import ModelManifest
from models.policy import Policy
from schemas.errors import ScoringError

if TYPE_CHECKING:  # the registry checks versions with this module, so no import at run time
    from models.registry import LoadedModel


def probability(raw: FloatArray) -> FloatArray:
    """The served score: the logistic function of the raw output (log-odds), stable for
    large ``|raw|``.

    >>> probability(np.array([0.0, 800.0, -800.0])).tolist()
    [0.5, 1.0, 0.0]
    """
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * raw)), dtype=np.float64)


@dataclass(frozen=True)
class ScoringModel:
    """One model version, compiled for batch scoring and explanation."""

    manifest: ModelManifest
    explainer: Explainer
    raw_output: Callable[[FloatArray], FloatArray]
    estimator: Any = field(repr=False)

    @property
    def spec(self) -> FeatureSpec:
        return self.manifest.feature_spec

    @property
    def policy(self) -> Policy:
        return self.manifest.policy

    @property
    def ref(self) -> dict[str, Any]:
        """The ModelRef of every record this version produces."""
        return {
            "name": self.manifest.name,
            "version": self.manifest.version,
            "sha256": self.manifest.artifact.sha256,
        }

    @property
    def label(self) -> str:
        return f"{self.manifest.name} v{self.manifest.version}"

    @classmethod
    def from_loaded(cls, loaded: LoadedModel) -> ScoringModel:
        manifest, estimator = loaded.manifest, loaded.estimator
        constants = manifest.explainer
        if manifest.kind == "logistic":
            explainer: Explainer = LinearExplainer.from_model(
                estimator, reference_mean=constants.get("reference_mean")
            )
            raw = _sklearn_raw(estimator)
        elif manifest.kind == "gbt":
            explainer = TreeShapExplainer(estimator)
            raw = _sklearn_raw(estimator)
        elif manifest.kind == "river-logistic":
            explainer = _river_explainer(estimator, manifest)
            raw = explainer.raw_output
        else:  # pragma: no cover - ModelManifest.kind is a closed Literal
            raise ScoringError(f"no scorer for model kind {manifest.kind!r}")
        width = len(manifest.feature_spec.columns)
        if getattr(explainer, "n_columns", width) != width:
            raise ScoringError(
                f"{manifest.name} v{manifest.version}: the model expects "
                f"{getattr(explainer, 'n_columns', '?')} columns, its feature spec has {width}"
            )
        return cls(manifest=manifest, explainer=explainer, raw_output=raw, estimator=estimator)


def _sklearn_raw(estimator: Any) -> Callable[[FloatArray], FloatArray]:
    def raw(X: FloatArray) -> FloatArray:
        return np.asarray(estimator.decision_function(X), dtype=np.float64).reshape(-1)

    return raw


def _river_explainer(estimator: Any, manifest: ModelManifest) -> Explainer:
    from models.explain.river_linear import RiverLinearExplainer

    return RiverLinearExplainer.from_manifest_constants(
        estimator, manifest.feature_spec.columns, manifest.explainer
    )
