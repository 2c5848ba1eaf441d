"""Whether a stored version can be served: built, scored and explained as serving does.

The registry runs these checks on a version's stored bytes when it registers it (before
the version becomes visible) and when it verifies it, after the ``load`` check (the bytes
match the manifest's sha256 and deserialise under the trusted type lists). In order, and
the first that fails is named in the error (:class:`~schemas.errors.UnservableModel`):

- ``build``: :meth:`ScoringModel.from_loaded` builds the kind's raw output and explainer,
  as a scoring process does at start-up and at a hot swap (a bare linear model needs
  ``reference_mean`` in the explainer constants; the estimator must be of its kind);
- ``rows``: the sample rows vectorise under the feature spec;
- ``score``: the served score (the logistic function of the served raw output, or the output
  itself for a model whose output is a probability) equals the library's own probability,
  ``predict_proba`` for scikit-learn (whose raw output must also be its
  ``decision_function``), ``predict_proba_one`` for river, and for a model from elsewhere
  its family's public prediction call (a pipeline's ``predict_proba``, a booster's
  ``predict``), within :data:`SCORE_TOLERANCE`, or within the library's own resolution when
  it predicts in float32 (XGBoost: one float32 epsilon, about 1.2e-7);
- ``additivity``: base value plus contributions equals the served raw output within
  :data:`ADDITIVITY_TOLERANCE`, as every explanation reports it, or within the float32
  summation bound recorded at registration (``additivity_limit``) for a library that adds
  in float32 (XGBoost).

Sample rows are drawn from the manifest's reference statistics
(:func:`models.reference.reference_sample`; a feature without statistics gets its imputation
value spread by one unit, which is enough to exercise the model, though not to judge its
explanations against real data) unless the caller gives rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from models.external.base import raw_batch
from models.manifest import ModelManifest
from models.reference import features_without_statistics, reference_sample
from models.scoring_model import RawColumnExplainer, ScoringModel
from schemas.errors import UnservableModel

if TYPE_CHECKING:
    from models.registry import LoadedModel

SCORE_TOLERANCE: Final = 1e-9
"""Largest difference allowed between the served score and the library's probability."""
ADDITIVITY_TOLERANCE: Final = 1e-6
"""Largest ``|base value + Σ contributions − raw output|`` allowed on a sample row."""
SAMPLE_ROWS: Final = 256
"""Rows drawn from the reference statistics when the caller gives none."""


@dataclass(frozen=True)
class Servability:
    """What the checks measured on a version that passed them."""

    rows: int
    source: str
    """Where the rows came from: "rows given", "reference statistics" or, when the
    reference lacks features, "the feature spec (no reference statistics for [...])"."""
    max_score_error: float
    max_additivity_error: float


def check_servable(
    loaded: LoadedModel,
    label: str,
    rows: Sequence[Mapping[str, Any]] | None = None,
) -> Servability:
    """Run the checks of the module doc on ``loaded``; raise UnservableModel naming the first
    that fails, its message starting with ``label`` (who the version is)."""
    model = _attempt(label, "build", lambda: ScoringModel.from_loaded(loaded))
    rows, source = _sample(loaded, rows)
    X = _design_matrix(model, rows, source, label)
    served_raw = _attempt(label, "score", lambda: np.asarray(model.raw_output(X), np.float64))
    own = _attempt(label, "score", lambda: _library_output(model, X))
    score_error = _largest(np.abs(model.score(served_raw) - own.probability))
    if own.raw is not None:
        score_error = max(score_error, _largest(np.abs(served_raw - own.raw)))
    tolerance = max(SCORE_TOLERANCE, _library_resolution(model))
    if not score_error <= tolerance:
        raise _refusal(
            label,
            "score",
            f"served scores differ from {own.method} by up to {score_error:.3g} on "
            f"{len(X)} rows from {source} (limit {tolerance:g}); is kind "
            f"{loaded.manifest.kind!r} right for a {type(loaded.estimator).__name__}?",
        )
    explained = _attempt(label, "additivity", lambda: model.explainer.explain(X))
    total = explained.base_value + explained.contributions.sum(axis=1)
    additivity_error = _largest(np.abs(total - served_raw))
    additivity_limit = max(ADDITIVITY_TOLERANCE, additivity_allowance(loaded.manifest))
    if not additivity_error <= additivity_limit:
        raise _refusal(
            label,
            "additivity",
            f"explanations miss the model's output by up to {additivity_error:.3g} on "
            f"{len(X)} rows from {source} (limit {additivity_limit:g})",
        )
    return Servability(len(X), source, score_error, additivity_error)


def additivity_allowance(manifest: ModelManifest) -> float:
    """The additivity error a version's library cannot avoid: the float32 summation bound
    recorded at registration for a library that adds in float32 (XGBoost), else 0."""
    return float(manifest.explainer.get("additivity_limit", 0.0))


def _library_resolution(model: ScoringModel) -> float:
    """How finely the library itself states its probability: 0 for float64 libraries, one
    float32 epsilon for a library that predicts in float32 (XGBoost), whose own output can
    be no closer than that to the exact logistic of its margin."""
    if isinstance(model.explainer, RawColumnExplainer):
        return float(getattr(model.explainer.model, "score_resolution", 0.0))
    return 0.0


@dataclass(frozen=True)
class _LibraryOutput:
    probability: np.ndarray
    raw: np.ndarray | None
    method: str


def _library_output(model: ScoringModel, X: np.ndarray) -> _LibraryOutput:
    """The estimator's own probability of the positive class (and raw output, when it has
    a decision function), computed by the library, not by our compiled path."""
    estimator = model.estimator
    if isinstance(model.explainer, RawColumnExplainer):  # a model from elsewhere
        library = model.explainer.model.library_probability(raw_batch(model.spec, X))
        return _LibraryOutput(np.asarray(library, np.float64).reshape(-1), None, "the library")
    if model.manifest.kind == "river-logistic":
        constants = model.manifest.explainer
        width = X.shape[1]
        mean = np.asarray(constants.get("scale_mean", np.zeros(width)), np.float64)
        scale = np.asarray(constants.get("scale_std", np.ones(width)), np.float64)
        columns = model.spec.columns
        inputs = (X - mean) / scale
        own = [
            estimator.predict_proba_one(dict(zip(columns, row.tolist(), strict=True))).get(True)
            for row in inputs
        ]
        return _LibraryOutput(np.asarray(own, np.float64), None, "predict_proba_one")
    proba = np.asarray(estimator.predict_proba(X), np.float64)
    if proba.ndim != 2 or proba.shape[1] != 2:
        raise ValueError(f"predict_proba returned shape {proba.shape}, not (n, 2)")
    raw = np.asarray(estimator.decision_function(X), np.float64).reshape(-1)
    return _LibraryOutput(proba[:, 1], raw, "predict_proba/decision_function")


def _sample(
    loaded: LoadedModel, rows: Sequence[Mapping[str, Any]] | None
) -> tuple[Sequence[Mapping[str, Any]], str]:
    if rows is not None:
        return rows, "rows given"
    missing = features_without_statistics(loaded.manifest)
    source = (
        f"the feature spec (no reference statistics for {missing})"
        if missing
        else "reference statistics"
    )
    return reference_sample(loaded.manifest, SAMPLE_ROWS, seed=0), source


def _design_matrix(
    model: ScoringModel, rows: Sequence[Mapping[str, Any]], source: str, label: str
) -> np.ndarray:
    if not rows:
        raise _refusal(label, "rows", f"no rows to score ({source})")
    batch = model.spec.vectorise(rows)
    if batch.rejects:
        first = batch.rejects[0]
        raise _refusal(
            label,
            "rows",
            f"{len(batch.rejects)} of {len(rows)} rows from {source} do not fit the feature "
            f"spec; first: row {first.index}: {first.detail}",
        )
    return np.asarray(batch.X, np.float64)


def _attempt(label: str, check: str, step: Any) -> Any:
    """``step()``, with any failure of the model's library reported as failing ``check``."""
    try:
        return step()
    except Exception as exc:  # a user's estimator may raise anything; report it in one line
        raise _refusal(label, check, f"{type(exc).__name__}: {exc}") from exc


def _largest(values: np.ndarray) -> float:
    """The largest value, NaN when any is NaN (so that a comparison with a limit fails)."""
    return float(np.max(values)) if values.size else 0.0


def _refusal(label: str, check: str, detail: str) -> UnservableModel:
    return UnservableModel(f"{label}: check {check} failed: {detail}", check=check)
