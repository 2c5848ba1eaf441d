"""The outcome join over a real RocksDB store: both sides wait, labels join once, state is
bounded by event time, and a store restored from its changelog joins as the original."""

from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.contracts import JoinRecord, Outcome, RejectReason
from streams.outcomes.join import OutcomeJoin, parse_feedback, snapshot
from streams.outcomes.join_store import PartitionStore


def label(event_id: str, at: float, value: int = 1) -> dict[str, Any]:
    return {
        "side": "label", "event_id": event_id, "label": value,
        "label_time": "2026-01-01T00:00:00+00:00", "t": at,
        "source": {"topic": "feedback", "partition": 0, "offset": 7, "value_b64": "e30="},
    }  # fmt: skip


def decision(event_id: str, at: float) -> dict[str, Any]:
    return {"side": "decision", **snapshot(event_id, at)}


@pytest.fixture
def store(tmp_path: Path) -> PartitionStore:
    return PartitionStore(tmp_path / "0")


def reasons(rejects: list) -> list[tuple[str, str]]:
    return [(r.label["event_id"], r.reason.value) for r in rejects]


def test_a_label_before_its_decision_waits_and_then_joins(store: PartitionStore) -> None:
    join = OutcomeJoin(store, retention_s=3600, wait_s=60, sources=1)
    assert join.label(label("e1", 1000.0)) == ([], [])
    assert join.expire() == []
    outcomes = join.decision(decision("e1", 999.0))
    assert [(o["event_id"], o["label"]) for o in outcomes] == [("e1", 1)]
    Outcome.model_validate(outcomes[0])  # the record the outcomes topic carries
    assert store.label("e1") is None and store.decision("e1")["labelled"] is True


def test_a_label_after_its_decision_joins_once(store: PartitionStore) -> None:
    join = OutcomeJoin(store, retention_s=3600, wait_s=60, sources=1)
    assert join.decision(decision("e1", 1000.0)) == []
    joined, rejects = join.label(label("e1", 1500.0))
    assert [o["event_id"] for o in joined] == ["e1"] and rejects == []
    joined, rejects = join.label(label("e1", 1600.0, value=0))
    assert joined == [] and reasons(rejects) == [("e1", "DUPLICATE_LABEL")]


def test_a_second_label_while_the_first_waits_is_a_duplicate(store: PartitionStore) -> None:
    join = OutcomeJoin(store, retention_s=3600, wait_s=60, sources=1)
    join.label(label("e1", 1000.0))
    assert reasons(join.label(label("e1", 1001.0))[1]) == [("e1", "DUPLICATE_LABEL")]
    assert len(join.decision(decision("e1", 990.0))) == 1  # the first one joins


def test_an_unknown_label_is_rejected_only_when_decisions_passed_its_wait(
    store: PartitionStore,
) -> None:
    join = OutcomeJoin(store, retention_s=3600, wait_s=60, sources=1)
    join.label(label("ghost", 1000.0))
    join.decision(decision("a", 1059.0))
    join.mark(0, 1059.0, read_to_end=False)
    assert join.expire() == []  # 1059 is within 1000 + 60
    join.decision(decision("b", 1061.0))
    join.mark(0, 1061.0, read_to_end=False)
    rejects = join.expire()
    assert reasons(rejects) == [("ghost", "LABEL_UNKNOWN_EVENT")]
    assert rejects[0].label["source"]["offset"] == 7  # the dead letter's coordinates
    assert store.label("ghost") is None
    # once the decisions are past it, a label for an unknown event is rejected at once
    assert reasons(join.label(label("late-ghost", 1000.0))[1]) == [
        ("late-ghost", "LABEL_UNKNOWN_EVENT")
    ]


def test_a_partition_read_ahead_of_another_makes_no_label_unknown(store: PartitionStore) -> None:
    """Decisions partition 0 is read to t=5000 while partition 1 is still at t=1000 (a
    backlog read unevenly): a label at t=1001 waits for partition 1, which holds its
    decision."""
    join = OutcomeJoin(store, retention_s=86_400, wait_s=60, sources=2)
    join.mark(0, 5000.0, read_to_end=False)
    assert join.decisions_read_to() == float("-inf")  # partition 1 not heard of yet
    join.mark(1, 1000.0, read_to_end=False)
    assert join.decisions_read_to() == 1000.0
    assert join.label(label("late-decision", 1001.0)) == ([], [])
    assert join.expire() == []
    assert len(join.decision(decision("late-decision", 1000.5))) == 1
    fresh = OutcomeJoin(store, retention_s=86_400, wait_s=60, sources=2)
    fresh.mark(0, 5000.0, read_to_end=False)
    fresh.mark(1, None, read_to_end=False)  # its router has routed nothing yet: it holds
    assert fresh.decisions_read_to() == float("-inf")


def test_partitions_read_to_their_end_hold_nothing_back(store: PartitionStore) -> None:
    join = OutcomeJoin(store, retention_s=86_400, wait_s=60, sources=3)
    join.mark(0, 2000.0, read_to_end=True)
    join.mark(1, 1000.0, read_to_end=True)  # an idle partition, read long ago
    join.mark(2, None, read_to_end=True)  # an empty one
    assert join.decisions_read_to() == 2000.0
    join.mark(2, 1500.0, read_to_end=False)  # new decisions arrive there
    assert join.decisions_read_to() == 1500.0


def test_a_label_later_than_the_retention_is_too_late(store: PartitionStore) -> None:
    join = OutcomeJoin(store, retention_s=100, wait_s=10, sources=1)
    join.decision(decision("e1", 1000.0))
    assert reasons(join.label(label("e1", 1101.0))[1]) == [("e1", "LABEL_TOO_LATE")]


def test_decisions_past_the_retention_are_forgotten_from_disk_too(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path / "0")
    join = OutcomeJoin(store, retention_s=100, wait_s=10, sources=1)
    for i in range(50):
        join.decision(decision(f"e{i}", 1000.0 + i))
    join.expire()
    store.flush(None)
    join.decision(decision("newest", 1200.0))
    join.expire()
    store.flush(None)
    assert store.decision("e0") is None and store.decision("e49") is None
    assert store.decision("newest") is not None
    deleted = [key for key, value in store.take_changes() if value is None]
    assert len(deleted) == 50  # each one is a tombstone on the changelog


def test_pending_changes_reach_the_disk_only_when_flushed(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path / "0")
    OutcomeJoin(store, 3600, 60, sources=1).decision(decision("e1", 1000.0))
    store.discard()  # the transaction that carried it was aborted
    assert store.decision("e1") is None
    OutcomeJoin(store, 3600, 60, sources=1).decision(decision("e1", 1000.0))
    store.flush(5)
    store.close()
    reopened = PartitionStore(tmp_path / "0")
    assert reopened.decision("e1") is not None
    assert reopened.changelog_offset == 5 and reopened.stream_time == 1000.0


def test_a_store_restored_from_its_changelog_joins_like_the_original(tmp_path: Path) -> None:
    original = PartitionStore(tmp_path / "a")
    join = OutcomeJoin(original, retention_s=100, wait_s=100, sources=1)
    for i in range(20):
        join.decision(decision(f"e{i}", 1000.0 + i))
    join.label(label("e13", 1030.0))
    join.label(label("waiting", 1025.0))
    join.decision(decision("e99", 1110.0))  # e0..e9 fall out of the retention
    join.expire()
    changelog = [(offset, key, value) for offset, (key, value) in
                 enumerate(original.take_changes())]  # fmt: skip
    for _, _, value in changelog:
        if value is not None:
            JoinRecord.model_validate_json(value)  # the changelog topic's contract
    restored = PartitionStore(tmp_path / "b")
    assert restored.restore(iter(changelog)) == len(changelog)
    assert restored.changelog_offset == len(changelog)
    assert restored.stream_time == 1110.0
    again = OutcomeJoin(restored, retention_s=100, wait_s=100, sources=1)
    assert restored.decision("e5") is None and restored.decision("e15") is not None
    assert reasons(again.label(label("e13", 1111.0))[1]) == [("e13", "DUPLICATE_LABEL")]
    assert [o["event_id"] for o in again.decision(decision("waiting", 1020.0))] == ["waiting"]


def test_parse_feedback_rejects_with_reasons() -> None:
    values = [
        b'{"event_id": "a", "label": 1, "label_time": "2026-01-01T00:00:00Z"}',
        b'{"event_id": "b", "label": 2, "label_time": "2026-01-01T00:00:00Z"}',
        b"not json",
        None,
    ]
    accepted, rejects = parse_feedback(values)
    assert [(i, f["event_id"], f["label"]) for i, f in accepted] == [(0, "a", 1)]
    assert orjson.loads(orjson.dumps(accepted[0][1]))["t"] == 1767225600.0
    assert [(i, reason) for i, reason, _ in rejects] == [
        (1, RejectReason.SCHEMA_VIOLATION),
        (2, RejectReason.INVALID_JSON),
        (3, RejectReason.SCHEMA_VIOLATION),
    ]


def test_a_router_that_took_a_partition_over_moves_no_clock_back(store: PartitionStore) -> None:
    """After a rebalance the new router of a partition has routed nothing yet: what the join
    partition knew of it stands, and with every partition read to its end the newest
    decision held is the clock."""
    join = OutcomeJoin(store, retention_s=86_400, wait_s=60, sources=2)
    join.mark(0, 1500.0, read_to_end=False)
    join.mark(1, 1400.0, read_to_end=False)
    join.mark(0, None, read_to_end=False)
    join.mark(1, 1300.0, read_to_end=False)  # an older decision routed late
    assert join.marks == {0: (1500.0, False), 1: (1400.0, False)}
    fresh = OutcomeJoin(store, retention_s=86_400, wait_s=60, sources=2)  # a restored store
    fresh.decision(decision("held", 2000.0))
    fresh.mark(0, None, read_to_end=True)
    fresh.mark(1, None, read_to_end=True)
    assert fresh.decisions_read_to() == 2000.0
