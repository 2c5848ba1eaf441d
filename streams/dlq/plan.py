"""What a republish does with each dead letter it reads: the pure part, no Kafka.

Each selected dead letter gets one :class:`Outcome`. Its original bytes (or, with a fix,
the edited bytes) are checked exactly as the scorer would check them: the real decoder
(:func:`streams.core.decode.decode_events`) and the serving model's feature spec. Only
records that pass are published; the others stay in the DLQ, unrepublished, with the reason
they would be rejected again, so a better fix can republish them later. A letter that was cut
to fit the DLQ (``original_truncated``) holds only the first bytes of its record: it is never
republished (a prefix is not the record) and is listed as ``truncated``, with the length and
sha256 of the whole record, to be sent again from upstream.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import ValidationError

from models.featurespec import FeatureSpec, Reject
from schemas.contracts import DeadLetter
from streams.core.decode import decode_events
from streams.dlq.fix import Fix, FixNotApplicable
from streams.dlq.ledger import RepublishLedger


class Outcome(StrEnum):
    PUBLISH = "publish"
    STILL_REJECTED = "still-rejected"
    FIX_FAILED = "fix-failed"
    ALREADY_REPUBLISHED = "already-republished"
    UNREADABLE = "unreadable"
    TRUNCATED = "truncated"


@dataclass(frozen=True)
class DlqRecord:
    """One record as read from the dead-letter topic."""

    partition: int
    offset: int
    value: bytes | None
    timestamp_ms: int = 0


@dataclass(frozen=True)
class Selection:
    """Which dead letters to republish; every condition left unset matches all.

    ``from_offset``/``to_offset`` are DLQ offsets, both inclusive, in every selected
    partition; ``max_records`` caps the records published, oldest dead letters first.
    """

    reasons: frozenset[str] = frozenset()
    source_topic: str | None = None
    partition: int | None = None
    from_offset: int | None = None
    to_offset: int | None = None
    max_records: int | None = None

    def covers(self, partition: int, offset: int) -> bool:
        return (
            (self.partition is None or partition == self.partition)
            and (self.from_offset is None or offset >= self.from_offset)
            and (self.to_offset is None or offset <= self.to_offset)
        )

    def matches(self, letter: DeadLetter) -> bool:
        return (not self.reasons or letter.reason.value in self.reasons) and (
            self.source_topic is None or letter.source_topic == self.source_topic
        )


@dataclass(frozen=True)
class Candidate:
    """A selected dead letter and what the republish does with it."""

    partition: int
    offset: int
    outcome: Outcome
    letter: DeadLetter | None
    value: bytes | None = None
    detail: str = ""

    @property
    def key(self) -> bytes | None:
        return None if self.letter is None else self.letter.source_key()


@dataclass
class RepublishPlan:
    candidates: list[Candidate] = field(default_factory=list)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for c in self.candidates if c.outcome is outcome)

    @property
    def to_publish(self) -> list[Candidate]:
        return [c for c in self.candidates if c.outcome is Outcome.PUBLISH]


def check_values(values: Sequence[bytes], spec: FeatureSpec | None) -> list[Reject | None]:
    """For each value, the scorer's reject (decoder, then the feature spec), or None."""
    verdicts: list[Reject | None] = [None] * len(values)
    decoded = decode_events(values)
    for reject in decoded.rejects:
        verdicts[reject.index] = reject
    if spec is not None and decoded.events:
        vectorised = spec.vectorise([event["features"] for event in decoded.events])
        for reject in vectorised.rejects:
            row = decoded.rows[reject.index]
            verdicts[row] = Reject(row, reject.reason, reject.detail)
    return verdicts


def _read(record: DlqRecord) -> DeadLetter | str:
    try:
        return DeadLetter.model_validate_json(record.value or b"")
    except ValidationError as exc:
        return f"not a dead letter: {exc.errors()[0]['msg']}"


def _cut(letter: DeadLetter) -> str:
    kept = len(letter.original_value())
    return (
        f"the dead letter was cut to fit the DLQ: it keeps {kept} of the record's "
        f"{letter.original_size_bytes} bytes (sha256 {letter.original_sha256}); "
        "send the record again from upstream"
    )


def plan_republish(
    records: Sequence[DlqRecord],
    selection: Selection,
    ledgers: Mapping[int, RepublishLedger],
    *,
    fix: Fix | None = None,
    spec: FeatureSpec | None = None,
    again: bool = False,
) -> RepublishPlan:
    """Decide each selected record's outcome, oldest first (see module doc)."""
    ordered = sorted(records, key=lambda r: (r.timestamp_ms, r.partition, r.offset))
    candidates: list[Candidate] = []
    pending: list[tuple[int, bytes]] = []  # (index in candidates, value to check)
    for record in ordered:
        if not selection.covers(record.partition, record.offset):
            continue
        letter = _read(record)
        where = (record.partition, record.offset)
        if isinstance(letter, str):
            if not selection.reasons:
                candidates.append(Candidate(*where, Outcome.UNREADABLE, None, detail=letter))
            continue
        if not selection.matches(letter):
            continue
        ledger = ledgers.get(record.partition)
        if not again and ledger is not None and ledger.contains(record.offset):
            candidates.append(Candidate(*where, Outcome.ALREADY_REPUBLISHED, letter))
            continue
        if letter.original_truncated:
            candidates.append(Candidate(*where, Outcome.TRUNCATED, letter, detail=_cut(letter)))
            continue
        value = letter.original_value()
        if fix is not None:
            try:
                value = fix.apply(value)
            except FixNotApplicable as exc:
                candidates.append(Candidate(*where, Outcome.FIX_FAILED, letter, detail=str(exc)))
                continue
        pending.append((len(candidates), value))
        candidates.append(Candidate(*where, Outcome.PUBLISH, letter, value))
    verdicts = check_values([value for _, value in pending], spec)
    for (index, _), verdict in zip(pending, verdicts, strict=True):
        if verdict is not None:
            candidate = candidates[index]
            candidates[index] = Candidate(
                candidate.partition,
                candidate.offset,
                Outcome.STILL_REJECTED,
                candidate.letter,
                candidate.value,
                f"{verdict.reason.value}: {verdict.detail}",
            )
    return RepublishPlan(_cap(candidates, selection.max_records))


def _cap(candidates: list[Candidate], max_records: int | None) -> list[Candidate]:
    """Keep every candidate up to the ``max_records``-th one to publish."""
    if max_records is None:
        return candidates
    kept: list[Candidate] = []
    published = 0
    for candidate in candidates:
        if candidate.outcome is Outcome.PUBLISH:
            if published == max_records:
                break
            published += 1
        kept.append(candidate)
    return kept
