"""The release workflow: gate a candidate, move the alias, record it, announce it.

A promotion to champion first runs the promotion gates (:mod:`streams.release.gates`) under
the model's promotion policy (:mod:`streams.release.policy`), replaying recorded traffic with
the candidate (:mod:`streams.release.replay`) unless told not to. A failed gate refuses the
promotion unless it is forced with a reason. Promotions, rollbacks and refusals are kept in
the registry's alias history, then announced as a ModelEvent on the model-events topic
naming the actor, the reason and the gates. When the broker cannot be reached the registry
change stands and the outcome says the event was not published.

The challenger alias is not gated: it only scores in shadow.
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from models.reference import reference_sample
from models.registry import AliasMove, Registry
from models.scoring_model import ScoringModel
from schemas.contracts import MAX_DETAIL_LENGTH, MAX_ID_LENGTH, ModelEvent
from schemas.errors import BrokerError, ConfigError
from streams.core.scoring import score_batch
from streams.model_events import publish_model_event
from streams.release.gates import GateResult, TrafficReplay, evaluate_promotion
from streams.release.policy import PromotionPolicy, load_policy, policy_path
from streams.release.replay import replay_report
from streams.settings import Settings


@dataclass(frozen=True)
class Promotion:
    """What a promotion did: the alias move (or the refusal), and the gates behind it."""

    move: AliasMove
    refused: bool = False
    gates: list[GateResult] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    policy: PromotionPolicy | None = None
    policy_file: Path | None = None
    policy_written: bool = False
    """True when the default policy file was written by this promotion."""
    announcement: str | None = None
    """None when the ModelEvent was published, else why not."""


def promote(
    settings: Settings,
    registry: Registry,
    name: str,
    version: int,
    *,
    alias: str = "champion",
    actor: str,
    reason: str | None = None,
    force: bool = False,
    replay_traffic: bool = True,
    timeout: float = 120.0,
) -> Promotion:
    """Gate ``version`` and move ``alias`` to it; a refusal moves nothing but is recorded."""
    if force and not (reason or "").strip():
        raise ConfigError("--force needs --reason TEXT: a forced promotion records why")
    champion = registry.aliases(name).get("champion")
    if alias != "champion" or champion == version:
        move = registry.set_alias(name, alias, version, actor=actor, reason=reason)
        return Promotion(
            move, announcement=announce(settings, registry, move, "promoted", actor, reason)
        )
    candidate = ScoringModel.from_loaded(registry.load(name, version))
    policy, written = load_policy(registry.root / name)
    results = evaluate_promotion(
        candidate.manifest,
        registry.manifest(name, champion) if champion is not None else None,
        policy,
        replay_traffic=_traffic(settings, candidate, policy, timeout) if replay_traffic else None,
        explain_sample=lambda: sample_additivity_errors(candidate, policy),
    )
    gates = [{**r.as_dict(), "policy_version": policy.version} for r in results]
    failed = [r.gate for r in results if r.failed]
    where: dict[str, Any] = {
        "policy": policy,
        "policy_file": policy_path(registry.root / name),
        "policy_written": written,
        "gates": results,
        "failed": failed,
    }
    if failed and not force:
        refusal_reason = f"gate(s) failed: {', '.join(failed)}"
        at = registry.record_refusal(
            name, alias, version, actor=actor, reason=refusal_reason, gates=gates
        )
        refusal = AliasMove(name, alias, version, champion, at)
        problem = announce(settings, registry, refusal, "refused", actor, refusal_reason, gates)
        return Promotion(refusal, refused=True, announcement=problem, **where)
    if failed:
        reason = f"forced past failed gate(s) {', '.join(failed)}: {reason}"
    move = registry.set_alias(
        name, alias, version, actor=actor, reason=reason, gates=gates, forced=bool(failed)
    )
    problem = announce(settings, registry, move, "promoted", actor, reason, gates)
    return Promotion(move, announcement=problem, **where)


def rollback(
    settings: Settings, registry: Registry, name: str, *, actor: str, reason: str | None
) -> Promotion:
    """Move champion back to the version before its latest promotion, and announce it."""
    move = registry.rollback(name, actor=actor, reason=reason)
    return Promotion(
        move, announcement=announce(settings, registry, move, "rolled_back", actor, reason)
    )


def announce(
    settings: Settings,
    registry: Registry,
    move: AliasMove,
    event_type: str,
    actor: str,
    reason: str | None,
    gates: list[dict[str, Any]] | None = None,
) -> str | None:
    """Publish a registry change as a ModelEvent: None when acknowledged, else why not."""
    sha256 = registry.manifest(move.name, move.version).artifact.sha256 if move.version else None
    event = ModelEvent.model_validate(
        {
            "event_type": event_type,
            "model_name": move.name,
            "version": move.version,
            "alias": move.alias,
            "previous_version": move.previous_version,
            "sha256": sha256,
            "actor": actor,
            "reason": None if reason is None else reason[:MAX_DETAIL_LENGTH],
            "gates": gates or [],
            "occurred_at": move.at,
        }
    )
    return publish_model_event(settings, event)


def actor_name(explicit: str | None = None) -> str:
    """Who moves the alias: ``explicit``, else SCORER_ACTOR, else user@host."""
    configured = (explicit or os.environ.get("SCORER_ACTOR", "")).strip()
    if configured:
        return configured[:MAX_ID_LENGTH]
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"[:MAX_ID_LENGTH]


def sample_additivity_errors(model: ScoringModel, policy: PromotionPolicy) -> np.ndarray:
    """Additivity errors of the model's explanations of a sample drawn from its reference."""
    now = datetime.now(UTC).isoformat()
    events = [
        {"event_id": f"sample-{i}", "entity_id": "sample", "event_time": now, "features": f}
        for i, f in enumerate(reference_sample(model.manifest, policy.additivity.sample_size))
    ]
    scored = score_batch(model, events)
    return np.array([e["additivity_error"] for e in scored.explanations], dtype=np.float64)


def _traffic(
    settings: Settings, candidate: ScoringModel, policy: PromotionPolicy, timeout: float
) -> Callable[[], TrafficReplay]:
    def read() -> TrafficReplay:
        try:
            report, errors = replay_report(
                settings,
                candidate,
                max_events=policy.replay.max_events,
                min_group_count=policy.fairness.min_group_count,
                timeout=timeout,
            )
        except BrokerError as exc:
            return TrafficReplay(None, unavailable=f"no recorded traffic read: {exc}")
        return TrafficReplay(report, errors)

    return read
