"""``scorer demo``: the product end to end on a live terminal view.

Trains and registers a demo model when the registry has none, starts ``scorer serve`` and
``scorer monitor`` in the background, publishes Agrawal loan applications (one in a
hundred malformed, a drift switched on part-way) and, 2,000 events later, each
application's outcome label; shows throughput, latency, the decision mix, dead letters,
the serving version, drift alerts (concept drift from the labels recommends retraining),
fairness and a worked explanation as they happen. Ctrl-C stops the producer, the scorer
and the monitor cleanly. ``make run`` wraps it with the local broker.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from confluent_kafka import OFFSET_END, Consumer, TopicPartition
from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from models.datasets import agrawal, agrawal_stream
from models.manifest import ModelKind
from models.registry import Registry
from models.training import train
from schemas.errors import BrokerError, ScorerError
from streams.kafka.clients import producer as kafka_producer
from streams.kafka.clients import reader_consumer, require_broker
from streams.paths import var_dir
from streams.settings import Settings, load_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="train if needed, serve, publish demo traffic with drift, and watch it live",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument("--model", default="demo", help="model name (demo)")
    parser.add_argument(
        "--kind",
        default="gbt",
        choices=["logistic", "gbt", "river-logistic"],
        help="model to train when the registry has none (gbt)",
    )
    parser.add_argument("--count", type=int, default=60_000, help="events to publish (60000)")
    parser.add_argument("--rate", type=float, default=1_000.0, help="events per second (1000)")
    parser.add_argument(
        "--drift-at",
        type=int,
        default=20_000,
        help="event number where the loan amounts shift (20000)",
    )
    parser.add_argument(
        "--window-seconds", type=float, default=5.0, help="drift window length in event time (5)"
    )
    parser.set_defaults(func=_demo)


LABEL_DELAY = 2_000
"""Events between a decision and its outcome label in the demo."""
LABELS_WAIT_S = 30.0
"""How long the demo waits, once every event is decided, for the last labels to join."""


@dataclass(frozen=True)
class RunFigures:
    """A run's throughput and end-to-end latency, over all of its decisions."""

    decisions: int
    seconds: float
    throughput: float
    p50_ms: float
    p99_ms: float


def run_figures(samples: Sequence[tuple[float, float]]) -> RunFigures:
    """The figures of ``samples``, each ``(decided at, ms; end-to-end latency, ms)``.

    Throughput is the mean: the decisions over the time from the first to the last one
    (0 when they all share one instant); the percentiles are over every latency.
    """
    if not samples:
        return RunFigures(0, 0.0, 0.0, 0.0, 0.0)
    data = np.asarray(samples, dtype=np.float64)
    seconds = float(data[:, 0].max() - data[:, 0].min()) / 1000.0
    p50, p99 = np.percentile(data[:, 1], [50, 99])
    rate = len(data) / seconds if seconds > 0 else 0.0
    return RunFigures(len(data), seconds, rate, float(p50), float(p99))


class _Watch:
    """What the live view shows, fed by one consumer on every output topic."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.produced = 0
        self.decisions: Counter[str] = Counter()
        self.recent: deque[tuple[float, float]] = deque(maxlen=20_000)  # (t, e2e ms)
        self.run: list[tuple[float, float]] = []  # (decision record time ms, e2e ms)
        self.ended = False  # the final view shows the run's figures, not the last 5 s
        self.explanations = 0
        self.labels_sent = 0
        self.labels_joined = 0
        self.dlq: Counter[str] = Counter()
        self.alerts: dict[str, dict[str, Any]] = {}
        self.fairness: dict[str, dict[str, Any]] = {}
        self.model = "?"
        self.example: dict[str, Any] | None = None

    def take(self, topic_kind: str, value: dict[str, Any], timestamp_ms: int) -> None:
        now = time.monotonic()
        if topic_kind == "decisions":
            self.decisions[value["decision"]] += 1
            self.model = f"{value['model']['name']} v{value['model']['version']}"
            sent = np.datetime64(value["event_time"].rstrip("Z"), "ms").astype(np.int64)
            latency = max(0.0, float(timestamp_ms - sent))
            self.recent.append((now, latency))
            self.run.append((float(timestamp_ms), latency))
            if value["decision"] == "decline" and value["reason_codes"]:
                self.example = value
        elif topic_kind == "explanations":
            self.explanations += 1
        elif topic_kind == "outcomes":
            self.labels_joined += 1
        elif topic_kind == "dlq":
            self.dlq[value["reason"]] += 1
        elif topic_kind == "alerts":
            self.alerts[value["monitor_id"]] = value
        elif topic_kind == "fairness":
            self.fairness[value["attribute"]] = value

    def figures(self) -> RunFigures:
        """The whole run's figures (end-to-end: event_time to the decision's timestamp)."""
        return run_figures(self.run)

    def view(self) -> Group:
        if self.ended:
            run = self.figures()
            rate, p50, p99 = run.throughput, run.p50_ms, run.p99_ms
            rate_label, latency_label = "throughput (run mean)", "end-to-end p50 / p99 (run)"
        else:
            now = time.monotonic()
            window = [ms for t, ms in self.recent if now - t <= 5.0]
            rate = len(window) / 5.0
            p50, p99 = np.percentile(window, [50, 99]) if window else (0.0, 0.0)
            rate_label, latency_label = "throughput", "end-to-end p50 / p99"
        decided = sum(self.decisions.values())
        stats = Table.grid(padding=(0, 2))
        stats.add_row("model", self.model, "published", f"{self.produced:,}")
        stats.add_row("decisions", f"{decided:,}", "explanations", f"{self.explanations:,}")
        stats.add_row(
            "labels sent", f"{self.labels_sent:,}", "labels joined", f"{self.labels_joined:,}"
        )
        stats.add_row(rate_label, f"{rate:,.0f} /s", latency_label, f"{p50:.0f} / {p99:.0f} ms")
        mix = (
            ", ".join(f"{k} {v / decided:.0%}" for k, v in sorted(self.decisions.items()))
            if decided
            else "-"
        )
        stats.add_row(
            "decision mix",
            mix,
            "dead letters",
            ", ".join(f"{k} {v}" for k, v in self.dlq.items()) or "0",
        )
        alerts = Table(
            "monitor",
            "status",
            "statistic",
            "value",
            "threshold",
            "retrain",
            title="drift",
            expand=True,
        )
        for alert in self.alerts.values():
            style = "bold red" if alert["status"] == "open" else "green"
            alerts.add_row(
                alert["monitor_id"],
                f"[{style}]{alert['status']}[/]",
                alert["statistic"],
                f"{alert['value']:.1f}",
                f"{alert['threshold']:.1f}",
                "yes" if alert["retrain_recommended"] else "no",
            )
        if not self.alerts:
            alerts.add_row("(no drift so far)", "", "", "", "", "")
        fairness = Table(
            "attribute", "status", "disparate impact", "groups", title="fairness", expand=True
        )
        for report in self.fairness.values():
            ratio = report.get("disparate_impact_ratio")
            fairness.add_row(
                report["attribute"],
                report["status"],
                "-" if ratio is None else f"{ratio:.3f}",
                ", ".join(f"{g['group']}:{g['count']}" for g in report["groups"]),
            )
        parts: list[Any] = [Panel(stats, title="streaming scorer"), alerts, fairness]
        if self.example:
            reasons = Table(
                "reason code",
                "feature",
                "contribution (log-odds)",
                "text",
                title=f"why {self.example['event_id']} was declined "
                f"(score {self.example['score']:.2f})",
                expand=True,
            )
            for code in self.example["reason_codes"]:
                reasons.add_row(
                    code["code"], code["feature"], f"{code['contribution']:+.3f}", code["text"]
                )
            parts.append(reasons)
        return Group(*parts)


def _ensure_model(settings: Settings, name: str, kind: ModelKind) -> None:
    registry = Registry(settings.registry)
    if name in registry.names():
        return
    print(f"training a {kind} model '{name}' on 20,000 Agrawal loan applications ...")
    trained = train(agrawal(20_000, seed=7), kind, seed=7)
    manifest = registry.register(
        trained.estimator,
        name=name,
        kind=kind,
        manifest_fields=trained.manifest_fields,
    )
    registry.set_alias(name, "champion", manifest.version, actor="scorer demo")
    print(
        f"registered {name} v{manifest.version} (sha256 {manifest.artifact.sha256[:12]}) "
        f"as champion; holdout ROC AUC {manifest.metrics['roc_auc']:.3f}"
    )


def _publish(
    settings: Settings, args: argparse.Namespace, watch: _Watch, stop: threading.Event
) -> None:
    producer = kafka_producer(settings)
    pending: deque[tuple[str, int]] = deque()
    started = time.monotonic()
    for i, labelled in enumerate(
        agrawal_stream(args.count, seed=int(time.time()), drift_at=args.drift_at)
    ):
        if stop.is_set():
            break
        ahead = started + i / args.rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
        event = labelled.event
        value = orjson.dumps(event)
        if i % 100 == 99:  # an upstream bug now and then: the dead-letter topic catches it
            value = value.replace(b'"salary":', b'"salary":"n/a","_":', 1)
        producer.produce(settings.topic_events, value, event["entity_id"].encode())
        if i % 100 != 99:  # outcomes become known later: label the event from 2,000 ago
            pending.append((event["event_id"], labelled.label))
        if len(pending) > LABEL_DELAY:
            event_id, label = pending.popleft()
            feedback = {
                "event_id": event_id,
                "label": label,
                "label_time": datetime.now(UTC).isoformat(),
            }
            producer.produce(settings.topic_feedback, orjson.dumps(feedback), event_id.encode())
            watch.labels_sent += 1
        producer.poll(0)
        watch.produced = i + 1
    producer.flush(30)


def _start(log_path: Path, env: dict[str, str], *argv: str) -> subprocess.Popen[bytes]:
    """A scorer subcommand in the background, its output appended to ``log_path``."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "streams.cli", *argv], env=env, stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip


def _await_serving(scorer: subprocess.Popen[bytes], log_path: Path, timeout: float = 120.0) -> None:
    """Wait until the scorer logs that it serves, so the demo's events and labels do not pile
    up behind its start (a label read before its decision is written cannot join it)."""
    start = log_path.stat().st_size if log_path.exists() else 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(log_path, "rb") as log:
            log.seek(start)
            if b" serving " in log.read():
                return
        if scorer.poll() is not None:
            raise ScorerError(f"the scorer exited with {scorer.returncode}; see {log_path}")
        time.sleep(0.1)
    raise ScorerError(f"the scorer did not start serving within {timeout:.0f} s; see {log_path}")


def _stop(*processes: subprocess.Popen[bytes]) -> None:
    """SIGTERM each in turn (scorers first, then the monitor owner) and wait for it."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(60)


def _read(reader: Consumer, topics: dict[str, str], watch: _Watch, seconds: float) -> None:
    """Feed the view what the outputs topics hold, for about ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        for message in reader.consume(500, timeout=min(0.2, seconds)):
            if message.error() is None and message.value() is not None:
                watch.take(
                    topics[str(message.topic())],
                    orjson.loads(message.value() or b"{}"),
                    message.timestamp()[1],
                )
        if time.monotonic() >= deadline:
            return


def _demo(args: argparse.Namespace) -> int:
    settings = load_settings(monitor_window_seconds=args.window_seconds)
    require_broker(
        settings, hint="; run `make run` or `scorer broker up` and `scorer topics apply`"
    )
    _ensure_model(settings, args.model, args.kind)
    topics = {
        settings.topic_decisions: "decisions",
        settings.topic_explanations: "explanations",
        settings.topic_dlq: "dlq",
        settings.topic_drift_alerts: "alerts",
        settings.topic_fairness_reports: "fairness",
        settings.topic_outcomes: "outcomes",
    }
    reader = reader_consumer(settings)
    assignment = []
    for topic in topics:
        metadata = reader.list_topics(topic, timeout=10).topics[topic]
        assignment += [TopicPartition(topic, p, OFFSET_END) for p in metadata.partitions]
    reader.assign(assignment)  # this run's outputs only

    log_dir = var_dir() / "demo"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "SCORER_MONITOR_WINDOW_SECONDS": str(args.window_seconds),
        "SCORER_MONITOR_LATENESS_SECONDS": str(min(5.0, args.window_seconds)),
    }
    scorer = _start(
        log_dir / "serve.log",
        env,
        "serve",
        "--model",
        args.model,
        "--group-id",
        "scorer-demo",
        "--metrics-port",
        str(settings.metrics_port),
    )
    owner = _start(log_dir / "monitor.log", env, "monitor", "--group-id", "scorer-demo-monitor")
    _await_serving(scorer, log_dir / "serve.log")
    print(
        f"scorer started (pid {scorer.pid}, log {log_dir / 'serve.log'}, "
        f"metrics http://127.0.0.1:{settings.metrics_port}/metrics), monitor owner started "
        f"(pid {owner.pid}, log {log_dir / 'monitor.log'}); Ctrl-C stops the demo"
    )
    watch, stop = _Watch(), threading.Event()
    publisher = threading.Thread(target=_publish, args=(settings, args, watch, stop), daemon=True)
    publisher.start()
    interrupted = False
    try:
        with Live(watch.view(), refresh_per_second=2, transient=False) as live:
            last = time.monotonic()
            idle_since = None
            while True:
                _read(reader, topics, watch, 0.2)
                for name, process in (("serve", scorer), ("monitor", owner)):
                    if process.poll() is not None:
                        raise BrokerError(
                            f"scorer {name} exited with {process.returncode}; "
                            f"see {log_dir / (name + '.log')}"
                        )
                if time.monotonic() - last > 0.5:
                    live.update(watch.view())
                    last = time.monotonic()
                all_decided = (
                    not publisher.is_alive()
                    and sum(watch.decisions.values()) + sum(watch.dlq.values()) >= watch.produced
                )
                idle_since = (idle_since or time.monotonic()) if all_decided else None
                idle = time.monotonic() - idle_since if idle_since else 0.0
                joined = watch.labels_joined >= watch.labels_sent
                if idle_since and idle > 3.0 and (joined or idle > LABELS_WAIT_S):
                    # the owner's last verdicts are committed when it stops: show them too
                    _stop(scorer, owner)
                    _read(reader, topics, watch, 3.0)
                    watch.ended = True
                    live.update(watch.view())
                    break
    except KeyboardInterrupt:
        interrupted = True
    finally:
        stop.set()
        publisher.join(10)
        _stop(scorer, owner)
        reader.close()
    run = watch.figures()
    print(
        f"run: {run.decisions:,} decisions in {run.seconds:,.1f} s, throughput "
        f"{run.throughput:,.0f} /s (mean), end-to-end p50 / p99 {run.p50_ms:.0f} / "
        f"{run.p99_ms:.0f} ms (event_time to decision)"
    )
    decided = sum(watch.decisions.values())
    opened = sum(1 for a in watch.alerts.values() if a["status"] == "open")
    print(
        f"{'interrupted: ' if interrupted else ''}published {watch.produced:,} events, "
        f"{decided:,} decisions, {sum(watch.dlq.values())} dead letters, "
        f"{len(watch.alerts)} drift monitor(s) alerted ({opened} still open), "
        f"{watch.labels_joined:,} of {watch.labels_sent:,} labels joined; "
        "scorer and monitor stopped"
    )
    return 0
