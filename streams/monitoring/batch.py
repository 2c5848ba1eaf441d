"""What an engine hands the monitors: the scored events of a batch, or joined labels.

:class:`ObservedBatch` carries the design matrix ``X`` (columns as in the model's
``FeatureSpec.columns``), from which every raw value the monitors need is recovered without
a per-event loop: a numeric value is its column, *missing* is its ``name__missing`` column
(nullable features only; the imputed value is then ignored), a category is the one-hot
column that is set, a boolean is its 0/1 column. Times are epoch seconds (numbers,
``datetime64``, aware datetimes or RFC 3339 strings are accepted and converted), and
``partition``/``offset`` are the Kafka coordinates the windows and replay checks need.
:meth:`ObservedBatch.from_events` builds one from the ScoringEvent-shaped dicts that were
scored.

>>> batch = LabelledBatch(scores=[0.2, 0.9], decisions=["approve", "decline"], labels=[0, 1],
...     label_time=["2024-01-01T00:00:00Z", "2024-01-01T00:00:01Z"], partition=[0, 0],
...     offset=[5, 6])
>>> batch.label_time.tolist(), len(batch)
([1704067200.0, 1704067201.0], 2)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import repeat
from typing import Any

import numpy as np

from models.featurespec import FeatureSpec
from schemas.errors import MonitoringError

Context = Sequence[Mapping[str, str]] | Mapping[str, Sequence[str] | np.ndarray] | None
"""Per-event context dicts, or one array of values per attribute."""

MISSING_GROUP = "unknown"
"""The group of an event whose context lacks the attribute (as at training)."""


def epoch_seconds(values: Any) -> np.ndarray:
    """Times as float64 epoch seconds.

    >>> epoch_seconds(np.array(["1970-01-01T00:01:00"], dtype="datetime64[s]")).tolist()
    [60.0]
    """
    array = np.asarray(values)
    if array.dtype.kind in "iuf":
        return array.astype(np.float64).reshape(-1)
    if array.dtype.kind == "M":
        return array.astype("datetime64[us]").astype(np.int64).reshape(-1) / 1e6
    out = np.empty(array.size, dtype=np.float64)
    for i, value in enumerate(array.reshape(-1).tolist()):
        when = datetime.fromisoformat(value) if isinstance(value, str) else value
        if not isinstance(when, datetime) or when.tzinfo is None:
            raise MonitoringError(f"time {value!r} is not an aware datetime or epoch seconds")
        out[i] = when.timestamp()
    return out


def _ints(name: str, values: Any, n: int) -> np.ndarray:
    array = np.asarray(values, dtype=np.int64).reshape(-1)
    if array.size != n:
        raise MonitoringError(f"{name} has {array.size} entries for {n} events")
    return array


def _check(name: str, array: np.ndarray, n: int) -> np.ndarray:
    if array.shape[0] != n:
        raise MonitoringError(f"{name} has {array.shape[0]} entries for {n} events")
    return array


def context_column(context: Context, attribute: str, n: int) -> np.ndarray:
    """One attribute's value per event (``"unknown"`` where absent), as a str array."""
    if context is None:
        return np.full(n, MISSING_GROUP)
    if isinstance(context, Mapping):
        column = context.get(attribute)
        values = np.full(n, MISSING_GROUP) if column is None else np.asarray(column, dtype=str)
    else:
        values = np.array([row.get(attribute, MISSING_GROUP) for row in context], dtype=str)
    values = _check(f"context {attribute!r}", values.reshape(-1), n)
    return np.where(values == "", "(empty)", values)


def context_groups(context: Context, attribute: str, n: int) -> tuple[list[str], np.ndarray]:
    """The distinct groups of :func:`context_column`, sorted, and each event's index into
    them: ``np.unique(context_column(...), return_inverse=True)``, with the groups as str.

    Per-event dicts of str values are grouped through a dict, in C-level calls (a numpy
    string array costs more to build and to sort than the batch's few groups do); any
    other context takes :func:`context_column`.

    >>> groups, group_of = context_groups([{"g": "b"}, {}, {"g": "b"}, {"g": ""}], "g", 4)
    >>> groups, group_of.tolist()
    (['(empty)', 'b', 'unknown'], [1, 2, 1, 0])
    """
    if isinstance(context, list) and _ONLY_DICTS.issuperset(map(type, context)):
        if len(context) != n:
            raise MonitoringError(
                f"context {attribute!r} has {len(context)} entries for {n} events"
            )
        first: dict[Any, int] = {}  # group -> the first event in it
        values = map(dict.get, context, repeat(attribute), repeat(MISSING_GROUP))
        firsts = list(map(first.setdefault, values, range(n)))
        distinct = list(first)
        if all(type(g) is str and not g.endswith("\0") for g in distinct):  # as numpy keeps it
            names = ["(empty)" if g == "" else g for g in distinct]
            groups = sorted(set(names))
            code = {name: i for i, name in enumerate(groups)}
            of_first = np.zeros(n, dtype=np.intp)
            of_first[list(first.values())] = [code[name] for name in names]
            return groups, of_first[np.asarray(firsts, dtype=np.intp)]
    unique, inverse = np.unique(context_column(context, attribute, n), return_inverse=True)
    return unique.tolist(), inverse.reshape(-1)


_ONLY_DICTS = frozenset({dict})


@dataclass(frozen=True, eq=False, repr=False)
class ObservedBatch:
    """The scored events of one batch, row-aligned (see module doc)."""

    X: np.ndarray
    scores: np.ndarray
    decisions: np.ndarray
    event_time: np.ndarray
    partition: np.ndarray
    offset: np.ndarray
    context: Context = None

    def __init__(
        self,
        X: Any,
        scores: Any,
        decisions: Any,
        event_time: Any,
        partition: Any,
        offset: Any,
        context: Context = None,
    ) -> None:
        matrix = np.asarray(X, dtype=np.float64)
        if matrix.ndim != 2:
            raise MonitoringError(f"X must be a 2-d design matrix, got shape {matrix.shape}")
        n = matrix.shape[0]
        set_ = object.__setattr__
        set_(self, "X", matrix)
        set_(self, "scores", _check("scores", np.asarray(scores, dtype=np.float64), n))
        set_(self, "decisions", _check("decisions", np.asarray(decisions, dtype=str), n))
        set_(self, "event_time", _check("event_time", epoch_seconds(event_time), n))
        set_(self, "partition", _ints("partition", partition, n))
        set_(self, "offset", _ints("offset", offset, n))
        set_(self, "context", context)

    @classmethod
    def from_events(
        cls,
        spec: FeatureSpec,
        events: Sequence[Mapping[str, Any]],
        scores: Any,
        decisions: Any,
        partition: Any,
        offset: Any,
    ) -> ObservedBatch:
        """From the ScoringEvent-shaped dicts that were scored (vectorised again with the
        model's spec; they must all be valid, as scored events are)."""
        vectorised = spec.vectorise([event["features"] for event in events])
        if vectorised.rejects:
            first = vectorised.rejects[0]
            raise MonitoringError(f"event {first.index} does not fit the spec: {first.detail}")
        return cls(
            vectorised.X,
            scores,
            decisions,
            [event["event_time"] for event in events],
            partition,
            offset,
            [event.get("context", {}) for event in events],
        )

    def __len__(self) -> int:
        return int(self.X.shape[0])

    @property
    def times(self) -> np.ndarray:
        return self.event_time

    def take(self, rows: np.ndarray) -> ObservedBatch:
        """The events at ``rows`` (a boolean mask or indices)."""
        index = np.flatnonzero(rows) if rows.dtype == bool else rows
        return ObservedBatch(
            self.X[index],
            self.scores[index],
            self.decisions[index],
            self.event_time[index],
            self.partition[index],
            self.offset[index],
            _take_context(self.context, index, len(self)),
        )


@dataclass(frozen=True, eq=False, repr=False)
class LabelledBatch:
    """Joined (score, decision, label) triples; ``label_time`` places them in windows.

    ``labels`` are 0/1 with 1 the adverse outcome; ``partition``/``offset`` are the
    coordinates of the feedback records; ``context`` is the scored event's context.
    """

    scores: np.ndarray
    decisions: np.ndarray
    labels: np.ndarray
    label_time: np.ndarray
    partition: np.ndarray
    offset: np.ndarray
    context: Context = None

    def __init__(
        self,
        scores: Any,
        decisions: Any,
        labels: Any,
        label_time: Any,
        partition: Any,
        offset: Any,
        context: Context = None,
    ) -> None:
        score_array = np.asarray(scores, dtype=np.float64).reshape(-1)
        n = score_array.size
        label_array = _ints("labels", labels, n)
        if not np.isin(label_array, (0, 1)).all():
            raise MonitoringError("labels must be 0 or 1 (1 = adverse outcome)")
        set_ = object.__setattr__
        set_(self, "scores", score_array)
        set_(self, "decisions", _check("decisions", np.asarray(decisions, dtype=str), n))
        set_(self, "labels", label_array)
        set_(self, "label_time", _check("label_time", epoch_seconds(label_time), n))
        set_(self, "partition", _ints("partition", partition, n))
        set_(self, "offset", _ints("offset", offset, n))
        set_(self, "context", context)

    def __len__(self) -> int:
        return int(self.scores.size)

    @property
    def times(self) -> np.ndarray:
        return self.label_time

    def take(self, rows: np.ndarray) -> LabelledBatch:
        """The triples at ``rows`` (a boolean mask or indices)."""
        index = np.flatnonzero(rows) if rows.dtype == bool else rows
        return LabelledBatch(
            self.scores[index],
            self.decisions[index],
            self.labels[index],
            self.label_time[index],
            self.partition[index],
            self.offset[index],
            _take_context(self.context, index, len(self)),
        )


def _take_context(context: Context, index: np.ndarray, n: int) -> Context:
    if context is None:
        return None
    if isinstance(context, Mapping):
        return {k: _check(f"context {k!r}", np.asarray(v), n)[index] for k, v in context.items()}
    return [context[i] for i in index.tolist()]
