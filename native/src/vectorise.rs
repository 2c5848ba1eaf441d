//! `dense_rows`: a batch of feature dicts written into a design matrix, when every value is
//! plainly valid; otherwise nothing is decided here and the caller's own vectoriser (which
//! gives each invalid event its reason) takes the batch.
//!
//! "Plainly valid" is narrower than what the feature spec accepts, never wider: exact types
//! only (a `bool` is not an `int`), finite floats, integers within ±2^53 (converted exactly),
//! `None` only for a nullable numeric feature, a category found in the lookup as it is (a
//! string that needs trimming is left to the caller). A dict must hold exactly the layout's
//! features; its keys are read in order and matched against the layout's, and looked up by
//! name only when that order differs.

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

/// Integers up to this magnitude are exactly representable as float64.
pub(crate) const EXACT_INT: i64 = 1 << 53;

pub(crate) enum Kind<'py> {
    Numeric,
    /// Nullable numeric: `None` writes `impute` here and 1.0 in the next column.
    Nullable(f64),
    Boolean,
    /// The category's column by value (str, or int for a category written as an integer).
    Categorical(Bound<'py, PyDict>),
}

pub(crate) struct Feature<'py> {
    pub(crate) name: Bound<'py, PyString>,
    pub(crate) text: String,
    pub(crate) kind: Kind<'py>,
    pub(crate) column: usize,
}

pub(crate) fn parse_layout<'py>(
    layout: &Bound<'py, PyList>,
    width: usize,
) -> PyResult<Vec<Feature<'py>>> {
    let wrong = |n: usize, problem: &str| {
        PyValueError::new_err(format!(
            "layout[{n}] must be (name, kind, column, impute, lookup): {problem}"
        ))
    };
    let mut features = Vec::with_capacity(layout.len());
    for (n, entry) in layout.iter().enumerate() {
        let tuple = entry
            .cast::<PyTuple>()
            .map_err(|_| PyTypeError::new_err(format!("layout[{n}] must be a tuple")))?;
        let [name, kind, column, impute, lookup] = tuple.as_slice() else {
            return Err(wrong(n, "expected 5 fields"));
        };
        let name = name
            .cast::<PyString>()
            .map_err(|_| wrong(n, "the name must be str"))?
            .clone();
        let text = name.to_str()?.to_owned();
        let column: usize = column
            .extract()
            .map_err(|_| wrong(n, "the column must be an int >= 0"))?;
        let (kind, last_column) = match kind.extract::<&str>()? {
            "numeric" => (Kind::Numeric, column),
            "nullable" => (Kind::Nullable(impute.extract()?), column + 1),
            "boolean" => (Kind::Boolean, column),
            "categorical" => {
                let lookup = lookup
                    .cast::<PyDict>()
                    .map_err(|_| wrong(n, "a categorical feature needs a dict lookup"))?;
                for (_, target) in lookup.iter() {
                    let target: usize = target
                        .extract()
                        .map_err(|_| wrong(n, "lookup columns must be ints >= 0"))?;
                    if target >= width {
                        return Err(wrong(n, "a lookup column is outside the matrix"));
                    }
                }
                (Kind::Categorical(lookup.clone()), column)
            }
            other => return Err(wrong(n, &format!("unknown kind {other:?}"))),
        };
        if last_column >= width {
            return Err(wrong(n, "its column is outside the matrix"));
        }
        features.push(Feature {
            name,
            text,
            kind,
            column,
        });
    }
    Ok(features)
}

/// Writes `value` of `feature` into `row`; false if it is not plainly valid.
fn write(row: &mut [f64], feature: &Feature<'_>, value: &Bound<'_, PyAny>) -> PyResult<bool> {
    match &feature.kind {
        Kind::Numeric | Kind::Nullable(_) => {
            if let Ok(x) = value.cast_exact::<PyFloat>() {
                let x = x.value();
                if !x.is_finite() {
                    return Ok(false);
                }
                row[feature.column] = x;
            } else if let Ok(i) = value.cast_exact::<PyInt>() {
                match i.extract::<i64>() {
                    Ok(i) if (-EXACT_INT..=EXACT_INT).contains(&i) => {
                        row[feature.column] = i as f64;
                    }
                    _ => return Ok(false),
                }
            } else if let (Kind::Nullable(impute), true) = (&feature.kind, value.is_none()) {
                row[feature.column] = *impute;
                row[feature.column + 1] = 1.0;
            } else {
                return Ok(false);
            }
        }
        Kind::Boolean => match value.cast_exact::<PyBool>() {
            Ok(b) => row[feature.column] = if b.is_true() { 1.0 } else { 0.0 },
            Err(_) => return Ok(false),
        },
        Kind::Categorical(lookup) => {
            if !(value.is_exact_instance_of::<PyString>() || value.is_exact_instance_of::<PyInt>())
            {
                return Ok(false);
            }
            match lookup.get_item(value)? {
                Some(column) => row[column.extract::<usize>()?] = 1.0,
                None => return Ok(false),
            }
        }
    }
    Ok(true)
}

/// One event's row; false if the event is not a dict of exactly the layout's features, each
/// plainly valid.
fn fill_row(row: &mut [f64], features: &[Feature<'_>], event: &Bound<'_, PyAny>) -> PyResult<bool> {
    let Ok(dict) = event.cast_exact::<PyDict>() else {
        return Ok(false);
    };
    if dict.len() != features.len() {
        return Ok(false);
    }
    let mut in_order = true;
    for ((key, value), feature) in dict.iter().zip(features) {
        let same = key
            .cast_exact::<PyString>()
            .is_ok_and(|k| k.to_str().is_ok_and(|k| k == feature.text));
        if !same {
            in_order = false;
            break;
        }
        if !write(row, feature, &value)? {
            return Ok(false);
        }
    }
    if in_order {
        return Ok(true);
    }
    // The keys come in another order (or one is unknown): look each feature up by name.
    row.fill(0.0);
    for feature in features {
        match dict.get_item(&feature.name)? {
            Some(value) if write(row, feature, &value)? => {}
            _ => return Ok(false),
        }
    }
    Ok(true)
}

/// Fills `out` (a writable C-contiguous float64 buffer of `len(events) x width`) with the
/// events' rows laid out by `layout`, every cell written; see `streams/core/_native.pyi`.
#[pyfunction]
pub fn dense_rows(
    py: Python<'_>,
    events: &Bound<'_, PyList>,
    layout: &Bound<'_, PyList>,
    out: &Bound<'_, PyAny>,
) -> PyResult<bool> {
    let buf = PyBuffer::<f64>::get(out)?;
    let shape = buf.shape();
    if shape.len() != 2 || shape[0] != events.len() || !buf.is_c_contiguous() {
        return Err(PyValueError::new_err(format!(
            "out must be a C-contiguous float64 buffer of shape ({}, width), got shape {shape:?}",
            events.len()
        )));
    }
    let width = shape[1];
    let features = parse_layout(layout, width)?;
    let mut matrix = vec![0.0; events.len() * width];
    for (i, event) in events.iter().enumerate() {
        if !fill_row(&mut matrix[i * width..(i + 1) * width], &features, &event)? {
            return Ok(false);
        }
    }
    buf.copy_from_slice(py, &matrix)?;
    Ok(true)
}
