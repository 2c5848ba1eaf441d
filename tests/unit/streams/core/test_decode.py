"""decode_events: the contract's verdict, fast; and dead letters for what it rejects.

The central test decodes several thousand hostile variants of valid events and checks each
verdict and reason against ``ScoringEvent.model_validate_json`` on the same bytes.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import random
import struct
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import numpy as np
import orjson
import pydantic_core
import pytest
from pydantic import ValidationError

from models.datasets import agrawal_events
from models.featurespec import Feature, FeatureSpec, Reject
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
)
from streams.core import decode
from streams.core._native import plain_events, rfc3339_seconds
from streams.core.decode import dead_letter, decode_events
from streams.core.scoring import input_hash, score_batch
from tests.support.models import Registered

SEED = 20240501
VALID: dict[str, Any] = {
    "schema_version": 1,
    "event_id": "e-1",
    "entity_id": "c-9",
    "event_time": "2024-05-01T12:00:00.123456Z",
    "features": {
        "salary": 52000.0,
        "commission": 0.0,
        "hyears": 3,
        "car": "sedan",
        "owner": True,
        "age": None,
    },
    "context": {"age_band": "30-44"},
}


def event(**changes: Any) -> dict[str, Any]:
    """VALID with top-level fields replaced; a value of ``...`` removes the field."""
    result = copy.deepcopy(VALID)
    for name, value in changes.items():
        if value is ...:
            result.pop(name, None)
        else:
            result[name] = value
    return result


def with_features(**changes: Any) -> dict[str, Any]:
    return event(features={**VALID["features"], **changes})


def encode(record: Any) -> bytes:
    return orjson.dumps(record)


def contract_reason(raw: bytes) -> RejectReason | None:
    """The contract's verdict on ``raw``: None to accept, else the reject reason.

    The one documented difference: bytes that are not UTF-8 are INVALID_ENCODING for the
    decoder, where pydantic calls them INVALID_JSON.
    """
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return RejectReason.INVALID_ENCODING
    try:
        ScoringEvent.model_validate_json(raw)
    except ValidationError as exc:
        return reject_reason_for(exc)
    return None


def outcome(raw: bytes | None) -> Reject | dict[str, Any]:
    batch = decode_events([raw])
    assert len(batch.events) + len(batch.rejects) == 1
    return batch.events[0] if batch.events else batch.rejects[0]


# --- the hostile corpus --------------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """JSON text spliced into a record as is (NaN, 1e400, deep nesting, ...)."""

    text: str


def dump(record: Any, ascii_only: bool) -> bytes:
    """JSON bytes for ``record``, Raw values spliced in; lone surrogates survive either as
    ``\\ud800`` escapes (``ascii_only``) or as (invalid) UTF-8 bytes."""
    raws: list[str] = []

    def swap(value: Any) -> Any:
        if isinstance(value, Raw):
            raws.append(value.text)
            return f"@@RAW{len(raws) - 1}@@"
        if isinstance(value, dict):
            return {key: swap(item) for key, item in value.items()}
        if isinstance(value, list):
            return [swap(item) for item in value]
        return value

    text = json.dumps(swap(record), ensure_ascii=ascii_only)
    for i, raw in enumerate(raws):
        text = text.replace(f'"@@RAW{i}@@"', raw, 1)
    return text.encode("utf-8", "surrogatepass")


def nested(depth: int) -> Raw:
    return Raw("[" * depth + "]" * depth)


HUGE_INTEGERS = [2**63 - 1, 2**63, 2**64 - 1, 2**64, 2**64 + 1, -(2**63) - 1, 10**20, 10**308]
VALUES: list[Any] = [
    *HUGE_INTEGERS,
    10**309,  # beyond a double: orjson cannot read it, the contract accepts it
    10**400,
    Raw("1" + "0" * 5000),  # beyond what the contract's parser reads
    0, -1, 1, 0.0, -0.0, 1.5, 1e308, 5e-324, float("nan"), float("inf"), float("-inf"),
    Raw("1e400"), Raw("-1e400"), Raw("1e-400"), Raw("NaN"), Raw("Infinity"), Raw("-Infinity"),
    Raw("+Infinity"), Raw("-0"), Raw("1E2"), Raw("1.0e+2"), Raw("01"), Raw("1."), Raw(".5"),
    Raw("tru"), Raw("'x'"), Raw("undefined"),
    True, False, None,
    "", "x", "1", "NaN", "true", "x" * MAX_FEATURE_STRING_LENGTH,
    "x" * (MAX_FEATURE_STRING_LENGTH + 1), "🙂" * MAX_FEATURE_STRING_LENGTH,
    "🙂" * (MAX_FEATURE_STRING_LENGTH + 1), "e\u0301" * (MAX_FEATURE_STRING_LENGTH // 2),
    "\ud800", "\udc00", "\ud83d\ude00", "\u200b", "\ufeff", "\x00", "\x7f", "a\nb",
    [], [1], {}, {"a": 1}, nested(50), nested(250), nested(1100),
]  # fmt: skip
NAMES = [
    "", "a", "x" * MAX_FEATURE_NAME_LENGTH, "x" * (MAX_FEATURE_NAME_LENGTH + 1),
    "🙂" * MAX_FEATURE_NAME_LENGTH, "🙂" * (MAX_FEATURE_NAME_LENGTH + 1), " ", "\u200b",
    "\ud800", "\udfff", "é" * (MAX_FEATURE_NAME_LENGTH + 1), "salary", "\x00", "a.b",
]  # fmt: skip
IDS: list[Any] = [
    "", "x", "x" * MAX_ID_LENGTH, "x" * (MAX_ID_LENGTH + 1), " ", "\t", "\u200b",
    "🙂" * MAX_ID_LENGTH, "🙂" * (MAX_ID_LENGTH + 1), "\ud800", "\ud83d\ude00", "\x00",
    "e\u0301" * (MAX_ID_LENGTH // 2), "é" * (MAX_ID_LENGTH + 1),
    5, 5.0, True, None, [], {}, 10**400, Raw("NaN"),
]  # fmt: skip
SCHEMA_VERSIONS: list[Any] = [
    1, 2, 0, -1, 1.0, True, False, "1", None, [], {}, 2**64 + 1, 10**400,
    Raw("1.0"), Raw("1e0"), Raw("10e-1"), Raw("1E0"), Raw("NaN"),
]  # fmt: skip
ODD_TIMES: list[Any] = [
    "", "now", "2024-05-01", "2024-05-01T12:00:00", "2024-05-01T12:00:00+01",
    "2024-05-01T12:00:00 Z", " 2024-05-01T12:00:00Z", "2024-05-01T12:00:00Z\n",
    "20240501T120000Z", "2024-W18-3T12:00:00Z", "+2024-05-01T12:00:00Z",
    "٢٠٢٤-05-01T12:00:00Z", "2024-05-01T12:00:00.Z", "2024-05-01T12:00:00+05:30:15",
    "2024-05-01T12:00:00UTC", "2024-05-01T12:00:00+24:00", "2024-05-01T12:00:00+00:60",
    "2024-05-01T23:59:60Z", "2024-02-30T12:00:00Z", "1e10", "2024-05-01T12:00:00\ud800",
    1714564800, 1714564800.5, True, None, [], {}, Raw("NaN"), 2**64 + 1, 10**400,
]  # fmt: skip
EXTRA_NAMES = ["even_time", "Event_id", "event_id ", "", "\u200bevent_id", "label", "eventId"]
WHOLE: list[bytes] = [
    b"", b" ", b"[]", b"[{}]", b"1", b"-1.5", b'"event"', b"null", b"true", b"{}",
    b"NaN", b"1e400", b"\xef\xbb\xbf{}", b"{" * 300, b"[" * 1100 + b"]" * 1100,
    b"[" * 150 + b"]" * 150, encode([VALID]), encode({"event": VALID}),
    b"\xef\xbb\xbf" + encode(VALID), encode(VALID) + b"x", encode(VALID) + b" \n\t\r",
    encode(VALID) * 2, encode(VALID).replace(b'"', b"'"),
]  # fmt: skip


def random_time(rng: random.Random) -> Any:
    """A timestamp shaped like RFC 3339 with fields in and out of range, or an odd one."""
    if rng.random() < 0.3:
        return rng.choice(ODD_TIMES)
    year = rng.choice(
        ["0000", "0001", "1900", "2000", "2024", "9999", f"{rng.randrange(10**4):04d}"]
    )
    month, day = rng.randrange(14), rng.choice([rng.randrange(33), 28, 29, 30, 31])
    hour, minute, second = rng.randrange(25), rng.randrange(61), rng.randrange(62)
    digits = rng.randrange(10)
    fraction = rng.choice(["", "."]) if digits == 0 else "." + str(rng.randrange(10**digits))
    offset = rng.choice(["Z", "", "+", "-"])
    if offset in "+-":
        offset += f"{rng.randrange(26):02d}:{rng.randrange(62):02d}"
    return f"{year}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{fraction}{offset}"


def _mutate_features(rng: random.Random, record: dict[str, Any]) -> None:
    features = record.get("features")
    if not isinstance(features, dict):
        features = record["features"] = {}
    roll = rng.random()
    if roll < 0.55:
        name = rng.choice([*features, "new"]) if features else "new"
        features[name] = rng.choice(VALUES)
    elif roll < 0.8:
        features[rng.choice(NAMES)] = rng.choice([1.0, "x", None])
    else:
        size = rng.choice([0, MAX_FEATURES - 1, MAX_FEATURES, MAX_FEATURES + 1])
        record["features"] = {f"f{i}": 1.0 for i in range(size)}


def _mutate_context(rng: random.Random, record: dict[str, Any]) -> None:
    roll = rng.random()
    if roll < 0.15:
        record["context"] = rng.choice([None, [], "x", 1, {}, Raw("NaN")])
        return
    context = record.get("context")
    if not isinstance(context, dict):
        context = record["context"] = {}
    if roll < 0.5:
        length = rng.choice([0, MAX_CONTEXT_VALUE_LENGTH, MAX_CONTEXT_VALUE_LENGTH + 1])
        context["band"] = rng.choice(["x" * length, "🙂" * length, *VALUES[-30:]])
    elif roll < 0.75:
        context[rng.choice(NAMES)] = "x"
    else:
        size = rng.choice([MAX_CONTEXT_ENTRIES, MAX_CONTEXT_ENTRIES + 1])
        record["context"] = {f"c{i}": "x" for i in range(size)}


FIELD_MUTATIONS: list[Callable[[random.Random, dict[str, Any]], None]] = [
    lambda rng, r: r.pop(rng.choice(sorted(r)), None) if r else None,
    lambda rng, r: r.__setitem__(rng.choice(EXTRA_NAMES), rng.choice([1, "x", None])),
    lambda rng, r: r.__setitem__("schema_version", rng.choice(SCHEMA_VERSIONS)),
    lambda rng, r: r.__setitem__(rng.choice(["event_id", "entity_id"]), rng.choice(IDS)),
    lambda rng, r: r.__setitem__("event_time", random_time(rng)),
    lambda rng, r: r.__setitem__("event_time", random_time(rng)),
    lambda rng, r: r.__setitem__("features", rng.choice([None, [], "x", 1, [VALID["features"]]])),
    _mutate_features,
    _mutate_features,
    _mutate_features,
    _mutate_context,
]


def _duplicate_key(rng: random.Random, raw: bytes) -> bytes:
    key = rng.choice([b"event_id", b"features", b"event_time"])
    pair = b'"%s":%s' % (key, rng.choice([b"5", b'"x"', b"{}", b"null"]))
    if rng.random() < 0.5:  # first: the real key, later, wins in both parsers
        return raw.replace(b"{", b"{" + pair + b",", 1)
    return raw[: raw.rindex(b"}")] + b"," + pair + b"}" if b"}" in raw else raw


def _truncate(rng: random.Random, raw: bytes) -> bytes:
    return raw[: rng.randrange(len(raw) + 1)]


def _overwrite_byte(rng: random.Random, raw: bytes) -> bytes:
    i = rng.randrange(len(raw))
    return raw[:i] + bytes([rng.randrange(256)]) + raw[i + 1 :]


def _insert_bytes(rng: random.Random, raw: bytes) -> bytes:
    i = rng.randrange(len(raw) + 1)
    return raw[:i] + rng.randbytes(rng.randrange(1, 4)) + raw[i:]


def _delete_byte(rng: random.Random, raw: bytes) -> bytes:
    i = rng.randrange(len(raw))
    return raw[:i] + raw[i + 1 :]


def _noise(rng: random.Random, raw: bytes) -> bytes:
    return rng.randbytes(rng.randrange(64))


BYTE_MUTATIONS = [_truncate, _overwrite_byte, _insert_bytes, _delete_byte, _noise, _duplicate_key]


def hostile_corpus(count: int, seed: int = SEED) -> Iterator[bytes]:
    rng = random.Random(seed)
    bases = [VALID, event(schema_version=...), event(context=...), event(context={})]
    for _ in range(count):
        roll = rng.random()
        if roll < 0.04:
            yield rng.choice(WHOLE)
            continue
        record = copy.deepcopy(rng.choice(bases))
        for _ in range(rng.choice([0, 1, 1, 1, 2, 3])):
            rng.choice(FIELD_MUTATIONS)(rng, record)
        raw = dump(record, ascii_only=rng.random() < 0.5)
        if raw and rng.random() < 0.2:
            raw = rng.choice(BYTE_MUTATIONS)(rng, raw)
        yield raw


def _as_orjson_reads(value: Any) -> Any:
    if type(value) is int and not -(2**63) <= value < 2**64:
        try:
            return float(value)
        except OverflowError:
            return value
    return value


def test_hostile_corpus_gets_exactly_the_contracts_verdict_and_reason() -> None:
    corpus = list(hostile_corpus(6000))
    before = copy.copy(decode.fallback_stats)
    batch = decode_events(corpus)
    after = decode.fallback_stats

    accepted = dict(zip(batch.rows, batch.events, strict=True))
    rejected = {reject.index: reject for reject in batch.rejects}
    assert sorted([*accepted, *rejected]) == list(range(len(corpus)))
    expected_reasons: Counter[str] = Counter()
    unreadable_by_orjson = 0
    for index, raw in enumerate(corpus):
        expected = contract_reason(raw)
        expected_reasons[str(expected)] += 1
        if expected is None:
            assert index in accepted, (raw[:300], rejected.get(index))
            got = accepted[index]
            parsed = pydantic_core.from_json(raw)
            assert got["event_time"] == parsed["event_time"]
            assert got["features"] == {
                k: _as_orjson_reads(v) for k, v in parsed["features"].items()
            }
            assert got["context"] == parsed.get("context", {})
            ScoringEvent.model_validate(got)
            try:
                orjson.loads(raw)
            except orjson.JSONDecodeError:
                unreadable_by_orjson += 1
        else:
            assert index in rejected, (raw[:300], "accepted, contract says", expected)
            assert rejected[index].reason == expected, raw[:300]
            assert rejected[index].detail
            if expected is RejectReason.INVALID_ENCODING:
                with pytest.raises(ValidationError) as info:
                    ScoringEvent.model_validate_json(raw)
                assert reject_reason_for(info.value) is RejectReason.INVALID_JSON

    # the fast check alone, also on what only the contract's parser reads (NaN, 10**400):
    # whatever it passes, the contract accepts
    for raw in corpus:
        try:
            parsed = pydantic_core.from_json(raw)
        except ValueError:
            continue
        if isinstance(parsed, dict) and decode._conforms(parsed):
            assert contract_reason(raw) is None, raw[:300]

    # the fast check never had to defer an event the contract accepts ...
    assert after.refused_by_fast_check == before.refused_by_fast_check
    # ... and only integers beyond a double needed the contract's own parser
    assert after.unparsed_by_orjson - before.unparsed_by_orjson == unreadable_by_orjson > 0
    # the corpus is hostile but not only hostile: every outcome is well represented
    assert expected_reasons["None"] > 1000
    for reason in ("INVALID_JSON", "NOT_AN_OBJECT", "INVALID_ENCODING", "NON_FINITE"):
        assert expected_reasons[reason] >= 20, expected_reasons
    assert expected_reasons["SCHEMA_VIOLATION"] > 1000


def test_the_typed_decoder_alone_never_accepts_what_the_contract_rejects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    corpus = list(hostile_corpus(6000))
    # without its slow path, the decoder accepts only what the fast path accepts
    monkeypatch.setattr(
        decode, "_slow", lambda index, raw: Reject(index, RejectReason.SCHEMA_VIOLATION, "slow")
    )
    batch = decode_events(corpus)
    monkeypatch.undo()
    passed = [corpus[index] for index in batch.rows]
    for raw in passed:
        assert contract_reason(raw) is None, raw[:300]
    # it is the path ordinary events take: most of what the contract accepts passes it
    accepted = sum(contract_reason(raw) is None for raw in corpus)
    assert len(passed) > 0.9 * accepted


def test_timestamps_shaped_like_rfc3339_agree_with_the_contract() -> None:
    rng = random.Random(SEED + 1)
    times = [random_time(rng) for _ in range(4000)]
    values = [dump(event(event_time=t), ascii_only=True) for t in times]
    before = decode.fallback_stats.refused_by_fast_check
    batch = decode_events(values)
    accepted = set(batch.rows)
    for index, raw in enumerate(values):
        assert (index in accepted) == (contract_reason(raw) is None), times[index]
    assert decode.fallback_stats.refused_by_fast_check == before
    assert 200 < len(accepted) < 3800
    # each accepted time is parsed once, to what the monitors used to parse again
    assert batch.event_times == [
        datetime.fromisoformat(times[index]).timestamp() for index in batch.rows
    ]


# --- reasons and details ---------------------------------------------------------------------

NAN_SALARY = dump(with_features(salary=Raw("NaN")), True)
DEEP = dump(with_features(salary=nested(250)), True)


@pytest.mark.parametrize(
    ("raw", "reason", "words"),
    [
        (None, RejectReason.SCHEMA_VIOLATION, ["record has no value"]),
        (b"{" + b" " * 2_000_000 + b"}", RejectReason.RECORD_TOO_LARGE, ["2000002", "1048576"]),
        (encode(VALID).replace(b"sedan", b"sed\xff"), RejectReason.INVALID_ENCODING, ["UTF-8"]),
        (encode(VALID)[:-7], RejectReason.INVALID_JSON, ["Invalid JSON"]),
        (DEEP, RejectReason.INVALID_JSON, ["recursion limit"]),
        (b"[1, 2]", RejectReason.NOT_AN_OBJECT, ["object"]),
        (b'"event"', RejectReason.NOT_AN_OBJECT, ["object"]),
        (NAN_SALARY, RejectReason.NON_FINITE, ["salary", "NaN"]),
        (dump(with_features(loan=Raw("-1e400")), True), RejectReason.NON_FINITE, ["loan"]),
        (encode(with_features(salary=[1])), RejectReason.SCHEMA_VIOLATION, ["salary", "array"]),
        (encode(with_features(car="x" * 257)), RejectReason.SCHEMA_VIOLATION, ["car", "257"]),
        (encode(with_features(**{"x" * 65: 1})), RejectReason.SCHEMA_VIOLATION, ["features"]),
        (encode(event(event_time=...)), RejectReason.SCHEMA_VIOLATION, ["event_time", "required"]),
        (encode(event(even_time="x")), RejectReason.SCHEMA_VIOLATION, ["even_time"]),
        (encode(event(event_id="x" * 129)), RejectReason.SCHEMA_VIOLATION, ["event_id", "128"]),
        (encode(event(entity_id="")), RejectReason.SCHEMA_VIOLATION, ["entity_id"]),
        (encode(event(event_id=7)), RejectReason.SCHEMA_VIOLATION, ["event_id", "string"]),
        (
            encode(event(event_time="2024-05-01T12:00:00")),
            RejectReason.SCHEMA_VIOLATION,
            ["event_time", "UTC offset"],
        ),
        (encode(event(event_time=1714564800)), RejectReason.SCHEMA_VIOLATION, ["event_time"]),
        (encode(event(schema_version=True)), RejectReason.SCHEMA_VIOLATION, ["schema_version"]),
        (encode(event(schema_version=1.0)), RejectReason.SCHEMA_VIOLATION, ["schema_version"]),
        (encode(event(schema_version=2)), RejectReason.SCHEMA_VIOLATION, ["schema_version"]),
        (encode(event(context={"band": 3})), RejectReason.SCHEMA_VIOLATION, ["context", "band"]),
        (
            encode(event(features={f"f{i}": 1 for i in range(257)})),
            RejectReason.SCHEMA_VIOLATION,
            ["features", "257"],
        ),
    ],
)
def test_each_reject_has_its_reason_and_a_specific_detail(
    raw: bytes | None, reason: RejectReason, words: list[str]
) -> None:
    got = outcome(raw)
    assert isinstance(got, Reject)
    assert (got.index, got.reason) == (0, reason)
    for word in words:
        assert word in got.detail


def test_a_value_of_exactly_max_bytes_is_decoded() -> None:
    raw = encode(VALID)
    assert decode_events([raw], max_bytes=len(raw)).rows == [0]
    rejected = decode_events([raw], max_bytes=len(raw) - 1).rejects
    assert [r.reason for r in rejected] == [RejectReason.RECORD_TOO_LARGE]


# --- accepted events -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "when",
    [
        "2024-05-01T12:00:00Z",
        "2024-05-01T12:00:00.5+05:30",
        "2024-05-01T12:00:00.123456789Z",  # Java's Instant.toString(): nanoseconds
        "2024-02-29T23:59:59-23:59",
        "0001-01-01T00:00:00+00:00",
        "9999-12-31T23:59:59.999999-00:00",
    ],
)
def test_accepted_events_keep_event_time_as_received(when: str) -> None:
    before = decode.fallback_stats.refused_by_fast_check
    got = outcome(encode(event(event_time=when)))
    assert isinstance(got, dict)
    assert got["event_time"] == when
    assert decode.fallback_stats.refused_by_fast_check == before  # on the fast path
    # ... and in epoch seconds, exactly as fromisoformat reads it (offsets and fractions too)
    assert decode_events([encode(event(event_time=when))]).event_times == [
        datetime.fromisoformat(when).timestamp()
    ]


@pytest.mark.parametrize(
    "when",
    [
        "2024-05-01t12:00:00z",  # RFC 3339 allows lowercase
        "2024-05-01 12:00:00Z",  # ... and a space
        "2024-05-01T12:00:00+0100",
        "2024-05-01T12:00Z",
        "2024-05-01T12:00:00,5Z",
        "2024-05-01T12:00:00.1234567890Z",
        "1714564800",  # an epoch in a string: the contract reads it as UTC (see the report)
    ],
)
def test_spellings_only_the_contract_accepts_take_the_slow_path(when: str) -> None:
    before = decode.fallback_stats.refused_by_fast_check
    got = outcome(encode(event(event_time=when)))
    assert isinstance(got, dict)
    assert got["event_time"] == when
    assert decode.fallback_stats.refused_by_fast_check == before + 1
    # their time: fromisoformat's reading where it has one, else the contract's
    raw = encode(event(event_time=when))
    (seconds,) = decode_events([raw]).event_times
    assert seconds == ScoringEvent.model_validate_json(raw).event_time.timestamp()
    try:
        parsed = datetime.fromisoformat(when).timestamp()
    except ValueError:
        assert when in ("2024-05-01t12:00:00z", "1714564800")
    else:
        assert seconds == parsed


def test_context_defaults_to_a_fresh_empty_dict_and_is_kept_when_given() -> None:
    batch = decode_events([encode(event(context=...)), encode(event(context=...)), encode(VALID)])
    first, second, third = batch.events
    assert first["context"] == second["context"] == {}
    assert first["context"] is not second["context"]
    assert third["context"] == {"age_band": "30-44"}
    assert third == VALID


def test_integers_beyond_64_bits_are_accepted_as_the_contract_does() -> None:
    before = decode.fallback_stats.unparsed_by_orjson
    batch = decode_events(
        [
            encode(with_features(loan=2**64 - 1)),  # orjson's largest integer
            dump(with_features(loan=2**64 + 1), True),  # orjson: the nearest float
            dump(with_features(loan=10**400), True),  # orjson: unreadable
            dump(with_features(loan=Raw("1" + "0" * 5000)), True),  # beyond the contract too
            dump(event(schema_version=2**64 + 1), True),
        ]
    )
    assert batch.rows == [0, 1, 2]
    loans = [e["features"]["loan"] for e in batch.events]
    assert loans == [2**64 - 1, float(2**64), 10**400]
    assert [type(loan) for loan in loans] == [int, float, int]
    assert [(r.index, r.reason) for r in batch.rejects] == [
        (3, RejectReason.INVALID_JSON),
        (4, RejectReason.SCHEMA_VIOLATION),
    ]
    assert decode.fallback_stats.unparsed_by_orjson == before + 1


def test_duplicate_keys_keep_the_last_value_like_the_contract() -> None:
    tail = b'"entity_id":"c","event_time":"2024-05-01T12:00:00Z","features":{}}'
    good_last = outcome(b'{"event_id":5,"event_id":"x",' + tail)
    bad_last = outcome(b'{"event_id":"x","event_id":5,' + tail)
    assert isinstance(good_last, dict) and good_last["event_id"] == "x"
    assert isinstance(bad_last, Reject) and bad_last.reason is RejectReason.SCHEMA_VIOLATION


def test_unicode_lengths_count_code_points_and_lone_surrogates_are_not_json() -> None:
    emoji = outcome(encode(event(event_id="🙂" * MAX_ID_LENGTH)))
    assert isinstance(emoji, dict)
    too_long = outcome(encode(event(event_id="🙂" * (MAX_ID_LENGTH + 1))))
    assert isinstance(too_long, Reject) and "event_id" in too_long.detail
    pair = outcome(dump(with_features(car="\ud83d\ude00"), True))
    assert isinstance(pair, dict) and pair["features"]["car"] == "😀"
    for lone in ("\ud800", "\udc00"):
        escaped = outcome(dump(with_features(car=lone), True))
        assert isinstance(escaped, Reject) and escaped.reason is RejectReason.INVALID_JSON
        encoded = outcome(dump(with_features(car=lone), False))
        assert isinstance(encoded, Reject) and encoded.reason is RejectReason.INVALID_ENCODING


def test_rows_and_reject_indexes_follow_the_input_in_a_mixed_batch() -> None:
    values: list[Any] = [
        encode(event(event_id="a")),
        None,
        b"{oops",
        encode(event(event_id="b")),
        NAN_SALARY,
        bytearray(encode(event(event_id="c"))),
        encode(event(event_id="d", event_time="2024-05-01 12:00:00Z")),  # slow path
        b"[]",
        42,
    ]
    batch = decode_events(values)
    assert batch.rows == [0, 3, 5, 6]
    assert [e["event_id"] for e in batch.events] == ["a", "b", "c", "d"]
    assert [(r.index, r.reason) for r in batch.rejects] == [
        (1, RejectReason.SCHEMA_VIOLATION),
        (2, RejectReason.INVALID_JSON),
        (4, RejectReason.NON_FINITE),
        (7, RejectReason.NOT_AN_OBJECT),
        (8, RejectReason.SCHEMA_VIOLATION),
    ]
    assert batch.event_times == [datetime.fromisoformat(VALID["event_time"]).timestamp()] * 3 + [
        datetime.fromisoformat("2024-05-01 12:00:00Z").timestamp()
    ]
    assert decode_events([]) == decode.DecodedBatch([], [], [], [])


def test_decode_never_raises_on_random_input() -> None:
    rng = random.Random(SEED + 2)
    valid = encode(VALID)
    values: list[Any] = []
    for _ in range(3000):
        roll = rng.random()
        if roll < 0.5:
            values.append(rng.randbytes(rng.randrange(300)))
        elif roll < 0.8:  # JSON-ish noise
            values.append(bytes(rng.choice(b'{}[]":,0123456789.eE+-tfnul\\ ') for _ in range(40)))
        else:  # a valid record with a few random bytes overwritten
            raw = bytearray(valid)
            for _ in range(rng.randrange(1, 4)):
                raw[rng.randrange(len(raw))] = rng.randrange(256)
            values.append(bytes(raw))
    values += [None, "", "\ud800", memoryview(valid), object(), 3.5]
    batch = decode_events(values)
    assert sorted([*batch.rows, *(r.index for r in batch.rejects)]) == list(range(len(values)))
    assert all(reject.detail for reject in batch.rejects)


# --- dead letters ----------------------------------------------------------------------------


def letter(reject: Reject, value: bytes | None, key: bytes | None = b"c-9") -> dict[str, Any]:
    return dead_letter(
        reject, topic="events", partition=3, offset=42, key=key, value=value,
        timestamp_ms=1714564800000, scorer_version="0.1.0",
    )  # fmt: skip


def test_dead_letter_validates_and_keeps_the_bytes_and_coordinates() -> None:
    raw = encode(event(event_time="2024-05-01T12:00:00"))
    (reject,) = decode_events([raw]).rejects
    record = letter(reject, raw)
    parsed = DeadLetter.model_validate_json(orjson.dumps(record))
    assert parsed.original_value() == raw and parsed.source_key() == b"c-9"
    assert (record["source_topic"], record["source_partition"], record["source_offset"]) == (
        "events",
        3,
        42,
    )
    assert record["reason"] == "SCHEMA_VIOLATION" and "event_time" in record["detail"]
    assert record["event_id"] == "e-1"
    assert record["source_timestamp_ms"] == 1714564800000


@pytest.mark.parametrize(
    ("value", "event_id"),
    [
        (NAN_SALARY, "e-1"),  # orjson cannot read it; the contract's parser can
        (encode(event(event_id="x" * 129)), None),  # not a valid identifier
        (encode(event(event_id=7)), None),
        (b"{oops", None),
        (b"\xff\xfe", None),
        (b"[1]", None),
        (None, None),
    ],
)
def test_dead_letter_names_the_event_only_when_it_can(
    value: bytes | None, event_id: str | None
) -> None:
    (reject,) = decode_events([value]).rejects
    record = letter(reject, value, key=None)
    DeadLetter.model_validate(record)
    assert record["event_id"] == event_id
    assert record["source_key_b64"] is None
    assert base64.b64decode(record["original_value_b64"]) == (value or b"")


def test_dead_letter_does_not_parse_a_record_rejected_for_its_size() -> None:
    value = encode(event(features={"blob": "x" * 200}))
    (reject,) = decode_events([value], max_bytes=100).rejects
    record = letter(reject, value)
    assert record["reason"] == "RECORD_TOO_LARGE" and record["event_id"] is None


# --- a batch decoded whole -------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool() -> list[bytes]:
    """Values the batch path takes on their own: the corpus's ordinary events (odd values
    included) and events with random timestamps the fast check accepts."""
    rng = random.Random(SEED + 3)
    candidates = [
        *hostile_corpus(3000, seed=SEED + 4),
        *(dump(event(event_time=random_time(rng)), ascii_only=True) for _ in range(500)),
        encode(event(event_time="2024-02-29T23:59:59-23:59", schema_version=...)),
    ]
    pool = [raw for raw in candidates if ordinary([raw])]
    assert len(pool) > 800
    return pool


def refused_by_mirror(raw: bytes) -> bool:
    try:
        decode._FAST_DECODE(raw)
    except msgspec.DecodeError:
        return True
    return False


def ordinary(values: list[Any], max_bytes: int = decode.DEFAULT_MAX_BYTES) -> bool:
    """Whether the batch path decodes ``values`` (rather than the one-by-one loop)."""
    return decode._decode_ordinary(values, max_bytes) is not None


def assert_same_batch(got: decode.DecodedBatch, expected: decode.DecodedBatch) -> None:
    """Field for field; repr tells 1, 1.0 and True apart, and -0.0 from 0.0, and shows
    the order of the keys."""
    assert repr(got.columns) == repr(expected.columns)
    assert got.rows == expected.rows
    assert got.rejects == expected.rejects
    assert repr(got.event_times) == repr(expected.event_times)
    assert repr(got.events) == repr(expected.events)
    assert got == expected
    assert len(got.columns) == len(got.rows) == len(got.events) == len(got.event_times)


@pytest.mark.parametrize("size", [1, 7, 1000])
def test_an_ordinary_batch_is_decoded_whole_exactly_as_one_by_one(
    size: int, pool: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(SEED + size)
    batches = [rng.choices(pool, k=size) for _ in range(max(3, 3000 // size))]
    expected = [decode._decode_each(values, decode.DEFAULT_MAX_BYTES) for values in batches]
    assert all(not batch.rejects for batch in expected)
    # the batch path alone: decode_events must not need the loop for any of them
    monkeypatch.setattr(decode, "_decode_each", lambda values, max_bytes: pytest.fail("loop"))
    for values, reference in zip(batches, expected, strict=True):
        assert_same_batch(decode_events(values), reference)


class BytesSubclass(bytes):
    pass


@pytest.mark.parametrize("size", [1, 7, 1000])
def test_a_batch_with_anything_unusual_has_the_one_by_one_outcome(
    size: int, pool: list[bytes]
) -> None:
    """Whichever path a batch takes: rejects judged alone inside a batch decoded whole, or
    the whole batch one by one."""
    rng = random.Random(SEED + 10 + size)
    unusual = [raw for raw in hostile_corpus(2000, seed=SEED + 5) if not ordinary([raw])]
    unusual += [None, bytearray(encode(VALID)), encode(VALID).decode(), memoryview(b"{}")]
    unusual += [BytesSubclass(encode(VALID))]  # rejected ("expected bytes"), not decoded
    for _ in range(max(3, 600 // size)):
        values: list[Any] = rng.choices(pool, k=size)
        for _ in range(rng.choice([1, 1, 2, size])):
            values[rng.randrange(size)] = rng.choice(unusual)
        assert_same_batch(decode_events(values), decode._decode_each(values, 1_048_576))


@pytest.mark.parametrize("refused", [1, 2, decode._MAX_JUDGED])
def test_rejects_are_judged_alone_and_the_rest_of_the_batch_decoded_whole(
    refused: int, pool: list[bytes]
) -> None:
    rng = random.Random(SEED + 20 + refused)
    rejected = [  # refused by the typed mirror itself, and by the contract
        raw
        for raw in hostile_corpus(2000, seed=SEED + 6)
        if type(raw) is bytes and refused_by_mirror(raw) and contract_reason(raw) is not None
    ]
    values: list[Any] = rng.choices(pool, k=1000)
    where = sorted(rng.sample(range(1000), refused))
    for i in where:
        values[i] = rng.choice(rejected)
    assert ordinary(values)
    batch = decode_events(values)
    assert_same_batch(batch, decode._decode_each(values, 1_048_576))
    assert [r.index for r in batch.rejects] == where
    # one more refusal than the batch path judges alone: the whole batch one by one
    values[next(i for i in range(1000) if i not in where)] = rejected[0]
    if refused == decode._MAX_JUDGED:
        assert not ordinary(values)
        assert_same_batch(decode_events(values), decode._decode_each(values, 1_048_576))


@pytest.mark.parametrize(
    "convert", [lambda raw: None, bytearray, memoryview, bytes.decode, BytesSubclass]
)
def test_one_value_not_of_type_bytes_sends_the_batch_one_by_one(
    convert: Callable[[bytes], Any],
) -> None:
    values: list[Any] = [encode(event(event_id=f"e-{i}")) for i in range(7)]
    values[3] = convert(values[3])
    assert not ordinary(values)
    batch = decode_events(values)
    assert_same_batch(batch, decode._decode_each(values, 1_048_576))
    # bytearray, memoryview and str are converted and accepted; None and a subclass are not
    assert (3 in batch.rows) == (convert in (bytearray, memoryview, bytes.decode))


def test_one_value_over_max_bytes_sends_the_batch_one_by_one() -> None:
    values = [encode(event(event_id=f"e-{i}")) for i in range(7)]
    longest = max(map(len, values))
    assert ordinary(values, longest)
    assert not ordinary(values, longest - 1)
    batch = decode_events(values, max_bytes=longest - 1)
    assert_same_batch(batch, decode._decode_each(values, longest - 1))
    assert batch.rejects and {r.reason for r in batch.rejects} == {RejectReason.RECORD_TOO_LARGE}


@pytest.mark.parametrize(
    "when",
    [
        "2024-05-01T12:00:00Z\n2024-05-01T12:00:00Z",  # two lines, each a timestamp
        "2024-05-01T12:00:00Z\n",
        "\n2024-05-01T12:00:00Z",
        "2024-05-01T12:00:00Z\n\n2024-05-01T12:00:00Z",
        "2023-02-29T00:00:00Z",  # passes the pattern; no such day
        "2024-02-30T12:00:00+01:00",
        "2024-04-31T12:00:00Z",
    ],
)
@pytest.mark.parametrize("position", [0, 3, 6])
def test_a_timestamp_that_would_cheat_the_joined_check_is_judged_alone(
    when: str, position: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = [encode(event(event_id=f"e-{i}")) for i in range(7)]
    values[position] = encode(event(event_time=when))
    assert contract_reason(values[position]) is RejectReason.SCHEMA_VIOLATION
    assert not ordinary(values)
    assert not ordinary([values[position]])
    batch = decode_events(values)
    assert_same_batch(batch, decode._decode_each(values, 1_048_576))
    assert batch.rows == [i for i in range(7) if i != position]
    assert [(r.index, r.reason) for r in batch.rejects] == [
        (position, RejectReason.SCHEMA_VIOLATION)
    ]
    # an empty time beside a valid one joins into a trailing "\n": still refused
    pair = [encode(VALID), encode(event(event_time=""))]
    assert not ordinary(pair)
    assert_same_batch(decode_events(pair), decode._decode_each(pair, 1_048_576))
    if "\n" in when:  # refused before parsing: even a parser reading one line would not see it

        def first_line(text: str) -> datetime:
            return datetime.fromisoformat(next(filter(None, text.split("\n"))))

        monkeypatch.setattr(decode, "_FROM_ISO", first_line)
        assert not ordinary(values) and not ordinary([values[position]])


def test_event_dicts_are_built_once_on_first_read_and_carry_schema_version_as_received() -> None:
    values = [encode(VALID), encode(event(schema_version=..., context=...))]
    batch = decode_events(values)
    assert ordinary(values)
    assert "events" not in vars(batch)  # not built until read
    first, second = batch.events
    assert batch.events is batch.events
    keys = ["event_id", "entity_id", "event_time", "features", "context", "schema_version"]
    assert list(first) == keys and list(second) == keys[:-1]
    assert first == VALID and second == event(schema_version=..., context={})
    assert first["features"] is batch.columns.features[0]
    assert second["context"] is batch.columns.contexts[1] and second["context"] == {}
    # a batch rebuilt from its own event dicts is the same batch
    assert decode.DecodedBatch(batch.events, batch.rows, batch.rejects, batch.event_times) == batch
    without_version = decode.DecodedBatch(
        [first, event(context={})], batch.rows, batch.rejects, batch.event_times
    )
    assert without_version != batch


def test_columns_from_events_and_take() -> None:
    events = [event(event_id="a"), event(event_id="b", context=...), event(event_id="c")]
    columns = decode.EventColumns.from_events(events)
    assert len(columns) == 3
    assert columns.event_ids == ["a", "b", "c"]
    assert columns.entity_ids == ["c-9"] * 3
    assert columns.event_times == [VALID["event_time"]] * 3
    assert columns.features == [VALID["features"]] * 3
    assert columns.contexts == [{"age_band": "30-44"}, {}, {"age_band": "30-44"}]
    assert columns.features[0] is events[0]["features"]

    taken = columns.take([2, 0, 2])
    assert taken.event_ids == ["c", "a", "c"]
    assert taken.contexts[0] is events[2]["context"]
    assert taken == decode.EventColumns.from_events([events[2], events[0], events[2]])
    assert len(columns.take([])) == 0 and columns.take([]) == decode.EventColumns.from_events([])

    # the columns of a decoded batch are those of its events, row for row
    batch = decode_events([encode(e) for e in events] + [b"[]"])
    assert batch.columns == decode.EventColumns.from_events(batch.events)
    assert batch.columns.take([1]) == decode.EventColumns.from_events(batch.events[1:2])


def test_the_public_names_are_declared() -> None:
    assert "EventColumns" in decode.__all__
    assert all(hasattr(decode, name) for name in decode.__all__)


@pytest.mark.parametrize(
    "name", ["", "x" * (MAX_FEATURE_NAME_LENGTH + 1), "é" * (MAX_FEATURE_NAME_LENGTH + 1)]
)
def test_a_feature_name_the_contract_refuses_is_judged_alone_in_a_batch_decoded_whole(
    name: str,
) -> None:
    values = [encode(event(event_id=f"e-{i}")) for i in range(7)]
    values[4] = encode(with_features(**{name: 1.0}))
    assert contract_reason(values[4]) is not None
    assert ordinary(values)
    batch = decode_events(values)
    assert_same_batch(batch, decode._decode_each(values, 1_048_576))
    assert [r.index for r in batch.rejects] == [4] and 4 not in batch.rows


def test_only_the_features_an_event_keeps_have_their_names_checked() -> None:
    """Of duplicate keys the last counts, for the contract and for the typed mirror: a
    refused name in an overridden ``features`` object does not refuse the event."""
    long_name = "x" * (MAX_FEATURE_NAME_LENGTH + 1)
    raw = encode(VALID)[:-1] + b', "features": {"%s": 1.0}, "features": {"salary": 1.0}}' % (
        long_name.encode()
    )
    assert contract_reason(raw) is None
    values = [encode(VALID), raw]
    assert ordinary(values)
    batch = decode_events(values)
    assert_same_batch(batch, decode._decode_each(values, 1_048_576))
    assert batch.rows == [0, 1] and batch.columns.features[1] == {"salary": 1.0}


def python_seconds(text: str) -> float | None:
    """The one-by-one decoder's reading of a timestamp: its fast check, then fromisoformat."""
    return decode._epoch_seconds(text)


def test_the_batch_reads_timestamps_exactly_as_python_does() -> None:
    """rfc3339_seconds (Rust) accepts a timestamp exactly when the fast check does, and gives
    ``fromisoformat(...).timestamp()`` to the bit; beyond the years it can divide exactly
    it gives None, and the batch is read one by one."""
    rng = random.Random(SEED + 30)
    times = [t for t in (random_time(rng) for _ in range(20_000)) if type(t) is str]
    times += [
        "2024-02-29T00:00:00Z", "2023-02-29T00:00:00Z", "2000-02-29T23:59:59.999999999Z",
        "1900-02-29T00:00:00Z", "0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59",
        "1970-01-01T00:00:00Z", "1969-12-31T23:59:59.9999995Z", "2024-05-01T12:00:00.1234567Z",
        "2024-05-01T12:00:00.1234567890Z", "2024-05-01T12:00:00.Z", "2024-05-01t12:00:00z",
        "2024-05-01T12:00:00+0530", "2024-05-01T12:00:00+05:30 ", " 2024-05-01T12:00:00Z",
        "2024-05-01T12:00:00Z\n", "２０２４-05-01T12:00:00Z", "2024-05-01T12:00:60Z",
        "2255-06-05T23:47:34.740991Z", "2255-06-05T23:47:34.740992Z", "",
    ]  # fmt: skip
    mutated = []
    for text in times[:5000]:
        chars = list(text)
        if chars:
            chars[rng.randrange(len(chars))] = rng.choice("0123456789-:T.Z+ é\n")
        mutated.append("".join(chars))
    accepted = 0
    for text in times + mutated:
        expected = python_seconds(text)
        got = rfc3339_seconds([text])
        if expected is None:
            assert got is None, text
            continue
        accepted += 1
        if got is None:  # only where the microseconds outgrow 53 bits
            assert abs(expected) * 1e6 >= 2**53 - 1e6, text
            continue
        assert struct.pack("<d", got[0]) == struct.pack("<d", expected), text
    assert accepted > 5000
    valid = [t for t in times if python_seconds(t) is not None and abs(python_seconds(t)) < 9e9]
    assert rfc3339_seconds(valid) == [python_seconds(t) for t in valid]
    assert rfc3339_seconds([*valid, "2023-02-29T00:00:00Z"]) is None
    assert rfc3339_seconds([]) == []


# The compiled reader (decode_events with a spec): plain batches read into columns and the
# design matrix at once; whatever it is not sure of goes to the paths above, so the outcome
# must be theirs exactly, whichever way a batch went.

SPEC = FeatureSpec(
    features=[
        Feature(name="salary", kind="numeric"),
        Feature(name="commission", kind="numeric"),
        Feature(name="hyears", kind="numeric"),
        Feature(name="car", kind="categorical", categories=["sedan", "suv", " van ", "7"]),
        Feature(name="owner", kind="boolean"),
        Feature(name="age", kind="numeric", nullable=True, impute=40.0),
    ]
)


def read_plainly(values: list[Any]) -> decode.DecodedBatch:
    """The batch as the compiled reader reads it; it must not decline."""
    batch = decode._decode_plain(values, decode.DEFAULT_MAX_BYTES, SPEC)
    assert batch is not None
    return batch


def assert_read_as_the_decoder_reads(values: list[Any]) -> bool:
    """decode_events with the spec gives exactly the outcome without it; when the compiled
    reader took the batch, its matrix is the spec's and its digests those of orjson's
    canonical JSON.
    Whether it took the batch is returned."""
    batch, reference = decode_events(values, spec=SPEC), decode_events(values)
    assert_same_batch(batch, reference)
    assert batch._versions == reference._versions
    X = batch.columns.matrix_for(SPEC)
    if X is None:
        assert batch.columns.input_digests is None
        return False
    vectorised = SPEC.vectorise(reference.columns.features)
    assert vectorised.rejects == [] and X.tobytes() == vectorised.X.tobytes()
    assert batch.columns.input_digests == b"".join(
        hashlib.sha256(orjson.dumps(f, option=orjson.OPT_SORT_KEYS)).digest()
        for f in reference.columns.features
    )
    return True


def test_plain_records_in_any_spelling_are_read_as_the_decoder_reads_them() -> None:
    rng = random.Random(SEED + 40)
    numbers = ["0", "-0", "-0.0", "1E2", "1.0e+2", "2.5e-3", "1e-400", "1234567890123456.5",
               "9007199254740992", "-9007199254740992", "1e16", "1.7976931348623157e308",
               "5e-324", "0.1", "52000.0", "3"]  # fmt: skip
    records = []
    for i in range(400):
        features = {
            "salary": Raw(rng.choice(numbers)),
            "commission": rng.uniform(-1e9, 1e9),
            "hyears": rng.randint(-(2**53), 2**53),
            "car": rng.choice(["sedan", "suv", " van ", "7", 7]),
            "owner": rng.random() < 0.5,
            "age": rng.choice([None, 31, 44.5]),
        }
        names = list(features)
        rng.shuffle(names)
        record = event(
            event_id=rng.choice(["e-1", "é" * MAX_ID_LENGTH, "🙂 x", f"e-{i}"]),
            features={name: features[name] for name in names},
            context=rng.choice([{}, {"age_band": "30-44", "région": "🙂" * 128}]),
        )
        if rng.random() < 0.3:
            del record["context"]
        if rng.random() < 0.5:
            del record["schema_version"]
        raw = dump(record, ascii_only=False)
        if rng.random() < 0.3:
            raw = raw.replace(b", ", b" ,\n\t").replace(b"{", b" {\r\n ") + b" \n"
        records.append(raw)
    for size in (1, 7, 400):
        for start in range(0, len(records), size):
            assert assert_read_as_the_decoder_reads(records[start : start + size])
    # every read value is kept as msgspec keeps it, and the features are decoded on demand
    batch = read_plainly(records)
    assert [type(v) for v in batch.columns.features[0].values()] == [
        type(v) for v in decode._FAST_DECODE(records[0]).features.values()
    ]
    assert batch.columns.take([2, 0]).features == [
        decode._FAST_DECODE(records[i]).features for i in (2, 0)
    ]


def test_the_hostile_corpus_has_the_decoders_outcome_whichever_reader_takes_it() -> None:
    corpus = list(hostile_corpus(4000, seed=SEED + 41))
    taken = sum(assert_read_as_the_decoder_reads([raw]) for raw in corpus)
    rng = random.Random(SEED + 42)
    for _ in range(300):
        assert_read_as_the_decoder_reads(rng.choices(corpus, k=rng.choice([2, 5, 50])))
    assert taken > 300  # the unmutated and plainly mutated events
    assert len(corpus) - taken > 2000


@pytest.mark.parametrize(
    "raw",
    [
        encode(event(event_id="e-\\u0031")).replace(b"\\\\", b"\\"),  # an escape
        encode(event(event_id="a\tb")),  # a control character, escaped by the encoder
        encode(event(label=1)),
        encode(VALID).replace(b'"event_id":"e-1"', b'"event_id":"e-1","event_id":"e-2"'),
        encode(VALID).replace(b'"hyears":3', b'"hyears":3,"hyears":4'),
        encode(with_features(extra=1.0)),
        encode({**VALID, "features": {k: v for k, v in VALID["features"].items() if k != "car"}}),
        encode(with_features(hyears=2**53 + 1)),
        encode(with_features(hyears=2**63)),
        encode(with_features(salary=True)),
        encode(with_features(salary="1")),
        encode(with_features(salary=None)),
        encode(with_features(car="Sedan")),
        encode(with_features(car=7.0)),
        encode(with_features(car=True)),
        encode(with_features(owner=1)),
        encode(event(schema_version=2)),
        encode(VALID).replace(b'"schema_version":1', b'"schema_version":1.0'),
        encode(event(context={"age_band": 3})),
        encode(event(event_time="2024-05-01t12:00:00Z")),
        encode(event(event_id="é" * (MAX_ID_LENGTH + 1))),
        encode(VALID) + b"x",
        b"\xef\xbb\xbf" + encode(VALID),
        encode(VALID).replace(b"52000.0", b"1e400"),
        encode(VALID).replace(b"52000.0", b"052000"),
        encode(VALID).replace(b"e-1", b"e-\xff"),
        b"[" + encode(VALID) + b"]",
    ],
)
def test_a_record_it_is_not_sure_of_sends_the_batch_to_the_decoder(raw: bytes) -> None:
    values = [encode(VALID), raw, encode(VALID)]
    assert decode._decode_plain(values, decode.DEFAULT_MAX_BYTES, SPEC) is None
    assert not assert_read_as_the_decoder_reads(values)


def test_scoring_read_columns_gives_the_decisions_of_the_event_dicts(
    registered_logistic: Registered,
) -> None:
    model = registered_logistic.model
    events = list(agrawal_events(50, seed=11))
    values = [orjson.dumps(e) for e in events]
    read = decode_events(values, spec=model.spec).columns
    assert read.matrix_for(model.spec) is not None and read.input_digests is not None
    fixed = ("scored_at", "latency_ms")

    def without_times(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k not in fixed} for r in records]

    got, expected = score_batch(model, read), score_batch(model, events)
    assert without_times(got.decisions) == without_times(expected.decisions)
    assert got.explanations == expected.explanations
    assert [d["input_hash"] for d in got.decisions] == [input_hash(e["features"]) for e in events]


def test_a_lookup_key_it_cannot_compare_makes_it_decline_and_a_bad_buffer_raises() -> None:
    raws = [b'{"event_id":"e","entity_id":"c","event_time":"2024-05-01T12:00:00Z",'
            b'"features":{"a":1}}']  # fmt: skip
    X = np.empty((1, 1))
    assert plain_events(raws, [("a", "categorical", 0, 0.0, {1: 0})], decode._LIMITS, X)
    assert X.tolist() == [[1.0]]
    assert plain_events(raws, [("a", "categorical", 0, 0.0, {1.0: 0})], decode._LIMITS, X) is None
    with pytest.raises(ValueError, match="writable C-contiguous float64 buffer"):
        plain_events(raws, [("a", "numeric", 0, 0.0, None)], decode._LIMITS, np.empty((2, 1)))
    frozen = np.empty((1, 1))
    frozen.setflags(write=False)
    with pytest.raises(ValueError, match="writable"):
        plain_events(raws, [("a", "numeric", 0, 0.0, None)], decode._LIMITS, frozen)
