"""End-to-end throughput and latency of the scoring pipeline on a real Apache Kafka broker.

Run with ``make bench`` or ``python tests/bench/bench_pipeline.py [--events N]``. Side by
side in one run, on one broker:

1. transport only, no scoring (the *ceiling*): a confluent-kafka loop (in this process)
   that consumes micro-batches and produces two records per input, sized like a decision
   and an explanation, with the engine's consumer and producer settings (built as
   ``NativeEngine`` builds them), asynchronous produce, delivery callbacks, and a commit,
   sent without blocking, of the prefix whose outputs were all acknowledged: the engine's
   at-least-once pattern with nothing to score;
2. the native engine (``scorer serve`` as a subprocess, its default settings) with a
   logistic model and explanations, and the same with ``--workers 2`` (two engine processes
   under one supervisor; on a two-core machine they share the cores with the broker and
   this script, so the gain is bounded by what the broker leaves);
3. the same with gradient-boosted trees (exact TreeSHAP explanations), and with a LightGBM
   and an XGBoost booster fitted on the same rows elsewhere's way (a pandas frame) and
   explained by their libraries' own contributions, over fewer events;
4. the Faust engine (``scorer serve --engine faust``: the same scoring core in a
   faust-streaming agent taking batches), logistic, over the same events;
5. the Faust baseline (``tests/bench/faust_baseline.py``, logistic, one predict per event),
   over fewer events;
6. end-to-end latency with the engine serving a paced producer at a fixed offered rate,
   after two seconds of the same paced input that are not measured.

Before the measured runs the broker is warmed by unmeasured transport runs until two in a
row agree within 5%: its JIT keeps speeding it up for a million events or more, and a
ceiling measured on a cooler broker flatters every share of it. The ceiling and the logistic
engine are then measured in ``--rounds`` pairs (3), each pair run back to back; the engine's
share of the ceiling is judged on the median of the pairs' shares, since the machine's speed
moves between runs more than within a pair.

Throughput: N events are produced before each run starts; throughput is N divided by the
time between the first and the last output record, as appended by the broker (the output
topics use ``message.timestamp.type=LogAppendTime``), so start-up time is not counted. A run
counts only when every event has its decision and its explanation (read back and counted
per event_id). Latency per event: the decision's append time minus the input record's
CreateTime, which the paced producer sets when it sends (its ``linger.ms`` is librdkafka's
default, 5 ms, so the figure includes what an ordinary upstream producer adds).

``KAFKA_BOOTSTRAP_SERVERS`` points the benchmark at an existing cluster; otherwise it starts
its own broker on free ports in a temporary directory and stops it at the end. Topics have
unique names and are deleted; the registry lives in a temporary directory. The last line
printed is one JSON object with the headline figures. Ratios come from one run on one
machine: other processes sharing the CPU move them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_LOG_APPEND_TIME,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from models.datasets import agrawal, agrawal_events  # noqa: E402
from models.registry import Registry  # noqa: E402
from models.scoring_model import ScoringModel  # noqa: E402
from models.training import train  # noqa: E402
from streams.core.scoring import score_batch  # noqa: E402
from streams.kafka.localbroker import LocalBroker, free_port_pair  # noqa: E402
from streams.runtime import tune_garbage_collector  # noqa: E402
from tests.bench.external_models import register_external  # noqa: E402

TARGET_EPS = 50_000
TARGET_VS_FAUST = 20.0
TARGET_VS_TRANSPORT = 0.70
TARGET_GBT_VS_LOGISTIC = 0.60
TARGET_P99_MS = 50.0
BOOSTERS = ("lightgbm", "xgboost")
"""Models trained elsewhere that the pipeline benchmark serves, fitted on the same rows."""
DISTINCT_EVENTS = 20_000
"""Distinct Agrawal applications generated; longer runs cycle through them with new ids."""
WARMUP_EVENTS = 200_000
"""Moved through the broker by each unmeasured transport run before the measured runs."""
WARMUP_AGREE = 0.05
WARMUP_MAX_RUNS = 10
"""The broker is warm once two unmeasured transport runs in a row agree within
``WARMUP_AGREE`` (its JIT keeps speeding it up for a million events or more: the ceiling
of a broker warmed by one short run was a quarter lower than the same run's later ones)."""
LOG_APPEND = {"message.timestamp.type": "LogAppendTime"}
LATENCY_WARMUP_S = 2.0
"""Seconds of paced input before a latency run's measured events. In the first second after
paced traffic begins the broker's acknowledgements of the engine's outputs are sometimes
slower (up to a few hundred ms, over about a thousand events), on a broker just started
and on one warmed by the throughput runs alike; the steady state is what is measured."""
TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """A run did not complete (a process died, outputs missing, a timeout)."""


# -- infrastructure ------------------------------------------------------------------------


@contextlib.contextmanager
def kafka_cluster(workdir: Path) -> Iterator[tuple[str, LocalBroker | None]]:
    """The cluster named by KAFKA_BOOTSTRAP_SERVERS, or a local broker started for the run."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external, None
        return
    broker = LocalBroker(port=free_port_pair(), home=workdir / "kafka")
    broker.up()
    try:
        yield broker.address, broker
    finally:
        broker.down()


class Topics:
    """Uniquely named topics of this run; all deleted by :meth:`delete_all`."""

    def __init__(self, bootstrap: str, run_id: str, partitions: int) -> None:
        self.admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
        self.run_id, self.partitions = run_id, partitions
        self.created: list[str] = []

    def create(
        self, name: str, partitions: int | None = None, config: dict[str, str] | None = None
    ) -> str:
        topic = f"bench-{self.run_id}-{name}"
        futures = self.admin.create_topics(
            [NewTopic(topic, partitions or self.partitions, 1, config=config or {})],
            operation_timeout=30,
        )
        futures[topic].result(timeout=30)
        self.created.append(topic)
        return topic

    def scorer_outputs(self, name: str) -> dict[str, str]:
        """The engine's output topics for one run, as SCORER_TOPIC_* variables."""
        return {
            "SCORER_TOPIC_DECISIONS": self.create(f"{name}-decisions", config=LOG_APPEND),
            "SCORER_TOPIC_EXPLANATIONS": self.create(f"{name}-explanations", config=LOG_APPEND),
            "SCORER_TOPIC_DLQ": self.create(f"{name}-dlq", 1),
            "SCORER_TOPIC_DECISIONS_SHADOW": self.create(f"{name}-shadow", 1),
            "SCORER_TOPIC_MODEL_EVENTS": self.create(f"{name}-model-events", 1),
            "SCORER_TOPIC_MONITOR_SUMMARIES": self.create(f"{name}-summaries", 1),
        }

    def delete_all(self, extra_prefixes: tuple[str, ...] = ()) -> None:
        doomed = list(self.created)
        if extra_prefixes:  # e.g. Faust's own internal topics
            with contextlib.suppress(Exception):
                listed = self.admin.list_topics(timeout=10).topics
                doomed += [t for t in listed if t.startswith(extra_prefixes) and t not in doomed]
        if not doomed:
            return
        for future in self.admin.delete_topics(doomed, operation_timeout=30).values():
            with contextlib.suppress(Exception):
                future.result(timeout=30)
        self.created.clear()


def cpu_seconds(pid: int | None) -> float:
    """User plus system CPU time of a process (all its threads) and of its live children
    (the workers of ``scorer serve --workers N``), from /proc."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except (OSError, IndexError):
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / TICKS
    return own + sum(cpu_seconds(int(child)) for child in children)


# -- input ---------------------------------------------------------------------------------


@dataclass
class Workload:
    """Pre-generated Agrawal events; :meth:`values` gives them new ids for each topic."""

    base: list[dict[str, Any]]

    @classmethod
    def generate(cls, count: int, seed: int) -> Workload:
        return cls(list(agrawal_events(count, seed=seed, run_id="base")))

    def values(self, prefix: str, count: int) -> tuple[list[bytes], list[bytes]]:
        keys, values = [], []
        base, dumps = self.base, orjson.dumps
        for i in range(count):
            event = dict(base[i % len(base)])
            event["event_id"] = f"{prefix}-{i}"
            keys.append(event["entity_id"].encode())
            values.append(dumps(event))
        return keys, values


def produce_all(bootstrap: str, topic: str, keys: list[bytes], values: list[bytes]) -> None:
    # Uncompressed, as `scorer produce` publishes (Faust's client would also need the lz4
    # package to read lz4 batches).
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "log_level": 3})
    failures: list[str] = []

    def delivered(error: Any, message: Any) -> None:
        if error is not None:
            failures.append(str(error))

    for key, value in zip(keys, values, strict=True):
        while True:
            try:
                producer.produce(topic, value, key, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
    remaining = producer.flush(60)
    if failures or remaining:
        raise BenchError(f"producing to {topic} failed: {failures[:1] or remaining}")


# -- reading outputs -----------------------------------------------------------------------


def partitions_of(consumer: Consumer, topics: list[str]) -> list[TopicPartition]:
    metadata = consumer.list_topics(timeout=10).topics
    return [TopicPartition(t, p) for t in topics for p in metadata[t].partitions]


def high_watermark(consumer: Consumer, tp: TopicPartition) -> int:
    """The partition's high watermark, retried through transient errors (a new leader)."""
    for attempt in range(50):
        try:
            return int(consumer.get_watermark_offsets(tp, timeout=10, cached=False)[1])
        except KafkaException:
            if attempt == 49:
                raise
            time.sleep(0.2)
    raise AssertionError("unreachable")


def record_count(consumer: Consumer, partitions: list[TopicPartition]) -> dict[str, int]:
    """Records per topic, from the partitions' high watermarks."""
    counts: Counter[str] = Counter()
    for tp in partitions:
        counts[tp.topic] += high_watermark(consumer, tp)
    return dict(counts)


def reader(bootstrap: str) -> Consumer:
    return Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-reader-{uuid.uuid4()}",
                     "enable.auto.commit": False, "log_level": 3})  # fmt: skip


def event_id_of(message: Any) -> bytes:
    """The event_id header (the engine's and the transport loop's), else the JSON value's."""
    for name, value in message.headers() or ():
        if name == "event_id":
            return bytes(value)
    return str(orjson.loads(message.value())["event_id"]).encode()


@dataclass
class Outputs:
    """What one run wrote: records and distinct event ids per topic, broker append times."""

    records: dict[str, int] = field(default_factory=dict)
    ids: dict[str, set[bytes]] = field(default_factory=dict)
    first_ms: int = 0
    last_ms: int = 0
    kept: dict[bytes, tuple[int, bytes]] = field(default_factory=dict)
    """Append time and value per event id (first copy) of the topic asked for."""
    non_append_time: int = 0


def read_outputs(bootstrap: str, topics: list[str], keep: str | None = None) -> Outputs:
    """Every record now in ``topics``: ids per topic, first and last append time."""
    consumer = reader(bootstrap)
    try:
        partitions = partitions_of(consumer, topics)
        ends = {}
        for tp in partitions:
            ends[(tp.topic, tp.partition)] = high_watermark(consumer, tp)
        pending = {tp for tp, end in ends.items() if end > 0}
        consumer.assign(
            [TopicPartition(t, p, OFFSET_BEGINNING) for (t, p) in pending]
        )  # fmt: skip
        result = Outputs(records=dict.fromkeys(topics, 0), ids={t: set() for t in topics})
        first, last = None, None
        deadline = time.monotonic() + 300
        while pending:
            if time.monotonic() > deadline:
                raise BenchError(f"reading {topics} timed out; {len(pending)} partitions left")
            for message in consumer.consume(10_000, timeout=1.0):
                if message.error() is not None:
                    continue
                topic, partition, offset = message.topic(), message.partition(), message.offset()
                if offset >= ends[(topic, partition)]:
                    continue
                if offset + 1 >= ends[(topic, partition)]:
                    pending.discard((topic, partition))
                kind, stamp = message.timestamp()
                if kind != TIMESTAMP_LOG_APPEND_TIME:
                    result.non_append_time += 1
                first = stamp if first is None else min(first, stamp)
                last = stamp if last is None else max(last, stamp)
                event_id = event_id_of(message)
                result.records[topic] += 1
                result.ids[topic].add(event_id)
                if topic == keep and event_id not in result.kept:
                    result.kept[event_id] = (stamp, message.value())
        result.first_ms, result.last_ms = first or 0, last or 0
        return result
    finally:
        consumer.close()


@dataclass
class RunResult:
    name: str
    events: int
    eps: float | None = None
    window_s: float = 0.0
    duplicates: int = 0
    cpu_share: float | None = None
    """CPU seconds the process used per wall second while its outputs arrived."""
    broker_cpu_share: float | None = None
    problem: str = ""


def judge(name: str, events: int, outputs: Outputs, topics: list[str]) -> RunResult:
    """Throughput of a run whose outputs are all present; a problem otherwise."""
    result = RunResult(name, events)
    ids = [outputs.ids[t] for t in topics]
    if any(len(s) != events for s in ids) or any(s != ids[0] for s in ids[1:]):
        counts = ", ".join(f"{len(s)} distinct in {t}" for s, t in zip(ids, topics, strict=True))
        result.problem = f"incomplete outputs: expected {events} per topic, got {counts}"
        return result
    if outputs.non_append_time:
        result.problem = f"{outputs.non_append_time} outputs lack LogAppendTime timestamps"
    result.duplicates = sum(outputs.records[t] - events for t in topics)
    result.window_s = max(outputs.last_ms - outputs.first_ms, 1) / 1000.0
    result.eps = events / result.window_s
    return result


# -- processes -----------------------------------------------------------------------------


class Processes:
    """Subprocesses of the run; every one still alive is stopped at the end."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.live: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(
        self, name: str, argv: list[str], env: dict[str, str], cwd: Path
    ) -> subprocess.Popen[bytes]:
        log = self.logdir / f"{name}.log"
        with open(log, "wb") as handle:
            process = subprocess.Popen(
                argv, env=env, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        self.live.append((process, log))
        return process

    def log_tail(self, process: subprocess.Popen[bytes], lines: int = 25) -> str:
        for candidate, log in self.live:
            if candidate is process:
                text = log.read_text(errors="replace").splitlines()
                return "\n".join(text[-lines:])
        return ""

    def check(self, process: subprocess.Popen[bytes], what: str) -> None:
        if process.poll() is not None:
            raise BenchError(
                f"{what} exited with status {process.returncode}:\n{self.log_tail(process)}"
            )

    def stop(self, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

    def stop_all(self) -> None:
        for process, _ in self.live:
            self.stop(process, timeout=10.0)


def wait_for(
    bootstrap: str,
    topics: list[str],
    count: int,
    timeout: float,
    alive: Callable[[], None],
    pid: int | None,
    broker_pid: int | None,
) -> tuple[float | None, float | None]:
    """Wait until every topic holds ``count`` records; CPU shares of the process and broker.

    The shares are measured between the first output and the last, from /proc.
    """
    consumer = reader(bootstrap)
    try:
        partitions = partitions_of(consumer, topics)
        deadline = time.monotonic() + timeout
        started: tuple[float, float, float] | None = None
        while True:
            counts = record_count(consumer, partitions)
            now = time.monotonic()
            if started is None and any(counts.values()):
                started = (now, cpu_seconds(pid), cpu_seconds(broker_pid))
            if all(counts.get(t, 0) >= count for t in topics):
                break
            if now > deadline:
                raise BenchError(f"timed out after {timeout:.0f}s with {counts} of {count}")
            alive()
            time.sleep(0.1)
        if started is None or now - started[0] < 0.5:
            return None, None
        wall = now - started[0]
        share = (cpu_seconds(pid) - started[1]) / wall if pid else None
        broker = (cpu_seconds(broker_pid) - started[2]) / wall if broker_pid else None
        return share, broker
    finally:
        consumer.close()


# -- the runs ------------------------------------------------------------------------------


@dataclass
class Bench:
    bootstrap: str
    broker: LocalBroker | None
    topics: Topics
    processes: Processes
    registry: Path
    workdir: Path
    engine_env: dict[str, str]

    @property
    def broker_pid(self) -> int | None:
        return self.broker.pid() if self.broker is not None else None

    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "SCORER_"))}
        env.update(
            {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "SCORER_REGISTRY": str(self.registry)}
        )
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        return env

    def start_engine(
        self, name: str, model: str, events_topic: str, engine: str = "native", workers: int = 1
    ) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
        outputs = self.topics.scorer_outputs(name)
        env = self.base_env()
        env.update(outputs)
        env.update(self.engine_env)
        env.update({"SCORER_TOPIC_EVENTS": events_topic, "SCORER_MODEL": model,
                    "SCORER_GROUP_ID": f"bench-{self.topics.run_id}-{name}"})  # fmt: skip
        argv = [sys.executable, "-m", "streams.cli", "serve", "--engine", engine,
                "--metrics-port", "0", "--workers", str(workers)]  # fmt: skip
        return self.processes.start(name, argv, env, ROOT), outputs

    def engine_throughput(
        self,
        name: str,
        model: str,
        events_topic: str,
        events: int,
        engine: str = "native",
        workers: int = 1,
    ) -> RunResult:
        process, outputs = self.start_engine(name, model, events_topic, engine, workers)
        topics = [outputs["SCORER_TOPIC_DECISIONS"], outputs["SCORER_TOPIC_EXPLANATIONS"]]
        share, broker = wait_for(
            self.bootstrap, topics, events, timeout=120 + events / 1000,
            alive=lambda: self.processes.check(process, f"scorer serve ({engine}, {model})"),
            pid=process.pid, broker_pid=self.broker_pid,
        )  # fmt: skip
        self.processes.stop(process)
        result = judge(name, events, read_outputs(self.bootstrap, topics), topics)
        result.cpu_share, result.broker_cpu_share = share, broker
        return result

    def faust_throughput(self, model: str, events_topic: str, events: int) -> RunResult:
        app_id = f"bench-{self.topics.run_id}-faust"
        decisions = self.topics.create("faust-decisions", config=LOG_APPEND)
        explanations = self.topics.create("faust-explanations", config=LOG_APPEND)
        env = self.base_env()
        env.update({"SCORER_TOPIC_EVENTS": events_topic, "SCORER_TOPIC_DECISIONS": decisions,
                    "SCORER_TOPIC_EXPLANATIONS": explanations, "SCORER_MODEL": model,
                    "FAUST_APP_ID": app_id})  # fmt: skip
        faust_dir = self.workdir / "faust"
        faust_dir.mkdir(exist_ok=True)
        argv = [sys.executable, str(ROOT / "tests" / "bench" / "faust_baseline.py"),
                "worker", "-l", "warn"]  # fmt: skip
        process = self.processes.start("faust", argv, env, faust_dir)
        topics = [decisions, explanations]
        share, broker = wait_for(
            self.bootstrap, topics, events, timeout=120 + events / 100,
            alive=lambda: self.processes.check(process, "the Faust baseline"),
            pid=process.pid, broker_pid=self.broker_pid,
        )  # fmt: skip
        self.processes.stop(process)
        result = judge("faust", events, read_outputs(self.bootstrap, topics), topics)
        result.cpu_share, result.broker_cpu_share = share, broker
        return result

    def transport_throughput(
        self, name: str, events_topic: str, events: int, sizes: tuple[int, int], input_size: int
    ) -> RunResult:
        first = self.topics.create(f"{name}-a", config=LOG_APPEND)
        second = self.topics.create(f"{name}-b", config=LOG_APPEND)
        consumer_config, producer_config = engine_client_configs(self.bootstrap, self.engine_env)
        consumer_config["group.id"] = f"bench-{self.topics.run_id}-{name}"
        broker_pid = self.broker_pid

        def sample() -> tuple[float, float, float]:
            return time.monotonic(), time.process_time(), cpu_seconds(broker_pid)

        active = transport_loop(
            consumer_config, producer_config, events_topic, (first, second), events,
            (sizes, input_size), sample=sample,
        )  # fmt: skip
        result = judge(name, events, read_outputs(self.bootstrap, [first, second]),
                       [first, second])  # fmt: skip
        if active[0] >= 0.5:
            result.cpu_share = active[1] / active[0]
            result.broker_cpu_share = active[2] / active[0] if broker_pid else None
        return result


def engine_client_configs(
    bootstrap: str, engine_env: dict[str, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The native engine's own consumer and producer settings (at-least-once)."""
    from streams.engine.native import PRODUCER_THROUGHPUT, consumer_overrides
    from streams.kafka.clients import group_consumer_config, producer_config
    from streams.settings import load_settings

    settings = load_settings({"KAFKA_BOOTSTRAP_SERVERS": bootstrap, **engine_env})
    consumer = group_consumer_config(settings, settings.group_id, **consumer_overrides(settings))
    producer = producer_config(settings, **PRODUCER_THROUGHPUT)
    consumer["max_batch"], consumer["max_wait_ms"] = settings.max_batch, settings.max_wait_ms
    return consumer, producer


def transport_loop(
    consumer_config: dict[str, Any],
    producer_config: dict[str, Any],
    events_topic: str,
    outputs: tuple[str, str],
    events: int,
    sizes: tuple[tuple[int, int], int],
    *,
    sample: Callable[[], tuple[float, float, float]],
) -> tuple[float, float, float]:
    """Move ``events`` inputs to two outputs each, at-least-once, with no scoring at all.

    Each input is re-sent as itself plus a fixed tail of real decision (then explanation)
    bytes, so outputs have the sizes and roughly the compressibility of the real ones. Each
    output carries an event_id header (the input's coordinates) and five lineage-sized
    headers, as the engine's do. Offsets are committed, without waiting, only for the prefix
    of batches whose outputs were all acknowledged, as the engine commits. ``sample()``
    gives (wall clock, this process's CPU, the broker's CPU); returns how much of each
    passed between the first consumed batch and the end of the loop.
    """
    config = dict(consumer_config)
    max_batch, max_wait_s = config.pop("max_batch"), config.pop("max_wait_ms") / 1000.0
    consumer, producer = Consumer(config), Producer(producer_config)
    (output_sizes, input_size) = sizes
    tails = [
        tail[: max(0, size - input_size)] for tail, size in zip(TAILS, output_sizes, strict=True)
    ]
    lineage = [("model_name", b"bench-logistic"), ("model_version", b"1"),
               ("model_sha256", b"0" * 64), ("schema_version", b"1"),
               ("scorer_version", b"0.0.0")]  # fmt: skip
    in_flight: deque[_TransportBatch] = deque()
    first: tuple[float, float, float] | None = None
    consumed = 0
    started = time.monotonic()
    consumer.subscribe([events_topic])
    produce, poll = producer.produce, producer.poll
    try:
        while consumed < events or in_flight:
            if time.monotonic() - started > 120 + events / 1000:
                raise BenchError(f"transport loop timed out after {consumed} events")
            messages = consumer.consume(max_batch, max_wait_s)
            batch = _TransportBatch()
            for message in messages:
                error = message.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        raise BenchError(f"consume error: {error}")
                    continue
                batch.last[(message.topic(), message.partition())] = message.offset()
                headers = [("event_id", b"%d:%d" % (message.partition(), message.offset())),
                           *lineage]  # fmt: skip
                value, key = message.value(), message.key()
                for topic, tail in zip(outputs, tails, strict=True):
                    while True:
                        try:
                            # by position, as the engine calls it (cheaper than keywords)
                            produce(topic, value + tail, key, -1, batch.acknowledge, None, 0,
                                    headers)  # fmt: skip
                            break
                        except BufferError:
                            poll(0.05)
                    batch.pending += 1
                consumed += 1
            if batch.last:
                in_flight.append(batch)
                first = first or sample()
            poll(0)
            offsets: dict[tuple[str, int], int] = {}
            while in_flight and in_flight[0].pending == 0:
                for tp, offset in in_flight.popleft().last.items():
                    offsets[tp] = offset + 1
            if offsets:
                consumer.commit(
                    offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                    asynchronous=True,
                )
            elif consumed >= events:
                poll(0.01)
        end = sample()
        first = first or end
        return end[0] - first[0], end[1] - first[1], end[2] - first[2]
    finally:
        producer.flush(30)
        consumer.close()


@dataclass(eq=False)
class _TransportBatch:
    """Outputs of one consumed batch still in flight, and its last offset per partition."""

    pending: int = 0
    last: dict[tuple[str, int], int] = field(default_factory=dict)

    def acknowledge(self, error: Any, message: Any = None) -> None:
        if error is not None:
            raise BenchError(f"delivery failed: {error}")
        self.pending -= 1


TAILS: list[bytes] = [b"", b""]
"""Real decision and explanation bytes, set in :func:`main` from an in-process scoring."""


def latency_run(
    bench: Bench, workload: Workload, model: str, rate: float, seconds: float
) -> dict[str, Any]:
    """Paced input at ``rate`` events/s for ``seconds``; per-event latency percentiles.

    The paced input starts :data:`LATENCY_WARMUP_S` earlier, and those events are not
    measured: the figures are the steady state's, not those of the traffic's first moments.
    """
    name = f"latency-{model.removeprefix('bench-')}"
    events_topic = bench.topics.create(f"{name}-events")
    process, outputs = bench.start_engine(name, model, events_topic)
    decisions = outputs["SCORER_TOPIC_DECISIONS"]

    def alive() -> None:
        bench.processes.check(process, f"scorer serve ({model})")

    ready = 500  # the engine has joined its group and scored: start-up is over
    ready_keys, ready_values = workload.values("ready", ready)
    produce_all(bench.bootstrap, events_topic, ready_keys, ready_values)
    wait_for(bench.bootstrap, [decisions], ready, 120, alive, None, None)

    warm = int(rate * LATENCY_WARMUP_S)  # paced like the rest, not measured
    measured = int(rate * seconds)
    warm_keys, warm_values = workload.values("warm", warm)
    keys, values = workload.values("lat", measured)
    keys, values = warm_keys + keys, warm_values + values
    count = warm + measured
    sent_ms = [0] * count
    producer = Producer({"bootstrap.servers": bench.bootstrap, "log_level": 3})
    started = time.perf_counter()
    i = 0
    while i < count:
        due = min(count, int((time.perf_counter() - started) * rate) + 1)
        while i < due:
            stamp = int(time.time() * 1000)
            sent_ms[i] = stamp
            try:
                producer.produce(events_topic, values[i], keys[i], timestamp=stamp)
            except BufferError:
                producer.poll(0.01)
                continue
            i += 1
        producer.poll(0)
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    offered_s = time.perf_counter() - started
    if producer.flush(30):
        raise BenchError("the paced producer could not deliver every event")
    wait_for(bench.bootstrap, [decisions], ready + count, 120, alive, None, None)
    bench.processes.stop(process)
    kept = read_outputs(bench.bootstrap, [decisions], keep=decisions).kept
    total, waited, scoring, publishing = [], [], [], []
    for event_id, (appended, value) in kept.items():
        if not event_id.startswith(b"lat-"):
            continue
        created = sent_ms[warm + int(event_id[4:])]
        decision = orjson.loads(value)
        scored = datetime.fromisoformat(decision["scored_at"]).timestamp() * 1000.0
        received = scored - decision["latency_ms"]
        total.append(appended - created)
        waited.append(received - created)
        scoring.append(decision["latency_ms"])
        publishing.append(appended - scored)
    if len(total) != measured:
        raise BenchError(f"latency run: {len(total)} of {measured} decisions arrived")
    row: dict[str, Any] = {"model": model, "events": measured, "offered_eps": count / offered_s}
    for stage, values in (("", total), ("wait_", waited), ("score_", scoring),
                          ("publish_", publishing)):  # fmt: skip
        p50, p99 = np.percentile(values, [50, 99]).tolist()
        row.update({f"{stage}p50_ms": p50, f"{stage}p99_ms": p99})
    row["max_ms"] = float(max(total))
    return row


# -- main ----------------------------------------------------------------------------------


def prepare_registry(
    root: Path, rows: int, seed: int, sample: list[dict[str, Any]]
) -> dict[str, tuple[int, int]]:
    """Register a logistic and a gbt model, and LightGBM and XGBoost boosters fitted on the
    same rows, as champions; mean output sizes of the logistic and gbt models."""
    registry = Registry(root)
    dataset = agrawal(rows, seed=seed)
    sizes: dict[str, tuple[int, int]] = {}
    for kind in ("logistic", "gbt"):
        trained = train(dataset, kind, seed=seed)
        name = f"bench-{kind}"
        manifest = registry.register(trained.estimator, name=name, kind=kind,
                                     manifest_fields=trained.manifest_fields)  # fmt: skip
        registry.set_alias(name, "champion", manifest.version, actor="bench")
        model = ScoringModel.from_loaded(registry.load(name, manifest.version))
        scored = score_batch(model, sample)
        decisions = [orjson.dumps(d) for d in scored.decisions]
        explanations = [orjson.dumps(e) for e in scored.explanations]
        sizes[kind] = (sum(map(len, decisions)) // len(decisions),
                       sum(map(len, explanations)) // len(explanations))  # fmt: skip
        if kind == "logistic":
            TAILS[:] = [decisions[0] * 2, explanations[0] * 2]
    for manifest in register_external(registry, rows, seed, BOOSTERS).values():
        registry.set_alias(manifest.name, "champion", manifest.version, actor="bench")
    return sizes


def _terminated(*_: object) -> None:
    progress("terminated: stopping processes and the broker, removing topics")
    sys.exit(143)


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def fmt_eps(value: float | None) -> str:
    return f"{value:,.0f}" if value is not None else "n/a"


def fmt_share(value: float | None) -> str:
    return f"{value * 100:.0f}%" if value is not None else "-"


def eps_of(result: RunResult | None) -> float | None:
    return result.eps if result is not None and not result.problem else None


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def warm_up(
    bench: Bench, topic: str, sizes: tuple[int, int], input_size: int
) -> list[float | None]:
    """Unmeasured transport runs until two in a row agree (see :data:`WARMUP_AGREE`); their
    events/s."""
    seen: list[float | None] = []
    for n in range(1, WARMUP_MAX_RUNS + 1):
        progress(f"warming up the broker: unmeasured transport run {n}")
        seen.append(bench.transport_throughput(f"warmup-{n}", topic, WARMUP_EVENTS, sizes,
                                               input_size).eps)  # fmt: skip
        last, before = seen[-1], seen[-2] if n > 1 else None
        if last and before and abs(last - before) <= WARMUP_AGREE * before:
            break
    return seen


def pair_shares(results: dict[str, RunResult], rounds: int) -> list[float]:
    """The logistic engine's share of the ceiling in each pair that measured both."""
    pairs = [("transport", "logistic")]
    pairs += [(f"transport-r{n}", f"logistic-r{n}") for n in range(2, rounds + 1)]
    shares = [ratio(eps_of(results.get(e)), eps_of(results.get(t))) for t, e in pairs]
    return [x for x in shares if x is not None]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000,
                        help="events per throughput run (200000)")  # fmt: skip
    parser.add_argument("--faust-events", type=int, default=20_000,
                        help="events for the Faust baseline (20000)")  # fmt: skip
    parser.add_argument("--rate", type=float, default=5_000.0,
                        help="offered rate of the latency runs, events/s (5000)")  # fmt: skip
    parser.add_argument("--seconds", type=float, default=15.0,
                        help="duration of each latency run (15)")  # fmt: skip
    parser.add_argument("--skip-faust", action="store_true", help="no Faust baseline")
    parser.add_argument("--skip-faust-engine", action="store_true", help="no Faust engine run")
    parser.add_argument("--skip-gbt-latency", action="store_true", help="latency for logistic only")
    parser.add_argument("--partitions", type=int, default=3, help="partitions per topic (3)")
    parser.add_argument("--max-batch", type=int, help="SCORER_MAX_BATCH for the engine runs")
    parser.add_argument("--max-wait-ms", type=int, help="SCORER_MAX_WAIT_MS for the engine runs")
    parser.add_argument(
        "--engine-env", action="append", default=[], metavar="NAME=VALUE",
        help="extra variable for the engine runs and the engine-settings transport, "
             "e.g. KAFKA_FETCH_QUEUE_BACKOFF_MS=0 (repeatable)",
    )  # fmt: skip
    parser.add_argument("--train-rows", type=int, default=20_000, help="training rows (20000)")
    parser.add_argument("--booster-events", type=int, default=20_000,
                        help="events for the LightGBM and XGBoost runs (20000)")  # fmt: skip
    parser.add_argument("--skip-boosters", action="store_true",
                        help="no LightGBM and XGBoost runs")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3,
                        help="pairs of ceiling and logistic engine runs; the share of the "
                             "ceiling is their median (3)")  # fmt: skip
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    signal.signal(signal.SIGTERM, _terminated)  # run the finally blocks: processes, broker

    engine_env = dict(item.split("=", 1) for item in args.engine_env if "=" in item)
    if args.max_batch:
        engine_env["SCORER_MAX_BATCH"] = str(args.max_batch)
    if args.max_wait_ms is not None:
        engine_env["SCORER_MAX_WAIT_MS"] = str(args.max_wait_ms)
    load_before = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    run_id = uuid.uuid4().hex[:8]
    started = time.monotonic()
    results: dict[str, RunResult] = {}
    latency: dict[str, dict[str, Any]] = {}
    try:
        workload = Workload.generate(min(DISTINCT_EVENTS, max(args.events, 1000)), seed=12)
        sizes = prepare_registry(workdir / "registry", args.train_rows, 11, workload.base[:1000])
        input_size = sum(len(orjson.dumps(e)) for e in workload.base[:1000]) // 1000
        with kafka_cluster(workdir) as (bootstrap, broker):
            topics = Topics(bootstrap, run_id, args.partitions)
            processes = Processes(workdir)
            bench = Bench(bootstrap, broker, topics, processes, workdir / "registry", workdir,
                          engine_env)  # fmt: skip
            try:
                events_topic = topics.create("events")
                produce_all(bootstrap, events_topic, *workload.values("tp", args.events))
                tune_garbage_collector()  # as the engine does: the transport loop runs here
                warm_topic = topics.create("warmup")
                produce_all(bootstrap, warm_topic, *workload.values("wu", WARMUP_EVENTS))
                warmup = warm_up(bench, warm_topic, sizes["logistic"], input_size)
                print(f"pipeline benchmark: {args.events:,} events in {args.partitions} "
                      f"partitions; broker {bootstrap}"
                      f"{' (local, started for this run)' if broker else ''}; "
                      f"{os.cpu_count()} cores, load average {load_before[0]:.2f} at start; "
                      f"broker warmed by {len(warmup)} unmeasured transport runs "
                      f"({', '.join(fmt_eps(x) for x in warmup)} events/s)",
                      flush=True)  # fmt: skip
                runs: list[tuple[str, int, Callable[[], RunResult]]] = [
                    ("transport", args.events, lambda: bench.transport_throughput(
                        "transport", events_topic, args.events, sizes["logistic"], input_size)),
                    ("logistic", args.events, lambda: bench.engine_throughput(
                        "logistic", "bench-logistic", events_topic, args.events)),
                    ("gbt", args.events, lambda: bench.engine_throughput(
                        "gbt", "bench-gbt", events_topic, args.events)),
                    ("logistic-workers-2", args.events, lambda: bench.engine_throughput(
                        "logistic-workers-2", "bench-logistic", events_topic, args.events,
                        workers=2)),
                ]  # fmt: skip
                for n in range(2, args.rounds + 1):  # more pairs, each back to back
                    transport, logistic = f"transport-r{n}", f"logistic-r{n}"
                    runs += [
                        (transport, args.events, partial(
                            bench.transport_throughput, transport, events_topic, args.events,
                            sizes["logistic"], input_size)),
                        (logistic, args.events, partial(
                            bench.engine_throughput, logistic, "bench-logistic", events_topic,
                            args.events)),
                    ]  # fmt: skip
                if not args.skip_boosters:
                    booster_topic = topics.create("booster-events")
                    produce_all(bootstrap, booster_topic,
                                *workload.values("bo", args.booster_events))  # fmt: skip
                    for family in BOOSTERS:
                        runs.append((family, args.booster_events,
                                     lambda family=family: bench.engine_throughput(
                                         family, f"bench-{family}", booster_topic,
                                         args.booster_events)))  # fmt: skip
                if not args.skip_faust_engine:
                    runs.append(("faust-engine", args.events, lambda: bench.engine_throughput(
                        "faust-engine", "bench-logistic", events_topic, args.events,
                        engine="faust")))  # fmt: skip
                if not args.skip_faust:
                    faust_topic = topics.create("faust-events")
                    produce_all(bootstrap, faust_topic, *workload.values("fa", args.faust_events))
                    runs.append(("faust", args.faust_events, lambda: bench.faust_throughput(
                        "bench-logistic", faust_topic, args.faust_events)))  # fmt: skip
                for key, events, run in runs:
                    progress(f"{key}: {events:,} events")
                    try:
                        results[key] = run()
                    except (BenchError, KafkaException) as exc:
                        progress(f"{key} failed: {exc}")
                        results[key] = RunResult(key, events, problem=str(exc).splitlines()[0])
                    progress(f"{key}: {fmt_eps(results[key].eps)} events/s")
                kinds = ["logistic"] if args.skip_gbt_latency else ["logistic", "gbt"]
                for kind in kinds:
                    progress(f"latency, {kind}: {args.rate:,.0f} events/s for {args.seconds}s")
                    try:
                        latency[kind] = latency_run(
                            bench, workload, f"bench-{kind}", args.rate, args.seconds
                        )
                    except (BenchError, KafkaException) as exc:
                        progress(f"latency run ({kind}) failed: {exc}")
            finally:
                processes.stop_all()
                topics.delete_all(extra_prefixes=(f"bench-{run_id}-faust",))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    report(args, results, latency, sizes, input_size, time.monotonic() - started)
    complete = all(not r.problem for r in results.values()) and len(latency) == len(
        ["logistic"] if args.skip_gbt_latency else ["logistic", "gbt"]
    )
    return 0 if complete else 1


def report(
    args: argparse.Namespace,
    results: dict[str, RunResult],
    latency: dict[str, dict[str, Any]],
    sizes: dict[str, tuple[int, int]],
    input_size: int,
    elapsed: float,
) -> None:
    labels = {
        "transport": "transport-only ceiling",
        "logistic": "native engine, logistic + explanations",
        "gbt": "native engine, gbt + TreeSHAP explanations",
        "logistic-workers-2": "native, logistic, --workers 2",
        "lightgbm": "native engine, LightGBM + its pred_contrib",
        "xgboost": "native engine, XGBoost + its pred_contribs",
        "faust-engine": "Faust engine, logistic + explanations",
        "faust": "Faust baseline, logistic (per event)",
    }
    for n in range(2, args.rounds + 1):
        labels[f"transport-r{n}"] = f"transport-only ceiling, pair {n}"
        labels[f"logistic-r{n}"] = f"native engine, logistic, pair {n}"
    print()
    ceiling, baseline = (eps_of(results.get(key)) for key in ("transport", "faust"))
    shares = pair_shares(results, args.rounds)

    pair_ceiling = {  # a later pair's rows are shares of that pair's own ceiling
        f"{kind}-r{n}": eps_of(results.get(f"transport-r{n}"))
        for n in range(2, args.rounds + 1)
        for kind in ("transport", "logistic")
    }
    print(f"{'throughput':<44}{'events':>9}{'events/s':>11}{'ceiling':>9}"
          f"{'window':>9}{'dups':>6}{'proc cpu':>10}{'broker cpu':>12}")  # fmt: skip
    for key, result in results.items():
        print(f"{labels[key]:<44}{result.events:>9,}{fmt_eps(result.eps):>11}"
              f"{fmt_share(ratio(result.eps, pair_ceiling.get(key, ceiling))):>9}"
              f"{result.window_s:>8.2f}s{result.duplicates:>6}{fmt_share(result.cpu_share):>10}"
              f"{fmt_share(result.broker_cpu_share):>12}")  # fmt: skip
        if result.problem:
            print(f"  !! {result.problem}")
    dec, expl = sizes["logistic"]
    print(f"(input ~{input_size} B; decision ~{dec} B, explanation ~{expl} B; transport outputs "
          "are sized alike. ceiling: the row's events/s as a share of the transport-only "
          "row (of its own pair's for a later pair). cpu: CPU seconds per wall second while "
          "outputs arrived, a supervisor's workers included; with two workers the broker, the "
          "workers and this script share the machine's cores)")  # fmt: skip
    if latency:
        print()
        print(f"{'latency (input CreateTime -> decision append)':<48}{'events':>8}"
              f"{'offered/s':>11}{'p50':>8}{'p99':>8}{'max':>8}")  # fmt: skip
        for kind, row in latency.items():
            print(
                f"{'native engine, ' + kind:<48}{row['events']:>8,}{row['offered_eps']:>11,.0f}"
                f"{row['p50_ms']:>6.0f}ms{row['p99_ms']:>6.0f}ms{row['max_ms']:>6.0f}ms"
            )
            for stage, label in (("wait_", "sent -> batch received by the engine"),
                                 ("score_", "received -> scored (decision's latency_ms)"),
                                 ("publish_", "scored -> decision appended")):  # fmt: skip
                print(f"{'  ' + label:<67}{row[stage + 'p50_ms']:>6.1f}ms"
                      f"{row[stage + 'p99_ms']:>6.1f}ms")  # fmt: skip
        print("(stages from the decisions' scored_at and latency_ms; the paced producer has "
              "librdkafka's default linger.ms, 5 ms)")  # fmt: skip

    native = eps_of(results.get("logistic"))
    gbt, two_workers = eps_of(results.get("gbt")), eps_of(results.get("logistic-workers-2"))
    gbt_vs_logistic, workers_gain = ratio(gbt, native), ratio(two_workers, native)
    vs_transport = statistics.median(shares) if shares else None
    vs_faust = ratio(native, baseline)
    faust_engine = eps_of(results.get("faust-engine"))
    native_vs_faust_engine, faust_engine_vs_baseline = (
        ratio(native, faust_engine),
        ratio(faust_engine, baseline),
    )
    p99 = latency.get("logistic", {}).get("p99_ms")
    gbt_p99 = latency.get("gbt", {}).get("p99_ms")

    def verdict(ok: bool | None) -> str:
        return "-" if ok is None else ("meets" if ok else "MISSES")

    print()
    print(f"{'against the targets (ratios from one run)':<44}{'measured':>12}{'target':>12}")
    rows = [
        ("logistic + explanations, events/s", fmt_eps(native), f">= {TARGET_EPS:,}",
         None if native is None else native >= TARGET_EPS),
        ("engine / Faust baseline", "n/a" if vs_faust is None else f"{vs_faust:.1f}x",
         f">= {TARGET_VS_FAUST:.0f}x", None if vs_faust is None else vs_faust >= TARGET_VS_FAUST),
        (f"engine / transport-only ceiling, median of {len(shares)}",
         "n/a" if vs_transport is None else f"{vs_transport * 100:.0f}%",
         f">= {TARGET_VS_TRANSPORT * 100:.0f}%",
         None if vs_transport is None else vs_transport >= TARGET_VS_TRANSPORT),
        ("gbt + TreeSHAP / logistic",
         "n/a" if gbt_vs_logistic is None else f"{gbt_vs_logistic * 100:.0f}%",
         f">= {TARGET_GBT_VS_LOGISTIC * 100:.0f}%",
         None if gbt_vs_logistic is None else gbt_vs_logistic >= TARGET_GBT_VS_LOGISTIC),
        (f"p99 latency at {args.rate:,.0f} events/s", "n/a" if p99 is None else f"{p99:.0f} ms",
         f"<= {TARGET_P99_MS:.0f} ms", None if p99 is None else p99 <= TARGET_P99_MS),
        (f"gbt p99 latency at {args.rate:,.0f} events/s",
         "n/a" if gbt_p99 is None else f"{gbt_p99:.0f} ms",
         f"<= {TARGET_P99_MS:.0f} ms", None if gbt_p99 is None else gbt_p99 <= TARGET_P99_MS),
    ]  # fmt: skip
    for label, measured, target, ok in rows:
        print(f"{label:<44}{measured:>12}{target:>12}  {verdict(ok)}")
        if label.startswith("engine / transport-only ceiling") and len(shares) > 1:
            print(f"{'  each pair':<44}{', '.join(f'{x * 100:.0f}%' for x in shares):>12}")
    for label, value in (("--workers 2 / --workers 1 (shared cores)", workers_gain),
                         ("native engine / Faust engine", native_vs_faust_engine),
                         ("Faust engine / Faust baseline", faust_engine_vs_baseline)):  # fmt: skip
        measured = "n/a" if value is None else f"{value:.1f}x"
        print(f"{label:<44}{measured:>12}{'(no target)':>12}")
    load = os.getloadavg()
    print(f"({os.cpu_count()} cores shared by the broker, the engine and this script; "
          f"load average {load[0]:.2f} at the end; other processes on the machine move these "
          f"figures; total {elapsed:.0f}s)")  # fmt: skip

    def rounded(value: float | None, digits: int = 0) -> float | None:
        return None if value is None else round(value, digits)

    headline = {
        "benchmark": "pipeline",
        "events": args.events,
        "transport_eps": rounded(ceiling),
        "native_logistic_eps": rounded(native),
        "native_gbt_eps": rounded(gbt),
        "native_logistic_workers_2_eps": rounded(two_workers),
        "ratio_workers_2_vs_1": rounded(workers_gain, 3),
        "ratio_gbt_vs_logistic": rounded(gbt_vs_logistic, 3),
        "native_lightgbm_eps": rounded(eps_of(results.get("lightgbm"))),
        "native_xgboost_eps": rounded(eps_of(results.get("xgboost"))),
        "faust_engine_eps": rounded(faust_engine),
        "faust_baseline_eps": rounded(baseline),
        "ratio_vs_transport": rounded(vs_transport, 3),
        "ratio_vs_transport_pairs": [round(x, 3) for x in shares],
        "ratio_vs_faust": rounded(vs_faust, 1),
        "ratio_native_vs_faust_engine": rounded(native_vs_faust_engine, 2),
        "ratio_faust_engine_vs_baseline": rounded(faust_engine_vs_baseline, 2),
        "offered_eps": args.rate,
        "p50_ms": rounded(latency.get("logistic", {}).get("p50_ms"), 1),
        "p99_ms": rounded(p99, 1),
        "max_ms": rounded(latency.get("logistic", {}).get("max_ms"), 1),
        "gbt_p50_ms": rounded(latency.get("gbt", {}).get("p50_ms"), 1),
        "gbt_p99_ms": rounded(latency.get("gbt", {}).get("p99_ms"), 1),
        "cores": os.cpu_count(),
    }
    print(json.dumps(headline))


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("bench_pipeline: interrupted", file=sys.stderr)
        sys.exit(130)
