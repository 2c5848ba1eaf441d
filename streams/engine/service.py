"""What every long-running processor shares: a stop flag set from signal handlers, and the
partition count of a topic that must exist."""

from __future__ import annotations

import signal
import threading

from confluent_kafka import Consumer

from schemas.errors import BrokerError


class Service:
    """A loop that runs until :meth:`stop` (safe from a signal handler)."""

    def __init__(self) -> None:
        self._stopping = threading.Event()

    def stop(self, *_: object) -> None:
        self._stopping.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)


def partition_count(consumer: Consumer, topic: str) -> int:
    """Partitions of ``topic``; BrokerError naming the fix when it does not exist."""
    found = consumer.list_topics(topic, timeout=10).topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        raise BrokerError(f"topic {topic!r} is missing; run `scorer topics apply`")
    return len(found.partitions)
