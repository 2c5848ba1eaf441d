"""``scorer serve``: run a scoring engine until SIGTERM or Ctrl-C; with ``--workers N``, a
supervisor of N of them (streams.engine.supervisor)."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from schemas.errors import ConfigError
from streams.engine.base import Engine
from streams.engine.native import NativeEngine
from streams.engine.supervisor import Supervisor
from streams.engine.workers import WorkerLaunch, become_worker, usable_cores
from streams.kafka.clients import require_broker
from streams.observability import Health, ScorerMetrics, serve_http
from streams.settings import Settings, load_settings

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="score the events topic with the champion model",
        description=(
            "Consume events in micro-batches, score them with the model's champion version "
            "(and its challenger in shadow, if set), and publish decisions, explanations and "
            "dead letters. Promotions are picked up at batch boundaries without a restart. "
            "Offsets are committed only after every output is acknowledged (at-least-once), "
            "or with the outputs in one transaction per batch (--exactly-once). "
            "Stops cleanly on SIGTERM or Ctrl-C. --engine faust runs the same scoring in a "
            "faust-streaming worker (no --exactly-once). --workers N runs N engines in the "
            "group as one service, restarted when they fail."
        ),
    )
    parser.add_argument("--engine", choices=["native", "faust"], default="native",
                        help="stream engine: native (confluent-kafka micro-batches, the "
                             "default) or faust (a faust-streaming worker; at-least-once "
                             "only); both score with the same core")  # fmt: skip
    parser.add_argument("--model", help="registered model name (SCORER_MODEL, default demo)")
    parser.add_argument("--exactly-once", action="store_true", default=None,
                        help="transactional consume-transform-produce")  # fmt: skip
    parser.add_argument("--group-id", help="consumer group (SCORER_GROUP_ID, default scorer)")
    parser.add_argument("--max-batch", type=int, help="events per batch (SCORER_MAX_BATCH, 1000)")
    parser.add_argument("--max-wait-ms", type=int,
                        help="longest wait to fill a batch (SCORER_MAX_WAIT_MS, 10)")  # fmt: skip
    parser.add_argument("--metrics-port", type=int,
                        help="port of /metrics, /healthz, /readyz (SCORER_METRICS_PORT, 9464; "
                             "0 picks a free port, -1 disables)")  # fmt: skip
    parser.add_argument("--registry", help="model registry directory (SCORER_REGISTRY)")
    parser.add_argument("--workers", type=worker_count, default=1, metavar="N|auto",
                        help="N engines in the consumer group under a supervisor that restarts "
                             "them and serves one /metrics, /healthz, /readyz for all (auto: one "
                             "per usable core; default 1: no supervisor)")  # fmt: skip
    parser.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--supervisor-pid", type=int, help=argparse.SUPPRESS)
    parser.set_defaults(func=_serve)


FORWARDED = {
    "engine": "--engine", "model": "--model", "group_id": "--group-id",
    "max_batch": "--max-batch", "max_wait_ms": "--max-wait-ms", "registry": "--registry",
}  # fmt: skip
"""The options a supervisor passes on to each worker as it got them (and --exactly-once)."""


def worker_count(text: str) -> int:
    """``--workers``: a whole number of 1 or more, or ``auto`` (the usable cores)."""
    if text.strip().lower() == "auto":
        return usable_cores()
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of workers (1 or more) or auto, got {text!r}"
        )
    return count


def worker_argv(args: argparse.Namespace, index: int, port: int, supervisor_pid: int) -> list[str]:
    """The command line of worker ``index``: ``scorer serve --workers 1`` with the
    supervisor's options and the worker's own metrics port."""
    argv = [sys.executable, "-m", "streams.cli", *(["-v"] if args.verbose else []), "serve",
            "--workers", "1", "--worker-index", str(index),
            "--supervisor-pid", str(supervisor_pid), "--metrics-port", str(port)]  # fmt: skip
    for dest, flag in FORWARDED.items():
        if getattr(args, dest) is not None:
            argv += [flag, str(getattr(args, dest))]
    if args.exactly_once:
        argv.append("--exactly-once")
    return argv


def _serve(args: argparse.Namespace) -> int:
    if args.supervisor_pid is not None and not become_worker(
        args.worker_index or 0, args.supervisor_pid
    ):
        log.warning("supervisor %d is gone: not starting", args.supervisor_pid)
        return 1
    metrics_port = args.metrics_port
    settings = load_settings(
        model=args.model, group_id=args.group_id, max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms, registry=args.registry, exactly_once=args.exactly_once,
        metrics_port=metrics_port if metrics_port is None or metrics_port >= 0 else None,
    )  # fmt: skip
    if args.workers > 1 and args.engine == "faust" and settings.exactly_once:
        raise ConfigError("--engine faust does not support --exactly-once; use --engine native")
    require_broker(settings)  # one line, before any client of the engine is made
    if args.workers > 1:
        return _supervise(args, settings)
    log.info("kafka: %s", settings.redacted_kafka_config())
    metrics, health = ScorerMetrics(), Health()
    if metrics_port is None or metrics_port >= 0:
        server = serve_http(metrics, health, settings.metrics_port)
        log.info("metrics and health on port %d", server.server_address[1])
    engine: Engine
    if args.engine == "faust":
        from streams.engine.faust_engine import FaustEngine  # faust loads only when asked

        engine = FaustEngine(
            settings, model_name=settings.model, exactly_once=settings.exactly_once,
            metrics=metrics, health=health,
        )  # fmt: skip
    else:
        native = NativeEngine(
            settings, model_name=settings.model, exactly_once=settings.exactly_once,
            metrics=metrics, health=health,
        )  # fmt: skip
        native.install_signal_handlers()  # a Faust worker installs its own
        engine = native
    return engine.run() or 0


def _supervise(args: argparse.Namespace, settings: Settings) -> int:
    """Become the supervisor of ``args.workers`` workers (each checks the rest itself)."""
    http = args.metrics_port is None or args.metrics_port >= 0
    supervisor_pid = os.getpid()
    launch = WorkerLaunch(
        argv=lambda index, port: worker_argv(args, index, port, supervisor_pid),
        environ=dict(os.environ),
        instance_id=settings.kafka_extra.get("group.instance.id"),
        http=http,
    )
    supervisor = Supervisor(args.workers, launch)
    if http:
        server = serve_http(supervisor, supervisor, settings.metrics_port)
        log.info("metrics and health on port %d (%d workers)", server.server_address[1],
                 args.workers)  # fmt: skip
    supervisor.install_signal_handlers()
    return supervisor.run()
