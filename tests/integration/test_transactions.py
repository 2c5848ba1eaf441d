"""The broker keeps Kafka's transactional semantics: aborted records stay invisible."""

from __future__ import annotations

import uuid
from collections.abc import Callable


def test_aborted_records_are_invisible_to_read_committed(
    topic_factory: Callable[..., str],
    producer_factory: Callable[..., object],
    consumer_factory: Callable[..., object],
    drain: Callable[..., list],
) -> None:
    topic = topic_factory(partitions=1)
    producer = producer_factory(**{"transactional.id": f"tx-{uuid.uuid4().hex}"})
    producer.init_transactions(30)
    for batch, commit in (("committed-1", True), ("aborted", False), ("committed-2", True)):
        producer.begin_transaction()
        for i in range(10):
            producer.produce(topic, value=f"{batch}-{i}".encode())
        producer.flush(30)  # the records reach the log before the transaction ends
        if commit:
            producer.commit_transaction(30)
        else:
            producer.abort_transaction(30)

    committed = consumer_factory(isolation_level="read_committed")
    committed.subscribe([topic])
    seen = [m.value().decode() for m in drain(committed, 30, timeout=10)]
    assert seen == [f"committed-{n}-{i}" for n in (1, 2) for i in range(10)]

    uncommitted = consumer_factory(isolation_level="read_uncommitted")
    uncommitted.subscribe([topic])
    everything = [m.value().decode() for m in drain(uncommitted, 30, timeout=10)]
    # The aborted records are in the log: only the isolation level hides them.
    assert sum(v.startswith("aborted") for v in everything) == 10
