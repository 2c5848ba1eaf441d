//! `streams.core._native`: the parts of the scorer's hot path that CPython cannot do without
//! a Python call per event. Each function works on a whole batch; see
//! `streams/core/_native.pyi` for the Python side.
//!
//! - `render` (`render.rs`): a batch's JSON records from columns;
//! - `rfc3339_seconds` (`rfc3339.rs`): a batch's event times checked and read in epoch seconds.

use pyo3::prelude::*;

mod render;
mod rfc3339;

#[pymodule]
mod _native {
    #[pymodule_export]
    use super::render::render;
    #[pymodule_export]
    use super::rfc3339::rfc3339_seconds;
}
