"""How large a dead letter may be, and how a larger one is cut to fit.

A dead letter carries the rejected record's bytes base64-encoded (4/3 of their size) beside its
reason and coordinates, and the dead-letter topic refuses a record over its
``max.message.bytes``. A refused letter would stop an engine (the native engine retries it
for ever, the Faust engine exits) and meet it again after a restart, so every letter is held
to one budget, the same for both engines: its record value plus its key, as produced, is at
most ``max_bytes``.

- The budget is ``SCORER_DLQ_MAX_BYTES`` if set, lowered to what the DLQ topic accepts: 63/64
  of its ``max.message.bytes`` (:func:`budget_for_topic`; the rest is room for the record's
  headers and batch framing, and for lz4, which can grow incompressible bytes by 0.4%), read
  when an engine starts. When that cannot be read and nothing is set, it is
  :data:`DEFAULT_DLQ_MAX_BYTES`, the budget of the 2 MiB ``infra/topics.yaml`` gives the
  topic. It never exceeds :data:`LARGEST_DLQ_MAX_BYTES` (the native producer's 64 MiB).
- A letter within the budget is sent as it is. A larger one is cut, deterministically: it
  keeps its reason, detail, coordinates, key and event id; ``original_value_b64`` keeps the
  longest prefix of the value that fits (a multiple of 3 bytes, so its base64 has no padding);
  ``original_truncated``, ``original_size_bytes`` and ``original_sha256`` say so and describe
  the whole value. A key too large to fit beside the letter is left out of the letter
  (``source_key_b64`` null; the record keeps it as its Kafka key), and out of the record too
  if even that does not fit. Nothing is dropped: every rejected record has its letter.

>>> from models.featurespec import Reject
>>> from schemas.contracts import DeadLetter, RejectReason
>>> from streams.core.decode import dead_letter
>>> value = b'{"event_id": "e-1", "note": "' + b"x" * 30_000 + b'"}'
>>> letter = dead_letter(Reject(0, RejectReason.SCHEMA_VIOLATION, "too long"), topic="events",
...     partition=2, offset=9, key=b"c-9", value=value, timestamp_ms=None, scorer_version="1")
>>> fit_dead_letter(letter, key=b"c-9", original=value, max_bytes=50_000).truncated
False
>>> fitted = fit_dead_letter(letter, key=b"c-9", original=value, max_bytes=MIN_DLQ_MAX_BYTES)
>>> fitted.truncated, len(fitted.value) + len(fitted.key or b"") <= MIN_DLQ_MAX_BYTES
(True, True)
>>> cut = DeadLetter.model_validate_json(fitted.value)
>>> cut.original_size_bytes, value.startswith(cut.original_value()), cut.source_offset
(30031, True, 9)
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any, Final

import orjson

__all__ = [
    "DEFAULT_DLQ_MAX_BYTES",
    "LARGEST_DLQ_MAX_BYTES",
    "MIN_DLQ_MAX_BYTES",
    "FittedLetter",
    "budget_for_topic",
    "dlq_budget",
    "fit_dead_letter",
]

FRAMING_SHARE: Final = 64
"""1/64 of the topic's limit is kept free for headers, batch framing and lz4's worst case."""
TOPICS_FILE_DLQ_LIMIT: Final = 2 * 1024 * 1024
"""The dead-letter topic's ``max.message.bytes`` in ``infra/topics.yaml``."""
PRODUCER_LIMIT: Final = 64 * 1024 * 1024
"""What the native engine's producer hands to the broker (``native.MAX_OUTPUT_BYTES``)."""
MIN_DLQ_MAX_BYTES: Final = 16 * 1024
"""The smallest budget: a letter's fields alone take up to about 13 kB (a 2,000-character
detail, escaped), so a smaller one could not hold a letter at all."""


def budget_for_topic(max_message_bytes: int) -> int:
    """The budget of a letter for a topic whose ``max.message.bytes`` is the argument.

    >>> budget_for_topic(2 * 1024 * 1024), budget_for_topic(1_048_588)
    (2064384, 1032204)
    """
    return max_message_bytes - max_message_bytes // FRAMING_SHARE


DEFAULT_DLQ_MAX_BYTES: Final = budget_for_topic(TOPICS_FILE_DLQ_LIMIT)
"""2,064,384 bytes: the budget when neither the setting nor the topic's limit is known. It fits
the DLQ of ``infra/topics.yaml`` and holds the whole letter of a record of Kafka's default
1 MiB limit (about 1.4 MB)."""
LARGEST_DLQ_MAX_BYTES: Final = budget_for_topic(PRODUCER_LIMIT)
"""The largest budget: what the native engine's producer sends, less the framing share."""


def dlq_budget(configured: int | None, topic_limit: int | None) -> int:
    """The budget: ``configured`` (``SCORER_DLQ_MAX_BYTES``) lowered to what a DLQ topic of
    ``max.message.bytes`` ``topic_limit`` accepts; each may be unknown (None).

    >>> dlq_budget(None, None), dlq_budget(None, 10 * 1024 * 1024)
    (2064384, 10321920)
    >>> dlq_budget(500_000, 2 * 1024 * 1024), dlq_budget(4_000_000, 2 * 1024 * 1024)
    (500000, 2064384)
    """
    if topic_limit is None:
        budget = DEFAULT_DLQ_MAX_BYTES if configured is None else configured
    else:
        budget = budget_for_topic(topic_limit)
        if configured is not None:
            budget = min(budget, configured)
    return max(MIN_DLQ_MAX_BYTES, min(budget, LARGEST_DLQ_MAX_BYTES))


@dataclass(frozen=True)
class FittedLetter:
    """A dead letter as produced: its record value and key, and whether it was cut."""

    value: bytes
    key: bytes | None
    truncated: bool


def fit_dead_letter(
    letter: dict[str, Any], *, key: bytes | None, original: bytes | None, max_bytes: int
) -> FittedLetter:
    """``letter`` (a DeadLetter as a JSON-ready dict, carrying ``original`` whole) serialised,
    and cut as the module doc says if it and ``key`` together exceed ``max_bytes``."""
    encoded = orjson.dumps(letter)
    if len(encoded) + len(key or b"") <= max_bytes:
        return FittedLetter(encoded, key, truncated=False)
    whole = original or b""
    cut = {
        **letter,
        "original_value_b64": "",
        "original_truncated": True,
        "original_size_bytes": len(whole),
        "original_sha256": hashlib.sha256(whole).hexdigest(),
    }
    room = max_bytes - len(orjson.dumps(cut)) - len(key or b"")
    if room < 0 and cut.get("source_key_b64") is not None:
        cut["source_key_b64"] = None  # the record's own key still names it
        room = max_bytes - len(orjson.dumps(cut)) - len(key or b"")
    if room < 0 and key:
        key = None
        room = max_bytes - len(orjson.dumps(cut))
    # base64 turns each 3 bytes into 4 characters, none of which JSON escapes
    cut["original_value_b64"] = base64.b64encode(whole[: max(0, room) // 4 * 3]).decode("ascii")
    return FittedLetter(orjson.dumps(cut), key, truncated=True)
