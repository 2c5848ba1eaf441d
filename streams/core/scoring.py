"""Score a batch of validated events: vectorise, score, decide, explain, give reasons.

Everything is done once per batch with numpy (one model call, one explainer call, one
argsort for reasons); the per-event work is building the output records. Records are
msgspec structs shaped like :class:`schemas.contracts.Decision` and
:class:`~schemas.contracts.Explanation` (:mod:`streams.core.wire`; the tests validate them
against those contracts), which msgspec encodes without Python code per record.

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
from itertools import repeat, starmap
from typing import Any

import numpy as np
import orjson

from models.featurespec import Reject
from models.policy import ADVERSE_DECISIONS
from models.scoring_model import ScoringModel
from schemas.contracts import MAX_REASON_CODES, MAX_TOP_FEATURES, SCHEMA_VERSION, RejectReason
from streams.core.wire import (
    DecisionRecord,
    ExplanationRecord,
    ReasonRecord,
    as_dicts,
    contributions_type,
    encode_records,
    shared,
)

_SORTED = orjson.OPT_SORT_KEYS
REASON_MIN_SHARE = 0.05
"""A reason carries at least this share of the sum of the event's positive contributions."""
REASON_MIN_LOG_ODDS = 0.01
"""... and at least this much log-odds, whatever the share."""


@dataclass
class ScoredBatch:
    """The outcome of one batch. ``rows[i]`` is the input index of ``records[i]``.

    ``records`` and ``explained`` are the output records as structs
    (:mod:`streams.core.wire`; :meth:`encoded` gives their bytes), ``labels[i]`` the
    decision of ``records[i]``; :attr:`decisions` and :attr:`explanations` are the same
    records as plain dicts.
    """

    records: list[DecisionRecord] = field(default_factory=list)
    explained: list[ExplanationRecord] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    scores: np.ndarray = field(default_factory=lambda: np.empty(0))
    X: np.ndarray | None = None
    """Design-matrix rows of the scored events (for the monitors), aligned with ``rows``."""

    @property
    def decisions(self) -> list[dict[str, Any]]:
        """The decisions as :class:`schemas.contracts.Decision`-shaped dicts."""
        return as_dicts(self.records)

    @property
    def explanations(self) -> list[dict[str, Any]]:
        """The explanations as :class:`schemas.contracts.Explanation`-shaped dicts."""
        return as_dicts(self.explained)

    def encoded(self) -> tuple[list[bytes], list[bytes]]:
        """The JSON bytes of the decisions and of the explanations."""
        return encode_records(self.records), encode_records(self.explained)


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
        result.records.extend(sub.records)
        result.explained.extend(sub.explained)
        result.labels.extend(sub.labels)
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
    """Decide, give reasons, and build the batch's records: numpy once per batch, then one
    struct per record (no dict per event; see :mod:`streams.core.wire`)."""
    policy, ref = model.policy, model.ref
    scores = model.score(raw)
    labels = policy.decide(scores).tolist()
    scored_at = datetime.now(UTC)
    latency = max(0.0, (scored_at.timestamp() - received) * 1000.0)
    scored = [events[r] for r in rows]
    count = len(rows)
    ids = [e["event_id"] for e in scored], [e["entity_id"] for e in scored]
    reasons: list[list[ReasonRecord]] = (
        [[] for _ in range(count)]
        if explained is None
        else _explain(model, ids, labels, raw, explained, result)
    )
    dumps, sha256 = orjson.dumps, hashlib.sha256
    hashes = [sha256(dumps(e["features"], option=_SORTED)).hexdigest() for e in scored]
    result.records = list(
        map(
            DecisionRecord,
            repeat(SCHEMA_VERSION),
            *ids,
            labels,
            scores.tolist(),
            repeat(shared(policy.thresholds)),
            reasons,
            repeat(shared(ref)),
            hashes,
            [e["event_time"] for e in scored],
            [e.get("context") or {} for e in scored],
            repeat(scored_at.isoformat()),
            repeat(shared(latency)),
            repeat(shadow),
        )
    )
    result.labels = labels
    result.rows = list(rows)
    result.scores = scores


def _explain(
    model: ScoringModel,
    ids: tuple[list[str], list[str]],
    labels: list[str],
    raw: np.ndarray,
    explained: Any,
    result: ScoredBatch,
) -> list[list[ReasonRecord]]:
    """Build the explanation records into ``result``; return each decision's reasons.

    ``ids`` are the scored events' event ids and entity ids."""
    spec = model.spec
    names = spec.names
    contributions = explained.contributions  # (n, n_columns), or (n, n_features) already
    per_feature = contributions if explained.per_feature else spec.sum_per_feature(contributions)
    count = len(labels)
    errors = np.abs(explained.base_value + contributions.sum(axis=1) - raw)
    values = per_feature.tolist()
    reasons: list[list[ReasonRecord]] = [[] for _ in range(count)]
    adverse = [i for i, label in enumerate(labels) if label in ADVERSE_DECISIONS]
    if adverse:
        codes = [f"RC_{name.upper()}" for name in names]
        texts = [model.manifest.reason_texts.get(name, f"{name} raised the risk") for name in names]
        pushed = per_feature[adverse]
        order = np.argsort(-pushed, axis=1, kind="stable")[:, :MAX_REASON_CODES].tolist()
        floors = material_floor(pushed).tolist()
        for i, ranked, floor in zip(adverse, order, floors, strict=True):
            row = values[i]
            reasons[i] = [
                ReasonRecord(codes[j], names[j], texts[j], row[j])
                for j in ranked
                if row[j] >= floor
            ]
    top = np.argsort(-np.abs(per_feature), axis=1, kind="stable")[:, :MAX_TOP_FEATURES]
    result.explained = list(
        map(
            ExplanationRecord,
            repeat(SCHEMA_VERSION),
            *ids,
            repeat(shared(model.ref)),
            repeat(explained.method),
            repeat(model.output_space),
            repeat(float(explained.base_value)),
            raw.tolist(),
            list(starmap(contributions_type(tuple(names)), values)),
            np.asarray(names, dtype=object)[top].tolist(),
            errors.tolist(),
        )
    )
    return reasons
