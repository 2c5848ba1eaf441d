//! `plain_events`: a batch of raw ScoringEvent records read straight into the columns the
//! scorer needs and the model's design matrix, when every record is plainly valid; otherwise
//! nothing is decided here and the decoder's own path (msgspec, then the contract) takes the
//! batch.
//!
//! "Plainly valid" is narrower than what the contract and the feature spec accept, never
//! wider. A record is one JSON object, UTF-8, holding `event_id`, `entity_id`, `event_time`
//! and `features`, and maybe `context` and `schema_version` (the integer `1`), each once and
//! nothing else; no string holds a backslash escape; every length and count is within the
//! contract's limits; the time passes the fast timestamp check (`rfc3339.rs`); the features
//! are exactly the layout's, each once, each plainly valid as `dense_rows` (`vectorise.rs`)
//! defines it; the context maps names to strings. For such a record msgspec's typed mirror
//! gives the same fields and the spec the same matrix row, which the tests check.
//!
//! Besides the columns it gives each event's `input_hash`: the sha256 of its features as
//! canonical JSON (sorted keys, the numbers as orjson writes them), so no feature dict is
//! built on the hot path.

use std::collections::HashMap;

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyInt, PyList, PyString, PyTuple};

use sha2::{Digest, Sha256};

use crate::rfc3339::epoch_seconds;
use crate::vectorise::{EXACT_INT, Kind, parse_layout};

/// The contract's limits, in the order `streams.core.decode` passes them.
struct Limits {
    id: usize,
    name: usize,
    features: usize,
    feature_string: usize,
    context_entries: usize,
    context_value: usize,
}

/// A feature as this reader needs it: a categorical one's lookup in Rust maps.
struct Feature {
    name: String,
    kind: FeatureKind,
    column: usize,
}

enum FeatureKind {
    Numeric,
    Nullable(f64),
    Boolean,
    Categorical {
        by_text: HashMap<String, usize>,
        by_int: HashMap<i64, usize>,
    },
}

/// One JSON value of a feature; a string is the text between its quotes (no escapes).
#[derive(Clone, Copy)]
enum Value<'a> {
    Int(i64),
    Float(f64),
    Str(&'a str),
    Bool(bool),
    Null,
}

/// The layout in this reader's form, or None when a categorical lookup holds a key other than
/// an exact str or int (the Python lookup's equality then reaches further than this reader's).
fn features_of(layout: &Bound<'_, PyList>, width: usize) -> PyResult<Option<Vec<Feature>>> {
    let mut features = Vec::with_capacity(layout.len());
    for feature in parse_layout(layout, width)? {
        let kind = match feature.kind {
            Kind::Numeric => FeatureKind::Numeric,
            Kind::Nullable(impute) => FeatureKind::Nullable(impute),
            Kind::Boolean => FeatureKind::Boolean,
            Kind::Categorical(lookup) => {
                let (mut by_text, mut by_int) = (HashMap::new(), HashMap::new());
                for (key, column) in lookup.iter() {
                    let column: usize = column.extract()?;
                    if let Ok(text) = key.cast_exact::<PyString>() {
                        by_text.insert(text.to_str()?.to_owned(), column);
                    } else if let Ok(int) = key.cast_exact::<PyInt>() {
                        if let Ok(int) = int.extract::<i64>() {
                            by_int.insert(int, column);
                        }
                    } else {
                        return Ok(None);
                    }
                }
                FeatureKind::Categorical { by_text, by_int }
            }
        };
        features.push(Feature {
            name: feature.text,
            kind,
            column: feature.column,
        });
    }
    Ok(Some(features))
}

/// Whether `text` has between 1 and `max` characters (code points, as Python counts them).
fn length_ok(text: &str, max: usize) -> bool {
    !text.is_empty() && (text.len() <= max || text.chars().count() <= max)
}

/// Whether `text` has at most `max` characters.
fn at_most(text: &str, max: usize) -> bool {
    text.len() <= max || text.chars().count() <= max
}

/// A cursor over one record; every method returns None where the record is not plain.
struct Reader<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn skip_space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes().get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte after any whitespace, consumed.
    fn next(&mut self) -> Option<u8> {
        self.skip_space();
        let b = *self.bytes().get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn expect(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    /// A string without escapes: the text between its quotes.
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.at;
        let rest = &self.bytes()[start..];
        let len = rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        if rest[len] != b'"' {
            return None;
        }
        self.at = start + len + 1;
        // The record is valid UTF-8 and the cut is at ASCII bytes, so this is a char boundary.
        Some(&self.text[start..start + len])
    }

    /// `{` then, for each member, `member(reader, key)` on the value; `}`. An empty object is
    /// `{}`.
    fn object(&mut self, mut member: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.expect(b'{')?;
        self.skip_space();
        if self.bytes().get(self.at) == Some(&b'}') {
            self.at += 1;
            return Some(());
        }
        loop {
            let key = self.string()?;
            self.expect(b':')?;
            member(self, key)?;
            match self.next()? {
                b',' => {}
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// A JSON number: an integer within 64 bits, or a finite float.
    fn number(&mut self) -> Option<Value<'a>> {
        self.skip_space();
        let bytes = self.bytes();
        let start = self.at;
        let mut i = start;
        let digits = |i: &mut usize| {
            let from = *i;
            while bytes.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i - from
        };
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
        let whole = digits(&mut i);
        if whole == 0 || (whole > 1 && bytes[i - whole] == b'0') {
            return None; // no digits, or a leading zero
        }
        let mut integer = true;
        if bytes.get(i) == Some(&b'.') {
            i += 1;
            if digits(&mut i) == 0 {
                return None;
            }
            integer = false;
        }
        if let Some(b'e' | b'E') = bytes.get(i) {
            i += 1;
            if let Some(b'+' | b'-') = bytes.get(i) {
                i += 1;
            }
            if digits(&mut i) == 0 {
                return None;
            }
            integer = false;
        }
        self.at = i;
        let literal = &self.text[start..i];
        if integer {
            literal.parse::<i64>().ok().map(Value::Int)
        } else {
            let x: f64 = literal.parse().ok()?;
            x.is_finite().then_some(Value::Float(x))
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.bytes().get(self.at..end) == Some(word)).then(|| self.at = end)
    }

    /// A feature's value: a number, a string of at most `max` characters, a bool or null.
    fn value(&mut self, max: usize) -> Option<Value<'a>> {
        self.skip_space();
        match *self.bytes().get(self.at)? {
            b'"' => self.string().filter(|s| at_most(s, max)).map(Value::Str),
            b't' => self.literal(b"true").map(|()| Value::Bool(true)),
            b'f' => self.literal(b"false").map(|()| Value::Bool(false)),
            b'n' => self.literal(b"null").map(|()| Value::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }
}

/// Writes `value` of `feature` into `row`, as `dense_rows` would; None if not plainly valid.
fn write(row: &mut [f64], feature: &Feature, value: Value<'_>) -> Option<()> {
    match (&feature.kind, value) {
        (FeatureKind::Numeric | FeatureKind::Nullable(_), Value::Float(x)) => {
            row[feature.column] = x;
        }
        (FeatureKind::Numeric | FeatureKind::Nullable(_), Value::Int(i))
            if (-EXACT_INT..=EXACT_INT).contains(&i) =>
        {
            row[feature.column] = i as f64;
        }
        (FeatureKind::Nullable(impute), Value::Null) => {
            row[feature.column] = *impute;
            row[feature.column + 1] = 1.0;
        }
        (FeatureKind::Boolean, Value::Bool(b)) => row[feature.column] = f64::from(u8::from(b)),
        (FeatureKind::Categorical { by_text, .. }, Value::Str(s)) => {
            row[*by_text.get(s)?] = 1.0;
        }
        (FeatureKind::Categorical { by_int, .. }, Value::Int(i)) => {
            row[*by_int.get(&i)?] = 1.0;
        }
        _ => return None,
    }
    Some(())
}

/// `value` as orjson writes it (a string as it came: it holds nothing orjson escapes).
fn write_canonical(out: &mut Vec<u8>, value: Value<'_>) {
    match value {
        Value::Int(i) => {
            let mut digits = [0u8; 20];
            let mut at = digits.len();
            let mut rest = i.unsigned_abs();
            loop {
                at -= 1;
                digits[at] = b'0' + (rest % 10) as u8;
                rest /= 10;
                if rest == 0 {
                    break;
                }
            }
            if i < 0 {
                out.push(b'-');
            }
            out.extend_from_slice(&digits[at..]);
        }
        // zmij writes the shortest round-trip decimal as orjson does (`1e+16`, `1e-7`)
        Value::Float(x) => out.extend_from_slice(zmij::Buffer::new().format_finite(x).as_bytes()),
        Value::Str(s) => {
            out.push(b'"');
            out.extend_from_slice(s.as_bytes());
            out.push(b'"');
        }
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Null => out.extend_from_slice(b"null"),
    }
}

/// The batch's columns while they are read.
struct Columns<'py> {
    event_ids: Vec<Bound<'py, PyString>>,
    entity_ids: Vec<Bound<'py, PyString>>,
    event_times: Vec<Bound<'py, PyString>>,
    contexts: Vec<Bound<'py, PyDict>>,
    seconds: Vec<f64>,
    versioned: Vec<usize>,
    /// The current event's canonical features (reused).
    canonical: Vec<u8>,
    /// Each event's sha256 of its canonical features, 32 bytes after 32 bytes.
    digests: Vec<u8>,
}

/// One str object per distinct context name and value of a batch: the batch's dicts share
/// them, so each is made and hashed once (str objects keep their hash).
type Strings<'py, 'a> = HashMap<&'a str, Bound<'py, PyString>>;

fn intern<'py, 'a>(
    py: Python<'py>,
    strings: &mut Strings<'py, 'a>,
    text: &'a str,
) -> Bound<'py, PyString> {
    strings
        .entry(text)
        .or_insert_with(|| PyString::new(py, text))
        .clone()
}

/// What one batch shares while its records are read.
struct Batch<'a> {
    features: &'a [Feature],
    /// Feature positions in sorted name order (canonical JSON sorts the keys).
    sorted: Vec<usize>,
    limits: &'a Limits,
    /// Per feature, its value in the current record (reused).
    values: Vec<Option<Value<'a>>>,
}

/// Reads record `raw` into `row` and the columns; None if it is not plain.
fn read<'py, 'a>(
    py: Python<'py>,
    batch: &mut Batch<'a>,
    strings: &mut Strings<'py, 'a>,
    raw: &'a [u8],
    row: &mut [f64],
    columns: &mut Columns<'py>,
    index: usize,
) -> Option<()> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut reader = Reader { text, at: 0 };
    let limits = batch.limits;
    let (mut event_id, mut entity_id, mut event_time) = (None, None, None);
    let (mut features_seen, mut context, mut versioned) = (false, None, false);
    batch.values.iter_mut().for_each(|v| *v = None);
    let features = batch.features;
    let values = &mut batch.values;
    reader.object(|reader, key| {
        let slot = match key {
            "event_id" => &mut event_id,
            "entity_id" => &mut entity_id,
            "event_time" => &mut event_time,
            "features" => {
                if std::mem::replace(&mut features_seen, true) {
                    return None;
                }
                let mut count = 0;
                return reader.object(|reader, name| {
                    count += 1;
                    if count > limits.features || !length_ok(name, limits.name) {
                        return None;
                    }
                    // in layout order the next feature is the one expected; else search
                    let at = match features.get(count - 1) {
                        Some(f) if f.name == name => count - 1,
                        _ => features.iter().position(|f| f.name == name)?,
                    };
                    let value = reader.value(limits.feature_string)?;
                    if values[at].replace(value).is_some() {
                        return None; // a duplicate name
                    }
                    write(row, &features[at], value)
                });
            }
            "context" => {
                if context.is_some() {
                    return None;
                }
                let dict = PyDict::new(py);
                let mut count = 0;
                reader.object(|reader, name| {
                    count += 1;
                    let value = reader.string()?;
                    if count > limits.context_entries
                        || !length_ok(name, limits.name)
                        || !at_most(value, limits.context_value)
                    {
                        return None;
                    }
                    let name = intern(py, strings, name);
                    if dict.contains(&name).ok()? {
                        return None;
                    }
                    dict.set_item(name, intern(py, strings, value)).ok()
                })?;
                context = Some(dict);
                return Some(());
            }
            "schema_version" => {
                if std::mem::replace(&mut versioned, true) {
                    return None;
                }
                return matches!(reader.number()?, Value::Int(1)).then_some(());
            }
            _ => return None,
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(reader.string()?);
        Some(())
    })?;
    reader.skip_space();
    if reader.at != raw.len() || !features_seen || values.iter().any(Option::is_none) {
        return None;
    }
    let (event_id, entity_id, event_time) = (event_id?, entity_id?, event_time?);
    if !length_ok(event_id, limits.id) || !length_ok(entity_id, limits.id) {
        return None;
    }
    let seconds = epoch_seconds(event_time.as_bytes())?;

    let out = &mut columns.canonical;
    out.clear();
    out.push(b'{');
    for (n, &at) in batch.sorted.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(features[at].name.as_bytes());
        out.extend_from_slice(b"\":");
        write_canonical(out, values[at]?);
    }
    out.push(b'}');
    columns.digests.extend_from_slice(&Sha256::digest(&out[..]));
    columns.event_ids.push(PyString::new(py, event_id));
    columns.entity_ids.push(PyString::new(py, entity_id));
    columns.event_times.push(PyString::new(py, event_time));
    columns
        .contexts
        .push(context.unwrap_or_else(|| PyDict::new(py)));
    columns.seconds.push(seconds);
    if versioned {
        columns.versioned.push(index);
    }
    Some(())
}

/// Reads the records `raws` (a list of bytes) into `out` (a writable C-contiguous float64
/// buffer of `len(raws) x width`, laid out by `layout`) and returns the batch's columns, or
/// None if any record is not plain; see `streams/core/_native.pyi`.
#[pyfunction]
pub fn plain_events<'py>(
    py: Python<'py>,
    raws: &Bound<'py, PyList>,
    layout: &Bound<'py, PyList>,
    limits: (usize, usize, usize, usize, usize, usize),
    out: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyTuple>>> {
    let buf = PyBuffer::<f64>::get(out)?;
    let shape = buf.shape();
    if shape.len() != 2 || shape[0] != raws.len() || !buf.is_c_contiguous() || buf.readonly() {
        return Err(PyValueError::new_err(format!(
            "out must be a writable C-contiguous float64 buffer of shape ({}, width), got \
             shape {shape:?}",
            raws.len()
        )));
    }
    let width = shape[1];
    let Some(features) = features_of(layout, width)? else {
        return Ok(None);
    };
    let (id, name, max_features, feature_string, context_entries, context_value) = limits;
    let limits = Limits {
        id,
        name,
        features: max_features,
        feature_string,
        context_entries,
        context_value,
    };
    let mut sorted: Vec<usize> = (0..features.len()).collect();
    sorted.sort_by(|&a, &b| features[a].name.cmp(&features[b].name));
    let count = raws.len();
    let mut columns = Columns {
        event_ids: Vec::with_capacity(count),
        entity_ids: Vec::with_capacity(count),
        event_times: Vec::with_capacity(count),
        contexts: Vec::with_capacity(count),
        seconds: Vec::with_capacity(count),
        versioned: Vec::new(),
        canonical: Vec::with_capacity(1024),
        digests: Vec::with_capacity(count * 32),
    };
    let items: Vec<Bound<'py, PyAny>> = raws.iter().collect();
    let mut slices = Vec::with_capacity(count);
    for item in &items {
        match item.cast_exact::<PyBytes>() {
            Ok(b) => slices.push(b.as_bytes()),
            Err(_) => return Ok(None),
        }
    }
    let mut batch = Batch {
        features: &features,
        sorted,
        limits: &limits,
        values: vec![None; features.len()],
    };
    let mut strings = Strings::new();
    let mut matrix = vec![0.0; count * width];
    for (i, raw) in slices.iter().enumerate() {
        let row = &mut matrix[i * width..(i + 1) * width];
        if read(py, &mut batch, &mut strings, raw, row, &mut columns, i).is_none() {
            return Ok(None);
        }
    }
    buf.copy_from_slice(py, &matrix)?;
    (
        PyList::new(py, columns.event_ids)?,
        PyList::new(py, columns.entity_ids)?,
        PyList::new(py, columns.event_times)?,
        PyList::new(py, columns.contexts)?,
        PyList::new(py, columns.seconds)?,
        PyList::new(py, columns.versioned)?,
        PyBytes::new(py, &columns.digests),
    )
        .into_pyobject(py)
        .map(Some)
}
