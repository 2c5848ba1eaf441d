"""Score a batch of validated events: vectorise, score, decide, explain, give reasons.

Everything is done once per batch with numpy (one model call, one explainer call, one
argsort for reasons), and the records are rendered from the batch's columns in one call per
kind of record: no Python code runs per event. Records are the JSON of
:class:`schemas.contracts.Decision` and :class:`~schemas.contracts.Explanation`
(:mod:`streams.core.wire`; the tests validate them against those contracts).

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
from functools import lru_cache, partial
from typing import Any

import numpy as np
import orjson

from models.featurespec import FeatureSpec, Reject, VectorisedBatch
from models.policy import ADVERSE_DECISIONS, DECISIONS
from models.scoring_model import ScoringModel
from schemas.contracts import MAX_REASON_CODES, MAX_TOP_FEATURES, SCHEMA_VERSION, RejectReason
from streams.core._native import dense_rows
from streams.core.decode import EventColumns
from streams.core.wire import Template, as_dicts, encoded

_SORTED = orjson.OPT_SORT_KEYS
_CANONICAL = partial(orjson.dumps, option=_SORTED)
"""The canonical JSON of the features, whose sha256 is a decision's ``input_hash``."""
_ADVERSE_BAND = np.array([decision in ADVERSE_DECISIONS for decision in DECISIONS])
REASON_MIN_SHARE = 0.05
"""A reason carries at least this share of the sum of the event's positive contributions."""
REASON_MIN_LOG_ODDS = 0.01
"""... and at least this much log-odds, whatever the share."""


@dataclass
class ScoredBatch:
    """The outcome of one batch. ``rows[i]`` is the input index of the i-th scored event.

    ``decision_lines[i]`` and ``explanation_lines[i]`` are its records' JSON bytes
    (:meth:`encoded`), ``labels[i]`` its decision; ``event_ids``, ``entity_ids`` and
    ``contexts`` are its identifiers and context, for the engine's outputs and monitors.
    :attr:`decisions` and :attr:`explanations` are the same records as plain dicts.
    """

    rows: list[int] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    bands: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.intp))
    """Each decision as its index into :data:`models.policy.DECISIONS`, aligned with ``labels``."""
    event_ids: list[str] = field(default_factory=list)
    entity_ids: list[str] = field(default_factory=list)
    contexts: list[dict[str, str]] = field(default_factory=list)
    decision_lines: list[bytes] = field(default_factory=list)
    explanation_lines: list[bytes] = field(default_factory=list)
    scores: np.ndarray = field(default_factory=lambda: np.empty(0))
    X: np.ndarray | None = None
    """Design-matrix rows of the scored events (for the monitors), aligned with ``rows``."""

    @property
    def decisions(self) -> list[dict[str, Any]]:
        """The decisions as :class:`schemas.contracts.Decision`-shaped dicts."""
        return as_dicts(self.decision_lines)

    @property
    def explanations(self) -> list[dict[str, Any]]:
        """The explanations as :class:`schemas.contracts.Explanation`-shaped dicts."""
        return as_dicts(self.explanation_lines)

    def encoded(self) -> tuple[list[bytes], list[bytes]]:
        """The JSON bytes of the decisions and of the explanations."""
        return self.decision_lines, self.explanation_lines

    def extend(self, other: ScoredBatch, rows: Sequence[int]) -> None:
        """Append ``other``, a batch scored from the events ``rows`` of this one's input."""
        self.rows.extend(rows[i] for i in other.rows)
        self.rejects.extend(Reject(rows[r.index], r.reason, r.detail) for r in other.rejects)
        for name in ("labels", "event_ids", "entity_ids", "contexts"):
            getattr(self, name).extend(getattr(other, name))
        self.decision_lines.extend(other.decision_lines)
        self.explanation_lines.extend(other.explanation_lines)
        self.scores = np.concatenate([self.scores, other.scores])
        self.bands = np.concatenate([self.bands, other.bands])
        if other.X is not None:
            self.X = other.X if self.X is None else np.vstack([self.X, other.X])


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
    events: Sequence[Mapping[str, Any]] | EventColumns,
    *,
    received_at: float | None = None,
    shadow: bool = False,
    explain: bool = True,
) -> ScoredBatch:
    """Score ``events`` (ScoringEvent-shaped mappings, or the decoder's columns) with ``model``.

    ``received_at`` (``time.time()`` when the batch arrived) is the start of ``latency_ms``.
    With ``explain=False`` no explanations are built (shadow scoring needs none).
    """
    received = time.time() if received_at is None else received_at
    columns = events if isinstance(events, EventColumns) else EventColumns.from_events(events)
    X = columns.matrix_for(model.spec)
    if X is not None:  # read from the records for this spec: every event valid
        vectorised = VectorisedBatch(X, list(range(len(columns))), [])
    else:
        vectorised = _vectorise(model.spec, columns.features)
    rows, X = vectorised.rows, vectorised.X
    result = ScoredBatch(rejects=list(vectorised.rejects))
    if not rows:
        return result
    try:
        raw = model.raw_output(X)
        explained = model.explainer.explain(X) if explain else None
    except Exception as exc:  # the model's own failure: isolate the events that cause it
        return _isolate_failures(model, columns, rows, result, exc, received, shadow, explain)
    scored = columns if len(rows) == len(columns) else columns.take(rows)
    _build(model, scored, raw, explained, result, received, shadow)
    result.rows = list(rows)
    result.X = X
    return result


def _vectorise(spec: FeatureSpec, features: list[dict[str, Any]]) -> VectorisedBatch:
    """``spec.vectorise(features)``, in one compiled call when every value is plainly valid
    (:func:`~streams.core._native.dense_rows`); the spec's own vectoriser, which gives each
    invalid event its reason, takes any other batch."""
    X = np.empty((len(features), len(spec.columns)))
    if type(features) is list and dense_rows(features, spec.layout, X):
        return VectorisedBatch(X, list(range(len(features))), [])
    return spec.vectorise(features)


def _isolate_failures(
    model: ScoringModel,
    columns: EventColumns,
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
            model, columns.take(part), received_at=received, shadow=shadow, explain=explain
        )
        result.extend(sub, part)
    return result


def _build(
    model: ScoringModel,
    scored: EventColumns,
    raw: np.ndarray,
    explained: Any,
    result: ScoredBatch,
    received: float,
    shadow: bool,
) -> None:
    """Decide, give reasons, and render the batch's records: numpy once per batch, then
    one renderer call per kind of record (:mod:`streams.core.wire`), nothing per event."""
    policy = model.policy
    scores = model.score(raw)
    bands = policy.bands(scores)
    labels: list[str] = policy.labels(bands).tolist()
    count = len(labels)
    scored_at = datetime.now(UTC)
    latency = max(0.0, (scored_at.timestamp() - received) * 1000.0)

    decision = Template()
    decision.constant("schema_version", SCHEMA_VERSION)
    decision.column("event_id", "str", scored.event_ids)
    decision.column("entity_id", "str", scored.entity_ids)
    decision.column("decision", "str", labels)
    decision.column("score", "f64", scores)
    decision.constant("thresholds", policy.thresholds)
    if explained is None:
        decision.constant("reason_codes", [])
    else:
        per_feature = _per_feature(model, explained)
        result.explanation_lines = _explanations(model, scored, raw, explained, per_feature)
        _reason_codes(decision, model, bands, per_feature)
    decision.constant("model", model.ref)
    decision.segment("input_hash", _input_hashes(scored))
    decision.column("event_time", "str", scored.event_times)
    decision.column("context", "strmap", scored.contexts)
    decision.constant("scored_at", scored_at.isoformat())
    decision.constant("latency_ms", latency)
    decision.constant("shadow", shadow)
    result.decision_lines = decision.render(count)
    result.labels, result.bands = labels, bands
    result.event_ids, result.entity_ids = scored.event_ids, scored.entity_ids
    result.contexts = scored.contexts
    result.scores = scores


def _input_hashes(scored: EventColumns) -> tuple[Any, ...]:
    """The renderer's segment for the events' :func:`input_hash`: the sha256 of each event's
    canonical features.

    Columns the compiled reader read come with the digests. Otherwise orjson is called once
    for the whole batch (a call per event costs several times more) and the renderer cuts
    its array between the objects: features are flat, so ``},{`` occurs exactly once
    between two of them, and more often only inside a string value; then each event is
    encoded by itself instead.
    """
    if scored.input_digests is not None:
        return ("sha256_digests", scored.input_digests)
    whole = _CANONICAL(scored.features)
    if whole.count(b"},{") == len(scored) - 1:
        return ("sha256_objects", whole)
    return ("sha256", list(map(_CANONICAL, scored.features)))


def _per_feature(model: ScoringModel, explained: Any) -> np.ndarray:
    """Each event's contributions per input feature (a one-hot feature's columns summed)."""
    contributions = explained.contributions  # (n, n_columns), or (n, n_features) already
    if explained.per_feature:
        return np.asarray(contributions, dtype=np.float64)
    return np.asarray(model.spec.sum_per_feature(contributions), dtype=np.float64)


@dataclass(frozen=True)
class _Fragments:
    """A feature spec's constant pieces of JSON, encoded once per spec and reason texts."""

    reasons: list[bytes]
    """Per feature, a reason code up to its contribution: ``{"code":...,"contribution":``."""
    keys: list[bytes]
    """Per feature, its name as an object key: ``"salary":``."""
    names: list[bytes]
    """Per feature, its name as a JSON string."""


@lru_cache(maxsize=64)
def _fragments(names: tuple[str, ...], texts: tuple[str, ...]) -> _Fragments:
    reasons = [
        encoded({"code": f"RC_{name.upper()}", "feature": name, "text": text})[:-1]
        + b',"contribution":'
        for name, text in zip(names, texts, strict=True)
    ]
    return _Fragments(reasons, [encoded(name) + b":" for name in names], list(map(encoded, names)))


def _fragments_of(model: ScoringModel) -> _Fragments:
    names, texts = model.spec.names, model.manifest.reason_texts
    return _fragments(
        tuple(names), tuple(texts.get(name, f"{name} raised the risk") for name in names)
    )


def _reason_codes(
    decision: Template, model: ScoringModel, bands: np.ndarray, per_feature: np.ndarray
) -> None:
    """The decisions' reason codes: for an adverse decision the features that pushed it
    most, largest first, while each is material (see the module doc); none otherwise."""
    count, width = len(bands), min(MAX_REASON_CODES, per_feature.shape[1])
    adverse = np.flatnonzero(_ADVERSE_BAND[bands])
    pushed = per_feature[adverse]
    ranked = np.argsort(-pushed, axis=1, kind="stable")[:, :width]
    largest = pushed[np.arange(adverse.size)[:, None], ranked]
    # largest first, so the material ones are a prefix of each row
    material = (largest >= material_floor(pushed)[:, None]).sum(axis=1)
    if adverse.size == count:  # every decision adverse: the rows are the batch's
        order, values, kept = ranked, largest, material
    else:
        order = np.zeros((count, width), dtype=np.int64)
        values = np.zeros((count, width), dtype=np.float64)
        kept = np.zeros(count, dtype=np.int64)
        order[adverse], values[adverse], kept[adverse] = ranked, largest, material
    decision.items(
        "reason_codes",
        fragments=_fragments_of(model).reasons,
        index=order,
        values=values,
        counts=kept,
        close=b"}",
    )


def _explanations(
    model: ScoringModel,
    scored: EventColumns,
    raw: np.ndarray,
    explained: Any,
    per_feature: np.ndarray,
) -> list[bytes]:
    """The batch's explanation records: contributions per feature, the largest first."""
    fragments = _fragments_of(model)
    errors = np.abs(explained.base_value + explained.contributions.sum(axis=1) - raw)
    top = np.argsort(-np.abs(per_feature), axis=1, kind="stable")[:, :MAX_TOP_FEATURES]
    explanation = Template()
    explanation.constant("schema_version", SCHEMA_VERSION)
    explanation.column("event_id", "str", scored.event_ids)
    explanation.column("entity_id", "str", scored.entity_ids)
    explanation.constant("model", model.ref)
    explanation.constant("method", explained.method)
    explanation.constant("output_space", model.output_space)
    explanation.constant("base_value", float(explained.base_value))
    explanation.column("output_value", "f64", raw)
    explanation.items(
        "contributions",
        fragments=fragments.keys,
        values=per_feature,
        brackets=b"{}",
    )
    explanation.items("top_features", fragments=fragments.names, index=top)
    explanation.column("additivity_error", "f64", errors)
    return explanation.render(len(raw))
