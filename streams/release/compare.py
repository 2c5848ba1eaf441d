"""Comparison of a candidate's decisions with the champion's recorded ones, event by event.

The inputs are aligned arrays, one row per recorded event that both the champion decided
(its decision read back from the decisions topic) and the candidate scored. The output is a
JSON-ready dict with one section per question a release asks:

- ``flips``: how many decisions change, as a matrix champion -> candidate and by direction;
- ``score_shift``: candidate score minus champion score (mean, spread, quantiles);
- ``reason_codes``: for events adverse under both, whether the reasons given change;
- ``fairness``: selection rates and disparate-impact ratio per context group, both models;
- ``performance``: ROC AUC and accuracy of both where outcome labels are known.

Accuracy here reads a ``decline`` as predicting the adverse outcome (label 1), the same
cut (``decline_at``) training uses for its holdout accuracy.

>>> pairs = ReplayPairs(
...     event_ids=["a", "b", "c"],
...     champion_decisions=["approve", "decline", "review"],
...     candidate_decisions=["approve", "approve", "review"],
...     champion_scores=[0.1, 0.7, 0.4],
...     candidate_scores=[0.1, 0.2, 0.45],
...     champion_reasons=[[], ["RC_LOAN"], ["RC_SALARY"]],
...     candidate_reasons=[[], [], ["RC_LOAN"]],
...     context=[{"g": "x"}, {"g": "y"}, {"g": "y"}],
...     labels=[0, 0, float("nan")],
... )
>>> report = compare(pairs, min_group_count=1)
>>> report["flips"]["flip_rate"], report["flips"]["by_direction"]
(0.3333333333333333, {'decline->approve': 1})
>>> report["reason_codes"]["changed"], report["performance"]["labelled"]
(1, 2)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from sklearn.metrics import roc_auc_score

from models.fairness import fairness_summary
from models.policy import ADVERSE_DECISIONS, APPROVE, DECLINE, REVIEW

DECISION_ORDER: Final = (APPROVE, REVIEW, DECLINE)
QUANTILES: Final = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


@dataclass
class ReplayPairs:
    """Row ``i`` of every field describes the event ``event_ids[i]`` under both models.

    ``labels`` are outcome labels (1 adverse, 0 good), NaN where none arrived.
    """

    event_ids: Sequence[str]
    champion_decisions: Sequence[str]
    candidate_decisions: Sequence[str]
    champion_scores: npt.ArrayLike
    candidate_scores: npt.ArrayLike
    champion_reasons: Sequence[Sequence[str]]
    candidate_reasons: Sequence[Sequence[str]]
    context: Sequence[Mapping[str, str]]
    labels: npt.ArrayLike = field(default_factory=lambda: np.empty(0))

    def __post_init__(self) -> None:
        n = len(self.event_ids)
        if not len(self.labels):  # type: ignore[arg-type]
            self.labels = np.full(n, np.nan)
        lengths = {
            name: len(getattr(self, name))
            for name in (
                "champion_decisions",
                "candidate_decisions",
                "champion_scores",
                "candidate_scores",
                "champion_reasons",
                "candidate_reasons",
                "context",
                "labels",
            )
        }
        wrong = {name: length for name, length in lengths.items() if length != n}
        if wrong:
            raise ValueError(f"replay pairs of {n} events have fields of other lengths: {wrong}")

    def __len__(self) -> int:
        return len(self.event_ids)


def _ordered(labels: set[str]) -> list[str]:
    known = [d for d in DECISION_ORDER if d in labels]
    return known + sorted(labels - set(DECISION_ORDER))


def flip_matrix(champion: Sequence[str], candidate: Sequence[str]) -> dict[str, Any]:
    """Counts champion decision -> candidate decision, the flips by direction and their rate.

    >>> m = flip_matrix(["approve", "review", "review"], ["approve", "decline", "review"])
    >>> m["matrix"]["review"], m["by_direction"], m["flipped"], m["compared"]
    ({'approve': 0, 'review': 1, 'decline': 1}, {'review->decline': 1}, 1, 3)
    """
    if len(champion) != len(candidate):
        raise ValueError("champion and candidate decisions differ in length")
    counts = Counter(zip(champion, candidate, strict=True))
    labels = _ordered(set(champion) | set(candidate) | set(DECISION_ORDER))
    matrix = {a: {b: counts.get((a, b), 0) for b in labels} for a in labels}
    by_direction = {
        f"{a}->{b}": matrix[a][b] for a in labels for b in labels if a != b and matrix[a][b]
    }
    flipped = sum(by_direction.values())
    compared = len(champion)
    adverse = [(a in ADVERSE_DECISIONS, b in ADVERSE_DECISIONS) for a, b in counts.elements()]
    return {
        "matrix": matrix,
        "by_direction": by_direction,
        "compared": compared,
        "flipped": flipped,
        "flip_rate": flipped / compared if compared else 0.0,
        "newly_adverse": sum(1 for was, now in adverse if now and not was),
        "newly_favourable": sum(1 for was, now in adverse if was and not now),
    }


def score_shift(champion: npt.ArrayLike, candidate: npt.ArrayLike) -> dict[str, Any]:
    """Candidate minus champion score: mean, mean absolute, spread and quantiles.

    >>> s = score_shift([0.2, 0.4], [0.5, 0.3])
    >>> round(s["mean"], 12), round(s["mean_abs"], 12), s["quantiles"]["p50"]
    (0.1, 0.2, 0.09999999999999998)
    """
    before = np.asarray(champion, dtype=np.float64)
    after = np.asarray(candidate, dtype=np.float64)
    if before.size == 0:
        return {"count": 0}
    delta = after - before
    return {
        "count": int(delta.size),
        "champion_mean": float(before.mean()),
        "candidate_mean": float(after.mean()),
        "mean": float(delta.mean()),
        "std": float(delta.std()),
        "mean_abs": float(np.abs(delta).mean()),
        "max_abs": float(np.abs(delta).max()),
        "quantiles": {
            f"p{round(q * 100):02d}": float(v)
            for q, v in zip(QUANTILES, np.quantile(delta, QUANTILES), strict=True)
        },
    }


def reason_changes(
    champion_decisions: Sequence[str],
    candidate_decisions: Sequence[str],
    champion_reasons: Sequence[Sequence[str]],
    candidate_reasons: Sequence[Sequence[str]],
) -> dict[str, Any]:
    """For events adverse under both models: changed reason sets, changed first reason,
    and how often each code was gained or lost.

    >>> r = reason_changes(["decline"], ["review"], [["RC_A", "RC_B"]], [["RC_B"]])
    >>> r["compared"], r["changed"], r["first_changed"], r["lost"]
    (1, 1, 1, {'RC_A': 1})
    """
    gained: Counter[str] = Counter()
    lost: Counter[str] = Counter()
    compared = changed = first_changed = 0
    for before, after, old, new in zip(
        champion_decisions, candidate_decisions, champion_reasons, candidate_reasons, strict=True
    ):
        if before not in ADVERSE_DECISIONS or after not in ADVERSE_DECISIONS:
            continue
        compared += 1
        old_set, new_set = set(old), set(new)
        if old_set != new_set:
            changed += 1
            gained.update(new_set - old_set)
            lost.update(old_set - new_set)
        if list(old[:1]) != list(new[:1]):
            first_changed += 1
    return {
        "compared": compared,
        "changed": changed,
        "changed_rate": changed / compared if compared else 0.0,
        "first_changed": first_changed,
        "gained": dict(gained.most_common()),
        "lost": dict(lost.most_common()),
    }


def group_fairness(
    champion_decisions: Sequence[str],
    candidate_decisions: Sequence[str],
    context: Sequence[Mapping[str, str]],
    labels: npt.ArrayLike,
    *,
    min_group_count: int,
) -> dict[str, Any]:
    """Per context attribute: :func:`~models.fairness.fairness_summary` of both models.

    Events without the attribute count in group ``"unknown"``.
    """
    attributes: dict[str, None] = {}
    for row in context:
        attributes.update(dict.fromkeys(row))
    outcome = np.asarray(labels, dtype=np.float64)
    champion = np.isin(np.asarray(champion_decisions, dtype=object), list(ADVERSE_DECISIONS))
    candidate = np.isin(np.asarray(candidate_decisions, dtype=object), list(ADVERSE_DECISIONS))
    result: dict[str, Any] = {}
    for attribute in attributes:
        groups = np.array([row.get(attribute, "unknown") for row in context], dtype=object)
        result[attribute] = {
            "champion": fairness_summary(champion, groups, outcome, min_count=min_group_count),
            "candidate": fairness_summary(candidate, groups, outcome, min_count=min_group_count),
        }
    return result


def _auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC AUC; None unless both classes are present."""
    if np.unique(labels).size < 2:
        return None
    return float(roc_auc_score(labels, scores))


def performance(
    champion_scores: npt.ArrayLike,
    candidate_scores: npt.ArrayLike,
    champion_decisions: Sequence[str],
    candidate_decisions: Sequence[str],
    labels: npt.ArrayLike,
) -> dict[str, Any]:
    """ROC AUC and accuracy of both models on the events with a 0/1 label.

    >>> p = performance([0.2, 0.8], [0.9, 0.1], ["approve", "decline"], ["decline", "approve"],
    ...                 [0, 1])
    >>> p["labelled"], p["champion"], p["candidate"]
    (2, {'roc_auc': 1.0, 'accuracy': 1.0}, {'roc_auc': 0.0, 'accuracy': 0.0})
    """
    outcome = np.asarray(labels, dtype=np.float64)
    known = (outcome == 0.0) | (outcome == 1.0)
    result: dict[str, Any] = {"labelled": int(known.sum())}
    if not known.any():
        return result
    y = outcome[known]
    for side, scores, decisions in (
        ("champion", champion_scores, champion_decisions),
        ("candidate", candidate_scores, candidate_decisions),
    ):
        predicted = np.asarray(decisions, dtype=object)[known] == DECLINE
        result[side] = {
            "roc_auc": _auc(y, np.asarray(scores, dtype=np.float64)[known]),
            "accuracy": float((predicted == (y == 1.0)).mean()),
        }
    return result


def compare(pairs: ReplayPairs, *, min_group_count: int = 30) -> dict[str, Any]:
    """Every comparison section (see module doc) for ``pairs``."""
    return {
        "compared": len(pairs),
        "flips": flip_matrix(pairs.champion_decisions, pairs.candidate_decisions),
        "score_shift": score_shift(pairs.champion_scores, pairs.candidate_scores),
        "reason_codes": reason_changes(
            pairs.champion_decisions,
            pairs.candidate_decisions,
            pairs.champion_reasons,
            pairs.candidate_reasons,
        ),
        "fairness": group_fairness(
            pairs.champion_decisions,
            pairs.candidate_decisions,
            pairs.context,
            pairs.labels,
            min_group_count=min_group_count,
        ),
        "performance": performance(
            pairs.champion_scores,
            pairs.candidate_scores,
            pairs.champion_decisions,
            pairs.candidate_decisions,
            pairs.labels,
        ),
    }
