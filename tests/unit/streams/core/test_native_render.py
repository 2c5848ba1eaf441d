"""streams.core._native.render: JSON lines from columns, checked against msgspec and Python.

Strings and string maps must be byte-equal to ``msgspec.json.encode``; floats must parse back
bit for bit; every malformed segment must raise before a line is rendered, naming the segment.
"""

from __future__ import annotations

import hashlib
import json
import random
import struct
from typing import Any

import msgspec
import numpy as np
import pytest

from streams.core._native import render

HOSTILE = [
    "",
    "plain",
    'say "hi"',
    "back\\slash\\",
    "".join(map(chr, range(0x20))),
    "\x7f del",
    "line\u2028para\u2029end",
    "emoji \U0001f600 and \U0010ffff",
    "combining e\u0301 a\u0308",
    'mixed "\\\n\r\t\b\f\x00\x1f\u00e9\u4e2d',
    "/slash </script>",
] + [chr(c) for c in range(0x20)]


def one_segment(segment: tuple[Any, ...], count: int) -> list[bytes]:
    return render(count, [segment])


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


def test_count_zero_renders_no_line() -> None:
    assert render(0, []) == []
    empty = np.zeros(0)
    assert render(0, [("const", b"{}"), ("str", []), ("f64", empty)]) == []


def test_const_and_raw_are_copied_as_they_are() -> None:
    raws = [b'{"a":1}', b"[]", b""]
    assert render(3, [("const", b"<"), ("raw", raws), ("const", b">")]) == [
        b'<{"a":1}>',
        b"<[]>",
        b"<>",
    ]
    assert render(2, []) == [b"", b""]


def test_str_is_byte_equal_to_msgspec() -> None:
    assert one_segment(("str", HOSTILE), len(HOSTILE)) == [msgspec.json.encode(s) for s in HOSTILE]
    assert one_segment(("str", ["\x1f"]), 1) == [b'"\\u001f"']


def test_str_that_cannot_be_utf8_encoded_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"segment 0 \(str\): row 1 cannot be encoded as UTF-8"):
        render(2, [("str", ["ok", "lone \ud800 surrogate"])])


def test_strmap_is_byte_equal_to_msgspec_in_insertion_order() -> None:
    maps = [
        {},
        {"b": "1", "a": "2"},
        {k: v for k, v in zip(HOSTILE, reversed(HOSTILE), strict=True)},
        {"\u2028": "\U0001f600", "": ""},
    ]
    assert one_segment(("strmap", maps), len(maps)) == [msgspec.json.encode(m) for m in maps]


@pytest.mark.parametrize(
    ("row", "message"),
    [({"a": 1}, "row 1: value must be str, got int"), ({2: "b"}, "row 1: key must be str")],
)
def test_strmap_with_a_non_str_entry_is_a_type_error(row: dict[Any, Any], message: str) -> None:
    with pytest.raises(TypeError, match=rf"segment 0 \(strmap\): {message}"):
        render(2, [("strmap", [{"ok": "fine"}, row])])


def random_floats(n: int, seed: int = 5) -> np.ndarray:
    rng = random.Random(seed)
    specials = [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 2.225073858507201e-308]
    specials += [1.7976931348623157e308, -1.7976931348623157e308, 100.0, 1e16, 1e-7, 0.1, 1.0]
    specials += [2.0**53, 2.0**53 + 2, -123456789.0, 1 / 3]
    randoms = [struct.unpack("<d", rng.randbytes(8))[0] for _ in range(n)]
    subnormals = [struct.unpack("<d", struct.pack("<Q", rng.getrandbits(52)))[0] for _ in range(50)]
    return np.array(specials + subnormals + randoms, dtype=np.float64)


def test_f64_parses_back_bit_for_bit_and_non_finite_is_null() -> None:
    values = random_floats(5000)
    lines = one_segment(("f64", values), len(values))
    for x, line in zip(values.tolist(), lines, strict=True):
        if np.isfinite(x):
            assert bits(json.loads(line)) == bits(x), line
            assert bits(msgspec.json.decode(line)) == bits(x), line
        else:
            assert line == b"null"
    special = np.array([np.nan, np.inf, -np.inf, -0.0])
    assert one_segment(("f64", special), 4) == [b"null", b"null", b"null", b"-0.0"]


def test_sha256_is_the_hex_digest() -> None:
    inputs = [b"", b"abc", bytes(range(256)) * 4096]
    lines = one_segment(("sha256", inputs), 3)
    assert [json.loads(line) for line in lines] == [hashlib.sha256(b).hexdigest() for b in inputs]
    assert lines[0] == b'"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"'


def test_sha256_digests_are_written_in_hex_row_by_row() -> None:
    inputs = [b"", b"abc", bytes(range(256))]
    digests = b"".join(hashlib.sha256(b).digest() for b in inputs)
    assert one_segment(("sha256_digests", digests), 3) == one_segment(("sha256", inputs), 3)
    assert one_segment(("sha256_digests", b""), 0) == []
    with pytest.raises(ValueError, match=r"segment 0 \(sha256_digests\): the digests are 95"):
        one_segment(("sha256_digests", digests[:-1]), 3)
    with pytest.raises(TypeError, match=r"the digests must be bytes"):
        one_segment(("sha256_digests", list(digests)), 3)


def test_sha256_objects_hashes_each_object_of_the_array() -> None:
    objects = [{}, {"a": 1}, {"b": "x", "c": [1]}]
    array = json.dumps(objects, separators=(",", ":")).encode()
    lines = one_segment(("sha256_objects", array), 3)
    expected = [
        hashlib.sha256(json.dumps(o, separators=(",", ":")).encode()).hexdigest() for o in objects
    ]
    assert [json.loads(line) for line in lines] == expected
    assert one_segment(("sha256_objects", b"[]"), 0) == []
    assert one_segment(("sha256_objects", b'[{"a":1}]'), 1) == one_segment(
        ("sha256", [b'{"a":1}']), 1
    )


@pytest.mark.parametrize(
    ("array", "count"),
    [
        (b'[{"a":"},{"}]', 1),  # the cut inside a string: one cut too many
        (b'[{"a":1},{"b":2}]', 3),
        (b'[{"a":1},{"b":2}]', 1),
        (b"[]", 1),
        (b"[{}]", 0),
        (b"{}", 1),
        (b"[{}", 1),
        (b"[1]", 1),
        (b"", 1),
    ],
)
def test_sha256_objects_refuses_an_array_it_cannot_cut_in_count(array: bytes, count: int) -> None:
    with pytest.raises(ValueError, match=f"of {count} objects"):
        one_segment(("sha256_objects", array), count)


REASONS = [
    b'{"code":"RC_X","feature":"x","contribution":',
    b'{"code":"RC_Y","feature":"y\\"q","contribution":',
]


def test_items_reason_codes_with_counts() -> None:
    index = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.int64)
    values = np.array([[0.5, -0.25], [1.0, 2.0], [3.0, 4.0]])
    counts = np.array([2, 0, 1], dtype=np.int64)
    segments = [
        ("const", b"["),
        ("items", REASONS, index, values, counts, b",", b"}"),
        ("const", b"]"),
    ]
    assert [json.loads(line) for line in render(3, segments)] == [
        [{"code": "RC_Y", "feature": 'y"q', "contribution": 0.5},
         {"code": "RC_X", "feature": "x", "contribution": -0.25}],
        [],
        [{"code": "RC_Y", "feature": 'y"q', "contribution": 3.0}],
    ]  # fmt: skip


def test_items_top_features_by_index_without_values() -> None:
    names = [msgspec.json.encode(n) for n in ["a", "b", 'c"']]
    index = np.array([[2, 0, 1], [1, 2, 0]], dtype=np.int64)
    segments = [("const", b"["), ("items", names, index, None, None, b",", b""), ("const", b"]")]
    assert [json.loads(line) for line in render(2, segments)] == [
        ['c"', "a", "b"],
        ["b", 'c"', "a"],
    ]


def test_items_object_of_floats_without_index() -> None:
    keys = [b'"salary":', b'"car":']
    values = np.array([[1.0, -0.25], [np.nan, 1e-7]])
    segments = [("const", b"{"), ("items", keys, None, values, None, b",", b""), ("const", b"}")]
    assert [json.loads(line) for line in render(2, segments)] == [
        {"salary": 1.0, "car": -0.25},
        {"salary": None, "car": 1e-7},
    ]


@pytest.mark.parametrize(
    ("with_index", "with_values"), [(True, False), (False, True), (True, True)]
)
def test_items_every_count_from_zero_to_k(with_index: bool, with_values: bool) -> None:
    k = 4
    fragments = [f'"f{j}":'.encode() if with_values else f'"f{j}"'.encode() for j in range(k)]
    index = np.array([[(t * 3 + row) % k for t in range(k)] for row in range(k + 1)])
    values = np.arange((k + 1) * k, dtype=np.float64).reshape(k + 1, k) / 8
    counts = np.arange(k + 1, dtype=np.int64)
    ix = index if with_index else None
    vals = values if with_values else None
    lines = render(k + 1, [("items", fragments, ix, vals, counts, b";", b"|")])
    for row, line in enumerate(lines):
        expected = []
        for t in range(row):
            j = index[row, t] if with_index else t
            piece = fragments[j] + (repr(float(values[row, t])).encode() if with_values else b"")
            expected.append(piece + b"|")
        assert line == b";".join(expected)


F = np.zeros(2)
I2 = np.zeros((2, 1), dtype=np.int64)
V2 = np.zeros((2, 1))
FRAG = [b"x"]


@pytest.mark.parametrize(
    ("segments", "error", "message"),
    [
        ([("const", b"")], None, None),
        (["const"], TypeError, r"segment 0: expected a tuple, got str"),
        ([()], ValueError, r"segment 0: empty tuple"),
        ([("nope", b"")], ValueError, r'segment 0: unknown tag "nope"'),
        ([(1, b"")], TypeError, r"segment 0: the tag must be str"),
        ([("const", b""), ("const",)], ValueError, r"segment 1: \"const\" takes 1 fields"),
        ([("const", b"", b"")], ValueError, r"segment 0: \"const\" takes 1 fields"),
        ([("const", "text")], TypeError, r"segment 0 \(const\): the constant must be bytes"),
        ([("str", ["a"])], ValueError, r"segment 0 \(str\): values has 1 items, expected 2"),
        ([("str", ("a", "b"))], TypeError, r"segment 0 \(str\): values must be a list"),
        ([("str", ["a", b"b"])], TypeError, r"segment 0 \(str\): row 1 must be str, got bytes"),
        ([("raw", [b"a", "b"])], TypeError, r"segment 0 \(raw\): row 1 must be bytes"),
        ([("sha256", [b"a"] * 3)], ValueError, r"segment 0 \(sha256\): values has 3 items"),
        ([("sha256_objects", b"[{}]", b"")], ValueError, r"takes 1 fields"),
        ([("sha256_objects", "[{},{}]")], TypeError, r"segment 0 \(sha256_objects\)"),
        ([("strmap", [{}, []])], TypeError, r"segment 0 \(strmap\): row 1 must be a dict"),
        ([("f64", [0.0, 1.0])], TypeError, r"segment 0 \(f64\): values must be a float64 buffer"),
        ([("f64", np.zeros(3))], ValueError, r"segment 0 \(f64\): .* got shape \[3\]"),
        ([("f64", np.zeros((2, 1)))], ValueError, r"segment 0 \(f64\): .* got 2 dimensions"),
        ([("f64", np.zeros(2, np.float32))], ValueError, r"segment 0 \(f64\): .* got format"),
        ([("f64", np.zeros(2, ">f8"))], ValueError, r"segment 0 \(f64\): .* got format"),
        ([("f64", np.zeros(4)[::2])], ValueError, r"segment 0 \(f64\): .* not C-contiguous"),
        (
            [("items", FRAG, None, None, None, b"", b"")],
            ValueError,
            r"\(items\): index and values are both None",
        ),
        (
            [("items", FRAG, I2, np.zeros((2, 2)), None, b"", b"")],
            ValueError,
            r"\(items\): index has shape \[2, 1\] but values",
        ),
        (
            [("items", FRAG, I2 + 1, None, None, b"", b"")],
            ValueError,
            r"\(items\): row 0, item 0: fragment index 1 is outside the 1 fragments",
        ),
        (
            [("items", FRAG, I2 - 1, None, None, b"", b"")],
            ValueError,
            r"\(items\): row 0, item 0: fragment index -1",
        ),
        (
            [("items", [], None, V2, None, b"", b"")],
            ValueError,
            r"\(items\): row 0, item 0: fragment index 0 is outside the 0",
        ),
        (
            [("items", FRAG, I2, None, np.array([1, 2]), b"", b"")],
            ValueError,
            r"\(items\): row 1: count 2 is outside 0..=1",
        ),
        (
            [("items", FRAG, I2, None, np.array([1, -1]), b"", b"")],
            ValueError,
            r"\(items\): row 1: count -1",
        ),
        (
            [("items", FRAG, I2, None, np.array([1]), b"", b"")],
            ValueError,
            r"\(items\): counts .* got shape \[1\]",
        ),
        (
            [("items", FRAG, I2.astype(np.int32), None, None, b"", b"")],
            ValueError,
            r"\(items\): index must be .* int64",
        ),
        (
            [("items", FRAG, np.zeros((3, 1), np.int64), None, None, b"", b"")],
            ValueError,
            r"\(items\): index .* got shape \[3, 1\]",
        ),
        (
            [("items", FRAG, None, np.zeros(2), None, b"", b"")],
            ValueError,
            r"\(items\): values .* got 1 dimensions",
        ),
        ([("items", FRAG, None, V2.T.copy().T, None, b"", b"")], None, None),
        (
            [("items", (b"x",), I2, None, None, b"", b"")],
            TypeError,
            r"\(items\): fragments must be a list",
        ),
        (
            [("items", ["x"], I2, None, None, b"", b"")],
            TypeError,
            r"\(items\): fragments\[0\] must be bytes",
        ),
        ([("items", FRAG, I2, None, None, ",", b"")], TypeError, r"\(items\): sep must be bytes"),
        ([("items", FRAG, I2, None, None, b"")], ValueError, r"\"items\" takes 6 fields"),
    ],
)
def test_malformed_segments_raise_naming_the_segment(
    segments: list[tuple[Any, ...]], error: type[Exception] | None, message: str | None
) -> None:
    if error is None:
        assert len(render(2, segments)) == 2
        return
    with pytest.raises(error, match=message) as raised:
        render(2, segments)
    assert "\n" not in str(raised.value)


def test_wrong_count_or_segments_types() -> None:
    with pytest.raises(ValueError, match="count must be >= 0, got -1"):
        render(-1, [])
    with pytest.raises(TypeError):
        render(1, (("const", b""),))  # type: ignore[arg-type]


def test_an_error_in_a_later_segment_is_raised_before_any_line() -> None:
    with pytest.raises(ValueError, match="segment 2"):
        render(2, [("const", b"x"), ("f64", F), ("str", ["only one"])])


def test_a_decision_like_record_decodes_to_its_fields() -> None:
    segments = [
        ("const", b'{"schema_version":1,"event_id":'),
        ("str", ["e-1", 'e-"2"']),
        ("const", b',"score":'),
        ("f64", np.array([0.25, np.nan])),
        ("const", b',"reason_codes":['),
        ("items", REASONS, np.array([[0], [1]]), np.array([[0.5], [-1.5]]), None, b",", b"}"),
        ("const", b'],"input_hash":'),
        ("sha256", [b"a", b"b"]),
        ("const", b',"context":'),
        ("strmap", [{"k": "v"}, {}]),
        ("const", b',"raw":'),
        ("raw", [b"[1,2]", b"null"]),
        ("const", b"}"),
    ]
    first, second = (msgspec.json.decode(line) for line in render(2, segments))
    assert first == {
        "schema_version": 1, "event_id": "e-1", "score": 0.25,
        "reason_codes": [{"code": "RC_X", "feature": "x", "contribution": 0.5}],
        "input_hash": hashlib.sha256(b"a").hexdigest(), "context": {"k": "v"}, "raw": [1, 2],
    }  # fmt: skip
    assert second["event_id"] == 'e-"2"'
    assert second["score"] is None
    assert second["reason_codes"] == [{"code": "RC_Y", "feature": 'y"q', "contribution": -1.5}]
    assert second["context"] == {}
    assert second["raw"] is None


def reference_line(row: int, columns: list[tuple[Any, ...]]) -> bytes:
    """The same line built in Python, segment by segment, with msgspec for the values."""
    out = []
    for segment in columns:
        tag, *fields = segment
        if tag == "const":
            out.append(fields[0])
        elif tag in ("str", "strmap"):
            out.append(msgspec.json.encode(fields[0][row]))
        elif tag == "raw":
            out.append(fields[0][row])
        elif tag == "f64":
            out.append(msgspec.json.encode(float(fields[0][row])))
        elif tag == "sha256":
            out.append(b'"' + hashlib.sha256(fields[0][row]).hexdigest().encode() + b'"')
        else:
            fragments, index, values, counts, sep, close = fields
            n = int(counts[row]) if counts is not None else values.shape[1]
            items = []
            for t in range(n):
                j = int(index[row, t]) if index is not None else t
                number = msgspec.json.encode(float(values[row, t])) if values is not None else b""
                items.append(fragments[j] + number + close)
            out.append(sep.join(items))
    return b"".join(out)


def test_a_large_batch_equals_the_python_reference() -> None:
    rows, rng = 10_000, np.random.default_rng(11)
    strings = [HOSTILE[i % len(HOSTILE)] + str(i) for i in range(rows)]
    floats = rng.normal(size=(5, rows)) * 10.0 ** rng.integers(-12, 12, size=(5, rows))
    floats[0, ::97] = np.nan
    k = 3
    index = rng.integers(0, 4, size=(rows, k))
    values = rng.normal(size=(rows, k))
    counts = rng.integers(0, k + 1, size=rows)
    segments: list[tuple[Any, ...]] = [
        ("const", b'{"schema_version":1,"event_id":'),
        ("str", strings),
    ]
    for j in range(5):
        segments += [("const", f',"f{j}":'.encode()), ("f64", floats[j])]
    segments += [
        ("const", b',"reasons":['),
        ("items", [*REASONS, b'{"c":', b'{"d":'], index, values, counts, b",", b"}"),
        ("const", b'],"hash":'),
        ("sha256", [s.encode("utf-8") for s in strings]),
        ("const", b',"ctx":'),
        ("strmap", [{"n": str(i), s: s} for i, s in enumerate(strings)]),
        ("const", b',"raw":'),
        ("raw", [b"[%d]" % i for i in range(rows)]),
        ("const", b"}"),
    ]
    assert len(segments) >= 20
    lines = render(rows, segments)
    assert len(lines) == rows
    for row, line in enumerate(lines):
        # Float spellings may differ (1e-07 and 1e-7), so compare what the lines decode to.
        assert msgspec.json.decode(line) == msgspec.json.decode(reference_line(row, segments))
