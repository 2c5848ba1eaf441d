"""The facade an engine calls: every monitor of one model version, windows, episodes.

Single process (``role="owner"``, the default)::

    monitors = MonitorSet(manifest, MonitorConfig(window_seconds=300))
    records = monitors.observe(ObservedBatch(X, scores, decisions, times, partitions, offsets,
                                             context))
    records += monitors.observe_labels(LabelledBatch(...))   # joined feedback
    # records: DriftAlert-shaped dicts (key: monitor_id) and FairnessReport-shaped dicts
    # (key: attribute), ready for the drift-alerts and fairness-reports topics

Several processes: every process that scores runs a ``role="contributor"`` set (or the
owner's own) and after each batch publishes ``summaries()`` (one JSON-able dict: the
window count deltas since the last call plus its partitions' watermarks) to a summaries
topic keyed by model, so that one owner receives them in order and calls
``merge_summary()``. Window membership and lateness depend on each event and its own
partition only (:mod:`streams.monitoring.windows`), summaries add exactly
(:mod:`streams.monitoring.summary`), and the owner evaluates a window once, when all
``event_partitions`` (``label_partitions``) have passed it, in window order: the records
are the same as one process would produce over the same partitions, whatever the split.

With several processes, set ``event_partitions`` and ``label_partitions`` in the config:
a window is final only when every partition has passed it, and the owner cannot know about
partitions it has not heard of yet. A partition that receives nothing holds windows open;
the engine may move it on with ``advance_watermark`` (a wall-clock decision, so not
reproducible across splits).

``flush()`` evaluates every pending window now (end of input, shutdown, tests).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np

from models.manifest import ModelManifest
from schemas.errors import MonitoringError
from streams.monitoring.alerts import drift_alert
from streams.monitoring.base import Verdict, WindowMonitor
from streams.monitoring.batch import LabelledBatch, ObservedBatch
from streams.monitoring.concept_drift import ErrorRateMonitor
from streams.monitoring.config import MonitorConfig
from streams.monitoring.episodes import EpisodeTracker, Transition
from streams.monitoring.fairness_window import FairnessMonitor
from streams.monitoring.feature_drift import feature_monitors
from streams.monitoring.prediction_drift import PredictionDriftMonitor
from streams.monitoring.retrain import RetrainRule
from streams.monitoring.summary import Stream, WindowSummary, split_by_window
from streams.monitoring.windows import WindowClock

Role = Literal["owner", "contributor"]
EXPORT_VERSION = 1
STREAMS: tuple[Stream, ...] = ("events", "labels")


class MonitorSet:
    """Feature, missing-rate, prediction and concept drift plus fairness for one model."""

    def __init__(
        self,
        manifest: ModelManifest,
        config: MonitorConfig | None = None,
        *,
        role: Role = "owner",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.manifest = manifest
        self.config = config = config or MonitorConfig()
        self.role = role
        self.clock = clock or (lambda: datetime.now(UTC))
        self.model = {
            "name": manifest.name,
            "version": manifest.version,
            "sha256": manifest.artifact.sha256,
        }
        draws, seed = config.calibration_draws, config.calibration_seed
        reference = manifest.reference
        drift, missing = feature_monitors(
            manifest.feature_spec, reference, config.min_window_events
        )
        for group, kind in ((drift, "feature"), (missing, "missing")):
            for monitor in group:
                monitor.configure(config.budget_for(kind), len(group), draws, seed)  # type: ignore[arg-type]
        self.prediction: PredictionDriftMonitor | None = None
        if reference.get("score"):
            prediction = PredictionDriftMonitor(reference["score"], config.min_window_events)
            if prediction.testable:
                prediction.configure(config.budget_for("prediction"), 1, draws, seed)
                self.prediction = prediction
        self.concept: ErrorRateMonitor | None = None
        metrics = manifest.metrics
        if metrics.get("holdout_rows") and "accuracy" in metrics:
            self.concept = ErrorRateMonitor(
                metrics, manifest.policy.classification_threshold, config.min_window_labels
            )
            self.concept.configure(config.budget_for("concept"), 1, draws, seed)
        self.monitors: dict[Stream, list[WindowMonitor]] = {
            "events": [*drift, *missing, *([self.prediction] if self.prediction else [])],
            "labels": [self.concept] if self.concept else [],
        }
        attributes = (
            config.fairness_attributes
            if config.fairness_attributes is not None
            else manifest.context_attributes
        )
        self.fairness: dict[Stream, list[FairnessMonitor]] = {
            stream: [
                FairnessMonitor(
                    attribute,
                    stream,
                    min_group_count=config.min_group_count,
                    di_threshold=config.di_threshold,
                    model=self.model,
                    clock=self.clock,
                )
                for attribute in attributes
            ]
            for stream in STREAMS
        }
        self.clocks: dict[Stream, WindowClock] = {
            "events": WindowClock(
                config.window_seconds, config.lateness_seconds, config.event_partitions
            ),
            "labels": WindowClock(
                config.window_seconds, config.lateness_seconds, config.label_partitions
            ),
        }
        self.pending: dict[Stream, dict[int, WindowSummary]] = {s: {} for s in STREAMS}
        self.episodes = EpisodeTracker(config.resolve_windows, config.cooldown_windows)
        self.retrain = RetrainRule(config.retrain_features, config.retrain_windows)
        self.counters: Counter[str] = Counter()
        self.expected_false_breaches: Counter[str] = Counter()

    # --- input ----------------------------------------------------------------------------

    def observe(self, batch: ObservedBatch) -> list[dict[str, Any]]:
        """Count a batch of scored events; the records of the windows it made final."""
        if batch.X.shape[1] != len(self.manifest.feature_spec.columns):
            raise MonitoringError(
                f"X has {batch.X.shape[1]} columns; the feature spec has "
                f"{len(self.manifest.feature_spec.columns)}"
            )
        self._ingest("events", batch)
        return self._close("events")

    def observe_labels(self, batch: LabelledBatch) -> list[dict[str, Any]]:
        """Count joined (score, decision, label) triples; the records of final windows."""
        self._ingest("labels", batch)
        return self._close("labels")

    def advance_watermark(self, stream: Stream, partition: int, time: float) -> list[dict]:
        """Move an idle partition's watermark (the engine's call), closing windows it held."""
        self.clocks[stream].advance({partition: time}, {})
        return self._close(stream)

    def _ingest(self, stream: Stream, batch: ObservedBatch | LabelledBatch) -> None:
        if not len(batch):
            return
        clock = self.clocks[stream]
        keep, late, replayed = clock.admit(batch.times, batch.partition, batch.offset)
        self.counters[f"{stream}.late"] += late
        self.counters[f"{stream}.replayed"] += replayed
        if not keep.any():
            return
        sub = batch if keep.all() else batch.take(keep)
        self.counters[f"{stream}.counted"] += len(sub)
        ids = clock.window_ids(sub.times)
        if (ids == ids[0]).all():  # the usual batch: every event in one window
            window_ids, position = ids[:1], np.zeros(ids.size, dtype=np.intp)
        else:
            window_ids, position = np.unique(ids, return_inverse=True)
        vectors: dict[str, np.ndarray] = {}
        for monitor in self.monitors[stream]:
            vectors.update(monitor.count(sub, position, window_ids.size))
        for fairness in self.fairness[stream]:
            vectors.update(fairness.count(sub, position, window_ids.size))
        for summary in split_by_window(
            stream,
            clock.length,
            window_ids,
            position,
            vectors,
            sub.times,
            sub.partition,
            sub.offset,
        ):
            self._add(summary)

    def _add(self, summary: WindowSummary) -> None:
        stream = summary.stream
        done = self.clocks[stream].evaluated_through
        if done is not None and summary.window_id <= done:
            self.counters[f"{stream}.late_after_final"] += summary.events
            return
        pending = self.pending[stream]
        found = pending.get(summary.window_id)
        pending[summary.window_id] = summary if found is None else found.merge(summary)

    # --- several processes -----------------------------------------------------------------

    def summaries(self) -> dict[str, Any]:
        """A contributor's export: window deltas since the last call, and its watermarks.

        JSON-able; publish it keyed by model so that one owner reads all exports in order.
        """
        if self.role != "contributor":
            raise MonitoringError("only a contributor exports summaries; the owner evaluates")
        export: dict[str, Any] = {"version": EXPORT_VERSION, "model": self.model, "streams": {}}
        for stream in STREAMS:
            clock = self.clocks[stream]
            export["streams"][stream] = {
                "watermarks": {str(p): t for p, t in sorted(clock.watermarks.items())},
                "high_offsets": {str(p): o for p, o in sorted(clock.high_offsets.items())},
                "windows": [
                    self.pending[stream][w].to_dict() for w in sorted(self.pending[stream])
                ],
            }
            self.pending[stream] = {}
        return export

    def merge_summary(self, export: dict[str, Any]) -> list[dict[str, Any]]:
        """Merge a contributor's export (owner only); the records of windows now final."""
        if self.role != "owner":
            raise MonitoringError("only the owner merges summaries")
        if export.get("version") != EXPORT_VERSION or export.get("model") != self.model:
            raise MonitoringError(
                f"summary export for model {export.get('model')} (version "
                f"{export.get('version')}) does not belong to {self.model}"
            )
        records: list[dict[str, Any]] = []
        for stream in STREAMS:
            part = export["streams"].get(stream)
            if not part:
                continue
            for window in part["windows"]:
                self._add(WindowSummary.from_dict(window))
            self.clocks[stream].advance(
                {int(p): float(t) for p, t in part["watermarks"].items()},
                {int(p): int(o) for p, o in part["high_offsets"].items()},
            )
            records += self._close(stream)
        return records

    # --- evaluation -------------------------------------------------------------------------

    def flush(self) -> list[dict[str, Any]]:
        """Evaluate every pending window now (owner only), in window order."""
        if self.role != "owner":
            raise MonitoringError("a contributor does not evaluate; export its summaries")
        records: list[dict[str, Any]] = []
        for stream in STREAMS:
            if self.pending[stream]:
                records += self._close(stream, through=max(self.pending[stream]))
        return records

    def _close(self, stream: Stream, through: int | None = None) -> list[dict[str, Any]]:
        if self.role != "owner":
            return []
        clock = self.clocks[stream]
        final = clock.final_through() if through is None else through
        if final is None:
            return []
        records: list[dict[str, Any]] = []
        pending = self.pending[stream]
        for window_id in sorted(w for w in pending if w <= final):
            summary = pending.pop(window_id)
            records += self._evaluate(summary)
        if clock.evaluated_through is None or final > clock.evaluated_through:
            clock.evaluated_through = final
        return records

    def _evaluate(self, summary: WindowSummary) -> list[dict[str, Any]]:
        stream = summary.stream
        verdicts = [m.evaluate(summary) for m in self.monitors[stream]]
        judged = [v for v in verdicts if v is not None]
        for verdict in judged:
            self.counters[f"tests.{verdict.monitor}"] += 1
            self.counters[f"breaches.{verdict.monitor}"] += verdict.breach
            self.expected_false_breaches[verdict.monitor] += verdict.current.get("alpha", 0.0)
        self.counters[f"{stream}.windows"] += 1
        if stream == "events":
            rule = self._covariate_rule(judged)
        else:
            rule = RetrainRule.concept_text() if any(v.breach for v in judged) else None
        records = [
            self._alert(t)
            for v in judged
            if (t := self.episodes.step(v, summary, rule if v.breach else None)) is not None
        ]
        if rule and stream == "events" and self.prediction is not None:
            escalated = self.episodes.escalate(self.prediction.monitor_id, rule, summary.window_id)
            if escalated is not None:
                records.append(self._alert(escalated))
        for fairness in self.fairness[stream]:
            report = fairness.report(summary)
            if report is not None:
                records.append(report)
        return records

    def _covariate_rule(self, judged: list[Verdict]) -> str | None:
        prediction = next((v for v in judged if v.monitor == "prediction"), None)
        features = sum(v.breach for v in judged if v.monitor == "feature")
        return self.retrain.events_window(
            None if prediction is None else prediction.breach, features
        )

    def _alert(self, transition: Transition) -> dict[str, Any]:
        monitor = transition.verdict.monitor
        budget = self.config.budget_for(monitor)  # type: ignore[arg-type]
        return drift_alert(
            transition, model=self.model, budget_events=budget, detected_at=self.clock()
        )

    # --- checkpoints --------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Everything that changes as data arrives, JSON-able, for a checkpoint.

        Thresholds are not included: they are calibrated from the manifest and the config
        with a fixed seed, so a set built from the same two and given this state by
        :meth:`restore` continues exactly where this one stands.
        """
        return {
            "version": EXPORT_VERSION,
            "model": self.model,
            "clocks": {
                stream: {
                    "watermarks": {str(p): t for p, t in sorted(clock.watermarks.items())},
                    "high_offsets": {str(p): o for p, o in sorted(clock.high_offsets.items())},
                    "evaluated_through": clock.evaluated_through,
                }
                for stream, clock in self.clocks.items()
            },
            "pending": {
                stream: [self.pending[stream][w].to_dict() for w in sorted(self.pending[stream])]
                for stream in STREAMS
            },
            "episodes": self.episodes.state(),
            "retrain_streak": self.retrain.streak,
            "counters": dict(self.counters),
            "expected_false_breaches": dict(self.expected_false_breaches),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state` of a set built from the same manifest and config."""
        if state.get("version") != EXPORT_VERSION or state.get("model") != self.model:
            raise MonitoringError(
                f"monitor state for {state.get('model')} (version {state.get('version')}) "
                f"does not belong to {self.model}"
            )
        for stream, saved in state["clocks"].items():
            clock = self.clocks[stream]
            clock.watermarks = {int(p): float(t) for p, t in saved["watermarks"].items()}
            clock.high_offsets = {int(p): int(o) for p, o in saved["high_offsets"].items()}
            clock.evaluated_through = saved["evaluated_through"]
        self.pending = {
            stream: {
                (summary := WindowSummary.from_dict(window)).window_id: summary
                for window in state["pending"][stream]
            }
            for stream in STREAMS
        }
        self.episodes.restore(state["episodes"])
        self.retrain.streak = int(state["retrain_streak"])
        self.counters = Counter(state["counters"])
        self.expected_false_breaches = Counter(state["expected_false_breaches"])

    # --- observability ----------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters: events counted/late/replayed, tests and breaches per monitor kind, the
        expected number of breaches if nothing drifted, suppressed and open episodes."""
        return {
            "counters": dict(self.counters),
            "expected_false_breaches": dict(self.expected_false_breaches),
            "suppressed_breaches": self.episodes.suppressed,
            "open_episodes": sorted(e.alert_id for e in self.episodes.open.values()),
            "pending_windows": {s: sorted(self.pending[s]) for s in STREAMS},
        }
