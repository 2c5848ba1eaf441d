"""``scorer monitor`` on Kafka: :class:`~streams.outcomes.owner.MonitorOwner` with
transactions, checkpoints, restore and signals.

Its outputs (drift alerts, fairness reports) and a checkpoint of its state are written in
Kafka transactions together with the input offsets they cover, every
``monitor_checkpoint_seconds``. After a crash, the next owner (same transactional id, which
fences the old one and aborts its open transaction) restores the last checkpoint and reads on
from its offsets: a read_committed reader sees the alerts an uninterrupted run would have
written, once.

Labels reach it joined, from the ``outcomes`` topic the outcome join writes
(:mod:`streams.outcomes.join_service`). Unless told not to (``scorer monitor --no-join``),
the owner runs one join instance in its own process, so a deployment needs no other
process; more ``scorer join`` instances in the same group share the join's partitions.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Message, TopicPartition

from models.registry import Registry
from schemas.contracts import SCHEMA_VERSION
from streams.engine.records import ConsumedRecord, Output, consumed
from streams.kafka import clients
from streams.kafka.messages import committable, partition_count, usable
from streams.kafka.reader import TopicReader
from streams.observability import Health, ScorerMetrics
from streams.outcomes.join_service import JoinService
from streams.outcomes.owner import MonitorOwner, record_output
from streams.runtime import Service
from streams.settings import Settings

log = logging.getLogger(__name__)


class MonitorService(Service):
    """:class:`MonitorOwner` on Kafka: transactions, checkpoints, restore, signals."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry | None = None,
        metrics: ScorerMetrics | None = None,
        health: Health | None = None,
        join: bool = True,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or ScorerMetrics()
        self.health = health or Health()
        self.owner_id = settings.monitor_group_id
        super().__init__()
        self.consumer = clients.group_consumer(settings, settings.monitor_group_id)
        self.partitions = {topic: partition_count(self.consumer, topic) for topic in self._inputs()}
        self.owner = MonitorOwner(
            settings,
            registry or Registry(settings.registry),
            partition_count(self.consumer, settings.topic_events),
            self.partitions.get(settings.topic_outcomes, 0),
            self.metrics,
        )
        self.producer = clients.transactional_producer(
            settings,
            f"{self.owner_id}-owner",
            **{"linger.ms": 20, "compression.type": "lz4", "message.max.bytes": 16_000_000},
        )
        self.positions: dict[tuple[str, int], int] = {}
        self.join = JoinService(settings, self.metrics) if join and settings.join_feedback else None
        self._join_thread: threading.Thread | None = None
        self._join_error: BaseException | None = None

    def _inputs(self) -> list[str]:
        s = self.settings
        topics = [s.topic_monitor_summaries]
        if s.join_feedback:
            topics.append(s.topic_outcomes)
        return topics

    # --- lifecycle --------------------------------------------------------------------------

    def stop(self, *_: object) -> None:
        super().stop()
        if self.join is not None:
            self.join.stop()

    def run(self) -> None:
        self.producer.init_transactions(30)  # fences an older owner, aborts its transaction
        self._restore()
        self._start_join()
        self.consumer.assign(
            [TopicPartition(t, p, self.positions.get((t, p), OFFSET_BEGINNING))
             for t, n in self.partitions.items() for p in range(n)]
        )  # fmt: skip
        log.info("monitor owner %s reading %s", self.owner_id, ", ".join(self.partitions))
        self.health.set(True, "")
        self.producer.begin_transaction()
        last_commit = time.monotonic()
        try:
            while not self._stopping.is_set():
                self.health.heartbeat()
                if self._join_thread is not None and not self._join_thread.is_alive():
                    break  # the join instance failed: stop, and say why below
                messages = [
                    m for m in self.consumer.consume(1000, timeout=0.1) if usable(m, self.metrics)
                ]
                if messages:
                    self._process(messages)
                if time.monotonic() - last_commit >= self.settings.monitor_checkpoint_seconds:
                    self._commit()
                    last_commit = time.monotonic()
            self._commit(final=True)
        finally:
            self.health.set(False, "stopped")
            self.consumer.close()
            if self.join is not None:
                self.join.stop()
            if self._join_thread is not None:
                self._join_thread.join()
            log.info("monitor owner stopped")
        if self._join_error is not None:
            raise self._join_error

    def _start_join(self) -> None:
        join = self.join
        if join is None:
            return

        def run_join() -> None:
            try:
                join.run()
            except BaseException as exc:  # reported by the owner's thread, which stops
                log.error("the join instance stopped: %s", exc)
                self._join_error = exc

        self._join_thread = threading.Thread(target=run_join, name="outcome-join", daemon=True)
        self._join_thread.start()

    # --- one batch --------------------------------------------------------------------------

    def _process(self, messages: list[Message]) -> None:
        by_topic: dict[str, list[ConsumedRecord]] = defaultdict(list)
        for record in map(consumed, messages):
            by_topic[record.topic].append(record)
            self.positions[(record.topic, record.partition)] = record.offset + 1
        for topic, key, value, headers in batch_outputs(
            self.settings, self.metrics, self.owner, by_topic
        ):
            self.producer.produce(topic, value, key, headers=headers)
        self.producer.poll(0)

    # --- checkpoints ------------------------------------------------------------------------

    def _commit(self, final: bool = False) -> None:
        """Checkpoint and offsets into the open transaction; commit; open the next one."""
        self.positions.update(committable(self.consumer, self.positions))
        self.producer.produce(
            self.settings.topic_monitor_checkpoints,
            checkpoint_value(self.owner_id, self.positions, self.owner.state(), datetime.now(UTC)),
            self.owner_id.encode(),
        )
        if self.positions:
            self.producer.send_offsets_to_transaction(
                [TopicPartition(t, p, o) for (t, p), o in sorted(self.positions.items())],
                self.consumer.consumer_group_metadata(),
                30,
            )
        self.producer.commit_transaction(60)
        if not final:
            self.producer.begin_transaction()

    def _restore(self) -> None:
        checkpoint = self._last_checkpoint()
        if checkpoint is None:
            log.info("no checkpoint for %s: starting from the beginning", self.owner_id)
            return
        self.owner.restore(checkpoint["monitors"])
        self.positions.update(checkpoint_positions(checkpoint))
        log.info(
            "restored %s from its checkpoint of %s (%d monitor set(s))",
            self.owner_id, checkpoint["written_at"], len(checkpoint["monitors"]),
        )  # fmt: skip

    def _last_checkpoint(self) -> dict[str, Any] | None:
        topic = self.settings.topic_monitor_checkpoints
        with TopicReader(self.settings) as reader:
            records = reader.read(topic, reader.latest_ranges(topic, None))
        found = None
        for record in records:
            if record.key == self.owner_id.encode():
                found = record.value
        return None if found is None else orjson.loads(found)


def batch_outputs(
    settings: Settings,
    metrics: ScorerMetrics,
    owner: MonitorOwner,
    by_topic: Mapping[str, Sequence[ConsumedRecord]],
) -> list[Output]:
    """What one batch of the owner's inputs makes: the alert and report records of the windows
    it made final, from the scorers' summaries and then the joined outcomes."""
    records = owner.summaries([r.value for r in by_topic.get(settings.topic_monitor_summaries, [])])
    outcomes = by_topic.get(settings.topic_outcomes, [])
    if outcomes:
        records += owner.outcomes(
            [r.value for r in outcomes], [r.partition for r in outcomes],
            [r.offset for r in outcomes],
        )  # fmt: skip
    return [record_output(settings, metrics, r) for r in records]


def checkpoint_value(
    owner_id: str,
    positions: dict[tuple[str, int], int],
    monitors: list[dict[str, Any]],
    written_at: datetime,
) -> bytes:
    """The checkpoint record: the owner's monitor state (:meth:`MonitorOwner.state`) and the
    input positions it covers, as JSON (window counts may be numpy values)."""
    checkpoint = {
        "schema_version": SCHEMA_VERSION,
        "owner": owner_id,
        "offsets": _nested(positions),
        "monitors": monitors,
        "written_at": written_at.isoformat(),
    }
    return orjson.dumps(checkpoint, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def checkpoint_positions(checkpoint: dict[str, Any]) -> dict[tuple[str, int], int]:
    """The input positions (next offset to read) a parsed checkpoint covers."""
    return {
        (topic, int(partition)): int(offset)
        for topic, parts in checkpoint["offsets"].items()
        for partition, offset in parts.items()
    }


def _nested(positions: dict[tuple[str, int], int]) -> dict[str, dict[str, int]]:
    """Positions by topic, then partition (as text: JSON keys), in partition order.

    >>> _nested({("feedback", 10): 4, ("feedback", 2): 9, ("decisions", 0): 1})
    {'decisions': {'0': 1}, 'feedback': {'2': 9, '10': 4}}
    """
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for (topic, partition), offset in sorted(positions.items()):
        out[topic][str(partition)] = offset
    return dict(out)
