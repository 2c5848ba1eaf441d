"""A gap over fewer than two groups is undefined: null, with the reason, never 0.0."""

from __future__ import annotations

import numpy as np

from models.fairness import fairness_summary
from schemas.contracts import FairnessReport


def test_a_tpr_gap_over_one_labelled_group_is_null_with_its_reason() -> None:
    adverse = np.array([False, True, False, True, False, False])
    groups = np.array(["a", "a", "a", "b", "b", "b"])
    labels = np.array([0, 0, 1, 1, 1, 1])  # group b has no member labelled 0 (the good outcome)
    summary = fairness_summary(adverse, groups, labels)
    assert summary["groups"]["b"]["tpr"] is None and summary["groups"]["a"]["tpr"] == 0.5
    assert summary["tpr_gap"] is None
    assert "only a has" in summary["undefined"]["tpr_gap"]
    assert abs(summary["fpr_gap"] - 1.0 / 3.0) < 1e-12 and "fpr_gap" not in summary["undefined"]


def test_one_group_has_no_parity_gap_and_two_do() -> None:
    one = fairness_summary(np.array([False, True]), np.array(["a", "a"]))
    assert one["demographic_parity_difference"] is None
    assert "only a has" in one["undefined"]["demographic_parity_difference"]
    assert "tpr_gap" not in one["undefined"]  # no labels: not a gap anyone asked for
    two = fairness_summary(np.array([False, True]), np.array(["a", "b"]))
    assert two["demographic_parity_difference"] == 1.0 and two["undefined"] == {}


def test_a_report_with_an_undefined_gap_satisfies_the_contract() -> None:
    report = {
        "report_id": "fairness:age_band:labels@1",
        "attribute": "age_band",
        "window": {"start_time": "2024-05-01T00:00:00Z", "end_time": "2024-05-01T00:01:00Z",
                   "events": 6},
        "groups": [{"group": "a", "count": 3, "selection_rate": 0.66, "labelled": 3, "tpr": 0.5,
                    "fpr": 1.0}],
        "tpr_gap": None,
        "undefined": {"tpr_gap": "a gap needs two groups ...; only a has"},
        "status": "ok",
        "min_group_count": 1,
        "di_threshold": 0.8,
        "model": {"name": "m", "version": 1, "sha256": "0" * 64},
        "generated_at": "2024-05-01T00:01:05Z",
    }  # fmt: skip
    assert FairnessReport.model_validate(report).undefined["tpr_gap"].endswith("only a has")
