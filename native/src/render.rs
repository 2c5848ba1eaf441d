//! `render`: a batch's JSON lines rendered from columns, with no Python code per record.
//!
//! `render(count, segments)` returns `count` bytes objects; line `i` is the concatenation over
//! the segments of each one's piece for row `i`. The segment kinds are documented in
//! `streams/core/_native.pyi`. Every segment is checked (types, lengths, shapes, indices) before
//! any line is rendered, so a bad batch raises one `ValueError` or `TypeError` naming the segment
//! and never reads out of bounds.
//!
//! Segments holding Python objects (`str`, `raw`, `sha256`, `sha256_objects`, `strmap`, the
//! items' fragments) are turned into `Pieces`, one contiguous buffer of pre-rendered bytes per
//! segment, while they are read; numbers are formatted as the lines are rendered.

use pyo3::buffer::{Element, PyBuffer};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};
use sha2::{Digest, Sha256};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// One pre-rendered piece of bytes per row (or per fragment), all in one buffer.
#[derive(Default)]
struct Pieces {
    data: Vec<u8>,
    /// `ends[i]` is where piece `i` ends in `data`; it starts where piece `i - 1` ends.
    ends: Vec<usize>,
}

impl Pieces {
    fn with_capacity(n: usize) -> Self {
        Pieces {
            data: Vec::new(),
            ends: Vec::with_capacity(n),
        }
    }

    /// Closes the piece written to `data` since the previous one.
    fn end(&mut self) {
        self.ends.push(self.data.len());
    }

    fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.data[start..self.ends[i]]
    }

    fn len(&self) -> usize {
        self.ends.len()
    }
}

/// A list of `k`-wide rows: `counts[i]` times `fragment (value close)`, joined by `sep`.
struct Items {
    fragments: Pieces,
    /// Row-major `count x k`: which fragment each item writes; `None` writes fragment `t`.
    index: Option<Vec<i64>>,
    /// Row-major `count x k`: the float written after each fragment, if any.
    values: Option<Vec<f64>>,
    /// How many items each row has; `None` means `k` for every row.
    counts: Option<Vec<i64>>,
    k: usize,
    sep: Vec<u8>,
    close: Vec<u8>,
}

impl Items {
    fn count(&self, row: usize) -> usize {
        self.counts.as_ref().map_or(self.k, |c| c[row] as usize)
    }

    fn fragment(&self, row: usize, t: usize) -> usize {
        self.index
            .as_ref()
            .map_or(t, |ix| ix[row * self.k + t] as usize)
    }

    /// Checks every count and every fragment index a row will use (entries past a row's count
    /// are padding and ignored).
    fn check(&self, rows: usize) -> PyResult<()> {
        for row in 0..rows {
            if let Some(counts) = &self.counts {
                let c = counts[row];
                if c < 0 || c as usize > self.k {
                    return Err(PyValueError::new_err(format!(
                        "row {row}: count {c} is outside 0..={}",
                        self.k
                    )));
                }
            }
            for t in 0..self.count(row) {
                let f = match &self.index {
                    Some(ix) => ix[row * self.k + t],
                    None => t as i64,
                };
                if f < 0 || f as usize >= self.fragments.len() {
                    return Err(PyValueError::new_err(format!(
                        "row {row}, item {t}: fragment index {f} is outside the {} fragments",
                        self.fragments.len()
                    )));
                }
            }
        }
        Ok(())
    }

    fn write(&self, out: &mut Vec<u8>, row: usize) {
        for t in 0..self.count(row) {
            if t > 0 {
                out.extend_from_slice(&self.sep);
            }
            out.extend_from_slice(self.fragments.get(self.fragment(row, t)));
            if let Some(values) = &self.values {
                write_f64(out, values[row * self.k + t]);
            }
            out.extend_from_slice(&self.close);
        }
    }
}

/// A checked segment, ready to render.
enum Segment {
    Const(Vec<u8>),
    /// `str`, `raw`, `sha256` and `strmap`: already rendered, one piece per row.
    Column(Pieces),
    F64(Vec<f64>),
    Items(Items),
}

impl Segment {
    fn write(&self, out: &mut Vec<u8>, row: usize) {
        match self {
            Segment::Const(b) => out.extend_from_slice(b),
            Segment::Column(p) => out.extend_from_slice(p.get(row)),
            Segment::F64(v) => write_f64(out, v[row]),
            Segment::Items(items) => items.write(out, row),
        }
    }
}

/// A JSON string escaped as msgspec does: `"`, `\` and the short escapes, other control
/// characters as `\u00xx`, everything else (U+007F, U+2028, non-ASCII) as raw UTF-8.
fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x08 => b'b',
            0x0c => b'f',
            0x00..=0x1f => 0,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if short == 0 {
            let (hi, lo) = (HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]);
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hi, lo]);
        } else {
            out.extend_from_slice(&[b'\\', short]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// The shortest round-trip decimal; `null` for NaN and infinities, as msgspec writes them.
fn write_f64(out: &mut Vec<u8>, x: f64) {
    if x.is_finite() {
        out.extend_from_slice(zmij::Buffer::new().format_finite(x).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string())
}

/// The list `obj`, which must hold exactly `len` items (`len = None`: any length).
fn list<'a, 'py>(
    obj: &'a Bound<'py, PyAny>,
    what: &str,
    len: Option<usize>,
) -> PyResult<&'a Bound<'py, PyList>> {
    let list = obj.cast::<PyList>().map_err(|_| {
        PyTypeError::new_err(format!("{what} must be a list, got {}", type_name(obj)))
    })?;
    match len {
        Some(n) if list.len() != n => Err(PyValueError::new_err(format!(
            "{what} has {} items, expected {n}",
            list.len()
        ))),
        _ => Ok(list),
    }
}

/// The bytes of `obj`; `what` names it in the error (built only on failure, off the hot path).
fn bytes<'a>(obj: &'a Bound<'_, PyAny>, what: impl Fn() -> String) -> PyResult<&'a [u8]> {
    obj.cast::<PyBytes>().map(|b| b.as_bytes()).map_err(|_| {
        PyTypeError::new_err(format!("{} must be bytes, got {}", what(), type_name(obj)))
    })
}

/// The UTF-8 of the str `obj`; `what` names it in the error.
fn text<'a>(obj: &'a Bound<'_, PyAny>, what: impl Fn() -> String) -> PyResult<&'a str> {
    let s = obj.cast::<PyString>().map_err(|_| {
        PyTypeError::new_err(format!("{} must be str, got {}", what(), type_name(obj)))
    })?;
    s.to_str()
        .map_err(|_| PyValueError::new_err(format!("{} cannot be encoded as UTF-8", what())))
}

/// Renders each item of the list `obj` (of `len` items, if given) with `write`, one piece each.
fn column(
    obj: &Bound<'_, PyAny>,
    what: &str,
    len: Option<usize>,
    mut write: impl FnMut(&mut Vec<u8>, &Bound<'_, PyAny>, usize) -> PyResult<()>,
) -> PyResult<Pieces> {
    let items = list(obj, what, len)?;
    let mut pieces = Pieces::with_capacity(items.len());
    for (row, item) in items.iter().enumerate() {
        write(&mut pieces.data, &item, row)?;
        pieces.end();
    }
    Ok(pieces)
}

/// The contents of a C-contiguous `T` buffer of the given shape (`None`: any size there).
fn buffer<T: Element>(
    obj: &Bound<'_, PyAny>,
    what: &str,
    dtype: &str,
    shape: &[Option<usize>],
) -> PyResult<(Vec<T>, Vec<usize>)> {
    let wrong = |problem: String| {
        PyValueError::new_err(format!(
            "{what} must be a C-contiguous {}-D {dtype} buffer: {problem}",
            shape.len()
        ))
    };
    let buf = PyBuffer::<T>::get(obj).map_err(|e| {
        if e.is_instance_of::<PyTypeError>(obj.py()) {
            PyTypeError::new_err(format!(
                "{what} must be a {dtype} buffer, got {}",
                type_name(obj)
            ))
        } else {
            wrong(format!("got format {:?}", buf_format(obj)))
        }
    })?;
    // pyo3 accepts a big-endian format on a little-endian machine; read no byte-swapped data.
    if cfg!(target_endian = "little")
        && matches!(buf.format().to_bytes().first(), Some(b'>' | b'!'))
    {
        return Err(wrong(format!("got format {:?}", buf.format())));
    }
    if buf.shape().len() != shape.len() {
        return Err(wrong(format!("got {} dimensions", buf.shape().len())));
    }
    if shape
        .iter()
        .zip(buf.shape())
        .any(|(want, got)| want.is_some_and(|w| w != *got))
    {
        return Err(wrong(format!("got shape {:?}", buf.shape())));
    }
    if !buf.is_c_contiguous() {
        return Err(wrong("it is not C-contiguous".to_owned()));
    }
    Ok((buf.to_vec(obj.py())?, buf.shape().to_vec()))
}

/// The struct format of any buffer, for error messages.
fn buf_format(obj: &Bound<'_, PyAny>) -> String {
    pyo3::buffer::PyUntypedBuffer::get(obj).map_or_else(
        |_| "?".to_owned(),
        |b| b.format().to_string_lossy().into_owned(),
    )
}

fn optional<'a, 'py>(obj: &'a Bound<'py, PyAny>) -> Option<&'a Bound<'py, PyAny>> {
    (!obj.is_none()).then_some(obj)
}

fn parse_items(args: &[Bound<'_, PyAny>], count: usize) -> PyResult<Items> {
    let [fragments, index, values, counts, sep, close] = args else {
        return Err(PyValueError::new_err("expected 6 fields after the tag"));
    };
    let fragments = column(fragments, "fragments", None, |out, item, i| {
        out.extend_from_slice(bytes(item, || format!("fragments[{i}]"))?);
        Ok(())
    })?;
    let index = optional(index)
        .map(|ix| buffer::<i64>(ix, "index", "int64", &[Some(count), None]))
        .transpose()?;
    let values = optional(values)
        .map(|v| buffer::<f64>(v, "values", "float64", &[Some(count), None]))
        .transpose()?;
    let k = match (&index, &values) {
        (None, None) => return Err(PyValueError::new_err("index and values are both None")),
        (Some((_, a)), Some((_, b))) if a != b => {
            return Err(PyValueError::new_err(format!(
                "index has shape {a:?} but values has shape {b:?}"
            )));
        }
        (Some((_, shape)), _) | (None, Some((_, shape))) => shape[1],
    };
    let counts = optional(counts)
        .map(|c| buffer::<i64>(c, "counts", "int64", &[Some(count)]))
        .transpose()?;
    let items = Items {
        fragments,
        index: index.map(|(v, _)| v),
        values: values.map(|(v, _)| v),
        counts: counts.map(|(v, _)| v),
        k,
        sep: bytes(sep, || "sep".into())?.to_vec(),
        close: bytes(close, || "close".into())?.to_vec(),
    };
    items.check(count)?;
    Ok(items)
}

/// The same error, with `context` before its message; a `TypeError` stays one, anything else
/// becomes a `ValueError`, and the original is kept as the cause.
fn relabel(py: Python<'_>, err: PyErr, context: &str) -> PyErr {
    let message = format!("{context}: {}", err.value(py));
    let new = if err.is_instance_of::<PyTypeError>(py) {
        PyTypeError::new_err(message)
    } else {
        PyValueError::new_err(message)
    };
    new.set_cause(py, Some(err));
    new
}

/// Segment number `n`, checked against `count` rows; errors name the segment.
fn parse_segment(n: usize, obj: &Bound<'_, PyAny>, count: usize) -> PyResult<Segment> {
    let py = obj.py();
    let (tag, args) = tag_and_fields(obj).map_err(|e| relabel(py, e, &format!("segment {n}")))?;
    fields(tag, args, count).map_err(|e| relabel(py, e, &format!("segment {n} ({tag})")))
}

/// The tag and the fields after it, checked against the tag's arity.
fn tag_and_fields<'a, 'py>(
    obj: &'a Bound<'py, PyAny>,
) -> PyResult<(&'a str, &'a [Bound<'py, PyAny>])> {
    let tuple = obj
        .cast::<PyTuple>()
        .map_err(|_| PyTypeError::new_err(format!("expected a tuple, got {}", type_name(obj))))?;
    let Some((tag, args)) = tuple.as_slice().split_first() else {
        return Err(PyValueError::new_err("empty tuple, expected (tag, ...)"));
    };
    let tag = text(tag, || "the tag".into())?;
    let arity = match tag {
        "const" | "str" | "raw" | "f64" | "sha256" | "sha256_objects" | "sha256_digests"
        | "strmap" => 1,
        "items" => 6,
        _ => return Err(PyValueError::new_err(format!("unknown tag {tag:?}"))),
    };
    if args.len() != arity {
        return Err(PyValueError::new_err(format!(
            "{tag:?} takes {arity} fields after the tag, got {}",
            args.len()
        )));
    }
    Ok((tag, args))
}

fn fields(tag: &str, args: &[Bound<'_, PyAny>], count: usize) -> PyResult<Segment> {
    let rows = Some(count);
    match tag {
        "const" => bytes(&args[0], || "the constant".into()).map(|b| Segment::Const(b.to_vec())),
        "str" => column(&args[0], "values", rows, |out, item, row| {
            write_str(out, text(item, || format!("row {row}"))?);
            Ok(())
        })
        .map(Segment::Column),
        "raw" => column(&args[0], "values", rows, |out, item, row| {
            out.extend_from_slice(bytes(item, || format!("row {row}"))?);
            Ok(())
        })
        .map(Segment::Column),
        "sha256" => column(&args[0], "values", rows, |out, item, row| {
            write_sha256(out, &[bytes(item, || format!("row {row}"))?]);
            Ok(())
        })
        .map(Segment::Column),
        "sha256_objects" => {
            let array = bytes(&args[0], || "the array".into())?;
            let mut pieces = Pieces::with_capacity(count);
            for object in flat_objects(array, count)? {
                write_sha256(&mut pieces.data, &[object]);
                pieces.end();
            }
            Ok(Segment::Column(pieces))
        }
        "sha256_digests" => {
            let digests = bytes(&args[0], || "the digests".into())?;
            if digests.len() != 32 * count {
                return Err(PyValueError::new_err(format!(
                    "the digests are {} bytes, expected 32 per row ({})",
                    digests.len(),
                    32 * count
                )));
            }
            let mut pieces = Pieces::with_capacity(count);
            pieces.data.reserve(66 * count);
            for digest in digests.chunks_exact(32) {
                write_hex(&mut pieces.data, digest);
                pieces.end();
            }
            Ok(Segment::Column(pieces))
        }
        "strmap" => column(&args[0], "values", rows, |out, item, row| {
            let dict = item.cast::<PyDict>().map_err(|_| {
                PyTypeError::new_err(format!("row {row} must be a dict, got {}", type_name(item)))
            })?;
            out.push(b'{');
            for (n, (key, value)) in dict.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                write_str(out, text(&key, || format!("row {row}: key"))?);
                out.push(b':');
                write_str(out, text(&value, || format!("row {row}: value"))?);
            }
            out.push(b'}');
            Ok(())
        })
        .map(Segment::Column),
        "f64" => {
            buffer::<f64>(&args[0], "values", "float64", &[rows]).map(|(v, _)| Segment::F64(v))
        }
        _ => parse_items(args, count).map(Segment::Items),
    }
}

/// The `count` objects of the JSON array `array` of flat objects, cut at each `},{` (which
/// must occur exactly `count - 1` times, so never inside a string).
fn flat_objects(array: &[u8], count: usize) -> PyResult<Vec<&[u8]>> {
    let wrong = || {
        PyValueError::new_err(format!(
            "the array must be [{{...}},...] of {count} objects with \"}},{{\" only between them"
        ))
    };
    if count == 0 {
        return if array == b"[]" {
            Ok(Vec::new())
        } else {
            Err(wrong())
        };
    }
    let inner = match array {
        [b'[', inner @ .., b']'] if inner.first() == Some(&b'{') && inner.last() == Some(&b'}') => {
            inner
        }
        _ => return Err(wrong()),
    };
    let mut objects = Vec::with_capacity(count);
    let mut start = 0;
    for cut in inner
        .windows(3)
        .enumerate()
        .filter(|(_, w)| w == b"},{")
        .map(|(i, _)| i)
    {
        if objects.len() + 1 == count {
            return Err(wrong());
        }
        objects.push(&inner[start..=cut]);
        start = cut + 2;
    }
    objects.push(&inner[start..]);
    if objects.len() != count {
        return Err(wrong());
    }
    Ok(objects)
}

/// `"` + the lowercase hex sha256 of the concatenated `parts` + `"`.
fn write_sha256(out: &mut Vec<u8>, parts: &[&[u8]]) {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    write_hex(out, &hasher.finalize());
}

/// `"` + the lowercase hex of `digest` + `"`.
fn write_hex(out: &mut Vec<u8>, digest: &[u8]) {
    out.push(b'"');
    for &b in digest {
        out.extend_from_slice(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
    }
    out.push(b'"');
}

/// Renders `count` JSON lines from columns; see `streams/core/_native.pyi`.
#[pyfunction]
pub fn render<'py>(
    py: Python<'py>,
    count: i64,
    segments: &Bound<'py, PyList>,
) -> PyResult<Bound<'py, PyList>> {
    let count = usize::try_from(count)
        .map_err(|_| PyValueError::new_err(format!("count must be >= 0, got {count}")))?;
    let segments = segments
        .iter()
        .enumerate()
        .map(|(n, s)| parse_segment(n, &s, count))
        .collect::<PyResult<Vec<_>>>()?;

    // Each line into one reused buffer (it stays in cache), then copied into its bytes.
    let mut line = Vec::with_capacity(4096);
    let mut lines = Vec::with_capacity(count);
    for row in 0..count {
        line.clear();
        for segment in &segments {
            segment.write(&mut line, row);
        }
        lines.push(PyBytes::new(py, &line));
    }
    PyList::new(py, lines)
}
