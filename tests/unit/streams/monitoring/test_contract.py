"""One contract for every monitor (river's ``checks`` pattern) and for the records."""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
import pytest

from schemas.contracts import DriftAlert
from streams.monitoring import MonitorConfig, MonitorSet
from streams.monitoring.alerts import drift_alert
from streams.monitoring.episodes import EpisodeTracker
from streams.monitoring.summary import WindowSummary, split_by_window
from tests.support.synthetic import SyntheticModel

CONFIG = MonitorConfig(window_seconds=50.0, lateness_seconds=0.0, min_window_labels=200)
SYNTHETIC = SyntheticModel(seed=0, reference_rows=5_000, holdout_rows=2_000)
MONITOR_SET = MonitorSet(SYNTHETIC.manifest, CONFIG)
MONITORS: list[Any] = [
    *MONITOR_SET.monitors["events"],
    *MONITOR_SET.monitors["labels"],
    *MONITOR_SET.fairness["events"],
    *MONITOR_SET.fairness["labels"],
]


def monitor_id(monitor: Any) -> str:
    return getattr(monitor, "monitor_id", None) or f"fairness:{monitor.attribute}:{monitor.stream}"


def batch_for(monitor: Any, seed: int, n: int = 1_500) -> Any:
    rng = np.random.default_rng(seed)
    events, draw = SYNTHETIC.batch(rng, 0, n)
    return events if monitor.stream == "events" else SYNTHETIC.labels(rng, events, draw)


def summaries(monitor: Any, batch: Any) -> list[WindowSummary]:
    window_ids, position = np.unique(
        np.floor(batch.times / CONFIG.window_seconds).astype(np.int64), return_inverse=True
    )
    vectors = monitor.count(batch, position, window_ids.size)
    return split_by_window(
        monitor.stream,
        CONFIG.window_seconds,
        window_ids,
        position,
        vectors,
        batch.times,
        batch.partition,
        batch.offset,
    )


def judge(monitor: Any, summary: WindowSummary) -> Any:
    if not hasattr(monitor, "report"):
        return monitor.evaluate(summary)
    found = monitor.report(summary)
    return found and {k: v for k, v in found.items() if k != "generated_at"}


def test_every_kind_is_covered() -> None:
    kinds = {getattr(m, "monitor", "fairness") for m in MONITORS}
    assert kinds == {"feature", "missing", "prediction", "concept", "fairness"}
    assert len(MONITOR_SET.monitors["events"]) == 23


@pytest.mark.parametrize("monitor", MONITORS, ids=monitor_id)
def test_counts_are_int64_rows_per_window_and_cover_every_event(monitor: Any) -> None:
    batch = batch_for(monitor, 1)
    position = np.repeat(np.arange(3), 500)
    vectors = monitor.count(batch, position, 3)
    assert vectors
    for vector in vectors.values():
        assert vector.dtype == np.int64 and vector.shape[0] == 3 and (vector >= 0).all()
    if getattr(monitor, "monitor", None) in ("feature", "missing"):
        totals = next(iter(vectors.values())).sum(axis=1)
        assert (totals <= 500).all()  # every event once (missing values left out)


@pytest.mark.parametrize("monitor", MONITORS, ids=monitor_id)
def test_counts_add_up_across_any_split_of_a_batch(monitor: Any) -> None:
    batch = batch_for(monitor, 2)
    whole = {s.window_id: s for s in summaries(monitor, batch)}
    halves: dict[int, WindowSummary] = {}
    for rows in (np.arange(len(batch)) % 2 == 0, np.arange(len(batch)) % 2 == 1):
        for s in summaries(monitor, batch.take(rows)):
            halves[s.window_id] = halves[s.window_id].merge(s) if s.window_id in halves else s
    assert whole == halves
    for window_id, summary in whole.items():
        assert judge(monitor, summary) == judge(monitor, halves[window_id])


@pytest.mark.parametrize("monitor", MONITORS, ids=monitor_id)
def test_an_empty_window_has_no_verdict(monitor: Any) -> None:
    assert judge(monitor, WindowSummary(monitor.stream, 0, CONFIG.window_seconds)) is None


@pytest.mark.parametrize(
    "monitor", MONITOR_SET.monitors["events"] + MONITOR_SET.monitors["labels"], ids=monitor_id
)
def test_verdicts_are_deterministic_and_do_not_touch_the_summary(monitor: Any) -> None:
    batch = batch_for(monitor, 3, n=3_000)
    for summary in summaries(monitor, batch):
        before = copy.deepcopy(summary)
        first, second = monitor.evaluate(summary), monitor.evaluate(summary)
        assert summary == before and first == second
        if first is not None:
            assert np.isfinite(first.value) and first.value >= 0.0
            assert np.isfinite(first.threshold) and first.threshold > 0.0
            assert first.breach == (first.value > first.threshold)
            tracker = EpisodeTracker(1, 0)
            forced = type(first)(**{**first.__dict__, "breach": True})
            transition = tracker.step(forced, summary, "R1: test")
            assert transition is not None
            record = drift_alert(
                transition,
                model=MONITOR_SET.model,
                budget_events=1e7,
                detected_at=MONITOR_SET.clock(),
            )
            DriftAlert.model_validate(record)
            json.dumps(record)  # plain JSON types only, ready for orjson
