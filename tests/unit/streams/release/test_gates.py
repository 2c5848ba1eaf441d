"""Promotion gates, their policy file, the audited history, and `scorer models promote`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.featurespec import Feature, FeatureSpec
from models.manifest import ModelManifest
from models.registry import Registry
from models.training import TrainedModel, train
from schemas.errors import ConfigError
from streams.release.gates import (
    TrafficReplay,
    additivity_gate,
    evaluate_promotion,
    fairness_gate,
    feature_spec_gate,
    holdout_gate,
    reference_sample,
    replay_gate,
    spec_problems,
    traffic_features_gate,
)
from streams.release.policy import (
    POLICY_FILE,
    FairnessGate,
    HoldoutGate,
    PromotionPolicy,
    ReplayGate,
    load_policy,
    parse_policy,
)
from tests.support.cli import ScorerCli
from tests.support.models import RegisterModels, TrainModel

NUMERIC = Feature(name="income", kind="numeric")
REGION = Feature(name="region", kind="categorical", categories=["north", "south"])


@pytest.fixture(scope="module")
def trained(train_model: TrainModel) -> TrainedModel:
    return train_model(rows=1200, seed=3)


@pytest.fixture(scope="module")
def other_function(train_model: TrainModel) -> TrainedModel:
    return train_model(rows=1200, seed=3, classification_function=7)


@pytest.fixture
def registry(tmp_path: Path, trained: TrainedModel, register_models: RegisterModels) -> Registry:
    """``trained`` as version 1 and champion of ``loans``, in a registry for one test."""
    registry = Registry(tmp_path / "registry")
    register_models(trained, registry=registry, champion=1, actor="setup")
    return registry


def _flips(compared: int, flipped: int) -> dict[str, Any]:
    return {
        "flips": {
            "compared": compared,
            "flipped": flipped,
            "flip_rate": flipped / compared if compared else 0.0,
            "by_direction": {"approve->decline": flipped} if flipped else {},
        },
        "fairness": {},
    }


# --- feature spec ------------------------------------------------------------------------


def test_identical_specs_are_compatible() -> None:
    spec = FeatureSpec(features=[NUMERIC, REGION])
    assert spec_problems(spec, spec) == []
    assert feature_spec_gate(spec, spec).status == "pass"


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        ([NUMERIC], "does not accept feature(s) producers send: ['region']"),
        ([NUMERIC, REGION, Feature(name="age", kind="numeric")], "producers do not send: ['age']"),
        ([Feature(name="income", kind="boolean"), REGION], "changes kind from numeric to boolean"),
        (
            [NUMERIC, Feature(name="region", kind="categorical", categories=["north"])],
            "does not know category(ies) ['south']",
        ),
    ],
)
def test_incompatible_specs_name_the_problem(candidate: list[Feature], expected: str) -> None:
    result = feature_spec_gate(
        FeatureSpec(features=candidate), FeatureSpec(features=[NUMERIC, REGION])
    )
    assert result.status == "fail"
    assert expected in result.detail


def test_a_feature_that_may_be_null_must_stay_nullable() -> None:
    nullable = FeatureSpec(features=[Feature(name="income", kind="numeric", nullable=True)])
    strict = FeatureSpec(features=[NUMERIC])
    assert spec_problems(strict, nullable) == [
        "feature 'income' may be null in events but the candidate requires it"
    ]
    assert spec_problems(nullable, strict) == []  # accepting more is fine


def test_traffic_features_gate_counts_rejects_of_decided_events() -> None:
    events = {"with_champion_decision": 40, "rejected_by_candidate_decided": 3,
              "candidate_reject_reasons": {"UNKNOWN_CATEGORY": 3},
              "candidate_reject_example": "e-1: feature 'car': unknown category '21'"}  # fmt: skip
    result = traffic_features_gate(events)
    assert result.status == "fail" and "rejects 3 of 40" in result.detail
    assert traffic_features_gate({**events, "rejected_by_candidate_decided": 0}).status == "pass"
    assert traffic_features_gate({"with_champion_decision": 0}).status == "skip"


# --- holdout, additivity, fairness, replay -----------------------------------------------


def test_holdout_gate_tolerances_and_directions() -> None:
    policy = HoldoutGate(max_drop={"roc_auc": 0.02}, max_rise={"log_loss": 0.05})
    champion = {"roc_auc": 0.90, "log_loss": 0.30}
    assert holdout_gate({"roc_auc": 0.885, "log_loss": 0.34}, champion, policy).status == "pass"
    worse_auc = holdout_gate({"roc_auc": 0.87, "log_loss": 0.30}, champion, policy)
    assert worse_auc.status == "fail" and "roc_auc 0.8700 vs 0.9000 (-0.0300" in worse_auc.detail
    assert worse_auc.numbers["roc_auc"] == {"candidate": 0.87, "champion": 0.9, "tolerance": 0.02}
    assert holdout_gate({"roc_auc": 0.95, "log_loss": 0.40}, champion, policy).status == "fail"
    missing = holdout_gate({"log_loss": 0.3}, champion, policy)
    assert missing.status == "fail" and "roc_auc missing from the candidate" in missing.detail
    assert holdout_gate({"roc_auc": float("nan"), "log_loss": 0.3}, champion, policy).failed
    assert holdout_gate({"roc_auc": 0.5}, None, policy).status == "skip"
    assert holdout_gate({"roc_auc": 0.5}, {"other": 1.0}, policy).status == "skip"


def test_additivity_gate() -> None:
    assert additivity_gate(np.array([1e-15, 2e-12]), 1e-9, "x").status == "pass"
    result = additivity_gate(np.array([1e-15, 0.5, np.nan]), 1e-9, "recorded traffic")
    assert result.status == "fail" and result.detail.startswith("2 exceed the limit")
    assert result.numbers["max_error"] == 0.5
    assert additivity_gate(np.empty(0), 1e-9, "x").status == "skip"


def test_fairness_gate_reads_training_and_replay_ratios() -> None:
    training = {"attributes": {"age_band": {"disparate_impact_ratio": 0.85}}}
    policy = FairnessGate(min_disparate_impact=0.8)
    assert fairness_gate(training, None, policy).status == "pass"
    replay = {"fairness": {"age_band": {"candidate": {"disparate_impact_ratio": 0.7}}}}
    result = fairness_gate(training, replay, policy)
    assert result.status == "fail"
    assert result.numbers["ratios"] == {"training:age_band": 0.85, "replay:age_band": 0.7}
    assert fairness_gate({"group": {"di": 0.1}}, None, policy).status == "skip"


def test_replay_gate_limits_and_minimum_traffic() -> None:
    policy = ReplayGate(max_flip_rate=0.05, min_events=100)
    assert replay_gate(TrafficReplay(_flips(200, 10)), policy).status == "pass"  # exactly 5%
    failed = replay_gate(TrafficReplay(_flips(200, 11)), policy)
    assert failed.status == "fail" and "5.50% of 200" in failed.detail
    assert "approve->decline 11" in failed.detail
    few = replay_gate(TrafficReplay(_flips(99, 50)), policy)
    assert few.status == "skip" and "99 recorded events" in few.detail
    down = TrafficReplay(None, unavailable="broker not reachable")
    assert replay_gate(down, policy).detail == "broker not reachable"
    required = ReplayGate(required=True)
    assert replay_gate(down, required).status == "fail"


# --- evaluation order ----------------------------------------------------------------------


def _manifest(registry: Registry) -> ModelManifest:
    return registry.manifest("loans", 1)


def test_incompatible_spec_stops_before_any_traffic(registry: Registry) -> None:
    champion = _manifest(registry)
    spec = champion.feature_spec.model_dump()
    spec["features"] = spec["features"][:-1]  # drops zipcode, which producers send
    candidate = champion.model_copy(update={"feature_spec": FeatureSpec.model_validate(spec)})
    calls: list[str] = []

    def traffic() -> TrafficReplay:
        calls.append("traffic")
        return TrafficReplay(None)

    def sample() -> np.ndarray:
        calls.append("sample")
        return np.zeros(3)

    results = evaluate_promotion(candidate, champion, PromotionPolicy(),
                                 replay_traffic=traffic, explain_sample=sample)  # fmt: skip
    assert [(r.gate, r.status) for r in results] == [("feature_spec", "fail")]
    assert "['zipcode']" in results[0].detail
    assert calls == []


def test_recorded_traffic_explanations_replace_the_reference_sample(registry: Registry) -> None:
    manifest = _manifest(registry)
    report = {**_flips(500, 0), "events": {"with_champion_decision": 500}}
    sampled: list[int] = []
    results = evaluate_promotion(
        manifest, manifest, PromotionPolicy(fairness=FairnessGate(min_disparate_impact=0.1)),
        replay_traffic=lambda: TrafficReplay(report, np.full(500, 1e-16)),
        explain_sample=lambda: sampled.append(1) or np.zeros(1),
    )  # fmt: skip
    statuses = {r.gate: r.status for r in results}
    assert statuses == {"feature_spec": "pass", "holdout": "pass", "reference": "pass",
                        "feature_spec_traffic": "pass", "additivity": "pass",
                        "disparate_impact": "pass", "replay_flips": "pass"}  # fmt: skip
    additivity = next(r for r in results if r.gate == "additivity")
    assert additivity.numbers["source"] == "recorded traffic" and sampled == []
    skipped = evaluate_promotion(manifest, None, PromotionPolicy(), replay_traffic=None,
                                 explain_sample=lambda: np.full(7, 1e-15))  # fmt: skip
    by_gate = {r.gate: r for r in skipped}
    assert by_gate["additivity"].numbers["sample"] == 7
    assert by_gate["replay_flips"].detail == "replay skipped on request"
    assert by_gate["feature_spec"].status == by_gate["holdout"].status == "skip"


def test_reference_sample_fits_the_spec_and_its_frequencies(registry: Registry) -> None:
    manifest = _manifest(registry)
    rows = reference_sample(manifest, 2000, seed=1)
    batch = manifest.feature_spec.vectorise(rows)
    assert batch.rejects == [] and batch.X.shape[0] == 2000
    salary = np.array([r["salary"] for r in rows])
    stats = manifest.reference["features"]["salary"]
    assert stats["min"] <= salary.min() and salary.max() <= stats["max"]
    assert abs(np.median(salary) - np.median([stats["min"], stats["max"]])) < 0.2 * stats["max"]
    elevel = manifest.reference["features"]["elevel"]["frequencies"]
    drawn = np.mean([r["elevel"] == "0" for r in rows])
    assert abs(drawn - elevel["0"]) < 0.05
    nullable = manifest.model_copy(update={"feature_spec": FeatureSpec(features=[
        Feature(name="income", kind="numeric", nullable=True, impute=5.0)]),
        "reference": {"features": {"income": {"missing_rate": 0.5, "mean": 10.0}}}})  # fmt: skip
    values = [r["income"] for r in reference_sample(nullable, 1000, seed=2)]
    assert 0.4 < sum(v is None for v in values) / 1000 < 0.6


# --- the policy file ---------------------------------------------------------------------


def test_default_policy_is_written_once_and_read_back(tmp_path: Path) -> None:
    policy, created = load_policy(tmp_path)
    assert created and policy == PromotionPolicy()
    text = (tmp_path / POLICY_FILE).read_text()
    assert text.startswith("# Promotion gates") and "version: 1" in text
    (tmp_path / POLICY_FILE).write_text(text.replace("max_flip_rate: 0.1", "max_flip_rate: 0.02")
                                        .replace("version: 1", "version: 2"))  # fmt: skip
    edited, created = load_policy(tmp_path)
    assert not created and edited.version == 2 and edited.replay.max_flip_rate == 0.02


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("replay: {max_flip_rate: 2}", "replay.max_flip_rate: Input should be less than or equal"),
        ("fairness: {floor: 0.8}", "fairness.floor: Extra inputs are not permitted"),
        ("- 1\n- 2", "expected a mapping of settings, got list"),
        ("replay: [", "not valid YAML"),
    ],
)
def test_invalid_policies_name_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"promotion-policy\.yaml") as caught:
        parse_policy(text, "x/promotion-policy.yaml")
    assert message in str(caught.value)


# --- history -----------------------------------------------------------------------------


def test_refusals_are_recorded_but_never_rolled_back_to(
    registry: Registry, trained: TrainedModel, register_models: RegisterModels
) -> None:
    register_models(trained, trained, registry=registry)
    gates = [{"gate": "holdout", "status": "fail"}]
    registry.record_refusal("loans", "champion", 3, actor="bob", reason="no", gates=gates)
    assert registry.aliases("loans") == {"champion": 1}
    registry.set_alias("loans", "champion", 2, actor="amy", reason="ok", gates=[], forced=False)
    registry.set_alias("loans", "champion", 3, actor="amy", reason="why", gates=gates, forced=True)
    history = registry.history("loans")
    assert [(h["action"], h["version"]) for h in history] == [
        ("promote", 1), ("refused", 3), ("promote", 2), ("promote", 3)]  # fmt: skip
    assert history[1]["gates"] == gates and history[1]["previous_version"] == 1
    assert history[3]["forced"] is True and history[2]["forced"] is False
    assert registry.rollback("loans", actor="ops").version == 2
    assert registry.rollback("loans", actor="ops").version == 1


# --- the command -------------------------------------------------------------------------


def test_cli_refuses_then_forces_with_a_recorded_reason(
    scorer_cli: ScorerCli,
    registry: Registry,
    other_function: TrainedModel,
    register_models: RegisterModels,
) -> None:
    register_models(other_function, registry=registry)
    root = str(registry.root)
    code, out, err = scorer_cli("models", "promote", "loans", "2", "--registry", root)
    assert code == 1
    assert "FAIL  holdout" in out and "roc_auc" in out
    assert "SKIP  replay_flips" in out and "no broker answers at 127.0.0.1:1" in out
    assert "loans v2 not promoted to champion: gate(s) failed: holdout" in err
    assert registry.aliases("loans") == {"champion": 1}
    assert (registry.root / "loans" / POLICY_FILE).exists()

    code, _, err = scorer_cli("models", "promote", "loans", "2", "--force", "--registry", root)
    assert code == 1 and "--force needs --reason" in err
    code, out, err = scorer_cli("models", "promote", "loans", "2", "--force", "--reason",
                          "new product line", "--actor", "carol", "--registry", root)  # fmt: skip
    assert code == 0, err
    assert "forced past failed gate(s) holdout: new product line" in out
    assert registry.aliases("loans") == {"champion": 2}
    last = registry.history("loans")[-1]
    assert (last["actor"], last["forced"], last["version"]) == ("carol", True, 2)
    assert last["reason"] == "forced past failed gate(s) holdout: new product line"
    assert {g["gate"]: g["status"] for g in last["gates"]}["holdout"] == "fail"
    assert all(g["policy_version"] == 1 for g in last["gates"])

    code, out, _ = scorer_cli("models", "history", "loans", "--registry", root)
    lines = out.splitlines()
    assert lines[0].split() == ["AT", "ACTION", "ALIAS", "VERSION", "ACTOR", "GATES", "REASON"]
    assert "refused" in lines[2] and "tester@ci" in lines[2] and "(holdout)" in lines[2]
    assert "promote (forced)" in lines[3] and "carol" in lines[3]
    code, out, _ = scorer_cli("models", "history", "loans", "--json", "--registry", root)
    assert [e["action"] for e in json.loads(out)] == ["promote", "refused", "promote"]


def test_cli_refuses_an_incompatible_spec_without_reading_traffic(
    scorer_cli: ScorerCli, tmp_path: Path, registry: Registry, register_models: RegisterModels
) -> None:
    from models.datasets import from_csv

    csv = tmp_path / "loans.csv"
    rows = ["salary,loan,default"] + [
        f"{40000 + i * 97},{i * 13 % 500},{i % 2}" for i in range(200)
    ]
    csv.write_text("\n".join(rows) + "\n")
    register_models(train(from_csv(csv, "default", []), "logistic", seed=1), registry=registry)
    code, out, err = scorer_cli("models", "promote", "loans", "2", "--registry",
                          str(registry.root))  # fmt: skip
    assert code == 1
    assert "FAIL  feature_spec" in out and "does not accept feature(s) producers send" in out
    assert "replay_flips" not in out and "additivity" not in out
    assert "gate(s) failed: feature_spec" in err
    assert registry.aliases("loans") == {"champion": 1}


def test_challenger_moves_are_not_gated(
    scorer_cli: ScorerCli,
    registry: Registry,
    other_function: TrainedModel,
    register_models: RegisterModels,
) -> None:
    register_models(other_function, registry=registry)
    code, out, _ = scorer_cli("models", "promote", "loans", "2", "--alias", "challenger",
                        "--registry", str(registry.root))  # fmt: skip
    assert code == 0 and "gates for" not in out
    assert registry.aliases("loans") == {"champion": 1, "challenger": 2}
