"""Hostile input on the real broker: the engine neither crashes nor stalls, every bad record
reaches the dead-letter topic with a specific reason, its original bytes and its offset, and
the valid records around it are scored.

A duplicate ``event_id`` is not an error of the input: Kafka delivers at least once, and
upstream systems retry. The engine scores every record it consumes; two records with the
same event_id and the same content get two decisions that are identical except for the
timing fields (``scored_at``, ``latency_ms``), so a consumer may deduplicate on event_id.
Floating-point outputs (score, contributions) may differ in the last bit: the batch's
matrix product rounds differently with the batch's size and alignment. Labels, reason
codes, input hashes and the model reference are exactly equal.
"""

from __future__ import annotations

import base64
import copy
import math
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka.admin import AdminClient

from models.datasets import agrawal_events
from schemas.contracts import DeadLetter
from tests.support.reliability import (
    EngineProcess,
    OutputReader,
    group_lag,
    produce_in_order,
    set_topic_config,
)
from tests.support.scorer import ScorerSetup
from tests.support.waiting import wait_until

SCORED = "SCORED"
TIMING_FIELDS = ("scored_at", "latency_ms")
Builder = Callable[[dict[str, Any], random.Random], bytes | None]


def _with(change: Callable[[dict[str, Any]], None]) -> Builder:
    def build(event: dict[str, Any], rng: random.Random) -> bytes:
        changed = copy.deepcopy(event)
        change(changed)
        return orjson.dumps(changed)

    return build


def _feature(name: str, value: object) -> Builder:
    return _with(lambda e: e["features"].__setitem__(name, value))


def _spliced(old: bytes, new: bytes) -> Builder:
    """The event's JSON with its first ``old`` replaced by ``new`` (for what orjson won't
    write: non-finite literals, huge integers, bad escapes, raw bytes)."""

    def build(event: dict[str, Any], rng: random.Random) -> bytes:
        text = orjson.dumps(event)
        assert old in text
        return text.replace(old, new, 1)

    return build


def _salary(event: dict[str, Any]) -> bytes:
    return b'"salary":' + orjson.dumps(event["features"]["salary"])


def _salary_literal(literal: bytes) -> Builder:
    def build(event: dict[str, Any], rng: random.Random) -> bytes:
        return orjson.dumps(event).replace(_salary(event), b'"salary":' + literal, 1)

    return build


def _event_id_text(raw: bytes) -> Builder:
    def build(event: dict[str, Any], rng: random.Random) -> bytes:
        quoted = orjson.dumps(event["event_id"])
        return orjson.dumps(event).replace(quoted, b'"' + event["event_id"].encode() + raw + b'"')

    return build


def _random_bytes(event: dict[str, Any], rng: random.Random) -> bytes:
    return rng.randbytes(rng.randint(1, 300))


def _truncated(event: dict[str, Any], rng: random.Random) -> bytes:
    text = orjson.dumps(event)
    return text[: rng.randint(0, len(text) - 1)]


def _deep_array(event: dict[str, Any], rng: random.Random) -> bytes:
    depth = rng.randint(1_000, 100_000)
    return b"[" * depth + b"]" * depth


def _deep_feature(low: int, high: int) -> Builder:
    """A feature value nested ``low`` to ``high`` objects deep (the contract's parser reads
    about 200 levels: deeper is not JSON it accepts)."""

    def build(event: dict[str, Any], rng: random.Random) -> bytes:
        depth = rng.randint(low, high)
        nested = b'{"a":' * depth + b"1" + b"}" * depth
        return orjson.dumps(event).replace(_salary(event), b'"salary":' + nested, 1)

    return build


def _megabytes(event: dict[str, Any], rng: random.Random) -> bytes:
    changed = copy.deepcopy(event)
    changed["context"]["note"] = "x" * rng.randint(2_000_000, 4_000_000)
    return orjson.dumps(changed)


# kind -> (expected outcome, builder, weight). Each record is built from its own event.
KINDS: dict[str, tuple[str, Builder, int]] = {
    "valid": (SCORED, lambda e, r: orjson.dumps(e), 40),
    "valid_null_key": (SCORED, lambda e, r: orjson.dumps(e), 3),
    "huge_finite_float": (SCORED, _feature("salary", 1.7e308), 1),
    "huge_integer_64bit_plus": (SCORED, _salary_literal(b"1" + b"0" * 30), 1),
    "negative_zero": (SCORED, _salary_literal(b"-0.0"), 1),
    "nul_escaped_in_id": (SCORED, _event_id_text(b"\\u0000"), 1),
    "unicode_in_id": (SCORED, _event_id_text("\u202e😀\ufeff".encode()), 1),
    "random_bytes": ("INVALID_JSON|INVALID_ENCODING|NOT_AN_OBJECT", _random_bytes, 6),
    "truncated_json": ("INVALID_JSON", _truncated, 6),
    "deep_array": ("INVALID_JSON", _deep_array, 1),
    "deep_object_feature": ("SCHEMA_VIOLATION", _deep_feature(20, 150), 1),
    "deeper_than_parser_limit": ("INVALID_JSON", _deep_feature(300, 50_000), 1),
    "nan_literal": ("NON_FINITE", _salary_literal(b"NaN"), 2),
    "infinity_literal": ("NON_FINITE", _salary_literal(b"Infinity"), 1),
    "minus_infinity_literal": ("NON_FINITE", _salary_literal(b"-Infinity"), 1),
    "number_beyond_double": ("NON_FINITE", _salary_literal(b"1e400"), 1),
    "integer_beyond_double": ("NON_FINITE", _salary_literal(b"1" + b"0" * 400), 1),
    "string_for_number": ("WRONG_TYPE", _feature("salary", "plenty"), 2),
    "bool_for_number": ("WRONG_TYPE", _feature("salary", True), 1),
    "null_feature": ("NULL_NOT_ALLOWED", _feature("salary", None), 1),
    "unknown_category": ("UNKNOWN_CATEGORY", _feature("car", 99), 1),
    "number_for_event_id": ("SCHEMA_VIOLATION", _with(lambda e: e.__setitem__("event_id", 7)), 1),
    "features_as_list": ("SCHEMA_VIOLATION", _with(lambda e: e.__setitem__("features", [])), 1),
    "bad_event_time": (
        "SCHEMA_VIOLATION",
        _with(lambda e: e.__setitem__("event_time", "yesterday")),
        1,
    ),
    "missing_event_time": ("SCHEMA_VIOLATION", _with(lambda e: e.pop("event_time")), 1),
    "missing_feature": ("MISSING_FEATURE", _with(lambda e: e["features"].pop("loan")), 2),
    "extra_field": ("SCHEMA_VIOLATION", _with(lambda e: e.__setitem__("surprise", 1)), 1),
    "extra_feature": ("UNKNOWN_FEATURE", _feature("shoe_size", 44), 1),
    "lone_surrogate_escaped": ("INVALID_JSON", _event_id_text(b"\\ud800"), 1),
    "overlong_utf8": ("INVALID_ENCODING", _event_id_text(b"\xc0\xaf"), 1),
    "invalid_utf8": ("INVALID_ENCODING", _event_id_text(b"\xff\xfe"), 1),
    "byte_order_mark": ("INVALID_JSON", lambda e, r: b"\xef\xbb\xbf" + orjson.dumps(e), 1),
    "raw_nul_in_string": ("INVALID_JSON", _event_id_text(b"\x00"), 1),
    "json_array": ("NOT_AN_OBJECT", lambda e, r: orjson.dumps([e]), 1),
    "json_number": ("NOT_AN_OBJECT", lambda e, r: b"42", 1),
    "null_value": ("SCHEMA_VIOLATION", lambda e, r: None, 1),
}
DUPLICATES = 300
MEGABYTE_RECORDS = 3


def hostile_stream(count: int, seed: int) -> list[tuple[str, bytes | None, bytes | None]]:
    """(kind, key, value) records: weighted random kinds, a few multi-megabyte values,
    and ``DUPLICATES`` valid records sent twice (same event_id, same bytes)."""
    rng = random.Random(seed)
    names = list(KINDS)
    weights = [KINDS[name][2] for name in names]
    stream: list[tuple[str, bytes | None, bytes | None]] = []
    for event in agrawal_events(count - DUPLICATES - MEGABYTE_RECORDS, seed=seed, run_id="hx"):
        kind = rng.choices(names, weights)[0]
        key = None if kind == "valid_null_key" or rng.random() < 0.05 else event["entity_id"]
        stream.append((kind, key.encode() if key else None, KINDS[kind][1](event, rng)))
    for event in agrawal_events(MEGABYTE_RECORDS, seed=seed + 1, run_id="mb"):
        at = rng.randrange(len(stream))
        stream.insert(at, ("megabytes", event["entity_id"].encode(), _megabytes(event, rng)))
    valid_positions = [i for i, (kind, _, _) in enumerate(stream) if kind == "valid"]
    for position in sorted(rng.sample(valid_positions, DUPLICATES), reverse=True):
        _, key, value = stream[position]
        later = rng.randint(position + 1, min(len(stream), position + 5_000))
        stream.insert(later, ("duplicate", key, value))
    return stream


def _expected(kind: str) -> str:
    if kind == "megabytes":
        return "RECORD_TOO_LARGE"
    if kind == "duplicate":
        return SCORED
    return KINDS[kind][0]


def same_content(first: object, second: object) -> bool:
    """Equal records, floats equal up to rounding in the last bits."""
    if isinstance(first, float) and isinstance(second, float):
        return math.isclose(first, second, rel_tol=1e-12, abs_tol=1e-12)
    if isinstance(first, dict) and isinstance(second, dict):
        return first.keys() == second.keys() and all(
            same_content(first[k], second[k]) for k in first
        )
    if isinstance(first, list) and isinstance(second, list):
        return len(first) == len(second) and all(map(same_content, first, second))
    return first == second


def test_hostile_input_is_dead_lettered_and_valid_neighbours_scored(
    scorer_setup: ScorerSetup, kafka_admin: AdminClient, tmp_path: Path
) -> None:
    topics = scorer_setup.topics
    # Room for multi-megabyte records, and for their dead letters (base64: 4/3 the size).
    set_topic_config(kafka_admin, topics["events"], "max.message.bytes", "5242880")
    set_topic_config(kafka_admin, topics["events.dlq"], "max.message.bytes", "10485760")
    stream = hostile_stream(12_000, seed=67)
    coordinates = produce_in_order(scorer_setup, [(key, value) for _, key, value in stream])
    at = {coordinate: i for i, coordinate in enumerate(coordinates)}
    expected = Counter(_expected(kind) for kind, _, _ in stream)
    bad = len(stream) - expected[SCORED]
    valid_ids = Counter(
        orjson.loads(value)["event_id"]
        for kind, _, value in stream
        if _expected(kind) == SCORED and value is not None
    )
    assert len(stream) >= 10_000 and bad >= 4_000 and max(valid_ids.values()) == 2

    engine = EngineProcess(scorer_setup, tmp_path, "--max-batch", "500")
    reader = OutputReader(scorer_setup, "decisions", "explanations", "events.dlq")
    reader.read_until(
        lambda r: len(r.of("events.dlq")) >= bad and len(r.of("decisions")) >= valid_ids.total(),
        "every output",
        engines=[engine],
    )
    wait_until(lambda: group_lag(scorer_setup) == 0, "all offsets committed", engines=[engine])
    reader.settle()

    # Every bad record: one dead letter, its specific reason, its bytes, key and offset.
    letters = [DeadLetter.model_validate_json(m.value()) for m in reader.of("events.dlq")]
    assert len(letters) == bad
    reasons: Counter[str] = Counter()
    for letter in letters:
        assert letter.source_topic == topics["events"]
        kind, key, value = stream[at[(letter.source_partition, letter.source_offset)]]
        assert letter.reason.value in _expected(kind).split("|"), (
            kind,
            letter.reason,
            letter.detail,
        )
        assert base64.b64decode(letter.original_value_b64) == (value or b"")
        assert letter.source_key() == key
        assert letter.detail
        reasons[f"{kind}:{letter.reason.value}"] += 1
    assert len({(x.source_partition, x.source_offset) for x in letters}) == bad

    # Every valid record scored; a duplicate event_id gets two decisions, equal but for timing.
    decided = reader.event_ids("decisions")
    assert Counter(decided) == valid_ids
    assert Counter(reader.event_ids("explanations")) == valid_ids
    by_id: dict[str, list[dict[str, Any]]] = {}
    for message in reader.of("decisions") + reader.of("explanations"):
        record = orjson.loads(message.value())
        by_id.setdefault(f"{message.topic()}:{record['event_id']}", []).append(record)
    twins = [records for records in by_id.values() if len(records) == 2]
    assert len(twins) == 2 * DUPLICATES
    for first, second in twins:
        for name in TIMING_FIELDS:
            first.pop(name, None), second.pop(name, None)
        assert same_content(first, second), (first, second)

    engine.require_alive()
    reader.close()
    assert engine.terminate() == 0
    print(f"hostile: {len(stream)} records, {bad} dead-lettered, {len(decided)} decisions")
    print("hostile reasons:", dict(sorted(reasons.items())))
