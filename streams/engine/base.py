"""What both engines are, and the one place their scoring parts are built.

An engine moves batches between Kafka and a :class:`~streams.engine.processor.BatchProcessor`;
everything else it needs is the same for the native and the Faust engine and is built once
here by :func:`build_scoring`: the :class:`~streams.engine.model_watch.ModelWatcher` that
decides which versions serve, the contributing monitors, and the processor reading the
watcher's current models at each batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from models.registry import Registry
from streams.engine.model_watch import ModelWatcher
from streams.engine.monitors import EngineMonitors
from streams.engine.processor import BatchProcessor
from streams.observability import Health, ScorerMetrics
from streams.settings import Settings


class Engine(Protocol):
    """A scoring engine: built from settings, runs until stopped, then has committed what it
    delivered. ``run`` returns the process exit status (None means 0)."""

    metrics: ScorerMetrics
    health: Health
    models: ModelWatcher
    processor: BatchProcessor

    def run(self) -> int | None: ...


@dataclass(frozen=True)
class Scoring:
    """The transport-neutral parts of an engine."""

    models: ModelWatcher
    monitors: EngineMonitors | None
    processor: BatchProcessor


def build_scoring(
    settings: Settings,
    model_name: str,
    metrics: ScorerMetrics,
    registry: Registry | None = None,
) -> Scoring:
    """The model watcher, the monitors (unless ``settings.monitor`` is off) and the processor
    that scores with whatever the watcher serves at each batch."""
    models = ModelWatcher(settings, registry or Registry(settings.registry), model_name, metrics)
    monitors = EngineMonitors(settings, metrics) if settings.monitor else None
    processor = BatchProcessor(settings, lambda: models.serving, metrics, monitors)
    return Scoring(models, monitors, processor)
