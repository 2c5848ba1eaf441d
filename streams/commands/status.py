"""``scorer status``: the broker, the topics, consumer lag, model aliases and recent alerts."""

from __future__ import annotations

import argparse
from typing import Any

import orjson
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from rich.console import Console
from rich.table import Table

from models.registry import Registry
from schemas.errors import BrokerError
from streams.commands.tail import reader
from streams.localbroker import admin_client, answers_metadata
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


def group_lag(settings: Settings) -> dict[str, int]:
    """Records behind the end of the events topic, per consumer group that has offsets on it."""
    admin = admin_client(settings.bootstrap_servers, **settings.kafka_extra)
    topic = settings.topic_events
    consumer, partitions = reader(settings, topic)
    try:
        ends = {
            tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions
        }
    finally:
        consumer.close()
    groups = admin.list_consumer_groups().result(timeout=10)
    lag: dict[str, int] = {}
    for listing in groups.valid:
        request = [
            ConsumerGroupTopicPartitions(listing.group_id, [TopicPartition(topic, p) for p in ends])
        ]
        result = admin.list_consumer_group_offsets(request)[listing.group_id].result(timeout=10)
        committed = {tp.partition: tp.offset for tp in result.topic_partitions if tp.offset >= 0}
        if committed:
            lag[listing.group_id] = sum(end - committed.get(p, 0) for p, end in ends.items())
    return lag


def recent_alerts(settings: Settings, count: int) -> list[dict[str, Any]]:
    alerts = recent_records(settings, settings.topic_drift_alerts, count)
    return sorted(alerts, key=lambda a: str(a.get("detected_at")))[-count:]


def recent_records(settings: Settings, topic: str, count: int) -> list[dict[str, Any]]:
    """The last ``count`` committed records of each partition of ``topic``, decoded."""
    consumer, partitions = reader(settings, topic)
    records: list[dict[str, Any]] = []
    try:
        assignment, remaining = [], 0
        for tp in partitions:
            low, high = consumer.get_watermark_offsets(tp, timeout=10)
            start = max(low, high - count)
            remaining += high - start
            assignment.append(TopicPartition(tp.topic, tp.partition, start))
        consumer.assign(assignment)
        while remaining > 0:
            messages = consumer.consume(500, timeout=2)
            if not messages:
                break
            for message in messages:
                if message.error() is None:
                    remaining -= 1
                    records.append(orjson.loads(message.value() or b"{}"))
    finally:
        consumer.close()
    return records


def _status(args: argparse.Namespace) -> int:
    settings = load_settings()
    if not answers_metadata(settings.bootstrap_servers, timeout=5.0, **settings.kafka_extra):
        raise BrokerError(f"no broker answers at {settings.bootstrap_servers}")
    console = Console()
    metadata = admin_client(settings.bootstrap_servers, **settings.kafka_extra).list_topics(
        timeout=10
    )
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
        for group, behind in sorted(group_lag(settings).items()):
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
