"""The monitor owner's judgement, without Kafka: inputs in, alert and report records out.

``scorer monitor`` runs it on Kafka (:mod:`streams.outcomes.service`).

Scoring processes count their batches into window summaries
(:mod:`streams.engine.monitors`). This process reads two topics and judges:

- ``monitor-summaries``: merged into one :class:`~streams.monitoring.monitor_set.MonitorSet`
  per model version; a window is evaluated once every partition of the events topic has
  passed it, so the verdicts are those of one process over all partitions.
- ``outcomes``: labels joined to their decisions by the outcome join
  (:mod:`streams.outcomes.join_service`); they feed concept drift and outcome fairness of the
  version that decided.

A window is evaluated only when every partition of its stream has passed it, so a partition
that stops receiving data holds windows open (keyed traffic reaches every partition). For
sparse topics, ``monitor_idle_seconds`` moves a partition along once its watermark trails the
newest one by that much event time. It is off by default because it is only safe when it
exceeds how far apart in event time the scorers read their partitions: scorers run at
different speeds, and a busy partition moved along early has its later counts dropped as late.

Run one owner per deployment; a second one started with the same group id fences the first.
Duplicates of scored batches (at-least-once after a scoring process crashed) are dropped when
a whole summary repeats offsets already merged; a partly repeated summary is counted twice.
Serve with ``--exactly-once`` where monitor counts must be exact across scorer crashes.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from typing import Any

import numpy as np
import orjson

from models.registry import Registry
from schemas.errors import ScorerError
from streams.engine.monitors import monitor_config
from streams.engine.records import Output, model_headers
from streams.monitoring.batch import LabelledBatch
from streams.monitoring.monitor_set import MonitorSet
from streams.monitoring.summary import Stream
from streams.observability import ScorerMetrics
from streams.outcomes.join import epoch
from streams.settings import Settings

log = logging.getLogger(__name__)

ModelKey = tuple[str, int]


class MonitorOwner:
    """The owner's logic, without Kafka: inputs in, alert and report records out."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        event_partitions: int,
        label_partitions: int,
        metrics: ScorerMetrics | None = None,
    ) -> None:
        self.settings, self.registry = settings, registry
        self.metrics = metrics or ScorerMetrics()
        self.config = monitor_config(
            settings, event_partitions=event_partitions, label_partitions=label_partitions
        )
        self.idle_seconds = settings.monitor_idle_seconds
        self.sets: dict[ModelKey, MonitorSet] = {}
        self.merged_offsets: dict[ModelKey, dict[int, int]] = defaultdict(dict)
        self.skipped_summaries = 0

    # --- inputs -----------------------------------------------------------------------------

    def summaries(self, values: list[bytes | None]) -> list[dict[str, Any]]:
        """Merge summary exports in order; the records of the windows they made final."""
        records: list[dict[str, Any]] = []
        for value in values:
            try:  # one unusable summary is skipped and counted; it never stops the owner
                export = orjson.loads(value or b"null")
                key = (str(export["model"]["name"]), int(export["model"]["version"]))
                monitors = self._for(key)
                if self._replayed(key, export):
                    self.skipped_summaries += 1
                    continue
                records += monitors.merge_summary(export)
                self._note_merged(key, export)
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, ScorerError) as exc:
                log.error("summary skipped: %s", exc)
                self.metrics.errors.labels("monitor_summary").inc()
                continue
            records += self._move_idle(monitors, "events")
        return records

    def outcomes(
        self, values: list[bytes | None], partitions: list[int], offsets: list[int]
    ) -> list[dict[str, Any]]:
        """Joined outcomes (the outcome join's records) into the label monitors of the version
        that decided; the records of the label windows they made final. An unusable record
        is skipped and counted."""
        by_model: dict[ModelKey, list[int]] = defaultdict(list)
        rows: list[dict[str, Any]] = []
        for value in values:
            try:
                row = orjson.loads(value or b"null")
                key = (str(row["model"]["name"]), int(row["model"]["version"]))
                row["t"] = epoch(row["label_time"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                log.error("outcome record skipped: not an outcome")
                self.metrics.errors.labels("outcome_record").inc()
                rows.append({})
                continue
            by_model[key].append(len(rows))
            rows.append(row)
        records: list[dict[str, Any]] = []
        for key, indexes in sorted(by_model.items()):
            try:
                monitors = self._for(key)
            except ScorerError as exc:
                log.error("labels of %s:v%d not monitored: %s", *key, exc)
                continue
            items = [rows[i] for i in indexes]
            records += monitors.observe_labels(
                LabelledBatch(
                    [float(r["score"]) for r in items],
                    [r["decision"] for r in items],
                    [int(r["label"]) for r in items],
                    [r["t"] for r in items],
                    [partitions[i] for i in indexes],
                    [offsets[i] for i in indexes],
                    [r.get("context") or {} for r in items],
                )
            )
            records += self._move_idle(monitors, "labels")
        return records

    # --- checkpoints ------------------------------------------------------------------------

    def state(self) -> list[dict[str, Any]]:
        return [
            {
                **monitors.state(),
                "merged_offsets": {str(p): o for p, o in self.merged_offsets[key].items()},
            }
            for key, monitors in sorted(self.sets.items())
        ]

    def restore(self, states: list[dict[str, Any]]) -> None:
        for state in states:
            key = (str(state["model"]["name"]), int(state["model"]["version"]))
            self._for(key).restore(state)
            self.merged_offsets[key] = {int(p): int(o) for p, o in state["merged_offsets"].items()}

    # --- internals --------------------------------------------------------------------------

    def _for(self, key: ModelKey) -> MonitorSet:
        monitors = self.sets.get(key)
        if monitors is None:
            manifest = self.registry.manifest(*key)
            monitors = self.sets[key] = MonitorSet(manifest, self.config)
            log.info("monitoring %s:v%d", *key)
        return monitors

    def _replayed(self, key: ModelKey, export: dict[str, Any]) -> bool:
        """True when every offset of the export was merged before (a re-scored batch)."""
        merged = self.merged_offsets[key]
        lows: dict[int, int] = {}
        for window in export["streams"].get("events", {}).get("windows", []):
            for p, (low, _) in window["offsets"].items():
                lows[int(p)] = min(lows.get(int(p), low), low)
        return bool(lows) and all(low <= merged.get(p, -1) for p, low in lows.items())

    def _note_merged(self, key: ModelKey, export: dict[str, Any]) -> None:
        """Remember the highest offsets an export that was merged covered."""
        merged = self.merged_offsets[key]
        for p, high in export["streams"].get("events", {}).get("high_offsets", {}).items():
            merged[int(p)] = max(merged.get(int(p), -1), int(high))

    def _move_idle(self, monitors: MonitorSet, stream: Stream) -> list[dict[str, Any]]:
        clock = monitors.clocks[stream]
        if self.idle_seconds is None or not clock.partitions or not clock.watermarks:
            return []
        newest = max(clock.watermarks.values())
        records: list[dict[str, Any]] = []
        for partition in range(clock.partitions):
            mark = clock.watermarks.get(partition, -math.inf)
            if newest - mark > self.idle_seconds:
                records += monitors.advance_watermark(stream, partition, newest - self.idle_seconds)
        return records


def record_output(settings: Settings, metrics: ScorerMetrics, record: dict[str, Any]) -> Output:
    """An alert or fairness record as an output to its topic, counted and logged."""
    if "alert_id" in record:
        topic, key = settings.topic_drift_alerts, record["monitor_id"]
        status = "resolved" if record.get("status") == "resolved" else "open"
        metrics.alerts.labels(record.get("monitor", "?"), status).inc()
        log.warning(
            "drift %s: %s %s (%s=%.4g, threshold %.4g, retrain %s)",
            status, record.get("monitor"), record.get("feature") or "",
            record.get("statistic"), record.get("value", np.nan),
            record.get("threshold", np.nan), record.get("retrain_recommended"),
        )  # fmt: skip
    else:
        topic, key = settings.topic_fairness_reports, record["attribute"]
        metrics.fairness.labels(record["attribute"], record.get("status", "?")).inc()
    headers = model_headers(str(record["model"]["name"]), record["model"]["version"])
    return (topic, key.encode(), orjson.dumps(record), headers)
