"""The Faust engine: a faust-streaming agent in batches around the same scoring core.

For teams that already run Faust workers. One agent reads the events topic as raw bytes::

    async for events in stream.take_events(max_batch, within=max_wait_ms):
        swap models if a promotion arrived          (batch boundary, the same ModelWatcher)
        outputs = BatchProcessor.process(records)   (the native engine's processor)
        send every output; await every send future  (the producer's acknowledgements)
        # only now does the loop ask for the next batch, and only then are these acked

``take_events`` is Faust's ``take`` yielding the events rather than their values, so that
dead letters and monitors keep each record's partition and offset. Decisions, explanations,
dead letters, shadow decisions and monitor records are built by the same
:class:`~streams.engine.processor.BatchProcessor` as in the native engine, with the same
keys and lineage headers; one model call scores the whole batch.

What faust-streaming guarantees, and what this engine adds:

- Faust commits an offset only once every event before it in its partition has been
  *acknowledged* (acked) by the stream: the consumer keeps the acked offsets and commits the
  highest gap-free one, every ``broker_commit_interval`` seconds (2.8) and again when
  partitions are revoked or the worker stops. Acking says the event was processed; Faust
  itself does not tie it to anything the agent sent (unless ``stream_publish_on_commit``,
  which holds sends back until the commit instead).
- ``take``/``take_events`` ack a batch's events when the agent asks for the next batch
  (or the loop ends). This engine awaits the broker's acknowledgement of every output of the
  batch *before* asking, so an offset is committed only after its decision, explanation or
  dead letter is stored (acks=all): at-least-once, like the native engine.
- If an output cannot be delivered, or the batch fails in any other way, the worker ends at
  once with status 1, without acknowledging the batch: Faust would otherwise ack the events
  of a failed agent body when its generator is closed. Offsets already committed cover only
  delivered outputs, so a restarted worker scores the rest again (a duplicate equals its
  original except ``scored_at`` and ``latency_ms``). The native engine rewinds in-process
  instead.
- On SIGTERM or SIGINT the Faust worker stops fetching, lets the agent finish the events it
  already fetched, commits, and exits with status 0.
- Exactly-once is not offered: Faust's ``processing_guarantee="exactly_once"`` keeps one
  transactional producer per source partition, and a batch here spans partitions.
  ``--engine faust --exactly-once`` is refused; use the native engine for transactions.
- Faust reads with aiokafka at ``read_uncommitted``: records of aborted upstream
  transactions are scored too (the native engine reads ``read_committed``).
- aiokafka refuses to send a record over its ``max_request_size`` (1 MiB by default), which
  would stop the worker on the dead letter of a large record. The producer is allowed the
  dead letters' size budget instead (:func:`producer_max_request_size`), and a letter over
  the budget is cut to fit by the processor, as in the native engine.

Configuration is the same :class:`~streams.settings.Settings`: the Faust app id is the
consumer group (``SCORER_GROUP_ID``), the broker is ``KAFKA_BOOTSTRAP_SERVERS`` (or the local
broker), and topics, registry, model, batch size and wait come from their variables. Faust's
web server is off; ``scorer serve`` serves the same /metrics, /healthz and /readyz. aiokafka
does not read librdkafka settings: security settings (``security.*``, ``sasl.*``,
``ssl.*``) are refused with a clear error rather than silently ignored.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Any

import faust

from models.registry import Registry
from schemas.errors import ConfigError
from streams.engine.base import build_scoring
from streams.engine.records import ConsumedRecord, Output
from streams.kafka.clients import admin_client
from streams.kafka.messages import partition_count
from streams.observability import Health, ScorerMetrics
from streams.paths import var_dir
from streams.runtime import tune_garbage_collector
from streams.settings import Settings

log = logging.getLogger(__name__)

UNSUPPORTED_PREFIXES = ("security.", "sasl.", "ssl.")
"""librdkafka settings aiokafka cannot take over; refused rather than dropped."""
EXIT_BATCH_FAILED = 1
AIOKAFKA_MAX_REQUEST_BYTES = 1_048_576
"""aiokafka's default ``max_request_size``: it refuses any larger record before sending it."""
RECORD_FRAMING_BYTES = 1024
"""What aiokafka adds to a record's key and value when it measures it: batch header, lengths,
and the dead letter's two headers."""


class FaustEngine:
    """Scores ``settings.topic_events`` in a Faust worker until SIGTERM or SIGINT."""

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
        if exactly_once:
            raise ConfigError(
                "--engine faust does not support --exactly-once (a Faust transaction covers "
                "one source partition, a batch spans several); use --engine native"
            )
        refused = sorted(k for k in settings.kafka_extra if k.startswith(UNSUPPORTED_PREFIXES))
        if refused:
            raise ConfigError(
                f"--engine faust cannot apply the Kafka settings {', '.join(refused)} "
                "(aiokafka does not read librdkafka settings); use --engine native"
            )
        self.settings = settings
        self.metrics = metrics or ScorerMetrics()
        self.health = health or Health()
        partition_count(admin_client(settings), settings.topic_events)  # a clear error if missing
        scoring = build_scoring(settings, model_name, self.metrics, registry)
        self.models, self.processor = scoring.models, scoring.processor
        self.dlq_max_bytes = scoring.dlq_max_bytes
        self._positions: dict[tuple[str, int], int] = {}
        self.app = self._app()
        self.events = self.app.topic(
            settings.topic_events, key_type=bytes, value_type=bytes,
            key_serializer="raw", value_serializer="raw",
        )  # fmt: skip
        self.app.agent(self.events, name="scorer.score")(self._score)
        self.app.timer(1.0, name="scorer.heartbeat")(self._heartbeat)

    def _app(self) -> faust.App:
        settings = self.settings
        servers = [s.strip() for s in settings.bootstrap_servers.split(",") if s.strip()]
        return faust.App(
            settings.group_id,
            broker=[f"kafka://{server}" for server in servers],
            datadir=str(var_dir() / "faust" / settings.group_id),
            web_enabled=False,
            topic_disable_leader=True,  # no leader topic: this app has no tables
            consumer_auto_offset_reset="earliest",
            processing_guarantee="at_least_once",
            producer_acks=-1,
            producer_linger_ms=5,
            producer_max_batch_size=512 * 1024,
            producer_max_request_size=producer_max_request_size(self.dlq_max_bytes),
            stream_wait_empty=True,
            worker_redirect_stdouts=False,
        )

    # -- lifecycle -----------------------------------------------------------------------

    def run(self) -> int:
        """Run the worker until SIGTERM or SIGINT; the exit status."""
        log.info(
            "serving %s on %s (faust, at-least-once, batch %d, wait %d ms)",
            self.models.serving.champion.label,
            self.settings.topic_events,
            self.settings.max_batch,
            self.settings.max_wait_ms,
        )
        Path(self.app.conf.datadir).mkdir(parents=True, exist_ok=True)
        for chatty in ("faust", "mode", "aiokafka"):  # their start/stop steps, at INFO
            logging.getLogger(chatty).setLevel(logging.WARNING)
        tune_garbage_collector()
        worker = faust.Worker(
            self.app, loglevel=logging.getLogger().level or logging.INFO, quiet=True,
            redirect_stdouts=False, loop=asyncio.new_event_loop(),
        )  # fmt: skip
        try:
            worker.execute_from_commandline()
        except SystemExit as exit_:
            return int(exit_.code or 0) if not isinstance(exit_.code, str) else 1
        finally:
            self.models.close()
            log.info("stopped")
        return 0

    # -- the agent -----------------------------------------------------------------------

    async def _score(self, stream: Any) -> None:
        self.health.set(True, "")
        within = max(1, self.settings.max_wait_ms) / 1000.0  # 0 would mean: wait until full
        try:
            async for events in stream.take_events(self.settings.max_batch, within=within):
                try:
                    await self._batch([faust_record(event.message) for event in events])
                except Exception:  # never let Faust ack a batch whose outputs may be lost
                    log.exception("batch failed: stopping without acknowledging it")
                    self.metrics.errors.labels("batch").inc()
                    logging.shutdown()
                    os._exit(EXIT_BATCH_FAILED)
        finally:
            self.health.set(False, "shutting down")

    async def _batch(self, records: list[ConsumedRecord]) -> None:
        """Score one batch and wait until the broker has every output of it."""
        self.models.check()
        outputs = self.processor.process(records)
        await self._send(outputs)
        for record in records:
            self._positions[(record.topic, record.partition)] = record.offset + 1
        oldest = min(r.timestamp_ms for r in records) / 1000.0
        self.metrics.end_to_end_seconds.observe(max(0.0, time.time() - oldest))

    async def _send(self, outputs: list[Output]) -> None:
        producer = self.app.producer
        pending = []
        for topic, key, value, headers in outputs:
            pending.append(await producer.send(topic, key, value, None, None, headers))  # type: ignore[arg-type]
        self.metrics.in_flight.set(len(pending))
        if pending:
            await asyncio.gather(*pending)
        self.metrics.in_flight.set(0)

    async def _heartbeat(self) -> None:
        """Liveness, and consumer lag per assigned partition from the fetched high watermarks."""
        self.health.heartbeat()
        consumer = self.app.consumer
        for tp in consumer.assignment():
            position = self._positions.get((tp.topic, tp.partition))
            high = consumer.highwater(tp)
            if position is not None and high is not None and high >= 0:
                self.metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, high - position))


def producer_max_request_size(dlq_max_bytes: int) -> int:
    """The largest record the Faust producer sends: any dead letter within the budget (the
    native engine's producer takes up to 64 MiB; the topics decide), never less than
    aiokafka's default.

    >>> producer_max_request_size(2_064_384), producer_max_request_size(16_384)
    (2065408, 1048576)
    """
    return max(AIOKAFKA_MAX_REQUEST_BYTES, dlq_max_bytes + RECORD_FRAMING_BYTES)


def faust_record(message: Any) -> ConsumedRecord:
    """The engine-neutral view of a record Faust consumed (its timestamp is in seconds)."""
    return ConsumedRecord(
        message.value,
        message.key,
        message.topic,
        message.partition,
        message.offset,
        round(message.timestamp * 1000.0),
    )
