"""Which model versions serve: the champion, and the challenger in shadow when one is set.

The registry's aliases are the truth. A ModelEvent on ``model-events`` for the served model
makes the watcher look at once; otherwise it looks every ``poll_interval_s`` (the fallback
when the event was missed). A version that fails to load is refused: the current version
keeps serving, and the refusal is logged, counted and published as a ModelEvent, once.
A version whose folder vanished is refused the same way, and a registry that cannot be
read at all (moved, unmounted, half-written) leaves the served versions in place.
Swaps happen only when the engine calls :meth:`ModelWatcher.check`, at a batch boundary.
"""

from __future__ import annotations

import getpass
import logging
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from confluent_kafka import OFFSET_END, Consumer, TopicPartition

from models.registry import Registry
from models.scoring_model import ScoringModel
from schemas.contracts import ModelEvent
from schemas.errors import ModelNotFound, ScorerError
from streams.kafka.clients import reader_consumer
from streams.model_events import publish_model_event
from streams.observability import ScorerMetrics
from streams.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServingModels:
    champion: ScoringModel
    challenger: ScoringModel | None


class ModelWatcher:
    """Loads the aliased versions and swaps them at batch boundaries."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        name: str,
        metrics: ScorerMetrics | None = None,
        poll_interval_s: float = 2.0,
        listen: bool = True,
    ) -> None:
        self.settings, self.registry, self.name = settings, registry, name
        self.metrics, self.poll_interval_s = metrics, poll_interval_s
        self._refused: set[tuple[str, int]] = set()
        self._registry_problem = ""
        self._next_poll = 0.0
        self._events: Consumer | None = self._listen() if listen else None
        champion = self._load("champion", self.registry.resolve(name, "champion"), first=True)
        if champion is None:
            raise ScorerError(f"model {name!r}: the champion version cannot be loaded")
        self.serving = ServingModels(champion, self._challenger())
        self._report()

    def check(self) -> bool:
        """Swap to the aliased versions if they moved; True when something changed."""
        now = time.monotonic()
        if not self._event_arrived() and now < self._next_poll:
            return False
        self._next_poll = now + self.poll_interval_s
        try:
            changed = self._swap()
        except (ScorerError, OSError, ValueError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
            if problem != self._registry_problem:
                log.error("registry unreadable, still serving %s: %s", self.label, problem)
            self._registry_problem = problem
            if self.metrics is not None:
                self.metrics.errors.labels("model_lookup").inc()
            return False
        self._registry_problem = ""
        return changed

    @property
    def label(self) -> str:
        return self.serving.champion.label

    def _swap(self) -> bool:
        champion = self.serving.champion
        wanted = self.registry.resolve(self.name, "champion")
        if wanted != champion.manifest.version and ("champion", wanted) not in self._refused:
            champion = self._load("champion", wanted) or champion
        challenger = self.serving.challenger
        wanted_challenger = self.registry.aliases(self.name).get("challenger")
        current_challenger = challenger.manifest.version if challenger else None
        if wanted_challenger != current_challenger:
            challenger = self._challenger() if wanted_challenger is not None else None
        if champion is self.serving.champion and challenger is self.serving.challenger:
            return False
        previous = self.serving.champion.manifest.version
        self.serving = ServingModels(champion, challenger)
        if champion.manifest.version != previous:
            log.info("now serving %s (was v%d)", champion.label, previous)
        self._report()
        return True

    def close(self) -> None:
        if self._events is not None:
            self._events.close()
            self._events = None

    def _challenger(self) -> ScoringModel | None:
        version = self.registry.aliases(self.name).get("challenger")
        if version is None or ("challenger", version) in self._refused:
            return None
        return self._load("challenger", version)

    def _load(self, alias: str, version: int, first: bool = False) -> ScoringModel | None:
        """The version, or None when it is refused; at start a missing version is an error."""
        try:
            model = ScoringModel.from_loaded(self.registry.load(self.name, version))
        except Exception as exc:  # a refused version must never stop the stream
            if first and isinstance(exc, ModelNotFound):
                raise
            self._refuse(alias, version, exc)
            return None
        if self.metrics is not None:
            self.metrics.swaps.labels("applied").inc()
        return model

    def _refuse(self, alias: str, version: int, exc: Exception) -> None:
        self._refused.add((alias, version))
        reason = f"{type(exc).__name__}: {exc}"
        log.error("refused %s v%d as %s: %s", self.name, version, alias, reason)
        if self.metrics is not None:
            self.metrics.swaps.labels("refused").inc()
            self.metrics.errors.labels("model_load").inc()
        event = ModelEvent(
            event_type="refused", model_name=self.name, version=version, alias=alias,
            previous_version=None, sha256=None, actor=_actor(), reason=reason[:2000],
            occurred_at=datetime.now(UTC),
        )  # fmt: skip
        problem = publish_model_event(self.settings, event)
        if problem:
            log.warning("refusal not published: %s", problem)

    def _report(self) -> None:
        if self.metrics is None:
            return
        for role, model in (
            ("champion", self.serving.champion),
            ("challenger", self.serving.challenger),
        ):
            if model is None:
                self.metrics.clear_model(role)
            else:
                ref = model.ref
                self.metrics.set_model(role, ref["name"], ref["version"], ref["sha256"])

    def _listen(self) -> Consumer | None:
        """A group-less consumer at the end of ``model-events``; None if the topic is absent."""
        consumer = reader_consumer(self.settings)
        topic = self.settings.topic_model_events
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None:
            log.warning("topic %s not found: relying on registry polls", topic)
            consumer.close()
            return None
        consumer.assign([TopicPartition(topic, p, OFFSET_END) for p in metadata.partitions])
        return consumer

    def _event_arrived(self) -> bool:
        if self._events is None:
            return False
        arrived = False
        for message in self._events.consume(num_messages=100, timeout=0):
            if message.error() is not None:
                continue
            try:
                event = orjson.loads(message.value() or b"{}")
            except orjson.JSONDecodeError:
                continue
            if event.get("model_name") == self.name and event.get("event_type") != "refused":
                arrived = True
        return arrived


def _actor() -> str:
    return f"scorer@{socket.gethostname()}/{getpass.getuser()}"
