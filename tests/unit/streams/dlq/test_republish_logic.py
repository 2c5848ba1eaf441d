"""Dead-letter republish without a broker: fix files, the ledger, and the plan."""

from __future__ import annotations

import orjson
import pytest

from models.featurespec import Feature, FeatureSpec, Reject
from schemas.contracts import RejectReason
from schemas.errors import FixFileError, RepublishError
from streams.core.decode import dead_letter
from streams.dlq.fix import Fix, FixNotApplicable
from streams.dlq.ledger import RepublishLedger
from streams.dlq.plan import DlqRecord, Selection, check_values, plan_republish

SPEC = FeatureSpec(
    features=[
        Feature(name="salary", kind="numeric"),
        Feature(name="car", kind="categorical", categories=["1", "2", "3"]),
    ]
)


def event(event_id: str, **features: object) -> bytes:
    return orjson.dumps({"event_id": event_id, "entity_id": "c-1",
                         "event_time": "2024-05-01T12:00:00Z", "features": features})  # fmt: skip


def letter(value: bytes, reason: RejectReason, *, topic: str = "events", offset: int = 0) -> bytes:
    dead = dead_letter(Reject(0, reason, "x"), topic=topic, partition=0, offset=offset,
                       key=b"k", value=value, timestamp_ms=None, scorer_version="t")  # fmt: skip
    return orjson.dumps(dead)


# --- fix files ---------------------------------------------------------------------------------


def test_fix_applies_edits_in_documented_order() -> None:
    fix = Fix.parse(orjson.dumps({
        "fields": {"set": {"entity_id": "c-2"}},
        "features": {"rename": {"wage": "salary"}, "remove": ["debug"],
                     "map": {"car": {"SEDAN": 3, "2": "2"}}, "default": {"salary": 0.0},
                     "set": {"extra": True}},
        "context": {"default": {"region": "north"}},
    }))  # fmt: skip
    edited = orjson.loads(fix.apply(event("e1", wage=10.0, debug=1, car="SEDAN")))
    assert edited["entity_id"] == "c-2"
    assert edited["features"] == {"salary": 10.0, "car": 3, "extra": True}
    assert edited["context"] == {"region": "north"}
    # a non-string value is matched by its JSON text
    assert orjson.loads(fix.apply(event("e2", car=2)))["features"]["car"] == "2"
    # default does not overwrite a present value; rename of an absent name does nothing
    assert orjson.loads(fix.apply(event("e3", salary=5.0, car=1)))["features"]["salary"] == 5.0


def test_fix_refuses_records_it_cannot_edit() -> None:
    fix = Fix.parse(b'{"features": {"set": {"car": 1}}}')
    with pytest.raises(FixNotApplicable, match="not JSON"):
        fix.apply(b"{oops")
    with pytest.raises(FixNotApplicable, match="not a JSON object"):
        fix.apply(b"[1, 2]")
    with pytest.raises(FixNotApplicable, match="'features' is list"):
        fix.apply(b'{"features": [1]}')


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b'{"feature": {}}', "feature: Extra inputs are not permitted"),
        (b'{"features": {"remove": "car"}}', "features.remove: Input should be a valid array"),
        (b"{}", "the fix has no edits"),
        (b"{nope", "Invalid JSON"),
    ],
)
def test_invalid_fix_files_name_their_problem(text: bytes, message: str) -> None:
    with pytest.raises(FixFileError, match=message):
        Fix.parse(text, "fix.json")


def test_fix_digest_identifies_the_edits() -> None:
    a = Fix.parse(b'{"features": {"set": {"car": 1, "salary": 2}}}')
    b = Fix.parse(b'{"features": {"set": {"salary": 2, "car": 1}}}')
    c = Fix.parse(b'{"features": {"set": {"car": 2}}}')
    assert a.digest == b.digest != c.digest


# --- the ledger --------------------------------------------------------------------------------


def test_ledger_round_trips_through_commit_metadata() -> None:
    ledger = RepublishLedger.decode(-1001, None).add([4, 5, 6, 9, 2])
    assert (ledger.committed, ledger.encode()) == (0, "2,4-6,9")
    again = RepublishLedger.decode(ledger.committed, ledger.encode())
    assert again == ledger
    assert [o for o in range(12) if again.contains(o)] == [2, 4, 5, 6, 9]
    filled = again.add([0, 1, 3])
    assert (filled.committed, filled.encode()) == (7, "9")


def test_ledger_refuses_what_kafka_cannot_keep() -> None:
    with pytest.raises(RepublishError, match="unreadable republish ledger"):
        RepublishLedger.decode(0, "3-x")
    with pytest.raises(RepublishError, match="oldest unrepublished dead letter \\(offset 0\\)"):
        RepublishLedger(0).add(range(1, 5000, 2)).encode()


# --- the plan ----------------------------------------------------------------------------------


def records() -> list[DlqRecord]:
    values = [
        letter(event("ok-cat", salary=1.0, car="SEDAN"), RejectReason.UNKNOWN_CATEGORY),
        letter(event("no-car", salary=1.0), RejectReason.MISSING_FEATURE),
        letter(b"{broken", RejectReason.INVALID_JSON),
        letter(
            b'{"event_id": "l1", "label": 1}', RejectReason.LABEL_UNKNOWN_EVENT, topic="feedback"
        ),
        b"not a dead letter",
    ]
    return [DlqRecord(0, offset, value, 1000 + offset) for offset, value in enumerate(values)]


def outcomes(plan: object) -> list[tuple[int, str]]:
    return [(c.offset, c.outcome.value) for c in plan.candidates]  # type: ignore[attr-defined]


def test_without_a_fix_every_record_would_be_rejected_again() -> None:
    plan = plan_republish(records(), Selection(source_topic="events"), {}, spec=SPEC)
    assert outcomes(plan) == [(0, "still-rejected"), (1, "still-rejected"),
                              (2, "still-rejected"), (4, "unreadable")]  # fmt: skip
    details = [c.detail for c in plan.candidates]
    assert details[0].startswith("UNKNOWN_CATEGORY: feature 'car'")
    assert details[1].startswith("MISSING_FEATURE")
    assert details[2].startswith("INVALID_JSON")


def test_a_fix_makes_records_publishable_and_keeps_their_coordinates() -> None:
    fix = Fix.parse(b'{"features": {"map": {"car": {"SEDAN": 3}}, "default": {"car": 2}}}')
    plan = plan_republish(records(), Selection(source_topic="events"), {}, fix=fix, spec=SPEC)
    assert outcomes(plan) == [(0, "publish"), (1, "publish"), (2, "fix-failed"),
                              (4, "unreadable")]  # fmt: skip
    published = {c.letter.event_id: orjson.loads(c.value) for c in plan.to_publish}
    assert published["ok-cat"]["features"]["car"] == 3
    assert published["no-car"]["features"]["car"] == 2
    assert [c.key for c in plan.to_publish] == [b"k", b"k"]


def test_selection_by_reason_offsets_ledger_and_max() -> None:
    fix = Fix.parse(b'{"features": {"set": {"car": "1"}}}')
    only_missing = Selection(reasons=frozenset({"MISSING_FEATURE"}), source_topic="events")
    assert outcomes(plan_republish(records(), only_missing, {}, fix=fix, spec=SPEC)) == [
        (1, "publish")
    ]
    window = Selection(source_topic="events", from_offset=1, to_offset=2)
    assert [o for o, _ in outcomes(plan_republish(records(), window, {}, fix=fix))] == [1, 2]
    republished = {0: RepublishLedger(1)}
    plan = plan_republish(
        records(), Selection(source_topic="events"), republished, fix=fix, spec=SPEC
    )
    assert outcomes(plan)[:2] == [(0, "already-republished"), (1, "publish")]
    plan = plan_republish(
        records(), Selection(source_topic="events"), republished, fix=fix, again=True
    )
    assert outcomes(plan)[0] == (0, "publish")
    capped = Selection(source_topic="events", max_records=1)
    assert outcomes(plan_republish(records(), capped, {}, fix=fix, spec=SPEC)) == [(0, "publish")]


def test_check_values_uses_the_decoder_then_the_feature_spec() -> None:
    verdicts = check_values(
        [event("a", salary=1.0, car="1"), event("b", salary="x", car="1"), b"[]"], SPEC
    )
    assert verdicts[0] is None
    assert verdicts[1] is not None and verdicts[1].reason is RejectReason.WRONG_TYPE
    assert verdicts[2] is not None and verdicts[2].reason is RejectReason.NOT_AN_OBJECT
    assert check_values([event("b", salary=1.0)], None) == [None]  # the decoder alone
