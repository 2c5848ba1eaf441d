"""The native engine's pure parts: the offsets a batch commits and the clients it asks for.

The engine's loop against a broker is covered end to end in tests/integration; here are the
arithmetic and the settings it is made of, with no broker.
"""

from __future__ import annotations

import pytest
from confluent_kafka import OFFSET_BEGINNING, OFFSET_INVALID, KafkaException, TopicPartition

from streams.engine.delivery import DeliveryLedger
from streams.engine.native import (
    MAX_OUTPUT_BYTES,
    PRODUCER_THROUGHPUT,
    commit_positions,
    consumer_overrides,
    last_offsets,
    partition_lag,
    rewind_offset,
    transaction_offsets,
    transactional_id,
)
from streams.engine.records import ConsumedRecord
from streams.kafka import clients
from streams.settings import Settings

UNREACHABLE = Settings(bootstrap_servers="127.0.0.1:1")


def record(topic: str, partition: int, offset: int) -> ConsumedRecord:
    return ConsumedRecord(b"{}", None, topic, partition, offset, 1_700_000_000_000 + offset)


def coordinates(partitions: list[TopicPartition]) -> list[tuple[str, int, int]]:
    return [(tp.topic, tp.partition, tp.offset) for tp in partitions]


BATCH = [
    record("events", 1, 7),
    record("events", 0, 10),
    record("events", 0, 11),
    record("events", 1, 8),
    record("events", 0, 12),
]
"""One consumed batch: two partitions interleaved, as a consumer hands them over."""


def test_a_batch_remembers_the_last_offset_of_each_partition() -> None:
    assert last_offsets(BATCH) == {("events", 1): 8, ("events", 0): 12}
    assert last_offsets([]) == {}


def test_both_delivery_modes_commit_the_offset_after_each_partitions_last_record() -> None:
    """At-least-once releases through the delivery ledger, exactly-once sends the offsets
    in the transaction: either way the next record to read, last + 1, per partition."""
    last = last_offsets(BATCH)
    ledger = DeliveryLedger()
    batch = ledger.open(last, outputs=2)
    batch.acknowledge(None)
    batch.acknowledge(None)
    released = ledger.release()

    assert released == {("events", 1): 9, ("events", 0): 13}
    assert sorted(coordinates(transaction_offsets(last))) == [("events", 0, 13), ("events", 1, 9)]


def test_only_partitions_still_assigned_are_committed() -> None:
    released = {("events", 0): 13, ("events", 1): 9, ("events", 2): 4}

    assert coordinates(commit_positions(released, {("events", 1), ("events", 2)})) == [
        ("events", 1, 9),
        ("events", 2, 4),
    ]
    assert commit_positions(released, set()) == []  # everything revoked: nothing to commit
    assert commit_positions({}, {("events", 0)}) == []


@pytest.mark.parametrize(
    ("committed", "resumes_at"),
    [(42, 42), (0, 0), (OFFSET_INVALID, OFFSET_BEGINNING)],
)
def test_a_rewind_resumes_at_the_committed_offset_or_the_beginning(
    committed: int, resumes_at: int
) -> None:
    assert rewind_offset(committed) == resumes_at


@pytest.mark.parametrize(
    ("position", "high", "lag"),
    [
        (90, 100, 10),
        (100, 100, 0),
        (105, 100, 0),  # a cached high watermark older than the position: never negative
        (OFFSET_INVALID, 100, None),  # nothing consumed yet
        (90, OFFSET_INVALID, None),  # no watermark fetched yet
    ],
)
def test_lag_is_the_distance_to_the_high_watermark_once_both_are_known(
    position: int, high: int, lag: int | None
) -> None:
    assert partition_lag(position, high) == lag


def test_the_consumer_stores_offsets_by_hand_and_fetches_within_the_batch_wait() -> None:
    assert consumer_overrides(Settings(max_wait_ms=20)) == {
        "enable.auto.offset.store": False,
        "fetch.wait.max.ms": 20,
    }
    assert consumer_overrides(Settings(max_wait_ms=0))["fetch.wait.max.ms"] == 1


def test_a_static_member_keeps_its_transactional_id_across_restarts() -> None:
    static = Settings(group_id="scorer", kafka_extra={"group.instance.id": "scorer-0"})
    assert transactional_id(static) == transactional_id(static) == "scorer-scorer-0"

    dynamic = Settings(group_id="scorer")
    first, second = transactional_id(dynamic), transactional_id(dynamic)
    assert first != second  # two processes never share one without a static identity
    for tid in (first, second):
        prefix, suffix = tid.rsplit("-", 1)
        assert prefix == "scorer" and len(suffix) == 12 and int(suffix, 16) >= 0


def test_librdkafka_accepts_the_clients_the_engine_asks_for() -> None:
    """The presets plus the engine's overrides make valid clients: librdkafka checks a
    configuration when the client is built (no broker needed) and raises on a bad one."""
    settings = Settings(bootstrap_servers="127.0.0.1:1", kafka_extra={"group.instance.id": "s-0"})
    consumer = clients.group_consumer(settings, settings.group_id, **consumer_overrides(settings))
    consumer.close()
    clients.producer(settings, **PRODUCER_THROUGHPUT)
    clients.transactional_producer(settings, transactional_id(settings), **PRODUCER_THROUGHPUT)
    assert PRODUCER_THROUGHPUT["message.max.bytes"] == MAX_OUTPUT_BYTES  # the largest output

    with pytest.raises(KafkaException, match=r"message\.max\.bytes"):  # the check has teeth
        clients.producer(UNREACHABLE, **{**PRODUCER_THROUGHPUT, "message.max.bytes": 2**31})
