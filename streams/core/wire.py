"""The scoring core's output records as msgspec structs, encoded a whole batch at a time.

A decision and an explanation are built as :class:`DecisionRecord` and
:class:`ExplanationRecord`: typed structs, as cheap to build as a tuple, whose fields are
those of :class:`schemas.contracts.Decision` and :class:`~schemas.contracts.Explanation` in
the same order. :func:`encode_records` gives each record's JSON bytes (one C-level call per
record, no Python per record); :func:`as_dicts` gives the plain dicts the contracts validate.
A value every record of a batch shares (the model, the thresholds, ...) is encoded once, by
:func:`shared`, and each record's JSON copies its bytes. An explanation's contributions are
a struct too, made once per feature spec by :func:`contributions_type`, so a row of floats
becomes an object keyed by feature name without a dict per event. Records hold no reference
cycles, so none is tracked by the garbage collector (``gc=False``): a batch's thousands of
records do not trigger collections.

>>> Contributions = contributions_type(("salary", "car"))
>>> reason = ReasonRecord("RC_CAR", "car", "car raised the risk", 0.5)
>>> encode_records([reason, Contributions(1.0, -0.25)])
[b'{"code":"RC_CAR","feature":"car","text":"car raised the risk","contribution":0.5}', \
b'{"salary":1.0,"car":-0.25}']
>>> as_dicts([Contributions(1.0, -0.25)])
[{'salary': 1.0, 'car': -0.25}]
>>> salary = shared(1.0)  # encoded once, for every record of a batch
>>> encode_records([Contributions(salary, -0.25)]) == encode_records([Contributions(1.0, -0.25)])
True
>>> as_dicts([Contributions(salary, -0.25)])
[{'salary': 1.0, 'car': -0.25}]
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Final

import msgspec

__all__ = [
    "DecisionRecord",
    "ExplanationRecord",
    "ReasonRecord",
    "as_dicts",
    "contributions_type",
    "encode_records",
    "shared",
]

_ENCODER: Final = msgspec.json.Encoder()
_DECODE: Final = msgspec.json.Decoder().decode


class ReasonRecord(msgspec.Struct, gc=False):
    """One principal reason of an adverse decision (:class:`schemas.contracts.ReasonCode`)."""

    code: str
    feature: str
    text: str
    contribution: float


class DecisionRecord(msgspec.Struct, gc=False):
    """A decision, field for field :class:`schemas.contracts.Decision`; ``thresholds``,
    ``model`` and ``latency_ms``, the same for a whole batch, are :func:`shared`."""

    schema_version: int
    event_id: str
    entity_id: str
    decision: str
    score: float
    thresholds: msgspec.Raw
    reason_codes: list[ReasonRecord]
    model: msgspec.Raw
    input_hash: str
    event_time: str
    context: dict[str, str]
    scored_at: str
    latency_ms: msgspec.Raw
    shadow: bool


class ExplanationRecord(msgspec.Struct, gc=False):
    """An explanation, field for field :class:`schemas.contracts.Explanation`;
    ``contributions`` is an instance of the spec's :func:`contributions_type`; ``model``,
    the same for a whole batch, is :func:`shared`."""

    schema_version: int
    event_id: str
    entity_id: str
    model: msgspec.Raw
    method: str
    output_space: str
    base_value: float
    output_value: float
    contributions: Any
    top_features: list[str]
    additivity_error: float


@lru_cache(maxsize=64)
def contributions_type(names: tuple[str, ...]) -> type[msgspec.Struct]:
    """A struct with one float field per feature, encoded under the feature's own name
    (positional fields ``f0``, ``f1``, ... renamed, so any feature name is allowed)."""
    fields = [(f"f{i}", float) for i in range(len(names))]
    rename = {f"f{i}": name for i, name in enumerate(names)}
    return msgspec.defstruct("Contributions", fields, rename=rename, gc=False)


def shared(value: Any) -> msgspec.Raw:
    """``value`` as JSON, encoded once for the many records that share it (a JSON value:
    :func:`as_dicts` reads it back; a float must be finite)."""
    return msgspec.Raw(_ENCODER.encode(value))


def encode_records(records: Sequence[msgspec.Struct]) -> list[bytes]:
    """Each record's JSON bytes."""
    return list(map(_ENCODER.encode, records))


def as_dicts(records: Sequence[msgspec.Struct]) -> list[dict[str, Any]]:
    """The records as plain dicts (nested structs too, :func:`shared` fields decoded),
    shaped as the contracts read them."""
    converted: list[dict[str, Any]] = msgspec.to_builtins(records, builtin_types=(msgspec.Raw,))
    for record in converted:
        for name, value in record.items():
            if type(value) is msgspec.Raw:
                record[name] = _DECODE(value)
    return converted
