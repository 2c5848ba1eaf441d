"""Windowed fairness reports: values equal models.fairness to 1e-9; the status rule."""

from __future__ import annotations

import numpy as np
import pytest

from models.fairness import fairness_summary
from models.policy import ADVERSE_DECISIONS
from schemas.contracts import FairnessReport
from streams.monitoring import LabelledBatch, MonitorConfig, MonitorSet, ObservedBatch
from tests.support.synthetic import T0, SyntheticModel

CONFIG = MonitorConfig(window_seconds=1000.0, lateness_seconds=0.0, event_partitions=1)


def window_of(
    synthetic: SyntheticModel,
    sizes: dict[str, int],
    favourable: dict[str, float],
    seed: int,
    labelled: float = 0.0,
) -> tuple[list[dict], np.ndarray, np.ndarray, np.ndarray]:
    """One window (flushed) of groups with the given sizes and favourable shares; a share
    ``labelled`` of the events also gets a label in the same window."""
    rng = np.random.default_rng(seed)
    groups = np.concatenate([np.full(n, g) for g, n in sizes.items()])
    rng.shuffle(groups)
    n = groups.size
    share = np.array([favourable[g] for g in groups])
    decisions = np.where(rng.random(n) < share, "approve", rng.choice(["review", "decline"], n))
    batch, _ = synthetic.batch(rng, 0, n, partitions=1, rate=1.0)
    events = ObservedBatch(
        batch.X,
        batch.scores,
        decisions,
        T0 + np.arange(n) * 0.1,
        np.zeros(n),
        np.arange(n),
        [{"group": g} for g in groups],
    )
    labels = np.where(rng.random(n) < labelled, (rng.random(n) < 0.4).astype(int), -1)
    monitors = MonitorSet(synthetic.manifest, CONFIG)
    records = monitors.observe(events)
    rows = labels >= 0
    records += monitors.observe_labels(
        LabelledBatch(
            batch.scores[rows],
            decisions[rows],
            labels[rows],
            events.event_time[rows],
            np.zeros(rows.sum()),
            np.arange(rows.sum()),
            {"group": groups[rows]},
        )
    )
    records += monitors.flush()
    return records, decisions, groups, labels


def report(records: list[dict], basis: str) -> dict:
    (found,) = [r for r in records if r.get("report_id", "").startswith(f"fairness:group:{basis}")]
    FairnessReport.model_validate(found)
    return found


def assert_matches(found: dict, expected: dict) -> None:
    for key in ("disparate_impact_ratio", "demographic_parity_difference", "tpr_gap", "fpr_gap"):
        if expected[key] is None:
            assert found[key] is None, key
        else:
            assert found[key] == pytest.approx(expected[key], abs=1e-9), key
    assert found["reference_group"] == expected["reference_group"]
    groups = {g["group"]: g for g in found["groups"]}
    assert set(groups) == set(expected["groups"])
    for name, rates in expected["groups"].items():
        for key in ("count", "labelled"):
            assert groups[name][key] == rates[key]
        for key in ("selection_rate", "tpr", "fpr"):
            if rates[key] is None:
                assert groups[name][key] is None
            else:
                assert groups[name][key] == pytest.approx(rates[key], abs=1e-9)


def test_values_equal_the_reference_computation(synthetic: SyntheticModel) -> None:
    sizes = {"a": 400, "b": 250, "c": 150}
    records, decisions, groups, labels = window_of(
        synthetic, sizes, {"a": 0.6, "b": 0.5, "c": 0.3}, seed=1, labelled=0.7
    )
    adverse = np.isin(decisions, list(ADVERSE_DECISIONS))
    decided = report(records, "decisions")
    assert_matches(decided, fairness_summary(adverse, groups, min_count=100))
    rows = labels >= 0
    outcomes = report(records, "outcomes")
    expected = fairness_summary(adverse[rows], groups[rows], labels[rows], min_count=100)
    assert_matches(outcomes, expected)
    assert outcomes["tpr_gap"] is not None and outcomes["fpr_gap"] is not None
    assert decided["tpr_gap"] is None and decided["window"]["events"] == 800


def test_alert_when_every_group_is_large_and_the_ratio_is_low(synthetic: SyntheticModel) -> None:
    records, *_ = window_of(synthetic, {"a": 400, "b": 300}, {"a": 0.7, "b": 0.35}, seed=2)
    found = report(records, "decisions")
    assert found["status"] == "alert"
    assert found["disparate_impact_ratio"] < 0.8 and found["reference_group"] == "a"
    assert found["min_group_count"] == 100 and found["di_threshold"] == 0.8


def test_ok_when_rates_are_close(synthetic: SyntheticModel) -> None:
    records, *_ = window_of(synthetic, {"a": 2000, "b": 2000}, {"a": 0.5, "b": 0.5}, seed=3)
    found = report(records, "decisions")
    assert found["status"] == "ok" and found["disparate_impact_ratio"] > 0.9


def test_insufficient_data_when_a_group_is_below_the_minimum(synthetic: SyntheticModel) -> None:
    records, *_ = window_of(
        synthetic, {"a": 500, "b": 400, "small": 99}, {"a": 0.7, "b": 0.2, "small": 0.5}, seed=4
    )
    found = report(records, "decisions")
    assert found["status"] == "insufficient_data"  # even though a/b alone would alert
    small = next(g for g in found["groups"] if g["group"] == "small")
    assert small["count"] == 99
    assert found["disparate_impact_ratio"] < 0.8  # computed over the groups that qualify


def test_missing_attribute_is_its_own_group(synthetic: SyntheticModel) -> None:
    rng = np.random.default_rng(6)
    batch, _ = synthetic.batch(rng, 0, 300, partitions=1)
    events = ObservedBatch(
        batch.X,
        batch.scores,
        batch.decisions,
        batch.event_time,
        batch.partition,
        batch.offset,
        [{"group": "a"} if i % 3 else {} for i in range(300)],
    )
    monitors = MonitorSet(synthetic.manifest, CONFIG)
    records = monitors.observe(events) + monitors.flush()
    found = report(records, "decisions")
    assert {g["group"]: g["count"] for g in found["groups"]} == {"a": 200, "unknown": 100}
