//! `streams.core._native`: the parts of the scorer's hot path that CPython cannot do without
//! a Python call per event. Each function works on a whole batch; see
//! `streams/core/_native.pyi` for the Python side.
//!
//! - `render` (`render.rs`): a batch's JSON records from columns;
//! - `rfc3339_seconds` (`rfc3339.rs`): a batch's event times checked and read in epoch seconds;
//! - `dense_rows` (`vectorise.rs`): a batch's feature dicts written into a design matrix;
//! - `plain_events` (`decode.rs`): a batch's raw records read into columns and the matrix.

use pyo3::prelude::*;

mod decode;
mod render;
mod rfc3339;
mod vectorise;

#[pymodule]
mod _native {
    #[pymodule_export]
    use super::decode::plain_events;
    #[pymodule_export]
    use super::render::render;
    #[pymodule_export]
    use super::rfc3339::rfc3339_seconds;
    #[pymodule_export]
    use super::vectorise::dense_rows;
}
