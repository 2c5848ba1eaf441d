"""`scorer produce` checks its topics before it publishes: a missing one is named at once,
with the command that creates it, and nothing is published anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.support.kafka import unique


def _produce(
    bootstrap: str, events: str, feedback: str, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "SCORER_"))}
    env.update({"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "SCORER_TOPIC_EVENTS": events,
                "SCORER_TOPIC_FEEDBACK": feedback})  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", "produce", "--demo", "--count", "20", *args],
        env=env, capture_output=True, text=True, timeout=100, check=False,
    )  # fmt: skip


def _records(bootstrap: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("count")})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        )
    finally:
        consumer.close()


def _one_line_naming(result: subprocess.CompletedProcess[str], topic: str) -> None:
    assert (result.returncode, result.stdout) == (1, "")
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("scorer: error: "), result.stderr
    assert repr(topic) in result.stderr and "`scorer topics apply`" in result.stderr


@pytest.mark.timeout(120)
def test_a_missing_events_topic_is_named_at_once(kafka_bootstrap: str) -> None:
    missing = unique("no-events")
    _one_line_naming(_produce(kafka_bootstrap, missing, unique("no-feedback")), missing)


@pytest.mark.timeout(120)
def test_a_missing_feedback_topic_stops_before_any_event_is_published(
    kafka_bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    events, missing = topic_factory("events"), unique("no-feedback")
    _one_line_naming(_produce(kafka_bootstrap, events, missing, "--feedback"), missing)
    assert _records(kafka_bootstrap, events) == 0


@pytest.mark.timeout(120)
def test_with_its_topics_present_produce_publishes(
    kafka_bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    events, feedback = topic_factory("events"), topic_factory("feedback")
    result = _produce(kafka_bootstrap, events, feedback, "--feedback")
    assert result.returncode == 0, result.stderr
    assert f"published 20 events to {events}" in result.stderr
    assert (_records(kafka_bootstrap, events), _records(kafka_bootstrap, feedback)) == (20, 20)
