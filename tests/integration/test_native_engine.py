"""The native engine on the real broker: nothing lost, nothing extra, crashes survived."""

from __future__ import annotations

import base64
import copy
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Callable

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from models.datasets import agrawal_events
from schemas.contracts import DeadLetter, Decision, Explanation
from tests.integration.conftest import ScorerSetup, event_ids


def _malformations(event: dict) -> list[Callable[[], bytes | None]]:
    def changed(change: Callable[[dict], None]) -> Callable[[], bytes]:
        def build() -> bytes:
            copy_ = copy.deepcopy(event)
            change(copy_)
            return orjson.dumps(copy_)

        return build

    def nan_literal() -> bytes:
        copy_ = copy.deepcopy(event)
        copy_["features"]["salary"] = "__NAN__"
        return orjson.dumps(copy_).replace(b'"__NAN__"', b"NaN")

    return [
        lambda: os.urandom(40),
        lambda: orjson.dumps(event)[:-9],
        nan_literal,
        changed(lambda e: e["features"].__setitem__("salary", "plenty")),
        changed(lambda e: e["features"].pop("loan")),
        changed(lambda e: e["features"].__setitem__("car", 99)),
        changed(lambda e: e.__setitem__("event_time", "2026-01-01T00:00:00")),
        changed(lambda e: e.__setitem__("surprise", 1)),
        lambda: b"[1, 2, 3]",
        lambda: None,
    ]


def mixed_stream(count: int, malformed_every: int, seed: int) -> tuple[list, set[str]]:
    """(key, value) records, every ``malformed_every``-th one malformed in a rotating way."""
    rng = random.Random(seed)
    records: list[tuple[bytes | None, bytes | None]] = []
    valid: set[str] = set()
    for i, event in enumerate(agrawal_events(count, seed=seed, run_id=f"run{seed}")):
        key = event["entity_id"].encode()
        if i % malformed_every == malformed_every - 1:
            kinds = _malformations(event)
            records.append(
                (key if rng.random() < 0.8 else None, kinds[i // malformed_every % len(kinds)]())
            )
        else:
            records.append((key, orjson.dumps(event)))
            valid.add(event["event_id"])
    return records, valid


def committed_equals_end(setup: ScorerSetup) -> bool:
    group = setup.env["SCORER_GROUP_ID"]
    consumer = Consumer({"bootstrap.servers": setup.bootstrap, "group.id": group})
    try:
        topic = setup.topics["events"]
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        tps = [TopicPartition(topic, p) for p in partitions]
        committed = {tp.partition: tp.offset for tp in consumer.committed(tps, timeout=10)}
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
        return committed == ends
    finally:
        consumer.close()


def test_every_valid_event_scored_once_every_invalid_dead_lettered(
    scorer_setup: ScorerSetup,
) -> None:
    records, valid = mixed_stream(20_000, malformed_every=20, seed=41)
    invalid_count = len(records) - len(valid)
    assert invalid_count == 1000
    scorer_setup.produce(records)
    engine = scorer_setup.serve()

    outputs = scorer_setup.consumer("decisions", "explanations", "events.dlq")
    topics = scorer_setup.topics

    def complete(messages: list) -> bool:
        counts = Counter(m.topic() for m in messages)
        return (
            counts[topics["decisions"]] >= len(valid)
            and counts[topics["explanations"]] >= len(valid)
            and counts[topics["events.dlq"]] >= invalid_count
        )

    messages = scorer_setup.read(outputs, complete)
    time.sleep(2)  # anything extra would arrive now
    messages.extend(m for m in outputs.consume(10_000, timeout=2) if m.error() is None)
    outputs.close()

    by_topic: dict[str, list] = {}
    for message in messages:
        by_topic.setdefault(message.topic(), []).append(message)
    decisions = by_topic[topics["decisions"]]
    explanations = by_topic[topics["explanations"]]
    letters = by_topic[topics["events.dlq"]]

    assert Counter(event_ids(decisions)) == Counter({event_id: 1 for event_id in valid})
    assert Counter(event_ids(explanations)) == Counter({event_id: 1 for event_id in valid})
    for message in decisions[:500]:
        decision = Decision.model_validate_json(message.value())
        headers = dict(message.headers())
        assert headers["event_id"].decode() == decision.event_id
        assert headers["model_sha256"].decode() == decision.model.sha256
        assert message.key() == decision.entity_id.encode()
    for message in explanations:
        explanation = Explanation.model_validate_json(message.value())
        total = explanation.base_value + sum(explanation.contributions.values())
        assert abs(total - explanation.output_value) <= 1e-6

    assert len(letters) == invalid_count
    sent = {}
    for message in letters:
        letter = DeadLetter.model_validate_json(message.value())
        sent[(letter.source_partition, letter.source_offset)] = letter
    assert len(sent) == invalid_count  # one per invalid message
    reasons = Counter(letter.reason.value for letter in sent.values())
    assert {
        "INVALID_JSON",
        "NON_FINITE",
        "WRONG_TYPE",
        "MISSING_FEATURE",
        "UNKNOWN_CATEGORY",
        "SCHEMA_VIOLATION",
        "NOT_AN_OBJECT",
    } <= set(reasons)
    originals = {value for _, value in records if value is not None}
    for letter in sent.values():
        original = base64.b64decode(letter.original_value_b64)
        assert original in originals or original == b""

    engine.send_signal(signal.SIGTERM)
    assert engine.wait(60) == 0
    assert committed_equals_end(scorer_setup)


@pytest.mark.parametrize("exactly_once", [False, True], ids=["at-least-once", "exactly-once"])
def test_sigkill_of_one_of_two_engines(scorer_setup: ScorerSetup, exactly_once: bool) -> None:
    records, valid = mixed_stream(30_000, malformed_every=1_000_000, seed=43)
    extra = ("--exactly-once",) if exactly_once else ()
    survivor = scorer_setup.serve(*extra, "--max-batch", "200")
    victim = scorer_setup.serve(*extra, "--max-batch", "200")
    time.sleep(3)  # both join the group
    scorer_setup.produce(records)

    reader = scorer_setup.consumer("decisions", read_committed=exactly_once)
    seen: list = scorer_setup.read(reader, lambda m: len(m) >= len(valid) // 3)
    victim.send_signal(signal.SIGKILL)
    victim.wait(30)
    seen += scorer_setup.read(reader, lambda m: len(set(event_ids(seen + m))) >= len(valid))
    time.sleep(3)
    seen.extend(m for m in reader.consume(10_000, timeout=3) if m.error() is None)
    reader.close()

    counts = Counter(event_ids(seen))
    assert set(counts) == valid
    if exactly_once:
        assert max(counts.values()) == 1
    survivor.send_signal(signal.SIGTERM)
    assert survivor.wait(60) == 0
