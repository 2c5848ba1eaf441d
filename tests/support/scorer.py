"""One scorer deployment on a real broker, and the event streams fed to it.

A :class:`ScorerSetup` holds the topics, registry and environment of one deployment under
test (the ``scorer_setup`` fixture of ``tests/integration/conftest.py`` makes one per test)
and starts ``scorer`` subprocesses in it; :func:`mixed_stream` makes records of valid events
with malformed ones among them.
"""

from __future__ import annotations

import copy
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
from confluent_kafka import Consumer, Producer

from models.datasets import agrawal_events
from models.registry import Registry
from tests.support.kafka import group_offsets, unique

TOPIC_SETTINGS = {
    "events": ("SCORER_TOPIC_EVENTS", 3),
    "decisions": ("SCORER_TOPIC_DECISIONS", 3),
    "decisions.shadow": ("SCORER_TOPIC_DECISIONS_SHADOW", 3),
    "explanations": ("SCORER_TOPIC_EXPLANATIONS", 3),
    "events.dlq": ("SCORER_TOPIC_DLQ", 3),
    "model-events": ("SCORER_TOPIC_MODEL_EVENTS", 1),
    "feedback": ("SCORER_TOPIC_FEEDBACK", 3),
    "drift-alerts": ("SCORER_TOPIC_DRIFT_ALERTS", 1),
    "fairness-reports": ("SCORER_TOPIC_FAIRNESS_REPORTS", 1),
    "monitor-summaries": ("SCORER_TOPIC_MONITOR_SUMMARIES", 1),
    "monitor-checkpoints": ("SCORER_TOPIC_MONITOR_CHECKPOINTS", 1),
    "outcomes": ("SCORER_TOPIC_OUTCOMES", 3),
    "outcome-join-input": ("SCORER_TOPIC_JOIN_INPUT", 3),
    "outcome-join-changelog": ("SCORER_TOPIC_JOIN_CHANGELOG", 3),
}
JOIN_TOPICS = ("outcomes", "outcome-join-input", "outcome-join-changelog")
"""The outcome join's topics, which need equal partition counts."""
JOIN_SETTINGS = {name: TOPIC_SETTINGS[name][0] for name in JOIN_TOPICS}


@dataclass
class ScorerSetup:
    """Topics, registry and environment of one scorer deployment under test."""

    bootstrap: str
    topics: dict[str, str]
    registry: Registry
    model: str
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def serve(
        self, *extra: str, group_id: str | None = None, engine: str = "native"
    ) -> subprocess.Popen[bytes]:
        env = dict(self.env)
        if group_id:
            env["SCORER_GROUP_ID"] = group_id
        return self.start("serve", "--engine", engine, "--metrics-port", "0", *extra, env=env)

    def monitor(self, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start ``scorer monitor``, the owner of the monitors' verdicts."""
        return self.start("monitor", *extra, env={**self.env, **(env or {})})

    def start(self, *argv: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", *argv],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.processes.append(process)
        return process

    def produce(
        self,
        records: list[tuple[bytes | None, bytes | None]],
        partition_of: Callable[[int], int] | None = None,
    ) -> None:
        producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 5})
        for i, (key, value) in enumerate(records):
            kwargs = {"partition": partition_of(i)} if partition_of else {}
            while True:
                try:
                    producer.produce(self.topics["events"], value, key, **kwargs)
                    break
                except BufferError:
                    producer.poll(0.1)
            producer.poll(0)
        assert producer.flush(60) == 0

    def consumer(self, *topics: str, read_committed: bool = False) -> Consumer:
        consumer = Consumer({
            "bootstrap.servers": self.bootstrap, "group.id": unique("reader"),
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
            "isolation.level": "read_committed" if read_committed else "read_uncommitted",
        })  # fmt: skip
        consumer.subscribe([self.topics[t] for t in topics])
        return consumer

    def read(self, consumer: Consumer, until: Callable[[list], bool], timeout: float = 180.0,
             processes: bool = True) -> list:  # fmt: skip
        """Collect messages until ``until(messages)`` holds; fail early if a scorer died."""
        messages: list = []
        deadline = time.monotonic() + timeout
        while not until(messages):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out with {len(messages)} messages")
            if processes:
                self.check_alive()
            messages.extend(m for m in consumer.consume(1000, timeout=0.5) if m.error() is None)
        return messages

    def check_alive(self) -> None:
        for process in self.processes:
            if process.poll() not in (None, 0, -signal.SIGKILL, -signal.SIGTERM):
                output = process.stdout.read().decode(errors="replace") if process.stdout else ""
                raise AssertionError(f"scorer exited with {process.returncode}:\n{output[-3000:]}")

    def require_alive(self) -> None:
        """:meth:`check_alive`, for :func:`~tests.support.waiting.wait_until`."""
        self.check_alive()


def event_ids(messages: list) -> list[str]:
    return [orjson.loads(m.value())["event_id"] for m in messages]


def _malformations(event: dict) -> list[Callable[[], bytes | None]]:
    def changed(change: Callable[[dict], None]) -> Callable[[], bytes]:
        def build() -> bytes:
            copy_ = copy.deepcopy(event)
            change(copy_)
            return orjson.dumps(copy_)

        return build

    def nan_literal() -> bytes:
        copy_ = copy.deepcopy(event)
        copy_["features"]["salary"] = "__NAN__"
        return orjson.dumps(copy_).replace(b'"__NAN__"', b"NaN")

    return [
        lambda: os.urandom(40),
        lambda: orjson.dumps(event)[:-9],
        nan_literal,
        changed(lambda e: e["features"].__setitem__("salary", "plenty")),
        changed(lambda e: e["features"].pop("loan")),
        changed(lambda e: e["features"].__setitem__("car", 99)),
        changed(lambda e: e.__setitem__("event_time", "2026-01-01T00:00:00")),
        changed(lambda e: e.__setitem__("surprise", 1)),
        lambda: b"[1, 2, 3]",
        lambda: None,
    ]


def mixed_stream(count: int, malformed_every: int, seed: int) -> tuple[list, set[str]]:
    """(key, value) records, every ``malformed_every``-th one malformed in a rotating way."""
    rng = random.Random(seed)
    records: list[tuple[bytes | None, bytes | None]] = []
    valid: set[str] = set()
    for i, event in enumerate(agrawal_events(count, seed=seed, run_id=f"run{seed}")):
        key = event["entity_id"].encode()
        if i % malformed_every == malformed_every - 1:
            kinds = _malformations(event)
            records.append(
                (key if rng.random() < 0.8 else None, kinds[i // malformed_every % len(kinds)]())
            )
        else:
            records.append((key, orjson.dumps(event)))
            valid.add(event["event_id"])
    return records, valid


def committed_equals_end(setup: ScorerSetup, group: str | None = None) -> bool:
    """Whether the scorer group (or ``group``) committed every record of the events topic."""
    offsets = group_offsets(setup.bootstrap, group or setup.env["SCORER_GROUP_ID"],
                            setup.topics["events"])  # fmt: skip
    return all(o.committed == o.high for o in offsets.values())
