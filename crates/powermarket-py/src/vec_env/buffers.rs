//! The output memory of `VecMarketEnv`: env-owned buffers that a step
//! writes with the GIL released, and the NumPy arrays handed to Python,
//! filled from them (or, for large observations, from the state) with the
//! GIL held.

use numpy::ndarray::Dimension;
use numpy::{
    Element, PyArray, PyArray1, PyArray2, PyArray3, PyArrayDescrMethods, PyArrayMethods,
    PyUntypedArrayMethods,
};
use powermarket::error::{checked_size, try_zeros, MarketError};
use powermarket::vec_env::VecBuffers;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// Step outputs in memory the env owns (written while the GIL is released).
pub(super) struct Outputs {
    /// (M, N, D) observations of a small batch (empty for a large one, whose
    /// observations are written straight into the NumPy buffer: see
    /// [`small_obs`]).
    pub(super) obs: Vec<f32>,
    pub(super) rewards: Vec<f32>,
    pub(super) terminated: Vec<bool>,
    pub(super) truncated: Vec<bool>,
    pub(super) final_obs: Vec<f32>,
    pub(super) final_mask: Vec<bool>,
    pub(super) price: Vec<f64>,
    pub(super) demand: Vec<f64>,
    pub(super) shortfall: Vec<f64>,
    pub(super) average_paid: Vec<f64>,
    pub(super) cleared: Vec<f64>,
}

impl Outputs {
    pub(super) fn new(m: usize, n: usize, d: usize) -> Result<Self, MarketError> {
        let md = checked_size(checked_size(m, n, "num_envs")?, d, "num_envs")?;
        let mn = checked_size(m, n, "num_envs")?;
        Ok(Outputs {
            obs: if small_obs(md) {
                try_zeros(md, "num_envs")?
            } else {
                Vec::new()
            },
            rewards: try_zeros(mn, "num_envs")?,
            terminated: try_zeros(m, "num_envs")?,
            truncated: try_zeros(m, "num_envs")?,
            final_obs: try_zeros(md, "num_envs")?,
            final_mask: try_zeros(m, "num_envs")?,
            price: try_zeros(m, "num_envs")?,
            demand: try_zeros(m, "num_envs")?,
            shortfall: try_zeros(m, "num_envs")?,
            average_paid: try_zeros(m, "num_envs")?,
            cleared: try_zeros(mn, "num_envs")?,
        })
    }

    pub(super) fn buffers(&mut self) -> VecBuffers<'_> {
        VecBuffers {
            obs: (!self.obs.is_empty()).then_some(&mut self.obs[..]),
            rewards: &mut self.rewards,
            terminated: &mut self.terminated,
            truncated: &mut self.truncated,
            final_obs: &mut self.final_obs,
            final_mask: &mut self.final_mask,
            price: &mut self.price,
            demand: &mut self.demand,
            shortfall: &mut self.shortfall,
            average_paid: &mut self.average_paid,
            cleared: &mut self.cleared,
        }
    }
}

/// Small batches step their observations into env memory (copied to NumPy
/// afterwards, like the other outputs); large ones have them computed from
/// the state straight into the NumPy buffer with the GIL held, which saves
/// copying the largest output where copies cost most.
pub(super) fn small_obs(values: usize) -> bool {
    values < powermarket::vec_env::PARALLEL_MIN_OBS_VALUES
}

/// The NumPy arrays handed to Python; filled from [`Outputs`] with the GIL held.
pub(super) struct Views {
    pub(super) obs: Py<PyArray3<f32>>,
    pub(super) rewards: Py<PyArray2<f32>>,
    pub(super) terminated: Py<PyArray1<bool>>,
    pub(super) truncated: Py<PyArray1<bool>>,
    pub(super) final_obs: Py<PyArray3<f32>>,
    pub(super) final_mask: Py<PyArray1<bool>>,
    pub(super) price: Py<PyArray1<f64>>,
    pub(super) demand: Py<PyArray1<f64>>,
    pub(super) shortfall: Py<PyArray1<f64>>,
    pub(super) average_paid: Py<PyArray1<f64>>,
    pub(super) cleared: Py<PyArray2<f64>>,
}

/// A new zero-filled array from `numpy.zeros`, so that a failed allocation
/// is a MemoryError, not an abort.
pub(super) fn np_zeros<'py, T: Element, D: Dimension>(
    py: Python<'py>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyArray<T, D>>> {
    static ZEROS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let a = ZEROS
        .import(py, "numpy", "zeros")?
        .call1((shape.to_vec(), numpy::dtype::<T>(py)))?;
    Ok(a.cast_into::<PyArray<T, D>>()?)
}

impl Views {
    pub(super) fn new(py: Python<'_>, m: usize, n: usize, d: usize) -> PyResult<Self> {
        Ok(Views {
            obs: np_zeros(py, &[m, n, d])?.unbind(),
            rewards: np_zeros(py, &[m, n])?.unbind(),
            terminated: np_zeros(py, &[m])?.unbind(),
            truncated: np_zeros(py, &[m])?.unbind(),
            final_obs: np_zeros(py, &[m, n, d])?.unbind(),
            final_mask: np_zeros(py, &[m])?.unbind(),
            price: np_zeros(py, &[m])?.unbind(),
            demand: np_zeros(py, &[m])?.unbind(),
            shortfall: np_zeros(py, &[m])?.unbind(),
            average_paid: np_zeros(py, &[m])?.unbind(),
            cleared: np_zeros(py, &[m, n])?.unbind(),
        })
    }
}

/// The array in `slot` if it is still a writeable, aligned, C-contiguous
/// array of `T` with `shape`; otherwise (the user changed its flags,
/// strides, shape or dtype, or resized it) a fresh array that replaces it.
pub(super) fn usable<'py, T: Element, D: Dimension>(
    py: Python<'py>,
    slot: &mut Py<PyArray<T, D>>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyArray<T, D>>> {
    let a = slot.bind(py);
    // SAFETY: reading the flags of a live array while holding the GIL.
    let writeable = unsafe {
        (*numpy::npyffi::_PyArray_GET_ITEM_DATA(a.as_array_ptr())).flags
            & numpy::npyffi::flags::NPY_ARRAY_WRITEABLE
            != 0
    };
    let ok = writeable
        && a.is_aligned()
        && a.is_c_contiguous()
        && a.shape() == shape
        && a.dtype().is_equiv_to(&numpy::dtype::<T>(py));
    if ok {
        return Ok(a.clone());
    }
    let fresh: Bound<'py, PyArray<T, D>> = np_zeros(py, shape)?;
    *slot = fresh.clone().unbind();
    Ok(fresh)
}

/// Copy `src` into the view in `slot` (replacing the view if tampered with).
pub(super) fn publish<'py, T: Element + Copy + Send + Sync, D: Dimension>(
    py: Python<'py>,
    slot: &mut Py<PyArray<T, D>>,
    shape: &[usize],
    src: &[T],
    threads: usize,
) -> PyResult<Bound<'py, PyArray<T, D>>> {
    let a = usable(py, slot, shape)?;
    // SAFETY: `usable` checked that the array is C-contiguous, aligned,
    // writeable and of `shape` (so of src.len() elements); this thread holds
    // the GIL throughout, so no Python code runs while it is written.
    let dst = unsafe { a.as_slice_mut() }
        .map_err(|e| PyRuntimeError::new_err(format!("output buffer: {e}")))?;
    powermarket::pool::copy_wide(dst, src, threads);
    Ok(a)
}
