"""Publishing registry changes as ModelEvent records on the ``model-events`` topic.

A promotion or rollback is first a change in the registry; the event tells running scorers
about it (they hot-swap at a batch boundary). Publishing is best effort from the command
line's point of view: when the broker cannot be reached the caller gets a one-line reason
instead of an exception, and the registry change stands.
"""

from __future__ import annotations

import time
from typing import Any, Final

import orjson
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from schemas.contracts import MODEL_EVENT_HEADERS, ModelEvent
from streams.kafka import clients
from streams.settings import Settings

_PROBE_SLICE_S: Final = 0.25


def event_headers(event: ModelEvent) -> list[tuple[str, str | bytes | None]]:
    """Lineage headers of a ModelEvent record (model_version only when the event has one)."""
    values = (event.model_name, event.version, event.sha256, event.schema_version)
    return [
        (name, str(value).encode())
        for name, value in zip(MODEL_EVENT_HEADERS, values, strict=True)
        if value is not None
    ]


def publish_model_event(settings: Settings, event: ModelEvent, timeout: float = 5.0) -> str | None:
    """Produce ``event`` keyed by model name and wait for the broker's acknowledgement.

    Returns None once the record is acknowledged, otherwise a one-line reason: the broker
    is unreachable, the topic does not exist, or delivery failed or timed out.
    """
    topic = settings.topic_model_events
    deadline = time.monotonic() + timeout
    errors: list[KafkaError] = []
    quiet: dict[str, Any] = {"log_level": 0, "error_cb": errors.append}
    try:
        admin = clients.admin_client(settings, **quiet)
        problem = _probe(admin, topic, deadline, errors, settings.bootstrap_servers)
        if problem is not None:
            return problem
        remaining_ms = max(1, int((deadline - time.monotonic()) * 1000))
        producer = clients.producer(settings, **quiet, **{"message.timeout.ms": remaining_ms})
        outcome: list[KafkaError | None] = []
        producer.produce(
            topic,
            key=event.model_name.encode(),
            value=orjson.dumps(event.model_dump(mode="json")),
            headers=event_headers(event),
            on_delivery=lambda err, _msg: outcome.append(err),
        )
        producer.flush(max(0.1, deadline - time.monotonic()))
    except (KafkaException, BufferError, ValueError) as exc:
        return f"cannot produce to {topic!r}: {_first_line(exc)}"
    if not outcome:
        producer.purge()
        producer.flush(0)
        return f"delivery to {topic!r} not acknowledged within {timeout:g}s"
    if outcome[0] is not None:
        return f"delivery to {topic!r} failed: {outcome[0].str()}"
    return None


def _probe(
    admin: AdminClient, topic: str, deadline: float, errors: list[KafkaError], bootstrap: str
) -> str | None:
    """Why ``topic`` cannot be written to now, or None; returns early when brokers are down."""
    while True:
        slice_s = min(_PROBE_SLICE_S, max(0.01, deadline - time.monotonic()))
        try:
            metadata = admin.list_topics(timeout=slice_s)
        except KafkaException as exc:
            admin.poll(0)
            fatal = [e for e in errors if e.code() in clients.UNREACHABLE]
            if fatal or time.monotonic() >= deadline:
                detail = _detail(errors) or f"{bootstrap}: {_first_line(exc)}"
                return f"broker not reachable: {detail}"
            continue
        if topic not in metadata.topics:
            return f"topic {topic!r} does not exist (create it with `scorer topics apply`)"
        topic_error = metadata.topics[topic].error
        if topic_error is not None:
            return f"topic {topic!r} is not usable: {topic_error.str()}"
        return None


def _detail(errors: list[KafkaError]) -> str:
    """The most telling of the errors librdkafka reported (a transport error names the cause)."""
    for error in errors:
        if error.code() not in (KafkaError._ALL_BROKERS_DOWN,):
            return error.str()
    return errors[0].str() if errors else ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
