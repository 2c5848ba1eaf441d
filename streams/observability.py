"""Prometheus metrics and the health endpoints of a scorer process.

One :class:`ScorerMetrics` per process, on its own registry so tests can create several.
:func:`serve_http` exposes ``/metrics`` (Prometheus text format), ``/healthz`` (the process
is alive and its loop is turning) and ``/readyz`` (it has a model, partitions or a
subscription, and its outputs are being delivered) on one port; port 0 picks a free one.
It serves anything with an ``exposition()`` and ``live()``/``ready()`` the same way: the
supervisor of several workers answers for all of them (:mod:`streams.engine.supervisor`).
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


class ScorerMetrics:
    """The scorer's metrics; names are part of the dashboard contract (infra/)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter(
            "scorer_events_total", "Input events by outcome (scored, rejected).", ["outcome"],
            registry=r,
        )  # fmt: skip
        self.decisions = Counter(
            "scorer_decisions_total", "Decisions by label.", ["decision"], registry=r
        )
        self.dlq = Counter(
            "scorer_dlq_total", "Records sent to the dead-letter topic, by reason.", ["reason"],
            registry=r,
        )  # fmt: skip
        self.dlq_truncated = Counter(
            "scorer_dlq_truncated_total",
            "Dead letters cut to the DLQ size budget (a prefix of the original bytes kept), "
            "by reason.", ["reason"], registry=r,
        )  # fmt: skip
        self.errors = Counter(
            "scorer_errors_total", "Errors by kind (delivery, commit, model_load, ...).", ["kind"],
            registry=r,
        )  # fmt: skip
        self.batch_size = Histogram(
            "scorer_batch_size", "Events per consumed batch.", buckets=BATCH_BUCKETS, registry=r
        )
        self.scoring_seconds = Histogram(
            "scorer_scoring_seconds", "Time in the scoring core per batch.",
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.end_to_end_seconds = Histogram(
            "scorer_end_to_end_seconds",
            "From the input record's timestamp to the broker's acknowledgement of its outputs.",
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.lag = Gauge(
            "scorer_consumer_lag", "Records behind the partition's end.", ["topic", "partition"],
            registry=r,
        )  # fmt: skip
        self.model_info = Gauge(
            "scorer_model_info", "The serving model version (value 1), by role.",
            ["role", "name", "version", "sha256"], registry=r,
        )  # fmt: skip
        self.swaps = Counter(
            "scorer_model_swaps_total", "Hot swaps by outcome (applied, refused).", ["outcome"],
            registry=r,
        )  # fmt: skip
        self.alerts = Counter(
            "scorer_drift_alerts_total", "Drift alert records by monitor and status.",
            ["monitor", "status"], registry=r,
        )  # fmt: skip
        self.fairness = Counter(
            "scorer_fairness_reports_total", "Fairness reports by attribute and status.",
            ["attribute", "status"], registry=r,
        )  # fmt: skip
        self.labels = Counter(
            "scorer_feedback_labels_total", "Feedback labels by outcome (joined, rejected).",
            ["outcome"], registry=r,
        )  # fmt: skip
        self.join_restored = Counter(
            "scorer_join_restored_records_total",
            "Changelog records an outcome-join instance read to restore its stores.", registry=r,
        )  # fmt: skip
        self.in_flight = Gauge(
            "scorer_outputs_in_flight", "Produced outputs not yet acknowledged.", registry=r
        )

    def set_model(self, role: str, name: str, version: int, sha256: str) -> None:
        self.clear_model(role)  # one series per role
        self.model_info.labels(role, name, str(version), sha256).set(1)

    def clear_model(self, role: str) -> None:
        """No version serves in ``role`` any more (a challenger cleared): drop its series."""
        for labels in list(self.model_info._metrics):
            if labels[0] == role:
                self.model_info.remove(*labels)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class Health:
    """Liveness and readiness as the engine reports them; read by the HTTP handler."""

    def __init__(self, stall_after_s: float = 60.0) -> None:
        self.stall_after_s = stall_after_s
        self._lock = threading.Lock()
        self._last_loop = time.monotonic()
        self._ready = False
        self._reason = "starting"

    def heartbeat(self) -> None:
        self._last_loop = time.monotonic()

    def set(self, ready: bool, reason: str = "") -> None:
        with self._lock:
            self._ready, self._reason = ready, reason

    def live(self) -> tuple[bool, str]:
        idle = time.monotonic() - self._last_loop
        if idle > self.stall_after_s:
            return False, f"loop stalled for {idle:.0f}s"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        with self._lock:
            return self._ready, self._reason or "ok"


class Exposition(Protocol):
    """What ``/metrics`` serves: the Prometheus text format."""

    def exposition(self) -> bytes: ...


class Probes(Protocol):
    """What ``/healthz`` and ``/readyz`` answer: (ok, reason)."""

    def live(self) -> tuple[bool, str]: ...

    def ready(self) -> tuple[bool, str]: ...


def serve_http(metrics: Exposition, health: Probes, port: int) -> ThreadingHTTPServer:
    """Serve /metrics, /healthz and /readyz on 127.0.0.1-or-all:``port`` in a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._send(200, metrics.exposition(), CONTENT_TYPE_LATEST)
                return
            if self.path in ("/healthz", "/readyz"):
                ok, reason = health.live() if self.path == "/healthz" else health.ready()
                body = orjson.dumps({"status": "ok" if ok else "unavailable", "reason": reason})
                self._send(200 if ok else 503, body, "application/json")
                return
            self._send(404, b"not found\n", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # quiet access log
            return

    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    threading.Thread(target=server.serve_forever, name="scorer-http", daemon=True).start()
    return server
