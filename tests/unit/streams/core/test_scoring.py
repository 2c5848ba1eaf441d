"""The scoring core: exact explanations, contract-shaped records, per-event rejects."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import orjson
import pytest

from models.datasets import agrawal_events
from models.policy import ADVERSE_DECISIONS
from models.scoring_model import ScoringModel
from schemas.contracts import Decision, Explanation, RejectReason
from streams.core.scoring import score_batch
from tests.support.models import Registered

KINDS = ("logistic", "gbt", "river-logistic")


@pytest.fixture(scope="module")
def models(
    registered_logistic: Registered, registered_gbt: Registered, registered_river: Registered
) -> dict[str, ScoringModel]:
    """Each kind trained on the same 3,000 Agrawal rows, as the scorer serves it."""
    registered = (registered_logistic, registered_gbt, registered_river)
    return {kind: r.model for kind, r in zip(KINDS, registered, strict=True)}


@pytest.fixture(scope="module")
def events() -> list[dict]:
    return list(agrawal_events(1000, seed=22))


@pytest.mark.parametrize("kind", KINDS)
def test_explanations_are_additive_and_match_the_model(
    models: dict[str, ScoringModel], events: list[dict], kind: str
) -> None:
    model = models[kind]
    result = score_batch(model, events)
    assert len(result.decisions) == len(result.explanations) == 1000 and not result.rejects
    X = model.spec.vectorise([e["features"] for e in events]).X
    raw = model.raw_output(X)
    for explanation, expected in zip(result.explanations, raw, strict=True):
        total = explanation["base_value"] + sum(explanation["contributions"].values())
        assert abs(total - explanation["output_value"]) <= 1e-6
        assert abs(explanation["output_value"] - expected) <= 1e-9
        assert explanation["additivity_error"] <= 1e-6
        assert set(explanation["contributions"]) == set(model.spec.names)
    scores = np.array([d["score"] for d in result.decisions])
    assert np.allclose(scores, 1.0 / (1.0 + np.exp(-raw)), atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_records_satisfy_the_contracts(
    models: dict[str, ScoringModel], events: list[dict], kind: str
) -> None:
    model = models[kind]
    result = score_batch(model, events[:200])
    for decision, explanation in zip(result.decisions, result.explanations, strict=True):
        parsed = Decision.model_validate(decision)
        Explanation.model_validate(explanation)
        assert parsed.event_id == explanation["event_id"]
        assert parsed.model.version == model.manifest.version
        assert parsed.model.sha256 == model.manifest.artifact.sha256


def test_policy_and_reason_codes(models: dict[str, ScoringModel], events: list[dict]) -> None:
    model = models["logistic"]
    result = score_batch(model, events)
    policy = model.policy
    decided = {d["decision"] for d in result.decisions}
    assert decided == {"approve", "review", "decline"}
    for decision, explanation in zip(result.decisions, result.explanations, strict=True):
        expected = model.policy.decide(np.array([decision["score"]]))[0]
        assert decision["decision"] == expected
        assert decision["thresholds"] == {"review": policy.review_at, "decline": policy.decline_at}
        codes = decision["reason_codes"]
        if decision["decision"] not in ADVERSE_DECISIONS:
            assert codes == []
            continue
        assert 1 <= len(codes) <= 4
        contributions = [code["contribution"] for code in codes]
        assert contributions == sorted(contributions, reverse=True)
        assert all(c > 0 for c in contributions)
        strongest = max(explanation["contributions"].values())
        assert codes[0]["contribution"] == strongest
        for code in codes:
            assert code["feature"] in model.spec.names and code["text"]
            assert code["feature"] != "age_band"


def test_context_attributes_are_never_features(models: dict[str, ScoringModel]) -> None:
    for model in models.values():
        assert "age" not in model.spec.names and "age_band" not in model.spec.names
        assert model.manifest.context_attributes == ["age_band"]


def test_invalid_events_are_rejected_alone(
    models: dict[str, ScoringModel], events: list[dict]
) -> None:
    batch = copy.deepcopy(events[:10])
    batch[2]["features"]["salary"] = "a lot"
    batch[5]["features"].pop("loan")
    batch[7]["features"]["car"] = 99
    result = score_batch(models["gbt"], batch)
    assert result.rows == [0, 1, 3, 4, 6, 8, 9]
    assert [d["event_id"] for d in result.decisions] == [batch[i]["event_id"] for i in result.rows]
    assert [(r.index, r.reason) for r in result.rejects] == [
        (2, RejectReason.WRONG_TYPE),
        (5, RejectReason.MISSING_FEATURE),
        (7, RejectReason.UNKNOWN_CATEGORY),
    ]


def test_a_model_failure_isolates_the_poisonous_event(
    models: dict[str, ScoringModel], events: list[dict]
) -> None:
    model = models["logistic"]
    salary = model.spec.columns.index("salary")

    def fragile(X: np.ndarray) -> np.ndarray:
        if (X[:, salary] == 12345.0).any():
            raise ValueError("cannot score a salary of 12345")
        return model.raw_output(X)

    batch = copy.deepcopy(events[:16])
    batch[11]["features"]["salary"] = 12345.0
    result = score_batch(replace(model, raw_output=fragile), batch)
    assert sorted(result.rows) == [i for i in range(16) if i != 11]
    assert [(r.index, r.reason) for r in result.rejects] == [(11, RejectReason.SCORING_ERROR)]
    assert "cannot score a salary of 12345" in result.rejects[0].detail


def test_a_duplicate_equals_its_original_except_timing(
    models: dict[str, ScoringModel], events: list[dict]
) -> None:
    first = score_batch(models["gbt"], events[:50])
    second = score_batch(models["gbt"], events[:50])
    timing = {"scored_at", "latency_ms"}
    for a, b in zip(first.decisions, second.decisions, strict=True):
        assert {k: v for k, v in a.items() if k not in timing} == {
            k: v for k, v in b.items() if k not in timing
        }
    assert first.explanations == second.explanations


def test_shadow_and_no_explanations(models: dict[str, ScoringModel], events: list[dict]) -> None:
    result = score_batch(models["logistic"], events[:20], shadow=True, explain=False)
    assert result.explanations == [] and len(result.decisions) == 20
    assert all(d["shadow"] for d in result.decisions)


@pytest.mark.parametrize("kind", KINDS)
def test_an_event_scores_to_the_same_bits_alone_and_in_a_batch(
    models: dict[str, ScoringModel], events: list[dict], kind: str
) -> None:
    """A batch of one takes the small-batch paths (rows vectorised in Python, sums added in
    Python); a batch of 300 the column paths: the records agree bit for bit."""
    model = models[kind]
    timing = {"scored_at", "latency_ms"}
    batch = score_batch(model, events[:300])
    for index in range(0, 300, 7):
        alone = score_batch(model, [events[index]])
        a, b = alone.decisions[0], batch.decisions[index]
        assert {k: v for k, v in a.items() if k not in timing} == {
            k: v for k, v in b.items() if k not in timing
        }
        assert alone.explanations[0] == batch.explanations[index]
        assert (batch.X[index : index + 1] == alone.X).all()


def test_encoded_records_are_the_records(
    models: dict[str, ScoringModel], events: list[dict]
) -> None:
    result = score_batch(models["gbt"], events[:100])
    decisions, explanations = result.encoded()
    assert [orjson.loads(d) for d in decisions] == result.decisions
    assert [orjson.loads(e) for e in explanations] == result.explanations
    for value in explanations:
        Explanation.model_validate_json(value)
    for value in decisions:
        Decision.model_validate_json(value)
