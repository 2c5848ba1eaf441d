"""The native engine: confluent-kafka in micro-batches around the scoring core.

One loop, one thread::

    consume up to max_batch records (waiting at most max_wait_ms)
    swap models if a promotion arrived          (batch boundary)
    BatchProcessor.process(batch) -> outputs    (streams.engine.processor, built by
                                                 streams.engine.base, shared with the
                                                 Faust engine: decode, validate, score,
                                                 explain, shadow, dead letters, monitors)
    produce the outputs                          (asynchronously, never flushed per batch)
    serve delivery callbacks; commit offsets of the fully delivered prefix of batches

At-least-once (default): an input offset is committed only after every output of every
event up to it was acknowledged by the broker (:mod:`streams.engine.delivery`). A failed
delivery stops commits, and the engine rewinds to the last committed offsets and scores
again; a duplicate equals its original except ``scored_at`` and ``latency_ms``.

Exactly-once (``--exactly-once``): each batch is one Kafka transaction holding its outputs
and its input offsets (consume-transform-produce, KIP-447 fencing through the group
metadata). A read_committed consumer sees each output once, even across crashes.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any, Final

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from models.registry import Registry
from streams.engine.base import build_scoring
from streams.engine.delivery import BatchDelivery, DeliveryLedger, RetryBackoff
from streams.engine.records import ConsumedRecord, Output, consumed_batch
from streams.kafka import clients
from streams.kafka.messages import partition_count, usable
from streams.observability import Health, ScorerMetrics
from streams.runtime import Service, tune_garbage_collector
from streams.settings import Settings

log = logging.getLogger(__name__)

MAX_OUTPUT_BYTES = 64 * 1024 * 1024
"""Largest output the producer hands to the broker; the topic's max.message.bytes decides."""
SHUTDOWN_COMMIT_S = 30.0
"""Longest wait for the final commit and leaving the group when stopping."""
UNACKNOWLEDGED_AFTER_S = 30.0
"""Outputs waiting longer than this for the broker make the engine report itself not ready."""
ANY_PARTITION: Final = -1
"""librdkafka's RD_KAFKA_PARTITION_UA: the producer's partitioner chooses (by key)."""
_TOPIC_PARTITION, _OFFSET = attrgetter("topic", "partition"), attrgetter("offset")
_TIMESTAMP_MS = attrgetter("timestamp_ms")
ABORT_TIMEOUT_S = 10.0
"""Longest wait for an abort before the transactional producer is replaced."""
PRODUCER_THROUGHPUT: Final[dict[str, Any]] = {
    "batch.num.messages": 10_000,
    "compression.type": "lz4",
    "queue.buffering.max.messages": 1_000_000,
    "message.max.bytes": MAX_OUTPUT_BYTES,
    "linger.ms": 1,
}
"""What the engine adds to the producer preset: large lz4 batches and a deep local queue (outputs
are produced asynchronously, never flushed per batch), and room for the largest output. A
micro-batch's outputs are queued at once, so they fill the producer's batches without waiting:
``linger.ms`` is cut to 1 ms, which is latency a quiet stream would otherwise pay per batch."""


class NativeEngine(Service):
    """Scores ``settings.topic_events`` into the output topics until :meth:`stop`
    (which finishes the current batch, delivers, commits and closes)."""

    def __init__(
        self,
        settings: Settings,
        *,
        model_name: str,
        exactly_once: bool = False,
        metrics: ScorerMetrics | None = None,
        health: Health | None = None,
        registry: Registry | None = None,
    ) -> None:
        self.settings = settings
        self.exactly_once = exactly_once
        self.metrics = metrics or ScorerMetrics()
        self.health = health or Health()
        super().__init__()
        self._assigned: set[tuple[str, int]] = set()
        self._ledger = DeliveryLedger()
        self._next_lag_report = 0.0
        self._released: dict[tuple[str, int], int] = {}
        self._backoff = RetryBackoff()
        self._rewind_pending = False
        scoring = build_scoring(settings, model_name, self.metrics, registry)
        self.models, self.monitors, self.processor = (
            scoring.models,
            scoring.monitors,
            scoring.processor,
        )
        self.consumer = clients.group_consumer(
            settings, settings.group_id, **consumer_overrides(settings)
        )
        partition_count(self.consumer, settings.topic_events)  # a clear error if missing
        self.producer = self._producer()
        if exactly_once:
            self.producer.init_transactions(30)

    def _producer(self) -> Producer:
        if not self.exactly_once:
            return clients.producer(self.settings, **PRODUCER_THROUGHPUT)
        return clients.transactional_producer(
            self.settings, transactional_id(self.settings), **PRODUCER_THROUGHPUT
        )

    # -- lifecycle -----------------------------------------------------------------------

    def run(self) -> None:
        self.consumer.subscribe(
            [self.settings.topic_events], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        tune_garbage_collector()
        log.info(
            "serving %s on %s (%s, batch %d, wait %d ms)",
            self.models.serving.champion.label,
            self.settings.topic_events,
            "exactly-once" if self.exactly_once else "at-least-once",
            self.settings.max_batch,
            self.settings.max_wait_ms,
        )
        self.health.set(True, "")
        try:
            while not self._stopping.is_set():
                self.health.heartbeat()
                if self._backoff.waiting() or (self._rewind_pending and not self._rewind()):
                    self._stopping.wait(0.05)
                    self._settle()
                    continue
                messages = self.consumer.consume(
                    num_messages=self.settings.max_batch,
                    timeout=self.settings.max_wait_ms / 1000.0,
                )
                self.models.check()
                records = [m for m in messages if m.error() is None]
                if len(records) < len(messages):  # log and count the errors
                    records = [m for m in messages if usable(m, self.metrics)]
                if records:
                    self._process(records)
                self._settle()
                self._report_lag()
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        self.health.set(False, "shutting down")
        # The final commit and leaving the group wait for the group coordinator, without a
        # timeout of their own; after a broker restart a client can wait for it long. Every
        # output is flushed first, so giving up costs at most re-reading the uncommitted
        # offsets after a restart (at-least-once), never an output.
        watchdog = threading.Timer(SHUTDOWN_COMMIT_S, _give_up_committing)
        watchdog.daemon = True
        try:
            if not self.exactly_once:
                self.producer.flush(30)
                watchdog.start()
                self._settle(wait=True)
        finally:
            if not watchdog.is_alive():
                watchdog.start()
            self.consumer.close()
            watchdog.cancel()
            self.models.close()
            log.info("stopped")

    # -- the batch -----------------------------------------------------------------------

    def _process(self, messages: list[Message]) -> None:
        """One batch: the processor turns it into outputs; then everything is sent."""
        records = consumed_batch(messages)
        outputs = self.processor.process(records)

        last = last_offsets(records)
        oldest = min(map(_TIMESTAMP_MS, records)) / 1000.0
        if self.exactly_once:
            self._produce_transaction(outputs, last)
            self.metrics.end_to_end_seconds.observe(max(0.0, time.time() - oldest))
        else:
            batch = self._ledger.open(last, len(outputs), oldest)
            self._produce(outputs, batch.acknowledge)

    def _produce(
        self,
        outputs: list[Output],
        on_delivery: Callable[..., None],
    ) -> None:
        # By position (topic, value, key, partition, callback, its alias on_delivery,
        # timestamp 0 = now, headers), a call costs about a fifth less than by keyword.
        produce = self.producer.produce
        for topic, key, value, headers in outputs:
            try:
                produce(topic, value, key, ANY_PARTITION, on_delivery, None, 0, headers)
            except (BufferError, KafkaException):
                self._produce_retrying(topic, key, value, headers, on_delivery)
        self.producer.poll(0)

    def _produce_retrying(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Any,
        on_delivery: Callable[..., None],
    ) -> None:
        """One output the producer refused: retried while its local queue is full; refused
        for any other reason, it fails as a failed delivery does."""
        while True:
            try:
                self.producer.produce(topic, value, key, headers=headers, on_delivery=on_delivery)
                return
            except BufferError:  # local queue full: serve callbacks, then retry
                self.producer.poll(0.05)
            except KafkaException as exc:  # refused locally: the same as a failed delivery
                on_delivery(exc.args[0], None)
                return

    def _produce_transaction(
        self,
        outputs: list[Output],
        last: dict[tuple[str, int], int],
    ) -> None:
        failures: list[str] = []

        def on_delivery(error: Any, message: Any = None) -> None:
            if error is not None:
                failures.append(str(error))

        try:
            self.producer.begin_transaction()
            self._produce(outputs, on_delivery)
            self.producer.send_offsets_to_transaction(
                transaction_offsets(last), self.consumer.consumer_group_metadata(), 30
            )
            if failures:  # a refused output: the open transaction must be aborted
                raise KafkaException(
                    KafkaError(KafkaError._FAIL, failures[0], txn_requires_abort=True)
                )
            self.producer.commit_transaction(60)
            if failures:
                raise KafkaException(KafkaError(KafkaError._FAIL, failures[0]))
            self._backoff.succeed()
            self.health.set(True, "")
        except KafkaException as exc:
            delay = self._backoff.fail()
            log.error("transaction failed (%s): aborting, rewinding, retry in %.1fs", exc, delay)
            self.metrics.errors.labels("transaction").inc()
            self.health.set(False, f"transaction failed: {exc}")
            error = exc.args[0]
            if getattr(error, "fatal", lambda: False)():
                raise
            self._abort()
            self._rewind()

    def _abort(self) -> None:
        """Abort the open transaction, whatever failed in it.

        A retriable failure (a concurrent transaction still being completed by the
        coordinator) leaves the transaction open as surely as an abortable one does, and
        the next ``begin_transaction`` would then fail forever; so every failure aborts.
        With no transaction open there is nothing to abort. An abort that does not finish
        (outputs the broker keeps refusing stay in flight) replaces the producer: the new
        one's ``init_transactions`` fences the old one and aborts its transaction on the
        coordinator, as Kafka Streams recovers a stuck task producer.
        """
        try:
            self.producer.abort_transaction(ABORT_TIMEOUT_S)
            return
        except KafkaException as abort_exc:
            if abort_exc.args[0].code() == KafkaError._STATE:
                return
            log.error("abort failed (%s): replacing the transactional producer", abort_exc)
        stuck = self.producer
        stuck.purge(in_queue=True, in_flight=True, blocking=False)
        self.producer = self._producer()
        self.producer.init_transactions(60)

    # -- offsets -------------------------------------------------------------------------

    def _settle(self, wait: bool = False) -> None:
        """Serve delivery callbacks and commit what is fully delivered."""
        if self.exactly_once:
            return
        self.producer.poll(0)
        self.metrics.in_flight.set(self._ledger.in_flight)
        problem = self._ledger.failure()
        if problem is not None:
            delay = self._backoff.fail()
            log.error(
                "an output was not delivered (%s): rewinding to committed offsets, retry in %.1fs",
                problem,
                delay,
            )
            self.metrics.errors.labels("delivery").inc()
            self.health.set(False, f"delivery failed: {problem}")
            self.producer.flush(30)
            self._ledger.clear()
            self._rewind()
            return
        released = self._ledger.release(self._delivered)
        if released:
            self._backoff.succeed()
        self._commit(released, wait=wait)
        waited = self._ledger.oldest_pending_s()
        if waited > UNACKNOWLEDGED_AFTER_S:
            self.health.set(False, f"outputs not acknowledged for {waited:.0f}s")

    def _delivered(self, batch: BatchDelivery) -> None:
        self.metrics.end_to_end_seconds.observe(max(0.0, time.time() - batch.oldest_timestamp))

    def _commit(self, offsets: dict[tuple[str, int], int], *, wait: bool = False) -> None:
        """Commit delivered offsets; in the loop without blocking (a lost commit only means
        a duplicate after a crash), on revocation and shutdown synchronously."""
        self._released.update(offsets)
        if wait:
            offsets = self._released
        positions = commit_positions(offsets, self._assigned)
        if not positions:
            return
        try:
            if wait:
                self.consumer.commit(offsets=positions, asynchronous=False)
            else:
                self.consumer.commit(offsets=positions, asynchronous=True)
            self.health.set(True, "")
        except KafkaException as exc:
            log.warning("commit failed: %s", exc.args[0])
            self.metrics.errors.labels("commit").inc()

    def _rewind(self) -> bool:
        """Seek every assigned partition back to its committed offset.

        If the committed offsets cannot be read (the broker is away), nothing more is
        consumed until a later attempt succeeds: going on would skip the failed outputs.
        """
        assigned = [TopicPartition(t, p) for t, p in self._assigned]
        self._rewind_pending = True
        try:
            for tp in self.consumer.committed(assigned, timeout=30) if assigned else []:
                self.consumer.seek(TopicPartition(tp.topic, tp.partition, rewind_offset(tp.offset)))
        except KafkaException as exc:
            delay = self._backoff.fail()
            log.error("cannot rewind (%s): retry in %.1fs", exc.args[0], delay)
            self.metrics.errors.labels("rewind").inc()
            return False
        self._rewind_pending = False
        return True

    def _report_lag(self, every_s: float = 5.0) -> None:
        """Consumer lag per assigned partition, from the last fetched high watermarks."""
        now = time.monotonic()
        if now < self._next_lag_report or not self._assigned:
            return
        self._next_lag_report = now + every_s
        partitions = [TopicPartition(t, p) for t, p in self._assigned]
        for tp in self.consumer.position(partitions):
            _, high = self.consumer.get_watermark_offsets(tp, cached=True)
            lag = partition_lag(tp.offset, high)
            if lag is not None:
                self.metrics.lag.labels(tp.topic, str(tp.partition)).set(lag)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned.update((tp.topic, tp.partition) for tp in partitions)
        log.info("assigned %s", sorted(p for _, p in self._assigned))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Deliver and commit what is done before the partitions go."""
        if not self.exactly_once:
            self.producer.flush(30)
            if self._ledger.failure() is None:
                self._commit(self._ledger.release(self._delivered), wait=True)
            self._ledger.clear()
        for tp in partitions:
            self._assigned.discard((tp.topic, tp.partition))
            self._released.pop((tp.topic, tp.partition), None)


# -- the pure parts: client settings and offset arithmetic -------------------------------------


def consumer_overrides(settings: Settings) -> dict[str, Any]:
    """What the engine adds to the group consumer preset: offsets are never stored
    automatically (the engine commits only what is delivered), and the broker answers a fetch
    within the batch wait (at least 1 ms).

    >>> consumer_overrides(Settings(max_wait_ms=0))["fetch.wait.max.ms"]
    1
    """
    return {
        "enable.auto.offset.store": False,
        "fetch.wait.max.ms": max(1, settings.max_wait_ms),
    }


def transactional_id(settings: Settings) -> str:
    """The exactly-once producer's transactional id, ``{group_id}-{suffix}``.

    A static member (``group.instance.id``) keeps one transactional id across restarts, so a
    restarted process fences its crashed predecessor and aborts its open transaction at once
    instead of waiting for the transaction timeout; without one the suffix is random.

    >>> transactional_id(Settings(group_id="scorer", kafka_extra={"group.instance.id": "a"}))
    'scorer-a'
    """
    instance = settings.kafka_extra.get("group.instance.id")
    suffix = instance or uuid.uuid4().hex[:12]
    return f"{settings.group_id}-{suffix}"


def last_offsets(records: Sequence[ConsumedRecord]) -> dict[tuple[str, int], int]:
    """The offset of each partition's last record in a batch (in consumption order: a
    later pair replaces an earlier one, with C-level calls only).

    >>> batch = [ConsumedRecord(b"", None, "e", 0, 7, 0), ConsumedRecord(b"", None, "e", 1, 3, 0)]
    >>> last_offsets([*batch, ConsumedRecord(b"", None, "e", 0, 9, 0)])
    {('e', 0): 9, ('e', 1): 3}
    """
    return dict(zip(map(_TOPIC_PARTITION, records), map(_OFFSET, records), strict=True))


def transaction_offsets(last: dict[tuple[str, int], int]) -> list[TopicPartition]:
    """The input offsets a batch's transaction commits: the next record to read, last + 1.

    >>> [(tp.topic, tp.partition, tp.offset) for tp in transaction_offsets({("events", 2): 41})]
    [('events', 2, 42)]
    """
    return [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]


def commit_positions(
    offsets: dict[tuple[str, int], int], assigned: set[tuple[str, int]]
) -> list[TopicPartition]:
    """The commit request for released ``offsets``: only partitions still assigned (a revoked
    partition's offsets are its new owner's to commit)."""
    return [TopicPartition(t, p, o) for (t, p), o in offsets.items() if (t, p) in assigned]


def rewind_offset(committed: int) -> int:
    """Where a rewound partition resumes: its committed offset, or its beginning when the
    group has committed none (a negative, logical offset), as ``auto.offset.reset=earliest``
    starts a new group.

    >>> rewind_offset(17), rewind_offset(-1001) == OFFSET_BEGINNING
    (17, True)
    """
    return committed if committed >= 0 else OFFSET_BEGINNING


def partition_lag(position: int, high_watermark: int) -> int | None:
    """Records behind the partition's end, or None while either offset is not known yet
    (librdkafka reports an unknown offset as a negative number).

    >>> partition_lag(90, 100), partition_lag(-1001, 100), partition_lag(100, 100)
    (10, None, 0)
    """
    if position < 0 or high_watermark < 0:
        return None
    return max(0, high_watermark - position)


def _give_up_committing() -> None:
    log.warning(
        "stopping: the group coordinator did not answer within %.0f s; exiting without the "
        "final commit (outputs are all delivered; uncommitted offsets are read again)",
        SHUTDOWN_COMMIT_S,
    )
    logging.shutdown()
    os._exit(0)
