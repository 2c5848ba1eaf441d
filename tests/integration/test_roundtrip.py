"""Records make the round trip through the real broker with both Python clients."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


def test_confluent_kafka_round_trip(
    topic_factory: Callable[..., str],
    producer_factory: Callable[..., object],
    consumer_factory: Callable[..., object],
    drain: Callable[..., list],
) -> None:
    topic = topic_factory(partitions=3)
    producer = producer_factory()
    sent = {f"key-{i}".encode(): f"value-{i}".encode() for i in range(500)}
    for key, value in sent.items():
        producer.produce(topic, value=value, key=key, headers=[("event_id", key)])
    assert producer.flush(30) == 0

    consumer = consumer_factory()
    consumer.subscribe([topic])
    received = drain(consumer, len(sent))
    assert {m.key(): m.value() for m in received} == sent
    assert all(dict(m.headers())["event_id"] == m.key() for m in received)
    by_key_partition = {m.key(): m.partition() for m in received}
    assert len(set(by_key_partition.values())) == 3  # keys spread over every partition


def test_aiokafka_round_trip(kafka_bootstrap: str, topic_factory: Callable[..., str]) -> None:
    topic = topic_factory(partitions=2)

    async def run() -> list[tuple[bytes, bytes]]:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            for i in range(100):
                await producer.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode())
            await producer.flush()
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=kafka_bootstrap, group_id=f"aio-{topic}",
            auto_offset_reset="earliest", enable_auto_commit=False,
        )  # fmt: skip
        await consumer.start()
        received: list[tuple[bytes, bytes]] = []
        try:
            while len(received) < 100:
                batches = await asyncio.wait_for(consumer.getmany(timeout_ms=500), timeout=30)
                for records in batches.values():
                    received.extend((r.key, r.value) for r in records)
        finally:
            await consumer.stop()
        return received

    received = asyncio.run(run())
    assert sorted(received) == sorted((f"k{i}".encode(), f"v{i}".encode()) for i in range(100))
