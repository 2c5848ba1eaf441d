"""Labels join their decisions once, within the retention; the rest are rejected by name."""

from __future__ import annotations

from schemas.contracts import RejectReason
from streams.outcomes.join import FeedbackJoiner, parse_feedback


def remember(joiner: FeedbackJoiner, event_id: str, when: float) -> None:
    joiner.remember([event_id], [0.7], ["decline"], [{"age_band": "<30"}], [when])


def test_join_once_with_the_snapshot_that_was_scored() -> None:
    joiner = FeedbackJoiner(retention_s=100)
    remember(joiner, "a", 10.0)
    remember(joiner, "a", 11.0)  # a re-scored duplicate keeps the first snapshot
    joined, rejects = joiner.join([(0, "a", 1, 50.0)])
    assert not rejects
    assert (joined[0].score, joined[0].decision, joined[0].context) == (
        0.7,
        "decline",
        {"age_band": "<30"},
    )
    _, rejects = joiner.join([(1, "a", 0, 60.0)])
    assert rejects[0][:2] == (1, RejectReason.DUPLICATE_LABEL)


def test_retention_evicts_and_rejects_late_labels() -> None:
    joiner = FeedbackJoiner(retention_s=100)
    remember(joiner, "old", 0.0)
    remember(joiner, "mid", 50.0)
    _, rejects = joiner.join([(0, "mid", 1, 151.0)])
    assert rejects[0][1] is RejectReason.LABEL_TOO_LATE and "retention is 100s" in rejects[0][2]
    remember(joiner, "new", 120.0)  # "old" is now beyond the retention and forgotten
    assert len(joiner) == 2
    _, rejects = joiner.join([(0, "old", 1, 121.0)])
    assert rejects[0][1] is RejectReason.LABEL_UNKNOWN_EVENT


def test_memory_is_bounded() -> None:
    joiner = FeedbackJoiner(retention_s=1e9, max_entries=3)
    for i in range(10):
        remember(joiner, f"e{i}", float(i))
    assert len(joiner) == 3


def test_parse_feedback_rejects_with_reasons() -> None:
    values = [
        b'{"event_id": "a", "label": 1, "label_time": "2026-01-01T00:00:00Z"}',
        b'{"event_id": "b", "label": 2, "label_time": "2026-01-01T00:00:00Z"}',
        b"not json",
        None,
    ]
    accepted, rejects = parse_feedback(values)
    assert [(i, f["event_id"], f["label"]) for i, f in accepted] == [(0, "a", 1)]
    assert [(i, reason) for i, reason, _ in rejects] == [
        (1, RejectReason.SCHEMA_VIOLATION),
        (2, RejectReason.INVALID_JSON),
        (3, RejectReason.SCHEMA_VIOLATION),
    ]
