"""Training: from a :class:`~models.datasets.Dataset` to a model and every manifest field.

:func:`train` splits the data (stratified holdout), fits one of the model kinds, scores the
holdout, and gathers what the registry stores beside the artifact: metrics, fairness at
training, reference statistics for drift, explainer constants and lineage. It registers
nothing itself; pass the result to ``Registry.register``.

Scores are probabilities of the adverse outcome (label 1). Holdout ``metrics``:
``roc_auc``, ``log_loss``, ``brier``, ``accuracy`` (adverse when score >=
``policy.classification_threshold``), ``positive_rate`` (share predicted adverse at that
threshold), ``base_rate`` (share labelled adverse), ``adverse_decision_rate`` (share the
policy reviews or declines), ``train_rows`` and ``holdout_rows``.

Model kinds and their explainer constants (``manifest_fields["explainer"]``):

- ``logistic``: StandardScaler + LogisticRegression; ``{"method": "linear", ...}``;
- ``gbt``: GradientBoostingClassifier; ``{"method": "tree_shap", ...}``;
- ``river-logistic``: river's online LogisticRegression over dicts ``{column: z}`` where
  ``z = (x - scale_mean) / scale_std`` per design-matrix column; ``{"method":
  "river_linear", "scale_mean": [...], "scale_std": [...], ...}``. Serving must apply the
  same standardisation before ``predict_proba_one``.

Every kind also stores ``reference_mean`` (training mean of each design-matrix column) and
``columns``.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
from river import linear_model as river_linear
from river import optim
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from models.datasets import Dataset, data_sha256
from models.fairness import fairness_summary
from models.manifest import ModelKind, TrainingInfo
from models.policy import ADVERSE_DECISIONS, Policy
from models.reference import build_reference
from schemas.errors import ContractError, ScorerError
from schemas.version import SCORER_VERSION

STEPS: Final = ("generate", "vectorise", "fit", "evaluate", "fairness", "reference", "register")
"""Progress steps of a training run; :func:`train` reports the middle five, callers the rest."""
MODEL_KINDS: Final[tuple[ModelKind, ...]] = ("logistic", "gbt", "river-logistic")
RIVER_PASSES: Final = 2
RIVER_LEARNING_RATE: Final = 0.01

Progress = Callable[[str, str], None]
"""Called as ``progress(step, detail)`` when a step of :data:`STEPS` starts."""


@dataclass
class TrainedModel:
    """A fitted model, the manifest fields to register it with, and a printable summary."""

    estimator: Any
    kind: ModelKind
    manifest_fields: dict[str, Any]
    summary: dict[str, Any] = field(default_factory=dict)


def code_version() -> str:
    """The package version, plus ``+g<short commit>`` when the checkout is a git repository."""
    version = SCORER_VERSION
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent.parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return version
    commit = result.stdout.strip()
    return f"{version}+g{commit}" if commit else version


def _fit_sklearn(kind: ModelKind, X: np.ndarray, y: np.ndarray, seed: int) -> tuple[Any, dict]:
    model: Any
    if kind == "logistic":
        model = Pipeline(
            [("scale", StandardScaler()), ("model", LogisticRegression(max_iter=1000))]
        )
        params = _scalar_params(model.named_steps["model"])
    else:
        model = GradientBoostingClassifier(
            n_estimators=100, max_depth=3, learning_rate=0.1, random_state=seed
        )
        params = _scalar_params(model)
    model.fit(X, y)
    return model, params


def _scalar_params(estimator: Any) -> dict[str, Any]:
    return {
        k: v
        for k, v in sorted(estimator.get_params(deep=False).items())
        if v is None or isinstance(v, bool | int | float | str)
    }


class _RiverInputs:
    """Standardisation of design-matrix columns into the dicts a river model sees."""

    def __init__(self, columns: list[str], X_train: np.ndarray) -> None:
        self.columns = columns
        self.mean = X_train.mean(axis=0)
        std = X_train.std(axis=0)
        self.std = np.where(std > 0.0, std, 1.0)

    def rows(self, X: np.ndarray) -> list[dict[str, float]]:
        Z = (X - self.mean) / self.std
        return [dict(zip(self.columns, row, strict=True)) for row in Z.tolist()]


def _fit_river(inputs: _RiverInputs, X: np.ndarray, y: np.ndarray, seed: int) -> tuple[Any, dict]:
    model = river_linear.LogisticRegression(optimizer=optim.SGD(RIVER_LEARNING_RATE))
    rows = inputs.rows(X)
    order = np.random.default_rng(seed)
    for _ in range(RIVER_PASSES):
        for i in order.permutation(len(rows)).tolist():
            model.learn_one(rows[i], bool(y[i]))
    params = {"optimizer": "SGD", "lr": RIVER_LEARNING_RATE, "passes": RIVER_PASSES, "l2": 0.0}
    return model, params


def score_metrics(
    y: np.ndarray, scores: np.ndarray, policy: Policy, n_train: int
) -> dict[str, float]:
    """Holdout metrics of ``scores`` against labels ``y`` (see the module doc)."""
    predicted = scores >= policy.classification_threshold
    adverse = np.isin(policy.decide(scores), list(ADVERSE_DECISIONS))
    return {
        "roc_auc": float(roc_auc_score(y, scores)),
        "log_loss": float(log_loss(y, scores, labels=[0, 1])),
        "brier": float(brier_score_loss(y, scores)),
        "accuracy": float(accuracy_score(y, predicted)),
        "positive_rate": float(predicted.mean()),
        "base_rate": float(y.mean()),
        "adverse_decision_rate": float(adverse.mean()),
        "train_rows": float(n_train),
        "holdout_rows": float(len(y)),
    }


def _split(
    dataset: Dataset, n: int, holdout_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    if not 0.0 < holdout_fraction < 1.0:
        raise ScorerError(f"holdout_fraction must be between 0 and 1, got {holdout_fraction}")
    counts = np.bincount(dataset.labels, minlength=2)
    if counts.min() < 2:
        raise ContractError(
            f"dataset {dataset.name!r} has {counts[0]} rows labelled 0 and {counts[1]} "
            "labelled 1; training needs at least 2 of each"
        )
    try:
        train_idx, holdout_idx = train_test_split(
            np.arange(n), test_size=holdout_fraction, random_state=seed, stratify=dataset.labels
        )
    except ValueError as exc:
        raise ScorerError(f"cannot split {n} rows into train and holdout: {exc}") from exc
    return np.sort(train_idx), np.sort(holdout_idx)


def train(
    dataset: Dataset,
    kind: ModelKind,
    *,
    seed: int,
    holdout_fraction: float = 0.25,
    policy: Policy | None = None,
    parent_version: int | None = None,
    progress: Progress | None = None,
) -> TrainedModel:
    """Fit a ``kind`` model on ``dataset`` and compute every manifest field (see module doc)."""
    if kind not in MODEL_KINDS:
        raise ScorerError(f"unknown model kind {kind!r}; expected one of {list(MODEL_KINDS)}")
    policy = policy or Policy()
    report = progress or (lambda step, detail: None)
    spec = dataset.spec
    started = time.perf_counter()

    report("vectorise", f"{len(dataset)} rows into {len(spec.columns)} columns")
    batch = spec.vectorise(dataset.features)
    if batch.rejects:
        first = batch.rejects[0]
        raise ContractError(
            f"{len(batch.rejects)} of {len(dataset)} rows of dataset {dataset.name!r} do not "
            f"fit its feature spec; first: row {first.index}: {first.detail}"
        )
    X, y = batch.X, dataset.labels
    train_idx, holdout_idx = _split(dataset, len(y), holdout_fraction, seed)
    X_train, y_train = X[train_idx], y[train_idx]
    X_holdout, y_holdout = X[holdout_idx], y[holdout_idx]

    report("fit", f"{kind} on {len(train_idx)} rows")
    fit_started = time.perf_counter()
    explainer: dict[str, Any] = {
        "columns": list(spec.columns),
        "reference_mean": X_train.mean(axis=0).tolist(),
    }
    if kind == "river-logistic":
        inputs = _RiverInputs(spec.columns, X_train)
        estimator, params = _fit_river(inputs, X_train, y_train, seed)
        explainer.update(
            method="river_linear", scale_mean=inputs.mean.tolist(), scale_std=inputs.std.tolist()
        )
    else:
        estimator, params = _fit_sklearn(kind, X_train, y_train, seed)
        explainer["method"] = "linear" if kind == "logistic" else "tree_shap"
    fit_seconds = time.perf_counter() - fit_started

    report("evaluate", f"{len(holdout_idx)} holdout rows")
    if kind == "river-logistic":
        scores = np.array(
            [estimator.predict_proba_one(row)[True] for row in inputs.rows(X_holdout)]
        )
    else:
        scores = estimator.predict_proba(X_holdout)[:, 1]
    metrics = score_metrics(y_holdout, scores, policy, len(train_idx))

    report("fairness", ", ".join(dataset.context_attributes) or "no context attributes")
    adverse = np.isin(policy.decide(scores), list(ADVERSE_DECISIONS))
    fairness: dict[str, Any] = {
        "basis": "holdout",
        "favourable_decision": "approve",
        "attributes": {
            attribute: fairness_summary(
                adverse,
                np.array([dataset.context[i].get(attribute, "unknown") for i in holdout_idx]),
                y_holdout,
            )
            for attribute in dataset.context_attributes
        },
    }

    report("reference", "training feature and holdout score distributions")
    reference = build_reference(spec, [dataset.features[i] for i in train_idx], scores)

    training = TrainingInfo(
        dataset=dataset.name,
        rows=len(train_idx),
        holdout_rows=len(holdout_idx),
        seed=seed,
        data_sha256=data_sha256(dataset),
        code_version=code_version(),
        parent_version=parent_version,
        params={"model": params, "holdout_fraction": holdout_fraction, "dataset": dataset.params},
    )
    manifest_fields = {
        "feature_spec": spec,
        "context_attributes": dataset.context_attributes,
        "policy": policy,
        "reason_texts": dict(dataset.reason_texts),
        "metrics": metrics,
        "fairness": fairness,
        "reference": reference,
        "explainer": explainer,
        "training": training,
    }
    summary = {
        "dataset": dataset.name,
        "description": dataset.description,
        "kind": kind,
        "rows": len(dataset),
        "train_rows": len(train_idx),
        "holdout_rows": len(holdout_idx),
        "columns": len(spec.columns),
        "metrics": metrics,
        "fairness": fairness,
        "fit_seconds": fit_seconds,
        "total_seconds": time.perf_counter() - started,
    }
    return TrainedModel(estimator, kind, manifest_fields, summary)
