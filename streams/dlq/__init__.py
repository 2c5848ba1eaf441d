"""Republishing dead letters: select them, fix them, check them, publish them once.

- :mod:`streams.dlq.fix`     the fix file: declarative edits of an event's fields
- :mod:`streams.dlq.ledger`  which dead letters were already republished (kept in Kafka)
- :mod:`streams.dlq.plan`    the pure decision for each selected dead letter
- :mod:`streams.dlq.republish`  the Kafka side: read the DLQ, publish, record the ledger

Its errors are :class:`~schemas.errors.RepublishError` and its
:class:`~schemas.errors.FixFileError` (the tree is drawn in :mod:`schemas.errors`).
"""
