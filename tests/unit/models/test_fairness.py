"""Fairness maths against hand computations."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.fairness import (
    demographic_parity_difference,
    disparate_impact_ratio,
    equal_opportunity_difference,
    fairness_summary,
    fpr_difference,
    group_rates,
    reference_group,
)

# Group "a": 4 members, decisions A A D A (A = approve/favourable, D = adverse),
#            labels 0 0 1 1 -> selection 3/4, tpr (label 0) 2/2, fpr (label 1) 1/2.
# Group "b": 5 members, decisions D A D D A, labels 0 0 0 1 -1 (unlabelled)
#            -> selection 2/5, tpr 1/3, fpr 0/1, labelled 4.
ADVERSE = np.array([False, False, True, False, True, False, True, True, False])
GROUPS = np.array(["a", "a", "a", "a", "b", "b", "b", "b", "b"])
LABELS = np.array([0, 0, 1, 1, 0, 0, 0, 1, -1])


def test_group_rates_match_hand_computation() -> None:
    rates = group_rates(ADVERSE, GROUPS, LABELS)
    assert rates == {
        "a": {"count": 4, "selection_rate": 0.75, "labelled": 4, "tpr": 1.0, "fpr": 0.5},
        "b": {
            "count": 5,
            "selection_rate": 0.4,
            "labelled": 4,
            "tpr": pytest.approx(1 / 3),
            "fpr": 0.0,
        },
    }


def test_gaps_and_ratio_match_hand_computation() -> None:
    rates = group_rates(ADVERSE, GROUPS, LABELS)
    assert reference_group(rates) == "a"
    assert disparate_impact_ratio(rates) == pytest.approx(0.4 / 0.75)
    assert demographic_parity_difference(rates) == pytest.approx(0.35)
    assert equal_opportunity_difference(rates) == pytest.approx(2 / 3)
    assert fpr_difference(rates) == pytest.approx(0.5)


def test_nan_labels_count_as_unlabelled() -> None:
    labels = np.array([0.0, np.nan, 1.0])
    rates = group_rates(np.array([False, False, True]), np.array(["g", "g", "g"]), labels)
    assert rates["g"]["labelled"] == 2
    assert rates["g"]["tpr"] == 1.0 and rates["g"]["fpr"] == 0.0


def test_without_labels_only_selection_rates_are_known() -> None:
    rates = group_rates(ADVERSE, GROUPS)
    assert all(r["labelled"] == 0 and r["tpr"] is None and r["fpr"] is None for r in rates.values())
    assert equal_opportunity_difference(rates) is None
    assert demographic_parity_difference(rates) == pytest.approx(0.35)


def test_min_count_leaves_small_groups_out() -> None:
    adverse = np.array([False, False, True, True, True, True])
    groups = np.array(["big", "big", "big", "big", "tiny", "tiny"])
    rates = group_rates(adverse, groups)
    assert disparate_impact_ratio(rates) == 0.0
    assert disparate_impact_ratio(rates, min_count=3) == 1.0
    assert reference_group(rates, min_count=3) == "big"
    assert disparate_impact_ratio(rates, min_count=10) is None


def test_nobody_selected_has_no_ratio_but_a_zero_gap() -> None:
    rates = group_rates(np.array([True, True]), np.array(["x", "y"]))
    assert disparate_impact_ratio(rates) is None
    assert demographic_parity_difference(rates) == 0.0


def test_ties_for_reference_group_go_to_the_first_name() -> None:
    rates = group_rates(np.array([False, False]), np.array(["y", "x"]))
    assert reference_group(rates) == "x"


def test_summary_is_json_and_uses_the_contract_field_names() -> None:
    summary = fairness_summary(ADVERSE, GROUPS, LABELS, min_count=2)
    assert json.loads(json.dumps(summary))["reference_group"] == "a"
    assert summary["tpr_gap"] == pytest.approx(2 / 3)
    assert summary["fpr_gap"] == pytest.approx(0.5)
    assert summary["min_group_count"] == 2


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="same length"):
        group_rates(np.array([True]), np.array(["a", "b"]))
    with pytest.raises(ValueError, match="same length"):
        group_rates(np.array([True]), np.array(["a"]), np.array([0, 1]))
