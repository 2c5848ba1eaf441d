"""A stand-in for a ``scorer serve`` worker, for supervisor tests without a broker.

Run as ``python -m tests.support.workers --metrics-port P --worker-index I --supervisor-pid S
MODE``, it is a worker as the supervisor sees one: it becomes worker I of S
(:func:`streams.engine.workers.become_worker`), serves ``/metrics``, ``/healthz`` and
``/readyz`` on P (``scorer_events_total{outcome="scored"}`` is I + 1) and exits 0 on SIGTERM.
MODE ``ready`` reports ready, ``unready`` reports "delivery failed: refused" and
``stubborn`` ignores SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from streams.engine.workers import WorkerLaunch, become_worker
from streams.observability import Health, ScorerMetrics, serve_http

ROOT = Path(__file__).resolve().parents[2]
"""The project's root: where ``python -m tests.support.workers`` is run."""


def standin_launch(modes: Callable[[int], str]) -> WorkerLaunch:
    """A launch of stand-in workers, worker ``i`` in mode ``modes(i)``."""

    def argv(index: int, port: int) -> list[str]:
        return [sys.executable, "-m", "tests.support.workers", "--metrics-port", str(port),
                "--worker-index", str(index), "--supervisor-pid", str(os.getpid()),
                modes(index)]  # fmt: skip

    return WorkerLaunch(argv=argv, environ={**os.environ, "PYTHONPATH": str(ROOT)})


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--metrics-port", type=int, required=True)
    parser.add_argument("--worker-index", type=int, required=True)
    parser.add_argument("--supervisor-pid", type=int, required=True)
    parser.add_argument("mode", choices=["ready", "unready", "stubborn"])
    args = parser.parse_args(argv)
    if not become_worker(args.worker_index, args.supervisor_pid):
        return 1
    metrics, health = ScorerMetrics(), Health()
    metrics.events.labels("scored").inc(args.worker_index + 1)
    if args.mode == "unready":
        health.set(False, "delivery failed: refused")
    else:
        health.set(True)
    serve_http(metrics, health, args.metrics_port)
    stopped = threading.Event()
    if args.mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    while not stopped.wait(0.1):
        health.heartbeat()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
