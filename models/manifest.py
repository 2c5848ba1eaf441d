"""The manifest of a registered model version (``manifest.json`` beside the artifact).

It carries everything needed to serve, explain, monitor and audit the version without
the training data: the feature spec and policy, reason-code wording, metrics and fairness
at training, reference statistics for drift, explainer constants, and lineage (artifact
and data hashes, code version, parent version, and for a model from elsewhere its source).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from models.featurespec import FeatureSpec
from models.policy import Policy

ModelKind = Literal["logistic", "gbt", "river-logistic", "sklearn", "lightgbm", "xgboost"]
"""``logistic``, ``gbt`` and ``river-logistic`` are trained by ``scorer train`` on the design
matrix; ``sklearn``, ``lightgbm`` and ``xgboost`` are models from elsewhere that read the
user's own columns (:mod:`models.external`)."""
ArtifactFormat = Literal["skops", "pickle", "lightgbm-text", "xgboost-json", "xgboost-ubj"]

MANIFEST_FILE = "manifest.json"


class ArtifactInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    file: str
    format: ArtifactFormat
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(ge=0)


class TrainingInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str
    rows: int = Field(ge=0)
    holdout_rows: int = Field(ge=0)
    seed: int
    data_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    code_version: str
    parent_version: int | None = None
    params: dict[str, Any] = Field(default_factory=dict)


class ModelManifest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    manifest_version: Literal[1] = 1
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    version: int = Field(ge=1)
    kind: ModelKind
    created_at: datetime
    artifact: ArtifactInfo
    feature_spec: FeatureSpec
    context_attributes: list[str] = Field(default_factory=list)
    policy: Policy = Field(default_factory=Policy)
    reason_texts: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    fairness: dict[str, Any] = Field(default_factory=dict)
    reference: dict[str, Any] = Field(default_factory=dict)
    explainer: dict[str, Any] = Field(default_factory=dict)
    training: TrainingInfo
    lineage: dict[str, Any] = Field(default_factory=dict)
    """Where a model from elsewhere came from: its file and sha256, or its MLflow URI, run id
    and model version; empty for a model trained here (``training`` says it all)."""
