//! The pickled state of every class: a dict of plain values with a format
//! version, the RNG state as `(key bytes, stream, word position)`, and the
//! readers that name a missing or malformed item.

use numpy::{Element, PyReadonlyArray1};
use powermarket::rng::RngState;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

/// The layout of pickled states. A pickle of another layout is refused with
/// a clear error rather than misread; bump it whenever a key changes.
pub(crate) const STATE_FORMAT: u32 = 4;

/// A new state dict that carries [`STATE_FORMAT`].
pub(crate) fn new_state(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("format", STATE_FORMAT)?;
    Ok(d)
}

/// ValueError unless `d` carries this build's [`STATE_FORMAT`]; `what`
/// names the class.
pub(crate) fn check_format(d: &Bound<'_, PyDict>, what: &str) -> PyResult<()> {
    let found = match d.get_item("format")? {
        None => "none (a pickle from before formats were recorded)".to_string(),
        Some(v) => match v.extract::<u32>() {
            Ok(f) if f == STATE_FORMAT => return Ok(()),
            Ok(f) => format!("format {f}"),
            Err(_) => format!("{:?}", v.repr()?.to_string()),
        },
    };
    Err(PyValueError::new_err(format!(
        "cannot unpickle {what}: its state has {found}, this build reads format \
         {STATE_FORMAT}; pickle and unpickle with the same powermarket version"
    )))
}

/// Item `k` of a pickled state dict (ValueError naming it when missing).
pub(crate) fn item<'py>(d: &Bound<'py, PyDict>, k: &str) -> PyResult<Bound<'py, PyAny>> {
    d.get_item(k)?
        .ok_or_else(|| PyValueError::new_err(format!("state is missing {k:?}")))
}

/// Item `k` as a vector (of `len` values when given).
pub(crate) fn vec_item<T: Element + Copy>(
    d: &Bound<'_, PyDict>,
    k: &str,
    len: Option<usize>,
) -> PyResult<Vec<T>> {
    let a: PyReadonlyArray1<'_, T> = item(d, k)?
        .extract()
        .map_err(|_| PyValueError::new_err(format!("state: {k} must be a 1-D array")))?;
    let v = a.as_slice()?.to_vec();
    match len {
        Some(want) if v.len() != want => Err(PyValueError::new_err(format!(
            "state: {k} has {} values, expected {want}",
            v.len()
        ))),
        _ => Ok(v),
    }
}

/// An RNG state as Python values.
pub(crate) fn rng_to_py<'py>(py: Python<'py>, s: &RngState) -> (Bound<'py, PyBytes>, u64, u128) {
    (PyBytes::new(py, &s.seed), s.stream, s.word_pos)
}

/// An RNG state from [`rng_to_py`]'s values.
pub(crate) fn rng_from_py(obj: &Bound<'_, PyAny>) -> PyResult<RngState> {
    let (seed, stream, word_pos): (Vec<u8>, u64, u128) = obj.extract().map_err(|_| {
        PyValueError::new_err("state: an RNG state must be (32 bytes, stream, word position)")
    })?;
    let seed: [u8; 32] = seed
        .try_into()
        .map_err(|_| PyValueError::new_err("state: an RNG key must be 32 bytes"))?;
    Ok(RngState {
        seed,
        stream,
        word_pos,
    })
}

/// A list of RNG states.
pub(crate) fn rngs_from_py(obj: &Bound<'_, PyAny>) -> PyResult<Vec<RngState>> {
    obj.try_iter()?.map(|o| rng_from_py(&o?)).collect()
}
