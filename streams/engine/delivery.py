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
