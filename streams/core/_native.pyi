"""The hot path's compiled helpers (Rust, ``native/``): whole batches, no Python per event.

``rfc3339_seconds(times)`` gives each timestamp's ``datetime.fromisoformat(t).timestamp()``
if every one passes the decoder's fast timestamp check (``streams.core.decode._RFC3339`` and
a day that exists in its month), else None (also when one lies too far from 1970 for the
seconds to be divided exactly, beyond about 2255).

``render(count, segments)`` returns ``count`` bytes objects; line ``i`` is the concatenation
over ``segments`` of each segment's piece for row ``i``. A segment is a tuple, tag first:

- ``("const", b)``: the bytes ``b`` in every line.
- ``("str", values: list[str])``: a JSON string, escaped exactly as ``msgspec.json.encode``.
- ``("raw", values: list[bytes])``: each row's bytes as they are (pre-encoded JSON).
- ``("f64", values)``: a C-contiguous 1-D float64 buffer: the shortest round-trip number,
  ``null`` for NaN and infinities.
- ``("sha256", values: list[bytes])``: the lowercase hex SHA-256 of each row, as a JSON string.
- ``("sha256_objects", array: bytes)``: the same, of each object of ``array``, the JSON array
  of the ``count`` rows' flat objects (``b"[]"`` for none), cut at each ``},{``, which must
  occur exactly ``count - 1`` times: one encoder call for the batch, no bytes per row.
- ``("sha256_digests", digests: bytes)``: row ``i``'s 32-byte digest ``digests[32 * i:32 * i
  + 32]`` in lowercase hex, as a JSON string (``digests`` holds exactly 32 bytes per row).
- ``("strmap", values: list[dict[str, str]])``: a JSON object in the dict's insertion order.
- ``("items", fragments: list[bytes], index, values, counts, sep: bytes, close: bytes)``: row
  ``i`` writes ``counts[i]`` items joined by ``sep``; item ``t`` is
  ``fragments[index[i, t]]`` (``fragments[t]`` when ``index`` is None), then the float
  ``values[i, t]`` when ``values`` is given, then ``close``. ``index`` (int64) and ``values``
  (float64) are C-contiguous ``count x k`` buffers or None, not both None; ``counts`` is a 1-D
  int64 buffer of ``count`` entries in ``0..k``, or None for ``k`` in every row.

``dense_rows(events, layout, out)`` writes the feature dicts ``events`` into ``out``, a
writable C-contiguous float64 buffer of ``len(events) x width`` (every cell written), laid out by
``layout`` (:attr:`models.featurespec.FeatureSpec.layout`), and returns True; it returns False
(``out`` then holds no meaning) unless every dict holds exactly the layout's features, each
plainly valid: an exact float that is finite, an exact int within 2**53, None for a nullable
numeric feature, an exact bool for a boolean one, an exact str or int found in a categorical
feature's lookup as it is. The spec's own vectoriser gives such a batch the same matrix; it
decides every other batch. A malformed layout or buffer raises ``ValueError``/``TypeError``.

``plain_events(raws, layout, limits, out)`` reads the records ``raws`` (a list of bytes) into
``out``, a writable C-contiguous float64 buffer of ``len(raws) x width`` laid out by
``layout`` as for ``dense_rows``, and returns ``(event_ids, entity_ids, event_times,
contexts, seconds, versioned, digests)``: the events' ids, times as received, context dicts
(``{}`` when absent), times in epoch seconds (as ``rfc3339_seconds`` gives them), the
indices of the events that carry ``schema_version``, and each event's 32-byte sha256 of its
features with sorted keys as ``orjson.dumps(features, option=OPT_SORT_KEYS)`` writes them,
one after the other. It returns None (``out`` then holds no meaning) unless every record
is plain: see ``native/src/decode.rs``; the typed mirror of ``streams.core.decode`` then
gives the same fields and ``dense_rows`` the same matrix. ``limits`` are the contract's
``(MAX_ID_LENGTH, MAX_FEATURE_NAME_LENGTH, MAX_FEATURES, MAX_FEATURE_STRING_LENGTH,
MAX_CONTEXT_ENTRIES, MAX_CONTEXT_VALUE_LENGTH)``.

Everything is checked before a line is rendered: a list or buffer of the wrong length, shape,
dtype or layout, a fragment index or count out of range, an unknown tag or a malformed tuple
raises ``ValueError``, a wrong Python type ``TypeError``; the message names the segment
(numbered from 0) and the row.
"""

from typing import Any

def render(count: int, segments: list[tuple[Any, ...]]) -> list[bytes]: ...
def rfc3339_seconds(times: list[str]) -> list[float] | None: ...
def dense_rows(events: list[Any], layout: list[tuple[Any, ...]], out: Any) -> bool: ...
def plain_events(
    raws: list[bytes],
    layout: list[tuple[Any, ...]],
    limits: tuple[int, int, int, int, int, int],
    out: Any,
) -> (
    tuple[list[str], list[str], list[str], list[dict[str, str]], list[float], list[int], bytes]
    | None
): ...
