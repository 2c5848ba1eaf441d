"""Correct across instances: partition-split summaries merge into the same verdicts."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from schemas.contracts import DriftAlert, FairnessReport
from streams.monitoring import MonitoringError, MonitorSet, WindowSummary
from streams.monitoring.batch import ObservedBatch
from tests.support.synthetic import SPLIT_CONFIG as CONFIG
from tests.support.synthetic import SyntheticModel, comparable, run_single


def part(batch: Any, partitions: set[int]) -> Any:
    return batch.take(np.isin(batch.partition, list(partitions)))


def run_split(
    synthetic: SyntheticModel, batches: list, delay: int
) -> tuple[list[dict], MonitorSet, MonitorSet]:
    """Owner reads partitions 0 and 1, a contributor reads partition 2; the contributor's
    exports reach the owner through JSON, ``delay`` batches late."""
    owner = MonitorSet(synthetic.manifest, CONFIG)
    contributor = MonitorSet(synthetic.manifest, CONFIG, role="contributor")
    records: list[dict] = []
    in_flight: list[str] = []
    for events, labels in batches:
        assert contributor.observe(part(events, {2})) == []
        assert contributor.observe_labels(part(labels, {2})) == []
        in_flight.append(json.dumps(contributor.summaries()))
        records += owner.observe(part(events, {0, 1}))
        records += owner.observe_labels(part(labels, {0, 1}))
        while len(in_flight) > delay:
            records += owner.merge_summary(json.loads(in_flight.pop(0)))
    in_flight.append(json.dumps(contributor.summaries()))
    for export in in_flight:
        records += owner.merge_summary(json.loads(export))
    return records + owner.flush(), owner, contributor


@pytest.mark.parametrize("delay", [0, 7])
def test_two_instances_give_the_verdicts_of_one(
    synthetic: SyntheticModel, batches: list, delay: int
) -> None:
    single, one = run_single(synthetic, batches)
    split, owner, contributor = run_split(synthetic, batches, delay)
    kinds = {r.get("monitor") or "fairness" for r in single}
    assert {"feature", "concept", "fairness"} <= kinds  # there is something to compare
    assert comparable(split) == comparable(single)
    for record in single:
        contract = DriftAlert if "alert_id" in record else FairnessReport
        contract.model_validate(record)
    counters, merged = one.stats()["counters"], owner.stats()["counters"]
    theirs = contributor.stats()["counters"]
    for key in ("events.counted", "events.late", "labels.counted", "labels.late"):
        assert counters.get(key, 0) == merged.get(key, 0) + theirs.get(key, 0), key
    assert counters["events.late"] > 0  # the jitter made some events late, identically
    assert counters.get("events.late_after_final", 0) == 0
    assert merged.get("events.late_after_final", 0) == 0


def test_windows_closed_before_flush_are_the_same(synthetic: SyntheticModel, batches: list) -> None:
    """Without the final flush, the owner has closed exactly the windows one process has."""
    one = MonitorSet(synthetic.manifest, CONFIG)
    owner = MonitorSet(synthetic.manifest, CONFIG)
    contributor = MonitorSet(synthetic.manifest, CONFIG, role="contributor")
    single, split = [], []
    for events, labels in batches[:50]:
        single += one.observe(events) + one.observe_labels(labels)
        contributor.observe(part(events, {2}))
        contributor.observe_labels(part(labels, {2}))
        split += owner.observe(part(events, {0, 1})) + owner.observe_labels(part(labels, {0, 1}))
        split += owner.merge_summary(contributor.summaries())
    assert comparable(split) == comparable(single)
    assert one.stats()["pending_windows"] == owner.stats()["pending_windows"]


def summary_of(synthetic: SyntheticModel, batch: ObservedBatch) -> dict[int, WindowSummary]:
    contributor = MonitorSet(synthetic.manifest, CONFIG, role="contributor")
    contributor.observe(batch)
    export = contributor.summaries()
    return {
        w["window_id"]: WindowSummary.from_dict(w) for w in export["streams"]["events"]["windows"]
    }


def test_merged_partition_summaries_equal_the_summary_of_all_events(
    synthetic: SyntheticModel,
) -> None:
    batch, _ = synthetic.batch(np.random.default_rng(3), 0, 3_000, partitions=3)
    whole = summary_of(synthetic, batch)
    left = summary_of(synthetic, part(batch, {0, 2}))
    right = summary_of(synthetic, part(batch, {1}))
    monitors = MonitorSet(synthetic.manifest, CONFIG)
    for window_id, summary in whole.items():
        merged = right[window_id].merge(left[window_id])
        assert merged == summary == left[window_id].merge(right[window_id])
        for monitor in monitors.monitors["events"]:
            assert monitor.evaluate(merged) == monitor.evaluate(summary)


def test_summary_round_trips_through_json(synthetic: SyntheticModel) -> None:
    batch, _ = synthetic.batch(np.random.default_rng(4), 0, 1_000)
    for summary in summary_of(synthetic, batch).values():
        text = json.dumps(summary.to_dict())
        assert WindowSummary.from_dict(json.loads(text)) == summary


def test_merge_refuses_double_counting_and_foreign_windows() -> None:
    a = WindowSummary("events", 1, 60.0, 2, {"x": np.array([1, 1])}, {0: (10, 20)}, 61.0, 62.0)
    replay = WindowSummary("events", 1, 60.0, 1, {"x": np.array([1, 0])}, {0: (20, 20)}, 61.5, 61.5)
    with pytest.raises(MonitoringError, match="overlap"):
        a.merge(replay)
    with pytest.raises(MonitoringError, match="cannot merge"):
        a.merge(WindowSummary("events", 2, 60.0))
    with pytest.raises(MonitoringError, match="shapes"):
        a.merge(WindowSummary("events", 1, 60.0, 1, {"x": np.array([1, 0, 0])}, {1: (0, 0)}))
    with pytest.raises(MonitoringError, match="not a window summary"):
        WindowSummary.from_dict({"version": 1, "stream": "events"})


def test_exports_belong_to_one_model_and_roles_are_kept(synthetic: SyntheticModel) -> None:
    owner = MonitorSet(synthetic.manifest, CONFIG)
    contributor = MonitorSet(synthetic.manifest, CONFIG, role="contributor")
    export = contributor.summaries()
    with pytest.raises(MonitoringError, match="does not belong"):
        owner.merge_summary({**export, "model": {**export["model"], "version": 2}})
    with pytest.raises(MonitoringError, match="only a contributor"):
        owner.summaries()
    with pytest.raises(MonitoringError, match="only the owner"):
        contributor.merge_summary(export)
    with pytest.raises(MonitoringError, match="does not evaluate"):
        contributor.flush()
