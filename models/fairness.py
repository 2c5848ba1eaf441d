"""Group fairness maths over decisions, shared by training and online monitoring.

Conventions, in the terms of a lending decision:

- a decision is *favourable* when it is not adverse (approve, not review or decline); a
  group's **selection rate** is its share of favourable decisions;
- labels are outcomes, ``1`` = adverse outcome (e.g. default), ``0`` = good outcome; any
  other value (``-1``, NaN) means "not labelled yet" and is left out of the label rates;
- **tpr** is the share of favourable decisions among a group's *good-outcome* members
  (label 0): the "qualified applicants who were approved" of equal opportunity; **fpr** is
  the share of favourable decisions among adverse-outcome members (label 1).

Gaps are max minus min over the groups with at least ``min_count`` members, so they are
never negative. The disparate-impact ratio divides the lowest selection rate by that of the
**most favoured group** (the highest selection rate), as the four-fifths rule does; that
group is the reference group.

>>> adverse = np.array([False, False, True, True, False, True])
>>> groups = np.array(["a", "a", "a", "b", "b", "b"])
>>> labels = np.array([0, 0, 1, 0, 0, 1])
>>> rates = group_rates(adverse, groups, labels)
>>> rates["a"]
{'count': 3, 'selection_rate': 0.6666666666666666, 'labelled': 3, 'tpr': 1.0, 'fpr': 0.0}
>>> rates["b"]["selection_rate"], rates["b"]["tpr"]
(0.3333333333333333, 0.5)
>>> disparate_impact_ratio(rates), reference_group(rates)
(0.5, 'a')
>>> demographic_parity_difference(rates), equal_opportunity_difference(rates)
(0.3333333333333333, 0.5)
"""

from __future__ import annotations

from typing import Any

import numpy as np

GroupRates = dict[str, dict[str, Any]]
"""Per group: count, selection_rate, labelled, tpr (or None), fpr (or None)."""


def group_rates(
    decisions_adverse: np.ndarray, groups: np.ndarray, labels: np.ndarray | None = None
) -> GroupRates:
    """Selection rate per group and, where labels are known, tpr and fpr (see module doc).

    >>> group_rates(np.array([True, False]), np.array(["x", "x"]))
    {'x': {'count': 2, 'selection_rate': 0.5, 'labelled': 0, 'tpr': None, 'fpr': None}}
    """
    adverse = np.asarray(decisions_adverse, dtype=bool)
    group_of = np.asarray(groups).astype(str)
    if adverse.shape != group_of.shape:
        raise ValueError("decisions_adverse and groups must have the same length")
    favourable = ~adverse
    if labels is None:
        good = bad = np.zeros(adverse.shape, dtype=bool)
    else:
        outcome = np.asarray(labels, dtype=np.float64)
        if outcome.shape != adverse.shape:
            raise ValueError("labels must have the same length as decisions_adverse")
        good, bad = outcome == 0.0, outcome == 1.0
    result: GroupRates = {}
    for group in sorted(set(group_of.tolist())):
        member = group_of == group
        n_good = int(np.count_nonzero(member & good))
        n_bad = int(np.count_nonzero(member & bad))
        result[group] = {
            "count": int(np.count_nonzero(member)),
            "selection_rate": float(favourable[member].mean()),
            "labelled": n_good + n_bad,
            "tpr": float(favourable[member & good].mean()) if n_good else None,
            "fpr": float(favourable[member & bad].mean()) if n_bad else None,
        }
    return result


def _values(rates: GroupRates, key: str, min_count: int) -> dict[str, float]:
    return {
        group: r[key]
        for group, r in rates.items()
        if r["count"] >= min_count and r.get(key) is not None
    }


def _gap(values: dict[str, float]) -> float | None:
    """Highest minus lowest value: defined only between two groups or more."""
    return max(values.values()) - min(values.values()) if len(values) >= 2 else None


_GAP_KEYS = {
    "demographic_parity_difference": ("selection_rate", "members"),
    "tpr_gap": ("tpr", "members labelled 0 (the good outcome)"),
    "fpr_gap": ("fpr", "members labelled 1 (the adverse outcome)"),
}


def undefined_gaps(
    rates: GroupRates, min_count: int = 1, *, labelled: bool = True
) -> dict[str, str]:
    """Why each gap that is None is undefined, by its field name (empty when all are known).

    >>> rates = {"a": {"count": 9, "selection_rate": 0.5, "tpr": 0.5, "fpr": None},
    ...          "b": {"count": 9, "selection_rate": 0.2, "tpr": None, "fpr": None}}
    >>> undefined_gaps(rates)["tpr_gap"].endswith("labelled 0 (the good outcome); only a has")
    True
    """
    reasons: dict[str, str] = {}
    for field, (key, who) in _GAP_KEYS.items():
        if key != "selection_rate" and not labelled:
            continue
        groups = sorted(_values(rates, key, min_count))
        if len(groups) < 2:
            have = f"only {', '.join(groups)} has" if groups else "none has"
            reasons[field] = (
                f"a gap needs two groups with at least {min_count} event{'s' * (min_count != 1)} "
                f"and {who}; {have}"
            )
    return reasons


def reference_group(rates: GroupRates, min_count: int = 1) -> str | None:
    """The most favoured group (highest selection rate; ties: first by name)."""
    values = _values(rates, "selection_rate", min_count)
    if not values:
        return None
    best = max(values.values())
    return min(group for group, value in values.items() if value == best)


def disparate_impact_ratio(rates: GroupRates, min_count: int = 1) -> float | None:
    """Lowest selection rate over the reference group's; None when no group was selected.

    >>> disparate_impact_ratio({"a": {"count": 5, "selection_rate": 0.0}})
    """
    values = _values(rates, "selection_rate", min_count)
    if not values or max(values.values()) == 0.0:
        return None
    return min(values.values()) / max(values.values())


def demographic_parity_difference(rates: GroupRates, min_count: int = 1) -> float | None:
    """Highest minus lowest selection rate; None when no group qualifies."""
    return _gap(_values(rates, "selection_rate", min_count))


def equal_opportunity_difference(rates: GroupRates, min_count: int = 1) -> float | None:
    """Highest minus lowest tpr (favourable rate among label-0 members); None if unknown."""
    return _gap(_values(rates, "tpr", min_count))


def fpr_difference(rates: GroupRates, min_count: int = 1) -> float | None:
    """Highest minus lowest fpr (favourable rate among label-1 members); None if unknown."""
    return _gap(_values(rates, "fpr", min_count))


def fairness_summary(
    decisions_adverse: np.ndarray,
    groups: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    min_count: int = 1,
) -> dict[str, Any]:
    """Group rates and every gap, keyed like the FairnessReport contract's fields.

    ``tpr_gap`` is the equal-opportunity difference. JSON-serialisable.

    >>> s = fairness_summary(np.array([False, True]), np.array(["a", "b"]), np.array([0, 0]))
    >>> s["reference_group"], s["disparate_impact_ratio"], s["tpr_gap"], s["fpr_gap"]
    ('a', 0.0, 1.0, None)
    """
    rates = group_rates(decisions_adverse, groups, labels)
    return {
        "groups": rates,
        "reference_group": reference_group(rates, min_count),
        "disparate_impact_ratio": disparate_impact_ratio(rates, min_count),
        "demographic_parity_difference": demographic_parity_difference(rates, min_count),
        "tpr_gap": equal_opportunity_difference(rates, min_count),
        "fpr_gap": fpr_difference(rates, min_count),
        "undefined": undefined_gaps(rates, min_count, labelled=labels is not None),
        "min_group_count": min_count,
    }
