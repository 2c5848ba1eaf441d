"""Finding one event's decision and explanation in the output topics, by its event_id."""

from __future__ import annotations

from typing import Any

import orjson

from streams.kafka.reader import TopicReader
from streams.settings import Settings


def find_record(reader: TopicReader, topic: str, event_id: str) -> dict[str, Any] | None:
    """The newest record of ``topic`` whose event_id header is ``event_id`` (every output
    carries it, so other records are skipped without parsing)."""
    wanted = event_id.encode()
    found: tuple[int, bytes | None] | None = None
    for record in reader.records(topic, reader.latest_ranges(topic, None)):
        if record.header("event_id") == wanted and (
            found is None or record.timestamp_ms >= found[0]
        ):
            found = (record.timestamp_ms, record.value)
    return None if found is None else orjson.loads(found[1] or b"{}")


def find_event(
    settings: Settings, event_id: str, timeout: float
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The decision and the explanation of ``event_id`` (None where there is none)."""
    with TopicReader(settings, timeout=timeout) as reader:
        decision = find_record(reader, settings.topic_decisions, event_id)
        if decision is None:
            return None, None
        return decision, find_record(reader, settings.topic_explanations, event_id)
