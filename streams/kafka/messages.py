"""Reading confluent-kafka messages: which ones are records, and how many partitions a topic
has. (The engine-neutral view of a message is :func:`streams.engine.records.consumed`.)"""

from __future__ import annotations

import logging

from confluent_kafka import Consumer, KafkaError, KafkaException, Message
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
