"""The records an engine moves: what it consumed, and what it hands to a producer.

Both engines, the monitor owner and the benchmarks speak these types, so a decision or a
dead letter looks the same whoever built it:

- :class:`ConsumedRecord`: one consumed record, whatever client consumed it (:func:`consumed`
  builds it from a confluent-kafka message);
- :data:`Output`: one record to produce, ``(topic, key, value, headers)``;
- :func:`lineage_headers`: the headers naming the model and code behind an output;
- :func:`model_headers`: the headers naming the model behind a monitor's record.

Header names are those of ``schemas.contracts.RECORD_HEADERS``, which the AsyncAPI export
declares.
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

from models.scoring_model import ScoringModel
from schemas.contracts import LINEAGE_HEADERS, MONITOR_HEADERS, SCHEMA_VERSION
from schemas.version import SCORER_VERSION

Headers = list[tuple[str, str | bytes | None]]
Output = tuple[str, bytes | None, bytes, Headers]
"""One record to produce: topic, key, value, headers."""

EVENT_ID_HEADER: Final = LINEAGE_HEADERS[0]
"""The first lineage header, naming the input event; :func:`lineage_headers` gives the rest."""
_MODEL_LINEAGE: Final = LINEAGE_HEADERS[1:]


class ConsumedRecord(NamedTuple):
    """One consumed record, as any Kafka client delivers it (a tuple: cheap to build)."""

    value: bytes | None
    key: bytes | None
    topic: str
    partition: int
    offset: int
    timestamp_ms: int


def lineage_headers(model: ScoringModel) -> Headers:
    """Headers every output of ``model`` carries, after its event_id header."""
    ref = model.ref
    values = (ref["name"], str(ref["version"]), ref["sha256"], str(SCHEMA_VERSION), SCORER_VERSION)
    return [(name, value.encode()) for name, value in zip(_MODEL_LINEAGE, values, strict=True)]


def model_headers(name: str, version: object) -> Headers:
    """Headers of a monitor's record (drift alert, fairness report, monitor summary)."""
    values = (name, str(version))
    return [(header, value.encode()) for header, value in zip(MONITOR_HEADERS, values, strict=True)]


def consumed(message: Any) -> ConsumedRecord:
    """The engine-neutral view of a consumed confluent-kafka ``Message``."""
    return ConsumedRecord(
        message.value(),
        message.key(),
        str(message.topic()),
        int(message.partition() or 0),
        int(message.offset() or 0),
        message.timestamp()[1],
    )


def consumed_batch(messages: list[Any]) -> list[ConsumedRecord]:
    """:func:`consumed` of every message of a batch, each tuple built in C (a NamedTuple's
    own constructor is Python code, and the batch pays it per record)."""
    new = tuple.__new__
    return [
        new(
            ConsumedRecord,
            (m.value(), m.key(), m.topic(), m.partition(), m.offset(), m.timestamp()[1]),
        )
        for m in messages
    ]
