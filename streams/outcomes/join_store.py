"""One partition's state of the outcome join, in RocksDB (through ``rocksdict``).

The store holds, by event_id, the decision snapshots not yet past the retention and the
labels still waiting for their decision, each with an index by time, so that expiring them
is a range scan rather than a search:

    d<event_id>                      -> a decision snapshot (JSON: ``t``, its event time in
                                        seconds; ``labelled`` once joined)
    l<event_id>                      -> a label waiting for its decision (JSON: ``deadline``,
                                        the decisions' stream time at which it gives up)
    t<event time, ms, 8 bytes><id>   -> ""   decisions in event-time order
    w<deadline, ms, 8 bytes><id>     -> ""   waiting labels in the order they give up

Writes of a transaction wait in memory (:attr:`pending`) and reach RocksDB only when
:meth:`flush` is called after the Kafka transaction that carried them (the changelog records
and the input offsets) committed. So the local store never holds a change Kafka does not,
and after a crash it is at most behind its changelog, never ahead: :meth:`restore` applies the
changelog records from the offset the store last flushed (kept in the store itself) on.

The changelog carries only the ``d``/``l`` entries (a value, or None to delete); the indexes
and the stream time are derived from them by :meth:`apply`, whether a change is made here or
read back from the changelog.
"""

from __future__ import annotations

import shutil
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
from rocksdict import Options, Rdict, WriteBatch, WriteOptions

DECISION = b"d"
LABEL = b"l"
_BY_TIME = b"t"
_BY_DEADLINE = b"w"
_CHANGELOG_OFFSET = b"m:changelog-offset"
_STREAM_TIME = b"m:stream-time"
_TIME = struct.Struct(">Q")  # unsigned big-endian: byte order is time order

Change = tuple[bytes, bytes | None]
"""A changelog entry: a ``d``/``l`` key and its new value, or None when it was deleted."""


def _options() -> Options:
    """Small memtables: memory stays flat however much the store holds (the rest is disk)."""
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    options.set_write_buffer_size(8 * 1024 * 1024)
    options.set_max_write_buffer_number(2)
    return options


def _synced() -> WriteOptions:
    """A flush is written through to the disk (one fsync per partition and transaction), so
    a store that a crash interrupted is as far as its last flush, and restores little."""
    options = WriteOptions()
    options.sync = True
    return options


_SYNCED = _synced()


def _millis(seconds: float) -> bytes:
    """Epoch milliseconds as 8 sortable bytes (times before 1970 count as 1970)."""
    return _TIME.pack(min(max(round(seconds * 1000), 0), 2**63))


def _time_key(prefix: bytes, seconds: float, event_id: bytes) -> bytes:
    return prefix + _millis(seconds) + event_id


class PartitionStore:
    """The join state of one partition; see the module doc."""

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = Rdict(str(path), _options())
        self.pending: dict[bytes, bytes | None] = {}
        self._pending_low: dict[bytes, bytes] = {}
        """Per index prefix (``t``, ``w``): the lowest time among the index entries written
        to :attr:`pending` since it was last cleared, so that :meth:`older_than` looks
        through the pending writes only when one of them can be older than its bound."""
        self.changes: list[Change] = []
        """The ``d``/``l`` changes since the last :meth:`take_changes`: the changelog's."""
        stored = self._db.get(_STREAM_TIME)
        self.stream_time = float("-inf") if stored is None else float(stored)
        self._flushed_time = self.stream_time

    # --- reads (pending writes first) -------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        if key in self.pending:
            return self.pending[key]
        value: bytes | None = self._db.get(key)
        return value

    def decision(self, event_id: str) -> dict[str, Any] | None:
        value = self.get(DECISION + event_id.encode())
        return None if value is None else orjson.loads(value)

    def label(self, event_id: str) -> dict[str, Any] | None:
        value = self.get(LABEL + event_id.encode())
        return None if value is None else orjson.loads(value)

    def older_than(self, prefix: bytes, seconds: float) -> list[bytes]:
        """Event ids in the ``t`` (decisions) or ``w`` (waiting labels) index before
        ``seconds``, oldest first, flushed or pending."""
        if seconds == float("-inf"):
            return []
        bound = _millis(seconds)
        low = self._pending_low.get(prefix)
        found = (
            []
            if low is None or low >= bound
            else [
                key
                for key, value in self.pending.items()
                if value is not None and key[:1] == prefix and key[1:9] < bound
            ]
        )
        iterator = self._db.iter()
        try:
            iterator.seek(prefix)
            while iterator.valid():
                key: bytes = iterator.key()
                if not key.startswith(prefix) or key[1:9] >= bound:
                    break
                if key not in self.pending:  # else: deleted since, or counted above
                    found.append(key)
                iterator.next()
        finally:
            del iterator  # an open iterator holds the database open
        return [key[9:] for key in sorted(found)]

    # --- writes -----------------------------------------------------------------------------

    def put(self, key: bytes, value: bytes | None) -> None:
        """Change a ``d``/``l`` entry and note it for the changelog."""
        if value is not None:  # held until the flush: orjson's bytes carry a 4 KB buffer
            value = bytes(memoryview(value))
        self.apply(key, value)
        self.changes.append((key, value))

    def apply(self, key: bytes, value: bytes | None) -> None:
        """Change a ``d``/``l`` entry and its index entry (no changelog: :meth:`put` notes
        it, :meth:`restore` reads it from there)."""
        old = self.get(key)
        if old is not None:
            self.pending[self._index_key(key, orjson.loads(old))] = None
        self.pending[key] = value
        if value is not None:
            entry = orjson.loads(value)
            index = self._index_key(key, entry)
            self.pending[index] = b""
            low = self._pending_low.get(index[:1])
            if low is None or index[1:9] < low:
                self._pending_low[index[:1]] = index[1:9]
            if key[:1] == DECISION and entry["t"] > self.stream_time:
                self.stream_time = entry["t"]

    @staticmethod
    def _index_key(key: bytes, entry: dict[str, Any]) -> bytes:
        if key[:1] == DECISION:
            return _time_key(_BY_TIME, entry["t"], key[1:])
        return _time_key(_BY_DEADLINE, entry["deadline"], key[1:])

    def take_changes(self) -> list[Change]:
        changes, self.changes = self.changes, []
        return changes

    def flush(self, changelog_offset: int | None) -> None:
        """Write the pending changes (their transaction committed) with the changelog
        position they bring the store to, atomically."""
        if not self.pending and changelog_offset is None and self.stream_time == self._flushed_time:
            return
        batch = WriteBatch(raw_mode=True)
        for key, value in self.pending.items():
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        if changelog_offset is not None:
            batch.put(_CHANGELOG_OFFSET, str(changelog_offset).encode())
        batch.put(_STREAM_TIME, repr(self.stream_time).encode())
        self._db.write(batch, _SYNCED)
        self.pending.clear()
        self._pending_low.clear()
        self._flushed_time = self.stream_time

    def discard(self) -> None:
        """Forget the pending changes (their transaction was aborted): back to the flushed
        state."""
        self.pending.clear()
        self._pending_low.clear()
        self.changes.clear()
        stored = self._db.get(_STREAM_TIME)
        self.stream_time = float("-inf") if stored is None else float(stored)

    # --- restore ----------------------------------------------------------------------------

    @property
    def changelog_offset(self) -> int:
        """The next changelog offset this store has not applied (0: none applied)."""
        stored = self._db.get(_CHANGELOG_OFFSET)
        return 0 if stored is None else int(stored)

    def restore(self, records: Iterable[tuple[int, bytes | None, bytes | None]]) -> int:
        """Apply changelog ``(offset, key, value)`` records in order; how many were read."""
        count, last = 0, None
        for offset, key, value in records:
            count, last = count + 1, offset
            if key and key[:1] in (DECISION, LABEL):
                self.apply(key, value)
            if len(self.pending) >= 100_000:
                self.flush(offset + 1)
        self.flush(None if last is None else last + 1)
        return count

    def close(self) -> None:
        self._db.close()

    def destroy(self) -> None:
        """Close and delete the local files (the changelog still holds the state)."""
        self.close()
        shutil.rmtree(self.path, ignore_errors=True)
