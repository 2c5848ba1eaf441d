"""Alert lifecycle: one alert per drift episode, a resolution when it clears, a cooldown.

Per monitor, over its final windows in window order:

- **open**: a breaching window opens an episode (one ``open`` alert) unless the monitor is
  cooling down; further breaching windows belong to the same episode and raise nothing;
- **escalate**: if a retrain rule becomes met while the episode is open and its opening
  did not carry one, the opening alert is re-issued once, same ``alert_id``, with
  ``retrain_recommended`` (see :mod:`streams.monitoring.retrain`);
- **resolve**: ``resolve_windows`` consecutive evaluated windows without a breach close the
  episode (one ``resolved`` record, same ``alert_id``);
- **cooldown**: for ``cooldown_windows`` windows after a resolution no episode opens
  (breaches are counted as suppressed); a breach after that opens a new episode.

Windows without a verdict (too few events) neither breach nor clear.

>>> from streams.monitoring.base import Verdict
>>> tracker = EpisodeTracker(resolve_windows=2, cooldown_windows=1)
>>> def step(w, breach):
...     v = Verdict("m", "feature", "x", "g_test", 50.0 if breach else 1.0, 40.0, breach, 500)
...     t = tracker.step(v, WindowSummary("events", w, 60.0, 500))
...     return None if t is None else (t.status, t.alert_id)
>>> [step(w, b) for w, b in enumerate([False, True, True, False, True, False, False, True])]
[None, ('open', 'm@1'), None, None, None, None, ('resolved', 'm@1'), None]
>>> step(8, True), tracker.suppressed
(('open', 'm@8'), 1)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from streams.monitoring.base import Verdict
from streams.monitoring.summary import WindowSummary


@dataclass
class Episode:
    alert_id: str
    opened_window: int
    opening: Verdict
    opening_window: WindowSummary
    retrain_rule: str | None
    windows: int = 1
    breaches: int = 1
    peak: float = 0.0
    clear_streak: int = 0


_EPISODE_SCALARS = (
    "alert_id", "opened_window", "retrain_rule", "windows", "breaches", "peak", "clear_streak"
)  # fmt: skip


@dataclass(frozen=True)
class Transition:
    """A record-worthy change of one monitor's episode."""

    status: Literal["open", "resolved"]
    alert_id: str
    verdict: Verdict
    window: WindowSummary
    retrain_rule: str | None
    episode: dict[str, Any] = field(default_factory=dict)


class EpisodeTracker:
    """Episode state of every monitor (see module doc)."""

    def __init__(self, resolve_windows: int, cooldown_windows: int) -> None:
        self.resolve_windows = resolve_windows
        self.cooldown_windows = cooldown_windows
        self.open: dict[str, Episode] = {}
        self.cooldown_until: dict[str, int] = {}
        self.suppressed = 0

    def is_open(self, monitor_id: str) -> bool:
        return monitor_id in self.open

    def step(
        self, verdict: Verdict, window: WindowSummary, retrain_rule: str | None = None
    ) -> Transition | None:
        """Advance ``verdict.monitor_id`` by one final window."""
        key = verdict.monitor_id
        episode = self.open.get(key)
        if episode is not None:
            episode.windows += 1
            if verdict.breach:
                episode.breaches += 1
                episode.peak = max(episode.peak, verdict.value)
                episode.clear_streak = 0
                return None
            episode.clear_streak += 1
            if episode.clear_streak < self.resolve_windows:
                return None
            del self.open[key]
            self.cooldown_until[key] = window.window_id + 1 + self.cooldown_windows
            return Transition(
                "resolved", episode.alert_id, verdict, window, None, self._describe(episode)
            )
        if not verdict.breach:
            return None
        if window.window_id < self.cooldown_until.get(key, window.window_id):
            self.suppressed += 1
            return None
        episode = Episode(
            alert_id=f"{key}@{window.window_id}",
            opened_window=window.window_id,
            opening=verdict,
            opening_window=window,
            retrain_rule=retrain_rule,
            peak=verdict.value,
        )
        self.open[key] = episode
        return Transition(
            "open", episode.alert_id, verdict, window, retrain_rule, self._describe(episode)
        )

    def escalate(self, monitor_id: str, retrain_rule: str, window_id: int) -> Transition | None:
        """Re-issue an open episode's alert once with a retrain rule it did not carry
        (met at window ``window_id``)."""
        episode = self.open.get(monitor_id)
        if episode is None or episode.retrain_rule is not None:
            return None
        episode.retrain_rule = retrain_rule
        return Transition(
            "open",
            episode.alert_id,
            episode.opening,
            episode.opening_window,
            retrain_rule,
            {**self._describe(episode), "escalated_window": window_id},
        )

    def state(self) -> dict[str, Any]:
        """JSON-able episode state, for a checkpoint; :meth:`restore` reverses it."""
        return {
            "open": {
                key: {
                    **{f: getattr(e, f) for f in _EPISODE_SCALARS},
                    "opening": asdict(e.opening),
                    "opening_window": e.opening_window.to_dict(),
                }
                for key, e in sorted(self.open.items())
            },
            "cooldown_until": dict(sorted(self.cooldown_until.items())),
            "suppressed": self.suppressed,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.open = {
            key: Episode(
                **{f: e[f] for f in _EPISODE_SCALARS},
                opening=Verdict(**e["opening"]),
                opening_window=WindowSummary.from_dict(e["opening_window"]),
            )
            for key, e in state["open"].items()
        }
        self.cooldown_until = {k: int(v) for k, v in state["cooldown_until"].items()}
        self.suppressed = int(state["suppressed"])

    @staticmethod
    def _describe(episode: Episode) -> dict[str, Any]:
        return {
            "opened_window": episode.opened_window,
            "windows": episode.windows,
            "breaches": episode.breaches,
            "peak": episode.peak,
        }
