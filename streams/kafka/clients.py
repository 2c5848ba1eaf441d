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

from typing import Any, Final

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from schemas.errors import BrokerError
from streams.settings import Settings

LIBRDKAFKA_WARNINGS: Final = 4
"""librdkafka's syslog level for warnings: long-running processes log these."""
LIBRDKAFKA_SILENT: Final = 0
"""No librdkafka log lines at all: commands report problems in one line of their own."""
READER_GROUP: Final = "scorer-reader"
"""librdkafka requires a group id even for a consumer that never joins its group."""


def group_consumer(settings: Settings, group_id: str, **overrides: Any) -> Consumer:
    """A group member with manual commits, reading committed records from the earliest."""
    return Consumer(
        settings.kafka_config(
            **{
                "group.id": group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "log_level": LIBRDKAFKA_WARNINGS,
                **overrides,
            }
        )
    )


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


def producer(settings: Settings, **overrides: Any) -> Producer:
    """An idempotent producer that waits for every in-sync replica (``acks=all``)."""
    return Producer(
        settings.kafka_config(
            **{
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,
                "log_level": LIBRDKAFKA_WARNINGS,
                **overrides,
            }
        )
    )


def transactional_producer(settings: Settings, transactional_id: str, **overrides: Any) -> Producer:
    """An idempotent producer with a transactional id; call ``init_transactions`` first."""
    return producer(settings, **{"transactional.id": transactional_id, **overrides})


def admin_client(settings: Settings, **overrides: Any) -> AdminClient:
    """An AdminClient that stays quiet when the broker is down (no reconnect log flood)."""
    return AdminClient(settings.kafka_config(**{"log_level": LIBRDKAFKA_SILENT, **overrides}))


def answers_metadata(settings: Settings, timeout: float = 2.0) -> bool:
    """True when a broker of ``settings`` answers a metadata request within ``timeout``."""
    try:
        admin_client(settings).list_topics(timeout=timeout)
    except Exception:  # KafkaException on timeout; any failure means "does not answer"
        return False
    return True


def require_broker(settings: Settings, timeout: float = 5.0, hint: str = "") -> None:
    """:class:`BrokerError` in one line when no broker of ``settings`` answers."""
    if not answers_metadata(settings, timeout):
        raise BrokerError(f"no broker answers at {settings.bootstrap_servers}{hint}")
