"""What an engine does with one consumed batch, whatever Kafka client consumed it.

The engines differ only in transport (:mod:`streams.engine.native` on confluent-kafka,
:mod:`streams.engine.faust_engine` on faust-streaming); both hand each batch to one
:class:`BatchProcessor`, so a decision, an explanation or a dead letter is built by the
same code in both, with the same lineage headers::

    ConsumedRecord x N  ──>  decode + validate ──> rejects become dead letters
                             score, decide, explain with the champion (one call per batch)
                             shadow-score with the challenger, if one is set
                             count outcomes; feed the champion's monitors
                        <──  Output x M  (topic, key, value bytes, headers), in input order

The processor neither consumes nor produces nor commits: the engine sends the outputs and
lets the batch's offsets advance only once they are acknowledged. It reads the serving
models through a callable, so a hot swap decided by the engine at a batch boundary is what
the next :meth:`BatchProcessor.process` uses.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from itertools import chain, repeat
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import numpy as np

from models.featurespec import Reject
from models.policy import DECISIONS
from models.scoring_model import ScoringModel
from schemas.contracts import DEAD_LETTER_HEADERS
from schemas.version import SCORER_VERSION
from streams.core.dead_letter_size import dlq_budget, fit_dead_letter
from streams.core.decode import DecodedBatch, dead_letter, decode_events
from streams.core.scoring import ScoredBatch, score_batch
from streams.engine.monitors import EngineMonitors
from streams.engine.records import (
    EVENT_ID_HEADER,
    ConsumedRecord,
    Headers,
    Output,
    lineage_headers,
)
from streams.observability import ScorerMetrics
from streams.settings import Settings

if TYPE_CHECKING:
    from streams.engine.model_watch import ServingModels

_REASON_HEADER, _OFFSET_HEADER = DEAD_LETTER_HEADERS
_PARTITION, _OFFSET = attrgetter("partition"), attrgetter("offset")
"""A :class:`ConsumedRecord`'s partition and offset (C-level getters, for whole batches)."""


class BatchProcessor:
    """Turns a batch of consumed events into decisions, explanations, dead letters, alerts.

    ``serving`` returns the models to score with (the engine's :class:`ModelWatcher`
    decides when they change).
    """

    def __init__(
        self,
        settings: Settings,
        serving: Callable[[], ServingModels],
        metrics: ScorerMetrics,
        monitors: EngineMonitors | None,
    ) -> None:
        self.settings, self.serving, self.metrics = settings, serving, metrics
        self.monitors = monitors

    def process(self, records: Sequence[ConsumedRecord]) -> list[Output]:
        """The outputs of one batch: for each valid event its decision and explanation
        (and shadow decision), for each invalid one its dead letter, then monitor records."""
        if not records:
            return []
        self.metrics.batch_size.observe(len(records))
        received = time.time()
        serving = self.serving()
        decoded = decode_events([r.value for r in records], spec=serving.champion.spec)
        started = time.perf_counter()
        scored = score_batch(serving.champion, decoded.columns, received_at=received)
        shadow = (
            score_batch(
                serving.challenger,
                decoded.columns,
                received_at=received,
                shadow=True,
                explain=False,
            )
            if serving.challenger is not None
            else None
        )
        self.metrics.scoring_seconds.observe(time.perf_counter() - started)

        settings = self.settings
        outputs = _scored_outputs(
            scored, lineage_headers(serving.champion),
            settings.topic_decisions, settings.topic_explanations,
        )  # fmt: skip
        if shadow is not None and serving.challenger is not None:
            outputs += _scored_outputs(
                shadow, lineage_headers(serving.challenger), settings.topic_decisions_shadow
            )
        rejects = [(r.index, r.reason, r.detail) for r in decoded.rejects]
        rejects += [(decoded.rows[r.index], r.reason, r.detail) for r in scored.rejects]
        outputs += self._dead_letters(records, rejects)
        self.metrics.events.labels("scored").inc(len(scored.rows))
        self.metrics.events.labels("rejected").inc(len(rejects))
        counts = np.bincount(scored.bands, minlength=len(DECISIONS)).tolist()
        for label, count in zip(DECISIONS, counts, strict=True):
            if count:
                self.metrics.decisions.labels(label).inc(count)
        if scored.rows and self.monitors is not None:
            outputs += self._monitor(serving.champion, scored, decoded, records)
        return outputs

    def _monitor(
        self,
        champion: ScoringModel,
        scored: ScoredBatch,
        decoded: DecodedBatch,
        records: Sequence[ConsumedRecord],
    ) -> list[Output]:
        """Feed the scored rows to the champion's monitors; their records are outputs too.

        The event times are those the decoder parsed, the contexts those the decisions
        carry: nothing is read from the events again."""
        assert self.monitors is not None
        times, rows = decoded.event_times, decoded.rows
        if len(scored.rows) == len(records):  # every record scored: nothing to select
            sources = records
        else:
            times = list(map(times.__getitem__, scored.rows))
            sources = list(map(records.__getitem__, map(rows.__getitem__, scored.rows)))
        return self.monitors.observe(
            champion,
            scored,
            times,
            scored.contexts,
            list(map(_PARTITION, sources)),
            list(map(_OFFSET, sources)),
        )

    def _dead_letters(
        self, records: Sequence[ConsumedRecord], rejects: list[tuple[int, Any, str]]
    ) -> list[Output]:
        return dead_letter_outputs(self.settings, self.metrics, records, rejects)


def _scored_outputs(
    scored: ScoredBatch, headers: Headers, topic: str, explanations_topic: str | None = None
) -> list[Output]:
    """A batch's decisions on ``topic`` (each followed by its explanation on
    ``explanations_topic``, if given), keyed by entity, with the event id and ``headers``.

    The records are encoded by :meth:`ScoredBatch.encoded`; an event's header list is built
    once and shared by its two outputs.
    """
    decisions, explanations = scored.encoded()  # a shadow batch has no explanations
    keys = list(map(str.encode, scored.entity_ids))
    event_headers = [[(EVENT_ID_HEADER, i), *headers] for i in map(str.encode, scored.event_ids)]
    decided = zip(repeat(topic), keys, decisions, event_headers)
    if not explanations_topic:
        return list(decided)
    explained = zip(repeat(explanations_topic), keys, explanations, event_headers)
    return list(chain.from_iterable(zip(decided, explained, strict=True)))


def dead_letter_outputs(
    settings: Settings,
    metrics: ScorerMetrics,
    records: Sequence[ConsumedRecord],
    rejects: Sequence[tuple[int, Any, str]],
) -> list[Output]:
    """One dead-letter output per ``(index into records, reason, detail)``, counted; a letter
    over the size budget (``settings.dlq_max_bytes``, see :mod:`streams.core.dead_letter_size`)
    is cut to fit, and counted as cut."""
    outputs: list[Output] = []
    max_bytes = dlq_budget(settings.dlq_max_bytes, None)
    for index, reason, detail in rejects:
        source = records[index]
        letter = dead_letter(
            Reject(index, reason, detail),
            topic=source.topic,
            partition=source.partition,
            offset=source.offset,
            key=source.key,
            value=source.value,
            timestamp_ms=source.timestamp_ms,
            scorer_version=SCORER_VERSION,
        )
        fitted = fit_dead_letter(letter, key=source.key, original=source.value, max_bytes=max_bytes)
        outputs.append(
            (
                settings.topic_dlq,
                fitted.key,
                fitted.value,
                [
                    (_REASON_HEADER, str(reason).encode()),
                    (_OFFSET_HEADER, str(source.offset).encode()),
                ],
            )
        )
        metrics.dlq.labels(str(reason)).inc()
        if fitted.truncated:
            metrics.dlq_truncated.labels(str(reason)).inc()
    return outputs
