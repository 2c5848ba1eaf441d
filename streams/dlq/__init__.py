"""Replaying dead letters: select them, fix them, check them, publish them once.

- :mod:`streams.dlq.fix`     the fix file: declarative edits of an event's fields
- :mod:`streams.dlq.ledger`  which dead letters were already replayed (kept in Kafka)
- :mod:`streams.dlq.plan`    the pure decision for each selected dead letter
- :mod:`streams.dlq.replay`  the Kafka side: read the DLQ, publish, record the ledger

Errors derive from :class:`ReplayError`::

    ScorerError
    └── ReplayError          a replay cannot be done as asked
        └── FixFileError     the fix file cannot be read or is invalid
"""

from __future__ import annotations

from schemas.errors import ScorerError


class ReplayError(ScorerError):
    """A dead-letter replay cannot be done as asked."""


class FixFileError(ReplayError):
    """The fix file cannot be read, or it is not a valid fix."""
