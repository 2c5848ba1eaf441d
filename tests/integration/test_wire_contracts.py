"""What the scorer writes on the wire is what its published contracts say.

A short real run (champion and challenger, valid and malformed events, labels, a model
event) fills every topic the scorer writes; each record read back must match the exported
JSON Schema of its topic's contract, and its Kafka headers the headers schema of its AsyncAPI
message: every header declared, those required present, each once.
"""

from __future__ import annotations

import signal
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from confluent_kafka import Producer
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from models.datasets import agrawal_stream
from models.training import TrainedModel
from schemas.contracts import CONTRACTS, ModelEvent
from schemas.export import build_asyncapi, json_schema
from streams.kafka.topics import read_topic_specs
from streams.model_events import publish_model_event
from streams.paths import infra_dir
from streams.settings import Settings
from tests.support.models import RegisterModels
from tests.support.scorer import ScorerSetup

EVENTS = 3_000
MALFORMED = (b"{oops", b"[1, 2, 3]", b'{"event_id": "x"}')
DOCUMENT_URI = "urn:streaming-scorer:asyncapi"
PRODUCED = ("decisions", "decisions.shadow", "explanations", "events.dlq", "monitor-summaries",
            "drift-alerts", "model-events", "monitor-checkpoints")  # fmt: skip
"""Topics this run must fill; fairness-reports is read too, if the run produced any."""


def _asyncapi(settings: Settings) -> dict[str, Any]:
    return build_asyncapi(read_topic_specs(infra_dir() / "topics.yaml", settings), settings)


def _headers_validators(
    document: dict[str, Any],
) -> dict[str, tuple[Draft202012Validator, dict[str, Any]]]:
    """A validator of each channel's message headers and the headers schema it checks, by
    topic id, resolving the document's ``$ref``s through a referencing registry."""
    registry: Registry[Any] = Registry().with_resource(
        DOCUMENT_URI, Resource.from_contents(document, default_specification=DRAFT202012)
    )
    resolver = registry.resolver(DOCUMENT_URI)
    validators = {}
    for topic_id, channel in document["channels"].items():
        [message_ref] = channel["messages"].values()
        message = resolver.lookup(DOCUMENT_URI + message_ref["$ref"]).contents
        if "headers" in message:
            ref = DOCUMENT_URI + message["headers"]["$ref"]
            validator = Draft202012Validator({"$ref": ref}, registry=registry)
            validators[topic_id] = (validator, resolver.lookup(ref).contents)
    return validators


def _events() -> list[tuple[bytes | None, bytes | None]]:
    stream = agrawal_stream(EVENTS, seed=83, drift_at=EVENTS // 2, drift_factor=1.5,
                            start=datetime(2026, 4, 1, tzinfo=UTC),
                            interval=timedelta(milliseconds=10), run_id="wire")  # fmt: skip
    records: list[tuple[bytes | None, bytes | None]] = [
        (e.event["entity_id"].encode(), orjson.dumps(e.event)) for e in stream
    ]
    return records + [(b"bad", value) for value in MALFORMED]


def _labels(setup: ScorerSetup, records: list[tuple[bytes | None, bytes | None]]) -> None:
    producer = Producer({"bootstrap.servers": setup.bootstrap, "linger.ms": 5})
    events = [orjson.loads(value) for _, value in records[: EVENTS // 3] if value]
    labels = [{"event_id": e["event_id"], "label": 1,
               "label_time": (datetime.fromisoformat(e["event_time"])
                              + timedelta(seconds=1)).isoformat()} for e in events]  # fmt: skip
    labels.append({"event_id": "never-scored", "label": 0, "label_time": "2026-04-01T00:00:00Z"})
    for label in labels:
        producer.produce(setup.topics["feedback"], orjson.dumps(label), label["event_id"].encode())
        producer.poll(0)
    assert producer.flush(30) == 0


def test_records_and_headers_match_the_exported_contracts(
    scorer_setup: ScorerSetup, trained_logistic: TrainedModel, register_models: RegisterModels
) -> None:
    setup = scorer_setup
    [challenger] = register_models(trained_logistic, registry=setup.registry)
    setup.registry.set_alias("loans", "challenger", challenger.version, actor="test")
    setup.env["SCORER_MONITOR_WINDOW_SECONDS"] = "5"
    settings = Settings(
        bootstrap_servers=setup.bootstrap, topic_model_events=setup.topics["model-events"]
    )
    assert publish_model_event(settings, ModelEvent(
        event_type="promoted", model_name="loans", version=challenger.version,
        sha256=challenger.manifest.artifact.sha256, actor="test", occurred_at=datetime.now(UTC),
    )) is None  # fmt: skip
    assert publish_model_event(settings, ModelEvent(
        event_type="refused", model_name="loans", actor="test", reason="no version",
        occurred_at=datetime.now(UTC),
    )) is None  # fmt: skip

    engine, owner = setup.serve(), setup.monitor()
    records = _events()
    setup.produce(records)
    reader = setup.consumer(*PRODUCED, "fairness-reports", read_committed=True)
    name_of = {name: topic_id for topic_id, name in setup.topics.items()}
    seen: list[Any] = []

    def filled(messages: list[Any]) -> bool:
        counts = Counter(name_of[m.topic()] for m in messages)
        return counts["decisions"] >= EVENTS and all(counts[t] for t in PRODUCED)

    seen += setup.read(reader, lambda m: sum(name_of[x.topic()] == "decisions" for x in m)
                       >= EVENTS)  # fmt: skip
    _labels(setup, records)
    seen += setup.read(reader, lambda m: filled(seen + m), timeout=240)
    reader.close()
    for process in (engine, owner):
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0

    document = _asyncapi(settings)
    headers = _headers_validators(document)
    payloads = {name: Draft202012Validator(json_schema(c)) for name, c in CONTRACTS.items()}
    contract_of = {t.id: t.value for t in read_topic_specs(infra_dir() / "topics.yaml", settings)}
    checked: Counter[str] = Counter()
    problems: set[str] = set()  # one line per kind of mismatch, to see them all at once
    for message in seen:
        topic_id = name_of[message.topic()]
        payloads[contract_of[topic_id]].validate(orjson.loads(message.value()))
        names = [name for name, _ in message.headers() or ()]
        checked[topic_id] += 1
        if len(names) != len(set(names)):
            problems.add(f"{topic_id}: a header is repeated in {names}")
        if topic_id not in headers:
            if names:
                problems.add(f"{topic_id}: records carry {names}; the message declares none")
            continue
        validator, declared = headers[topic_id]
        undeclared = set(names) - set(declared.get("properties", {}))
        if undeclared:
            problems.add(f"{topic_id}: headers {sorted(undeclared)} are not declared")
        values = {name: (value or b"").decode() for name, value in message.headers() or ()}
        problems.update(f"{topic_id}: {error.message}" for error in validator.iter_errors(values))
    assert not problems, "\n".join(sorted(problems))
    assert set(PRODUCED) <= set(checked), checked
    print("records checked per topic:", dict(checked))
