"""A large rejected record on the real broker: both engines dead-letter it and keep scoring.

A record of about 900 kB that the contract rejects makes a dead letter of about 1.2 MB (the
letter carries the original bytes base64-encoded). Published between valid events, on each
engine (``native``, ``faust``) and with the dead-letter topic sized two ways:

- as ``infra/topics.yaml`` sizes it (2 MiB): the whole letter fits, so it is sent whole
  (the Faust engine's producer used to refuse anything over 1 MiB and the worker exited);
- at Kafka's default ``max.message.bytes`` (1 MiB, a DLQ created without the topic file):
  the topic would refuse the whole letter, so it is cut to fit and says so (a prefix of the
  original bytes, with the sha256 and length of the whole record).

Either way the engine keeps running, every valid event is decided, every offset is
committed, and the DLQ holds one letter for the big record with its reason and coordinates.
The bytes are random, so that compression cannot make a letter small enough to pass.
"""

from __future__ import annotations

import base64
import hashlib
import random
from pathlib import Path

import orjson
import pytest
import yaml
from confluent_kafka.admin import AdminClient

from models.datasets import agrawal_events
from schemas.contracts import DeadLetter, RejectReason
from streams.paths import infra_dir
from tests.support.reliability import (
    EngineProcess,
    OutputReader,
    group_lag,
    produce_in_order,
    set_topic_config,
)
from tests.support.scorer import ScorerSetup
from tests.support.waiting import wait_until

TOPICS_FILE_DLQ_LIMIT = int(
    yaml.safe_load((infra_dir() / "topics.yaml").read_text(encoding="utf-8"))["topics"][
        "events.dlq"
    ]["config"]["max.message.bytes"]
)
"""The dead-letter topic's max.message.bytes as ``scorer topics apply`` sets it."""
KAFKA_DEFAULT_LIMIT = 1_048_588
"""Kafka's default max.message.bytes: what a topic created without a config accepts."""
BIG_RECORD_BYTES = 900_000
VALID_EVENTS = 600


@pytest.fixture(params=["native", "faust"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def big_invalid_event(seed: int) -> tuple[bytes, bytes, str]:
    """(key, value, event_id) of an event of about 900 kB whose context value is far longer
    than the contract allows; random base64, so that lz4 cannot shrink its letter."""
    event = next(iter(agrawal_events(1, seed=seed, run_id="big")))
    noise = random.Random(seed).randbytes(BIG_RECORD_BYTES * 3 // 4)
    event["context"]["note"] = base64.b64encode(noise).decode("ascii")
    value = orjson.dumps(event)
    assert BIG_RECORD_BYTES < len(value) < 1_000_000
    assert len(base64.b64encode(value)) > KAFKA_DEFAULT_LIMIT  # its whole letter is refused
    return event["entity_id"].encode(), value, event["event_id"]


@pytest.mark.parametrize(
    ("dlq_limit", "cut"),
    [(TOPICS_FILE_DLQ_LIMIT, False), (KAFKA_DEFAULT_LIMIT, True)],
    ids=["dlq-as-topics-yaml", "dlq-kafka-default"],
)
def test_a_large_rejected_record_is_dead_lettered_and_scoring_goes_on(
    scorer_setup: ScorerSetup,
    kafka_admin: AdminClient,
    tmp_path: Path,
    engine: str,
    dlq_limit: int,
    cut: bool,
) -> None:
    topics = scorer_setup.topics
    set_topic_config(kafka_admin, topics["events.dlq"], "max.message.bytes", str(dlq_limit))
    valid = [
        (event["entity_id"].encode(), orjson.dumps(event))
        for event in agrawal_events(VALID_EVENTS, seed=83, run_id="around-big")
    ]
    key, big, big_id = big_invalid_event(seed=89)
    at = VALID_EVENTS // 2  # valid events before and after it, in its partition too
    coordinates = produce_in_order(scorer_setup, [*valid[:at], (key, big), *valid[at:]])
    valid_ids = {orjson.loads(value)["event_id"] for _, value in valid}

    process = EngineProcess(scorer_setup, tmp_path, "--engine", engine, "--max-batch", "50")
    reader = OutputReader(scorer_setup, "decisions", "events.dlq")
    reader.read_until(
        lambda r: len(r.of("events.dlq")) >= 1 and len(r.of("decisions")) >= len(valid_ids),
        "every decision and the big record's dead letter",
        timeout=150,
        engines=[process],
    )
    wait_until(lambda: group_lag(scorer_setup) == 0, "all offsets committed", engines=[process])
    reader.settle([process])

    assert set(reader.event_ids("decisions")) == valid_ids
    [message] = reader.of("events.dlq")
    assert message.key() == key
    assert len(message.value()) + len(key) < dlq_limit
    record = orjson.loads(message.value())
    letter = DeadLetter.model_validate(record)  # a cut letter is a valid one
    assert letter.reason is RejectReason.SCHEMA_VIOLATION and "context" in letter.detail
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == (
        topics["events"],
        *coordinates[at],
    )
    assert letter.source_key() == key and letter.event_id == big_id
    kept = letter.original_value()
    if cut:
        assert record["original_truncated"] is True
        assert record["original_size_bytes"] == len(big)
        assert record["original_sha256"] == hashlib.sha256(big).hexdigest()
        assert 0 < len(kept) < len(big) and big.startswith(kept)
    else:
        assert record.get("original_truncated", False) is False
        assert kept == big
    truncated = process.metric("scorer_dlq_truncated_total", reason="SCHEMA_VIOLATION")
    assert truncated == (1.0 if cut else 0.0)

    process.require_alive()
    reader.close()
    assert process.terminate() == 0
