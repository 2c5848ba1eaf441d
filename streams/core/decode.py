"""Decode raw record values into ScoringEvent-shaped dicts, with exactly the contract's verdict.

Validating every record with pydantic (``ScoringEvent.model_validate_json``) is too slow for
the hot path. Each value is first decoded by msgspec into a typed mirror of
:class:`schemas.contracts.ScoringEvent` (:class:`_FastEvent`: the types, lengths and counts
checked in C while parsing), then its timestamp is checked. A value the mirror refuses is
parsed with orjson and checked by a hand-written mirror (:func:`_conforms`), which accepts
the few spellings msgspec's types do not (an integer between 2**63 and 2**64). Both mirrors
are deliberately a little *stricter* than the contract: whatever they do not accept goes to
pydantic, on the original bytes, which gives the verdict, the reject reason and its
wording. So a record is accepted exactly when the contract accepts it; pydantic is only paid
for rejects and rare unusual spellings.

Decided here without pydantic: a null value (a tombstone), a value over ``max_bytes``, and a
value that is not UTF-8 (``INVALID_ENCODING``; pydantic would say ``INVALID_JSON``).

Where orjson and the contract's JSON parser (jiter) differ, the contract wins:

- ``NaN``/``Infinity`` literals and numbers beyond a double (``1e400``): orjson refuses
  them, pydantic parses them and rejects them as ``NON_FINITE``;
- integers beyond 64 bits: orjson turns them into the nearest float, the contract keeps
  integers; both accept them as feature values, and an accepted event keeps orjson's float
  (the model sees a float64 either way, and orjson can serialise it again). An integer too
  big for a double is refused by orjson but accepted by the contract, so it reaches the
  event as a Python ``int`` (the feature spec rejects it when vectorising, e.g. as
  ``NON_FINITE`` for a numeric feature);
- nesting: orjson parses 1024 levels, jiter refuses more than about 200 (``INVALID_JSON``).

Both parsers keep the last of duplicate keys and both refuse lone surrogates (``"\\ud800"``),
a byte order mark, and invalid UTF-8.

A batch of ordinary events (all bytes, each within ``max_bytes``, accepted by the typed
mirror and the timestamp check, or refused by the contract) is decoded whole, with C-level
calls and no Python per accepted event (:func:`_decode_ordinary`; a refused value is judged
alone); the accepted events come as :class:`EventColumns`, their dicts built only when
:attr:`DecodedBatch.events` is read. Any other batch is decoded one value at a time
(:func:`_decode_each`, the reference the batch path is tested against).

>>> ok = (b'{"event_id": "e-1", "entity_id": "c-9", "event_time": "2024-05-01T12:00:00Z",'
...       b' "features": {"salary": 52000.0, "car": "sedan", "owner": true, "age": null}}')
>>> batch = decode_events([ok, b"[1, 2]", None, b'{"event_id": '])
>>> batch.rows, batch.columns.event_ids, batch.columns.contexts, batch.event_times
([0], ['e-1'], [{}], [1714564800.0])
>>> batch.events[0]["event_time"], batch.events[0]["context"]
('2024-05-01T12:00:00Z', {})
>>> [(r.index, r.reason.value) for r in batch.rejects]
[(1, 'NOT_AN_OBJECT'), (2, 'SCHEMA_VIOLATION'), (3, 'INVALID_JSON')]
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Annotated, Any, Final, Literal, cast

import msgspec
import numpy as np
import orjson
import pydantic_core
from pydantic import ValidationError

from models.featurespec import FeatureSpec, Reject
from schemas.contracts import (
    MAX_CONTEXT_ENTRIES,
    MAX_CONTEXT_VALUE_LENGTH,
    MAX_FEATURE_NAME_LENGTH,
    MAX_FEATURE_STRING_LENGTH,
    MAX_FEATURES,
    MAX_ID_LENGTH,
    DeadLetter,
    RejectReason,
    ScoringEvent,
    reject_reason_for,
    validation_detail,
)
from streams.core._native import plain_events, rfc3339_seconds

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DecodedBatch",
    "EventColumns",
    "FallbackStats",
    "dead_letter",
    "decode_events",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES: Final = 1_048_576
"""Largest record value decoded (Kafka's default ``max.message.bytes`` is about this)."""

_FIELDS: Final = frozenset(
    {"schema_version", "event_id", "entity_id", "event_time", "features", "context"}
)
# RFC 3339 with an offset, every field in range except the day of the month (checked by
# parsing with datetime.fromisoformat, which gives the epoch seconds the monitors use).
# Narrower than the contract, never wider: the contract also accepts e.g. lowercase 't'/'z',
# a space separator, '+0100', no seconds, or an epoch in a string; those take the slow path.
# ASCII digits only: re's \d would also match e.g. Arabic digits.
_RFC3339: Final = re.compile(
    r"(?!0000)[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
_FROM_ISO: Final = datetime.fromisoformat
_ONLY_BYTES: Final = frozenset({bytes})
_MAX_JUDGED: Final = 64
"""Values the typed mirror refuses that a batch still decoded whole judges one by one."""
_LIMITS: Final = (
    MAX_ID_LENGTH,
    MAX_FEATURE_NAME_LENGTH,
    MAX_FEATURES,
    MAX_FEATURE_STRING_LENGTH,
    MAX_CONTEXT_ENTRIES,
    MAX_CONTEXT_VALUE_LENGTH,
)
"""The contract's limits, as the compiled reader takes them."""
_INT64_MIN: Final = -(2**63)
_UINT64_MAX: Final = 2**64 - 1


class EventColumns:
    """Accepted events field by field: ``event_ids[i]``, ``features[i]``, ... are event ``i``'s.

    ``event_times`` are as received; an absent context is ``{}``. The feature and context
    dicts are the decoded ones, shared (not copied) with :attr:`DecodedBatch.events` and
    with whatever :meth:`take` selects.

    Columns read by the compiled reader (:func:`_decode_plain`) also hold the design matrix
    of the spec they were read for (:meth:`matrix_for`) and :attr:`input_digests`, each
    event's 32-byte sha256 of its features (the digest of
    :func:`streams.core.scoring.input_hash`), one after the other; their feature dicts are
    decoded from the records only if :attr:`features` is read.
    """

    __slots__ = (
        "_features",
        "_matrix",
        "_raws",
        "contexts",
        "entity_ids",
        "event_ids",
        "event_times",
        "input_digests",
    )

    def __init__(
        self,
        event_ids: list[str],
        entity_ids: list[str],
        event_times: list[str],
        features: list[dict[str, Any]],
        contexts: list[dict[str, str]],
    ) -> None:
        self.event_ids, self.entity_ids, self.event_times = event_ids, entity_ids, event_times
        self.contexts = contexts
        self._features: list[dict[str, Any]] | None = features
        self._raws: Sequence[bytes] = ()
        self._matrix: tuple[FeatureSpec, np.ndarray] | None = None
        self.input_digests: bytes | None = None

    @classmethod
    def _read(
        cls,
        columns: tuple[list[str], list[str], list[str], list[dict[str, str]]],
        raws: Sequence[bytes],
        matrix: tuple[FeatureSpec, np.ndarray],
        input_digests: bytes,
    ) -> EventColumns:
        """Columns of plain records, their feature dicts left in ``raws`` until read."""
        event_ids, entity_ids, event_times, contexts = columns
        read = cls(event_ids, entity_ids, event_times, [], contexts)
        read._features, read._raws, read._matrix = None, raws, matrix
        read.input_digests = input_digests
        return read

    @property
    def features(self) -> list[dict[str, Any]]:
        if self._features is None:  # plain records: msgspec's mirror reads each the same
            self._features = [_FAST_DECODE(raw).features for raw in self._raws]
        return self._features

    def matrix_for(self, spec: FeatureSpec) -> np.ndarray | None:
        """The design matrix of every event, if these columns were read for ``spec``."""
        if self._matrix is not None and self._matrix[0] is spec:
            return self._matrix[1]
        return None

    def __len__(self) -> int:
        return len(self.event_ids)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EventColumns):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        names = ("event_ids", "entity_ids", "event_times", "features", "contexts")
        fields = ", ".join(f"{n}={v!r}" for n, v in zip(names, self._fields(), strict=True))
        return f"EventColumns({fields})"

    def _fields(self) -> tuple[list[Any], ...]:
        return (self.event_ids, self.entity_ids, self.event_times, self.features, self.contexts)

    def take(self, indices: Sequence[int]) -> EventColumns:
        """The events at ``indices``, in that order.

        >>> columns = EventColumns(["a", "b"], ["x", "y"], ["t0", "t1"], [{}, {}], [{}, {}])
        >>> columns.take([1]).event_ids, len(columns.take([1, 0, 1]))
        (['b'], 3)
        """
        features = self.features
        return EventColumns(
            [self.event_ids[i] for i in indices],
            [self.entity_ids[i] for i in indices],
            [self.event_times[i] for i in indices],
            [features[i] for i in indices],
            [self.contexts[i] for i in indices],
        )

    @classmethod
    def from_events(cls, events: Sequence[Mapping[str, Any]]) -> EventColumns:
        """Columns of ScoringEvent-shaped dicts (an absent ``context`` becomes ``{}``)."""
        return cls(
            [event["event_id"] for event in events],
            [event["entity_id"] for event in events],
            [event["event_time"] for event in events],
            [event["features"] for event in events],
            [event.get("context", {}) for event in events],
        )


@dataclass(frozen=True, init=False)
class DecodedBatch:
    """Accepted events (``rows[i]`` is the input index of event ``i``) and the rejects.

    The events are :attr:`columns`; :attr:`events` gives them as ScoringEvent-shaped dicts,
    built on first access when the batch was decoded whole. ``event_times[i]`` is event
    ``i``'s ``event_time`` in epoch seconds, as ``datetime.fromisoformat(...).timestamp()``
    gives it (the contract's own reading for the few spellings ``fromisoformat`` refuses),
    parsed while the timestamp was checked.

    Built from event dicts (``DecodedBatch(events, rows, rejects, event_times)``), as the
    one-by-one decoder and tests do; equal batches have equal columns, rows, rejects, times
    and the same ``schema_version`` (or none) per event.
    """

    columns: EventColumns
    rows: list[int]
    rejects: list[Reject]
    event_times: list[float]
    _versions: list[Any] = field(repr=False)  # each event's schema_version, else UNSET

    def __init__(
        self,
        events: list[dict[str, Any]],
        rows: list[int],
        rejects: list[Reject],
        event_times: list[float] | None = None,
    ) -> None:
        unset = msgspec.UNSET
        self._fill(
            EventColumns.from_events(events),
            rows,
            rejects,
            [] if event_times is None else event_times,
            [event.get("schema_version", unset) for event in events],
        )
        self.__dict__["events"] = events  # given: nothing to build

    @classmethod
    def _of_columns(
        cls,
        columns: EventColumns,
        rows: list[int],
        rejects: list[Reject],
        event_times: list[float],
        versions: list[Any],
    ) -> DecodedBatch:
        """A batch whose event dicts are built from ``columns`` when first read."""
        batch = cls.__new__(cls)
        batch._fill(columns, rows, rejects, event_times, versions)
        return batch

    def _fill(
        self,
        columns: EventColumns,
        rows: list[int],
        rejects: list[Reject],
        event_times: list[float],
        versions: list[Any],
    ) -> None:
        # frozen: the fields go straight into the instance's dict, bypassing __setattr__
        self.__dict__.update(
            columns=columns,
            rows=rows,
            rejects=rejects,
            event_times=event_times,
            _versions=versions,
        )

    @cached_property
    def events(self) -> list[dict[str, Any]]:
        """The accepted events as dicts, exactly as the one-by-one decoder makes them:
        ``context`` defaulted to ``{}``, ``schema_version`` present exactly when the record
        had it, keys in the same order."""
        columns, unset = self.columns, msgspec.UNSET
        events: list[dict[str, Any]] = []
        for event_id, entity_id, event_time, features, context, version in zip(
            columns.event_ids,
            columns.entity_ids,
            columns.event_times,
            columns.features,
            columns.contexts,
            self._versions,
            strict=True,
        ):
            event: dict[str, Any] = {
                "event_id": event_id,
                "entity_id": entity_id,
                "event_time": event_time,
                "features": features,
                "context": context,
            }
            if version is not unset:
                event["schema_version"] = version
            events.append(event)
        return events


@dataclass
class FallbackStats:
    """Events the contract accepted after the fast path passed them to pydantic.

    ``refused_by_fast_check``: parsed by orjson but outside the fast check (an unusual
    timestamp spelling, say). ``unparsed_by_orjson``: only the contract's parser could read
    them (an integer beyond a double). Both are correct but slow; tests assert they stay zero
    for ordinary and hostile input alike, except for the spellings documented above.
    """

    refused_by_fast_check: int = 0
    unparsed_by_orjson: int = 0


fallback_stats: Final = FallbackStats()
"""Process-wide counts of slow-path accepts (see :class:`FallbackStats`)."""


def _epoch_seconds(text: str) -> float | None:
    """``text`` in epoch seconds if it passes the fast timestamp check, else None.

    The pattern is checked first (``fromisoformat`` alone accepts more); parsing then checks
    the day of the month.
    """
    if _RFC3339.fullmatch(text) is None:
        return None
    try:
        return _FROM_ISO(text).timestamp()
    except ValueError:  # no such day in that month
        return None


def _conforms(event: dict[str, Any]) -> bool:
    """Whether ``event`` (as orjson parsed it) surely satisfies ScoringEvent.

    If it does, an absent ``context`` is set to ``{}`` on the way out.
    """
    if not event.keys() <= _FIELDS:
        return False
    value = event.get("event_id")
    if type(value) is not str or not 0 < len(value) <= MAX_ID_LENGTH:
        return False
    value = event.get("entity_id")
    if type(value) is not str or not 0 < len(value) <= MAX_ID_LENGTH:
        return False
    value = event.get("event_time")
    if type(value) is not str or _epoch_seconds(value) is None:
        return False
    if "schema_version" in event:
        value = event["schema_version"]
        if type(value) is not int or value != 1:
            return False
    features = event.get("features")
    if type(features) is not dict or len(features) > MAX_FEATURES:
        return False
    for name, value in features.items():
        if not 0 < len(name) <= MAX_FEATURE_NAME_LENGTH:
            return False
        kind = type(value)
        if kind is float:
            if value - value != 0.0:  # NaN or infinite (orjson makes neither; a safeguard)
                return False
        elif kind is str:
            if len(value) > MAX_FEATURE_STRING_LENGTH:
                return False
        elif kind is not int and kind is not bool and value is not None:
            return False
    if "context" in event:
        context = event["context"]
        if type(context) is not dict or len(context) > MAX_CONTEXT_ENTRIES:
            return False
        for name, value in context.items():
            if not 0 < len(name) <= MAX_FEATURE_NAME_LENGTH:
                return False
            if type(value) is not str or len(value) > MAX_CONTEXT_VALUE_LENGTH:
                return False
    else:
        event["context"] = {}
    return True


_UNPARSED: Final = object()


_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]
_Name = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_FEATURE_NAME_LENGTH)]
_Value = (
    Annotated[int, msgspec.Meta(ge=_INT64_MIN, le=2**63 - 1)]
    | float
    | Annotated[str, msgspec.Meta(max_length=MAX_FEATURE_STRING_LENGTH)]
    | bool
    | None
)


class _FastEvent(msgspec.Struct, forbid_unknown_fields=True):
    """ScoringEvent as msgspec checks it while decoding; the timestamp is checked after, and
    so are the feature names' lengths (:func:`_names_conform`: a length-constrained dict key
    costs msgspec a fifth of the decode, and after decoding only the names the event keeps
    count, as the contract keeps the last of duplicate keys)."""

    event_id: _Id
    entity_id: _Id
    event_time: str
    features: Annotated[dict[str, _Value], msgspec.Meta(max_length=MAX_FEATURES)]
    context: Annotated[
        dict[_Name, Annotated[str, msgspec.Meta(max_length=MAX_CONTEXT_VALUE_LENGTH)]],
        msgspec.Meta(max_length=MAX_CONTEXT_ENTRIES),
    ] = {}
    schema_version: Literal[1] | msgspec.UnsetType = msgspec.UNSET


_FAST_DECODE: Final = msgspec.json.Decoder(_FastEvent).decode


def _names_conform(features: Sequence[dict[str, Any]]) -> bool:
    """Whether every feature name of these events is as long as the contract allows
    (checked once per distinct name)."""
    return all(0 < len(name) <= MAX_FEATURE_NAME_LENGTH for name in set().union(*features))


def _judge(index: int, raw: bytes, parsed: Any) -> tuple[dict[str, Any], float] | Reject:
    """The slow path: the contract's verdict on ``raw``; ``parsed`` is orjson's, if any.

    An accepted event comes with its time in epoch seconds: ``fromisoformat``'s reading
    where it reads the spelling, as on the fast path, else the contract's.
    """
    if parsed is _UNPARSED:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Reject(
                index,
                RejectReason.INVALID_ENCODING,
                f"record value is not valid UTF-8: {exc.reason} at byte {exc.start}",
            )
    try:
        validated = ScoringEvent.model_validate_json(raw)
    except ValidationError as exc:
        return Reject(index, reject_reason_for(exc), validation_detail(exc))
    if isinstance(parsed, dict):
        fallback_stats.refused_by_fast_check += 1
        log.debug("record %d: accepted by the contract but not by the fast check", index)
        event = parsed
    else:
        fallback_stats.unparsed_by_orjson += 1
        log.debug("record %d: accepted by the contract but unreadable by orjson", index)
        event = pydantic_core.from_json(raw)
        event["features"] = {
            name: _as_orjson_would(value) for name, value in event["features"].items()
        }
    event.setdefault("context", {})
    try:
        seconds = _FROM_ISO(event["event_time"]).timestamp()
    except ValueError:  # e.g. a lowercase 't', or an epoch in a string
        seconds = validated.event_time.timestamp()
    return event, seconds


def _as_orjson_would(value: Any) -> Any:
    """orjson reads an integer beyond 64 bits as a float; do the same where a float holds it."""
    if type(value) is int and not _INT64_MIN <= value <= _UINT64_MAX:
        try:
            return float(value)
        except OverflowError:
            return value
    return value


def _as_bytes(value: object) -> bytes | None:
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return None


def decode_events(
    values: Sequence[bytes | None],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    spec: FeatureSpec | None = None,
) -> DecodedBatch:
    """Decode record values; each becomes an accepted event or a :class:`Reject`.

    Never raises on a value's content. Accepted events are orjson's dicts, ``context``
    defaulted to ``{}``, ``event_time`` kept as received (and parsed into
    :attr:`DecodedBatch.event_times`). With ``spec``, a batch of plain records is read by
    the compiled reader (:func:`_decode_plain`), which also writes their design matrix for
    ``spec``; any other batch of ordinary events is decoded whole (:func:`_decode_ordinary`),
    any other one value by value (:func:`_decode_each`), with the same outcome every way.
    """
    batch = None if spec is None else _decode_plain(values, max_bytes, spec)
    if batch is None:
        batch = _decode_ordinary(values, max_bytes)
    return _decode_each(values, max_bytes) if batch is None else batch


def _bytes_within(values: Sequence[bytes | None], max_bytes: int) -> list[bytes] | None:
    """``values`` as a list if there are some and each is bytes (not a subclass) within
    ``max_bytes``, as a batch path needs them; else None."""
    if not values or not _ONLY_BYTES.issuperset(map(type, values)):
        return None
    raws = cast("list[bytes]", values if type(values) is list else list(values))
    return raws if max(map(len, raws)) <= max_bytes else None


def _decode_plain(
    values: Sequence[bytes | None], max_bytes: int, spec: FeatureSpec
) -> DecodedBatch | None:
    """The batch read by :func:`~streams.core._native.plain_events` if every value is a
    plain record (see ``native/src/decode.rs``: narrower than the typed mirror, and
    holding exactly ``spec``'s features, each plainly valid), else None.

    Nothing is rejected here, and the accepted events are those :func:`_decode_ordinary`
    would accept, with the same fields; the tests hold the two to that.
    """
    raws = _bytes_within(values, max_bytes)
    if raws is None:
        return None
    X = np.empty((len(raws), len(spec.columns)))
    read = plain_events(raws, spec.layout, _LIMITS, X)
    if read is None:
        return None
    event_ids, entity_ids, event_times, contexts, seconds, versioned, digests = read
    columns = EventColumns._read(
        (event_ids, entity_ids, event_times, contexts), raws, (spec, X), digests
    )
    versions: list[Any] = [msgspec.UNSET] * len(raws)
    for index in versioned:
        versions[index] = 1
    return DecodedBatch._of_columns(columns, list(range(len(raws))), [], seconds, versions)


def _decode_ordinary(values: Sequence[bytes | None], max_bytes: int) -> DecodedBatch | None:
    """The batch decoded whole if its values are ordinary, else None.

    Ordinary: bytes (not a subclass), within ``max_bytes``, and either accepted by the typed
    mirror, its feature names and its timestamp (exactly what :func:`_decode_each` accepts
    on its fast path), or refused by the contract. The mirror runs over the batch in C-level
    calls and the names of the whole batch are checked at once; a value refused by either is
    judged alone by :func:`_decode_each`, and the batch goes on after it. Anything else sends
    the whole batch to :func:`_decode_each`: a value of another type or over the size limit,
    a timestamp the fast check refuses, a refused value the contract accepts after all (an
    unusual spelling), or more than :data:`_MAX_JUDGED` refused values.
    """
    raws = _bytes_within(values, max_bytes)
    if raws is None:
        return None
    mirrored = _mirror(raws)
    if mirrored is None:
        return None
    fast, rows, refused = mirrored
    if not fast:  # nothing for the batch path to do
        return None
    features = [event.features for event in fast]
    if not _names_conform(features):  # judge the events that have such a name alone
        fast, rows, refused, features = _without_bad_names(fast, rows, refused, features)
        if not fast or len(refused) > _MAX_JUDGED:
            return None
    times = [event.event_time for event in fast]
    seconds = rfc3339_seconds(times)  # None unless every time passes the fast check
    if seconds is None:
        return None
    rejects: list[Reject] = []
    if refused:
        alone = _decode_each([raws[i] for i in refused], max_bytes)
        if alone.rows:
            return None
        rejects = [Reject(refused[r.index], r.reason, r.detail) for r in alone.rejects]
    columns = EventColumns(
        [event.event_id for event in fast],
        [event.entity_id for event in fast],
        times,
        features,
        [event.context for event in fast],
    )
    versions = [event.schema_version for event in fast]
    return DecodedBatch._of_columns(columns, rows, rejects, seconds, versions)


def _without_bad_names(
    fast: list[_FastEvent], rows: list[int], refused: list[int], features: list[dict[str, Any]]
) -> tuple[list[_FastEvent], list[int], list[int], list[dict[str, Any]]]:
    """The batch path's events without those holding a feature name the contract refuses;
    their indices join the refused ones."""
    good = [_names_conform((names,)) for names in features]
    keep = [i for i, ok in enumerate(good) if ok]
    refused = sorted(refused + [rows[i] for i, ok in enumerate(good) if not ok])
    return [fast[i] for i in keep], [rows[i] for i in keep], refused, [features[i] for i in keep]


def _mirror(raws: Sequence[bytes]) -> tuple[list[_FastEvent], list[int], list[int]] | None:
    """The typed mirror over the batch: the decoded events, their indices, and the indices
    of the values it refused; None past :data:`_MAX_JUDGED` refusals.

    ``list.extend`` keeps what ``map`` decoded before a value raised, so the batch resumes
    after each refused value."""
    fast: list[_FastEvent] = []
    rows: list[int] = []
    refused: list[int] = []
    start, count = 0, len(raws)
    while start < count:
        before = len(fast)
        try:
            fast.extend(map(_FAST_DECODE, raws[start:] if start else raws))
        except msgspec.DecodeError:  # a validation error too
            failed = start + len(fast) - before
            rows.extend(range(start, failed))
            refused.append(failed)
            if len(refused) > _MAX_JUDGED:
                return None
            start = failed + 1
        else:
            rows.extend(range(start, count))
            break
    return fast, rows, refused


def _decode_each(values: Sequence[bytes | None], max_bytes: int) -> DecodedBatch:
    """Decode the values one by one. The fast path (the typed mirror, then the timestamp
    check) is written into the loop: it is what an ordinary event costs in a batch that is
    not all ordinary."""
    events: list[dict[str, Any]] = []
    times: list[float] = []
    rows: list[int] = []
    rejects: list[Reject] = []
    fast_decode, epoch_seconds, unset = _FAST_DECODE, _epoch_seconds, msgspec.UNSET
    for index, raw in enumerate(values):
        if type(raw) is not bytes:
            if raw is None:
                rejects.append(Reject(index, RejectReason.SCHEMA_VIOLATION, "record has no value"))
                continue
            converted = _as_bytes(raw)
            if converted is None:
                detail = f"record value is {type(raw).__name__}, expected bytes"
                rejects.append(Reject(index, RejectReason.SCHEMA_VIOLATION, detail))
                continue
            raw = converted
        if len(raw) > max_bytes:
            detail = f"record value is {len(raw)} bytes; at most {max_bytes} are accepted"
            rejects.append(Reject(index, RejectReason.RECORD_TOO_LARGE, detail))
            continue
        try:
            fast = fast_decode(raw)
        except msgspec.DecodeError:  # a validation error too
            fast = None
        if (
            fast is not None
            and _names_conform((fast.features,))
            and (seconds := epoch_seconds(fast.event_time)) is not None
        ):
            event: dict[str, Any] = {
                "event_id": fast.event_id,
                "entity_id": fast.entity_id,
                "event_time": fast.event_time,
                "features": fast.features,
                "context": fast.context,
            }
            if fast.schema_version is not unset:
                event["schema_version"] = fast.schema_version
        else:
            verdict = _slow(index, raw)
            if isinstance(verdict, Reject):
                rejects.append(verdict)
                continue
            event, seconds = verdict
        events.append(event)
        times.append(seconds)
        rows.append(index)
    return DecodedBatch(events, rows, rejects, times)


def _slow(index: int, raw: bytes) -> tuple[dict[str, Any], float] | Reject:
    """What the fast path did not accept: orjson and the hand-written mirror, else the
    contract (:func:`_judge`); an accepted event comes with its time in epoch seconds."""
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        parsed = _UNPARSED
    if type(parsed) is dict and _conforms(parsed):
        return parsed, _FROM_ISO(parsed["event_time"]).timestamp()
    return _judge(index, raw, parsed)


def _readable_event_id(value: bytes | None) -> object:
    if not value:
        return None
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        try:
            parsed = pydantic_core.from_json(value)
        except ValueError:
            return None
    return parsed.get("event_id") if isinstance(parsed, dict) else None


def dead_letter(
    reject: Reject,
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    timestamp_ms: int | None,
    scorer_version: str,
) -> dict[str, Any]:
    """A DeadLetter record (as a JSON-ready dict) for a rejected record, with its bytes.

    Carries the record's ``event_id`` when its value parses far enough to hold a valid one
    (a value rejected for its size is not parsed again).
    """
    event_id = None
    if reject.reason is not RejectReason.RECORD_TOO_LARGE:
        event_id = _readable_event_id(value)
    letter = DeadLetter.from_raw(
        reason=reject.reason,
        detail=reject.detail,
        topic=topic,
        partition=partition,
        offset=offset,
        value=value,
        key=key,
        timestamp_ms=timestamp_ms,
        event_id=event_id,
        scorer_version=scorer_version,
    )
    return letter.model_dump(mode="json")
