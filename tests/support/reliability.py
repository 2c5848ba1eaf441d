"""What the reliability suite needs to watch real ``scorer serve`` processes from outside.

An :class:`EngineProcess` is one engine with its output in a log file (a pipe nobody reads
would fill up and stall a chatty engine), its own metrics port, and accessors for what an
operator would look at: ``/readyz``, ``/metrics``, resident memory from ``/proc``. An
:class:`OutputReader` accumulates output records across calls while failing fast when an
engine died. Offsets are read as an operator would, from the group's committed positions.

Run as a module (``python -m tests.support.reliability serve ...``), it is ``scorer`` with a
model fault injected (:func:`serve_with_poisoned_model`).
"""

from __future__ import annotations

import dataclasses
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import orjson
from confluent_kafka import Message, Producer
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from models.datasets import agrawal_events
from models.scoring_model import ScoringModel
from tests.support.kafka import group_offsets, read_to_end, unique
from tests.support.scorer import ScorerSetup
from tests.support.waiting import wait_until

Record = tuple[bytes | None, bytes | None]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def valid_records(count: int, seed: int, run_id: str) -> tuple[list[Record], list[str]]:
    """``count`` valid events as (key, value) records, and their event_ids in order."""
    records: list[Record] = []
    ids: list[str] = []
    for event in agrawal_events(count, seed=seed, run_id=run_id):
        records.append((event["entity_id"].encode(), orjson.dumps(event)))
        ids.append(event["event_id"])
    return records, ids


class EngineProcess:
    """One ``scorer serve`` (or other ``command``) subprocess of ``setup``, logging to
    ``log_dir``."""

    def __init__(
        self,
        setup: ScorerSetup,
        log_dir: Path,
        *extra: str,
        env: dict[str, str] | None = None,
        module: str = "streams.cli",
        command: str = "serve",
    ) -> None:
        self.port = free_port()
        self.log_path = log_dir / f"{unique(command)}.log"
        environment = {**setup.env, **(env or {})}
        argv = [sys.executable, "-m", module, command, "--metrics-port", str(self.port), *extra]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                argv,
                env=environment, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        setup.processes.append(self.process)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def require_alive(self) -> None:
        if not self.alive():
            raise AssertionError(f"engine exited with {self.process.returncode}:\n{self.log()}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def terminate(self, timeout: float = 90.0) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def _get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return int(r.status), r.read()
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read()

    def readiness(self) -> tuple[int, str]:
        """HTTP status of ``/readyz`` and its reason; (0, why) while it does not answer."""
        try:
            status, body = self._get("/readyz")
        except OSError as exc:
            return 0, str(exc)
        return status, str(orjson.loads(body)["reason"])

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels`` (0 when absent)."""
        _, body = self._get("/metrics")
        total = 0.0
        for line in body.decode().splitlines():
            if not line.startswith(name) or line.startswith("#"):
                continue
            series, _, value = line.rpartition(" ")
            if series.split("{")[0] != name:
                continue
            if all(f'{k}="{v}"' in series for k, v in labels.items()):
                total += float(value)
        return total

    def rss_kb(self) -> int:
        """Resident set size of the process, from /proc/PID/status (VmRSS, in kB)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError(f"no VmRSS for pid {self.pid}")


class OutputReader:
    """A consumer of some output topics that keeps everything it has read."""

    def __init__(self, setup: ScorerSetup, *topics: str, read_committed: bool = False) -> None:
        self.consumer = setup.consumer(*topics, read_committed=read_committed)
        self.topics = {name: setup.topics[name] for name in topics}
        self.messages: list[Message] = []

    def pump(self, seconds: float = 0.5) -> int:
        """Read for about ``seconds``; return how many records arrived."""
        before = len(self.messages)
        deadline = time.monotonic() + seconds
        while True:
            remaining = deadline - time.monotonic()
            batch = self.consumer.consume(5000, timeout=max(0.0, min(0.5, remaining)))
            self.messages.extend(m for m in batch if m.error() is None)
            if remaining <= 0:
                return len(self.messages) - before

    def of(self, name: str) -> list[Message]:
        topic = self.topics[name]
        return [m for m in self.messages if m.topic() == topic]

    def event_ids(self, name: str) -> list[str]:
        return [orjson.loads(m.value())["event_id"] for m in self.of(name)]

    def read_until(
        self,
        condition: Callable[[OutputReader], bool],
        what: str,
        timeout: float = 180.0,
        engines: Iterable[EngineProcess] = (),
    ) -> None:
        wait_until(lambda: self.pump(0.5) >= 0 and condition(self), what, timeout, engines, 0)

    def settle(self, engines: Iterable[EngineProcess] = ()) -> None:
        """Read everything written so far, to the end of each partition. Call it once the
        engines committed all their input: outputs are written before their input offsets are
        committed, so every output (a late duplicate too) is there by then."""
        self.messages.extend(read_to_end(self.consumer, engines=engines))

    def close(self) -> None:
        self.consumer.close()


def group_lag(setup: ScorerSetup, group: str | None = None) -> int:
    """Records of the events topic beyond the group's committed offsets (all, if none)."""
    offsets = group_offsets(setup.bootstrap, group or setup.env["SCORER_GROUP_ID"],
                            setup.topics["events"])  # fmt: skip
    return sum(o.lag for o in offsets.values())


def static_member(name: str) -> dict[str, str]:
    """Environment of an engine that is a static group member (librdkafka pass-through):
    a restart under the same name takes its partitions back without a rebalance."""
    return {"KAFKA_GROUP_INSTANCE_ID": name, "KAFKA_SESSION_TIMEOUT_MS": "10000"}


def set_topic_config(admin: AdminClient, topic: str, key: str, value: str | None) -> None:
    """Set (or with None, delete back to the broker default) one config of ``topic``."""
    operation = AlterConfigOpType.SET if value is not None else AlterConfigOpType.DELETE
    resource = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[ConfigEntry(key, value or "", incremental_operation=operation)],
    )
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)


def produce_in_order(
    setup: ScorerSetup, records: list[Record], partitions: int = 3, max_bytes: int = 10_485_760
) -> list[tuple[int, int]]:
    """Produce ``records`` round-robin over ``partitions`` of the events topic, in order
    (idempotent producer), and return each record's (partition, offset)."""
    producer = Producer({"bootstrap.servers": setup.bootstrap, "enable.idempotence": True,
                         "linger.ms": 5, "message.max.bytes": max_bytes})  # fmt: skip
    coordinates: list[tuple[int, int]] = [(-1, -1)] * len(records)

    def delivered(index: int) -> Callable[..., None]:
        def record(error: object, message: Message) -> None:
            assert error is None, error
            coordinates[index] = (int(message.partition() or 0), int(message.offset() or 0))

        return record

    for i, (key, value) in enumerate(records):
        while True:
            try:
                producer.produce(setup.topics["events"], value, key, partition=i % partitions,
                                 on_delivery=delivered(i))  # fmt: skip
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(120) == 0
    return coordinates


POISON = 123_456.789
"""A salary on which :func:`serve_with_poisoned_model`'s model raises."""


def serve_with_poisoned_model(argv: list[str]) -> int:
    """``scorer serve`` whose every loaded model raises ValueError on a batch holding an
    event whose salary is :data:`POISON` (a model fault injected below the engine)."""
    from streams.cli import main

    load = ScoringModel.from_loaded.__func__  # type: ignore[attr-defined]

    def poisoned(cls: type[ScoringModel], loaded: object) -> ScoringModel:
        model = load(cls, loaded)
        raw = model.raw_output
        column = model.spec.names.index("salary")

        def raw_output(X: np.ndarray) -> np.ndarray:
            if bool((X[:, column] == POISON).any()):
                raise ValueError("the model cannot score this input")
            return raw(X)

        return dataclasses.replace(model, raw_output=raw_output)

    ScoringModel.from_loaded = classmethod(poisoned)  # type: ignore[method-assign,assignment]
    return main(argv)


if __name__ == "__main__":
    sys.exit(serve_with_poisoned_model(sys.argv[1:]))
