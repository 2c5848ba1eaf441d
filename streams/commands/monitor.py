"""``scorer monitor``: merge the scorers' window summaries and joined labels, raise alerts."""

from __future__ import annotations

import argparse
import logging

from streams.kafka.clients import require_broker
from streams.observability import Health, ScorerMetrics, serve_http
from streams.outcomes.service import MonitorService
from streams.settings import load_settings

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "monitor",
        help="judge drift and fairness over every scorer's counts; join labels",
        description=(
            "The one owner of the monitors' verdicts. Reads the window summaries every "
            "`scorer serve` publishes and the labels joined to their decisions (outcomes); "
            "writes drift alerts (one per episode, then a resolution) and fairness reports. "
            "It runs one outcome-join instance in the same process unless --no-join is "
            "given (see `scorer join`). Its state is checkpointed to Kafka in transactions "
            "with the offsets it covers, so a restart continues where it stopped. Run one per "
            "deployment: a second one with the same group id takes over and fences the first. "
            "Stops cleanly on SIGTERM or Ctrl-C."
        ),
    )
    parser.add_argument("--group-id",
                        help="owner id and consumer group (SCORER_MONITOR_GROUP_ID, "
                             "default scorer-monitor)")  # fmt: skip
    parser.add_argument("--window-seconds", type=float,
                        help="event-time window (SCORER_MONITOR_WINDOW_SECONDS, 60); must "
                             "match the scorers'")  # fmt: skip
    parser.add_argument("--checkpoint-seconds", type=float,
                        help="how often state and offsets are committed "
                             "(SCORER_MONITOR_CHECKPOINT_SECONDS, 2)")  # fmt: skip
    parser.add_argument("--metrics-port", type=int,
                        help="port of /metrics and health (0 picks a free port, -1 disables; "
                             "default -1)")  # fmt: skip
    parser.add_argument("--registry", help="model registry directory (SCORER_REGISTRY)")
    parser.add_argument("--no-join", action="store_true",
                        help="run no outcome-join instance here (run `scorer join` "
                             "instances instead)")  # fmt: skip
    parser.set_defaults(func=_monitor)


def _monitor(args: argparse.Namespace) -> int:
    settings = load_settings(
        monitor_group_id=args.group_id, monitor_window_seconds=args.window_seconds,
        monitor_checkpoint_seconds=args.checkpoint_seconds, registry=args.registry,
    )  # fmt: skip
    require_broker(settings)  # one line, before the service's clients are made
    metrics, health = ScorerMetrics(), Health()
    if args.metrics_port is not None and args.metrics_port >= 0:
        server = serve_http(metrics, health, args.metrics_port)
        log.info("metrics and health on port %d", server.server_address[1])
    service = MonitorService(settings, metrics=metrics, health=health, join=not args.no_join)
    service.install_signal_handlers()
    service.run()
    return 0
