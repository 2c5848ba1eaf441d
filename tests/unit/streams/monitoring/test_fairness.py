"""Windowed fairness reports: values equal models.fairness to 1e-9; the status rule."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from models.fairness import fairness_summary
from models.policy import ADVERSE_DECISIONS
from schemas.contracts import FairnessReport
from schemas.errors import MonitoringError
from streams.monitoring import LabelledBatch, MonitorConfig, MonitorSet, ObservedBatch
from streams.monitoring.batch import context_column, context_groups
from streams.monitoring.fairness_window import FairnessMonitor
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


class _Row(dict):
    pass


CONTEXTS: dict[str, Any] = {
    "plain": [{"g": "b"}, {"g": "a"}, {"g": "b"}, {"g": "c"}],
    "missing and empty": [{}, {"g": ""}, {"g": "(empty)"}, {"g": "unknown"}, {"other": "x"}],
    "not str": [{"g": 3}, {"g": "3"}, {"g": None}, {"g": 2.5}],
    "trailing nul": [{"g": "a\0"}, {"g": "a"}],
    "not dicts": [{"g": "a"}, {"g": "b"}, _Row(g="a")],
    "columns": {"g": ["b", "a", "", "b"]},
    "none": None,
    "unicode": [{"g": "é"}, {"g": "e"}, {"g": "\U0001f600"}, {"g": "Z"}],
}


@pytest.mark.parametrize("name", list(CONTEXTS))
def test_context_groups_equal_numpys_unique_of_the_column(name: str) -> None:
    context = CONTEXTS[name]
    if context is None:
        n = 4
    elif isinstance(context, dict):
        n = len(context["g"])
    else:
        n = len(context)
    groups, group_of = context_groups(context, "g", n)
    unique, inverse = np.unique(context_column(context, "g", n), return_inverse=True)
    assert groups == unique.tolist()
    assert group_of.tolist() == inverse.reshape(-1).tolist()


def test_context_groups_refuse_a_context_of_another_length() -> None:
    with pytest.raises(MonitoringError, match="3 entries for 4 events"):
        context_groups([{"g": "a"}] * 3, "g", 4)


def test_window_counts_per_group_equal_counting_each_event() -> None:
    """The one-bincount counts against a plain loop over the events, on both streams."""
    rng = np.random.default_rng(5)
    n = 500
    groups = rng.choice(["a", "b", "", "c"], n)
    decisions = rng.choice(["approve", "review", "decline"], n)
    labels = rng.integers(0, 2, n)
    position = rng.integers(0, 3, n)
    context = [{"g": str(g)} for g in groups]
    options: dict[str, Any] = dict(min_group_count=10, di_threshold=0.8, model={}, clock=None)
    monitor = FairnessMonitor("g", "labels", **options)
    batch = LabelledBatch(
        scores=rng.random(n), decisions=decisions, labels=labels,
        label_time=T0 + np.arange(n), partition=np.zeros(n), offset=np.arange(n),
        context=context,
    )  # fmt: skip
    counted = monitor.count(batch, position, 3)
    expected: dict[str, np.ndarray] = {}
    for i in range(n):
        name = monitor._name(str(groups[i]) or "(empty)")
        cells = expected.setdefault(name, np.zeros((3, 6), dtype=np.int64))
        favourable = decisions[i] not in ADVERSE_DECISIONS
        good, bad = labels[i] == 0, labels[i] == 1
        flags = [True, favourable, good, good and favourable, bad, bad and favourable]
        cells[position[i]] += np.array(flags, dtype=np.int64)
    assert counted.keys() == expected.keys()
    for name, cells in expected.items():
        assert counted[name].dtype == np.int64
        assert counted[name].tolist() == cells.tolist()
    events = FairnessMonitor("g", "events", **options)
    observed = ObservedBatch(
        np.zeros((n, 1)), batch.scores, decisions, T0 + np.arange(n), np.zeros(n),
        np.arange(n), context,
    )  # fmt: skip
    assert {k: v.tolist() for k, v in events.count(observed, position, 3).items()} == {
        k: v[:, :2].tolist() for k, v in expected.items()
    }
