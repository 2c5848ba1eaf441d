"""Both engines on the real broker: the same outputs, the same headers, the same guarantees.

Every test runs once per engine (``native``, ``faust``). The expected outputs are what the
shared :class:`~streams.engine.processor.BatchProcessor` makes of the input records as the
broker stores them (read back, with their partitions, offsets and timestamps), so an engine
passes only if it hands every record to the scoring core intact and delivers every output
once, with its key and headers.
"""

from __future__ import annotations

import signal
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from models.datasets import agrawal_events
from models.scoring_model import ScoringModel
from schemas.contracts import LINEAGE_HEADERS, ModelEvent
from streams.engine.model_watch import ServingModels
from streams.engine.processor import BatchProcessor, ConsumedRecord, Output
from streams.engine.records import consumed_batch
from streams.model_events import publish_model_event
from streams.observability import ScorerMetrics
from streams.settings import load_settings
from tests.support.kafka import group_offsets, read_to_end
from tests.support.models import RegisterModels, TrainModel
from tests.support.scorer import ScorerSetup, committed_equals_end, event_ids, mixed_stream
from tests.support.waiting import wait_until

VOLATILE = {"scored_at", "latency_ms", "failed_at"}
"""Fields that differ between two runs over the same input: times of the run."""
OUTPUT_TOPICS = ("decisions", "explanations", "events.dlq")


@pytest.fixture(params=["native", "faust"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def by_identity(outputs: Iterable[tuple[str, Any, bytes, Any]]) -> dict[tuple, tuple]:
    """Outputs by (topic, key, event id, source position): their record without the fields
    that depend on when it was made, and their headers. A duplicate fails the test."""
    keyed: dict[tuple, tuple] = {}
    for topic, key, value, headers in outputs:
        record = {k: v for k, v in orjson.loads(value).items() if k not in VOLATILE}
        identity = (topic, key, record.get("event_id"), record.get("source_partition"),
                    record.get("source_offset"))  # fmt: skip
        assert identity not in keyed, f"duplicate output {identity}"
        keyed[identity] = (record, [(name, bytes(v)) for name, v in headers or []])
    return keyed


def approximately(value: Any) -> Any:
    """``value`` with each float compared to the last few bits only: a model's matrix product
    may round differently in the last place depending on the rows batched with an event."""
    if isinstance(value, float):
        return pytest.approx(value, rel=1e-9, abs=1e-12)
    if isinstance(value, dict):
        return {k: approximately(v) for k, v in value.items()}
    if isinstance(value, list):
        return [approximately(v) for v in value]
    return value


def read_all(setup: ScorerSetup, *names: str) -> list:
    """Every record now in the named topics, read from the beginning to the end."""
    consumer = Consumer({"bootstrap.servers": setup.bootstrap, "group.id": "unused",
                         "enable.auto.commit": False})  # fmt: skip
    try:
        ends: dict[tuple[str, int], int] = {}
        for topic in (setup.topics[name] for name in names):
            for p in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
                ends[(topic, p)] = consumer.get_watermark_offsets(
                    TopicPartition(topic, p), timeout=10
                )[1]
        consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in ends])
        messages: list = []
        deadline = time.monotonic() + 60
        while len(messages) < sum(ends.values()):
            assert time.monotonic() < deadline, f"read {len(messages)} of {sum(ends.values())}"
            messages += [m for m in consumer.consume(1000, 0.5) if m.error() is None]
        return messages
    finally:
        consumer.close()


def expected_outputs(setup: ScorerSetup, records: list[ConsumedRecord]) -> list[Output]:
    """What the shared processor makes of ``records`` with the champion, in this process."""
    settings = load_settings(setup.env)
    champion = ScoringModel.from_loaded(setup.registry.load(setup.model, "champion"))
    processor = BatchProcessor(
        settings, lambda: ServingModels(champion, None), ScorerMetrics(), None
    )
    return processor.process(records)


def committed(setup: ScorerSetup) -> dict[int, int]:
    """The scorer group's committed offset per events partition (absent: not committed)."""
    offsets = group_offsets(setup.bootstrap, setup.env["SCORER_GROUP_ID"], setup.topics["events"])
    return {p: o.committed for p, o in offsets.items() if o.committed >= 0}


def test_both_engines_write_the_same_outputs(scorer_setup: ScorerSetup, engine: str) -> None:
    records, valid = mixed_stream(3_000, malformed_every=15, seed=61)
    invalid = len(records) - len(valid)
    scorer_setup.produce(records, partition_of=lambda i: i % 3)
    process = scorer_setup.serve("--max-batch", "150", engine=engine)

    topics = {scorer_setup.topics[t]: t for t in OUTPUT_TOPICS}
    reader = scorer_setup.consumer(*OUTPUT_TOPICS)

    def complete(messages: list) -> bool:
        counts = Counter(topics[m.topic()] for m in messages)
        return (counts["decisions"] >= len(valid) and counts["explanations"] >= len(valid)
                and counts["events.dlq"] >= invalid)  # fmt: skip

    messages = scorer_setup.read(reader, complete)
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0
    messages += read_to_end(reader)  # all it wrote: anything extra is there now
    reader.close()
    assert committed_equals_end(scorer_setup)

    actual = by_identity((topics[m.topic()], m.key(), m.value(), m.headers()) for m in messages)
    inputs = consumed_batch(read_all(scorer_setup, "events"))
    wanted = by_identity(
        (topics[topic], key, value, headers)
        for topic, key, value, headers in expected_outputs(scorer_setup, inputs)
    )
    assert len(wanted) == 2 * len(valid) + invalid
    assert set(actual) == set(wanted)
    for identity, (record, headers) in wanted.items():
        assert actual[identity] == (approximately(record), headers), identity

    sha256 = scorer_setup.registry.load(scorer_setup.model, "champion").manifest.artifact.sha256
    decisions = [m for m in messages if topics[m.topic()] == "decisions"]
    assert set(event_ids(decisions)) == valid
    for message in decisions:
        headers = dict(message.headers())
        assert tuple(headers) == LINEAGE_HEADERS
        assert headers["event_id"] == orjson.loads(message.value())["event_id"].encode()
        assert (headers["model_name"], headers["model_version"]) == (b"loans", b"1")
        assert headers["model_sha256"] == sha256.encode()
    letters = [orjson.loads(m.value()) for m in messages if topics[m.topic()] == "events.dlq"]
    assert len({letter["reason"] for letter in letters}) >= 6  # malformed in several ways


def test_promotion_mid_stream_switches_once_per_partition(
    scorer_setup: ScorerSetup,
    engine: str,
    train_model: TrainModel,
    register_models: RegisterModels,
) -> None:
    challenger = train_model(rows=3000, seed=77)
    (v2,) = register_models(challenger, registry=scorer_setup.registry)
    events = list(agrawal_events(12_000, seed=45, run_id="swap"))
    first, second = events[:6_000], events[6_000:]
    source: dict[str, tuple[int, int]] = {}
    for i, event in enumerate(first):
        source[event["event_id"]] = (i % 3, i // 3)
    for i, event in enumerate(second):
        source[event["event_id"]] = (i % 3, 2_000 + i // 3)
    process = scorer_setup.serve("--max-batch", "100", engine=engine)
    scorer_setup.produce([(e["entity_id"].encode(), orjson.dumps(e)) for e in first],
                         partition_of=lambda i: i % 3)  # fmt: skip
    reader = scorer_setup.consumer("decisions")
    seen = scorer_setup.read(reader, lambda m: len(m) >= 1_000)
    scorer_setup.registry.set_alias("loans", "champion", v2.version, actor="test")
    problem = publish_model_event(
        load_settings(scorer_setup.env),
        ModelEvent(event_type="promoted", model_name="loans", version=v2.version, alias="champion",
                   previous_version=1, sha256=v2.manifest.artifact.sha256, actor="test",
                   occurred_at=datetime.now(UTC)),
    )  # fmt: skip
    assert problem is None
    scorer_setup.produce([(e["entity_id"].encode(), orjson.dumps(e)) for e in second],
                         partition_of=lambda i: i % 3)  # fmt: skip
    seen += scorer_setup.read(reader, lambda m: len(seen) + len(m) >= len(events))
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0
    seen += read_to_end(reader)  # all it wrote: a decision scored twice is there now
    reader.close()

    by_partition: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for message in seen:
        decision = orjson.loads(message.value())
        partition, offset = source[decision["event_id"]]
        by_partition[partition].append((offset, decision["model"]["version"]))
        assert (
            dict(message.headers())["model_version"] == str(decision["model"]["version"]).encode()
        )
    assert sorted(len(v) for v in by_partition.values()) == [4_000] * 3  # nothing skipped
    switched_within = 0
    for partition, decided in by_partition.items():
        versions = [version for _, version in sorted(decided)]
        switch = versions.index(2)  # the promotion reached every partition
        assert versions[:switch] == [1] * switch
        assert versions[switch:] == [2] * (len(versions) - switch), (
            f"partition {partition}: v1 reappeared after the switch"
        )
        switched_within += switch > 0
    assert switched_within >= 1  # v1 scored before the promotion on some partition


def test_offsets_commit_only_after_outputs_are_written(
    scorer_setup: ScorerSetup, engine: str
) -> None:
    records, valid = mixed_stream(30_000, malformed_every=50, seed=67)
    scorer_setup.produce(records, partition_of=lambda i: i % 3)
    by_position = {(i % 3, i // 3): value for i, (_, value) in enumerate(records)}
    process = scorer_setup.serve("--max-batch", "100", engine=engine)

    # a first commit, then a kill mid-stream
    wait_until(lambda: bool(committed(scorer_setup)), "a first commit", timeout=180,
               engines=[scorer_setup], every=0.2)  # fmt: skip
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    offsets = committed(scorer_setup)

    covered = {(p, o) for p, end in offsets.items() for o in range(end)}
    assert covered, "nothing was committed"
    scored = {_event_id(by_position[position]) for position in covered} & valid
    rejected = {position for position in covered if _event_id(by_position[position]) not in valid}
    outputs: dict[str, list[dict]] = defaultdict(list)
    names = {scorer_setup.topics[t]: t for t in OUTPUT_TOPICS}
    for message in read_all(scorer_setup, *OUTPUT_TOPICS):
        outputs[names[message.topic()]].append(orjson.loads(message.value()))
    decided = {d["event_id"] for d in outputs["decisions"]}
    explained = {e["event_id"] for e in outputs["explanations"]}
    letters = {(d["source_partition"], d["source_offset"]) for d in outputs["events.dlq"]}
    assert scored - decided == set(), "committed events without a decision"
    assert scored - explained == set(), "committed events without an explanation"
    assert rejected - letters == set(), "committed invalid events without a dead letter"


def _event_id(value: Any) -> str | None:
    try:
        event_id = orjson.loads(value)["event_id"]
    except (orjson.JSONDecodeError, TypeError, KeyError):
        return None
    return event_id if isinstance(event_id, str) else None
