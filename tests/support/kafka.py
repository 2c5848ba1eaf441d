"""Looking at a real broker from a test: names, group membership, offsets, reading to the end.

Offsets are read as an operator would, from the group's committed positions and the
partitions' watermarks; every wait polls what the broker says (:func:`wait_until`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient

from tests.support.waiting import Watched, wait_until


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class PartitionOffsets:
    """One partition: the group's committed offset (negative: none) and the watermarks."""

    committed: int
    low: int
    high: int

    @property
    def lag(self) -> int:
        """Records beyond the committed offset (all of them when nothing is committed)."""
        return self.high - (self.committed if self.committed >= 0 else self.low)


def group_offsets(bootstrap: str, group: str, topic: str) -> dict[int, PartitionOffsets]:
    """Committed offset of ``group`` and watermarks, for each partition of ``topic``."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        tps = [TopicPartition(topic, p) for p in partitions]
        found: list[TopicPartition] = []

        def answered() -> bool:
            try:
                found[:] = consumer.committed(tps, timeout=10)
            except KafkaException:  # the group's coordinator may not be known yet
                return False
            return True

        wait_until(answered, f"the committed offsets of {group}", timeout=60.0)
        committed = {tp.partition: tp.offset for tp in found}
        result = {}
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            result[p] = PartitionOffsets(committed.get(p, -1), low, high)
        return result
    finally:
        consumer.close()


def wait_for_members(
    bootstrap: str, group: str, count: int, timeout: float = 90.0, engines: Iterable[Watched] = ()
) -> None:
    """Until ``group`` is stable with ``count`` members, each assigned some partitions."""
    admin = AdminClient({"bootstrap.servers": bootstrap})

    def joined() -> bool:
        try:
            description = admin.describe_consumer_groups([group])[group].result(timeout=10)
        except KafkaException:  # the group or its coordinator is not there yet
            return False
        members = description.members
        return (
            len(members) == count
            and str(description.state).endswith("STABLE")
            and all(m.assignment is not None and m.assignment.topic_partitions for m in members)
        )

    wait_until(joined, f"{count} members with partitions in group {group}", timeout, engines)


def read_to_end(
    consumer: Consumer, timeout: float = 60.0, engines: Iterable[Watched] = ()
) -> list[Message]:
    """Consume until ``consumer`` is past the end of each partition assigned to it, the end
    being the high watermark when this is called: everything written before, nothing more.

    A bounded read instead of a fixed wait for "anything extra": call it once nothing more can
    be written (the writers stopped), and any duplicate already written is in the result.
    """
    assignment = consumer.assignment()
    assert assignment, "the consumer has no partitions assigned"
    ends = {
        (tp.topic, tp.partition): consumer.get_watermark_offsets(tp, timeout=10, cached=False)
        for tp in assignment
    }
    messages: list[Message] = []

    def past_the_end() -> bool:
        messages.extend(m for m in consumer.consume(10_000, timeout=0.5) if m.error() is None)
        for tp in consumer.position(assignment):
            low, high = ends[(tp.topic, tp.partition)]
            if high > low and tp.offset < high:  # a negative position: nothing read there yet
                return False
        return True

    wait_until(past_the_end, "the end of the assigned partitions", timeout, engines, every=0)
    return messages
