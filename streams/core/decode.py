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

>>> ok = (b'{"event_id": "e-1", "entity_id": "c-9", "event_time": "2024-05-01T12:00:00Z",'
...       b' "features": {"salary": 52000.0, "car": "sedan", "owner": true, "age": null}}')
>>> batch = decode_events([ok, b"[1, 2]", None, b'{"event_id": '])
>>> batch.rows, batch.events[0]["event_time"], batch.events[0]["context"], batch.event_times
([0], '2024-05-01T12:00:00Z', {}, [1714564800.0])
>>> [(r.index, r.reason.value) for r in batch.rejects]
[(1, 'NOT_AN_OBJECT'), (2, 'SCHEMA_VIOLATION'), (3, 'INVALID_JSON')]
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Final, Literal

import msgspec
import orjson
import pydantic_core
from pydantic import ValidationError

from models.featurespec import Reject
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

__all__ = ["DEFAULT_MAX_BYTES", "DecodedBatch", "FallbackStats", "dead_letter", "decode_events"]

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
_INT64_MIN: Final = -(2**63)
_UINT64_MAX: Final = 2**64 - 1


@dataclass(frozen=True)
class DecodedBatch:
    """Accepted events (``rows[i]`` is the input index of ``events[i]``) and the rejects.

    ``event_times[i]`` is the ``event_time`` of ``events[i]`` in epoch seconds, as
    ``datetime.fromisoformat(...).timestamp()`` gives it (the contract's own reading for the
    few spellings ``fromisoformat`` refuses), parsed while the timestamp was checked.
    """

    events: list[dict[str, Any]]
    rows: list[int]
    rejects: list[Reject]
    event_times: list[float] = field(default_factory=list)


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
    """ScoringEvent as msgspec checks it while decoding (the timestamp is checked after)."""

    event_id: _Id
    entity_id: _Id
    event_time: str
    features: Annotated[dict[_Name, _Value], msgspec.Meta(max_length=MAX_FEATURES)]
    context: Annotated[
        dict[_Name, Annotated[str, msgspec.Meta(max_length=MAX_CONTEXT_VALUE_LENGTH)]],
        msgspec.Meta(max_length=MAX_CONTEXT_ENTRIES),
    ] = {}
    schema_version: Literal[1] | msgspec.UnsetType = msgspec.UNSET


_FAST_DECODE: Final = msgspec.json.Decoder(_FastEvent).decode


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
    values: Sequence[bytes | None], *, max_bytes: int = DEFAULT_MAX_BYTES
) -> DecodedBatch:
    """Decode record values; each becomes an accepted event or a :class:`Reject`.

    Never raises on a value's content. Accepted events are orjson's dicts, ``context``
    defaulted to ``{}``, ``event_time`` kept as received (and parsed into
    :attr:`DecodedBatch.event_times`). The fast path (the typed mirror, then the timestamp
    check) is written into the loop: it is what every ordinary event costs.
    """
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
        if fast is not None and (seconds := epoch_seconds(fast.event_time)) is not None:
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
