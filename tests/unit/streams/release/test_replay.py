"""Replay maths, positions, and the report built from in-memory recorded traffic."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from models.datasets import agrawal_stream
from models.scoring_model import ScoringModel
from schemas.errors import ConfigError
from streams.commands.replay import render, split_model
from streams.core.scoring import score_batch
from streams.release.compare import (
    ReplayPairs,
    flip_matrix,
    group_fairness,
    performance,
    reason_changes,
    score_shift,
)
from streams.release.replay import RecordedTraffic, build_report, parse_position, replay
from tests.support.models import RegisterModels, TrainModel

# --- comparison maths --------------------------------------------------------------------


def test_identical_decisions_never_flip() -> None:
    decisions = ["approve", "review", "decline", "approve"]
    result = flip_matrix(decisions, decisions)
    assert result["flipped"] == 0 and result["flip_rate"] == 0.0
    assert result["by_direction"] == {}
    assert result["matrix"]["approve"] == {"approve": 2, "review": 0, "decline": 0}


def test_flip_directions_and_adverse_moves() -> None:
    before = ["approve"] * 5 + ["review"] * 3 + ["decline"] * 2
    after = ["decline", "decline", "review", "approve", "approve", "approve", "review", "decline",
             "decline", "approve"]  # fmt: skip
    result = flip_matrix(before, after)
    assert result["by_direction"] == {"approve->review": 1, "approve->decline": 2,
                                      "review->approve": 1, "review->decline": 1,
                                      "decline->approve": 1}  # fmt: skip
    assert (result["flipped"], result["compared"]) == (6, 10)
    assert result["newly_adverse"] == 3 and result["newly_favourable"] == 2
    assert sum(sum(row.values()) for row in result["matrix"].values()) == 10
    with pytest.raises(ValueError):
        flip_matrix(["approve"], [])


def test_unknown_decision_labels_get_their_own_row() -> None:
    result = flip_matrix(["approve", "refer"], ["refer", "refer"])
    assert list(result["matrix"]) == ["approve", "review", "decline", "refer"]
    assert result["by_direction"] == {"approve->refer": 1}


def test_score_shift_of_a_constant_offset() -> None:
    before = np.linspace(0.1, 0.5, 101)
    shift = score_shift(before, before + 0.05)
    assert shift["mean"] == pytest.approx(0.05) and shift["std"] == pytest.approx(0.0, abs=1e-12)
    assert all(v == pytest.approx(0.05) for v in shift["quantiles"].values())
    assert list(shift["quantiles"]) == ["p01", "p05", "p25", "p50", "p75", "p95", "p99"]
    assert score_shift([], []) == {"count": 0}


def test_reason_changes_only_for_events_adverse_under_both() -> None:
    result = reason_changes(
        ["decline", "review", "approve", "decline"],
        ["decline", "decline", "decline", "approve"],
        [["RC_A", "RC_B"], ["RC_C"], [], ["RC_A"]],
        [["RC_B", "RC_A"], ["RC_C", "RC_D"], ["RC_A"], []],
    )
    assert result["compared"] == 2
    assert result["changed"] == 1 and result["changed_rate"] == 0.5
    assert result["first_changed"] == 1  # RC_A -> RC_B leads the first event's reasons
    assert result["gained"] == {"RC_D": 1} and result["lost"] == {}


def test_group_fairness_by_hand() -> None:
    context = [{"band": "young"}] * 4 + [{"band": "old"}] * 4 + [{}]
    champion = ["approve", "decline", "decline", "decline",
                "approve", "approve", "approve", "decline", "approve"]  # fmt: skip
    candidate = ["approve"] * 9
    result = group_fairness(champion, candidate, context, np.full(9, np.nan), min_group_count=2)
    before, after = result["band"]["champion"], result["band"]["candidate"]
    assert before["groups"]["young"]["selection_rate"] == 0.25
    assert before["groups"]["old"]["selection_rate"] == 0.75
    assert before["groups"]["unknown"]["count"] == 1  # below min_group_count: not in the ratio
    assert before["disparate_impact_ratio"] == pytest.approx(0.25 / 0.75)
    assert after["disparate_impact_ratio"] == 1.0


def test_performance_on_labelled_events_only() -> None:
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, 300).astype(float)
    scores = np.clip(labels * 0.3 + rng.random(300) * 0.7, 0, 1)
    labels[:50] = np.nan
    decisions = np.where(scores >= 0.6, "decline", "approve").tolist()
    result = performance(scores, 1 - scores, decisions, decisions, labels)
    known = ~np.isnan(labels)
    assert result["labelled"] == 250
    assert result["champion"]["roc_auc"] == pytest.approx(
        roc_auc_score(labels[known], scores[known])
    )
    assert result["candidate"]["roc_auc"] == pytest.approx(1 - result["champion"]["roc_auc"])
    predicted = (scores[known] >= 0.6).astype(float)
    assert result["champion"]["accuracy"] == pytest.approx(
        float((predicted == labels[known]).mean())
    )
    one_class = performance([0.1], [0.2], ["approve"], ["approve"], [0])
    assert one_class["champion"] == {"roc_auc": None, "accuracy": 1.0}
    assert performance([0.1], [0.2], ["approve"], ["approve"], [np.nan]) == {"labelled": 0}


def test_replay_pairs_must_align() -> None:
    with pytest.raises(ValueError, match="other lengths"):
        ReplayPairs(["a", "b"], ["approve"] * 2, ["approve"] * 2, [0.1, 0.2], [0.1],
                    [[], []], [[], []], [{}, {}])  # fmt: skip


# --- positions ---------------------------------------------------------------------------


def test_positions() -> None:
    assert parse_position(" 0:5, 1:0 ") == {0: 5, 1: 0}
    naive = parse_position("2024-05-01T12:00:00")
    assert naive == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert parse_position("2024-05-01T14:00:00+02:00") == naive
    for bad in ("yesterday", "0:x", "1:2:3", ""):
        with pytest.raises(ConfigError, match="neither a time"):
            parse_position(bad)
    with pytest.raises(ConfigError, match="must be >= 0"):
        parse_position("0:-4")
    assert split_model("loans:challenger") == ("loans", "challenger")
    with pytest.raises(ConfigError):
        split_model(":3")


# --- a report from in-memory traffic ------------------------------------------------------


@pytest.fixture(scope="module")
def models(train_model: TrainModel, register_models: RegisterModels) -> tuple[ScoringModel, ...]:
    """Versions 1 and 2 of ``loans``: logistic models of Agrawal functions 8, then 7."""
    v1, v2 = register_models(*(
        train_model(rows=1500, seed=5, classification_function=function) for function in (8, 7)
    ))  # fmt: skip
    return v1.model, v2.model


def _traffic(champion: ScoringModel, count: int) -> tuple[RecordedTraffic, list[Any]]:
    stream = list(
        agrawal_stream(count, seed=8, run_id="rec", start=datetime(2024, 1, 1, tzinfo=UTC))
    )
    events = [labelled.event for labelled in stream]
    decided = score_batch(champion, events)
    stamps = [1_700_000_000_000 + i for i in range(count)]
    traffic = RecordedTraffic("events", {0: (0, count)}, records=count, events=list(events),
                              timestamps_ms=stamps)  # fmt: skip
    traffic.decisions = {d["event_id"]: d for d in decided.decisions}
    traffic.labels = {s.event["event_id"]: s.label for s in stream[: count // 2]}
    return traffic, stream


def test_the_same_model_replays_without_flips(models: tuple[ScoringModel, ScoringModel]) -> None:
    champion, _ = models
    traffic, _ = _traffic(champion, 400)
    traffic.events.append(dict(traffic.events[0]))  # a duplicate delivery
    replayed = replay(champion, traffic.events, batch_size=64)
    report = build_report(champion, traffic, replayed, min_group_count=20)
    assert replayed.duplicates == 1
    assert report["compared"] == 400 and report["flips"]["flipped"] == 0
    assert report["score_shift"]["max_abs"] == pytest.approx(0.0, abs=1e-12)
    assert report["reason_codes"]["changed"] == 0
    assert report["events"]["labelled"] == 200 and report["performance"]["labelled"] == 200
    assert report["champion_versions"] == {"loans v1": 400}
    assert max(replayed.additivity_errors) < 1e-9
    text = render(report)
    assert "flips    0.00% of 400 decisions change" in text and "by direction: none" in text


def test_a_more_lenient_candidate_flips_towards_approval(
    models: tuple[ScoringModel, ScoringModel],
) -> None:
    champion, lenient = models
    traffic, _ = _traffic(champion, 600)
    report = build_report(lenient, traffic, replay(lenient, traffic.events, batch_size=100),
                          min_group_count=20)  # fmt: skip
    flips = report["flips"]
    towards_approval = flips["by_direction"].get("decline->approve", 0) + flips[
        "by_direction"].get("review->approve", 0)  # fmt: skip
    assert flips["flip_rate"] > 0.3
    assert towards_approval >= 0.9 * flips["flipped"]
    assert flips["newly_favourable"] > 10 * max(1, flips["newly_adverse"])
    assert report["score_shift"]["mean"] < 0
    perf = report["performance"]
    assert perf["champion"]["roc_auc"] > perf["candidate"]["roc_auc"]
    assert "fairness age_band" in render(report)


def test_events_the_candidate_rejects_are_counted(
    models: tuple[ScoringModel, ScoringModel],
) -> None:
    champion, _ = models
    traffic, _ = _traffic(champion, 50)
    traffic.events[3] = {**traffic.events[3],
                         "features": {**traffic.events[3]["features"], "car": 99}}  # fmt: skip
    report = build_report(champion, traffic, replay(champion, traffic.events, batch_size=16),
                          min_group_count=5)  # fmt: skip
    events = report["events"]
    assert events["rejected_by_candidate"] == events["rejected_by_candidate_decided"] == 1
    assert events["candidate_reject_reasons"] == {"UNKNOWN_CATEGORY": 1}
    assert "rec-3" in events["candidate_reject_example"]
    assert report["compared"] == 49


def test_render_without_champion_decisions(models: tuple[ScoringModel, ScoringModel]) -> None:
    champion, _ = models
    traffic, _ = _traffic(champion, 10)
    traffic.decisions = {}
    report = build_report(champion, traffic, replay(champion, traffic.events, batch_size=4),
                          min_group_count=1)  # fmt: skip
    assert report["events"]["without_champion_decision"] == 10
    assert "nothing to compare" in render(report)


def test_reports_are_json_ready(models: tuple[ScoringModel, ScoringModel]) -> None:
    import json

    champion, lenient = models
    traffic, _ = _traffic(champion, 80)
    report = build_report(lenient, traffic, replay(lenient, traffic.events, batch_size=30),
                          min_group_count=5)  # fmt: skip
    assert json.loads(json.dumps(report)) == report
