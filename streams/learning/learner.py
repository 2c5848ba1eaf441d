"""``scorer learn``: a river champion keeps learning from labels; versions are registered.

Reads ``events`` (the features) and ``outcomes``: the labels the outcome join
(:mod:`streams.outcomes.join_service`) joined to their decisions, with the version that
scored each one and the hash of what it scored. Every label whose event's features hash to
exactly what was scored is used to score and then to train a copy of the model
(:class:`models.online.OnlineLearner`).
After ``every`` learned labels the copy is registered as the next version, with the
prequential metrics of those labels and its parent version, and a ``registered`` ModelEvent
is published. Nothing is promoted: a learned version serves only once someone promotes it
(through the promotion gates), so a model never changes under the stream silently.

Outcome offsets are committed when a version is registered, so after a restart the labels
not yet in a registered version are learned again, from the latest registered version.
Events are read from ``feedback_retention_seconds`` back (or the topic's start).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import orjson
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Message, TopicPartition

from models.manifest import ModelManifest
from models.online import OnlineLearner
from models.registry import Registry
from schemas.contracts import ModelEvent
from streams.core.decode import decode_events
from streams.kafka import clients
from streams.kafka.messages import partition_count, usable
from streams.model_events import publish_model_event
from streams.outcomes.label_gate import LabelGate
from streams.runtime import Service
from streams.settings import Settings

log = logging.getLogger(__name__)


class LearnerService(Service):
    """Online learning of one river model on Kafka (see the module doc)."""

    def __init__(
        self, settings: Settings, model_name: str, every: int, registry: Registry | None = None
    ) -> None:
        self.settings, self.every = settings, every
        self.registry = registry or Registry(settings.registry)
        self.name = model_name
        champion = self.registry.load(model_name, "champion")
        self.parent = champion.manifest.version
        self.learner = OnlineLearner(champion.manifest, champion.estimator)
        self.learned_since = 0
        self.registered: list[int] = []
        super().__init__()
        self.consumer = clients.group_consumer(settings, f"scorer-learn-{model_name}")
        s = settings
        topics = (s.topic_events, s.topic_outcomes)
        self.partitions = {t: partition_count(self.consumer, t) for t in topics}
        self.gate = LabelGate(self.consumer, self._tps(s.topic_events), self._tps(s.topic_outcomes))

    def _tps(self, topic: str) -> list[TopicPartition]:
        return [TopicPartition(topic, p) for p in range(self.partitions[topic])]

    def run(self, max_versions: int | None = None) -> list[int]:
        """Learn until stopped (or ``max_versions`` were registered); the versions made."""
        s = self.settings
        since_ms = int((time.time() - s.feedback_retention_seconds) * 1000)
        starts = self.consumer.offsets_for_times(
            [TopicPartition(tp.topic, tp.partition, since_ms) for tp in self._tps(s.topic_events)],
            10,
        )
        committed = self.consumer.committed(self._tps(s.topic_outcomes), 10)
        self.consumer.assign(
            # events from the retention back (none that old: from the end);
            # labels from where the last registered version stopped (never: the beginning)
            [TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_END)
             for tp in starts]
            + [TopicPartition(tp.topic, tp.partition,
                              tp.offset if tp.offset >= 0 else OFFSET_BEGINNING)
               for tp in committed]
        )  # fmt: skip
        self.gate.seen()  # the events' stall clock starts with reading
        log.info("learning %s from v%d; a version every %d labels", self.name, self.parent,
                 self.every)  # fmt: skip
        while not self._stopping.is_set():
            if max_versions is not None and len(self.registered) >= max_versions:
                break
            self.gate.update()
            messages = [m for m in self.consumer.consume(1000, timeout=0.2) if usable(m)]
            if messages:
                self._process(messages)
        self.consumer.close()
        return self.registered

    def _process(self, messages: list[Message]) -> None:
        s = self.settings
        by_topic: dict[str, list[bytes | None]] = {}
        for message in messages:
            by_topic.setdefault(str(message.topic()), []).append(message.value())
        events, outcomes = by_topic.get(s.topic_events, []), by_topic.get(s.topic_outcomes, [])
        if events:
            self.gate.seen()
        self.learned_since += learn_batch(self.learner, events, outcomes)
        if outcomes and self.learned_since >= self.every:
            self._register()

    def _register(self) -> None:
        source = f"online:{self.settings.topic_outcomes}"
        manifest = register_learned(self.registry, self.learner, self.name, self.parent, source)
        if manifest is None:
            return  # one class only so far: keep learning
        reason = registered_reason(manifest, self.learned_since)
        problem = publish_model_event(
            self.settings,
            ModelEvent(event_type="registered", model_name=self.name, version=manifest.version,
                       sha256=manifest.artifact.sha256, actor="scorer-learn", reason=reason,
                       occurred_at=datetime.now(UTC)),
        )  # fmt: skip
        if problem:
            log.warning("v%d registered; its ModelEvent was not published: %s",
                        manifest.version, problem)  # fmt: skip
        log.info("registered %s v%d: %s", self.name, manifest.version, reason)
        read = [tp for tp in self.consumer.position(self._tps(self.settings.topic_outcomes))
                if tp.offset >= 0]  # fmt: skip
        if read:  # the labels in this version are not learned again after a restart
            self.consumer.commit(offsets=read, asynchronous=False)
        self.parent, self.learned_since = manifest.version, 0
        self.registered.append(manifest.version)


def learn_batch(
    learner: OnlineLearner,
    events: Sequence[bytes | None],
    outcomes: Sequence[bytes | None],
) -> int:
    """Feed one batch's record values to ``learner``; the number of labels learned.

    The events' features are remembered first, so that an outcome read in the same batch as
    its event is learned. Invalid events and outcomes are skipped (the scorer dead-letters
    the events; the outcome join writes only valid outcomes).
    """
    if events:
        learner.remember_events(decode_events(events).events)
    if not outcomes:
        return 0
    rows = []
    for value in outcomes:
        try:
            row = orjson.loads(value or b"null")
            rows.append({"event_id": str(row["event_id"]), "input_hash": str(row["input_hash"]),
                         "model": row["model"], "label": int(row["label"])})  # fmt: skip
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
    learner.remember_decisions(rows)
    return learner.learn([(r["event_id"], r["label"]) for r in rows])


def register_learned(
    registry: Registry, learner: OnlineLearner, name: str, parent: int, source: str
) -> ModelManifest | None:
    """Register the learned copy as the next version of ``name``, a child of ``parent`` with
    the prequential metrics of the labels learned since the last version; None while those
    labels hold only one class (no ROC AUC yet: the caller keeps learning and tries again).
    Nothing is promoted."""
    fields = learner.version_fields(parent, source)
    if fields is None:
        return None
    return registry.register(
        learner.model, name=name, kind="river-logistic", manifest_fields=fields
    )


def registered_reason(manifest: ModelManifest, learned: int) -> str:
    """The reason a learned version's ``registered`` ModelEvent gives."""
    return (
        f"online learning: {learned} labels after v{manifest.training.parent_version}; "
        f"prequential ROC AUC {manifest.metrics['roc_auc']:.3f}; not promoted"
    )
