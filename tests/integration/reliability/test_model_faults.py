"""Model faults while serving: bad versions are refused, a model that raises loses only the
events it fails on."""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson

from models.datasets import agrawal_events
from models.registry import Registry
from models.training import TrainedModel
from schemas.contracts import DeadLetter, ModelEvent
from streams.model_events import publish_model_event
from streams.settings import load_settings
from tests.support.models import RegisterModels
from tests.support.reliability import (
    POISON,
    EngineProcess,
    OutputReader,
    group_lag,
    valid_records,
)
from tests.support.scorer import ScorerSetup
from tests.support.waiting import wait_until


def promote_unverified(setup: ScorerSetup, version: int, sha256: str) -> None:
    """Move the champion alias without the registry's check, as a promotion racing with a
    change to the artifact would, and announce it on model-events."""
    setup.registry._move("loans", "champion", version, actor="test", reason=None,
                         action="promote")  # fmt: skip
    event = ModelEvent(event_type="promoted", model_name="loans", version=version,
                       alias="champion", previous_version=1, sha256=sha256, actor="test",
                       occurred_at=datetime.now(UTC))  # fmt: skip
    assert publish_model_event(load_settings(setup.env), event) is None


def refusals(reader: OutputReader) -> set[int]:
    events = [orjson.loads(m.value()) for m in reader.of("model-events")]
    return {e["version"] for e in events if e["event_type"] == "refused"}


def test_tampered_and_vanished_versions_are_refused_while_v1_serves(
    scorer_setup: ScorerSetup,
    trained_logistic: TrainedModel,
    register_models: RegisterModels,
    tmp_path: Path,
) -> None:
    registry: Registry = scorer_setup.registry
    records, ids = valid_records(6_000, seed=73, run_id="faults")
    engine = EngineProcess(scorer_setup, tmp_path, "--max-batch", "200")
    reader = OutputReader(scorer_setup, "decisions")
    announcements = OutputReader(scorer_setup, "model-events")
    scorer_setup.produce(records[:2_000])
    reader.read_until(lambda r: len(r.of("decisions")) >= 2_000, "decisions", engines=[engine])

    v2, v3 = (r.manifest for r in register_models(trained_logistic, trained_logistic,
                                                  registry=registry))  # fmt: skip
    artifact = registry.root / "loans" / "2" / v2.artifact.file
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact.write_bytes(bytes(data))  # tampered: same size, another sha256
    promote_unverified(scorer_setup, 2, v2.artifact.sha256)
    announcements.read_until(lambda r: 2 in refusals(r), "v2 refused", engines=[engine])

    # the version vanishes before the alias names it: otherwise the watcher may load it in
    # the moment between the promotion and the removal, and serve it
    shutil.rmtree(registry.root / "loans" / "3")
    promote_unverified(scorer_setup, 3, v3.artifact.sha256)
    announcements.read_until(lambda r: 3 in refusals(r), "v3 refused", engines=[engine])

    (registry.root / "loans" / "1" / v2.artifact.file).unlink()  # v1 serves from memory
    scorer_setup.produce(records[2_000:])
    reader.read_until(lambda r: set(r.event_ids("decisions")) >= set(ids), "every decision",
                      engines=[engine])  # fmt: skip
    versions = Counter(orjson.loads(m.value())["model"]["version"] for m in reader.of("decisions"))
    assert versions == Counter({1: len(reader.of("decisions"))})
    assert engine.metric("scorer_model_swaps_total", outcome="refused") == 2
    assert engine.metric("scorer_model_info", role="champion", version="1") == 1
    reasons = [
        orjson.loads(m.value())["reason"]
        for m in announcements.of("model-events")
        if orjson.loads(m.value())["event_type"] == "refused"
    ]
    assert any("sha256 mismatch" in reason for reason in reasons), reasons
    assert any("no version 3" in reason for reason in reasons), reasons
    reader.close(), announcements.close()
    assert engine.terminate() == 0


def test_events_the_model_fails_on_are_dead_lettered_the_rest_scored(
    scorer_setup: ScorerSetup, tmp_path: Path
) -> None:
    records: list[tuple[bytes | None, bytes | None]] = []
    poisoned: set[str] = set()
    scored: set[str] = set()
    for i, event in enumerate(agrawal_events(5_000, seed=79, run_id="poison")):
        if i % 97 == 5:
            event["features"]["salary"] = POISON
            poisoned.add(event["event_id"])
        else:
            scored.add(event["event_id"])
        records.append((event["entity_id"].encode(), orjson.dumps(event)))
    scorer_setup.produce(records)
    engine = EngineProcess(scorer_setup, tmp_path, "--max-batch", "500",
                           module="tests.support.reliability")  # fmt: skip
    reader = OutputReader(scorer_setup, "decisions", "events.dlq")
    reader.read_until(
        lambda r: (
            len(r.of("decisions")) >= len(scored) and len(r.of("events.dlq")) >= len(poisoned)
        ),
        "every outcome",
        engines=[engine],
    )
    wait_until(lambda: group_lag(scorer_setup) == 0, "all committed", engines=[engine])
    reader.settle()
    assert Counter(reader.event_ids("decisions")) == Counter(scored)
    letters = [DeadLetter.model_validate_json(m.value()) for m in reader.of("events.dlq")]
    assert Counter(letter.event_id for letter in letters) == Counter(poisoned)
    for letter in letters:
        assert letter.reason.value == "SCORING_ERROR"
        assert "cannot score this input" in letter.detail
        assert orjson.loads(letter.original_value())["features"]["salary"] == POISON
    reader.close()
    assert engine.terminate() == 0
