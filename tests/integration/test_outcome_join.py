"""The outcome join on the real broker: no label lost to a race, unknown labels rejected only
after their wait, any number of instances joining as one, and a SIGKILLed instance restored
from its own store and changelog instead of the decisions topic."""

from __future__ import annotations

import base64
import hashlib
import re
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer

from models.datasets import LabelledEvent, agrawal_stream
from schemas.contracts import DeadLetter, Decision, Outcome
from streams.outcomes.join import partition_for
from tests.support.kafka import read_to_end, unique, wait_for_members
from tests.support.reliability import EngineProcess, OutputReader
from tests.support.scorer import ScorerSetup
from tests.support.waiting import wait_until

JOIN_TOPICS = ("outcomes", "outcome-join-input", "outcome-join-changelog", "events.dlq")
SHA = "a" * 64


# --- the real pipeline: scorer, monitor owner and its join -----------------------------------


def test_labels_sent_right_after_their_events_all_join_and_unknown_ones_wait(
    scorer_setup: ScorerSetup, tmp_path: Path
) -> None:
    """Labels published right after their events (``scorer produce --demo --feedback``)
    race the scorer: every one waits for its decision and joins; none is unknown. A label
    for an event never scored is rejected only once the decisions are read past its time
    plus the wait, with its own bytes and coordinates."""
    setup = scorer_setup
    setup.env["SCORER_JOIN_COMMIT_SECONDS"] = "0.5"
    serve = EngineProcess(setup, tmp_path)
    monitor = EngineProcess(setup, tmp_path, command="monitor")
    engines = (serve, monitor)
    produced = setup.start("produce", "--demo", "--feedback", "--count", "3000",
                           "--run-id", "race", env=setup.env)  # fmt: skip
    assert produced.wait(120) == 0
    reader = OutputReader(setup, "outcomes", "events.dlq", read_committed=True)
    reader.read_until(lambda r: len(r.of("outcomes")) >= 3000, "3000 outcomes", engines=engines)

    assert reader.of("events.dlq") == []  # not one label rejected
    outcomes = [Outcome.model_validate_json(m.value()) for m in reader.of("outcomes")]
    assert sorted(o.event_id for o in outcomes) == sorted(f"race-{i}" for i in range(3000))

    # Labels for events never scored, at the stream's time: they wait for their decisions.
    newest = max(o.event_time for o in outcomes)
    ghosts = [orjson.dumps({"event_id": f"ghost-{i}", "label": 1,
                            "label_time": newest.isoformat()}) for i in range(5)]  # fmt: skip
    producer = Producer({"bootstrap.servers": setup.bootstrap})
    for ghost in ghosts:
        producer.produce(setup.topics["feedback"], ghost, orjson.loads(ghost)["event_id"].encode())
    assert producer.flush(30) == 0
    # More events and labels within the wait: they join, and the ghosts still wait.
    within = agrawal_stream(
        300, seed=3, start=newest, run_id="within", interval=timedelta(milliseconds=100)
    )
    produce_labelled(setup, producer, within)
    reader.read_until(lambda r: len(r.of("outcomes")) >= 3300, "3300 outcomes", engines=engines)
    assert reader.of("events.dlq") == []
    # Events past the ghosts' time plus the wait (300 s): now the ghosts are unknown.
    later = newest + timedelta(seconds=400)
    produce_labelled(setup, producer, agrawal_stream(300, seed=4, start=later, run_id="after"))
    reader.read_until(lambda r: len(r.of("events.dlq")) >= 5 and len(r.of("outcomes")) >= 3600,
                      "5 dead letters and 3600 outcomes", engines=engines)  # fmt: skip
    for engine in engines:
        assert engine.terminate() == 0
    reader.settle()
    reader.close()

    letters = [DeadLetter.model_validate_json(m.value()) for m in reader.of("events.dlq")]
    assert {letter.reason.value for letter in letters} == {"LABEL_UNKNOWN_EVENT"}
    assert sorted(base64.b64decode(letter.original_value_b64) for letter in letters) == sorted(
        ghosts
    )
    assert {letter.source_topic for letter in letters} == {setup.topics["feedback"]}
    joined = [Outcome.model_validate_json(m.value()).event_id for m in reader.of("outcomes")]
    assert len(joined) == len(set(joined)) == 3600  # each label joined once


def produce_labelled(
    setup: ScorerSetup, producer: Producer, stream: Iterable[LabelledEvent]
) -> None:
    """Events and, right after each, its label (at the event's time)."""
    for labelled in stream:
        event = labelled.event
        producer.produce(setup.topics["events"], orjson.dumps(event), event["entity_id"].encode())
        label = {"event_id": event["event_id"], "label": labelled.label,
                 "label_time": event["event_time"]}  # fmt: skip
        producer.produce(setup.topics["feedback"], orjson.dumps(label), event["event_id"].encode())
        producer.poll(0)
    assert producer.flush(30) == 0


# --- join instances alone, on decisions and labels written directly ---------------------------


@dataclass(frozen=True)
class Traffic:
    """Decisions and labels for the join, in the order the test publishes them."""

    decisions: list[tuple[bytes, bytes]]
    early_labels: list[tuple[bytes, bytes]]
    late_labels: list[tuple[bytes, bytes]]
    closing: list[tuple[bytes, bytes]]
    joined: int
    rejected: int


def traffic(count: int, partitions: int) -> Traffic:
    """``count`` decisions over 100 s of event time. Labels for the first half are published
    before any decision, for the next 40% after them; 50 duplicates and 50 labels of unknown
    events follow. Closing decisions, one per join partition, move every partition's stream
    time past the wait, so that the unknown labels are rejected."""
    start = datetime(2026, 3, 1, tzinfo=UTC)

    def decision(event_id: str, at: datetime) -> tuple[bytes, bytes]:
        record = Decision.model_validate({
            "event_id": event_id, "entity_id": f"entity-{event_id}", "decision": "approve",
            "score": 0.25, "thresholds": {"decline": 0.5},
            "model": {"name": "loans", "version": 1, "sha256": SHA},
            "input_hash": hashlib.sha256(event_id.encode()).hexdigest(),
            "event_time": at.isoformat(), "context": {"age_band": "30-44"},
            "scored_at": at.isoformat(), "latency_ms": 1.0,
        })  # fmt: skip
        return record.entity_id.encode(), record.model_dump_json().encode()

    def label(event_id: str, value: int, at: datetime) -> tuple[bytes, bytes]:
        body = {"event_id": event_id, "label": value, "label_time": at.isoformat()}
        return event_id.encode(), orjson.dumps(body)

    times = [start + timedelta(milliseconds=100_000 * i // count) for i in range(count)]
    ids = [f"d-{i}" for i in range(count)]
    labels = [label(ids[i], i % 2, times[i] + timedelta(seconds=5)) for i in range(count)]
    half, most = count // 2, count * 9 // 10
    extras = [label(ids[i], 1, times[i] + timedelta(seconds=9)) for i in range(50)]
    extras += [label(f"unknown-{i}", 0, times[-1]) for i in range(50)]
    closing_ids: dict[int, str] = {}
    for n in range(10_000):
        closing_ids.setdefault(partition_for(f"closing-{n}", partitions), f"closing-{n}")
        if len(closing_ids) == partitions:
            break
    far = times[-1] + timedelta(hours=1)
    return Traffic(
        [decision(event_id, when) for event_id, when in zip(ids, times, strict=True)],
        labels[:half],
        labels[half:most] + extras,
        [decision(event_id, far) for event_id in closing_ids.values()],
        joined=most,
        rejected=100,
    )


@dataclass
class JoinRun:
    """One outcome join (any number of instances) with topics of its own, reading the shared
    decisions and feedback topics of ``setup``."""

    setup: ScorerSetup
    env: dict[str, str]
    topics: dict[str, str]
    log_dir: Path
    instances: list[EngineProcess]

    def start(self, state: str) -> EngineProcess:
        env = {**self.env, "SCORER_JOIN_STATE_DIR": str(self.log_dir / state)}
        instance = EngineProcess(self.setup, self.log_dir, env=env, command="join")
        self.instances.append(instance)
        return instance

    def reader(self) -> OutputReader:
        view = ScorerSetup(self.setup.bootstrap, {**self.setup.topics, **self.topics},
                           self.setup.registry, self.setup.model, self.env)  # fmt: skip
        return OutputReader(view, "outcomes", "events.dlq", read_committed=True)


@pytest.fixture
def join_run(
    scorer_setup: ScorerSetup, topic_factory: Callable[..., str], tmp_path: Path
) -> Callable[[str], JoinRun]:
    def make(name: str) -> JoinRun:
        topics = {topic: topic_factory(f"{name}-{topic.replace('.', '-')}", partitions=3)
                  for topic in JOIN_TOPICS}  # fmt: skip
        env = {
            **scorer_setup.env,
            "SCORER_TOPIC_OUTCOMES": topics["outcomes"],
            "SCORER_TOPIC_JOIN_INPUT": topics["outcome-join-input"],
            "SCORER_TOPIC_JOIN_CHANGELOG": topics["outcome-join-changelog"],
            "SCORER_TOPIC_DLQ": topics["events.dlq"],
            "SCORER_JOIN_GROUP_ID": unique(f"join-{name}"),
            "SCORER_JOIN_COMMIT_SECONDS": "0.5",
            "SCORER_JOIN_TRANSACTION_CHANGES": "1000",
            "SCORER_FEEDBACK_WAIT_SECONDS": "600",
        }
        log_dir = tmp_path / name
        log_dir.mkdir()
        return JoinRun(scorer_setup, env, topics, log_dir, [])

    return make


def publish(setup: ScorerSetup, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": setup.bootstrap, "linger.ms": 5})
    for key, value in records:
        while True:
            try:
                producer.produce(setup.topics[topic], value, key)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(60) == 0


def results(reader: OutputReader) -> tuple[list[bytes], list[tuple[str, int, int, bytes]]]:
    """The outcome records, and each dead letter as (reason, partition, offset, bytes)."""
    outcomes = sorted(m.value() for m in reader.of("outcomes"))
    letters = sorted(
        (letter.reason.value, letter.source_partition, letter.source_offset,
         base64.b64decode(letter.original_value_b64))
        for letter in (DeadLetter.model_validate_json(m.value()) for m in reader.of("events.dlq"))
    )  # fmt: skip
    return outcomes, letters


def finished(data: Traffic) -> Callable[[OutputReader], bool]:
    return lambda r: (
        len(r.of("outcomes")) >= data.joined and len(r.of("events.dlq")) >= data.rejected
    )


def stop(
    run: JoinRun, reader: OutputReader
) -> tuple[list[bytes], list[tuple[str, int, int, bytes]]]:
    for instance in run.instances:
        if instance.alive():
            assert instance.terminate() == 0, instance.log()
    reader.messages.extend(read_to_end(reader.consumer))
    reader.close()
    return results(reader)


def test_two_join_instances_give_the_outcomes_of_one(
    scorer_setup: ScorerSetup, join_run: Callable[[str], JoinRun]
) -> None:
    """One instance joins everything; in a second run a second instance joins halfway, the
    partitions are shared between them (stores restored from the changelog where they
    moved), and the outcomes and dead letters are the same, record for record."""
    data = traffic(6000, partitions=3)
    one, two = join_run("one"), join_run("two")
    one.start("a")
    first = two.start("a")
    publish(scorer_setup, "feedback", data.early_labels)
    publish(scorer_setup, "decisions", data.decisions)
    one_reader, two_reader = one.reader(), two.reader()
    two_reader.read_until(lambda r: len(r.of("outcomes")) >= 1000, "1000 outcomes",
                          engines=[first])  # fmt: skip
    second = two.start("b")
    wait_for_members(scorer_setup.bootstrap, two.env["SCORER_JOIN_GROUP_ID"], 2,
                     engines=[first, second])  # fmt: skip
    publish(scorer_setup, "feedback", data.late_labels)
    publish(scorer_setup, "decisions", data.closing)
    one_reader.read_until(finished(data), "the single instance's results", engines=one.instances)
    two_reader.read_until(finished(data), "the two instances' results", engines=two.instances)

    single, shared = stop(one, one_reader), stop(two, two_reader)
    assert len(single[0]) == data.joined and len(set(single[0])) == data.joined
    assert [reason for reason, *_ in single[1]].count("LABEL_UNKNOWN_EVENT") == 50
    assert [reason for reason, *_ in single[1]].count("DUPLICATE_LABEL") == 50
    assert shared == single
    moved = restored_records(second) + restored_records(first)
    assert moved > 0  # the second instance's partitions came with their state


def test_a_killed_join_instance_restarts_from_its_store_and_loses_nothing(
    scorer_setup: ScorerSetup, join_run: Callable[[str], JoinRun]
) -> None:
    """SIGKILL mid-stream, restart on the same state directory: the outcomes of an
    uninterrupted run, none lost or joined twice; the restart reads only the changelog
    records its store had not taken, far fewer than the decisions topic holds."""
    data = traffic(20_000, partitions=3)
    reference, killed = join_run("reference"), join_run("killed")
    reference.start("a")
    victim = killed.start("a")
    publish(scorer_setup, "feedback", data.early_labels)
    publish(scorer_setup, "decisions", data.decisions)
    reference_reader, killed_reader = reference.reader(), killed.reader()
    killed_reader.read_until(lambda r: len(r.of("outcomes")) >= 3000, "3000 outcomes",
                             engines=[victim])  # fmt: skip
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait(30)
    publish(scorer_setup, "feedback", data.late_labels)
    publish(scorer_setup, "decisions", data.closing)
    restarted = killed.start("a")
    reference_reader.read_until(finished(data), "the reference results",
                                engines=reference.instances)  # fmt: skip
    killed_reader.read_until(finished(data), "the restarted instance's results",
                             engines=[restarted])  # fmt: skip
    wait_until(lambda: "record(s) read" in restarted.log(400), "the restore's log line")

    expected, after_kill = stop(reference, reference_reader), stop(killed, killed_reader)
    assert len(after_kill[0]) == data.joined  # none lost, none twice
    assert after_kill == expected
    # At most the one transaction a crash cut between its commit and the stores taking it is
    # read back: SCORER_JOIN_TRANSACTION_CHANGES (1,000 here) plus one batch of 1,000 input
    # records, two changes each at most. The stores are reused, never rebuilt.
    read_on_restart = restored_records(restarted)
    held = len(data.decisions) + len(data.closing)
    assert read_on_restart <= 1000 + 2 * 1000, read_on_restart
    assert read_on_restart < held / 5, (
        f"the restart read {read_on_restart} changelog records; the decisions topic holds {held}"
    )
    assert "rebuilt from the changelog" not in restarted.log(400)


def restored_records(instance: EngineProcess) -> int:
    """Changelog records an instance read to restore its stores, from its log."""
    text = instance.log_path.read_text(errors="replace")
    return sum(int(n) for n in re.findall(r"(\d+) record\(s\) read", text))
