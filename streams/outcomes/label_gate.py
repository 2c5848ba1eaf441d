"""Hold labels back while the records they join are still being read.

A label whose decision (or event) has not been read yet cannot join it. When a processor
catches up on a backlog (a start, a restart), the topics arrive interleaved by chance, so
the label topic's partitions are paused while any partition of the topics it joins has
records not yet read (by the high watermark of the last fetch). A partition that shows a
lag but delivers nothing for ``stall_seconds`` (e.g. the records of a transaction still
open) stops holding the labels back.
"""

from __future__ import annotations

import time

from confluent_kafka import Consumer, TopicPartition


class LabelGate:
    """Pauses ``labels`` partitions while any of ``sources`` lags (call :meth:`update`
    before each consume, :meth:`seen` when a source record was read)."""

    def __init__(
        self,
        consumer: Consumer,
        sources: list[TopicPartition],
        labels: list[TopicPartition],
        stall_seconds: float = 5.0,
    ) -> None:
        self.consumer, self.sources, self.labels = consumer, sources, labels
        self.stall_seconds = stall_seconds
        self._seen_at = time.monotonic()
        self.paused = False

    def seen(self) -> None:
        self._seen_at = time.monotonic()

    def update(self) -> None:
        lagging = False
        if self.sources and time.monotonic() - self._seen_at < self.stall_seconds:
            for tp in self.consumer.position(self.sources):
                low, high = self.consumer.get_watermark_offsets(tp, cached=True)
                if high < 0 or (high > low and tp.offset < high):
                    lagging = True
                    break
        if lagging != self.paused and self.labels:
            (self.consumer.pause if lagging else self.consumer.resume)(self.labels)
            self.paused = lagging
