"""`scorer topics apply` creates the declared topics once; a second run changes nothing."""

from __future__ import annotations

import uuid
from dataclasses import replace

from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from streams.kafka.topics import apply_topics, load_topic_specs
from streams.settings import load_settings


def test_apply_twice_is_idempotent(kafka_bootstrap: str, kafka_admin: AdminClient) -> None:
    suffix = uuid.uuid4().hex[:8]
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    env.update({f"SCORER_TOPIC_{n}": f"{n.lower()}-{suffix}" for n in
                ("EVENTS", "DECISIONS", "DECISIONS_SHADOW", "EXPLANATIONS", "DRIFT_ALERTS",
                 "FAIRNESS_REPORTS", "FEEDBACK", "DLQ", "MODEL_EVENTS", "MONITOR_SUMMARIES",
                 "MONITOR_CHECKPOINTS", "OUTCOMES", "JOIN_INPUT", "JOIN_CHANGELOG")})  # fmt: skip
    specs = load_topic_specs(load_settings(env))
    assert all(spec.name.endswith(suffix) for spec in specs)

    first = apply_topics(kafka_admin, specs)
    assert {c.action for c in first} == {"created"}
    assert {c.topic for c in first} == {s.name for s in specs}

    second = apply_topics(kafka_admin, specs)
    assert {c.action for c in second} == {"unchanged"}

    metadata = kafka_admin.list_topics(timeout=10)
    for spec in specs:
        assert len(metadata.topics[spec.name].partitions) == spec.partitions
    compacted = ConfigResource(ResourceType.TOPIC, f"model_events-{suffix}")
    config = kafka_admin.describe_configs([compacted])[compacted].result(timeout=10)
    assert config["cleanup.policy"].value == "compact"


def test_apply_raises_partitions_and_fixes_config(
    kafka_bootstrap: str, kafka_admin: AdminClient
) -> None:
    name = f"events-{uuid.uuid4().hex[:8]}"
    settings = load_settings(
        {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "SCORER_TOPIC_EVENTS": name}
    )
    events = next(s for s in load_topic_specs(settings) if s.name == name)
    smaller = replace(events, partitions=2, config={"retention.ms": "1000"})
    apply_topics(kafka_admin, [smaller])

    changes = apply_topics(kafka_admin, [events])
    assert [c.action for c in changes] == ["partitions", "config"]
    assert len(kafka_admin.list_topics(timeout=10).topics[name].partitions) == events.partitions
    assert apply_topics(kafka_admin, [events])[0].action == "unchanged"
