"""Event-time windows, watermarks, lateness and replays; input validation."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from streams.monitoring import (
    LabelledBatch,
    MonitorConfig,
    MonitoringError,
    MonitorSet,
    ObservedBatch,
)
from streams.monitoring.batch import epoch_seconds
from streams.monitoring.summary import _per_window, split_by_window
from streams.monitoring.windows import WindowClock
from tests.support.synthetic import SyntheticModel, feature_rows


def admit(clock: WindowClock, times: list[float], partitions: list[int], offsets: list[int]):
    return clock.admit(np.array(times, float), np.array(partitions), np.array(offsets))


def test_lateness_is_judged_by_the_events_own_partition() -> None:
    clock = WindowClock(length=10.0, lateness=2.0, partitions=2)
    # partition 0 runs ahead to t=30; partition 1 is still at t=3
    keep, late, _ = admit(clock, [1.0, 30.0, 3.0], [0, 0, 1], [0, 1, 0])
    assert keep.tolist() == [True, True, True] and late == 0
    # an event of window 0 is late on partition 0 (watermark 30) but not on partition 1
    keep, late, _ = admit(clock, [5.0, 5.0], [0, 1], [2, 1])
    assert keep.tolist() == [False, True] and late == 1
    assert clock.final_through() == -1  # partition 1 is only at t=5: window 0 is open
    admit(clock, [12.5], [1], [2])  # partition 1 passes 10 + 2
    assert clock.final_through() == 0


def test_the_same_events_interleaved_differently_are_admitted_identically() -> None:
    rng = np.random.default_rng(0)
    times = np.arange(400) * 0.5 - rng.uniform(0, 6, 400)
    partitions = np.arange(400) % 3
    offsets = np.arange(400) // 3
    one = WindowClock(10.0, 2.0, 3)
    keep_one, late_one, _ = one.admit(times, partitions, offsets)
    order = np.argsort(partitions, kind="stable")  # partition by partition
    other = WindowClock(10.0, 2.0, 3)
    keep_other = np.zeros(400, bool)
    for chunk in np.array_split(order, 7):
        keep_other[chunk] = other.admit(times[chunk], partitions[chunk], offsets[chunk])[0]
    assert late_one > 0 and (keep_one == keep_other).all()
    assert one.final_through() == other.final_through()


def test_replays_are_skipped() -> None:
    clock = WindowClock(10.0, 5.0, None)
    admit(clock, [1.0, 2.0, 3.0], [0, 0, 0], [7, 8, 9])
    keep, late, replayed = admit(clock, [2.0, 3.0, 4.0], [0, 0, 0], [8, 9, 10])
    assert keep.tolist() == [False, False, True] and replayed == 2 and late == 0


def test_unknown_partitions_close_on_those_seen_and_late_ones_are_dropped() -> None:
    clock = WindowClock(10.0, 0.0, None)
    admit(clock, [25.0], [0], [0])
    assert clock.final_through() == 1
    clock.evaluated_through = 1
    keep, late, _ = admit(clock, [5.0, 26.0], [1, 1], [0, 1])  # a new partition, behind
    assert keep.tolist() == [False, True] and late == 1


def test_monitor_set_counts_late_and_replayed_events() -> None:
    synthetic = SyntheticModel(seed=0, reference_rows=2_000, holdout_rows=1_000)
    monitors = MonitorSet(
        synthetic.manifest, MonitorConfig(window_seconds=10.0, lateness_seconds=0.0)
    )
    batch, _ = synthetic.batch(np.random.default_rng(0), 0, 400, partitions=1)
    monitors.observe(batch)
    monitors.observe(batch)  # redelivered
    counters = monitors.stats()["counters"]
    assert counters["events.counted"] == 400 and counters["events.replayed"] == 400
    assert monitors.stats()["pending_windows"]["events"] == [170406723]
    monitors.advance_watermark("events", 0, 1704067240.0)
    assert monitors.stats()["pending_windows"]["events"] == []


def test_times_are_converted_from_every_accepted_form() -> None:
    aware = datetime(2024, 1, 1, tzinfo=UTC)
    assert epoch_seconds([aware]).tolist() == [aware.timestamp()]
    assert epoch_seconds(["2024-01-01T00:00:00+00:00"]).tolist() == [aware.timestamp()]
    assert epoch_seconds(np.array([aware.timestamp()])).tolist() == [aware.timestamp()]
    with pytest.raises(MonitoringError, match="aware"):
        epoch_seconds([datetime(2024, 1, 1)])


def test_batches_are_checked() -> None:
    with pytest.raises(MonitoringError, match="scores has 1 entries for 2 events"):
        ObservedBatch(np.zeros((2, 3)), [0.1], ["approve"] * 2, [0.0, 1.0], [0, 0], [0, 1])
    with pytest.raises(MonitoringError, match="2-d"):
        ObservedBatch(np.zeros(3), [0.1], ["approve"], [0.0], [0], [0])
    with pytest.raises(MonitoringError, match="labels must be 0 or 1"):
        LabelledBatch([0.1], ["approve"], [2], [0.0], [0], [0])
    synthetic = SyntheticModel(seed=0, reference_rows=2_000, holdout_rows=1_000)
    monitors = MonitorSet(synthetic.manifest)
    with pytest.raises(MonitoringError, match="columns"):
        monitors.observe(ObservedBatch(np.zeros((1, 3)), [0.1], ["approve"], [0.0], [0], [0]))


def test_a_batch_from_scored_events_equals_one_from_the_design_matrix() -> None:
    synthetic = SyntheticModel(seed=0, reference_rows=2_000, holdout_rows=1_000)
    rng = np.random.default_rng(8)
    batch, draw = synthetic.batch(rng, 0, 50, partitions=1)
    events = [
        {"event_id": f"e{i}", "event_time": t, "features": features, "context": {"group": g}}
        for i, (t, features, g) in enumerate(
            zip(
                batch.event_time.tolist(),
                feature_rows(synthetic.spec, draw),
                draw.groups.tolist(),
                strict=True,
            )
        )
    ]
    rebuilt = ObservedBatch.from_events(
        synthetic.spec, events, batch.scores, batch.decisions, batch.partition, batch.offset
    )
    np.testing.assert_array_equal(rebuilt.X, batch.X)
    np.testing.assert_array_equal(rebuilt.event_time, batch.event_time)
    assert rebuilt.context == [{"group": g} for g in draw.groups.tolist()]
    events[3]["features"]["c_two"] = "7"
    with pytest.raises(MonitoringError, match="event 3 does not fit"):
        ObservedBatch.from_events(
            synthetic.spec, events, batch.scores, batch.decisions, [0] * 50, range(50)
        )


class LoopOnly(WindowClock):
    """The clock without its whole-batch shortcut: every batch through the per-partition loop."""

    def _all_fresh_and_open(self, *args: object) -> bool:
        return False


def test_the_whole_batch_shortcut_admits_exactly_as_the_loop() -> None:
    """Random batches with replays, late events, new partitions and a final window: the
    same masks, counts, watermarks and offsets with and without the shortcut, and the
    shortcut taken for most of them."""
    rng = np.random.default_rng(17)
    fast, loop = WindowClock(10.0, 2.0, None), LoopOnly(10.0, 2.0, None)
    high = {p: -1 for p in range(4)}
    clock_time, taken = 0.0, 0
    for step in range(400):
        size = int(rng.integers(1, 40))
        parts = rng.integers(0, 2 if step < 100 else 4, size)
        offsets = np.empty(size, dtype=np.int64)
        for p in np.unique(parts).tolist():
            rows = np.flatnonzero(parts == p)
            start = high[p] + 1 - (int(rng.integers(0, 3)) if rng.random() < 0.1 else 0)
            offsets[rows] = start + np.cumsum(rng.integers(1, 3, rows.size)) - 1
            high[p] = max(high[p], int(offsets[rows].max()))
        clock_time += float(rng.exponential(0.5))
        times = clock_time + rng.normal(0, 0.3, size) - (rng.random(size) < 0.05) * 15.0
        if step == 300:
            fast.evaluated_through = loop.evaluated_through = fast.final_through()
        before = dict(fast.high_offsets), dict(fast.watermarks)
        taken += fast._all_fresh_and_open(times, parts, offsets)
        fast.high_offsets, fast.watermarks = before  # undo the probe, then admit for real
        got, expected = fast.admit(times, parts, offsets), loop.admit(times, parts, offsets)
        assert got[0].tolist() == expected[0].tolist() and got[1:] == expected[1:]
        assert fast.watermarks == loop.watermarks and fast.high_offsets == loop.high_offsets
    assert 100 < taken < 390


def test_a_one_window_batch_is_summarised_as_the_general_split_does() -> None:
    rng = np.random.default_rng(5)
    for size in (1, 2, 50, 1000):
        parts = rng.integers(0, 4, size)
        offsets = rng.permutation(size * 3)[:size].astype(np.int64)
        times = 1000.0 + rng.random(size)
        position = np.zeros(size, dtype=np.intp)
        vectors = {"a": np.array([[1, 0, 2]]), "b": np.array([[0, 0, 0]])}
        [one] = split_by_window("events", 10.0, np.array([100]), position, vectors, times,
                                parts, offsets)  # fmt: skip
        ranges, events, first, last = _per_window(1, position, times, parts, offsets)
        assert one.offsets == ranges[0] and list(one.offsets) == sorted(ranges[0])
        assert (one.events, one.first_time, one.last_time) == (events[0], first[0], last[0])
        assert list(one.counts) == ["a"]
