//! The PyO3 layer: converts, validates, releases the GIL, maps errors.
//! No market logic lives here.

// PyO3 signatures return tuples of bound arrays; aliases would hide them.
#![allow(clippy::type_complexity)]

mod analysis;
mod checks;
mod clearing;
mod env;
mod errors;
mod network;
mod opponents;
mod pickle;
mod scenario;
mod scenario_grid;
mod storage;
mod vec_env;

use numpy::{Element, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use powermarket::error::MarketError;
pub(crate) use powermarket::vec_env::Seeds;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyTuple;

pub(crate) use errors::py_err;

/// `.py()?` on a core result: its error as a Python exception.
pub(crate) trait Core<T> {
    fn py(self) -> PyResult<T>;
}

impl<T> Core<T> for std::result::Result<T, MarketError> {
    #[inline]
    fn py(self) -> PyResult<T> {
        self.map_err(py_err)
    }
}

/// `numpy.require`, imported once.
pub(crate) fn require(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static F: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    F.import(py, "numpy", "require")
}

pub(crate) use powermarket::error::shape_str;

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
        if a.ndim() == ndim && a.is_c_contiguous() && a.is_aligned() && is_plain_ndarray(obj) {
            return Ok(a.clone());
        }
    }
    numeric_gate(obj, arg)?;
    // C-contiguous and aligned (a misaligned buffer is copied).
    let converted = require(py)?
        .call1((obj, numpy::dtype::<T>(py), "CA"))
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
    if !(a.is_c_contiguous() && a.is_aligned()) {
        return Err(PyValueError::new_err(format!(
            "{arg} could not be converted to an aligned contiguous array"
        )));
    }
    Ok(a)
}

/// True when `obj` is exactly `numpy.ndarray` (no subclass such as a
/// masked array or matrix): a pointer comparison.
pub(crate) fn is_plain_ndarray(obj: &Bound<'_, PyAny>) -> bool {
    use pyo3::PyTypeInfo;
    // SAFETY: `obj` is a live object (we hold a reference); reading its type
    // pointer does not touch reference counts.
    unsafe { pyo3::ffi::Py_TYPE(obj.as_ptr()) == numpy::PyUntypedArray::type_object_raw(obj.py()) }
}

/// True for a NumPy masked array (whose mask a plain conversion would drop).
fn is_masked(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    static MA: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let cls = MA.import(obj.py(), "numpy.ma", "MaskedArray")?;
    obj.is_instance(cls)
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// TypeError (naming `arg`) unless `obj` converts to an array of real
/// numbers: strings, bytes, complex, datetimes, objects and masked arrays
/// are refused rather than silently converted or truncated.
pub(crate) fn numeric_gate(obj: &Bound<'_, PyAny>, arg: &str) -> PyResult<()> {
    let py = obj.py();
    if obj.is_instance_of::<pyo3::types::PyString>()
        || obj.is_instance_of::<pyo3::types::PyBytes>()
        || obj.is_instance_of::<pyo3::types::PyByteArray>()
    {
        return Err(PyTypeError::new_err(format!(
            "{arg} must be numbers (an array of floats), got {}",
            type_name(obj)
        )));
    }
    if is_masked(obj)? {
        return Err(PyTypeError::new_err(format!(
            "{arg} must be a plain array of numbers, got a masked array (use .filled())"
        )));
    }
    static ASARRAY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let arr = ASARRAY
        .import(py, "numpy", "asarray")?
        .call1((obj,))
        .map_err(|e| {
            PyTypeError::new_err(format!(
                "{arg} must be an array of numbers: {}",
                e.value(py)
            ))
        })?;
    let kind: String = arr.getattr("dtype")?.getattr("kind")?.extract()?;
    if !matches!(kind.as_str(), "b" | "i" | "u" | "f") {
        let dtype = arr.getattr("dtype")?.str()?.to_string();
        return Err(PyTypeError::new_err(format!(
            "{arg} must be real numbers, got an array of dtype {dtype}"
        )));
    }
    Ok(())
}

/// A count argument (`num_envs`, `n`, `t`, ...): an int >= 0. Bools and
/// non-integers are TypeError, negative or huge ints ValueError, each
/// naming the argument.
pub(crate) fn count_arg(obj: &Bound<'_, PyAny>, arg: &str) -> PyResult<usize> {
    if obj.is_instance_of::<pyo3::types::PyBool>() || !obj.hasattr("__index__")? {
        return Err(PyTypeError::new_err(format!(
            "{arg} must be an int, got {} {}",
            type_name(obj),
            obj.repr().map(|r| r.to_string()).unwrap_or_default()
        )));
    }
    let v: i128 = obj
        .call_method0("__index__")?
        .extract()
        .map_err(|_| PyValueError::new_err(format!("{arg} is out of range, got {obj}")))?;
    usize::try_from(v).map_err(|_| {
        PyValueError::new_err(format!(
            "{arg} must be an int >= 0 (and below 2**64), got {v}"
        ))
    })
}

/// An optional count argument (None allowed).
pub(crate) fn opt_count_arg(obj: Option<&Bound<'_, PyAny>>, arg: &str) -> PyResult<Option<usize>> {
    match obj {
        Some(o) if !o.is_none() => count_arg(o, arg).map(Some),
        _ => Ok(None),
    }
}

/// One seed: an int in [0, 2**64). Bools are TypeError; other values
/// ValueError naming `arg`.
pub(crate) fn one_seed(s: &Bound<'_, PyAny>, arg: &str) -> PyResult<u64> {
    let numpy_bool = || -> PyResult<bool> {
        static NPBOOL: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        s.is_instance(NPBOOL.import(s.py(), "numpy", "bool_")?)
    };
    if s.is_instance_of::<pyo3::types::PyBool>() || numpy_bool()? {
        return Err(PyTypeError::new_err(format!(
            "{arg} must be an int in [0, 2**64), got a bool ({s})"
        )));
    }
    s.extract::<u64>().map_err(|_| {
        PyValueError::new_err(format!(
            "{arg} must be None or an int in [0, 2**64), got {}",
            s.repr().map(|r| r.to_string()).unwrap_or_default()
        ))
    })
}

/// A seed for a batch of `m` markets: None, an int, or a sequence of `m` ints.
pub(crate) fn seeds_arg(seed: Option<&Bound<'_, PyAny>>, m: usize) -> PyResult<Seeds> {
    let Some(s) = seed.filter(|s| !s.is_none()) else {
        return Ok(Seeds::Base(None));
    };
    let listlike = s.is_instance_of::<pyo3::types::PyList>()
        || s.is_instance_of::<pyo3::types::PyTuple>()
        || s.cast::<numpy::PyUntypedArray>()
            .is_ok_and(|a| a.ndim() == 1);
    if !listlike {
        return Ok(Seeds::Base(Some(one_seed(s, "seed")?)));
    }
    let items: Vec<Bound<'_, PyAny>> = s.try_iter()?.collect::<PyResult<_>>()?;
    if items.len() != m {
        return Err(PyValueError::new_err(format!(
            "seed: a list needs one seed per market ({m}), got {}",
            items.len()
        )));
    }
    let list = items
        .iter()
        .enumerate()
        .map(|(i, x)| one_seed(x, &format!("seed[{i}]")))
        .collect::<PyResult<Vec<u64>>>()?;
    Ok(Seeds::PerMarket(list))
}

/// A reset mask over `m` markets: None, or `m` values where any non-zero
/// (NaN included) is true. Non-numeric input is TypeError naming `mask`.
pub(crate) fn mask_arg(mask: Option<&Bound<'_, PyAny>>, m: usize) -> PyResult<Option<Vec<bool>>> {
    let Some(obj) = mask.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    numeric_gate(obj, "mask")?;
    let a = array_arg::<f64>(obj, "mask", 1)?;
    expect_shape("mask", a.shape(), &[m])?;
    Ok(Some(elems(&a).iter().map(|&x| x != 0.0).collect()))
}

/// Actions as float32 with `ndim` dimensions. A float32 C-contiguous array
/// is used as it is; anything else goes through float64, where finite values
/// are clipped to the action box before the cast (so 1e300 becomes 10, not
/// an infinity), while NaN and infinities stay and are rejected by the core.
pub(crate) enum Actions<'py> {
    Array(Bound<'py, PyArrayDyn<f32>>),
    Owned(Vec<f32>, Vec<usize>),
}

impl Actions<'_> {
    pub(crate) fn shape(&self) -> &[usize] {
        match self {
            Actions::Array(a) => a.shape(),
            Actions::Owned(_, s) => s,
        }
    }

    pub(crate) fn values(&self) -> &[f32] {
        match self {
            Actions::Array(a) => elems(a),
            Actions::Owned(v, _) => v,
        }
    }
}

pub(crate) fn actions_arg<'py>(obj: &Bound<'py, PyAny>, ndim: usize) -> PyResult<Actions<'py>> {
    if let Ok(a) = obj.cast::<PyArrayDyn<f32>>() {
        if a.ndim() == ndim && a.is_c_contiguous() && a.is_aligned() && is_plain_ndarray(obj) {
            return Ok(Actions::Array(a.clone()));
        }
    }
    let wide = array_arg::<f64>(obj, "actions", ndim)?;
    let values = elems(&wide)
        .iter()
        .enumerate()
        .map(|(j, &x)| powermarket::env::action::clipped(j % 2, x) as f32)
        .collect();
    Ok(Actions::Owned(values, wide.shape().to_vec()))
}

/// The elements of an array from [`array_arg`]. Sound while the GIL is held
/// and no other code writes the array.
#[inline]
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

/// Per-agent observation bounds of a market as two (A, D) float32 arrays.
pub(crate) fn bounds<'py>(
    py: Python<'py>,
    market: &powermarket::env::Market,
) -> PyResult<(
    Bound<'py, numpy::PyArray2<f32>>,
    Bound<'py, numpy::PyArray2<f32>>,
)> {
    use numpy::ToPyArray;
    let shape = [market.agents(), market.obs_dim()];
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
        Some(s) => one_seed(s, "seed").map(Some),
    }
}

/// A mutable borrow of an env, or a RuntimeError that says why there is
/// none: another thread is using it.
pub(crate) fn borrow_env<'py, T: pyo3::PyClass<Frozen = pyo3::pyclass::boolean_struct::False>>(
    slf: &Bound<'py, T>,
    name: &str,
) -> PyResult<PyRefMut<'py, T>> {
    slf.try_borrow_mut().map_err(|_| {
        PyRuntimeError::new_err(format!(
            "{name} is being used by another thread: envs are not thread-safe; \
             use one env per thread (or guard it with a lock)"
        ))
    })
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
    checks::register(m)?;
    errors::register(m)?;
    clearing::register(m)?;
    network::register(m)?;
    scenario::register(m)?;
    storage::register(m)?;
    env::register(m)?;
    opponents::register(m)?;
    vec_env::register(m)?;
    analysis::register(m)?;
    Ok(())
}
