"""The scoring side of monitoring: count each scored batch into window summaries.

Where monitors run, and why here and in ``scorer monitor``:

- Counting happens inside every scoring process, on the batch it already holds: the design
  matrix, scores and decisions are at hand, so it costs a few vectorised counts per batch and
  no second pass over a topic. Reading the features back from ``decisions`` would need them
  in every decision; re-reading ``events`` would decode and vectorise everything twice.
- Judging happens in one place, ``scorer monitor`` (:mod:`streams.outcomes.owner`):
  each process publishes the window count deltas of its batch to ``monitor-summaries``
  (keyed by model, one partition, so the owner reads them in order), together with the
  batch's other outputs, so they are committed like them (at-least-once or in the batch's
  transaction). The owner merges the summaries of every process, joins labels, and emits
  alerts and fairness reports. Summaries add exactly and windows are in event time, so the
  verdicts equal those of one process over all partitions, however the partitions are split.

One contributing :class:`~streams.monitoring.monitor_set.MonitorSet` per serving version: a
promotion starts counting against the new version's reference. A failure in monitoring is
logged and counted, never allowed to stop scoring.
"""

from __future__ import annotations

import logging

import numpy as np
import orjson

from models.policy import DECISIONS
from models.scoring_model import ScoringModel
from streams.core.scoring import ScoredBatch
from streams.engine.records import Output, model_headers
from streams.monitoring.batch import ObservedBatch
from streams.monitoring.config import MonitorConfig
from streams.monitoring.monitor_set import MonitorSet
from streams.observability import ScorerMetrics
from streams.settings import Settings

log = logging.getLogger(__name__)
_DECISIONS = np.array(DECISIONS)
"""The decisions as a str array: indexed by the bands, the monitors' decisions column."""


def monitor_config(settings: Settings, **fields: int | None) -> MonitorConfig:
    """The window settings every contributor and the owner share (plus ``fields``)."""
    return MonitorConfig(
        window_seconds=settings.monitor_window_seconds,
        lateness_seconds=settings.monitor_lateness_seconds,
        **fields,  # type: ignore[arg-type]
    )


class EngineMonitors:
    """Counts the serving champion's scored events into window summaries."""

    def __init__(self, settings: Settings, metrics: ScorerMetrics) -> None:
        self.settings, self.metrics = settings, metrics
        self.config = monitor_config(settings)
        self._sets: dict[tuple[str, int], MonitorSet] = {}

    def observe(
        self,
        model: ScoringModel,
        scored: ScoredBatch,
        event_times: list[float],
        contexts: list[dict[str, str]],
        partitions: list[int],
        offsets: list[int],
    ) -> list[Output]:
        """The summary record of this batch's counts (none when nothing was scored).

        ``event_times`` (epoch seconds), ``contexts``, ``partitions`` and ``offsets`` are
        aligned with the scored rows. Closing windows is the owner's decision, from the
        watermarks in the summaries.
        """
        if scored.X is None or not scored.rows:
            return []
        try:
            monitors = self._for(model)
            monitors.observe(
                ObservedBatch(
                    scored.X,
                    scored.scores,
                    _DECISIONS[scored.bands],
                    np.asarray(event_times, dtype=np.float64),
                    partitions,
                    offsets,
                    contexts,
                )
            )
            export = monitors.summaries()
        except Exception:  # monitoring must never stop scoring
            log.exception("monitoring failed on a batch; scoring continues")
            self.metrics.errors.labels("monitoring").inc()
            return []
        headers = model_headers(model.manifest.name, model.manifest.version)
        key = model.manifest.name.encode()
        return [(self.settings.topic_monitor_summaries, key, orjson.dumps(export), headers)]

    def _for(self, model: ScoringModel) -> MonitorSet:
        key = (model.manifest.name, model.manifest.version)
        monitors = self._sets.get(key)
        if monitors is None:
            monitors = MonitorSet(model.manifest, self.config, role="contributor")
            self._sets = {key: monitors}  # the old version retires
        return monitors
