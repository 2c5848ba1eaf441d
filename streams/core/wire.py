"""The scoring core's output records, rendered a whole batch at a time from columns.

A decision or an explanation is a JSON object whose fields are those of
:class:`schemas.contracts.Decision` or :class:`~schemas.contracts.Explanation`, in the same
order. Building one Python object per record and encoding it is the hot path's floor in
CPython, so a batch's records are not built one by one: a :class:`Template` lists a record's
fields, each either a constant (the model, the thresholds, the batch's ``scored_at``: the same
for every record, encoded once) or a column of the batch (event ids, scores, a matrix of
contributions), and :func:`Template.render` hands the columns to the compiled renderer
(:mod:`streams.core._native`, in Rust), which writes every record's JSON in one call.

>>> import numpy as np
>>> record = Template()
>>> record.constant("schema_version", 1)
>>> record.column("event_id", "str", ["e-1", 'e-"2"'])
>>> record.column("score", "f64", np.array([0.25, float("nan")]))
>>> record.items("top", fragments=[b'"car"', b'"salary"'], index=np.array([[1, 0], [0, 1]]))
>>> lines = record.render(2)
>>> lines[0]
b'{"schema_version":1,"event_id":"e-1","score":0.25,"top":["salary","car"]}'
>>> as_dicts(lines)[1]
{'schema_version': 1, 'event_id': 'e-"2"', 'score': None, 'top': ['car', 'salary']}

The renderer's segments (:func:`streams.core._native.render`) are: ``const`` bytes, ``str``
(a JSON string per row), ``raw`` (pre-encoded JSON per row), ``f64`` (a float column;
non-finite is ``null``, as msgspec writes it), ``sha256`` (the hex digest of each row's
bytes; ``sha256_objects``, of each object of one JSON array of flat objects;
``sha256_digests``, each row's digest computed already), ``strmap``
(an object of str to str per row) and ``items`` (a list of fragments per row, each
optionally followed by a float: reason codes, top features, contributions).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import msgspec
import numpy as np

from streams.core._native import render

__all__ = ["Template", "as_dicts", "encoded"]

_ENCODE: Final = msgspec.json.Encoder().encode
_DECODE: Final = msgspec.json.Decoder().decode


def encoded(value: Any) -> bytes:
    """``value`` as JSON bytes (a constant of a :class:`Template`, a fragment of an item)."""
    return _ENCODE(value)


class Template:
    """One record's fields in order: constants, columns of the batch, and lists of items.

    Adjacent constants are merged into one segment, so a record costs the renderer one copy
    per constant run and one write per column value.
    """

    def __init__(self) -> None:
        self._segments: list[tuple[Any, ...]] = []
        self._pending = bytearray(b"{")  # constant bytes not yet made a segment
        self._fields = 0

    def _key(self, name: str) -> None:
        if self._fields:
            self._pending += b","
        self._pending += _ENCODE(name) + b":"
        self._fields += 1

    def _flush(self) -> None:
        self._segments.append(("const", bytes(self._pending)))
        self._pending = bytearray()

    def constant(self, name: str, value: Any) -> None:
        """A field whose value every record of the batch shares."""
        self._key(name)
        self._pending += _ENCODE(value)

    def column(self, name: str, kind: str, values: Any) -> None:
        """A field with one value per record: ``kind`` is a renderer segment (``str``,
        ``raw``, ``f64``, ``sha256``, ``strmap``); an ``f64`` column is a 1-D array."""
        self._key(name)
        self._flush()
        if kind == "f64":
            values = np.ascontiguousarray(values, dtype=np.float64)
        self._segments.append((kind, values))

    def segment(self, name: str, segment: tuple[Any, ...]) -> None:
        """A field rendered by a renderer segment given as it is."""
        self._key(name)
        self._flush()
        self._segments.append(segment)

    def items(
        self,
        name: str,
        *,
        fragments: Sequence[bytes],
        index: np.ndarray | None = None,
        values: np.ndarray | None = None,
        counts: np.ndarray | None = None,
        close: bytes = b"",
        brackets: bytes = b"[]",
    ) -> None:
        """A field holding a list (or, with ``brackets=b"{}"``, an object) of items per record.

        Item ``t`` of record ``i`` is ``fragments[index[i, t]]`` (``fragments[t]`` without an
        index), then ``values[i, t]`` and ``close`` if values are given; record ``i`` has
        ``counts[i]`` items (all of them without counts)."""
        self._key(name)
        self._pending += brackets[:1]
        self._flush()
        self._segments.append(
            (
                "items",
                list(fragments),
                None if index is None else np.ascontiguousarray(index, dtype=np.int64),
                None if values is None else np.ascontiguousarray(values, dtype=np.float64),
                None if counts is None else np.ascontiguousarray(counts, dtype=np.int64),
                b",",
                close,
            )
        )
        self._pending += brackets[1:]

    def render(self, count: int) -> list[bytes]:
        """The JSON bytes of ``count`` records (every column holds ``count`` values)."""
        return render(count, [*self._segments, ("const", bytes(self._pending) + b"}")])


def as_dicts(lines: Sequence[bytes]) -> list[dict[str, Any]]:
    """Rendered records as plain dicts, shaped as the contracts read them."""
    return [_DECODE(line) for line in lines]
