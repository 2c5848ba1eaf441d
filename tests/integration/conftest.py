"""Fixtures for tests that run the scorer against the real broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, Producer

from models.datasets import agrawal
from models.registry import Registry
from models.training import train
from tests.conftest import unique

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
}


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


@pytest.fixture(scope="session")
def trained_logistic() -> object:
    return train(agrawal(3000, seed=31), "logistic", seed=31)


@pytest.fixture
def scorer_setup(
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    tmp_path: Path,
    trained_logistic: object,
) -> Iterator[ScorerSetup]:
    topics = {name: topic_factory(name.replace(".", "-"), partitions=parts)
              for name, (_, parts) in TOPIC_SETTINGS.items()}  # fmt: skip
    registry = Registry(tmp_path / "registry")
    registry.register(trained_logistic.estimator, name="loans", kind="logistic",
                      manifest_fields=trained_logistic.manifest_fields)  # fmt: skip
    registry.set_alias("loans", "champion", 1, actor="test")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "SCORER_"))}
    env.update({setting: topics[name] for name, (setting, _) in TOPIC_SETTINGS.items()})
    env.update({
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "SCORER_REGISTRY": str(registry.root),
        "SCORER_MODEL": "loans", "SCORER_GROUP_ID": unique("scorer"), "SCORER_MAX_WAIT_MS": "20",
        "SCORER_MONITOR_GROUP_ID": unique("monitor"), "SCORER_MONITOR_CHECKPOINT_SECONDS": "1",
    })  # fmt: skip
    setup = ScorerSetup(kafka_bootstrap, topics, registry, "loans", env)
    yield setup
    for process in setup.processes:
        if process.poll() is None:
            process.kill()
        process.wait(30)


def event_ids(messages: list) -> list[str]:
    return [orjson.loads(m.value())["event_id"] for m in messages]
