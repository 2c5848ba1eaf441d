"""The engine's side of monitoring: feed each scored batch to the champion's monitors and
turn the records they emit into outputs for ``drift-alerts`` and ``fairness-reports``.

Monitors run inside the scoring process, on the batch it already holds: the design matrix,
scores and decisions are at hand, so observing costs a few vectorised counts per batch and
no second pass over ``decisions``. One :class:`~streams.monitoring.monitor_set.MonitorSet`
per serving version: a promotion starts fresh windows against the new version's reference.
The process owns the monitors of the partitions it is assigned (one process: all); alert
records leave with the batch's other outputs, so their offsets commit only once they are
delivered. A failure in monitoring is logged and counted, never allowed to stop scoring.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import orjson

from models.scoring_model import ScoringModel
from streams.core.scoring import ScoredBatch
from streams.feedback import Joined
from streams.monitoring.batch import LabelledBatch, ObservedBatch
from streams.monitoring.config import MonitorConfig
from streams.monitoring.monitor_set import MonitorSet
from streams.monitoring.summary import Stream
from streams.observability import ScorerMetrics
from streams.settings import Settings

log = logging.getLogger(__name__)

Output = tuple[str, bytes | None, bytes, list[tuple[str, str | bytes | None]]]


class EngineMonitors:
    """Drift and fairness monitors of the serving champion version."""

    def __init__(
        self,
        settings: Settings,
        metrics: ScorerMetrics,
        event_partitions: int,
        label_partitions: int | None = None,
    ) -> None:
        self.settings, self.metrics = settings, metrics
        self.partitions = {"events": event_partitions, "labels": label_partitions or 0}
        self.config = MonitorConfig(
            window_seconds=settings.monitor_window_seconds,
            lateness_seconds=settings.monitor_lateness_seconds,
            event_partitions=event_partitions,
            label_partitions=label_partitions,
        )
        self._sets: dict[tuple[str, int], MonitorSet] = {}

    def observe(
        self,
        model: ScoringModel,
        scored: ScoredBatch,
        event_times: list[float],
        contexts: list[dict[str, str]],
        partitions: list[int],
        offsets: list[int],
        assigned: set[int],
    ) -> list[Output]:
        """Outputs for the alerts and reports that this batch made final.

        ``event_times`` (epoch seconds), ``contexts``, ``partitions`` and ``offsets`` are
        aligned with the scored rows. A window closes when every partition of the events
        topic has passed it. Partitions assigned to another process are moved along with
        this batch's latest event time, so that windows close here too; their events are
        then not in this process's verdicts (merging summaries across processes is the
        multi-instance design of :mod:`streams.monitoring.monitor_set`, not wired into this
        engine yet).
        """
        if scored.X is None or not scored.rows:
            return []
        try:
            monitors = self._for(model)
            batch = ObservedBatch(
                scored.X,
                scored.scores,
                [d["decision"] for d in scored.decisions],
                np.asarray(event_times, dtype=np.float64),
                partitions,
                offsets,
                contexts,
            )
            records = monitors.observe(batch)
            records += self._advance(monitors, "events", float(batch.event_time.max()), assigned)
        except Exception:  # monitoring must never stop scoring
            log.exception("monitoring failed on a batch; scoring continues")
            self.metrics.errors.labels("monitoring").inc()
            return []
        return [self._output(record) for record in records]

    def observe_labels(
        self,
        model: ScoringModel,
        joined: list[Joined],
        partitions: list[int],
        offsets: list[int],
        assigned: set[int],
    ) -> list[Output]:
        """Outputs for the concept-drift and outcome-fairness records the labels made final."""
        try:
            monitors = self._for(model)
            batch = LabelledBatch(
                [j.score for j in joined],
                [j.decision for j in joined],
                [j.label for j in joined],
                [j.label_time for j in joined],
                partitions,
                offsets,
                [j.context for j in joined],
            )
            records = monitors.observe_labels(batch)
            records += self._advance(monitors, "labels", float(batch.label_time.max()), assigned)
        except Exception:  # monitoring must never stop scoring
            log.exception("monitoring failed on a batch of labels; scoring continues")
            self.metrics.errors.labels("monitoring").inc()
            return []
        return [self._output(record) for record in records]

    def _advance(
        self, monitors: MonitorSet, stream: Stream, latest: float, assigned: set[int]
    ) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        for partition in range(self.partitions[stream]):
            if partition not in assigned:
                records += monitors.advance_watermark(stream, partition, latest)
        return records

    def _for(self, model: ScoringModel) -> MonitorSet:
        key = (model.manifest.name, model.manifest.version)
        monitors = self._sets.get(key)
        if monitors is None:
            self._sets = {key: MonitorSet(model.manifest, self.config)}  # old version retires
            monitors = self._sets[key]
        return monitors

    def _output(self, record: dict[str, Any]) -> Output:
        if "alert_id" in record:
            topic, key = self.settings.topic_drift_alerts, record["monitor_id"]
            status = "resolved" if record.get("status") == "resolved" else "open"
            self.metrics.alerts.labels(record.get("monitor", "?"), status).inc()
            log.warning(
                "drift %s: %s %s (%s=%.4g, threshold %.4g, retrain %s)",
                status, record.get("monitor"), record.get("feature") or "",
                record.get("statistic"), record.get("value", np.nan),
                record.get("threshold", np.nan), record.get("retrain_recommended"),
            )  # fmt: skip
        else:
            topic, key = self.settings.topic_fairness_reports, record["attribute"]
            self.metrics.fairness.labels(record["attribute"], record.get("status", "?")).inc()
        headers: list[tuple[str, str | bytes | None]] = [
            ("model_name", str(record["model"]["name"]).encode()),
            ("model_version", str(record["model"]["version"]).encode()),
        ]
        return (topic, key.encode(), orjson.dumps(record), headers)
