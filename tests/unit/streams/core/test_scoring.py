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
from schemas.contracts import (
    MAX_REASON_CODES,
    MAX_TOP_FEATURES,
    Decision,
    Explanation,
    RejectReason,
)
from streams.core.decode import EventColumns
from streams.core.scoring import (
    REASON_MIN_LOG_ODDS,
    REASON_MIN_SHARE,
    _input_hashes,
    input_hash,
    score_batch,
)
from streams.core.wire import Template, as_dicts
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


def test_encoded_records_are_the_contracts_json(
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


def reference_records(model: ScoringModel, events: list[dict]) -> tuple[list[dict], list[dict]]:
    """The decisions and explanations of ``events`` built one by one in plain Python, from
    the model's outputs and the rules the scoring module states (all events valid)."""
    X = model.spec.vectorise([e["features"] for e in events]).X
    raw, explained = model.raw_output(X), model.explainer.explain(X)
    per_feature = (
        explained.contributions
        if explained.per_feature
        else model.spec.sum_per_feature(explained.contributions)
    )
    names, texts = model.spec.names, model.manifest.reason_texts
    decisions, explanations = [], []
    for i, event in enumerate(events):
        score = float(model.score(raw[i : i + 1])[0])
        label = model.policy.decide(np.array([score]))[0]
        row = [float(v) for v in per_feature[i]]
        reasons = []
        if label in ADVERSE_DECISIONS:
            floor = max(REASON_MIN_SHARE * sum(v for v in row if v > 0), REASON_MIN_LOG_ODDS)
            ranked = sorted(range(len(names)), key=lambda j: -row[j])[:MAX_REASON_CODES]
            reasons = [
                {"code": f"RC_{names[j].upper()}", "feature": names[j],
                 "text": texts.get(names[j], f"{names[j]} raised the risk"),
                 "contribution": row[j]}
                for j in ranked
                if row[j] >= floor
            ]  # fmt: skip
        decisions.append(
            {"schema_version": 1, "event_id": event["event_id"], "entity_id": event["entity_id"],
             "decision": label, "score": score, "thresholds": model.policy.thresholds,
             "reason_codes": reasons, "model": model.ref,
             "input_hash": input_hash(event["features"]), "event_time": event["event_time"],
             "context": event.get("context") or {}, "shadow": False}
        )  # fmt: skip
        total = float(explained.base_value) + float(np.sum(explained.contributions[i]))
        explanations.append(
            {"schema_version": 1, "event_id": event["event_id"], "entity_id": event["entity_id"],
             "model": model.ref, "method": explained.method, "output_space": model.output_space,
             "base_value": float(explained.base_value), "output_value": float(raw[i]),
             "contributions": dict(zip(names, row, strict=True)),
             "top_features": sorted(names, key=lambda n: -abs(row[names.index(n)]))[
                 :MAX_TOP_FEATURES],
             "additivity_error": abs(total - float(raw[i]))}
        )  # fmt: skip
    return decisions, explanations


@pytest.mark.parametrize("kind", KINDS)
def test_records_equal_a_reference_built_event_by_event(
    models: dict[str, ScoringModel], events: list[dict], kind: str
) -> None:
    """The batch renders, field for field, what a per-event Python build gives; the
    contributions and scores to the bit, the additivity error to rounding."""
    model, batch = models[kind], copy.deepcopy(events[:300])
    for i, event in enumerate(batch[:40]):  # identifiers and contexts that need escaping
        event["event_id"] = f'e-"{i}"\\\n\u2028é😀'
        event["context"] = {"age_band": "60+", "note": 'a"b\\c\x01\x1f'}
    result = score_batch(model, batch)
    expected_decisions, expected_explanations = reference_records(model, batch)
    decisions = result.decisions
    for decision in decisions:
        del decision["scored_at"], decision["latency_ms"]
    assert decisions == expected_decisions
    for got, expected in zip(result.explanations, expected_explanations, strict=True):
        assert got.pop("additivity_error") == pytest.approx(
            expected.pop("additivity_error"), abs=1e-12
        )
        assert got == expected
    assert any(d["reason_codes"] for d in decisions) and any(
        not d["reason_codes"] for d in decisions
    )


@pytest.mark.parametrize(
    "features",
    [
        [{"car": 1, "loan": 2.5}, {}, {"b": None, "a": True}],  # cut out of one encoding
        [{"car": "},{"}, {"car": 'x"},{"y'}],  # a separator inside a value: one by one
        [{"name": "é😀\\", "z": -0.0, "big": 2**63}],
    ],
)
def test_input_hashes_are_each_events_canonical_hash(features: list[dict]) -> None:
    template = Template()
    blank = [""] * len(features)
    columns = EventColumns(blank, blank, blank, features, [{}] * len(features))
    template.segment("input_hash", _input_hashes(columns))
    hashes = [d["input_hash"] for d in as_dicts(template.render(len(features)))]
    assert hashes == [input_hash(f) for f in features]
