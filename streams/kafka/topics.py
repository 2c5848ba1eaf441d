"""Topic specifications (``infra/topics.yaml``): read once, applied idempotently.

Both ``scorer topics apply`` (which creates the topics) and the AsyncAPI export (which
documents them) read the file through :func:`read_topic_specs`, so the two can never
disagree on a topic's name, key, contract, partitions or configuration. Topic names are
resolved through the settings object (``topic_events`` -> ``SCORER_TOPIC_EVENTS``).

``apply_topics`` creates missing topics, adds partitions where the spec asks for more, and
sets the configuration values the spec lists. It never deletes a topic, never lowers a
partition count (Kafka cannot) and leaves unlisted configuration alone, so a second run
changes nothing and says so. ``max_message_bytes`` reads back the one setting the engines
size their output by: the largest record a topic accepts (the dead letters' budget).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from schemas.contracts import CONTRACTS
from schemas.errors import TopicSpecError
from streams.paths import infra_dir
from streams.settings import Settings

ADMIN_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class TopicSpec:
    """One declared topic; ``name`` is its resolved address."""

    id: str
    name: str
    key: str
    value: str
    description: str
    partitions: int | None
    replication_factor: int | None
    config: dict[str, Any]


def read_topic_specs(topics_file: Path, settings: Any) -> list[TopicSpec]:
    """Every topic of ``topics_file``, validated, with names resolved through ``settings``."""
    try:
        document = yaml.safe_load(topics_file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TopicSpecError(f"cannot read {topics_file}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise TopicSpecError(f"{topics_file}: not valid YAML: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("topics"), dict):
        raise TopicSpecError(f"{topics_file}: expected a mapping with a 'topics' mapping")
    defaults = document.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise TopicSpecError(f"{topics_file}: 'defaults' must be a mapping")
    topics = []
    for topic_id, spec in document["topics"].items():
        where = f"{topics_file}: topic {topic_id!r}"
        if not isinstance(spec, dict):
            raise TopicSpecError(f"{where}: expected a mapping")
        for field in ("setting", "key", "value"):
            if not isinstance(spec.get(field), str) or not spec[field]:
                raise TopicSpecError(f"{where}: {field!r} must be a non-empty string")
        if spec["value"] not in CONTRACTS:
            raise TopicSpecError(
                f"{where}: value {spec['value']!r} is not a contract; "
                f"expected one of {', '.join(sorted(CONTRACTS))}"
            )
        address = getattr(settings, spec["setting"], None)
        if not isinstance(address, str) or not address:
            raise TopicSpecError(f"{where}: setting {spec['setting']!r} names no topic setting")
        config = spec.get("config") or {}
        if not isinstance(config, dict):
            raise TopicSpecError(f"{where}: 'config' must be a mapping")
        topics.append(
            TopicSpec(
                id=str(topic_id),
                name=address,
                key=spec["key"],
                value=spec["value"],
                description=str(spec.get("description") or ""),
                partitions=_optional_int(where, "partitions", spec, defaults),
                replication_factor=_optional_int(where, "replication_factor", spec, defaults),
                config=config,
            )
        )
    return topics


def _optional_int(
    where: str, field: str, spec: dict[str, Any], defaults: dict[str, Any]
) -> int | None:
    value = spec.get(field, defaults.get(field))
    if value is None:
        return None
    if type(value) is not int or value < 1:
        raise TopicSpecError(f"{where}: {field!r} must be a positive integer, got {value!r}")
    return value


def default_topics_file() -> Path:
    return infra_dir() / "topics.yaml"


def load_topic_specs(settings: Settings, path: Path | None = None) -> list[TopicSpec]:
    """The topics of ``path`` (default: SCORER_TOPICS_FILE, else infra/topics.yaml)."""
    return read_topic_specs(path or settings.topics_file or default_topics_file(), settings)


@dataclass(frozen=True)
class TopicChange:
    topic: str
    action: str  # "created", "partitions", "config", "unchanged"
    detail: str


def apply_topics(admin: AdminClient, specs: list[TopicSpec]) -> list[TopicChange]:
    """Bring the cluster's topics in line with ``specs``; report one change per topic."""
    try:
        metadata = admin.list_topics(timeout=ADMIN_TIMEOUT_S)
    except KafkaException as exc:
        raise TopicSpecError(f"cannot list topics: {exc.args[0]}") from exc
    existing = {name: len(topic.partitions) for name, topic in metadata.topics.items()}
    changes: list[TopicChange] = []
    to_create = [s for s in specs if s.name not in existing]
    if to_create:
        futures = admin.create_topics(
            [NewTopic(s.name, s.partitions or 1, s.replication_factor or 1, config=s.config)
             for s in to_create],
            operation_timeout=ADMIN_TIMEOUT_S,
        )  # fmt: skip
        for spec in to_create:
            try:
                futures[spec.name].result(timeout=ADMIN_TIMEOUT_S)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise TopicSpecError(f"create topic {spec.name} failed: {exc.args[0]}") from exc
                # Created a moment ago, before our metadata showed it: update it instead.
                topic = admin.list_topics(spec.name, timeout=ADMIN_TIMEOUT_S).topics[spec.name]
                existing[spec.name] = len(topic.partitions)
                continue
            changes.append(
                TopicChange(
                    spec.name, "created", f"{spec.partitions or 1} partitions, {spec.config}"
                )
            )
    _await_visible(admin, [s.name for s in specs])
    for spec in specs:
        if spec.name in existing:
            changes.extend(_update(admin, spec, existing[spec.name]))
    return changes


def _await_visible(admin: AdminClient, names: list[str]) -> None:
    """Wait until every topic is in the broker's metadata with a leader for each partition.

    A topic is created by the controller a moment before brokers serve it; producing to it,
    or describing it, in that moment fails with UNKNOWN_TOPIC_OR_PART.
    """
    deadline = time.monotonic() + ADMIN_TIMEOUT_S
    while True:
        topics = admin.list_topics(timeout=ADMIN_TIMEOUT_S).topics
        pending = [
            n for n in names
            if n not in topics or topics[n].error is not None
            or any(p.leader < 0 for p in topics[n].partitions.values())
        ]  # fmt: skip
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TopicSpecError(f"topics not served by the broker after creation: {pending}")
        time.sleep(0.1)


def max_message_bytes(admin: AdminClient, topic: str, timeout: float = 10.0) -> int | None:
    """The ``max.message.bytes`` the broker applies to ``topic`` (the topic's own value, or
    the broker's default), or None when it cannot be read: no such topic, no right to
    describe its configuration, or no answer within ``timeout``."""
    resource = ConfigResource(ResourceType.TOPIC, topic)
    try:
        future = admin.describe_configs([resource], request_timeout=timeout)[resource]
        return int(future.result(timeout=timeout)["max.message.bytes"].value)
    except (KafkaException, TimeoutError, KeyError, TypeError, ValueError):
        return None


def _update(admin: AdminClient, spec: TopicSpec, partitions: int) -> list[TopicChange]:
    changes = []
    wanted = spec.partitions or 1
    if partitions < wanted:
        future = admin.create_partitions([NewPartitions(spec.name, wanted)])
        _wait(future[spec.name], f"add partitions to {spec.name}")
        changes.append(TopicChange(spec.name, "partitions", f"{partitions} -> {spec.partitions}"))
    resource = ConfigResource(ResourceType.TOPIC, spec.name)
    current = _wait(admin.describe_configs([resource])[resource], f"describe {spec.name}")
    drift = {k: v for k, v in spec.config.items() if k not in current or current[k].value != v}
    if drift:
        entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
                   for k, v in drift.items()]  # fmt: skip
        resource = ConfigResource(ResourceType.TOPIC, spec.name, incremental_configs=entries)
        _wait(admin.incremental_alter_configs([resource])[resource], f"configure {spec.name}")
        _await_config(admin, spec)
        changes.append(TopicChange(spec.name, "config", f"set {drift}"))
    if not changes:
        changes.append(TopicChange(spec.name, "unchanged", "already as specified"))
    return changes


def _await_config(admin: AdminClient, spec: TopicSpec) -> None:
    """Wait until the broker describes the topic with the values just set."""
    resource = ConfigResource(ResourceType.TOPIC, spec.name)
    deadline = time.monotonic() + ADMIN_TIMEOUT_S
    while time.monotonic() < deadline:
        current = _wait(admin.describe_configs([resource])[resource], f"describe {spec.name}")
        if all(k in current and current[k].value == v for k, v in spec.config.items()):
            return
        time.sleep(0.1)
    raise TopicSpecError(f"configuration of {spec.name} not applied after {ADMIN_TIMEOUT_S}s")


def _wait(future: Any, what: str) -> Any:
    try:
        return future.result(timeout=ADMIN_TIMEOUT_S)
    except KafkaException as exc:
        raise TopicSpecError(f"{what} failed: {exc.args[0]}") from exc
    except TimeoutError as exc:
        raise TopicSpecError(f"{what} timed out after {ADMIN_TIMEOUT_S:.0f}s") from exc
