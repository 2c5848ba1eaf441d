"""Reason codes are principal reasons: each carries a material share of the adverse push."""

from __future__ import annotations

import pytest

from models.datasets import agrawal, agrawal_events
from models.registry import Registry
from models.scoring_model import ScoringModel
from models.training import train
from streams.core.scoring import REASON_MIN_LOG_ODDS, REASON_MIN_SHARE, score_batch


@pytest.fixture(scope="module", params=["logistic", "gbt"])
def model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> ScoringModel:
    trained = train(agrawal(2000, seed=5), request.param, seed=5)
    registry = Registry(tmp_path_factory.mktemp("registry") / "r")
    registry.register(trained.estimator, name="m", kind=request.param,
                      manifest_fields=trained.manifest_fields)  # fmt: skip
    return ScoringModel.from_loaded(registry.load("m", 1))


def test_every_reason_carries_a_material_share_of_the_adverse_push(model: ScoringModel) -> None:
    events = list(agrawal_events(3000, seed=11))
    scored = score_batch(model, events)
    adverse = [
        (d, e)
        for d, e in zip(scored.decisions, scored.explanations, strict=True)
        if d["reason_codes"]
    ]
    assert len(adverse) > 100
    for decision, explanation in adverse:
        pushed_up = sum(v for v in explanation["contributions"].values() if v > 0.0)
        floor = max(REASON_MIN_SHARE * pushed_up, REASON_MIN_LOG_ODDS)
        contributions = [code["contribution"] for code in decision["reason_codes"]]
        assert all(c >= floor for c in contributions), (decision["event_id"], contributions)
        assert contributions == sorted(contributions, reverse=True)


def test_the_strongest_push_is_always_a_reason(model: ScoringModel) -> None:
    events = list(agrawal_events(2000, seed=12))
    scored = score_batch(model, events)
    for decision, explanation in zip(scored.decisions, scored.explanations, strict=True):
        if decision["decision"] == "approve":
            assert decision["reason_codes"] == []
            continue
        strongest = max(explanation["contributions"].items(), key=lambda kv: kv[1])
        if strongest[1] >= REASON_MIN_LOG_ODDS:
            assert decision["reason_codes"][0]["feature"] == strongest[0]
