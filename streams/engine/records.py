"""The records an engine moves: what it consumed, and what it hands to a producer.

Both engines, the monitor owner and the benchmarks speak these types, so a decision or a
dead letter looks the same whoever built it:

- :class:`ConsumedRecord`: one consumed record, whatever client consumed it (:func:`consumed`
  builds it from a confluent-kafka message);
- :data:`Output`: one record to produce, ``(topic, key, value, headers)``;
- :func:`lineage_headers`: the headers naming the model and code behind an output.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from models.scoring_model import ScoringModel
from schemas.contracts import SCHEMA_VERSION
from schemas.version import SCORER_VERSION

Headers = list[tuple[str, str | bytes | None]]
Output = tuple[str, bytes | None, bytes, Headers]
"""One record to produce: topic, key, value, headers."""


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
    return [
        ("model_name", ref["name"].encode()),
        ("model_version", str(ref["version"]).encode()),
        ("model_sha256", ref["sha256"].encode()),
        ("schema_version", str(SCHEMA_VERSION).encode()),
        ("scorer_version", SCORER_VERSION.encode()),
    ]


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
