"""Bounded resources: memory stays flat over a long run, and lag recovers after a burst.

The soak's length is ``RELIABILITY_SOAK_EVENTS`` (default 200,000, which fits the suite's
time budget on a small machine); the README reports a run with 1,000,000.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from models.datasets import agrawal_events
from tests.support.reliability import EngineProcess, group_lag
from tests.support.scorer import ScorerSetup
from tests.support.waiting import wait_until

SOAK_EVENTS = int(os.environ.get("RELIABILITY_SOAK_EVENTS", "200000"))
WARM_UP_EVENTS = 50_000
LEAK_BOUND_KB = 128 * 1024
"""Allowed RSS growth after warm-up. Measured: +69 MB after 100,000 events, +96 MB after
200,000, +100 MB after 1,000,000 (the allocator and bounded state level off); a leak of
150 bytes per event over 1,000,000 events would exceed it."""


class EventSource:
    """Distinct events at low cost: a pool of Agrawal events, each sent with a new event_id
    and the current time as its event time (a live stream, not a replay)."""

    def __init__(self, setup: ScorerSetup, seed: int, pool: int = 20_000) -> None:
        self.setup = setup
        self.pool = list(agrawal_events(pool, seed=seed, run_id=f"pool{seed}"))
        self.sent = 0
        from confluent_kafka import Producer

        self.producer = Producer({"bootstrap.servers": setup.bootstrap, "linger.ms": 20})

    def send(self, count: int) -> None:
        topic = self.setup.topics["events"]
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        for _ in range(count):
            event = self.pool[self.sent % len(self.pool)]
            value = orjson.dumps({**event, "event_id": f"s-{self.sent}", "event_time": now})
            while True:
                try:
                    self.producer.produce(topic, value, event["entity_id"].encode())
                    break
                except BufferError:
                    self.producer.poll(0.05)
            self.sent += 1
        self.producer.poll(0)

    def flush(self) -> None:
        assert self.producer.flush(120) == 0


def test_rss_stays_flat_over_a_long_run(scorer_setup: ScorerSetup, tmp_path: Path) -> None:
    # A label-join retention of seconds, so the joiner's bounded state is reached in warm-up.
    env = {"SCORER_FEEDBACK_RETENTION_SECONDS": "5"}
    engine = EngineProcess(scorer_setup, tmp_path, env=env)
    source = EventSource(scorer_setup, seed=89)
    source.send(WARM_UP_EVENTS)
    source.flush()
    wait_until(lambda: group_lag(scorer_setup) == 0, "warm-up scored", engines=[engine])
    start_kb = engine.rss_kb()
    started = time.monotonic()
    while source.sent < WARM_UP_EVENTS + SOAK_EVENTS:
        source.send(min(50_000, WARM_UP_EVENTS + SOAK_EVENTS - source.sent))
        source.flush()
        # Keep at most a few seconds of backlog, so the run is a stream, not one burst.
        wait_until(lambda: group_lag(scorer_setup) < 100_000, "backlog drained", 600, [engine])
    wait_until(lambda: group_lag(scorer_setup) == 0, "soak scored", 600, [engine])
    end_kb = engine.rss_kb()
    elapsed = time.monotonic() - started
    scored = engine.metric("scorer_events_total", outcome="scored")
    assert scored >= WARM_UP_EVENTS + SOAK_EVENTS
    assert engine.terminate() == 0
    print(f"soak: {SOAK_EVENTS} events after {WARM_UP_EVENTS} warm-up in {elapsed:.0f}s; "
          f"RSS {start_kb} kB -> {end_kb} kB ({end_kb - start_kb:+d} kB)")  # fmt: skip
    assert end_kb - start_kb < LEAK_BOUND_KB


def test_lag_recovers_after_a_burst_of_five_times_the_rate(
    scorer_setup: ScorerSetup, tmp_path: Path
) -> None:
    rate, tick = 1_000, 0.1
    engine = EngineProcess(scorer_setup, tmp_path)
    source = EventSource(scorer_setup, seed=97, pool=5_000)
    source.send(100)
    source.flush()
    wait_until(lambda: group_lag(scorer_setup) == 0, "engine running", engines=[engine])

    def stream(seconds: float, per_second: int) -> int:
        """Send at ``per_second`` for ``seconds``; return the highest lag seen."""
        peak, end = 0, time.monotonic() + seconds
        next_probe = 0.0
        while time.monotonic() < end:
            source.send(int(per_second * tick))
            time.sleep(tick)
            if time.monotonic() >= next_probe:
                peak = max(peak, group_lag(scorer_setup))
                next_probe = time.monotonic() + 1.0
        return peak

    steady = stream(5, rate)
    burst = stream(5, 5 * rate)
    source.flush()
    recovered_at = time.monotonic()
    wait_until(lambda: group_lag(scorer_setup) < rate, "lag back under one second of events",
               120, [engine])  # fmt: skip
    recovery_s = time.monotonic() - recovered_at
    after = stream(5, rate)
    source.flush()
    wait_until(lambda: group_lag(scorer_setup) == 0, "all scored", engines=[engine])
    assert engine.metric("scorer_events_total", outcome="scored") == source.sent
    assert engine.terminate() == 0
    print(f"burst: rate {rate}/s, burst {5 * rate}/s; peak lag steady {steady}, burst {burst}, "
          f"after {after}; recovered in {recovery_s:.1f}s after the burst")  # fmt: skip
