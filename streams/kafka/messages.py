"""Reading confluent-kafka messages: which ones are records, how many partitions a topic
has, and which offsets to commit after reading. (The engine-neutral view of a message is
:func:`streams.engine.records.consumed`.)"""

from __future__ import annotations

import logging

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient

from schemas.errors import BrokerError
from streams.observability import ScorerMetrics

log = logging.getLogger(__name__)


def partition_count(client: Consumer | AdminClient, topic: str) -> int:
    """Partitions of ``topic``; BrokerError naming the fix when it does not exist, and in
    one line when the broker does not answer."""
    try:
        found = client.list_topics(topic, timeout=30).topics.get(topic)
    except KafkaException as exc:
        error = exc.args[0] if exc.args else exc
        reason = error.str() if isinstance(error, KafkaError) else str(error)
        raise BrokerError(f"cannot read the partitions of {topic!r}: {reason}") from exc
    if found is None or found.error is not None or not found.partitions:
        raise BrokerError(f"topic {topic!r} is missing; run `scorer topics apply`")
    return len(found.partitions)


def usable(message: Message, metrics: ScorerMetrics | None = None) -> bool:
    """True for a record; an error (other than reaching a partition's end) is logged and
    counted."""
    error = message.error()
    if error is None:
        return True
    if error.code() != KafkaError._PARTITION_EOF:
        log.warning("consume error: %s", error)
        if metrics is not None:
            metrics.errors.labels("consume").inc()
    return False


def committable(consumer: Consumer, read: dict[tuple[str, int], int]) -> dict[tuple[str, int], int]:
    """The offsets to commit for the partitions in ``read`` (the next offset after the last
    record handled there): the consumer's position where it is further on. A read_committed
    consumer skips the control record that ends a transaction, which takes an offset too, so
    committing the position leaves no lag behind a producer's transactions."""
    if not read:
        return {}
    positions = consumer.position([TopicPartition(topic, p) for topic, p in read])
    return {
        (tp.topic, tp.partition): max(read[(tp.topic, tp.partition)], tp.offset) for tp in positions
    }
