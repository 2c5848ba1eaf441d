"""Promotion gates: the checks a version must pass before it becomes champion.

Each gate is a pure function returning a :class:`GateResult` (pass, fail or skip, a one-line
detail with its numbers, and the numbers themselves). :func:`evaluate_promotion` runs them
in order, under the thresholds of a :class:`~streams.release.policy.PromotionPolicy`:

1. ``feature_spec``: the candidate accepts exactly what producers send today, judged
   against the champion's feature spec. An incompatible spec stops here: no recorded
   traffic is read for it.
2. ``holdout``: holdout metrics not worse than the champion's beyond a tolerance.
3. ``reference``: the manifest holds reference statistics for every feature. Without them
   the drift monitors of those features are empty and no sample can be drawn, so a champion
   would be watched by nothing.
4. ``feature_spec_traffic``: the candidate rejects none of the recorded events the champion
   decided (when recorded traffic was read).
5. ``additivity``: explanations add up to the model's output on a sample (recorded events,
   else events drawn from the training reference statistics; skipped when neither exists,
   never judged on rows made up from imputation values).
6. ``disparate_impact``: the ratio is above the floor at training and on recorded traffic.
7. ``replay_flips``: the share of recorded champion decisions the candidate changes.

A skipped gate does not block; only a failure does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np

from models.featurespec import Feature, FeatureKind, FeatureSpec
from models.manifest import ModelManifest
from models.reference import features_without_statistics
from models.reference import reference_sample as reference_sample  # re-exported
from models.servable import additivity_allowance
from streams.release.policy import FairnessGate, HoldoutGate, PromotionPolicy, ReplayGate

GateStatus = Literal["pass", "fail", "skip"]


PASS: Final = "pass"
FAIL: Final = "fail"
SKIP: Final = "skip"


@dataclass(frozen=True)
class GateResult:
    """The outcome of one gate."""

    gate: str
    status: GateStatus
    detail: str
    numbers: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status == FAIL

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, as kept in the alias history and sent in the ModelEvent."""
        return {
            "gate": self.gate,
            "status": self.status,
            "detail": self.detail,
            "numbers": self.numbers,
        }


@dataclass
class TrafficReplay:
    """What replaying recorded traffic with the candidate produced (see streams.release.replay).

    ``report`` is None when no traffic could be read; ``unavailable`` then says why.
    ``additivity_errors`` are those of the candidate's explanations of the replayed events.
    """

    report: dict[str, Any] | None
    additivity_errors: np.ndarray = field(default_factory=lambda: np.empty(0))
    unavailable: str | None = None


# --- 1. feature spec ------------------------------------------------------------------------


def spec_problems(candidate: FeatureSpec, producers: FeatureSpec) -> list[str]:
    """Why events valid for ``producers``' spec would not all be accepted by ``candidate``.

    Vectorising requires exactly the spec's feature names, so a feature missing on either
    side is a problem; so is a changed kind, a category the candidate does not know, and a
    feature the producers may leave null that the candidate requires.

    >>> from models.featurespec import Feature
    >>> old = FeatureSpec(features=[Feature(name="a", kind="numeric", nullable=True),
    ...                             Feature(name="b", kind="categorical", categories=["x", "y"])])
    >>> new = FeatureSpec(features=[Feature(name="a", kind="numeric"),
    ...                             Feature(name="b", kind="categorical", categories=["x"]),
    ...                             Feature(name="c", kind="boolean")])
    >>> spec_problems(new, old)  # doctest: +NORMALIZE_WHITESPACE
    ["needs feature(s) producers do not send: ['c']",
     "feature 'a' may be null in events but the candidate requires it",
     "feature 'b': candidate does not know category(ies) ['y']"]
    """
    problems: list[str] = []
    wanted = {f.name: f for f in candidate.features}
    sent = {f.name: f for f in producers.features}
    extra = sorted(wanted.keys() - sent.keys())
    if extra:
        problems.append(f"needs feature(s) producers do not send: {extra}")
    dropped = sorted(sent.keys() - wanted.keys())
    if dropped:
        problems.append(f"does not accept feature(s) producers send: {dropped}")
    for name in sorted(wanted.keys() & sent.keys()):
        problems.extend(_feature_problems(wanted[name], sent[name]))
    return problems


def _feature_problems(new: Feature, old: Feature) -> list[str]:
    if new.kind is not old.kind:
        return [f"feature {new.name!r} changes kind from {old.kind.value} to {new.kind.value}"]
    problems = []
    if old.nullable and not new.nullable:
        problems.append(f"feature {new.name!r} may be null in events but the candidate requires it")
    if new.kind is FeatureKind.CATEGORICAL:
        unknown = [c for c in old.categories if c not in set(new.categories)]
        if unknown:
            problems.append(
                f"feature {new.name!r}: candidate does not know category(ies) {unknown}"
            )
    return problems


def feature_spec_gate(candidate: FeatureSpec, champion: FeatureSpec | None) -> GateResult:
    """Fails when the candidate cannot take the events producers send for the champion."""
    if champion is None:
        return GateResult(
            "feature_spec",
            SKIP,
            "no champion to compare with",
            {"features": len(candidate.features)},
        )
    problems = spec_problems(candidate, champion)
    numbers = {"features": len(candidate.features), "problems": problems}
    if problems:
        return GateResult("feature_spec", FAIL, "; ".join(problems), numbers)
    return GateResult(
        "feature_spec",
        PASS,
        f"accepts every event the champion accepts ({len(candidate.features)} features)",
        numbers,
    )


def traffic_features_gate(events: Mapping[str, Any]) -> GateResult:
    """Fails when the candidate rejects recorded events the champion decided.

    ``events`` is the ``events`` section of a replay report.
    """
    decided = int(events.get("with_champion_decision", 0))
    rejected = int(events.get("rejected_by_candidate_decided", 0))
    numbers = {
        "decided_by_champion": decided,
        "rejected_by_candidate": rejected,
        "reasons": events.get("candidate_reject_reasons", {}),
    }
    if not decided:
        return GateResult(
            "feature_spec_traffic", SKIP, "no recorded event has a champion decision", numbers
        )
    if rejected:
        first = events.get("candidate_reject_example", "")
        return GateResult(
            "feature_spec_traffic",
            FAIL,
            f"rejects {rejected} of {decided} recorded events the champion decided; e.g. {first}",
            numbers,
        )
    return GateResult(
        "feature_spec_traffic", PASS, f"accepts all {decided} recorded events", numbers
    )


# --- 2. holdout metrics ---------------------------------------------------------------------


def holdout_gate(
    candidate: Mapping[str, float], champion: Mapping[str, float] | None, policy: HoldoutGate
) -> GateResult:
    """Each configured metric the champion has must be within its tolerance of it.

    >>> holdout_gate({"roc_auc": 0.90}, {"roc_auc": 0.95}, HoldoutGate()).status
    'fail'
    >>> result = holdout_gate({"roc_auc": 0.94, "log_loss": 0.3},
    ...                       {"roc_auc": 0.95, "log_loss": 0.29}, HoldoutGate())
    >>> result.status, result.detail.split("; ")
    ('pass', ['roc_auc 0.9400 vs 0.9500 (-0.0100, tolerance 0.02)', \
'log_loss 0.3000 vs 0.2900 (+0.0100, tolerance 0.05)'])
    """
    if champion is None:
        return GateResult("holdout", SKIP, "no champion to compare with")
    checks: list[tuple[str, float, float, float, bool]] = []
    worse: list[str] = []
    for metric, tolerance, higher_better in [
        *((m, t, True) for m, t in policy.max_drop.items()),
        *((m, t, False) for m, t in policy.max_rise.items()),
    ]:
        if metric not in champion:
            continue
        if metric not in candidate:
            worse.append(f"{metric} missing from the candidate")
            continue
        new, old = float(candidate[metric]), float(champion[metric])
        regression = old - new if higher_better else new - old
        failed = not regression <= tolerance  # NaN fails too
        checks.append((metric, new, old, tolerance, failed))
        if failed:
            worse.append(metric)
    numbers = {
        m: {"candidate": new, "champion": old, "tolerance": t} for m, new, old, t, _ in checks
    }
    if not checks and not worse:
        return GateResult("holdout", SKIP, "no configured metric in the champion's manifest")
    detail = "; ".join(
        f"{m} {new:.4f} vs {old:.4f} ({new - old:+.4f}, tolerance {t:g})"
        for m, new, old, t, _ in checks
    )
    missing = [w for w in worse if w.endswith("from the candidate")]
    detail = "; ".join([*missing, detail]) if missing else detail
    return GateResult("holdout", FAIL if worse else PASS, detail, numbers)


# --- 3. reference statistics ---------------------------------------------------------------


def reference_gate(candidate: ModelManifest) -> GateResult:
    """Fails when the candidate's manifest has no reference statistics for some feature."""
    missing = features_without_statistics(candidate)
    total = len(candidate.feature_spec.features)
    numbers = {"features": total, "without_statistics": missing}
    if missing:
        return GateResult(
            "reference",
            FAIL,
            f"no reference statistics for {len(missing)} of {total} features ({missing}): "
            "their drift monitors would be empty and no sample can be drawn",
            numbers,
        )
    return GateResult("reference", PASS, f"statistics for all {total} features", numbers)


# --- 4. explanation additivity --------------------------------------------------------------


def additivity_gate(errors: np.ndarray, max_error: float, source: str) -> GateResult:
    """Fails when any explanation's additivity error exceeds ``max_error``.

    >>> additivity_gate(np.array([1e-15, 3e-15]), 1e-6, "test").status
    'pass'
    """
    values = np.asarray(errors, dtype=np.float64)
    if values.size == 0:
        return GateResult("additivity", SKIP, f"nothing explained ({source})")
    worst = float(np.nanmax(values)) if not np.isnan(values).all() else float("nan")
    bad = int(np.count_nonzero(~(values <= max_error)))
    numbers = {"sample": int(values.size), "max_error": worst, "limit": max_error, "source": source}
    detail = (
        f"max additivity error {worst:.2e} over {values.size} events from {source} "
        f"(limit {max_error:g})"
    )
    if bad:
        return GateResult("additivity", FAIL, f"{bad} exceed the limit; {detail}", numbers)
    return GateResult("additivity", PASS, detail, numbers)


def _additivity(
    candidate: ModelManifest,
    replay: TrafficReplay,
    explain_sample: Callable[[], np.ndarray],
    max_error: float,
) -> GateResult:
    """On recorded traffic when it was explained, else on a reference sample, else skipped.

    A library that adds in float32 (XGBoost) is held to the float32 summation bound
    recorded at its registration when that exceeds the policy's limit."""
    max_error = max(max_error, additivity_allowance(candidate))
    if replay.additivity_errors.size:
        return additivity_gate(replay.additivity_errors, max_error, "recorded traffic")
    missing = features_without_statistics(candidate)
    if missing:
        which = "" if len(missing) == len(candidate.feature_spec.features) else f" for {missing}"
        return GateResult(
            "additivity",
            SKIP,
            f"no reference statistics{which}: no rows to explain (and no recorded traffic)",
            {"sample": 0, "without_statistics": missing},
        )
    return additivity_gate(explain_sample(), max_error, "the training reference")


# --- 5. disparate impact --------------------------------------------------------------------


def _training_ratios(fairness: Mapping[str, Any]) -> dict[str, float]:
    attributes = fairness.get("attributes")
    if not isinstance(attributes, Mapping):
        return {}
    ratios = {}
    for attribute, summary in attributes.items():
        ratio = summary.get("disparate_impact_ratio") if isinstance(summary, Mapping) else None
        if isinstance(ratio, int | float):
            ratios[f"training:{attribute}"] = float(ratio)
    return ratios


def _replay_ratios(report: Mapping[str, Any] | None) -> dict[str, float]:
    if not report:
        return {}
    ratios = {}
    for attribute, sides in report.get("fairness", {}).items():
        ratio = sides["candidate"].get("disparate_impact_ratio")
        if ratio is not None:
            ratios[f"replay:{attribute}"] = float(ratio)
    return ratios


def fairness_gate(
    candidate_fairness: Mapping[str, Any], report: Mapping[str, Any] | None, policy: FairnessGate
) -> GateResult:
    """Fails when a disparate-impact ratio (training holdout or replay) is below the floor."""
    ratios = {**_training_ratios(candidate_fairness), **_replay_ratios(report)}
    floor = policy.min_disparate_impact
    numbers: dict[str, Any] = {"floor": floor, "ratios": ratios}
    if not ratios:
        return GateResult("disparate_impact", SKIP, "no group selection rates known", numbers)
    detail = ", ".join(f"{where} {ratio:.3f}" for where, ratio in sorted(ratios.items()))
    below = sorted(where for where, ratio in ratios.items() if ratio < floor)
    if below:
        return GateResult("disparate_impact", FAIL, f"below floor {floor:g}: {detail}", numbers)
    return GateResult("disparate_impact", PASS, f"floor {floor:g}: {detail}", numbers)


# --- 6. replay flips ------------------------------------------------------------------------


def replay_gate(replay: TrafficReplay, policy: ReplayGate) -> GateResult:
    """Fails when the candidate changes more recorded champion decisions than allowed."""
    limit = policy.max_flip_rate
    report = replay.report
    compared = int(report["flips"]["compared"]) if report else 0
    if compared < policy.min_events:
        why = replay.unavailable or (
            f"{compared} recorded events with a champion decision, fewer than {policy.min_events}"
        )
        status: GateStatus = FAIL if policy.required else SKIP
        return GateResult("replay_flips", status, why, {"compared": compared, "limit": limit})
    assert report is not None
    flips = report["flips"]
    directions = ", ".join(f"{d} {n}" for d, n in flips["by_direction"].items()) or "none"
    numbers = {
        "compared": compared,
        "flipped": flips["flipped"],
        "flip_rate": flips["flip_rate"],
        "limit": limit,
        "by_direction": flips["by_direction"],
    }
    detail = (
        f"{flips['flip_rate']:.2%} of {compared} decisions change (limit {limit:.2%}): {directions}"
    )
    return GateResult("replay_flips", FAIL if flips["flip_rate"] > limit else PASS, detail, numbers)


# --- all of them ----------------------------------------------------------------------------


def evaluate_promotion(
    candidate: ModelManifest,
    champion: ModelManifest | None,
    policy: PromotionPolicy,
    *,
    replay_traffic: Callable[[], TrafficReplay] | None,
    explain_sample: Callable[[], np.ndarray],
) -> list[GateResult]:
    """Run every gate in order (see module doc).

    ``replay_traffic`` reads and replays recorded traffic (None: not wanted, the traffic
    gates are skipped); ``explain_sample`` returns additivity errors on a reference sample,
    used when no recorded event was explained and the reference covers every feature. An
    incompatible feature spec returns at once, before either is called.
    """
    spec = feature_spec_gate(candidate.feature_spec, champion.feature_spec if champion else None)
    if spec.failed:
        return [spec]
    results = [
        spec,
        holdout_gate(candidate.metrics, champion.metrics if champion else None, policy.holdout),
        reference_gate(candidate),
    ]
    replay = (
        replay_traffic()
        if replay_traffic is not None
        else TrafficReplay(None, unavailable="replay skipped on request")
    )
    if replay.report is not None:
        results.append(traffic_features_gate(replay.report["events"]))
    results.append(_additivity(candidate, replay, explain_sample, policy.additivity.max_error))
    results.append(fairness_gate(candidate.fairness, replay.report, policy.fairness))
    results.append(replay_gate(replay, policy.replay))
    return results
