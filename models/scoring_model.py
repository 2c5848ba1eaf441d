"""A registered model version made ready to score: raw output, explainer, spec and policy.

:class:`ScoringModel` is what the scoring core holds. It is built once per loaded version
(at start-up and at each hot swap), never per batch. ``raw_output`` is the model's own
output (scikit-learn's ``decision_function`` on the whole batch, one call); the explainer
attributes that output exactly, and the difference between the two is reported per event
as the explanation's additivity error.

The output lives in the version's :attr:`~ScoringModel.output_space`: log-odds for every
model trained here, for linear and boosted models from elsewhere; probability for a random
forest (an average of tree probabilities). :meth:`ScoringModel.score` turns it into the
served score, the probability of the adverse outcome. A model from elsewhere
(:mod:`models.external`) reads the user's raw columns: its explainer turns the validated
design matrix back into those columns and gives one contribution per feature.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from models.explain.base import Explainer, ExplanationBatch, FloatArray, row_sums
from models.explain.linear import LinearExplainer
from models.explain.treeshap import TreeShapExplainer
from models.external.base import ExternalModel, OutputSpace, RawBatch, raw_batch
from models.external.families import EXTERNAL_KINDS, family_for_kind
from models.featurespec import FeatureSpec
from models.manifest import ModelManifest
from models.policy import Policy
from models.reference import reference_sample
from schemas.errors import ScoringError

if TYPE_CHECKING:  # the registry checks versions with this module, so no import at run time
    from models.registry import LoadedModel

log = logging.getLogger(__name__)

CHECK_ROWS = 64
"""Rows on which a compiled raw output is compared with the library's at load."""
COMPILED_TOLERANCE = 1e-9
"""Largest difference allowed between the compiled raw output and the library's."""


def probability(raw: FloatArray) -> FloatArray:
    """The served score: the logistic function of the raw output (log-odds), stable for
    large ``|raw|``.

    >>> probability(np.array([0.0, 800.0, -800.0])).tolist()
    [0.5, 1.0, 0.0]
    """
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * raw)), dtype=np.float64)


def served_score(raw: FloatArray, output_space: OutputSpace) -> FloatArray:
    """The probability of the adverse outcome from raw outputs in ``output_space``: their
    logistic function for log-odds, the output itself (clipped to [0, 1]) for probability."""
    if output_space == "probability":
        return np.clip(np.asarray(raw, dtype=np.float64), 0.0, 1.0)
    return probability(raw)


@dataclass(frozen=True)
class ScoringModel:
    """One model version, compiled for batch scoring and explanation."""

    manifest: ModelManifest
    explainer: Explainer
    raw_output: Callable[[FloatArray], FloatArray]
    estimator: Any = field(repr=False)
    output_space: OutputSpace = "log_odds"

    def score(self, raw: FloatArray) -> FloatArray:
        """The served score (probability of the adverse outcome) of raw outputs ``raw``."""
        return served_score(raw, self.output_space)

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
        if manifest.kind in EXTERNAL_KINDS:
            family = family_for_kind(manifest.kind)
            external = family.compile(estimator, manifest.feature_spec, constants)
            columns = RawColumnExplainer(manifest.feature_spec, external)
            return cls(
                manifest=manifest,
                explainer=columns,
                raw_output=columns.raw_output,
                estimator=estimator,
                output_space=external.output_space,
            )
        if manifest.kind == "logistic":
            explainer: Explainer = LinearExplainer.from_model(
                estimator, reference_mean=constants.get("reference_mean")
            )
            raw = _checked(manifest, estimator, _linear_raw(estimator))
        elif manifest.kind == "gbt":
            explainer = TreeShapExplainer(estimator)
            raw = _checked(manifest, estimator, _boosted_raw(estimator))
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


def _linear_raw(estimator: Any) -> Callable[[FloatArray], FloatArray] | None:
    """A (StandardScaler +) LogisticRegression's ``decision_function`` without its per-call
    input checks: ``(X − mean) / scale`` as the scaler computes it, then each row's terms
    ``z · coef`` added left to right (:func:`row_sums`), so an event's output has the same
    bits whatever batch it is in (a BLAS product's rounding depends on the batch's shape).
    None for any other shape of pipeline (the library is then called)."""
    steps = estimator.steps if isinstance(estimator, Pipeline) else [("model", estimator)]
    *scalers, (_, final) = steps
    if not isinstance(final, LogisticRegression) or len(scalers) > 1:
        return None
    coef = np.asarray(final.coef_, dtype=np.float64)
    if coef.shape[0] != 1:
        return None
    weights, intercept = coef.reshape(-1), float(np.asarray(final.intercept_).reshape(-1)[0])
    if not scalers:
        return lambda X: row_sums(X * weights) + intercept
    scaler = scalers[0][1]
    if not isinstance(scaler, StandardScaler) or not (scaler.with_mean and scaler.with_std):
        return None
    mean, scale = np.asarray(scaler.mean_), np.asarray(scaler.scale_)
    return lambda X: row_sums((X - mean) / scale * weights) + intercept


def _boosted_raw(estimator: Any) -> Callable[[FloatArray], FloatArray] | None:
    """A binary GradientBoostingClassifier's ``decision_function`` without its input checks:
    the init estimator's raw prediction (a constant: a prior, or zero) taken once, then the
    library's own tree walk (``predict_stages``) over the rows in float32, C-ordered, as the
    checks would leave them. None if the estimator is not one of that shape (the library is
    then called)."""
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble._gradient_boosting import predict_stages

    if not isinstance(estimator, GradientBoostingClassifier) or len(estimator.classes_) != 2:
        return None
    init = estimator.init_
    constant_init = init == "zero" or (
        isinstance(init, DummyClassifier) and init.strategy in ("prior", "most_frequent")
    )
    if not constant_init:
        return None
    width = estimator.n_features_in_
    init_raw = estimator._raw_predict_init(np.zeros((1, width), dtype=np.float32))
    stages, rate = estimator.estimators_, float(estimator.learning_rate)

    def raw(X: FloatArray) -> FloatArray:
        out = np.repeat(init_raw, X.shape[0], axis=0)
        predict_stages(stages, np.ascontiguousarray(X, dtype=np.float32), rate, out)
        return out.reshape(-1)

    return raw


def _checked(
    manifest: ModelManifest, estimator: Any, compiled: Callable[[FloatArray], FloatArray] | None
) -> Callable[[FloatArray], FloatArray]:
    """``compiled`` if it gives the library's ``decision_function`` on rows drawn from the
    version's reference statistics (within :data:`COMPILED_TOLERANCE`), else the library.

    The served raw output is computed without the library's per-call checks, which cost
    more than the arithmetic on small batches; this check at load keeps it the library's.
    """
    library = _sklearn_raw(estimator)
    if compiled is None:
        return library
    X = manifest.feature_spec.vectorise(reference_sample(manifest, CHECK_ROWS, seed=1)).X
    try:
        agrees = np.allclose(compiled(X), library(X), rtol=0.0, atol=COMPILED_TOLERANCE)
    except Exception:  # a library whose internals moved: call it the public way
        agrees = False
    if len(X) and agrees:
        return compiled
    log.warning(
        "%s v%s: the compiled output differs from %s.decision_function; calling the library",
        manifest.name, manifest.version, type(estimator).__name__,
    )  # fmt: skip
    return library


def _river_explainer(estimator: Any, manifest: ModelManifest) -> Explainer:
    from models.explain.river_linear import RiverLinearExplainer

    return RiverLinearExplainer.from_manifest_constants(
        estimator, manifest.feature_spec.columns, manifest.explainer
    )


class RawColumnExplainer:
    """The explainer of a model from elsewhere, on the design matrix the scoring core holds.

    Each call turns the matrix back into the user's columns (:func:`raw_batch`) and asks
    the family's compiled model; contributions come back one per feature. The scoring core
    asks for the raw output and then the explanation of the same matrix: the columns of
    the last matrix are kept, so they are built once per batch.
    """

    def __init__(self, spec: FeatureSpec, model: ExternalModel) -> None:
        self.spec = spec
        self.model = model
        self.method = model.method
        self._last: tuple[FloatArray, RawBatch] | None = None

    def _batch(self, X: FloatArray) -> RawBatch:
        last = self._last
        if last is not None and last[0] is X:
            return last[1]
        batch = raw_batch(self.spec, X)
        self._last = (X, batch)
        return batch

    def raw_output(self, X: FloatArray) -> FloatArray:
        return np.asarray(self.model.raw(self._batch(X)), dtype=np.float64)

    def explain(self, X: FloatArray) -> ExplanationBatch:
        return self.model.explain(self._batch(X))
