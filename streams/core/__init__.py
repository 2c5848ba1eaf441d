"""The scoring core: pure Python over batches; it knows nothing of Kafka.

Engines decode records into events, hand a batch to :func:`streams.core.scoring.score_batch`,
and move the resulting decisions, explanations and rejects to their topics.
"""
