"""Online learning for river models from labels joined to exactly the features scored.

A river model keeps learning after it is registered. The learner holds the features of
recent events and the ``input_hash`` of the decisions the model's versions made; when a
label arrives it learns from that event's features only if their hash equals the decision's
``input_hash``, so the model learns from exactly what was scored. Each label is first used
to score the current model (prequential evaluation: test, then train), so that the metrics
of a learned version come from labels it had not yet seen. The learned model is registered
as a new version by the caller on its schedule; it is never promoted here.
"""

from __future__ import annotations

import copy
import hashlib
from collections import Counter, OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from models.manifest import ModelManifest
from models.training import score_metrics
from schemas.errors import ConfigError

_SORTED = orjson.OPT_SORT_KEYS


class OnlineLearner:
    """Test-then-train a copy of a river model on joined labels."""

    def __init__(self, manifest: ModelManifest, estimator: Any, max_entries: int = 500_000) -> None:
        if manifest.kind != "river-logistic":
            raise ConfigError(
                f"{manifest.name} v{manifest.version} is a {manifest.kind} model; online "
                "learning needs a river model (train with --model river-logistic)"
            )
        self.manifest = manifest
        self.model = copy.deepcopy(estimator)
        explainer = manifest.explainer
        self.columns: list[str] = list(explainer["columns"])
        self.mean = np.asarray(explainer["scale_mean"], dtype=np.float64)
        self.std = np.asarray(explainer["scale_std"], dtype=np.float64)
        self.max_entries = max_entries
        self._features: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._hashes: OrderedDict[str, str] = OrderedDict()
        self._learned: set[str] = set()
        self.scores: list[float] = []
        self.labels: list[int] = []
        self.refused: Counter[str] = Counter()

    def remember_events(self, events: Sequence[dict[str, Any]]) -> None:
        """Valid ScoringEvents (decoded): their features, by event_id."""
        for event in events:
            self._features[event["event_id"]] = event["features"]
        _trim(self._features, self.max_entries)

    def remember_decisions(self, decisions: Sequence[dict[str, Any]]) -> None:
        """Decisions of this model's versions: the hash of the features each one scored."""
        name = self.manifest.name
        for decision in decisions:
            if decision["model"]["name"] == name and not decision.get("shadow"):
                self._hashes[decision["event_id"]] = decision["input_hash"]
        _trim(self._hashes, self.max_entries)

    def learn(self, labels: Sequence[tuple[str, int]]) -> int:
        """Score, then learn from, each (event_id, label) whose features are known and
        match the decision's input_hash; the number learned. The rest are counted in
        ``refused`` by reason: ``unknown`` (no event or decision held), ``hash_mismatch``
        (the features held are not the ones scored), ``duplicate`` (already learned)."""
        usable: list[tuple[dict[str, Any], int]] = []
        for event_id, label in labels:
            features, expected = self._features.get(event_id), self._hashes.get(event_id)
            if features is None or expected is None:
                self.refused["unknown"] += 1
            elif event_id in self._learned:
                self.refused["duplicate"] += 1
            elif hashlib.sha256(orjson.dumps(features, option=_SORTED)).hexdigest() != expected:
                self.refused["hash_mismatch"] += 1
            else:
                self._learned.add(event_id)
                usable.append((features, label))
        if not usable:
            return 0
        batch = self.manifest.feature_spec.vectorise([f for f, _ in usable])
        rejected = {r.index for r in batch.rejects}
        if rejected:
            self.refused["not_vectorisable"] += len(rejected)
        kept = [label for i, (_, label) in enumerate(usable) if i not in rejected]
        Z = (batch.X - self.mean) / self.std
        for row, label in zip(Z.tolist(), kept, strict=True):
            x = dict(zip(self.columns, row, strict=True))
            self.scores.append(float(self.model.predict_proba_one(x).get(True, 0.0)))
            self.labels.append(int(label))
            self.model.learn_one(x, bool(label))
        return len(kept)

    def version_fields(self, parent_version: int, source: str) -> dict[str, Any] | None:
        """Manifest fields for registering the learned model as a child of
        ``parent_version``, with prequential metrics over the labels since the last call;
        None while those labels hold only one class (no AUC can be computed)."""
        y = np.asarray(self.labels, dtype=np.int64)
        if y.size == 0 or y.min() == y.max():
            return None
        scores = np.asarray(self.scores, dtype=np.float64)
        m = self.manifest
        digest = hashlib.sha256(np.concatenate([scores, y.astype(np.float64)]).tobytes())
        fields = {
            "feature_spec": m.feature_spec,
            "context_attributes": m.context_attributes,
            "policy": m.policy,
            "reason_texts": m.reason_texts,
            "metrics": score_metrics(y, scores, m.policy, y.size),
            "fairness": m.fairness,
            "reference": m.reference,
            "explainer": m.explainer,
            "training": m.training.model_copy(
                update={
                    "dataset": source,
                    "rows": int(y.size),
                    "holdout_rows": int(y.size),
                    "data_sha256": digest.hexdigest(),
                    "parent_version": parent_version,
                    "params": {
                        **m.training.params,
                        "online": {
                            "labels": int(y.size),
                            "evaluation": "prequential (each label scored before learning)",
                            "refused": dict(self.refused),
                        },
                    },
                }
            ),
        }
        self.scores, self.labels = [], []
        self.refused.clear()
        return fields


def _trim(store: OrderedDict[str, Any], limit: int) -> None:
    while len(store) > limit:
        store.popitem(last=False)
