"""A version without reference statistics is not promoted to champion unless forced, and its
additivity is not judged on rows made up from imputation values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from models.registry import Registry
from models.training import TrainedModel
from streams.cli import main
from streams.release.gates import TrafficReplay, evaluate_promotion
from streams.release.policy import POLICY_FILE, FairnessGate, PromotionPolicy
from tests.support.models import RegisterModels, TrainModel


@pytest.fixture(scope="module")
def trained(train_model: TrainModel) -> TrainedModel:
    return train_model(rows=1200, seed=3)


@pytest.fixture
def registry(tmp_path: Path, trained: TrainedModel, register_models: RegisterModels) -> Registry:
    """``trained`` as v1 and champion of ``loans``, and v2: the same model registered without
    reference statistics (registration checks it on rows from its feature spec)."""
    registry = Registry(tmp_path / "registry")
    register_models(trained, registry=registry, champion=1, actor="setup")
    fields = {**trained.manifest_fields, "reference": {}}
    registry.register(trained.estimator, name="loans", kind="logistic", manifest_fields=fields)
    # the demo data's age bands sit below the default fairness floor; only the reference counts
    policy = PromotionPolicy(fairness=FairnessGate(min_disparate_impact=0.5))
    (registry.root / "loans" / POLICY_FILE).write_text(
        yaml.safe_dump(policy.model_dump(mode="json"), sort_keys=False)
    )
    return registry


def scorer(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
           registry: Registry, *argv: str) -> tuple[int, str, str]:  # fmt: skip
    monkeypatch.setenv("SCORER_REGISTRY", str(registry.root))
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")  # nothing listens there
    monkeypatch.setenv("SCORER_ACTOR", "tester@ci")
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_without_reference_the_additivity_gate_skips_and_says_why(registry: Registry) -> None:
    candidate = registry.manifest("loans", 2)
    sampled: list[int] = []
    results = evaluate_promotion(
        candidate, registry.manifest("loans", 1), PromotionPolicy(),
        replay_traffic=lambda: TrafficReplay(None, unavailable="no traffic"),
        explain_sample=lambda: sampled.append(1) or np.zeros(5),
    )  # fmt: skip
    by_gate = {r.gate: r for r in results}
    assert by_gate["additivity"].status == "skip"
    assert "no reference statistics: no rows to explain" in by_gate["additivity"].detail
    assert sampled == []  # no rows were made up from imputation values
    assert by_gate["reference"].status == "fail"
    assert by_gate["reference"].numbers["without_statistics"] == candidate.feature_spec.names
    # the champion's own manifest has statistics for every feature
    own = evaluate_promotion(registry.manifest("loans", 1), None, PromotionPolicy(),
                             replay_traffic=None, explain_sample=lambda: np.zeros(5))  # fmt: skip
    assert {r.gate: r.status for r in own}["reference"] == "pass"


def test_promotion_without_reference_is_refused_unless_forced(
    registry: Registry, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = scorer(monkeypatch, capsys, registry, "models", "promote", "loans", "2")
    assert code == 1
    assert "FAIL  reference" in out and "no reference statistics for 8 of 8 features" in out
    assert "SKIP  additivity" in out and "no reference statistics: no rows to explain" in out
    assert "PASS  additivity" not in out
    assert "gate(s) failed: reference;" in err
    assert registry.aliases("loans") == {"champion": 1}
    assert registry.history("loans")[-1]["action"] == "refused"

    code, out, err = scorer(monkeypatch, capsys, registry, "models", "promote", "loans", "2",
                            "--force", "--reason", "monitors added later")  # fmt: skip
    assert code == 0, err
    assert "forced past failed gate(s) reference: monitors added later" in out
    assert registry.aliases("loans") == {"champion": 2}
    last = registry.history("loans")[-1]
    assert last["forced"] is True
    assert {g["gate"]: g["status"] for g in last["gates"]}["reference"] == "fail"
