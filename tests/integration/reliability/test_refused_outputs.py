"""Outputs the broker refuses: commits stop, retries back off, /readyz says so, nothing is lost.

The decisions topic is made to refuse every write by lowering its ``max.message.bytes``
below the size of one decision, while the engine is serving; then the limit is lifted.
"""

from __future__ import annotations

from pathlib import Path

from confluent_kafka.admin import AdminClient

from tests.support.reliability import (
    EngineProcess,
    OutputReader,
    group_lag,
    set_topic_config,
    valid_records,
)
from tests.support.scorer import ScorerSetup
from tests.support.waiting import wait_until

OBSERVED_S = 12.0


def test_refused_decisions_stop_commits_and_resume_when_fixed(
    scorer_setup: ScorerSetup, kafka_admin: AdminClient, tmp_path: Path
) -> None:
    records, ids = valid_records(3_000, seed=61, run_id="refused")
    engine = EngineProcess(scorer_setup, tmp_path, "--max-batch", "200")
    reader = OutputReader(scorer_setup, "decisions")
    scorer_setup.produce(records[:1_000])
    reader.read_until(lambda r: len(set(r.event_ids("decisions"))) >= 1_000, "first decisions",
                      engines=[engine])  # fmt: skip
    wait_until(lambda: group_lag(scorer_setup) == 0, "first commit", engines=[engine])
    wait_until(lambda: engine.readiness()[0] == 200, "ready", engines=[engine])

    decisions = scorer_setup.topics["decisions"]
    set_topic_config(kafka_admin, decisions, "max.message.bytes", "64")
    scorer_setup.produce(records[1_000:])
    wait_until(lambda: engine.readiness()[0] == 503, "not ready", engines=[engine])
    _, reason = engine.readiness()
    assert "delivery failed" in reason and "too large" in reason.lower(), reason

    failures_before = engine.metric("scorer_errors_total", kind="delivery")
    reader.pump(OBSERVED_S)
    failures = engine.metric("scorer_errors_total", kind="delivery") - failures_before
    # With backoff (0.5 s doubling to 30 s) a dozen seconds hold a handful of attempts;
    # a rewind loop without it would fail every few milliseconds.
    assert 1 <= failures <= 8, f"{failures} delivery failures in {OBSERVED_S}s"
    assert group_lag(scorer_setup) == 2_000  # nothing after the refusal was committed
    assert engine.readiness()[0] == 503
    print(f"refused: {failures:.0f} retries in {OBSERVED_S:.0f}s, readyz 503 ({reason})")

    set_topic_config(kafka_admin, decisions, "max.message.bytes", None)
    reader.read_until(lambda r: set(r.event_ids("decisions")) >= set(ids), "every decision",
                      engines=[engine])  # fmt: skip
    wait_until(lambda: group_lag(scorer_setup) == 0, "commits resumed", engines=[engine])
    wait_until(lambda: engine.readiness()[0] == 200, "ready again", engines=[engine])
    reader.close()
    assert engine.terminate() == 0


def test_refused_decisions_abort_the_transaction_and_nothing_is_doubled(
    scorer_setup: ScorerSetup, kafka_admin: AdminClient, tmp_path: Path
) -> None:
    """With --exactly-once a refused write aborts its transaction: a read_committed reader
    sees no output of the failed attempts, and after the fix each event's decision and
    explanation exactly once."""
    records, ids = valid_records(2_000, seed=67, run_id="refused-eos")
    engine = EngineProcess(scorer_setup, tmp_path, "--max-batch", "200", "--exactly-once")
    reader = OutputReader(scorer_setup, "decisions", "explanations", read_committed=True)
    scorer_setup.produce(records[:500])
    reader.read_until(lambda r: len(set(r.event_ids("decisions"))) >= 500, "first decisions",
                      engines=[engine])  # fmt: skip
    wait_until(lambda: group_lag(scorer_setup) == 0, "first commit", engines=[engine])

    decisions = scorer_setup.topics["decisions"]
    set_topic_config(kafka_admin, decisions, "max.message.bytes", "64")
    scorer_setup.produce(records[500:])
    wait_until(lambda: engine.readiness()[0] == 503, "not ready", engines=[engine])
    failures = engine.metric("scorer_errors_total", kind="transaction")
    assert failures >= 1
    reader.pump(3.0)
    assert group_lag(scorer_setup) == 1_500  # nothing after the refusal was committed
    assert len(reader.of("explanations")) == 500  # the aborted attempts' explanations unseen

    set_topic_config(kafka_admin, decisions, "max.message.bytes", None)
    wait_until(lambda: group_lag(scorer_setup) == 0, "transactions resumed", engines=[engine])
    reader.settle(engines=[engine])
    reader.close()
    for name in ("decisions", "explanations"):
        seen = reader.event_ids(name)
        assert sorted(seen) == sorted(ids), f"{name}: {len(seen)} records, {len(set(seen))} ids"
    wait_until(lambda: engine.readiness()[0] == 200, "ready again", engines=[engine])
    assert engine.terminate() == 0
