"""The outcome join's state: millions of decisions held, then labels for the oldest of them.

Run with ``python tests/bench/bench_join.py [--decisions N] [--labels N]`` (defaults:
10,000,000 decisions, 100,000 labels, one partition). No Kafka: the script drives
:class:`~streams.outcomes.join.OutcomeJoin` over RocksDB stores
(:class:`~streams.outcomes.join_store.PartitionStore`, in a temporary directory under /tmp,
deleted at the end) the way ``scorer join`` does (streams/outcomes/join_service.py): per
batch of ``--batch`` records, ``decision()`` or ``label()`` per record, then ``expire()``,
then ``take_changes()`` (the entries the service writes to the changelog topic, counted
with their bytes); every ``--commit-every`` batches a transaction commits: the router's
watermark reaches the join (``mark()``) and every store is flushed at its changelog offset.

1. Decisions, in the form the router writes them (``{"side": "decision", ...}``), event
   times 1 ms apart from a fixed start (10,000,000 span 2.8 h; the retention is the
   default 30 days, so none expires). A row at 1, 10, 25, 50, 75 and 100 % held (each
   after a commit there): this process's RSS (VmRSS, after ``gc.collect()``), what RocksDB
   reports it holds in memory (memtables, block cache, table readers), the store
   directory's size on disk and decisions/s over the stretch. The store's memtables are
   bounded (join_store._options), so RSS should level off while the disk grows; the output
   says whether it did.
2. Labels for the oldest ``--labels`` decisions (d-0, d-1, ...), routed as the service
   routes them, 30 days less an hour after their event: every one must join (the script
   exits 1 otherwise).

Generating the records is not timed (a batch is built, then the join calls on it are);
flushes are. One process, seeded; the last line is one JSON object with the headline
figures.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gc
import json
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import orjson

from streams.outcomes.join import LabelReject, OutcomeJoin, partition_for
from streams.outcomes.join_store import PartitionStore
from streams.settings import Settings

START = datetime(2024, 5, 1, tzinfo=UTC).timestamp()
STEP_S = 0.001
"""Event time between two decisions."""
LABEL_DELAY_S = 30 * 86_400.0 - 3_600.0
"""A label's time after its decision's: within the default retention."""
CHECKPOINTS = (0.01, 0.10, 0.25, 0.50, 0.75, 1.00)
MODEL = {"name": "bench", "version": 3, "sha256": "ab" * 32}
REGIONS = ("eu", "us", "apac", "latam")
CHANNELS = ("web", "app", "branch")

Routed = tuple[int, dict[str, Any]]
"""A record routed to its join partition: (partition, the join input record)."""


def rss_mb(field: str = "VmRSS") -> float:
    """This process's resident set (or its peak, ``VmHWM``), MB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def disk_bytes(path: Path) -> int:
    """The sum of the sizes of the files under ``path`` (files RocksDB deletes meanwhile
    are skipped)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                total += os.stat(os.path.join(root, name)).st_size
    return total


def rocksdb_mb(stores: list[PartitionStore]) -> float:
    """What RocksDB itself says it holds in memory (memtables, block cache, table readers):
    the part of RSS its options bound."""
    names = ("cur-size-all-mem-tables", "block-cache-usage", "estimate-table-readers-mem")
    total = 0
    for store in stores:
        db = store._db  # read-only use of the store's handle, for its memory properties
        total += sum(db.property_int_value(f"rocksdb.{name}") or 0 for name in names)
    return total / 2**20


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def decisions(start: int, count: int, partitions: int, rng: random.Random) -> list[Routed]:
    """Decisions ``start`` .. ``start + count - 1`` as the router writes them."""
    batch = []
    for i in range(start, start + count):
        event_id, t, score = f"d-{i}", START + i * STEP_S, rng.random()
        record = {
            "side": "decision",
            "event_id": event_id,
            "entity_id": f"a-{rng.randrange(1_000_000)}",
            "model": MODEL,
            "score": score,
            "decision": "decline" if score > 0.8 else "review" if score > 0.6 else "approve",
            "context": {"region": rng.choice(REGIONS), "channel": rng.choice(CHANNELS)},
            "input_hash": f"{rng.getrandbits(256):064x}",
            "event_time": iso(t),
            "t": t,
        }
        batch.append((partition_for(event_id, partitions), record))
    return batch


def labels(start: int, count: int, partitions: int, rng: random.Random) -> list[Routed]:
    """Labels for decisions ``start`` .. ``start + count - 1``, routed with their source
    feedback record (its coordinates and bytes) as the service routes them."""
    batch = []
    for i in range(start, start + count):
        event_id, t = f"d-{i}", START + i * STEP_S + LABEL_DELAY_S
        label, label_time = rng.randrange(2), iso(t)
        value = orjson.dumps({"event_id": event_id, "label": label, "label_time": label_time})
        source = {
            "topic": "feedback",
            "partition": 0,
            "offset": i,
            "timestamp_ms": round(t * 1000),
            "key_b64": base64.b64encode(event_id.encode()).decode(),
            "value_b64": base64.b64encode(value).decode(),
        }
        record = {"side": "label", "event_id": event_id, "label": label}
        record.update(label_time=label_time, t=t, source=source)
        batch.append((partition_for(event_id, partitions), record))
    return batch


@dataclass
class Driver:
    """The join partitions of one instance, driven batch by batch as the service drives
    them; counts what they produce and the time spent in them."""

    joins: list[OutcomeJoin]
    commit_every: int
    batches: int = 0
    seconds: float = 0.0
    outcomes: int = 0
    rejects: int = 0
    changelog_entries: int = 0
    changelog_bytes: int = 0
    newest: float | None = None

    def decisions(self, batch: list[Routed]) -> None:
        started = time.perf_counter()
        outcomes = 0
        for partition, record in batch:
            outcomes += len(self.joins[partition].decision(record))
        self.newest = batch[-1][1]["t"]  # the router's watermark: decisions come in order
        self._end_batch(started, outcomes, [])

    def labels(self, batch: list[Routed]) -> None:
        started = time.perf_counter()
        outcomes, rejects = 0, []
        for partition, record in batch:
            joined, refused = self.joins[partition].label(record)
            outcomes += len(joined)
            rejects += refused
        self._end_batch(started, outcomes, rejects)

    def _end_batch(self, started: float, outcomes: int, rejects: list[LabelReject]) -> None:
        for join in self.joins:
            rejects += join.expire()
            for key, value in join.store.take_changes():
                self.changelog_entries += 1
                self.changelog_bytes += len(key) + (0 if value is None else len(value))
        self.outcomes += outcomes
        self.rejects += len(rejects)
        self.batches += 1
        if self.batches % self.commit_every == 0:
            self._commit()
        self.seconds += time.perf_counter() - started

    def commit(self) -> None:
        """Commit the open transaction now (a checkpoint measures a flushed store)."""
        started = time.perf_counter()
        self._commit()
        self.seconds += time.perf_counter() - started

    def _commit(self) -> None:
        # the watermark the router sends with the transaction, and the stores taking its
        # changes (one changelog offset for all: the benchmark keeps one running count)
        for join in self.joins:
            join.mark(0, self.newest, read_to_end=False)
            join.store.flush(self.changelog_entries)


def hold_decisions(
    driver: Driver, args: argparse.Namespace, root: Path, rng: random.Random
) -> list[dict[str, float]]:
    """Phase 1: ``args.decisions`` decisions into the join; a row per checkpoint."""
    targets = sorted({max(1, round(f * args.decisions)) for f in CHECKPOINTS})
    rows: list[dict[str, float]] = []
    held, generating = 0, 0.0
    last = {"held": 0, "seconds": 0.0, "rss_max_mb": 0.0}
    print(
        f"{'decisions held':>16}{'RSS MB':>10}{'max RSS MB':>12}{'RocksDB MB':>12}"
        f"{'disk MB':>10}{'changelog MB':>14}{'decisions/s':>13}"
    )
    while held < args.decisions:
        started = time.perf_counter()
        count = min(args.batch, args.decisions - held, targets[0] - held)
        batch = decisions(held, count, args.partitions, rng)
        generating += time.perf_counter() - started
        driver.decisions(batch)
        held += count
        if driver.batches % driver.commit_every == 0:  # a commit: sample RSS (untimed)
            last["rss_max_mb"] = max(last["rss_max_mb"], rss_mb())
        if held == targets[0]:
            targets.pop(0)
            driver.commit()
            rows.append(checkpoint(driver, root, held, last))
            last = {"held": held, "seconds": driver.seconds, "rss_max_mb": 0.0}
    print(f"(generating the decisions took {generating:.1f} s more, not counted)")
    return rows


def checkpoint(driver: Driver, root: Path, held: int, last: dict[str, Any]) -> dict[str, float]:
    """A row of phase 1: RSS now (after a commit) and its maximum at the commits since the
    last row, RocksDB's own memory, the disk, the rate since the last row."""
    gc.collect()
    now = rss_mb()
    row = {
        "held": float(held),
        "rss_mb": now,
        "rss_max_mb": max(now, last["rss_max_mb"]),
        "disk_bytes": float(disk_bytes(root)),
        "per_s": (held - last["held"]) / max(driver.seconds - last["seconds"], 1e-9),
    }
    rocksdb = rocksdb_mb([join.store for join in driver.joins])
    print(
        f"{held:>16,}{now:>10.1f}{row['rss_max_mb']:>12.1f}{rocksdb:>12.1f}"
        f"{row['disk_bytes'] / 2**20:>10.1f}{driver.changelog_bytes / 2**20:>14.1f}"
        f"{row['per_s']:>13,.0f}"
    )
    return row


def join_labels(driver: Driver, args: argparse.Namespace, rng: random.Random) -> float:
    """Phase 2: labels for the oldest ``args.labels`` decisions; labels/s."""
    before = (driver.seconds, driver.outcomes, driver.rejects, driver.changelog_bytes)
    for start in range(0, args.labels, args.batch):
        driver.labels(labels(start, min(args.batch, args.labels - start), args.partitions, rng))
    driver.commit()
    seconds = driver.seconds - before[0]
    joined, refused = driver.outcomes - before[1], driver.rejects - before[2]
    per_s = args.labels / max(seconds, 1e-9)
    print(
        f"\n{args.labels:,} labels for the oldest decisions: {joined:,} joined, {refused:,} "
        f"rejected, {per_s:,.0f} labels/s, changelog "
        f"{(driver.changelog_bytes - before[3]) / 2**20:.1f} MB"
    )
    return per_s


def verdict(start: float, rows: list[dict[str, float]], held: int) -> dict[str, Any]:
    """Print whether RSS levelled off, and the figures: it did if its maximum over the second
    half (at every commit) exceeds that over the first half by at most a quarter of the first
    half's growth from the baseline, or by at most 8 MB. (Single readings move by tens of
    MB as RocksDB's compactions take and give back memory; maxima do not.)"""
    half = next(r for r in rows if r["held"] >= held / 2)
    first = max(r["rss_max_mb"] for r in rows if r["held"] <= half["held"])
    second = max(r["rss_max_mb"] for r in rows if r["held"] > half["held"])
    levels = second - first <= max(8.0, 0.25 * (first - start))
    print(
        f"\nRSS {start:.1f} MB before, {half['rss_mb']:.1f} MB at half, {rows[-1]['rss_mb']:.1f} "
        f"MB at {held:,} held ({rows[-1]['rss_mb'] - half['rss_mb']:+.1f} MB over the second "
        f"half); maximum {first:.1f} MB over the first half, {second:.1f} MB over the second "
        f"({second - first:+.1f} MB, {(second - first) / (held / 2) * 1e6:+.1f} MB per million)"
    )
    print(
        "RSS levels off (max over the second half <= max over the first + max(8 MB, 1/4 of "
        "the first half's growth))"
        if levels
        else "RSS does NOT level off: its maximum still grows with the decisions held"
    )
    return {"half": half["rss_mb"], "full": rows[-1]["rss_mb"], "max_first": first,
            "max_second": second, "levels_off": levels}  # fmt: skip


def make_driver(args: argparse.Namespace, root: Path) -> Driver:
    retention_s = Settings().feedback_retention_seconds
    wait_s = Settings().feedback_wait_seconds
    joins = [
        OutcomeJoin(PartitionStore(root / str(p)), retention_s, wait_s, sources=1)
        for p in range(args.partitions)
    ]
    return Driver(joins, args.commit_every)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=10_000_000)
    parser.add_argument("--labels", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1000, help="records per batch")
    parser.add_argument("--commit-every", type=int, default=20, help="batches per flush")
    args = parser.parse_args()
    if not 0 < args.labels <= args.decisions:
        parser.error("--labels must be between 1 and --decisions")
    return args


def run(args: argparse.Namespace, root: Path, start_mb: float) -> dict[str, Any]:
    """Both phases; the headline figures."""
    rng = random.Random(7)
    driver = make_driver(args, root)
    print(
        f"{args.decisions:,} decisions, {args.partitions} partition(s), batch {args.batch}, "
        f"flush every {args.commit_every} batches; RSS {start_mb:.1f} MB after imports\n"
    )
    rows = hold_decisions(driver, args, root, rng)
    decision_s, changelog_bytes = driver.seconds, driver.changelog_bytes
    rss = verdict(start_mb, rows, args.decisions)
    labels_per_s = join_labels(driver, args, rng)
    gc.collect()
    end_mb, disk = rss_mb(), disk_bytes(root)
    for join in driver.joins:
        join.store.close()
    print(
        f"disk {disk / 2**20:.1f} MB ({disk / args.decisions:.0f} B per decision), changelog "
        f"{changelog_bytes / args.decisions:.0f} B per decision; RSS {end_mb:.1f} MB at the "
        f"end, peak {rss_mb('VmHWM'):.1f} MB"
    )
    return {
        "join_decisions": args.decisions,
        "join_partitions": args.partitions,
        "join_decisions_per_s": round(args.decisions / decision_s),
        "join_labels": args.labels,
        "join_labels_per_s": round(labels_per_s),
        "join_labels_joined": driver.outcomes,
        "join_labels_rejected": driver.rejects,
        "join_rss_mb_start": round(start_mb, 1),
        "join_rss_mb_half": round(rss["half"], 1),
        "join_rss_mb_full": round(rss["full"], 1),
        "join_rss_mb_end": round(end_mb, 1),
        "join_rss_mb_growth_second_half": round(rss["full"] - rss["half"], 1),
        "join_rss_mb_max_first_half": round(rss["max_first"], 1),
        "join_rss_mb_max_second_half": round(rss["max_second"], 1),
        "join_rss_levels_off": rss["levels_off"],
        "join_disk_bytes_per_decision": round(disk / args.decisions, 1),
        "join_changelog_bytes_per_decision": round(changelog_bytes / args.decisions, 1),
    }


def main() -> int:
    args = arguments()
    gc.collect()
    start_mb = rss_mb()  # the baseline: after the imports, before any store
    root = Path(tempfile.mkdtemp(prefix="bench-join-", dir="/tmp"))
    try:
        headline = run(args, root, start_mb)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    joined, refused = headline["join_labels_joined"], headline["join_labels_rejected"]
    if joined != args.labels or refused:
        print(
            f"FAILED: {joined:,} of {args.labels:,} labels joined, {refused:,} rejected; "
            "every label is for a decision held within the retention and must join",
            file=sys.stderr,
        )
        return 1
    print(json.dumps({"benchmark": "join", **headline}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
