"""One valid example record of every wire contract (the contract and export tests use them)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
from typing import Final

from pydantic import BaseModel

from schemas.contracts import (
    DeadLetter,
    Decision,
    DriftAlert,
    DriftWindow,
    Explanation,
    FairnessReport,
    Feedback,
    GroupMetrics,
    JoinRecord,
    JoinSource,
    ModelEvent,
    ModelRef,
    MonitorCheckpoint,
    MonitorSummary,
    Outcome,
    ReasonCode,
    RejectReason,
    ScoringEvent,
)

SHA = "a" * 64
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MODEL = ModelRef(name="credit", version=3, sha256=SHA)
WINDOW = DriftWindow(
    start_time=T0, end_time=T0 + timedelta(minutes=5), events=500, offsets={"0": [10, 509]}
)
LABEL_TIME = T0 + timedelta(days=20)
FEEDBACK_VALUE = b'{"event_id": "e-1", "label": 1, "label_time": "2024-05-21T12:00:00Z"}'
UNVERSIONED_CONTRACTS: Final = frozenset({"JoinRecord"})
"""Contracts without ``schema_version``: the outcome join's internal records."""


def join_records() -> dict[str, JoinRecord]:
    """The outcome join's records in each of their forms, as ``scorer join`` writes them."""
    decision = JoinRecord(
        side="decision",
        event_id="e-1",
        t=T0.timestamp(),
        entity_id="c-9",
        model=MODEL,
        score=0.91,
        decision="decline",
        context={"gender": "f"},
        input_hash="0123456789abcdef" * 4,
        event_time=T0,
    )
    label = JoinRecord(
        side="label",
        event_id="e-1",
        t=LABEL_TIME.timestamp(),
        label=1,
        label_time=LABEL_TIME,
        source=JoinSource(
            topic="feedback",
            partition=1,
            offset=9,
            timestamp_ms=int(LABEL_TIME.timestamp() * 1000),
            key_b64=base64.b64encode(b"e-1").decode("ascii"),
            value_b64=base64.b64encode(FEEDBACK_VALUE).decode("ascii"),
        ),
    )
    return {
        "decision": decision,  # on outcome-join-input
        "held decision": JoinRecord.model_validate(  # on outcome-join-changelog
            {**decision.model_dump(), "labelled": True}
        ),
        "label": label,  # on outcome-join-input
        "waiting label": JoinRecord.model_validate(  # on outcome-join-changelog
            {**label.model_dump(), "deadline": LABEL_TIME.timestamp() + 300.0}
        ),
        "watermark": JoinRecord(  # on outcome-join-input
            side="watermark", t=T0.timestamp(), decisions_partition=2, read_to_end=False
        ),
        "first watermark": JoinRecord(side="watermark", decisions_partition=0, read_to_end=True),
    }


def examples() -> dict[str, BaseModel]:
    """One valid record of every top-level contract."""
    return {
        "ScoringEvent": ScoringEvent(
            event_id="e-1",
            entity_id="c-9",
            event_time=datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))),
            features={"salary": 52000.5, "loan": 3, "car": "sedan", "owner": True, "age": None},
            context={"gender": "f"},
        ),
        "Decision": Decision(
            event_id="e-1",
            entity_id="c-9",
            decision="decline",
            score=0.91,
            thresholds={"review": 0.5, "decline": 0.8},
            reason_codes=[
                ReasonCode(code="RC_SALARY", feature="salary", text="Low salary", contribution=1.2)
            ],
            model=MODEL,
            input_hash="0123456789abcdef" * 4,
            event_time=T0,
            scored_at=T0 + timedelta(milliseconds=4),
            latency_ms=3.7,
            shadow=True,
        ),
        "Explanation": Explanation(
            event_id="e-1",
            entity_id="c-9",
            model=MODEL,
            method="tree_shap",
            base_value=-1.5,
            output_value=0.5,
            contributions={"salary": 1.5, "loan": 0.5},
            top_features=["salary", "loan"],
            additivity_error=1e-12,
        ),
        "DriftAlert": DriftAlert(
            alert_id="a-1",
            monitor_id="feature:salary",
            monitor="feature",
            feature="salary",
            status="open",
            statistic="psi",
            value=0.31,
            threshold=0.2,
            budget_events=100_000.0,
            window=WINDOW,
            reference={"bins": [0.1, 0.9]},
            current={"bins": [0.5, 0.5]},
            severity="warning",
            model=MODEL,
            retrain_recommended=True,
            retrain_rule="psi above threshold for 3 windows",
            detected_at=T0,
        ),
        "FairnessReport": FairnessReport(
            report_id="r-1",
            attribute="gender",
            window=WINDOW,
            groups=[
                GroupMetrics(group="f", count=240, selection_rate=0.4, labelled=100, tpr=0.7),
                GroupMetrics(group="m", count=260, selection_rate=0.5, fpr=0.1),
            ],
            reference_group="m",
            disparate_impact_ratio=0.8,
            demographic_parity_difference=-0.1,
            tpr_gap=0.05,
            fpr_gap=None,
            status="ok",
            min_group_count=30,
            di_threshold=0.8,
            model=MODEL,
            generated_at=T0,
        ),
        "Feedback": Feedback(event_id="e-1", label=1, label_time=T0, source="collections"),
        "DeadLetter": DeadLetter.from_raw(
            reason=RejectReason.INVALID_JSON,
            detail="record: Invalid JSON",
            topic="events",
            partition=2,
            offset=41,
            value=b"\xff{not json",
            key=b"c-9",
            timestamp_ms=1714564800000,
            scorer_version="0.1.0",
            failed_at=T0,
        ),
        "ModelEvent": ModelEvent(
            event_type="promoted",
            model_name="credit",
            version=3,
            alias="champion",
            previous_version=2,
            sha256=SHA,
            actor="alice",
            reason="better AUC",
            gates=[{"name": "auc", "passed": True, "value": 0.81}],
            occurred_at=T0,
        ),
        "MonitorSummary": MonitorSummary(
            version=1,
            model=ModelRef(name="credit", version=3, sha256=SHA),
            streams={
                "events": {
                    "watermarks": {"0": 1714564800.0},
                    "high_offsets": {"0": 41},
                    "windows": [],
                }
            },
        ),
        "MonitorCheckpoint": MonitorCheckpoint(
            owner="scorer-monitor",
            offsets={"monitor-summaries": {"0": 42}, "feedback": {"0": 7, "1": 9}},
            monitors=[{"version": 1, "model": {"name": "credit", "version": 3}}],
            written_at=T0,
        ),
        "Outcome": Outcome(
            event_id="e-1",
            entity_id="c-9",
            model=MODEL,
            score=0.91,
            decision="decline",
            label=1,
            context={"gender": "f"},
            input_hash="0123456789abcdef" * 4,
            event_time=T0,
            label_time=LABEL_TIME,
        ),
        "JoinRecord": join_records()["decision"],
    }
