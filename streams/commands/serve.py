"""``scorer serve``: run a scoring engine until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import logging

from streams.engine.base import Engine
from streams.engine.native import NativeEngine
from streams.kafka.clients import require_broker
from streams.observability import Health, ScorerMetrics, serve_http
from streams.settings import load_settings

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
            "faust-streaming worker (no --exactly-once)."
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
    parser.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    metrics_port = args.metrics_port
    settings = load_settings(
        model=args.model, group_id=args.group_id, max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms, registry=args.registry, exactly_once=args.exactly_once,
        metrics_port=metrics_port if metrics_port is None or metrics_port >= 0 else None,
    )  # fmt: skip
    require_broker(settings)  # one line, before any client of the engine is made
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
