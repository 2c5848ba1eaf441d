"""What both engines are, and the one place their scoring parts are built.

An engine moves batches between Kafka and a :class:`~streams.engine.processor.BatchProcessor`;
everything else it needs is the same for the native and the Faust engine and is built once
here by :func:`build_scoring`: the :class:`~streams.engine.model_watch.ModelWatcher` that
decides which versions serve, the contributing monitors, and the processor reading the
watcher's current models at each batch, with the size budget of its dead letters (what the
dead-letter topic accepts, read once here: :mod:`streams.core.dead_letter_size`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from models.registry import Registry
from streams.core.dead_letter_size import dlq_budget
from streams.engine.model_watch import ModelWatcher
from streams.engine.monitors import EngineMonitors
from streams.engine.processor import BatchProcessor
from streams.kafka.clients import admin_client
from streams.kafka.topics import max_message_bytes
from streams.observability import Health, ScorerMetrics
from streams.settings import Settings

log = logging.getLogger(__name__)


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
    dlq_max_bytes: int
    """The largest dead letter (value plus key) the processor makes; larger ones are cut."""


def dead_letter_budget(settings: Settings) -> int:
    """``SCORER_DLQ_MAX_BYTES``, lowered to what the dead-letter topic accepts now (the
    default when unset); the setting or the default alone if the topic's limit is unknown."""
    limit = max_message_bytes(admin_client(settings), settings.topic_dlq)
    budget = dlq_budget(settings.dlq_max_bytes, limit)
    if limit is None:
        log.warning(
            "cannot read max.message.bytes of %s: dead letters over %d bytes are cut "
            "(SCORER_DLQ_MAX_BYTES sets the size)", settings.topic_dlq, budget,
        )  # fmt: skip
    else:
        log.info("dead letters over %d bytes are cut (%s takes %d)", budget, settings.topic_dlq,
                 limit)  # fmt: skip
    return budget


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
    budget = dead_letter_budget(settings)
    processor = BatchProcessor(
        settings.model_copy(update={"dlq_max_bytes": budget}),
        lambda: models.serving,
        metrics,
        monitors,
    )
    return Scoring(models, monitors, processor, budget)
