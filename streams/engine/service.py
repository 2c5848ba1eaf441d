"""What every long-running processor shares: a stop flag set from signal handlers, the
partition count of a topic that must exist, and reading confluent-kafka messages."""

from __future__ import annotations

import logging
import signal
import threading

from confluent_kafka import Consumer, KafkaError, Message
from confluent_kafka.admin import AdminClient

from schemas.errors import BrokerError
from streams.engine.processor import ConsumedRecord
from streams.observability import ScorerMetrics

log = logging.getLogger(__name__)


class Service:
    """A loop that runs until :meth:`stop` (safe from a signal handler)."""

    def __init__(self) -> None:
        self._stopping = threading.Event()

    def stop(self, *_: object) -> None:
        self._stopping.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)


def partition_count(client: Consumer | AdminClient, topic: str) -> int:
    """Partitions of ``topic``; BrokerError naming the fix when it does not exist."""
    found = client.list_topics(topic, timeout=30).topics.get(topic)
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


def consumed(message: Message) -> ConsumedRecord:
    """The engine-neutral view of a consumed confluent-kafka message."""
    return ConsumedRecord(
        message.value(),
        message.key(),
        str(message.topic()),
        int(message.partition() or 0),
        int(message.offset() or 0),
        message.timestamp()[1],
    )
