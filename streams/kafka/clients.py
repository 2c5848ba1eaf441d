"""Every Kafka client the scorer makes is configured here, from one :class:`Settings`.

Presets, one per role:

- :func:`group_consumer`: a member of a consumer group that commits its offsets by hand and
  reads only committed records (the engines, the monitor owner, the learner);
- :func:`reader_consumer`: a consumer that assigns partitions itself and never joins a group
  or commits (bounded reads, the model watcher, the live demo view);
- :func:`producer`: idempotent, ``acks=all``; :func:`transactional_producer` adds a
  transactional id for consume-transform-produce;
- :func:`admin_client`: metadata and topic administration.

Every preset is quiet: librdkafka's own log lines are kept to errors, and clients that must
tell "no broker" apart from other failures collect their errors through ``error_cb`` instead
of printing them. Settings from ``KAFKA_*`` variables pass through (SASL, TLS); the overrides
a caller gives win over the preset.
"""

from __future__ import annotations

import time
from typing import Any, Final

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, ClusterMetadata

from schemas.errors import BrokerError
from streams.settings import Settings

LIBRDKAFKA_WARNINGS: Final = 4
"""librdkafka's syslog level for warnings: long-running processes log these."""
LIBRDKAFKA_SILENT: Final = 0
"""No librdkafka log lines at all: commands report problems in one line of their own."""
READER_GROUP: Final = "scorer-reader"
"""librdkafka requires a group id even for a consumer that never joins its group."""
UNREACHABLE: Final = frozenset(
    {KafkaError._ALL_BROKERS_DOWN, KafkaError._AUTHENTICATION, KafkaError._RESOLVE, KafkaError._SSL}
)
"""Errors (reported through ``error_cb``) after which waiting longer for a broker is useless."""
_FIRST_SLICE_S: Final = 0.05


def group_consumer_config(settings: Settings, group_id: str, **overrides: Any) -> dict[str, Any]:
    """The librdkafka settings of :func:`group_consumer` (the benchmarks reuse them)."""
    return settings.kafka_config(
        **{
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "log_level": LIBRDKAFKA_WARNINGS,
            **overrides,
        }
    )


def group_consumer(settings: Settings, group_id: str, **overrides: Any) -> Consumer:
    """A group member with manual commits, reading committed records from the earliest."""
    return Consumer(group_consumer_config(settings, group_id, **overrides))


def reader_consumer(settings: Settings, **overrides: Any) -> Consumer:
    """A consumer for assigned partitions only: it never joins its group, never commits."""
    return Consumer(
        settings.kafka_config(
            **{
                "group.id": READER_GROUP,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "isolation.level": "read_committed",
                "log_level": LIBRDKAFKA_SILENT,
                **overrides,
            }
        )
    )


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """The librdkafka settings of :func:`producer` (the benchmarks reuse them)."""
    return settings.kafka_config(
        **{
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "log_level": LIBRDKAFKA_WARNINGS,
            **overrides,
        }
    )


def producer(settings: Settings, **overrides: Any) -> Producer:
    """An idempotent producer that waits for every in-sync replica (``acks=all``)."""
    return Producer(producer_config(settings, **overrides))


def transactional_producer(settings: Settings, transactional_id: str, **overrides: Any) -> Producer:
    """An idempotent producer with a transactional id; call ``init_transactions`` first."""
    return producer(settings, **{"transactional.id": transactional_id, **overrides})


def admin_client(settings: Settings, **overrides: Any) -> AdminClient:
    """An AdminClient that stays quiet when the broker is down (no reconnect log flood)."""
    return AdminClient(settings.kafka_config(**{"log_level": LIBRDKAFKA_SILENT, **overrides}))


def first_metadata(
    client: Consumer | AdminClient,
    errors: list[KafkaError],
    timeout: float,
    topic: str | None = None,
) -> ClusterMetadata | None:
    """The cluster's metadata (``topic``'s only, when given) from ``client``, whose
    ``error_cb`` appends to ``errors``; None when no broker answers within ``timeout``, or as
    soon as librdkafka reports that none can be reached (:data:`UNREACHABLE`).

    The request is retried in growing slices: a refused connection is known within the
    first, and a far-away broker still gets one long wait.
    """
    deadline = time.monotonic() + timeout
    slice_s = _FIRST_SLICE_S
    while True:
        try:
            left = max(0.01, min(slice_s, deadline - time.monotonic()))
            return client.list_topics(topic, timeout=left)
        except KafkaException:  # not answered within the slice
            client.poll(0)  # serves error_cb
            if any(e.code() in UNREACHABLE for e in errors) or time.monotonic() >= deadline:
                return None
            slice_s *= 2


def answers_metadata(settings: Settings, timeout: float = 2.0) -> bool:
    """True when a broker of ``settings`` answers a metadata request within ``timeout``;
    False as soon as it is known that none can be reached."""
    errors: list[KafkaError] = []
    try:
        admin = admin_client(settings, error_cb=errors.append)
    except KafkaException:  # settings librdkafka rejects: no broker can answer them either
        return False
    return first_metadata(admin, errors, timeout) is not None


def require_broker(settings: Settings, timeout: float = 5.0, hint: str = "") -> None:
    """:class:`BrokerError` in one line when no broker of ``settings`` answers."""
    if not answers_metadata(settings, timeout):
        raise BrokerError(f"no broker answers at {settings.bootstrap_servers}{hint}")
