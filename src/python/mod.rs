//! The PyO3 layer: converts, validates, releases the GIL, maps errors.
//! No market logic lives here.

// PyO3 signatures return tuples of bound arrays; aliases would hide them.
#![allow(clippy::type_complexity)]

mod clearing;
mod env;
mod scenario;
mod vec_env;

use crate::error::MarketError;
use numpy::{Element, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyTuple;

impl From<MarketError> for PyErr {
    fn from(e: MarketError) -> PyErr {
        if e.is_misuse() {
            PyRuntimeError::new_err(e.to_string())
        } else {
            PyValueError::new_err(e.to_string())
        }
    }
}

/// `numpy.ascontiguousarray`, imported once.
fn ascontiguousarray(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static F: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    F.import(py, "numpy", "ascontiguousarray")
}

fn shape_str(shape: &[usize]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// An array argument as a C-contiguous NumPy array of `T` with `ndim`
/// dimensions. A matching array is used as it is; anything else (other
/// dtype, strided, list) is converted once.
pub(crate) fn array_arg<'py, T: Element>(
    obj: &Bound<'py, PyAny>,
    arg: &str,
    ndim: usize,
) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    let py = obj.py();
    if let Ok(a) = obj.cast::<PyArrayDyn<T>>() {
        if a.ndim() == ndim && a.is_c_contiguous() {
            return Ok(a.clone());
        }
    }
    let converted = ascontiguousarray(py)?
        .call1((obj, numpy::dtype::<T>(py)))
        .map_err(|e| {
            PyValueError::new_err(format!(
                "{arg} must be an array of numbers: {}",
                e.value(py)
            ))
        })?;
    let a = converted
        .cast_into::<PyArrayDyn<T>>()
        .map_err(|_| PyValueError::new_err(format!("{arg} could not be converted to an array")))?;
    if a.ndim() != ndim {
        return Err(PyValueError::new_err(format!(
            "{arg} must be {ndim}-D, got shape {}",
            shape_str(a.shape())
        )));
    }
    Ok(a)
}

/// The elements of an array from [`array_arg`]. Sound while the GIL is held
/// and no other code writes the array.
pub(crate) fn elems<'a, T: Element>(a: &'a Bound<'_, PyArrayDyn<T>>) -> &'a [T] {
    // SAFETY: array_arg returned a C-contiguous array; the caller holds it.
    unsafe { a.as_slice().expect("array_arg gives contiguous arrays") }
}

/// Mutable elements of an array this module created (a fresh result, or an
/// env's own output buffer), so that native code can fill it in place.
#[allow(clippy::mut_from_ref)]
pub(crate) fn filled<'a, T: Element, D: numpy::ndarray::Dimension>(
    a: &'a Bound<'_, numpy::PyArray<T, D>>,
) -> &'a mut [T] {
    // SAFETY: callers pass only C-contiguous arrays they created; the env
    // buffers may be viewed by users (documented: the next step overwrites
    // them) but are written only inside the env's own methods.
    unsafe { a.as_slice_mut() }.expect("arrays created here are contiguous")
}

/// Per-agent observation bounds of a market as two (N, D) float32 arrays.
pub(crate) fn bounds<'py>(
    py: Python<'py>,
    market: &crate::env::Market,
) -> PyResult<(
    Bound<'py, numpy::PyArray2<f32>>,
    Bound<'py, numpy::PyArray2<f32>>,
)> {
    use numpy::ToPyArray;
    let shape = [market.n(), market.obs_dim()];
    Ok((
        market.obs.low().to_pyarray(py).reshape(shape)?,
        market.obs.high().to_pyarray(py).reshape(shape)?,
    ))
}

/// Check a shape; the error names the argument and both shapes.
pub(crate) fn expect_shape(arg: &str, got: &[usize], want: &[usize]) -> PyResult<()> {
    if got != want {
        return Err(PyValueError::new_err(format!(
            "{arg} must have shape {}, got {}",
            shape_str(want),
            shape_str(got)
        )));
    }
    Ok(())
}

/// Parse an optional seed: a non-negative int below 2**64.
pub(crate) fn seed_arg(seed: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u64>> {
    match seed {
        None => Ok(None),
        Some(s) if s.is_none() => Ok(None),
        Some(s) => s.extract::<u64>().map(Some).map_err(|_| {
            PyValueError::new_err(format!(
                "seed must be None or an int in [0, 2**64), got {}",
                s.repr().map(|r| r.to_string()).unwrap_or_default()
            ))
        }),
    }
}

pub(crate) fn tuple<'py>(
    py: Python<'py>,
    items: [Bound<'py, PyAny>; 5],
) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(py, items)
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    clearing::register(m)?;
    scenario::register(m)?;
    env::register(m)?;
    vec_env::register(m)?;
    Ok(())
}
