"""``scorer broker up | down | status``: the local Apache Kafka broker."""

from __future__ import annotations

import argparse

from schemas.errors import BrokerError
from streams.kafka.clients import admin_client, answers_metadata
from streams.kafka.localbroker import LocalBroker
from streams.settings import Settings, load_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "broker",
        help="start, stop or inspect the local Apache Kafka broker",
        description=(
            "Manage the local single-node Apache Kafka broker (KRaft, 127.0.0.1 only; data, "
            "pid file and log under var/kafka). When KAFKA_BOOTSTRAP_SERVERS names a cluster, "
            "no local broker is started or stopped; `status` then describes that cluster."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    up = actions.add_parser("up", help="format storage if needed, start, wait until it answers")
    up.add_argument("--timeout", type=float, default=90.0, help="seconds to wait (default 90)")
    up.set_defaults(func=_up)
    down = actions.add_parser("down", help="stop the local broker cleanly")
    down.set_defaults(func=_down)
    status = actions.add_parser("status", help="version, address and topics")
    status.set_defaults(func=_status)


def local_broker(settings: Settings) -> LocalBroker:
    return LocalBroker(port=settings.broker_port, home=settings.broker_home)


def _up(args: argparse.Namespace) -> int:
    settings = load_settings()
    if settings.external_cluster:
        print(f"KAFKA_BOOTSTRAP_SERVERS={settings.bootstrap_servers}: using that cluster, "
              "no local broker started")  # fmt: skip
        return 0
    status = local_broker(settings).up(timeout=args.timeout)
    print(f"Apache Kafka {status.version} is up at {status.address} (pid {status.pid})")
    return 0


def _down(args: argparse.Namespace) -> int:
    settings = load_settings()
    if settings.external_cluster:
        print("KAFKA_BOOTSTRAP_SERVERS names an external cluster: nothing to stop")
        return 0
    broker = local_broker(settings)
    print("local broker stopped" if broker.down() else "no local broker was running")
    return 0


def _status(args: argparse.Namespace) -> int:
    settings = load_settings()
    if settings.external_cluster:
        address, version, pid = settings.bootstrap_servers, "external cluster", None
    else:
        state = local_broker(settings).status()
        address, version, pid = state.address, f"Apache Kafka {state.version}", state.pid
    if not answers_metadata(settings, timeout=5.0):
        where = f"pid {pid} running but " if pid else ""
        raise BrokerError(f"no broker answers at {address} ({where}not reachable)")
    metadata = admin_client(settings).list_topics(timeout=10)
    topics = sorted(t for t in metadata.topics if not t.startswith("__"))
    print(f"broker:  {version} at {address}" + (f" (pid {pid})" if pid else ""))
    print(f"cluster: {metadata.cluster_id}, {len(metadata.brokers)} node(s)")
    print(f"topics:  {len(topics)}")
    for name in topics:
        print(f"  {name:<24} {len(metadata.topics[name].partitions)} partition(s)")
    return 0
