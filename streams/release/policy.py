"""The promotion policy: thresholds of the gates a version must pass to become champion.

It lives beside the model in the registry, as ``<registry>/<name>/promotion-policy.yaml``,
so thresholds are reviewed and changed like any other file, not in code. The first
promotion of a model writes the defaults there (with comments) when the file is absent.
``version`` is the policy's own revision: bump it when a threshold changes, and every
gate result in the alias history names the revision that judged it.

>>> policy = PromotionPolicy()
>>> policy.version, policy.fairness.min_disparate_impact, policy.replay.max_flip_rate
(1, 0.8, 0.1)
>>> PromotionPolicy.model_validate({"version": 2, "replay": {"max_flip_rate": 0.02}}).replay
ReplayGate(max_flip_rate=0.02, min_events=100, max_events=50000, required=False)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.errors import ConfigError

POLICY_FILE: Final = "promotion-policy.yaml"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AdditivityGate(_Section):
    max_error: float = Field(default=1e-6, gt=0.0)
    """Largest |base value + contributions - model output| (log-odds) allowed on the sample."""
    sample_size: int = Field(default=500, ge=10, le=100_000)
    """Events explained when no recorded traffic is available (drawn from the reference)."""


class HoldoutGate(_Section):
    max_drop: dict[str, float] = Field(default_factory=lambda: {"roc_auc": 0.02, "accuracy": 0.03})
    """Metrics where higher is better: how far below the champion's the candidate may be."""
    max_rise: dict[str, float] = Field(default_factory=lambda: {"log_loss": 0.05, "brier": 0.02})
    """Metrics where lower is better: how far above the champion's the candidate may be."""


class FairnessGate(_Section):
    min_disparate_impact: float = Field(default=0.8, gt=0.0, le=1.0)
    """Lowest group selection rate over the highest (the four-fifths rule by default)."""
    min_group_count: int = Field(default=30, ge=1)
    """Groups smaller than this are left out of the replay's ratio (too noisy to judge)."""


class ReplayGate(_Section):
    max_flip_rate: float = Field(default=0.10, ge=0.0, le=1.0)
    """Largest share of recorded champion decisions the candidate may change."""
    min_events: int = Field(default=100, ge=1)
    """Fewer recorded events with a champion decision than this: the gate is skipped."""
    max_events: int = Field(default=50_000, ge=1)
    """Most recent recorded events read for the gate."""
    required: bool = False
    """When true, no readable recorded traffic fails the gate instead of skipping it."""


class PromotionPolicy(_Section):
    """Every gate threshold; absent sections take their defaults."""

    version: int = Field(default=1, ge=1)
    additivity: AdditivityGate = Field(default_factory=AdditivityGate)
    holdout: HoldoutGate = Field(default_factory=HoldoutGate)
    fairness: FairnessGate = Field(default_factory=FairnessGate)
    replay: ReplayGate = Field(default_factory=ReplayGate)


_HEADER: Final = """\
# Promotion gates of this model: `scorer models promote NAME VERSION` checks a candidate
# against these thresholds before it moves the champion alias. A failed gate refuses the
# promotion unless --force --reason TEXT is given. Bump `version` when you change a value:
# the alias history records which revision judged each promotion.
#
# additivity: largest explanation additivity error (log-odds) on a sample of events
# holdout:    max_drop for metrics where higher is better, max_rise where lower is better,
#             each against the current champion's holdout metrics
# fairness:   floor of the disparate-impact ratio (lowest over highest group selection rate)
#             at training and on recorded traffic; replay groups below min_group_count are
#             left out
# replay:     largest share of recorded champion decisions the candidate may change, read
#             from at most max_events recent events; skipped below min_events unless required
"""


def policy_path(model_dir: Path) -> Path:
    """Where the policy of the model stored in ``model_dir`` lives."""
    return Path(model_dir) / POLICY_FILE


def parse_policy(text: str, source: str = "policy") -> PromotionPolicy:
    """A policy from YAML text; a clear ConfigError names what is wrong and where."""
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of settings, got {type(data).__name__}")
    try:
        return PromotionPolicy.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "policy"
        raise ConfigError(f"{source}: {where}: {first['msg']}") from exc


def render_policy(policy: PromotionPolicy) -> str:
    """The policy as commented YAML."""
    body = yaml.safe_dump(policy.model_dump(mode="json"), sort_keys=False)
    return _HEADER + body


def load_policy(model_dir: Path) -> tuple[PromotionPolicy, bool]:
    """The policy in ``model_dir``, writing the defaults first when absent.

    Returns the policy and whether the file was created now.
    """
    path = policy_path(model_dir)
    try:
        return parse_policy(path.read_text(encoding="utf-8"), str(path)), False
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    policy = PromotionPolicy()
    try:
        with open(path, "x", encoding="utf-8") as handle:
            handle.write(render_policy(policy))
    except FileExistsError:  # written concurrently: read what the other writer left
        return parse_policy(path.read_text(encoding="utf-8"), str(path)), False
    except OSError as exc:
        raise ConfigError(f"cannot write the default policy {path}: {exc.strerror}") from exc
    return policy, True
