"""The wire contracts: examples round-trip, and bad records are rejected with a precise reason."""

from __future__ import annotations

import base64
import json
import math
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.contracts import (
    CONTRACTS,
    LINEAGE_HEADERS,
    MAX_DETAIL_LENGTH,
    DeadLetter,
    Decision,
    JoinRecord,
    Outcome,
    RejectReason,
    ScoringEvent,
    reject_reason_for,
    validation_detail,
)
from tests.support.contracts import (
    FEEDBACK_VALUE,
    LABEL_TIME,
    T0,
    UNVERSIONED_CONTRACTS,
    examples,
    join_records,
)


def test_every_contract_has_an_example() -> None:
    assert set(examples()) == set(CONTRACTS)
    assert all(CONTRACTS[name] is type(record) for name, record in examples().items())


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_round_trip_through_json(name: str) -> None:
    record = examples()[name]
    text = record.model_dump_json()
    assert CONTRACTS[name].model_validate_json(text) == record
    # Decoders that parse JSON first (orjson, json) get the same record.
    assert CONTRACTS[name].model_validate(json.loads(text)) == record
    if name in UNVERSIONED_CONTRACTS:
        assert "schema_version" not in json.loads(text)
    else:
        assert json.loads(text)["schema_version"] == 1


def test_only_the_join_records_are_unversioned() -> None:
    unversioned = {n for n, c in CONTRACTS.items() if "schema_version" not in c.model_fields}
    assert unversioned == UNVERSIONED_CONTRACTS == {"JoinRecord"}


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_records_are_frozen(name: str) -> None:
    record = examples()[name]
    field = "event_id" if name in UNVERSIONED_CONTRACTS else "schema_version"
    with pytest.raises(ValidationError, match="frozen"):
        setattr(record, field, getattr(record, field))


def test_feature_types_are_kept_exactly() -> None:
    event = ScoringEvent.model_validate_json(
        '{"event_id": "e", "entity_id": "x", "event_time": "2024-05-01T12:00:00Z",'
        ' "features": {"b": true, "i": 1, "f": 1.0, "s": "1", "n": null}}'
    )
    assert [type(v) for v in event.features.values()] == [bool, int, float, str, type(None)]
    assert event.context == {}


def _json(name: str) -> dict[str, Any]:
    return examples()[name].model_dump(mode="json")


def _set(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    target = data
    *parents, last = path.split(".")
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return data


LONG = "x" * 129

BAD_FIELDS = [
    # (contract, field path, bad value, error location, message fragment)
    ("ScoringEvent", "features.salary", math.nan, "features", "'salary' is NaN"),
    ("ScoringEvent", "features.salary", math.inf, "features", "'salary' is Infinity"),
    ("ScoringEvent", "features.salary", -math.inf, "features", "is -Infinity"),
    ("ScoringEvent", "features.salary", [1], "features", "'salary' is array"),
    ("ScoringEvent", "features.salary", {"a": 1}, "features", "'salary' is object"),
    ("ScoringEvent", "features.car", "s" * 257, "features", "257 characters; at most 256"),
    ("ScoringEvent", "features." + "n" * 65, 1, "features", "1 to 64 characters"),
    ("ScoringEvent", "features.", 1, "features", "1 to 64 characters"),
    ("ScoringEvent", "features", [1.0], "features", "features must be an object, got array"),
    ("ScoringEvent", "event_time", "2024-05-01T12:00:00", "event_time", "no UTC offset"),
    ("ScoringEvent", "event_time", 1714564800, "event_time", "not a number"),
    ("ScoringEvent", "event_time", "yesterday", "event_time", "datetime"),
    ("ScoringEvent", "event_id", LONG, "event_id", "at most 128 characters"),
    ("ScoringEvent", "event_id", "", "event_id", "at least 1 character"),
    ("ScoringEvent", "event_id", 17, "event_id", "valid string"),
    ("ScoringEvent", "entity_id", LONG, "entity_id", "at most 128 characters"),
    ("ScoringEvent", "context.gender", 1, "context", "'gender' is integer"),
    ("ScoringEvent", "context.gender", "g" * 129, "context", "129 characters; at most 128"),
    ("ScoringEvent", "even_time", "2024-05-01T12:00:00Z", "even_time", "Extra inputs"),
    ("ScoringEvent", "schema_version", 2, "schema_version", "Input should be 1"),
    ("ScoringEvent", "schema_version", True, "schema_version", "got boolean"),
    ("Decision", "score", True, "score", "valid number"),
    ("Decision", "score", "0.5", "score", "valid number"),
    ("Decision", "score", 1.5, "score", "less than or equal to 1"),
    ("Decision", "score", math.nan, "score", "finite number"),
    ("Decision", "latency_ms", -1.0, "latency_ms", "greater than or equal to 0"),
    ("Decision", "latency_ms", math.inf, "latency_ms", "finite number"),
    ("Decision", "thresholds.review", "0.5", "thresholds.review", "valid number"),
    ("Decision", "shadow", "yes", "shadow", "valid boolean"),
    ("Decision", "shadow", 1, "shadow", "valid boolean"),
    ("Decision", "input_hash", "abc", "input_hash", "64 lowercase hexadecimal"),
    ("Decision", "model.sha256", "A" * 64, "model.sha256", "64 lowercase hexadecimal"),
    ("Decision", "model.version", 0, "model.version", "greater than or equal to 1"),
    ("Decision", "model.version", True, "model.version", "valid integer"),
    ("Decision", "model.version", "3", "model.version", "valid integer"),
    ("Decision", "model.name", "", "model.name", "at least 1 character"),
    ("Decision", "model.extra", 1, "model.extra", "Extra inputs"),
    ("Decision", "scored_at", "2024-05-01T12:00:00", "scored_at", "no UTC offset"),
    ("Decision", "reason_codes.0.contribution", math.nan, "reason_codes.0.contribution", "finite"),
    ("Explanation", "method", "kernel_shap", "method", "'lightgbm_contrib' or 'xgboost_contrib'"),
    ("Explanation", "output_space", "margin", "output_space", "'log_odds' or 'probability'"),
    ("Explanation", "contributions.salary", math.inf, "contributions.salary", "finite number"),
    ("Explanation", "additivity_error", -0.1, "additivity_error", "greater than or equal to 0"),
    ("Explanation", "top_features", ["f"] * 6, "top_features", "at most 5 items"),
    ("Explanation", "top_features", ["ghost"], "", "['ghost'] are not in contributions"),
    ("Explanation", "top_features", ["loan", "loan"], "", "duplicates"),
    ("DriftAlert", "monitor", "weird", "monitor", "'feature', 'missing'"),
    ("DriftAlert", "status", "closed", "status", "'open' or 'resolved'"),
    ("DriftAlert", "severity", "fatal", "severity", "'critical'"),
    ("DriftAlert", "value", math.nan, "value", "finite number"),
    ("DriftAlert", "budget_events", 0.0, "budget_events", "greater than 0"),
    ("DriftAlert", "retrain_recommended", "true", "retrain_recommended", "valid boolean"),
    ("DriftAlert", "window.events", -1, "window.events", "greater than or equal to 0"),
    ("DriftAlert", "window.offsets.0", [9, 3], "window.offsets", "first <= last"),
    ("DriftAlert", "window.offsets.0", [3], "window.offsets", "[first, last]"),
    ("DriftAlert", "window.end_time", "2024-05-01T11:00:00Z", "window", "after end_time"),
    ("DriftAlert", "detected_at", 1714564800.0, "detected_at", "not a number"),
    ("FairnessReport", "groups.0.selection_rate", 1.2, "groups.0.selection_rate", "1"),
    ("FairnessReport", "groups.0.count", 2.5, "groups.0.count", "valid integer"),
    ("FairnessReport", "groups.1.group", "f", "groups", "groups repeated: ['f']"),
    ("FairnessReport", "groups.0.tpr", -0.1, "groups.0.tpr", "greater than or equal to 0"),
    ("FairnessReport", "di_threshold", 0.0, "di_threshold", "greater than 0"),
    ("FairnessReport", "status", "fine", "status", "'insufficient_data'"),
    ("FairnessReport", "tpr_gap", 1.5, "tpr_gap", "less than or equal to 1"),
    ("Feedback", "label", 2, "label", "0 or 1"),
    ("Feedback", "label", -1, "label", "0 or 1"),
    ("Feedback", "label", True, "label", "must be an integer, got boolean"),
    ("Feedback", "label", "1", "label", "must be an integer, got string"),
    ("Feedback", "label", 1.0, "label", "must be an integer, got number"),
    ("Feedback", "label_time", "2024-05-01T12:00:00", "label_time", "no UTC offset"),
    ("DeadLetter", "reason", "NOPE", "reason", "'INVALID_JSON'"),
    ("DeadLetter", "original_value_b64", "!!not base64", "original_value_b64", "base64"),
    ("DeadLetter", "source_key_b64", "abc", "source_key_b64", "base64"),
    ("DeadLetter", "detail", "d" * (MAX_DETAIL_LENGTH + 1), "detail", "at most 2000"),
    ("DeadLetter", "source_offset", -1, "source_offset", "greater than or equal to 0"),
    ("DeadLetter", "source_partition", "2", "source_partition", "valid integer"),
    ("ModelEvent", "event_type", "deleted", "event_type", "'registered'"),
    ("ModelEvent", "sha256", "z" * 64, "sha256", "64 lowercase hexadecimal"),
    ("ModelEvent", "version", 0, "version", "greater than or equal to 1"),
    ("ModelEvent", "actor", "", "actor", "at least 1 character"),
    ("Outcome", "label", 2, "label", "0 or 1"),
    ("Outcome", "label", True, "label", "must be an integer, got boolean"),
    ("Outcome", "score", 1.5, "score", "less than or equal to 1"),
    ("Outcome", "input_hash", "abc", "input_hash", "64 lowercase hexadecimal"),
    ("Outcome", "label_time", "2024-05-21T12:00:00", "label_time", "no UTC offset"),
    ("Outcome", "model.version", 0, "model.version", "greater than or equal to 1"),
    ("Outcome", "schema_version", 2, "schema_version", "Input should be 1"),
    ("JoinRecord", "side", "outcome", "side", "'decision', 'label' or 'watermark'"),
    ("JoinRecord", "t", math.nan, "t", "finite number"),
    ("JoinRecord", "t", "1714564800", "t", "valid number"),
    ("JoinRecord", "labelled", 1, "labelled", "valid boolean"),
    ("JoinRecord", "model", None, "", "a decision record needs model"),
    ("JoinRecord", "schema_version", 1, "schema_version", "Extra inputs"),
]


@pytest.mark.parametrize(
    ("name", "path", "value", "loc", "fragment"),
    BAD_FIELDS,
    ids=[f"{case[0]}-{case[1]}-{case[4][:24]}" for case in BAD_FIELDS],
)
def test_bad_field_is_rejected_with_its_location(
    name: str, path: str, value: Any, loc: str, fragment: str
) -> None:
    data = _set(_json(name), path, value)
    with pytest.raises(ValidationError) as info:
        CONTRACTS[name].model_validate(data)
    found = [(".".join(map(str, e["loc"])), e["msg"]) for e in info.value.errors()]
    assert any(where == loc and fragment in msg for where, msg in found), found


@pytest.mark.parametrize("form", sorted(join_records()))
def test_join_records_round_trip_in_every_form(form: str) -> None:
    record = join_records()[form]
    assert JoinRecord.model_validate_json(record.model_dump_json()) == record
    assert JoinRecord.model_validate_json(record.model_dump_json(exclude_none=True)) == record


@pytest.mark.parametrize(
    ("form", "drop", "message"),
    [
        ("label", ("source",), "a label record needs source"),
        ("label", ("label", "label_time"), "a label record needs label, label_time"),
        ("waiting label", ("source",), "a label record needs source"),
        ("decision", ("entity_id", "input_hash"), "a decision record needs entity_id, input_hash"),
        ("held decision", ("event_time",), "a decision record needs event_time"),
        ("watermark", ("read_to_end",), "a watermark record needs read_to_end"),
        ("label", ("event_id",), "a label record needs event_id"),
    ],
)
def test_join_record_needs_the_fields_of_its_side(
    form: str, drop: tuple[str, ...], message: str
) -> None:
    data = join_records()[form].model_dump(mode="json", exclude_none=True)
    for name in drop:
        del data[name]
    with pytest.raises(ValidationError) as info:
        JoinRecord.model_validate(data)
    assert [(e["loc"], e["msg"]) for e in info.value.errors()] == [((), f"Value error, {message}")]


def test_join_label_source_is_checked() -> None:
    data = join_records()["label"].model_dump(mode="json")
    data["source"]["value_b64"] = "!!not base64"
    data["source"]["offset"] = -1
    with pytest.raises(ValidationError) as info:
        JoinRecord.model_validate(data)
    assert {".".join(map(str, e["loc"])) for e in info.value.errors()} == {
        "source.value_b64",
        "source.offset",
    }


def test_what_the_outcome_join_writes_is_valid() -> None:
    """The records ``scorer join`` builds (streams.outcomes.join) are valid contract records."""
    from streams.outcomes.join import outcome_record, parse_feedback, snapshot

    decision = {"side": "decision", **snapshot("e-1", T0.timestamp(), context={"gender": "f"})}
    [(_, label)], rejects = parse_feedback([FEEDBACK_VALUE])
    assert rejects == []
    source = join_records()["label"].model_dump(mode="json")["source"]
    routed = {"side": "label", **label, "source": source}
    watermark = {"side": "watermark", "t": None, "decisions_partition": 0, "read_to_end": True}
    for value in (decision, {**decision, "labelled": True}, routed, {**routed, "deadline": 1.0},
                  watermark):  # fmt: skip
        JoinRecord.model_validate_json(json.dumps(value))
    outcome = Outcome.model_validate_json(json.dumps(outcome_record(decision, routed)))
    assert (outcome.label, outcome.event_time, outcome.label_time) == (1, T0, LABEL_TIME)


def test_missing_required_field_is_named() -> None:
    data = _json("Decision")
    del data["model"]
    with pytest.raises(ValidationError) as info:
        Decision.model_validate(data)
    assert [(e["loc"], e["type"]) for e in info.value.errors()] == [(("model",), "missing")]


def test_too_many_features_and_context_entries() -> None:
    data = _json("ScoringEvent")
    data["features"] = {f"f{i}": float(i) for i in range(257)}
    data["context"] = {f"c{i}": "v" for i in range(33)}
    with pytest.raises(ValidationError) as info:
        ScoringEvent.model_validate(data)
    messages = validation_detail(info.value)
    assert "features has 257 entries; at most 256 are allowed" in messages
    assert "context has 33 entries; at most 32 are allowed" in messages
    data["features"] = {f"f{i}": float(i) for i in range(256)}
    data["context"] = {f"c{i}": "v" for i in range(32)}
    assert len(ScoringEvent.model_validate(data).features) == 256


def test_too_many_reason_codes() -> None:
    data = _json("Decision")
    data["reason_codes"] = data["reason_codes"] * 5
    with pytest.raises(ValidationError, match="at most 4 items"):
        Decision.model_validate(data)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_json_literals_are_rejected(literal: str) -> None:
    text = (
        '{"event_id": "e", "entity_id": "x", "event_time": "2024-05-01T12:00:00Z",'
        f' "features": {{"salary": {literal}}}}}'
    )
    with pytest.raises(ValidationError) as info:
        ScoringEvent.model_validate_json(text)
    assert reject_reason_for(info.value) is RejectReason.NON_FINITE
    assert f"'salary' is {literal}" in validation_detail(info.value)


def test_timestamps_keep_their_offset_and_compare_as_instants() -> None:
    event = ScoringEvent.model_validate(
        {**_json("ScoringEvent"), "event_time": "2024-05-01T14:00:00+02:00"}
    )
    assert event.event_time.utcoffset() == timedelta(hours=2)
    assert event.event_time == T0


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", RejectReason.INVALID_JSON),
        ("[1, 2]", RejectReason.NOT_AN_OBJECT),
        ('"event"', RejectReason.NOT_AN_OBJECT),
        ('{"event_id": "e"}', RejectReason.SCHEMA_VIOLATION),
        (
            '{"event_id": "e", "entity_id": "x", "event_time": "2024-05-01T12:00:00Z",'
            ' "features": {"a": 1e999}}',
            RejectReason.NON_FINITE,
        ),
    ],
)
def test_reject_reason_for(text: str, reason: RejectReason) -> None:
    with pytest.raises(ValidationError) as info:
        ScoringEvent.model_validate_json(text)
    assert reject_reason_for(info.value) is reason


def test_validation_detail_is_one_bounded_line() -> None:
    data = {"event_id": "", "entity_id": LONG, "event_time": "x", "features": {}}
    with pytest.raises(ValidationError) as info:
        ScoringEvent.model_validate(data)
    detail = validation_detail(info.value)
    assert "\n" not in detail
    assert detail.startswith("event_id: String should have at least 1 character; entity_id: ")
    short = validation_detail(info.value, limit=40)
    assert len(short) == 40 and short.endswith("...")


def test_reject_reasons_are_upper_snake_case() -> None:
    assert {r.value for r in RejectReason} == {
        "INVALID_JSON",
        "NOT_AN_OBJECT",
        "INVALID_ENCODING",
        "RECORD_TOO_LARGE",
        "SCHEMA_VIOLATION",
        "MISSING_FEATURE",
        "UNKNOWN_FEATURE",
        "WRONG_TYPE",
        "NON_FINITE",
        "NULL_NOT_ALLOWED",
        "UNKNOWN_CATEGORY",
        "SCORING_ERROR",
        "DUPLICATE_EVENT",
        "LABEL_TOO_LATE",
        "LABEL_UNKNOWN_EVENT",
        "DUPLICATE_LABEL",
    }
    assert all(r.name == r.value for r in RejectReason)


def test_dead_letter_keeps_the_original_bytes() -> None:
    letter = examples()["DeadLetter"]
    assert isinstance(letter, DeadLetter)
    assert letter.original_value() == b"\xff{not json"
    assert letter.source_key() == b"c-9"
    restored = DeadLetter.model_validate_json(letter.model_dump_json())
    assert restored.original_value() == b"\xff{not json"
    assert json.loads(letter.model_dump_json())["reason"] == "INVALID_JSON"


def test_dead_letter_from_raw_never_fails_on_the_records_content() -> None:
    letter = DeadLetter.from_raw(
        reason=RejectReason.SCHEMA_VIOLATION,
        detail="d" * 5000,
        topic="events",
        partition=0,
        offset=0,
        value=None,
        key=None,
        event_id=["not", "an", "id"],
        scorer_version="0.1.0",
    )
    assert len(letter.detail) == MAX_DETAIL_LENGTH and letter.detail.endswith("...")
    assert letter.event_id is None
    assert letter.source_key() is None and letter.source_key_b64 is None
    assert letter.original_value() == b""
    assert letter.failed_at.tzinfo is not None
    too_long = DeadLetter.from_raw(
        reason=RejectReason.SCHEMA_VIOLATION,
        detail="",
        topic="events",
        partition=0,
        offset=0,
        value=b"{}",
        event_id="e" * 500,
        scorer_version="0.1.0",
    )
    assert too_long.event_id is None
    kept = DeadLetter.from_raw(
        reason=RejectReason.NON_FINITE,
        detail="",
        topic="events",
        partition=0,
        offset=0,
        value=b"{}",
        event_id="e-7",
        scorer_version="0.1.0",
    )
    assert kept.event_id == "e-7"
    assert base64.b64decode(kept.original_value_b64) == b"{}"


def test_lineage_headers() -> None:
    assert LINEAGE_HEADERS == (
        "event_id",
        "model_name",
        "model_version",
        "model_sha256",
        "schema_version",
        "scorer_version",
    )
