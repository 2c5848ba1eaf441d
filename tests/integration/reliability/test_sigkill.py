"""SIGKILL of the engine at ten seeded random points of one stream.

Each engine is a static group member (``group.instance.id``), so its successor takes the
partitions back at once. At-least-once: no event is lost (duplicates are allowed).
Exactly-once: a read_committed consumer sees each decision exactly once.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.support.reliability import (
    EngineProcess,
    OutputReader,
    group_lag,
    static_member,
    valid_records,
)
from tests.support.scorer import ScorerSetup
from tests.support.waiting import wait_until

KILLS = 10


def publish(setup: ScorerSetup, records: list, rate: int, done: threading.Event) -> int:
    """``records`` at about ``rate`` a second, in tenth-of-a-second slices, until ``done`` is
    set (or they run out); how many were published."""
    step = max(1, rate // 10)
    started = time.monotonic()
    published = 0
    for n, first in enumerate(range(0, len(records), step)):
        if done.is_set():
            break
        delay = started + n / 10 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        setup.produce(records[first : first + step], partition_of=lambda i: i % 3)
        published = min(len(records), first + step)
    return published


@pytest.mark.parametrize("exactly_once", [False, True], ids=["at-least-once", "exactly-once"])
def test_ten_sigkills_lose_nothing(
    scorer_setup: ScorerSetup, tmp_path: Path, exactly_once: bool
) -> None:
    rng = random.Random(71)
    # Published at a steady rate until the ten kills are done, so every kill falls inside the
    # stream however fast this machine restarts and scores (transactions per batch make
    # exactly-once slower, hence its lower rate). The pool lasts 120 s at that rate.
    rate = 400 if exactly_once else 1_500
    records, ids = valid_records(rate * 120, seed=71, run_id="kill")
    done, published = threading.Event(), []
    publisher = threading.Thread(
        target=lambda: published.append(publish(scorer_setup, records, rate, done)), daemon=True
    )
    publisher.start()
    extra = ("--max-batch", "100", *(("--exactly-once",) if exactly_once else ()))
    env = static_member("reliability-kill")
    reader = OutputReader(scorer_setup, "decisions", read_committed=exactly_once)
    kill_points: list[int] = []
    for _ in range(KILLS):
        engine = EngineProcess(scorer_setup, tmp_path, *extra, env=env)
        start = len(set(reader.event_ids("decisions")))
        reader.read_until(lambda r, s=start: len(set(r.event_ids("decisions"))) > s,
                          "progress after a restart", engines=[engine])  # fmt: skip
        reader.pump(rng.uniform(0.0, 0.8))  # a seeded random point of a productive engine
        engine.kill()
        kill_points.append(len(set(reader.event_ids("decisions"))))
    assert publisher.is_alive()  # the kills were mid-stream
    done.set()
    publisher.join()
    ids = ids[: published[0]]

    engine = EngineProcess(scorer_setup, tmp_path, *extra, env=env)
    reader.read_until(lambda r: set(r.event_ids("decisions")) >= set(ids), "every decision",
                      engines=[engine])  # fmt: skip
    wait_until(lambda: group_lag(scorer_setup) == 0, "all committed", engines=[engine])
    reader.settle()
    counts = Counter(reader.event_ids("decisions"))
    reader.close()
    assert engine.terminate() == 0

    assert set(counts) == set(ids)
    duplicates = sum(counts.values()) - len(ids)
    if exactly_once:
        assert duplicates == 0, f"{duplicates} decisions seen twice by a read_committed reader"
    mode = "exactly-once" if exactly_once else "at-least-once"
    print(f"sigkill {mode}: kills after {kill_points} decisions; {duplicates} duplicates")
