"""Score a batch of validated events: vectorise, score, decide, explain, give reasons.

Everything is done once per batch with numpy (one model call, one explainer call, one
argsort for reasons); the per-event work is building the output records. Records are plain
dicts shaped like :class:`schemas.contracts.Decision` and :class:`~schemas.contracts.Explanation`
(the tests validate them against those contracts), so that engines can serialise them with
orjson without constructing pydantic objects on the hot path.

Reason codes are the principal reasons of an adverse decision: the features that pushed its
log-odds up the most (at most :data:`~schemas.contracts.MAX_REASON_CODES`), each carrying a
material share of the adverse push, that is at least :data:`REASON_MIN_SHARE` of the sum of
the event's positive contributions and never less than :data:`REASON_MIN_LOG_ODDS` (in the
model's output space: log-odds, or probability for a random forest). Fewer
reasons are given rather than a meaningless one; a decline with no material push has none.

An event that does not fit the model's feature spec becomes a :class:`Reject` with a specific
reason; the rest of its batch is scored. If the model itself fails on the batch, the batch
is split in halves until the failing events are isolated, so one poisonous event cannot take
its neighbours to the dead-letter topic.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson

from models.featurespec import Reject
from models.policy import ADVERSE_DECISIONS
from models.scoring_model import ScoringModel
from schemas.contracts import MAX_REASON_CODES, MAX_TOP_FEATURES, SCHEMA_VERSION, RejectReason

_SORTED = orjson.OPT_SORT_KEYS
REASON_MIN_SHARE = 0.05
"""A reason carries at least this share of the sum of the event's positive contributions."""
REASON_MIN_LOG_ODDS = 0.01
"""... and at least this much log-odds, whatever the share."""


@dataclass
class ScoredBatch:
    """The outcome of one batch. ``rows[i]`` is the input index of ``decisions[i]``."""

    decisions: list[dict[str, Any]] = field(default_factory=list)
    explanations: list[dict[str, Any]] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    scores: np.ndarray = field(default_factory=lambda: np.empty(0))
    X: np.ndarray | None = None
    """Design-matrix rows of the scored events (for the monitors), aligned with ``rows``."""


def input_hash(features: Mapping[str, Any]) -> str:
    """sha256 of the features as canonical JSON (sorted keys): equal inputs, equal hashes."""
    return hashlib.sha256(orjson.dumps(features, option=_SORTED)).hexdigest()


def material_floor(per_feature: np.ndarray) -> np.ndarray:
    """Per row, the smallest contribution that is a principal reason (see module doc).

    >>> material_floor(np.array([[2.0, 1.0, 0.05, -3.0], [0.001, 0.0, 0.0, 0.0]])).tolist()
    [0.1525, 0.01]
    """
    pushed_up = np.where(per_feature > 0.0, per_feature, 0.0).sum(axis=1)
    return np.maximum(REASON_MIN_SHARE * pushed_up, REASON_MIN_LOG_ODDS)


def score_batch(
    model: ScoringModel,
    events: Sequence[Mapping[str, Any]],
    *,
    received_at: float | None = None,
    shadow: bool = False,
    explain: bool = True,
) -> ScoredBatch:
    """Score ``events`` (ScoringEvent-shaped mappings) with ``model``.

    ``received_at`` (``time.time()`` when the batch arrived) is the start of ``latency_ms``.
    With ``explain=False`` no explanations are built (shadow scoring needs none).
    """
    received = time.time() if received_at is None else received_at
    vectorised = model.spec.vectorise([event["features"] for event in events])
    rows, X = vectorised.rows, vectorised.X
    result = ScoredBatch(rejects=list(vectorised.rejects))
    if not rows:
        return result
    try:
        raw = model.raw_output(X)
        explained = model.explainer.explain(X) if explain else None
    except Exception as exc:  # the model's own failure: isolate the events that cause it
        return _isolate_failures(model, events, rows, result, exc, received, shadow, explain)
    _build(model, events, rows, raw, explained, result, received, shadow)
    result.X = X
    return result


def _isolate_failures(
    model: ScoringModel,
    events: Sequence[Mapping[str, Any]],
    rows: list[int],
    result: ScoredBatch,
    exc: Exception,
    received: float,
    shadow: bool,
    explain: bool,
) -> ScoredBatch:
    if len(rows) == 1:
        detail = f"{model.label} failed on this event: {type(exc).__name__}: {exc}"
        result.rejects.append(Reject(rows[0], RejectReason.SCORING_ERROR, detail[:2000]))
        return result
    half = len(rows) // 2
    for part in (rows[:half], rows[half:]):
        sub = score_batch(
            model, [events[i] for i in part], received_at=received, shadow=shadow, explain=explain
        )
        result.decisions.extend(sub.decisions)
        result.explanations.extend(sub.explanations)
        result.rows.extend(part[i] for i in sub.rows)
        result.rejects.extend(Reject(part[r.index], r.reason, r.detail) for r in sub.rejects)
        result.scores = np.concatenate([result.scores, sub.scores])
        if sub.X is not None:
            result.X = sub.X if result.X is None else np.vstack([result.X, sub.X])
    return result


def _build(
    model: ScoringModel,
    events: Sequence[Mapping[str, Any]],
    rows: list[int],
    raw: np.ndarray,
    explained: Any,
    result: ScoredBatch,
    received: float,
    shadow: bool,
) -> None:
    spec, policy, ref = model.spec, model.policy, model.ref
    names = spec.names
    scores = model.score(raw)
    labels = policy.decide(scores).tolist()
    thresholds = policy.thresholds
    scored_at = datetime.now(UTC)
    scored_text = scored_at.isoformat()
    latency = max(0.0, (scored_at.timestamp() - received) * 1000.0)
    score_list = scores.tolist()
    scored = [events[r] for r in rows]

    reasons: list[list[dict[str, Any]]] = [[] for _ in rows]
    if explained is not None:
        per_feature = (  # (n, n_features)
            explained.contributions
            if explained.per_feature
            else explained.contributions @ spec.grouping
        )
        order = np.argsort(-per_feature, axis=1, kind="stable")[:, :MAX_REASON_CODES]
        top = np.argsort(-np.abs(per_feature), axis=1, kind="stable")[:, :MAX_TOP_FEATURES]
        errors = np.abs(explained.base_value + explained.contributions.sum(axis=1) - raw)
        codes = [f"RC_{name.upper()}" for name in names]
        texts = [model.manifest.reason_texts.get(name, f"{name} raised the risk") for name in names]
        values = per_feature.tolist()
        adverse = [i for i, label in enumerate(labels) if label in ADVERSE_DECISIONS]
        order_list = order.tolist()
        floors = material_floor(per_feature).tolist()
        for i in adverse:
            row, floor = values[i], floors[i]
            reasons[i] = [
                {"code": codes[j], "feature": names[j], "text": texts[j], "contribution": row[j]}
                for j in order_list[i]
                if row[j] >= floor
            ]
        base = float(explained.base_value)
        method = explained.method
        result.explanations = [
            {
                "schema_version": SCHEMA_VERSION,
                "event_id": event["event_id"],
                "entity_id": event["entity_id"],
                "model": ref,
                "method": method,
                "output_space": model.output_space,
                "base_value": base,
                "output_value": out,
                "contributions": dict(zip(names, row, strict=True)),
                "top_features": top_names,
                "additivity_error": error,
            }
            for event, top_names, row, error, out in zip(
                scored,
                np.asarray(names, dtype=object)[top].tolist(),
                values,
                errors.tolist(),
                raw.tolist(),
                strict=True,
            )
        ]
    sha256, dumps = hashlib.sha256, orjson.dumps
    result.decisions = [
        {
            "schema_version": SCHEMA_VERSION,
            "event_id": event["event_id"],
            "entity_id": event["entity_id"],
            "decision": label,
            "score": score,
            "thresholds": thresholds,
            "reason_codes": reason,
            "model": ref,
            "input_hash": sha256(dumps(event["features"], option=_SORTED)).hexdigest(),
            "event_time": event["event_time"],
            "context": event.get("context") or {},
            "scored_at": scored_text,
            "latency_ms": latency,
            "shadow": shadow,
        }
        for event, label, score, reason in zip(scored, labels, score_list, reasons, strict=True)
    ]
    result.rows = list(rows)
    result.scores = scores
