"""JSON Schema and AsyncAPI export: complete, self-contained, and true to the contracts."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas.contracts import CONTRACTS, LINEAGE_HEADERS, RECORD_HEADERS
from schemas.errors import TopicSpecError
from schemas.export import (
    JSON_SCHEMA_DIALECT,
    RECEIVED_CONTRACTS,
    build_asyncapi,
    headers_schema_name,
    json_schema,
    write_asyncapi,
    write_json_schemas,
)
from streams.cli import main
from streams.kafka.topics import read_topic_specs
from streams.paths import infra_dir
from streams.settings import Settings
from tests.support.contracts import UNVERSIONED_CONTRACTS, examples, join_records

TOPICS_FILE = infra_dir() / "topics.yaml"


def _asyncapi(topics_file: Path, settings: Any) -> dict[str, Any]:
    """The AsyncAPI document of a topic specification file, read as the command reads it."""
    return build_asyncapi(read_topic_specs(topics_file, settings), settings)


def _topics() -> dict[str, Any]:
    return yaml.safe_load(TOPICS_FILE.read_text(encoding="utf-8"))["topics"]


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref} points outside the document"
    node: Any = document
    for raw in ref[2:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def _violations(value: Any, schema: dict[str, Any], root: dict[str, Any], at: str = "") -> list:
    """A small JSON Schema checker, enough for these documents (jsonschema is not installed)."""
    if "$ref" in schema:
        return _violations(value, _resolve(root, schema["$ref"]), root, at)
    if "anyOf" in schema:
        options = [_violations(value, option, root, at) for option in schema["anyOf"]]
        return [] if any(not o for o in options) else [f"{at}: matches no anyOf option"]
    problems = []
    kind = schema.get("type")
    if kind == "integer":
        ok = type(value) is int
    elif kind == "number":
        ok = type(value) in (int, float)
    elif kind:
        ok = type(value) is _TYPES[kind]
    else:
        ok = True
    if not ok:
        return [f"{at}: {value!r} is not {kind}"]
    if "const" in schema and value != schema["const"]:
        problems.append(f"{at}: != const")
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{at}: not in enum")
    if isinstance(value, str):
        if len(value) > schema.get("maxLength", len(value)):
            problems.append(f"{at}: too long")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            problems.append(f"{at}: pattern")
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and not schema.get("minimum", value) <= value <= schema.get("maximum", value):
        problems.append(f"{at}: out of range")
    if isinstance(value, list):
        if len(value) > schema.get("maxItems", len(value)):
            problems.append(f"{at}: too many items")
        for i, item in enumerate(value):
            problems += _violations(item, schema.get("items", {}), root, f"{at}/{i}")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        required = schema.get("required", [])
        problems += [f"{at}: missing {name}" for name in required if name not in value]
        for name, item in value.items():
            if name in properties:
                problems += _violations(item, properties[name], root, f"{at}/{name}")
            elif schema.get("additionalProperties") is False:
                problems.append(f"{at}: unexpected {name}")
            elif isinstance(schema.get("additionalProperties"), dict):
                sub = schema["additionalProperties"]
                problems += _violations(item, sub, root, f"{at}/{name}")
    return problems


# --- JSON Schema -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_json_schema_is_standalone_and_lists_required_fields(name: str) -> None:
    contract = CONTRACTS[name]
    schema = json_schema(contract)
    assert schema["$schema"] == JSON_SCHEMA_DIALECT
    assert schema["$id"].endswith(f":{name}:v1")
    assert schema["title"] == name
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False, "unknown fields are rejected"
    required = {field for field, info in contract.model_fields.items() if info.is_required()}
    assert set(schema.get("required", [])) == required
    assert set(schema["properties"]) == set(contract.model_fields)
    if name in UNVERSIONED_CONTRACTS:
        assert "schema_version" not in schema["properties"]
    else:
        assert schema["properties"]["schema_version"]["const"] == 1
    for ref in _refs(schema):
        _resolve(schema, ref)


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_json_schema_accepts_the_example_and_refuses_a_broken_one(name: str) -> None:
    schema = json_schema(CONTRACTS[name])
    record = examples()[name].model_dump(mode="json")
    assert _violations(record, schema, schema) == []
    broken = {**record, "unknown_field": 1}
    del broken[sorted(schema["required"])[0]]
    assert len(_violations(broken, schema, schema)) == 2


def test_join_record_schema_requires_what_both_sides_carry() -> None:
    # A JSON Schema states the field every join record has; each side's own required
    # fields are checked by the contract (JoinRecord._side_fields), and are nullable here.
    schema = json_schema(CONTRACTS["JoinRecord"])
    assert schema["required"] == ["side"]
    assert schema["properties"]["side"]["enum"] == ["decision", "label", "watermark"]
    for form, record in join_records().items():
        assert _violations(record.model_dump(mode="json"), schema, schema) == [], form
        compact = record.model_dump(mode="json", exclude_none=True)
        assert _violations(compact, schema, schema) == [], form
    label = join_records()["label"].model_dump(mode="json")
    source = {**label["source"], "unknown_field": 1}
    del source["value_b64"]
    assert _violations({**label, "source": source}, schema, schema) == [
        "/source: matches no anyOf option"
    ]
    assert len(_violations(source, schema["$defs"]["JoinSource"], schema)) == 2


def test_json_schemas_validate_examples_with_jsonschema_when_installed() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    for name, record in examples().items():
        validator = jsonschema.Draft202012Validator(json_schema(CONTRACTS[name]))
        validator.validate(record.model_dump(mode="json"))


def test_scoring_event_schema_states_the_limits() -> None:
    features = json_schema(CONTRACTS["ScoringEvent"])["properties"]["features"]
    assert features["maxProperties"] == 256
    assert features["propertyNames"] == {"minLength": 1, "maxLength": 64}
    kinds = {option["type"] for option in features["additionalProperties"]["anyOf"]}
    assert kinds == {"boolean", "integer", "number", "string", "null"}


def test_write_json_schemas(tmp_path: Path) -> None:
    written = write_json_schemas(tmp_path / "out")
    assert sorted(p.name for p in written) == sorted(f"{n}.schema.json" for n in CONTRACTS)
    for path in written:
        document = json.loads(path.read_text(encoding="utf-8"))
        assert document["title"] == path.name.removesuffix(".schema.json")


# --- AsyncAPI --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def asyncapi() -> dict[str, Any]:
    return _asyncapi(TOPICS_FILE, Settings(bootstrap_servers="broker-1:9092"))


def test_asyncapi_header(asyncapi: dict[str, Any]) -> None:
    assert asyncapi["asyncapi"] == "3.0.0"
    assert asyncapi["info"]["title"]
    assert re.match(r"\d+\.\d+", asyncapi["info"]["version"])
    assert asyncapi["servers"] == {
        "kafka": {
            "host": "broker-1:9092",
            "protocol": "kafka",
            "description": "Kafka bootstrap server.",
        }
    }


def test_every_topic_has_a_channel(asyncapi: dict[str, Any]) -> None:
    topics = _topics()
    assert set(asyncapi["channels"]) == set(topics)
    for topic_id, spec in topics.items():
        channel = asyncapi["channels"][topic_id]
        assert channel["address"] == getattr(Settings(), spec["setting"])
        assert channel["bindings"]["kafka"]["topic"] == channel["address"]
        [message] = channel["messages"].values()
        assert _resolve(asyncapi, message["$ref"])["payload"]["$ref"].endswith(spec["value"])


def test_every_ref_resolves(asyncapi: dict[str, Any]) -> None:
    refs = _refs(asyncapi)
    assert len(refs) > 30
    for ref in refs:
        _resolve(asyncapi, ref)
    assert "$defs" not in json.dumps(asyncapi)


def test_operations_reference_their_channels(asyncapi: dict[str, Any]) -> None:
    topics = _topics()
    actions = {}
    for operation in asyncapi["operations"].values():
        channel_ref = operation["channel"]["$ref"]
        channel = _resolve(asyncapi, channel_ref)
        for message in operation["messages"]:
            assert message["$ref"].startswith(channel_ref + "/messages/")
            assert _resolve(asyncapi, message["$ref"]) in channel["messages"].values()
        actions[channel["title"]] = operation["action"]
    assert set(actions) == set(topics)
    assert {t for t, a in actions.items() if a == "receive"} == {
        "events",
        "feedback",
        "model-events",
    }


def test_messages_carry_key_and_lineage_headers(asyncapi: dict[str, Any]) -> None:
    messages = asyncapi["components"]["messages"]
    assert {message["name"] for message in messages.values()} == {
        spec["value"] for spec in _topics().values()
    }
    for message_id, message in messages.items():
        name = message["name"]
        assert message_id == name or message_id.startswith(name + "."), message_id
        key = message["bindings"]["kafka"]["key"]
        assert key["type"] == "string" and key["description"]
        assert message["contentType"] == "application/json"
        if name in RECEIVED_CONTRACTS - {"ModelEvent"}:
            assert "headers" not in message, "upstream records carry the upstream's headers"
        else:
            headers = _resolve(asyncapi, message["headers"]["$ref"])
            assert headers["type"] == "object" and headers["description"]
            assert headers["additionalProperties"] is False
            assert list(headers["properties"]) == list(RECORD_HEADERS[name].names)
            assert headers["required"] == list(RECORD_HEADERS[name].required)
            for header in headers["properties"].values():
                assert header["type"] == "string" and header["description"]
    assert messages["Decision"]["bindings"]["kafka"]["key"]["description"].endswith("entity_id.")


def test_a_contract_with_two_keys_has_a_message_per_topic(asyncapi: dict[str, Any]) -> None:
    # JoinRecord is keyed by event_id on the join's input and by side and event_id on its
    # changelog: one message for each topic, with its own key, and the same payload.
    messages = asyncapi["components"]["messages"]
    join = {mid: m for mid, m in messages.items() if m["name"] == "JoinRecord"}
    assert set(join) == {"JoinRecord.outcome-join-input", "JoinRecord.outcome-join-changelog"}
    keys = {mid: m["bindings"]["kafka"]["key"]["description"] for mid, m in join.items()}
    assert keys == {
        "JoinRecord.outcome-join-input": "Record key: event_id.",
        "JoinRecord.outcome-join-changelog": "Record key: side and event_id (d or l, then the id).",
    }
    assert {m["payload"]["$ref"] for m in join.values()} == {"#/components/schemas/JoinRecord"}
    for topic in ("outcome-join-input", "outcome-join-changelog"):
        [ref] = asyncapi["channels"][topic]["messages"].values()
        assert ref == {"$ref": f"#/components/messages/JoinRecord.{topic}"}
    shared = {m["name"] for m in messages.values()}
    assert {"Decision", "Outcome"} <= shared and "Decision.decisions" not in messages


EXPECTED_HEADERS = {  # contract: (every header, those always present), as the producers write
    "Decision": (set(LINEAGE_HEADERS), set(LINEAGE_HEADERS)),
    "Explanation": (set(LINEAGE_HEADERS), set(LINEAGE_HEADERS)),
    "DriftAlert": ({"model_name", "model_version"}, {"model_name", "model_version"}),
    "FairnessReport": ({"model_name", "model_version"}, {"model_name", "model_version"}),
    "MonitorSummary": ({"model_name", "model_version"}, {"model_name", "model_version"}),
    "DeadLetter": ({"reason", "source_offset"}, {"reason", "source_offset"}),
    "ModelEvent": (
        {"model_name", "model_version", "model_sha256", "schema_version"},
        {"model_name", "schema_version"},
    ),
    "MonitorCheckpoint": (set(), set()),
    "Outcome": (
        {"event_id", "model_name", "model_version"},
        {"event_id", "model_name", "model_version"},
    ),
    "JoinRecord": (set(), set()),
}


def test_each_message_declares_exactly_its_headers(asyncapi: dict[str, Any]) -> None:
    assert set(RECORD_HEADERS) <= set(CONTRACTS)
    assert set(LINEAGE_HEADERS) == {
        "event_id", "model_name", "model_version", "model_sha256", "schema_version",
        "scorer_version",
    }  # fmt: skip
    messages = asyncapi["components"]["messages"]
    declared = {}
    for message in messages.values():
        if "headers" in message:
            name = message["name"]
            assert message["headers"]["$ref"].endswith("/" + headers_schema_name(name))
            declared[name] = _resolve(asyncapi, message["headers"]["$ref"])
    assert set(declared) == set(EXPECTED_HEADERS)
    for name, schema in declared.items():
        names, required = EXPECTED_HEADERS[name]
        assert (set(schema["properties"]), set(schema["required"])) == (names, required), name
    assert "LineageHeaders" not in asyncapi["components"]["schemas"]


def test_headers_schemas_accept_what_the_producers_write(asyncapi: dict[str, Any]) -> None:
    schemas = asyncapi["components"]["schemas"]
    lineage = dict.fromkeys(LINEAGE_HEADERS, "1")
    accepted = {
        "DecisionHeaders": lineage,
        "DeadLetterHeaders": {"reason": "INVALID_JSON", "source_offset": "7"},
        "ModelEventHeaders": {"model_name": "loans", "schema_version": "1"},
        "MonitorCheckpointHeaders": {},
        "OutcomeHeaders": {"event_id": "e-1", "model_name": "loans", "model_version": "3"},
        "JoinRecordHeaders": {},
    }
    for name, headers in accepted.items():
        assert _violations(headers, schemas[name], asyncapi) == [], name
    refused = {
        "DecisionHeaders": {**lineage, "extra": "x"},
        "DeadLetterHeaders": {"reason": "INVALID_JSON"},
        "DriftAlertHeaders": lineage,
        "MonitorCheckpointHeaders": {"model_name": "loans"},
        "OutcomeHeaders": {"model_name": "loans", "model_version": "3"},
        "JoinRecordHeaders": {"event_id": "e-1"},
    }
    for name, headers in refused.items():
        assert _violations(headers, schemas[name], asyncapi), name


def test_components_schemas_validate_examples(asyncapi: dict[str, Any]) -> None:
    schemas = asyncapi["components"]["schemas"]
    for name, record in examples().items():
        assert _violations(record.model_dump(mode="json"), schemas[name], asyncapi) == []


def test_topic_configuration_is_typed(asyncapi: dict[str, Any]) -> None:
    compacted = asyncapi["channels"]["model-events"]["bindings"]["kafka"]
    assert compacted["topicConfiguration"] == {"cleanup.policy": ["compact"]}
    assert compacted["partitions"] == 1
    events = asyncapi["channels"]["events"]["bindings"]["kafka"]
    assert events["topicConfiguration"]["retention.ms"] == 604800000
    assert events["partitions"] == 6 and events["replicas"] == 1


def test_addresses_and_servers_follow_the_settings() -> None:
    settings = Settings(bootstrap_servers="a:9092,b:9093", topic_events="prod.events")
    document = _asyncapi(TOPICS_FILE, settings)
    assert document["channels"]["events"]["address"] == "prod.events"
    assert [s["host"] for s in document["servers"].values()] == ["a:9092", "b:9093"]
    secure = Settings(kafka_extra={"security.protocol": "SASL_SSL", "sasl.password": "pw"})
    document = _asyncapi(TOPICS_FILE, secure)
    assert {s["protocol"] for s in document["servers"].values()} == {"kafka-secure"}
    assert "pw" not in json.dumps(document)


def _spec_file(tmp_path: Path, **topic: Any) -> Path:
    spec = {"setting": "topic_events", "key": "entity_id", "value": "ScoringEvent", **topic}
    path = tmp_path / "topics.yaml"
    path.write_text(yaml.safe_dump({"topics": {"events": spec}}), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("topic", "message"),
    [
        ({"value": "Scoring"}, "value 'Scoring' is not a contract; expected one of DeadLetter"),
        ({"setting": "topic_nope"}, "setting 'topic_nope' names no topic setting"),
        ({"key": ""}, "'key' must be a non-empty string"),
        ({"partitions": 0}, "'partitions' must be a positive integer"),
        ({"config": {"retention.ms": "a week"}}, "config retention.ms must be an integer"),
    ],
)
def test_bad_topic_spec_is_refused(tmp_path: Path, topic: dict[str, Any], message: str) -> None:
    with pytest.raises(TopicSpecError, match=re.escape(message)) as info:
        _asyncapi(_spec_file(tmp_path, **topic), Settings())
    assert "topic 'events'" in str(info.value)


def test_unreadable_topic_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TopicSpecError, match="cannot read"):
        _asyncapi(tmp_path / "missing.yaml", Settings())
    broken = tmp_path / "broken.yaml"
    broken.write_text("topics: [unclosed", encoding="utf-8")
    with pytest.raises(TopicSpecError, match="not valid YAML"):
        _asyncapi(broken, Settings())
    broken.write_text("- a list\n", encoding="utf-8")
    with pytest.raises(TopicSpecError, match="'topics' mapping"):
        _asyncapi(broken, Settings())


def test_write_asyncapi(tmp_path: Path) -> None:
    path = write_asyncapi(tmp_path, read_topic_specs(TOPICS_FILE, Settings()), Settings())
    assert path == tmp_path / "asyncapi.json"
    assert json.loads(path.read_text(encoding="utf-8"))["asyncapi"] == "3.0.0"


# --- command line ----------------------------------------------------------------------------


def test_cli_exports_everything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "contracts"
    assert main(["schemas", "export", "--out", str(out), "--topics", str(TOPICS_FILE)]) == 0
    expected = {f"{name}.schema.json" for name in CONTRACTS} | {"asyncapi.json"}
    assert {p.name for p in out.iterdir()} == expected
    printed = capsys.readouterr().out.split()
    assert {Path(line).name for line in printed} == expected


def test_cli_exports_one_format(tmp_path: Path) -> None:
    assert main(["schemas", "export", "--format", "asyncapi", "--out", str(tmp_path)]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["asyncapi.json"]


def test_cli_reports_a_bad_topic_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = _spec_file(tmp_path, value="Nope")
    argv = ["schemas", "export", "--format", "asyncapi", "--out", str(tmp_path / "o")]
    assert main([*argv, "--topics", str(bad)]) == 1
    assert "value 'Nope' is not a contract" in capsys.readouterr().err
