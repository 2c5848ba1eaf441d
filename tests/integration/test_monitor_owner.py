"""The monitor owner's verdicts do not depend on how scoring is split, nor on restarts.

Each test runs two deployments side by side over the same events topic: a reference one and
one under test (two scorers in one group, or an owner killed and restarted mid-stream). Each
deployment writes its own decisions, summaries, alerts and reports; their records, without
wall-clock stamps, must be equal.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from confluent_kafka import Consumer, Producer

from models.datasets import agrawal_stream
from tests.support.kafka import group_offsets, unique, wait_for_members
from tests.support.scorer import JOIN_SETTINGS, JOIN_TOPICS, ScorerSetup
from tests.support.waiting import wait_until

OWN_TOPICS = {  # name: partitions
    "decisions": 3, "explanations": 3, "events.dlq": 3, "monitor-summaries": 1,
    "drift-alerts": 1, "fairness-reports": 1, **dict.fromkeys(JOIN_TOPICS, 3),
}  # fmt: skip
SETTING = {
    "decisions": "SCORER_TOPIC_DECISIONS", "explanations": "SCORER_TOPIC_EXPLANATIONS",
    "events.dlq": "SCORER_TOPIC_DLQ", "monitor-summaries": "SCORER_TOPIC_MONITOR_SUMMARIES",
    "drift-alerts": "SCORER_TOPIC_DRIFT_ALERTS",
    "fairness-reports": "SCORER_TOPIC_FAIRNESS_REPORTS", **JOIN_SETTINGS,
}  # fmt: skip
WALL_CLOCK = ("detected_at", "generated_at")


def second_deployment(
    setup: ScorerSetup, topic_factory: Callable[..., str], state_dir: Path
) -> tuple[dict[str, str], dict[str, str]]:
    """Environment and topics of a deployment sharing only the events and feedback."""
    topics = {
        name: topic_factory(name.replace(".", "-"), partitions=partitions)
        for name, partitions in OWN_TOPICS.items()
    }
    env = {**setup.env, **{SETTING[name]: topic for name, topic in topics.items()}}
    env["SCORER_GROUP_ID"] = unique("scorer")
    return {**env, **own_owner(topic_factory, state_dir)[0]}, topics


def own_owner(
    topic_factory: Callable[..., str], state_dir: Path
) -> tuple[dict[str, str], dict[str, str]]:
    """Settings of a monitor owner (and its outcome join) with groups, state and join topics
    of its own; and those topics."""
    topics = {name: topic_factory(name, partitions=3) for name in JOIN_TOPICS}
    env = {SETTING[name]: topic for name, topic in topics.items()}
    env["SCORER_MONITOR_GROUP_ID"] = unique("monitor")
    env["SCORER_JOIN_GROUP_ID"] = unique("join")
    env["SCORER_JOIN_STATE_DIR"] = str(state_dir / unique("join"))
    return env, topics


def committed_records(bootstrap: str, *topics: str) -> list[dict]:
    """Every committed record of single-partition ``topics``, read to their ends."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("reader"),
                         "auto.offset.reset": "earliest", "isolation.level": "read_committed",
                         "enable.partition.eof": True})  # fmt: skip
    consumer.subscribe(list(topics))
    found: list[dict] = []
    ends: set[str] = set()
    deadline = time.monotonic() + 30
    while len(ends) < len(topics) and time.monotonic() < deadline:
        for message in consumer.consume(500, timeout=0.5):
            if message.error() is not None:
                ends.add(str(message.topic()))
            else:
                found.append(orjson.loads(message.value()))
    consumer.close()
    return found


def verdicts(bootstrap: str, alerts: str, reports: str) -> list[str]:
    """Every committed alert and report, canonical JSON without wall-clock stamps, sorted."""
    return sorted(
        json.dumps({k: v for k, v in record.items() if k not in WALL_CLOCK}, sort_keys=True)
        for record in committed_records(bootstrap, alerts, reports)
    )


def caught_up(bootstrap: str, env: dict[str, str]) -> bool:
    """Whether the deployment of ``env`` is done with what was sent: its scorers committed
    every event (their summaries are written first), its outcome join every decision and
    label, and its owner every summary and outcome. The owner commits its verdicts in the
    transaction with its input offsets, so every verdict on those inputs is committed too."""
    inputs = [
        (env["SCORER_GROUP_ID"], env["SCORER_TOPIC_EVENTS"]),
        *((env["SCORER_JOIN_GROUP_ID"], env[setting])
          for setting in ("SCORER_TOPIC_DECISIONS", "SCORER_TOPIC_FEEDBACK",
                          "SCORER_TOPIC_JOIN_INPUT")),
        *((env["SCORER_MONITOR_GROUP_ID"], env[setting])
          for setting in ("SCORER_TOPIC_MONITOR_SUMMARIES", "SCORER_TOPIC_OUTCOMES")),
    ]  # fmt: skip
    return all(
        offsets.lag == 0
        for group, topic in inputs
        for offsets in group_offsets(bootstrap, group, topic).values()
    )


def settle(
    read: Callable[[], list[str]], at_least: int, done: Callable[[], bool], setup: ScorerSetup
) -> list[str]:
    """Read once the deployment is ``done`` with its input and at least ``at_least`` records
    are there; fail early if one of ``setup``'s processes died."""
    found: list[str] = []

    def settled() -> bool:
        setup.check_alive()
        if not done():
            return False
        found[:] = read()
        return len(found) >= at_least

    wait_until(settled, f"at least {at_least} settled verdicts", timeout=240, every=1)
    return found


def wait_caught_up(bootstrap: str, group: str, topic: str, count: int) -> None:
    """Until ``group`` has committed every record of ``topic`` (at least ``count``)."""

    def done() -> bool:
        offsets = group_offsets(bootstrap, group, topic).values()
        return sum(o.high for o in offsets) >= count and all(o.lag == 0 for o in offsets)

    wait_until(done, f"{group} to catch up on {topic}", timeout=180)


def drift_records(count: int, drift_at: int, seed: int, run_id: str) -> list:
    return list(agrawal_stream(count, seed=seed, drift_at=drift_at, drift_factor=1.5,
                               start=datetime(2026, 3, 1, tzinfo=UTC),
                               interval=timedelta(milliseconds=10), run_id=run_id))  # fmt: skip


def encoded(stream: list) -> list[tuple[bytes, bytes]]:
    return [(e.event["entity_id"].encode(), orjson.dumps(e.event)) for e in stream]


def publish_labels(setup: ScorerSetup, stream: list, extra: list[dict] | None = None) -> None:
    producer = Producer({"bootstrap.servers": setup.bootstrap, "linger.ms": 5})
    labels = [
        {"event_id": e.event["event_id"], "label": e.label,
         "label_time": (datetime.fromisoformat(e.event["event_time"])
                        + timedelta(seconds=1)).isoformat()}
        for e in stream
    ] + (extra or [])  # fmt: skip
    for label in labels:
        producer.produce(setup.topics["feedback"], orjson.dumps(label), label["event_id"].encode())
        producer.poll(0)
    assert producer.flush(30) == 0


def stop(*processes: object) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)  # type: ignore[attr-defined]
        assert process.wait(60) == 0  # type: ignore[attr-defined]


def test_two_scorers_give_the_verdicts_of_one(
    scorer_setup: ScorerSetup, topic_factory: Callable[..., str], tmp_path: Path
) -> None:
    setup = scorer_setup
    setup.env["SCORER_MONITOR_WINDOW_SECONDS"] = "5"
    single_env, single = second_deployment(setup, topic_factory, tmp_path)

    pair = [setup.serve(), setup.serve()]
    wait_for_members(setup.bootstrap, setup.env["SCORER_GROUP_ID"], 2)
    owner = setup.monitor()
    one = setup.start("serve", "--metrics-port", "0", env=single_env)
    single_owner = setup.start("monitor", env=single_env)
    setup.produce(encoded(drift_records(14_000, 8_000, seed=57, run_id="split")))

    split_verdicts = settle(lambda: verdicts(setup.bootstrap, setup.topics["drift-alerts"],
                                             setup.topics["fairness-reports"]), 20,
                            lambda: caught_up(setup.bootstrap, setup.env), setup)  # fmt: skip
    single_verdicts = settle(lambda: verdicts(setup.bootstrap, single["drift-alerts"],
                                              single["fairness-reports"]), 20,
                             lambda: caught_up(setup.bootstrap, single_env), setup)  # fmt: skip
    stop(*pair, owner, one, single_owner)

    assert any('"status": "open"' in v and '"feature": "loan"' in v for v in single_verdicts)
    assert split_verdicts == single_verdicts


def test_a_restarted_owner_gives_the_verdicts_of_an_uninterrupted_one(
    scorer_setup: ScorerSetup, topic_factory: Callable[..., str]
) -> None:
    """The owner under test is SIGKILLed mid-stream and restarted."""
    setup = scorer_setup
    setup.env["SCORER_MONITOR_WINDOW_SECONDS"] = "5"
    setup.topics["events.dlq"] = topic_factory("events-dlq", partitions=1)  # to read it whole
    setup.env["SCORER_TOPIC_DLQ"] = setup.topics["events.dlq"]
    scorer = setup.serve()
    reference = setup.monitor()
    # Both owners judge the outcomes of one outcome join (the reference owner's): the owner
    # under test runs none (--no-join), so what differs between them is only its restart.
    restarted_env = {**setup.env, "SCORER_MONITOR_GROUP_ID": unique("monitor")}
    topics = {name: topic_factory(name, partitions=1)
              for name in ("drift-alerts", "fairness-reports")}  # fmt: skip
    restarted_env.update({"SCORER_TOPIC_DRIFT_ALERTS": topics["drift-alerts"],
                          "SCORER_TOPIC_FAIRNESS_REPORTS": topics["fairness-reports"]})  # fmt: skip
    victim = setup.start("monitor", "--no-join", env=restarted_env)

    stream = drift_records(12_000, 6_000, seed=73, run_id="restart")
    first, second = stream[:7_000], stream[7_000:]
    decisions = setup.topics["decisions"]
    joins = (setup.env["SCORER_JOIN_GROUP_ID"],)
    setup.produce(encoded(first))
    for group in joins:  # labels come after their decisions, as they do in production
        wait_caught_up(setup.bootstrap, group, decisions, len(first))
    publish_labels(setup, first[:5_000])
    under_test = lambda: verdicts(setup.bootstrap, topics["drift-alerts"],  # noqa: E731
                                  topics["fairness-reports"])  # fmt: skip
    # some verdicts are committed; the stream goes on
    wait_until(lambda: len(under_test()) >= 5, "verdicts before the kill", timeout=120)
    victim.kill()
    victim.wait(30)

    setup.produce(encoded(second))
    restarted = setup.start("monitor", "--no-join", env=restarted_env)
    for group in joins:
        wait_caught_up(setup.bootstrap, group, decisions, len(stream))
    duplicate = {"event_id": first[10].event["event_id"], "label": 1,
                 "label_time": datetime(2026, 3, 1, 0, 1, tzinfo=UTC).isoformat()}  # fmt: skip
    publish_labels(setup, first[5_000:] + second, [duplicate])

    expected = settle(lambda: verdicts(setup.bootstrap, setup.topics["drift-alerts"],
                                       setup.topics["fairness-reports"]), 30,
                      lambda: caught_up(setup.bootstrap, setup.env), setup)  # fmt: skip
    got = settle(
        under_test, len(expected), lambda: caught_up(setup.bootstrap, restarted_env), setup
    )
    stop(scorer, reference, restarted)

    assert any('"monitor": "concept"' in v for v in expected)  # labels were judged
    assert any('"monitor": "feature"' in v for v in expected)
    assert got == expected
    letters = committed_records(setup.bootstrap, setup.topics["events.dlq"])
    assert [r["reason"] for r in letters] == ["DUPLICATE_LABEL"]  # the join's, once
