"""The topic specification file (``infra/topics.yaml``), read once for every consumer of it.

Both ``scorer topics apply`` (which creates the topics) and the AsyncAPI export (which
documents them) read the file through :func:`read_topic_specs`, so the two can never
disagree on a topic's name, key, contract, partitions or configuration. Topic names are
resolved through the settings object (``topic_events`` -> ``SCORER_TOPIC_EVENTS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from schemas.contracts import CONTRACTS
from schemas.errors import TopicSpecError


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
