"""``scorer join``: the outcome join on Kafka, partitioned, durable and exactly-once.

Every join instance is a member of one consumer group (``SCORER_JOIN_GROUP_ID``) reading
three topics, so Kafka spreads their partitions over however many instances run:

1. ``decisions`` and ``feedback``: each decision becomes a small snapshot and each valid label
   a routed label (with its source record's bytes and coordinates), written to
   ``outcome-join-input`` in the join partition of its event_id
   (:func:`~streams.outcomes.join.partition_for`). The scorer writes nothing extra: the join
   repartitions on its own, as Kafka Streams does before a join. An invalid label is
   dead-lettered here. With each transaction the router also writes, to every join
   partition, a watermark per decisions partition it reads: the newest event time routed
   from it and whether it is read to its end, which is how a join partition knows when a
   waiting label's decision can no longer come.
2. ``outcome-join-input``: partition *p* is joined in the store of partition *p*
   (:class:`~streams.outcomes.join.OutcomeJoin` over a RocksDB
   :class:`~streams.outcomes.join_store.PartitionStore`). Joined outcomes go to ``outcomes``
   partition *p*, which the one monitor owner reads; rejected labels go to the dead-letter
   topic; every change of the store goes to ``outcome-join-changelog`` partition *p*.

All of it (routed records, outcomes, dead letters, changelog records and the input offsets)
is one Kafka transaction per ``join_commit_seconds``, or per ``join_transaction_changes``
store changes if that comes first; the local stores take the transaction's changes only
after it committed. A crash between a commit and the stores taking it costs the restore one
transaction's changelog records, so the second bound keeps that small on a backlog.

When an instance gets a partition (a start, a rebalance, a restart after SIGKILL), its store
is restored from the changelog, from the offset the local store already holds onwards: a
store that is still current reads nothing, a new one reads the partition's compacted
changelog, never the decisions topic.
"""

from __future__ import annotations

import base64
import fcntl
import logging
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import IO, Any

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from schemas.errors import ConfigError
from streams.engine.processor import dead_letter_outputs
from streams.engine.records import ConsumedRecord, Headers, consumed
from streams.kafka import clients
from streams.kafka.messages import committable, partition_count, usable
from streams.kafka.reader import TopicReader
from streams.observability import Health, ScorerMetrics
from streams.outcomes.join import (
    LabelReject,
    OutcomeJoin,
    parse_decisions,
    parse_feedback,
    partition_for,
)
from streams.outcomes.join_store import PartitionStore
from streams.runtime import Service
from streams.settings import Settings

log = logging.getLogger(__name__)

MARKS_EVERY_S = 10.0
"""How often a router repeats its watermarks even when they did not change."""
TRANSACTION_TIMEOUT_MS = 10_000
"""A crashed instance's open transaction is aborted by the broker after this long, so the
instance that takes its partitions over can read their changelog to the end soon."""


class JoinService(Service):
    """One outcome-join instance (see the module doc)."""

    def __init__(
        self,
        settings: Settings,
        metrics: ScorerMetrics | None = None,
        health: Health | None = None,
    ) -> None:
        super().__init__()
        s = self.settings = settings
        self.metrics = metrics or ScorerMetrics()
        self.health = health or Health()
        self.state_dir = Path(s.join_state_dir)
        self._lock = _lock_state_dir(self.state_dir)
        self.instance = _instance_id(self.state_dir)
        # a crashed instance's partitions move on within 10 s, not the default 45
        self.consumer = clients.group_consumer(
            s, s.join_group_id, **{"session.timeout.ms": 10_000, "heartbeat.interval.ms": 2_000}
        )
        self.partitions = partition_count(self.consumer, s.topic_join_input)
        self.decision_partitions = partition_count(self.consumer, s.topic_decisions)
        for topic in (s.topic_join_changelog, s.topic_outcomes):
            count = partition_count(self.consumer, topic)
            if count != self.partitions:
                raise ConfigError(
                    f"topic {topic!r} has {count} partitions and {s.topic_join_input!r} "
                    f"{self.partitions}: the outcome join needs them equal (scorer topics apply)"
                )
        self.producer = clients.transactional_producer(
            s, f"{s.join_group_id}-{self.instance}",
            **{"linger.ms": 20, "compression.type": "lz4",
               "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS},
        )  # fmt: skip
        self.joins: dict[int, OutcomeJoin] = {}
        self.routed: dict[int, float | None] = {}
        """Per decisions partition read here: the newest event time routed from it."""
        self._marks_sent: dict[int, tuple[float | None, bool]] = {}
        self._starts: dict[tuple[str, int], int] = {}
        self._marks_sent_at = 0.0
        self.positions: dict[tuple[str, int], int] = {}
        self.changelog_next: dict[int, int] = {}
        self.failed_deliveries = 0
        self.in_transaction = False
        self.transaction_changes = 0
        """Store changes in the open transaction: what a crash right after its commit leaves
        for the restore to read back from the changelog."""
        self.restored = 0
        """Changelog records read to restore stores, since this instance started."""

    # --- lifecycle --------------------------------------------------------------------------

    def run(self) -> None:
        s = self.settings
        self.producer.init_transactions(30)  # fences this instance's last run, aborts its txn
        self.consumer.subscribe(
            [s.topic_decisions, s.topic_feedback, s.topic_join_input],
            on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._lost,
        )  # fmt: skip
        log.info("join instance %s in group %s", self.instance, s.join_group_id)
        self.health.set(True, "")
        last_commit = time.monotonic()
        try:
            while not self._stopping.is_set():
                self.health.heartbeat()
                messages = [
                    m for m in self.consumer.consume(1000, timeout=0.1) if usable(m, self.metrics)
                ]
                if messages:
                    self._process(messages)
                if (
                    time.monotonic() - last_commit >= s.join_commit_seconds
                    or self.transaction_changes >= s.join_transaction_changes
                ):
                    self._commit()
                    last_commit = time.monotonic()
            self._commit()
        finally:
            self.health.set(False, "stopped")
            self.consumer.close()  # revokes: commits what is open, closes the stores
            for join in self.joins.values():
                join.store.close()
            self.joins.clear()
            self._lock.close()
            log.info("join instance %s stopped", self.instance)

    # --- one batch --------------------------------------------------------------------------

    def _process(self, messages: list[Message]) -> None:
        s = self.settings
        by_topic: dict[str, list[ConsumedRecord]] = defaultdict(list)
        for record in map(consumed, messages):
            by_topic[record.topic].append(record)
            self.positions[(record.topic, record.partition)] = record.offset + 1
        self._begin()
        outputs = self._route_decisions(by_topic.get(s.topic_decisions, []))
        outputs += self._route_labels(by_topic.get(s.topic_feedback, []))
        for topic, key, value, headers, partition in outputs:
            self.producer.produce(topic, value, key, partition=partition, headers=headers)
        by_partition: dict[int, list[ConsumedRecord]] = defaultdict(list)
        for record in by_topic.get(s.topic_join_input, []):
            by_partition[record.partition].append(record)
        for partition, records in by_partition.items():
            self._join(partition, records)
        self.producer.poll(0)

    def _route_decisions(self, records: list[ConsumedRecord]) -> list[_Routed]:
        rows, skipped = parse_decisions([r.value for r in records])
        if skipped:
            log.error("%d decision record(s) skipped: not decisions the join can hold", skipped)
            self.metrics.errors.labels("decision_record").inc(skipped)
        topic, routed = self.settings.topic_join_input, self.routed
        for index, row in rows:
            source = records[index].partition
            newest = routed.get(source)
            if newest is None or row["t"] > newest:
                routed[source] = row["t"]
        return [
            (topic, row["event_id"].encode(), orjson.dumps({"side": "decision", **row}), [],
             partition_for(row["event_id"], self.partitions))
            for _, row in rows
        ]  # fmt: skip

    def _send_marks(self) -> None:
        """A watermark per decisions partition read here, to every join partition: when one
        changed, and every ``MARKS_EVERY_S`` (a restored join partition learns them again)."""
        topic = self.settings.topic_decisions
        owned = [tp for tp in self.consumer.assignment() if tp.topic == topic]
        if not owned:
            return
        marks: dict[int, tuple[float | None, bool]] = {}
        for tp in self._positions(owned):
            low, high = self.consumer.get_watermark_offsets(tp, cached=True)
            read_to_end = high >= 0 and (high == low or tp.offset >= high)
            marks[tp.partition] = (self.routed.get(tp.partition), read_to_end)
        due = time.monotonic() - self._marks_sent_at >= MARKS_EVERY_S
        changed = {p: m for p, m in marks.items() if due or self._marks_sent.get(p) != m}
        if not changed:
            return
        self._begin()
        for source, (newest, read_to_end) in sorted(changed.items()):
            mark = {"side": "watermark", "t": newest, "decisions_partition": source,
                    "read_to_end": read_to_end}  # fmt: skip
            value = orjson.dumps(mark)
            for partition in range(self.partitions):
                self.producer.produce(self.settings.topic_join_input, value, partition=partition)
        self._marks_sent.update(changed)
        if due:
            self._marks_sent_at = time.monotonic()

    def _route_labels(self, records: list[ConsumedRecord]) -> list[_Routed]:
        if not records:
            return []
        accepted, rejects = parse_feedback([r.value for r in records])
        routed: list[_Routed] = [
            (o[0], o[1], o[2], o[3], -1)
            for o in dead_letter_outputs(self.settings, self.metrics, records, rejects)
        ]
        self.metrics.labels.labels("rejected").inc(len(rejects))
        topic = self.settings.topic_join_input
        for index, label in accepted:
            source = records[index]
            value = orjson.dumps({"side": "label", **label, "source": _source(source)})
            event_id = label["event_id"]
            routed.append(
                (topic, event_id.encode(), value, [], partition_for(event_id, self.partitions))
            )
        return routed

    def _positions(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """Where this instance reads each partition: its position, or, before it has read
        anything there since the partition was assigned, the committed offset it starts
        from (an idle partition has no position, but it is read to its end all the same)."""
        positions = self.consumer.position(partitions)
        unread = [tp for tp in positions if tp.offset < 0]
        missing = [tp for tp in unread if (tp.topic, tp.partition) not in self._starts]
        if missing:
            for tp in self.consumer.committed(missing, 10):
                self._starts[(tp.topic, tp.partition)] = tp.offset
        return [
            TopicPartition(tp.topic, tp.partition, self._starts.get((tp.topic, tp.partition), -1))
            if tp.offset < 0
            else tp
            for tp in positions
        ]

    def _join(self, partition: int, records: list[ConsumedRecord]) -> None:
        s, join = self.settings, self.joins.get(partition)
        if join is None:  # not ours any more (a rebalance within the batch)
            return
        outcomes: list[dict[str, Any]] = []
        rejects: list[LabelReject] = []
        for record in records:
            try:
                entry = orjson.loads(record.value or b"null")
                side = entry["side"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                log.error("join input %d@%d skipped: not a join record", partition, record.offset)
                self.metrics.errors.labels("join_record").inc()
                continue
            if side == "decision":
                outcomes += join.decision(entry)
            elif side == "watermark":
                join.mark(entry["decisions_partition"], entry["t"], entry["read_to_end"])
            else:
                joined, refused = join.label(entry)
                outcomes += joined
                rejects += refused
        rejects += join.expire()
        for outcome in outcomes:
            self.producer.produce(
                s.topic_outcomes, orjson.dumps(outcome), outcome["event_id"].encode(),
                partition=partition, headers=_outcome_headers(outcome),
            )  # fmt: skip
        if rejects:
            sources = [_consumed(r.label["source"]) for r in rejects]
            letters = dead_letter_outputs(
                s, self.metrics, sources,
                [(i, r.reason, r.detail) for i, r in enumerate(rejects)],
            )  # fmt: skip
            for topic, key, value, headers in letters:
                self.producer.produce(topic, value, key, headers=headers)
        self.metrics.labels.labels("joined").inc(len(outcomes))
        self.metrics.labels.labels("rejected").inc(len(rejects))
        changes = join.store.take_changes()
        self.transaction_changes += len(changes)
        for changed, change in changes:
            self.producer.produce(
                s.topic_join_changelog, change, changed, partition=partition,
                on_delivery=self._delivered,
            )  # fmt: skip

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self.failed_deliveries += 1
            return
        partition, offset = int(message.partition() or 0), int(message.offset() or 0)
        self.changelog_next[partition] = max(self.changelog_next.get(partition, 0), offset + 1)

    # --- transactions -----------------------------------------------------------------------

    def _begin(self) -> None:
        if not self.in_transaction:
            self.producer.begin_transaction()
            self.in_transaction = True

    def _commit(self) -> None:
        """Offsets into the open transaction, commit it, then let the stores take its
        changes. A failure aborts it and reads its inputs again."""
        self._send_marks()
        if not self.in_transaction:
            return
        try:
            self.producer.flush(60)  # serves the changelog's delivery reports
            if self.failed_deliveries:
                raise KafkaException(KafkaError(KafkaError._FAIL, "an output was refused"))
            read = committable(self.consumer, self.positions)
            offsets = [TopicPartition(t, p, o) for (t, p), o in sorted(read.items())]
            if offsets:
                self.producer.send_offsets_to_transaction(
                    offsets, self.consumer.consumer_group_metadata(), 30
                )
            self.producer.commit_transaction(60)
        except KafkaException as exc:
            log.error("join transaction failed (%s): aborted, its inputs are read again", exc)
            self._abort()
            return
        self.in_transaction, self.transaction_changes = False, 0
        for partition, join in self.joins.items():
            join.store.flush(self.changelog_next.pop(partition, None))
        self.positions.clear()

    def _abort(self) -> None:
        try:
            self.producer.abort_transaction(30)
        except KafkaException as exc:
            log.error("abort failed: %s", exc)
        self.in_transaction, self.transaction_changes = False, 0
        self.failed_deliveries = 0
        self.changelog_next.clear()
        for join in self.joins.values():
            join.store.discard()
        assigned = self.consumer.assignment()
        if assigned:  # back to the last committed offsets
            for tp in self.consumer.committed(assigned, 30):
                if tp.offset >= 0:
                    self.consumer.seek(tp)
        self.positions.clear()

    # --- partitions coming and going --------------------------------------------------------

    def _assigned(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        s = self.settings
        for tp in partitions:
            if tp.topic == s.topic_join_input and tp.partition not in self.joins:
                store = self._restore(tp.partition)
                self.joins[tp.partition] = OutcomeJoin(
                    store, s.feedback_retention_seconds, s.feedback_wait_seconds,
                    self.decision_partitions,
                )  # fmt: skip

    def _revoked(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        self._commit()
        self._close(partitions)

    def _lost(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        if self.in_transaction:
            self._abort()
        self._close(partitions)

    def _close(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._starts.pop((tp.topic, tp.partition), None)
            if tp.topic == self.settings.topic_decisions:
                self.routed.pop(tp.partition, None)
                self._marks_sent.pop(tp.partition, None)
            if tp.topic == self.settings.topic_join_input and tp.partition in self.joins:
                self.joins.pop(tp.partition).store.close()
            self.positions.pop((tp.topic, tp.partition), None)

    def _restore(self, partition: int) -> PartitionStore:
        """The partition's local store, brought up to the end of its changelog."""
        topic, path = self.settings.topic_join_changelog, self.state_dir / str(partition)
        store = PartitionStore(path)
        with TopicReader(self.settings, timeout=3 * TRANSACTION_TIMEOUT_MS / 1000) as reader:
            low, high = reader.watermarks(topic, partition)
            start = store.changelog_offset
            if not low <= start <= high:  # another changelog's store, or one compacted past
                log.warning(
                    "join partition %d: the local store is at changelog offset %d, outside "
                    "the changelog's %d..%d: rebuilt from the changelog", partition, start,
                    low, high,
                )  # fmt: skip
                store.destroy()
                store, start = PartitionStore(path), low
            read = store.restore(
                (r.offset, r.key, r.value)
                for r in reader.records(topic, {partition: (start, high)})
            )
        self.restored += read
        self.metrics.join_restored.inc(read)
        log.info(
            "join partition %d: store restored from changelog offset %d to %d, %d record(s) "
            "read", partition, start, high, read,
        )  # fmt: skip
        return store


_Routed = tuple[str, bytes | None, bytes, list[Any], int]
"""A routed record: topic, key, value, headers, partition (-1: the topic's partitioner)."""


def _source(record: ConsumedRecord) -> dict[str, Any]:
    """A label's source record, as the routed label carries it to its dead letter."""
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp_ms": record.timestamp_ms,
        "key_b64": None if record.key is None else base64.b64encode(record.key).decode(),
        "value_b64": base64.b64encode(record.value or b"").decode(),
    }


def _consumed(source: dict[str, Any]) -> ConsumedRecord:
    key = source.get("key_b64")
    return ConsumedRecord(
        base64.b64decode(source["value_b64"]),
        None if key is None else base64.b64decode(key),
        source["topic"],
        source["partition"],
        source["offset"],
        source.get("timestamp_ms") or 0,
    )


def _outcome_headers(outcome: dict[str, Any]) -> Headers:
    model = outcome["model"]
    return [
        ("event_id", outcome["event_id"].encode()),
        ("model_name", str(model["name"]).encode()),
        ("model_version", str(model["version"]).encode()),
    ]


def _lock_state_dir(path: Path) -> IO[str]:
    """Hold the state directory for this process: RocksDB allows one writer per store."""
    path.mkdir(parents=True, exist_ok=True)
    handle = (path / "LOCK").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ConfigError(
            f"{path} is in use by another join instance; give each instance its own "
            "--state-dir (SCORER_JOIN_STATE_DIR)"
        ) from None
    return handle


def _instance_id(path: Path) -> str:
    """This state directory's instance id, made once: its transactional id, so a restarted
    instance fences its previous run."""
    file = path / "instance-id"
    if not file.exists():
        file.write_text(uuid.uuid4().hex[:12] + "\n", encoding="utf-8")
    return file.read_text(encoding="utf-8").strip()
