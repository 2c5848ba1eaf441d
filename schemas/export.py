"""Publish the contracts: one JSON Schema file per record, and an AsyncAPI 3.0 document.

The JSON Schemas (Draft 2020-12) describe what the scorer accepts for each record; consumers
in other languages generate code from them. The AsyncAPI document describes every topic of
``infra/topics.yaml`` from the scorer application's point of view: it *receives* on the
topics whose records come from outside (events, feedback, model events) and *sends* on all
the others. Channel ids are the topic ids of topics.yaml; a channel's address is the topic
name actually configured (``SCORER_TOPIC_*``). Every ``$ref`` points inside the document.
Each message the scorer produces declares exactly the Kafka headers it carries
(``schemas.contracts.RECORD_HEADERS``, schema ``<Contract>Headers``); records that come
from outside (events, feedback) declare none, since they carry whatever upstream sends.

>>> from schemas.contracts import Feedback
>>> schema = json_schema(Feedback)
>>> schema["$schema"]
'https://json-schema.org/draft/2020-12/schema'
>>> schema["$id"], schema["title"]
('urn:streaming-scorer:schema:Feedback:v1', 'Feedback')
>>> schema["required"]
['event_id', 'label', 'label_time']
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Protocol

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from schemas.contracts import CONTRACTS, RECORD_HEADERS, SCHEMA_VERSION, HeaderSet
from schemas.errors import ScorerError, TopicSpecError
from schemas.version import SCORER_VERSION

JSON_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID_PREFIX: Final = "urn:streaming-scorer:schema:"
ASYNCAPI_VERSION: Final = "3.0.0"
KAFKA_BINDING_VERSION: Final = "0.5.0"
RECEIVED_CONTRACTS: Final = frozenset({"ScoringEvent", "Feedback", "ModelEvent"})
"""Records the scorer consumes from outside; it produces every other contract."""
HEADERS_SCHEMA_SUFFIX: Final = "Headers"
"""The headers schema of contract ``X`` is ``components/schemas/XHeaders``."""

_HEADER_DESCRIPTIONS: Final = {
    "event_id": "event_id of the input event the record derives from",
    "model_name": "registered name of the model that produced the record",
    "model_version": "registry version of that model, a decimal integer",
    "model_sha256": "sha256 of the model artifact, 64 lowercase hex characters",
    "schema_version": "schema_version of the record's value, a decimal integer",
    "scorer_version": "version of the scorer that produced the record",
    "reason": "reject reason of the dead letter, as its reason field",
    "source_offset": "offset of the rejected record in its source topic, a decimal integer",
}
# Kafka binding 0.5.0 types these topic configurations; others stay in topics.yaml only.
_INT_TOPIC_CONFIGS: Final = (
    "retention.ms",
    "retention.bytes",
    "delete.retention.ms",
    "max.message.bytes",
)


class DeclaredTopic(Protocol):
    """What the export reads of one topic specification (``streams.kafka.topics.TopicSpec``)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def value(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def partitions(self) -> int | None: ...
    @property
    def replication_factor(self) -> int | None: ...
    @property
    def config(self) -> Mapping[str, Any]: ...


class ExportSettings(Protocol):
    """What the export needs of :class:`streams.settings.Settings`, plus its topic names."""

    @property
    def bootstrap_servers(self) -> str: ...

    @property
    def group_id(self) -> str: ...

    def kafka_config(self, **overrides: Any) -> dict[str, Any]: ...


def json_schema(contract: type[BaseModel]) -> dict[str, Any]:
    """The standalone Draft 2020-12 JSON Schema of one contract."""
    name = contract.__name__
    schema = contract.model_json_schema(mode="validation")
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"{SCHEMA_ID_PREFIX}{name}:v{SCHEMA_VERSION}",
        "title": name,
        **{k: v for k, v in schema.items() if k != "title"},
    }


def write_json_schemas(out_dir: Path) -> list[Path]:
    """Write ``<Contract>.schema.json`` for every contract; return the paths written."""
    return [
        _write_json(out_dir / f"{name}.schema.json", json_schema(contract))
        for name, contract in CONTRACTS.items()
    ]


def _topic_configuration(where: str, config: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in config.items():
        if name == "cleanup.policy":
            result[name] = [part.strip() for part in str(value).split(",") if part.strip()]
        elif name in _INT_TOPIC_CONFIGS:
            try:
                result[name] = int(str(value))
            except ValueError as exc:
                raise TopicSpecError(f"{where}: config {name} must be an integer") from exc
    return result


def _pointer(*parts: str) -> str:
    escaped = (part.replace("~", "~0").replace("/", "~1") for part in parts)
    return "#/" + "/".join(escaped)


def _camel(topic_id: str) -> str:
    words = [w for w in topic_id.replace(".", "-").replace("_", "-").split("-") if w]
    return "".join(w[:1].upper() + w[1:] for w in words)


def _summary(contract: type[BaseModel]) -> str:
    return (contract.__doc__ or contract.__name__).strip().splitlines()[0]


def headers_schema_name(contract: str) -> str:
    """The components/schemas name of the headers schema of ``contract``'s records."""
    return contract + HEADERS_SCHEMA_SUFFIX


def _headers_schema(contract: str, headers: HeaderSet) -> dict[str, Any]:
    if not headers.names:
        description = f"{contract} records carry no Kafka headers."
    else:
        description = f"Kafka headers of {contract} records, as UTF-8 strings"
        optional = [name for name in headers.names if name not in headers.required]
        if optional:
            description += f" ({', '.join(optional)} only when known)"
        description += "; no others."
    return {
        "type": "object",
        "description": description,
        "properties": {
            name: {"type": "string", "description": _HEADER_DESCRIPTIONS[name]}
            for name in headers.names
        },
        "required": list(headers.required),
        "additionalProperties": False,
    }


def _servers(settings: ExportSettings) -> dict[str, Any]:
    hosts = [h.strip() for h in settings.bootstrap_servers.split(",") if h.strip()]
    security = str(settings.kafka_config().get("security.protocol", "")).upper()
    protocol = "kafka-secure" if "SSL" in security or "SASL" in security else "kafka"
    return {
        ("kafka" if len(hosts) == 1 else f"kafka-{i}"): {
            "host": host,
            "protocol": protocol,
            "description": "Kafka bootstrap server.",
        }
        for i, host in enumerate(hosts, start=1)
    }


def build_asyncapi(topics: Sequence[DeclaredTopic], settings: ExportSettings) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of ``topics`` (as :func:`streams.kafka.topics.read_topic_specs`
    reads them), named per ``settings``."""
    ref_template = _pointer("components", "schemas") + "/{model}"
    _, definitions = models_json_schema(
        [(contract, "validation") for contract in CONTRACTS.values()], ref_template=ref_template
    )
    schemas: dict[str, Any] = dict(definitions.get("$defs", {}))

    keys_by_contract: dict[str, set[str]] = {}
    for topic in topics:
        keys_by_contract.setdefault(topic.value, set()).add(topic.key)

    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in topics:
        contract = CONTRACTS[topic.value]
        shared = len(keys_by_contract[topic.value]) == 1
        message_id = topic.value if shared else f"{topic.value}.{topic.id}"
        message: dict[str, Any] = {
            "name": topic.value,
            "title": topic.value,
            "summary": _summary(contract),
            "contentType": "application/json",
            "payload": {"$ref": _pointer("components", "schemas", topic.value)},
            "bindings": {
                "kafka": {
                    "key": {"type": "string", "description": f"Record key: {topic.key}."},
                    "bindingVersion": KAFKA_BINDING_VERSION,
                }
            },
        }
        if topic.value in RECORD_HEADERS:
            schema_name = headers_schema_name(topic.value)
            schemas[schema_name] = _headers_schema(topic.value, RECORD_HEADERS[topic.value])
            message["headers"] = {"$ref": _pointer("components", "schemas", schema_name)}
        messages[message_id] = message

        where = f"topic {topic.id!r}"
        kafka_binding: dict[str, Any] = {"topic": topic.name}
        if topic.partitions is not None:
            kafka_binding["partitions"] = topic.partitions
        if topic.replication_factor is not None:
            kafka_binding["replicas"] = topic.replication_factor
        configuration = _topic_configuration(where, topic.config)
        if configuration:
            kafka_binding["topicConfiguration"] = configuration
        kafka_binding["bindingVersion"] = KAFKA_BINDING_VERSION
        channels[topic.id] = {
            "address": topic.name,
            "title": topic.id,
            "description": topic.description,
            "messages": {message_id: {"$ref": _pointer("components", "messages", message_id)}},
            "bindings": {"kafka": kafka_binding},
        }

        receive = topic.value in RECEIVED_CONTRACTS
        operation: dict[str, Any] = {
            "action": "receive" if receive else "send",
            "channel": {"$ref": _pointer("channels", topic.id)},
            "summary": f"{'Consume' if receive else 'Produce'} {topic.value} records.",
            "messages": [{"$ref": _pointer("channels", topic.id, "messages", message_id)}],
        }
        if receive:
            operation["bindings"] = {
                "kafka": {
                    "groupId": {"type": "string", "enum": [settings.group_id]},
                    "bindingVersion": KAFKA_BINDING_VERSION,
                }
            }
        operations[f"{'receive' if receive else 'send'}{_camel(topic.id)}"] = operation

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:streaming-scorer",
        "info": {
            "title": "Streaming scorer",
            "version": SCORER_VERSION,
            "description": (
                "Explainable, monitored ML scoring on Apache Kafka. Operations are those of the "
                "scorer: it receives events, feedback and model events, and sends the rest. "
                "Payloads are JSON; their schemas are also published as JSON Schema files."
            ),
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": "application/json",
        "servers": _servers(settings),
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def write_asyncapi(
    out_dir: Path, topics: Sequence[DeclaredTopic], settings: ExportSettings
) -> Path:
    """Write ``asyncapi.json`` into ``out_dir`` and return its path."""
    return _write_json(out_dir / "asyncapi.json", build_asyncapi(topics, settings))


def _write_json(path: Path, document: dict[str, Any]) -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", "utf-8")
    except OSError as exc:
        raise ScorerError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path
