"""Which input offsets may be committed: those whose every output the broker acknowledged.

The native engine produces a batch's outputs without waiting for them; the producer's
delivery callbacks acknowledge them later, in any order. A :class:`DeliveryLedger` keeps
the batches in consumption order with a count of outputs still in flight. Offsets are
released for commit only for the longest prefix of fully delivered batches, so a
commit never covers an event whose decision, explanation or dead letter could still be lost.
A failed delivery marks its batch failed: nothing from it on is released, and the engine
rewinds to the last committed offsets (at-least-once; consumers deduplicate on event_id).

>>> ledger = DeliveryLedger()
>>> first = ledger.open({("events", 0): 10}, outputs=2)
>>> second = ledger.open({("events", 0): 12, ("events", 1): 4}, outputs=1)
>>> second.acknowledge(None)
>>> ledger.release()   # the first batch is still in flight
{}
>>> first.acknowledge(None); first.acknowledge(None)
>>> ledger.release()
{('events', 0): 13, ('events', 1): 5}
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TopicPartition = tuple[str, int]


@dataclass(eq=False)
class BatchDelivery:
    """One consumed batch: its highest offset per partition and its outputs in flight."""

    last_offsets: dict[TopicPartition, int]
    pending: int
    oldest_timestamp: float = 0.0
    """Epoch seconds of the batch's oldest input record (for end-to-end latency)."""
    errors: list[str] = field(default_factory=list)
    opened_at: float = field(default_factory=time.monotonic)
    """Monotonic time the batch's outputs were handed to the producer."""

    def acknowledge(self, error: Any, message: Any = None) -> None:
        """Delivery callback for each output of the batch (``on_delivery``)."""
        self.pending -= 1
        if error is not None:
            self.errors.append(str(error))

    @property
    def done(self) -> bool:
        return self.pending <= 0

    @property
    def failed(self) -> bool:
        return bool(self.errors)


class DeliveryLedger:
    """Batches in consumption order; releases commit offsets for the delivered prefix."""

    def __init__(self) -> None:
        self._batches: deque[BatchDelivery] = deque()

    def open(
        self, last_offsets: dict[TopicPartition, int], outputs: int, oldest_timestamp: float = 0.0
    ) -> BatchDelivery:
        batch = BatchDelivery(dict(last_offsets), outputs, oldest_timestamp)
        self._batches.append(batch)
        return batch

    @property
    def in_flight(self) -> int:
        return sum(batch.pending for batch in self._batches)

    def oldest_pending_s(self, now: float | None = None) -> float:
        """Seconds the oldest batch with unacknowledged outputs has waited (0 if none)."""
        for batch in self._batches:
            if not batch.done:
                return max(0.0, (time.monotonic() if now is None else now) - batch.opened_at)
        return 0.0

    def failure(self) -> str | None:
        """The first delivery error of any open batch, if one failed."""
        for batch in self._batches:
            if batch.failed:
                return batch.errors[0]
        return None

    def release(
        self, on_batch: Callable[[BatchDelivery], None] | None = None
    ) -> dict[TopicPartition, int]:
        """Next offsets to commit (last delivered offset + 1) for the delivered prefix.

        ``on_batch`` is called with each released batch (e.g. to record its latency).
        """
        offsets: dict[TopicPartition, int] = {}
        while self._batches and self._batches[0].done and not self._batches[0].failed:
            batch = self._batches.popleft()
            if on_batch is not None:
                on_batch(batch)
            for partition, offset in batch.last_offsets.items():
                offsets[partition] = max(offsets.get(partition, -1), offset + 1)
        return offsets

    def clear(self) -> None:
        """Forget every open batch (after a rewind or a revocation)."""
        self._batches.clear()


class RetryBackoff:
    """Exponential backoff between attempts to deliver outputs the broker refused.

    Each failure doubles the wait, from ``initial_s`` up to ``max_s``; a success resets it.
    The engine consumes nothing while :meth:`waiting`, so a refused output is retried at a
    falling rate instead of in a tight rewind loop.

    >>> backoff = RetryBackoff(initial_s=1.0, max_s=4.0)
    >>> [backoff.fail(now=0.0) for _ in range(4)]
    [1.0, 2.0, 4.0, 4.0]
    >>> backoff.waiting(now=3.9), backoff.waiting(now=4.0)
    (True, False)
    >>> backoff.succeed(); backoff.fail(now=10.0)
    1.0
    """

    def __init__(self, initial_s: float = 0.5, max_s: float = 30.0) -> None:
        self.initial_s, self.max_s = initial_s, max_s
        self.failures = 0
        self._until = 0.0

    def fail(self, now: float | None = None) -> float:
        """Record a failure; return the wait before the next attempt."""
        delay = min(self.max_s, self.initial_s * 2.0**self.failures)
        self.failures += 1
        self._until = (time.monotonic() if now is None else now) + delay
        return delay

    def succeed(self) -> None:
        self.failures = 0
        self._until = 0.0

    def waiting(self, now: float | None = None) -> bool:
        return (time.monotonic() if now is None else now) < self._until
