"""Settings of a :class:`~streams.monitoring.monitor_set.MonitorSet`, frozen.

Windows are event-time tumbling windows of ``window_seconds`` (see
:mod:`streams.monitoring.windows`); choose the length so that a window holds roughly 500 to
1,000 events at the expected rate: the detection delay is about two windows, and smaller
windows lose power (see :mod:`streams.monitoring.calibration` for the numbers).

Budgets are *expected events between two false alarms* per monitor kind; the default,
10,000,000, is split evenly across the tests of a kind (one per feature).

>>> config = MonitorConfig(window_seconds=300, budgets={"concept": 1e6})
>>> config.budget_for("concept"), config.budget_for("feature")
(1000000.0, 10000000.0)
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

BudgetKind = Literal["feature", "missing", "prediction", "concept"]


class MonitorConfig(BaseModel):
    """Windows, false-alarm budgets, fairness thresholds, episode and retrain rules."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    window_seconds: float = Field(default=60.0, gt=0.0, description="Tumbling window length.")
    lateness_seconds: float = Field(
        default=5.0, ge=0.0, description="How far behind its partition's watermark an event may be."
    )
    event_partitions: int | None = Field(
        default=None,
        ge=1,
        description="Partitions of the events topic; a window closes when all have passed it "
        "(None: the partitions seen so far, right for a single process).",
    )
    label_partitions: int | None = Field(
        default=None, ge=1, description="Partitions of the feedback topic, as above."
    )
    budget_events: float = Field(
        default=1e7, gt=0.0, description="Default events between false alarms, per monitor."
    )
    budgets: dict[BudgetKind, float] = Field(
        default_factory=dict, description="Per monitor kind overrides of budget_events."
    )
    min_window_events: int = Field(default=200, ge=1, description="Fewer: no drift verdict.")
    min_window_labels: int = Field(default=200, ge=1, description="Fewer: no concept verdict.")
    min_group_count: int = Field(default=100, ge=1)
    di_threshold: float = Field(default=0.8, gt=0.0, le=1.0)
    fairness_attributes: list[str] | None = Field(
        default=None, description="Context attributes to report on (None: the manifest's)."
    )
    resolve_windows: int = Field(
        default=2, ge=1, description="Consecutive clear windows that resolve an episode."
    )
    cooldown_windows: int = Field(
        default=3, ge=0, description="Windows after a resolution in which no episode opens."
    )
    retrain_features: int = Field(default=1, ge=1, description="k of the retrain rule R2.")
    retrain_windows: int = Field(default=3, ge=1, description="m of the retrain rule R2.")
    calibration_draws: int = Field(default=20_000, ge=1000)
    calibration_seed: int = 0

    def budget_for(self, kind: BudgetKind) -> float:
        """The false-alarm budget (events between false alarms) of a monitor kind."""
        return float(self.budgets.get(kind, self.budget_events))
