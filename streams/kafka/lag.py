"""How far each consumer group is behind the end of a topic."""

from __future__ import annotations

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition

from schemas.errors import BrokerError
from streams.kafka.clients import admin_client
from streams.kafka.reader import TopicReader
from streams.settings import Settings

ADMIN_TIMEOUT_S = 10.0


def group_lag(settings: Settings, topic: str) -> dict[str, int]:
    """Records behind the end of ``topic``, per consumer group that has offsets on it."""
    with TopicReader(settings) as reader:
        ends = {p: reader.watermarks(topic, p)[1] for p in reader.partitions(topic) or []}
    admin = admin_client(settings)
    lag: dict[str, int] = {}
    try:
        groups = admin.list_consumer_groups().result(timeout=ADMIN_TIMEOUT_S)
        for listing in groups.valid:
            request = [
                ConsumerGroupTopicPartitions(
                    listing.group_id, [TopicPartition(topic, p) for p in ends]
                )
            ]
            result = admin.list_consumer_group_offsets(request)[listing.group_id].result(
                timeout=ADMIN_TIMEOUT_S
            )
            committed = {
                tp.partition: tp.offset for tp in result.topic_partitions if tp.offset >= 0
            }
            if committed:
                lag[listing.group_id] = sum(end - committed.get(p, 0) for p, end in ends.items())
    except KafkaException as exc:
        raise BrokerError(f"cannot read consumer group offsets: {exc.args[0]}") from exc
    return lag
