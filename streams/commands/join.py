"""``scorer join``: one more outcome-join instance; Kafka spreads the join's partitions."""

from __future__ import annotations

import argparse
import logging

from streams.kafka.clients import require_broker
from streams.observability import Health, ScorerMetrics, serve_http
from streams.outcomes.join_service import JoinService
from streams.settings import load_settings

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "join",
        help="join feedback labels to their decisions (one more outcome-join instance)",
        description=(
            "A member of the outcome join's consumer group. It routes decisions and labels "
            "by event_id to the join's partitions and joins the partitions Kafka assigns it, "
            "with state in RocksDB under --state-dir and a changelog in Kafka; joined "
            "outcomes go to the outcomes topic the monitor owner reads. A label waits for "
            "its decision up to SCORER_FEEDBACK_WAIT_SECONDS of event time (300) and joins "
            "within SCORER_FEEDBACK_RETENTION_SECONDS of the event (30 days). `scorer "
            "monitor` runs one instance itself; start more to spread the join over "
            "processes or machines, each with its own state directory. Exactly-once; stops "
            "cleanly on SIGTERM or Ctrl-C."
        ),
    )
    parser.add_argument("--group-id",
                        help="the join's consumer group (SCORER_JOIN_GROUP_ID, default "
                             "scorer-join)")  # fmt: skip
    parser.add_argument("--state-dir",
                        help="this instance's RocksDB stores (SCORER_JOIN_STATE_DIR, default "
                             "var/join); one per instance")  # fmt: skip
    parser.add_argument("--wait-seconds", type=float,
                        help="event time a label waits for its decision "
                             "(SCORER_FEEDBACK_WAIT_SECONDS, 300)")  # fmt: skip
    parser.add_argument("--metrics-port", type=int,
                        help="port of /metrics and health (0 picks a free port; default "
                             "none)")  # fmt: skip
    parser.set_defaults(func=_join)


def _join(args: argparse.Namespace) -> int:
    settings = load_settings(
        join_group_id=args.group_id, join_state_dir=args.state_dir,
        feedback_wait_seconds=args.wait_seconds,
    )  # fmt: skip
    require_broker(settings)  # one line, before the service's clients are made
    metrics, health = ScorerMetrics(), Health()
    if args.metrics_port is not None and args.metrics_port >= 0:
        server = serve_http(metrics, health, args.metrics_port)
        log.info("metrics and health on port %d", server.server_address[1])
    service = JoinService(settings, metrics=metrics, health=health)
    service.install_signal_handlers()
    service.run()
    return 0
