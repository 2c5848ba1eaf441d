"""The batch processor both engines share: records in, outputs out, no broker."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import orjson
import pytest

from models.datasets import agrawal_events
from models.scoring_model import ScoringModel
from schemas.contracts import LINEAGE_HEADERS, SCHEMA_VERSION, DeadLetter, Decision, Explanation
from streams.core.scoring import ScoredBatch
from streams.engine.model_watch import ServingModels
from streams.engine.monitors import EngineMonitors
from streams.engine.processor import (
    SCORER_VERSION,
    BatchProcessor,
    ConsumedRecord,
    Output,
    lineage_headers,
)
from streams.observability import ScorerMetrics
from streams.settings import Settings
from tests.support.models import RegisterModels, TrainModel

SETTINGS = Settings(bootstrap_servers="127.0.0.1:1")


@pytest.fixture(scope="module")
def versions(train_model: TrainModel, register_models: RegisterModels) -> tuple[ScoringModel, ...]:
    """Versions 1 and 2 of ``loans``: logistic models on other Agrawal rows (seeds 3, 4)."""
    v1, v2 = register_models(*(train_model(rows=1500, seed=seed) for seed in (3, 4)))
    return v1.model, v2.model


def records_of(values: list[bytes | None], partition: int = 2) -> list[ConsumedRecord]:
    return [
        ConsumedRecord(value, f"k{i}".encode() if i % 2 else None, "events", partition,
                       100 + i, 1_700_000_000_000 + i)
        for i, value in enumerate(values)
    ]  # fmt: skip


def batch(count: int = 30) -> tuple[list[bytes | None], list[dict[str, Any]]]:
    events = list(agrawal_events(count, seed=8, run_id="unit"))
    values: list[bytes | None] = [orjson.dumps(e) for e in events]
    values[3] = b"{not json"
    values[7] = None
    broken = dict(events[11], features={**events[11]["features"], "salary": "plenty"})
    values[11] = orjson.dumps(broken)
    return values, events


def by_topic(outputs: list[Output]) -> dict[str, list[Output]]:
    grouped: dict[str, list[Output]] = {}
    for output in outputs:
        grouped.setdefault(output[0], []).append(output)
    return grouped


def processor(
    champion: ScoringModel,
    challenger: ScoringModel | None = None,
    monitors: EngineMonitors | None = None,
    metrics: ScorerMetrics | None = None,
) -> BatchProcessor:
    serving = ServingModels(champion, challenger)
    return BatchProcessor(SETTINGS, lambda: serving, metrics or ScorerMetrics(), monitors)


def test_valid_events_get_a_decision_and_an_explanation_with_lineage_headers(
    versions: tuple[ScoringModel, ScoringModel],
) -> None:
    champion = versions[0]
    values, events = batch()
    outputs = by_topic(processor(champion).process(records_of(values)))
    valid = [e for i, e in enumerate(events) if i not in (3, 7, 11)]

    decisions = outputs[SETTINGS.topic_decisions]
    explanations = outputs[SETTINGS.topic_explanations]
    assert [orjson.loads(v)["event_id"] for _, _, v, _ in decisions] == [
        e["event_id"] for e in valid
    ]
    for (_, key, value, headers), (_, ekey, evalue, eheaders) in zip(
        decisions, explanations, strict=True
    ):
        decision = Decision.model_validate_json(value)
        explanation = Explanation.model_validate_json(evalue)
        assert key == ekey == decision.entity_id.encode()
        assert explanation.event_id == decision.event_id
        assert headers == eheaders
        assert tuple(name for name, _ in headers) == LINEAGE_HEADERS
        assert dict(headers) == {
            "event_id": decision.event_id.encode(),
            "model_name": b"loans",
            "model_version": str(champion.manifest.version).encode(),
            "model_sha256": champion.manifest.artifact.sha256.encode(),
            "schema_version": str(SCHEMA_VERSION).encode(),
            "scorer_version": SCORER_VERSION.encode(),
        }
    assert SETTINGS.topic_decisions_shadow not in outputs


def test_invalid_records_become_dead_letters_with_their_source(
    versions: tuple[ScoringModel, ScoringModel],
) -> None:
    values, _ = batch()
    records = records_of(values)
    letters = by_topic(processor(versions[0]).process(records))[SETTINGS.topic_dlq]
    assert len(letters) == 3
    reasons = {}
    for _, key, value, headers in letters:
        letter = DeadLetter.model_validate_json(value)
        source = records[letter.source_offset - 100]
        assert (letter.source_topic, letter.source_partition) == ("events", 2)
        assert letter.source_timestamp_ms == source.timestamp_ms
        assert key == source.key
        assert base64.b64decode(letter.original_value_b64) == (source.value or b"")
        assert dict(headers) == {
            "reason": str(letter.reason).encode(),
            "source_offset": str(letter.source_offset).encode(),
        }
        reasons[letter.source_offset] = letter.reason.value
    assert reasons == {103: "INVALID_JSON", 107: "SCHEMA_VIOLATION", 111: "WRONG_TYPE"}


def test_a_challenger_scores_in_shadow_without_explanations(
    versions: tuple[ScoringModel, ScoringModel],
) -> None:
    champion, challenger = versions
    values, _ = batch()
    outputs = by_topic(processor(champion, challenger).process(records_of(values)))
    shadow = outputs[SETTINGS.topic_decisions_shadow]
    assert len(shadow) == len(outputs[SETTINGS.topic_decisions]) == 27
    assert len(outputs[SETTINGS.topic_explanations]) == 27
    for _, _, value, headers in shadow:
        decision = orjson.loads(value)
        assert decision["shadow"] is True
        assert decision["model"]["version"] == challenger.manifest.version
        assert headers[1:] == lineage_headers(challenger)


def test_the_serving_models_are_read_at_each_batch(
    versions: tuple[ScoringModel, ScoringModel],
) -> None:
    serving = [ServingModels(versions[0], None)]
    shared = BatchProcessor(SETTINGS, lambda: serving[0], ScorerMetrics(), None)
    values, _ = batch()
    first = by_topic(shared.process(records_of(values)))[SETTINGS.topic_decisions]
    serving[0] = ServingModels(versions[1], None)  # a promotion between two batches
    second = by_topic(shared.process(records_of(values)))[SETTINGS.topic_decisions]
    assert {orjson.loads(v)["model"]["version"] for _, _, v, _ in first} == {1}
    assert {orjson.loads(v)["model"]["version"] for _, _, v, _ in second} == {2}


def test_outcomes_are_counted(versions: tuple[ScoringModel, ScoringModel]) -> None:
    metrics = ScorerMetrics()
    values, _ = batch()
    outputs = processor(versions[0], metrics=metrics).process(records_of(values))
    sample = metrics.registry.get_sample_value
    assert sample("scorer_events_total", {"outcome": "scored"}) == 27
    assert sample("scorer_events_total", {"outcome": "rejected"}) == 3
    assert sample("scorer_dlq_total", {"reason": "INVALID_JSON"}) == 1
    assert sample("scorer_batch_size_count") == 1 and sample("scorer_batch_size_sum") == 30
    labels = [orjson.loads(v)["decision"] for t, _, v, _ in outputs if t == "decisions"]
    for label in set(labels):
        assert sample("scorer_decisions_total", {"decision": label}) == labels.count(label)


class RecordingMonitors(EngineMonitors):
    """The engine's monitors, recording what the processor hands them."""

    def __init__(self) -> None:
        super().__init__(SETTINGS, ScorerMetrics())
        self.calls: list[dict[str, Any]] = []

    def observe(self, model: ScoringModel, scored: ScoredBatch, *args: Any) -> list[Output]:
        names = ("event_times", "contexts", "partitions", "offsets")
        self.calls.append(
            {"model": model, "rows": len(scored.rows), **dict(zip(names, args, strict=True))}
        )
        return [("monitor-summaries", b"m", b"{}", [])]


def test_monitors_see_the_scored_rows_with_their_coordinates(
    versions: tuple[ScoringModel, ScoringModel],
) -> None:
    monitors = RecordingMonitors()
    values, events = batch()
    outputs = processor(versions[0], monitors=monitors).process(records_of(values))
    assert outputs[-1] == ("monitor-summaries", b"m", b"{}", [])  # leaves with the batch
    (call,) = monitors.calls
    kept = [i for i in range(30) if i not in (3, 7, 11)]
    assert call["model"] is versions[0] and call["rows"] == 27
    assert call["offsets"] == [100 + i for i in kept]
    assert call["partitions"] == [2] * 27
    assert len(call["event_times"]) == len(call["contexts"]) == 27
    assert call["event_times"] == [
        datetime.fromisoformat(events[i]["event_time"]).timestamp() for i in kept
    ]
    assert call["contexts"][0] == events[0].get("context", {})


def test_a_time_only_the_contract_can_read_is_monitored_not_fatal(
    versions: tuple[ScoringModel, ScoringModel],
) -> None:
    monitors = RecordingMonitors()
    events = list(agrawal_events(3, seed=8, run_id="unit"))
    events[2] = dict(events[2], event_time="2024-05-01t12:00:00z")  # RFC 3339's lowercase
    values: list[bytes | None] = [orjson.dumps(e) for e in events]
    outputs = by_topic(processor(versions[0], monitors=monitors).process(records_of(values)))
    decided = [orjson.loads(value) for _, _, value, _ in outputs[SETTINGS.topic_decisions]]
    assert [d["event_time"] for d in decided] == [e["event_time"] for e in events]
    (call,) = monitors.calls
    assert call["event_times"][2] == 1714564800.0


def test_an_empty_batch_has_no_outputs(versions: tuple[ScoringModel, ScoringModel]) -> None:
    assert processor(versions[0]).process([]) == []
