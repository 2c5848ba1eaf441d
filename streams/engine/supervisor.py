"""The supervisor of ``scorer serve --workers N``: N engines in one consumer group, kept
running, stopped together and observed as one.

One loop, one thread::

    start workers 0..N-1 (streams.engine.workers), each an ordinary `scorer serve`
    every tick: a worker that exited is started again after its backoff (logged, counted)
    SIGTERM or SIGINT: SIGTERM to every worker, then wait while each drains, delivers and
                       commits; SIGKILL one still running after stop_timeout_s; no restarts

Kafka spreads the partitions over the workers as over any members of a group. Over HTTP the
supervisor answers for all of them (streams.observability.serve_http): ``/metrics`` is its
own counters followed by every worker's samples labelled ``worker="<i>"``
(:mod:`streams.engine.exposition`); ``/healthz`` holds while its loop turns and every worker
runs or waits for its restart; ``/readyz`` only while every worker says it is ready, the
reason naming each one that is not.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from streams.engine.exposition import merge_expositions
from streams.engine.workers import (
    RestartPolicy,
    WorkerLaunch,
    WorkerSlot,
    exit_description,
    worker_get,
)
from streams.observability import Health
from streams.runtime import Service

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 60.0
"""Longest wait for the workers to stop after SIGTERM before the rest are killed."""
STOPPED_CLEANLY = (0, -signal.SIGTERM)
"""Exit statuses of a worker that stopped as asked: 0, or SIGTERM's own when it came before
the worker set its handler (it had consumed nothing yet)."""
PROBE_TIMEOUT_S = 2.0
"""Longest wait for a worker's answer to ``/metrics`` or ``/readyz``."""


class SupervisorMetrics:
    """The supervisor's own metrics, each labelled by worker like the workers' samples."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.restarts = Counter(
            "scorer_worker_restarts_total",
            "Workers started again after they exited unexpectedly.", ["worker"], registry=r,
        )  # fmt: skip
        self.up = Gauge(
            "scorer_worker_up", "1 while the worker's process runs, else 0.", ["worker"],
            registry=r,
        )  # fmt: skip
        self.pid = Gauge(
            "scorer_worker_pid", "Process id of the running worker.", ["worker"], registry=r
        )


@dataclass(frozen=True)
class WorkerState:
    """One worker as the HTTP threads see it (a copy: the loop changes the slots)."""

    index: int
    pid: int | None
    port: int | None
    start_in_s: float | None
    starts: int
    last_exit: str

    @classmethod
    def of(cls, slot: WorkerSlot, now: float) -> WorkerState:
        start_in_s = None if slot.start_at is None else slot.start_at - now
        return cls(slot.index, slot.pid, slot.port, start_in_s, slot.starts, slot.last_exit)

    def waiting(self) -> str:
        """Why no process runs: starting, or restarting after the last exit."""
        if self.start_in_s is None:
            return "not running"
        if self.starts == 0:
            return "starting"
        return f"exited with {self.last_exit}, restarting in {max(0.0, self.start_in_s):.0f} s"


class Supervisor(Service):
    """Keeps ``count`` workers of ``launch`` running until :meth:`stop`; :meth:`run` returns
    0 if every worker then exited cleanly, else 1."""

    def __init__(
        self,
        count: int,
        launch: WorkerLaunch,
        *,
        policy: Callable[[], RestartPolicy] = RestartPolicy,
        stop_timeout_s: float = STOP_TIMEOUT_S,
        probe_timeout_s: float = PROBE_TIMEOUT_S,
        tick_s: float = 0.1,
    ) -> None:
        super().__init__()
        self.slots = [WorkerSlot(i, launch, policy()) for i in range(count)]
        self.metrics = SupervisorMetrics()
        self.stop_timeout_s = stop_timeout_s
        self.probe_timeout_s = probe_timeout_s
        self.tick_s = tick_s
        self._loop = Health()
        self._lock = threading.Lock()
        self._probes = ThreadPoolExecutor(max_workers=count, thread_name_prefix="scorer-probe")
        for slot in self.slots:
            self.metrics.restarts.labels(str(slot.index))
            self.metrics.up.labels(str(slot.index)).set(0)

    # -- the loop ------------------------------------------------------------------------

    def run(self) -> int:
        log.info("supervising %d workers", len(self.slots))
        try:
            while not self._stopping.is_set():
                self._loop.heartbeat()
                self._tend(time.monotonic())
                self._stopping.wait(self.tick_s)
        finally:
            status = self._stop_workers()
        return status

    def _tend(self, now: float) -> None:
        """Notice exits and plan restarts; start every worker that is due."""
        for slot in self.slots:
            if self._stopping.is_set():  # a worker told to stop with the supervisor
                return
            pid = slot.pid
            with self._lock:
                code = slot.reap()
                delay = slot.schedule_restart(now) if code is not None else 0.0
            if code is not None:
                self.metrics.up.labels(str(slot.index)).set(0)
                self.metrics.pid.remove(str(slot.index))
                log.warning("worker %d (pid %s) exited with %s: restart %d in %.1f s",
                            slot.index, pid, slot.last_exit, slot.starts, delay)  # fmt: skip
            elif slot.due(now):
                self._start(slot, now)

    def _start(self, slot: WorkerSlot, now: float) -> None:
        label = str(slot.index)
        with self._lock:
            try:
                slot.start(now)
            except OSError as exc:
                delay = slot.schedule_restart(now)
                log.error("worker %d cannot be started (%s): retry in %.1f s",
                          slot.index, exc, delay)  # fmt: skip
                return
        if slot.starts > 1:
            self.metrics.restarts.labels(label).inc()
        self.metrics.up.labels(label).set(1)
        self.metrics.pid.labels(label).set(slot.pid or 0)
        log.info("worker %d started: pid %s, metrics port %s%s", slot.index, slot.pid,
                 slot.port if slot.port is not None else "none",
                 f" (restart {slot.starts - 1})" if slot.starts > 1 else "")  # fmt: skip

    def _stop_workers(self) -> int:
        """SIGTERM to every running worker, then wait for all of them (see the module)."""
        running = [(slot, slot.process) for slot in self.slots if slot.process is not None]
        log.info("stopping %d workers", len(running))
        for _, process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout_s
        clean = True
        for slot, process in running:
            try:
                code = process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker %d (pid %d) did not stop within %.0f s: killing it",
                          slot.index, process.pid, self.stop_timeout_s)  # fmt: skip
                process.kill()
                code = process.wait()
            if code not in STOPPED_CLEANLY:
                clean = False
                log.warning("worker %d (pid %d) stopped with %s", slot.index, process.pid,
                            exit_description(code))  # fmt: skip
            with self._lock:
                slot.reap()
                slot.start_at = None
            self.metrics.up.labels(str(slot.index)).set(0)
        log.info("all workers stopped" if clean else "all workers stopped, not all cleanly")
        return 0 if clean else 1

    # -- what the HTTP threads ask -------------------------------------------------------

    def workers(self) -> list[WorkerState]:
        """Every worker as it is now."""
        now = time.monotonic()
        with self._lock:
            return [WorkerState.of(slot, now) for slot in self.slots]

    def live(self) -> tuple[bool, str]:
        ok, reason = self._loop.live()
        if not ok:
            return ok, reason
        if self._stopping.is_set():
            return False, "shutting down"
        waiting = [w for w in self.workers() if w.pid is None]
        notes = "; ".join(f"worker {w.index}: {w.waiting()}" for w in waiting)
        if any(w.start_in_s is None for w in waiting):
            return False, notes
        return True, notes or "ok"

    def ready(self) -> tuple[bool, str]:
        if self._stopping.is_set():
            return False, "shutting down"
        answers = list(self._probes.map(self._readiness, self.workers()))
        not_ready = "; ".join(f"worker {i}: {reason}" for i, reason in answers if reason)
        return not not_ready, not_ready or "ok"

    def _readiness(self, worker: WorkerState) -> tuple[int, str]:
        """(index, why the worker is not ready, or "" when it is)."""
        if worker.pid is None or worker.port is None:
            return worker.index, worker.waiting() if worker.pid is None else "no HTTP server"
        try:
            status, body = worker_get(worker.port, "/readyz", self.probe_timeout_s)
        except OSError as exc:
            return worker.index, f"not answering ({exc})"
        if status == 200:
            return worker.index, ""
        try:
            return worker.index, str(orjson.loads(body)["reason"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return worker.index, f"HTTP {status}"

    def exposition(self) -> bytes:
        """The supervisor's metrics, then every answering worker's, labelled by worker."""
        texts = self._probes.map(self._metrics_text, self.workers())
        merged = merge_expositions({str(i): text for i, text in texts if text is not None})
        return generate_latest(self.metrics.registry) + merged

    def _metrics_text(self, worker: WorkerState) -> tuple[int, str | None]:
        if worker.port is None:
            return worker.index, None
        try:
            status, body = worker_get(worker.port, "/metrics", self.probe_timeout_s)
        except OSError:
            return worker.index, None
        return worker.index, body.decode("utf-8", errors="replace") if status == 200 else None
