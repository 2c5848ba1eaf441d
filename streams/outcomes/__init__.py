"""Outcomes: labels joined to the decisions they judge, and the one judge of every window.

- :mod:`streams.outcomes.join`        the label join: decisions remembered by event_id,
  labels joined to them once; parsing feedback records
- :mod:`streams.outcomes.label_gate`  labels held back while the decisions they join are
  still being read
- :mod:`streams.outcomes.owner`       the monitor owner's judgement, without Kafka
- :mod:`streams.outcomes.service`     ``scorer monitor``: the owner on Kafka, with
  transactions, checkpoints and restore
"""
