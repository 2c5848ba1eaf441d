"""``scorer status``: the broker, the topics, consumer lag, model aliases and recent alerts."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from models.registry import Registry
from streams.kafka.clients import admin_client, require_broker
from streams.kafka.lag import group_lag
from streams.kafka.reader import json_objects, read_latest
from streams.settings import Settings, load_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "status",
        help="broker, topics, lag per consumer group, model aliases, recent alerts",
        description="One screen for an operator: where the broker is, how far each consumer "
        "group is behind on the events topic, which model versions serve, and the latest "
        "drift alerts.",
    )
    parser.add_argument("--alerts", type=int, default=5, help="recent alerts to show (5)")
    parser.set_defaults(func=_status)


def recent_alerts(settings: Settings, count: int) -> list[dict[str, Any]]:
    alerts = json_objects(read_latest(settings, settings.topic_drift_alerts, count))
    return sorted(alerts, key=lambda a: str(a.get("detected_at")))[-count:]


def _status(args: argparse.Namespace) -> int:
    settings = load_settings()
    require_broker(settings)
    console = Console()
    metadata = admin_client(settings).list_topics(timeout=10)
    console.print(
        f"[bold]broker[/] {settings.bootstrap_servers} (cluster {metadata.cluster_id}, "
        f"{len(metadata.brokers)} node(s))"
    )
    topics = Table("topic", "partitions", title="topics")
    for name in sorted(t for t in metadata.topics if not t.startswith("__")):
        topics.add_row(name, str(len(metadata.topics[name].partitions)))
    console.print(topics)
    if settings.topic_events in metadata.topics:
        lag = Table("consumer group", f"lag on {settings.topic_events}", title="consumer lag")
        for group, behind in sorted(group_lag(settings, settings.topic_events).items()):
            lag.add_row(group, f"{behind:,}")
        console.print(lag)
    registry = Registry(settings.registry)
    models = Table("model", "versions", "champion", "challenger", title=f"models ({registry.root})")
    for name in registry.names():
        aliases = registry.aliases(name)
        models.add_row(
            name,
            str(len(registry.versions(name))),
            str(aliases.get("champion", "-")),
            str(aliases.get("challenger", "-")),
        )
    console.print(models)
    if settings.topic_drift_alerts in metadata.topics:
        alerts = Table(
            "detected",
            "monitor",
            "status",
            "value / threshold",
            "retrain",
            title="recent drift alerts",
        )
        for alert in recent_alerts(settings, args.alerts):
            alerts.add_row(
                str(alert.get("detected_at")),
                str(alert.get("monitor_id")),
                str(alert.get("status")),
                f"{alert.get('value', 0):.1f} / {alert.get('threshold', 0):.1f}",
                "yes" if alert.get("retrain_recommended") else "no",
            )
        console.print(alerts)
    return 0
