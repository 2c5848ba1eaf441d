"""Which dead letters of one DLQ partition were republished, stored as a consumer-group commit.

The republish tool's consumer group commits, per DLQ partition, the first offset that has not
been republished (every offset below it has), and in the commit's metadata the republished offsets
above it as ranges. Dead letters a run leaves behind (not selected, still rejected) keep
their place, so a later run with another selection still finds them, and a record is
republished once unless the operator asks again.

>>> ledger = RepublishLedger.decode(0, "").add([0, 1, 2, 5, 6, 9])
>>> ledger.committed, ledger.encode()
(3, '5-6,9')
>>> ledger.contains(1), ledger.contains(4), ledger.contains(6)
(True, False, True)
>>> ledger.add([3, 4]).committed, ledger.add([3, 4]).encode()
(7, '9')
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from schemas.errors import RepublishError

MAX_METADATA_CHARS = 4000
"""Kafka keeps commit metadata up to ``offset.metadata.max.bytes`` (4096 by default)."""


@dataclass(frozen=True)
class RepublishLedger:
    """``committed``: every offset below was republished; ``above``: republished ranges above."""

    committed: int
    above: tuple[tuple[int, int], ...] = ()

    @classmethod
    def decode(cls, committed: int, metadata: str | None) -> RepublishLedger:
        """The ledger of a commit (``committed`` < 0 means none: nothing republished yet)."""
        ranges: list[tuple[int, int]] = []
        for part in (metadata or "").split(","):
            if not part.strip():
                continue
            low, _, high = part.partition("-")
            try:
                ranges.append((int(low), int(high or low)))
            except ValueError:
                raise RepublishError(f"unreadable republish ledger {metadata!r}") from None
        return cls(max(committed, 0)).add(o for low, high in ranges for o in range(low, high + 1))

    def contains(self, offset: int) -> bool:
        return offset < self.committed or any(low <= offset <= high for low, high in self.above)

    def add(self, offsets: Iterable[int]) -> RepublishLedger:
        """The ledger with ``offsets`` republished too."""
        republished = {o for o in offsets if o >= self.committed}
        for low, high in self.above:
            republished.update(range(low, high + 1))
        committed = self.committed
        while committed in republished:
            republished.discard(committed)
            committed += 1
        ranges: list[tuple[int, int]] = []
        for offset in sorted(republished):
            if ranges and ranges[-1][1] == offset - 1:
                ranges[-1] = (ranges[-1][0], offset)
            else:
                ranges.append((offset, offset))
        return RepublishLedger(committed, tuple(ranges))

    def encode(self) -> str:
        """The commit metadata; :class:`RepublishError` if Kafka could not keep it."""
        text = ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in self.above)
        if len(text) > MAX_METADATA_CHARS:
            raise RepublishError(
                f"the republish ledger needs {len(text)} characters of commit metadata (at most "
                f"{MAX_METADATA_CHARS}); republish the oldest unrepublished dead letter (offset "
                f"{self.committed}) or keep a new ledger with --group"
            )
        return text
