//! The output memory of `VecMarketEnv`: env-owned buffers that a step
//! writes with the GIL released, and the NumPy arrays handed to Python,
//! filled from them (or, for large observations, from the state) with the
//! GIL held.

use numpy::ndarray::{Dimension, IxDyn};
use numpy::{
    Element, PyArray, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray,
    PyUntypedArrayMethods,
};
use powermarket::vec_env::{Column, Dtype, Rows, Sizes, VecOutputs, OUTPUTS};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// Small batches step their observations into env memory (copied to NumPy
/// afterwards, like the other outputs); large ones have them computed from
/// the state straight into the NumPy buffer with the GIL held, which saves
/// copying the largest output where copies cost most.
pub(super) fn small_obs(values: usize) -> bool {
    values < powermarket::vec_env::PARALLEL_MIN_OBS_VALUES
}

/// The NumPy arrays handed to Python, one per row of [`OUTPUTS`] in table
/// order; filled from the env's [`VecOutputs`] with the GIL held.
pub(super) struct Views(Vec<Py<PyUntypedArray>>);

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
    pub(super) fn new(py: Python<'_>, m: usize, sizes: Sizes) -> PyResult<Self> {
        let views = OUTPUTS
            .iter()
            .map(|o| {
                let shape = sizes.shape(m, o.width);
                Ok(match o.dtype {
                    Dtype::F32 => np_zeros::<f32, IxDyn>(py, &shape)?.as_untyped().clone(),
                    Dtype::F64 => np_zeros::<f64, IxDyn>(py, &shape)?.as_untyped().clone(),
                    Dtype::Bool => np_zeros::<bool, IxDyn>(py, &shape)?.as_untyped().clone(),
                }
                .unbind())
            })
            .collect::<PyResult<_>>()?;
        Ok(Views(views))
    }

    /// The view of output `name`.
    pub(super) fn get<'py>(&self, py: Python<'py>, name: &str) -> Bound<'py, PyAny> {
        let i = OUTPUTS
            .iter()
            .position(|o| o.name == name)
            .expect("a name of the output table");
        self.0[i].bind(py).clone().into_any()
    }

    /// Every view, in table order.
    pub(super) fn all<'a, 'py: 'a>(
        &'a self,
        py: Python<'py>,
    ) -> impl Iterator<Item = Bound<'py, PyAny>> + 'a {
        self.0.iter().map(move |v| v.bind(py).clone().into_any())
    }

    /// Copy every output of `out` into its view (replacing a view that was
    /// tampered with). Outputs written only where a market ended
    /// ([`Rows::Ended`]) copy those rows, or every row with `all_rows`. An
    /// empty output (observations of a large batch) is skipped. With `only`,
    /// just the outputs it names.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn publish(
        &mut self,
        py: Python<'_>,
        out: &VecOutputs,
        m: usize,
        sizes: Sizes,
        threads: usize,
        all_rows: bool,
        only: Option<&[&str]>,
    ) -> PyResult<()> {
        let ended = &out.terminated;
        for ((spec, col), slot) in out.columns().into_iter().zip(self.0.iter_mut()) {
            if only.is_some_and(|names| !names.contains(&spec.name)) {
                continue;
            }
            let shape = sizes.shape(m, spec.width);
            let rows = (spec.rows == Rows::Ended && !all_rows).then_some(&ended[..]);
            match col {
                Column::F32(src) => publish(py, slot, &shape, src, threads, rows)?,
                Column::F64(src) => publish(py, slot, &shape, src, threads, rows)?,
                Column::Bool(src) => publish(py, slot, &shape, src, threads, rows)?,
            }
        }
        Ok(())
    }

    /// The observation view, writable, for observations computed from the
    /// state (replaced if tampered with).
    pub(super) fn obs<'py>(
        &mut self,
        py: Python<'py>,
        shape: &[usize],
    ) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        usable(py, &mut self.0[0], shape)
    }
}

/// The array in `slot` if it is still a writeable, aligned, C-contiguous
/// array of `T` with `shape`; otherwise (the user changed its flags,
/// strides, shape or dtype, or resized it) a fresh array that replaces it.
pub(super) fn usable<'py, T: Element>(
    py: Python<'py>,
    slot: &mut Py<PyUntypedArray>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
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
        if let Ok(typed) = a.cast::<PyArrayDyn<T>>() {
            return Ok(typed.clone());
        }
    }
    let fresh: Bound<'py, PyArrayDyn<T>> = np_zeros(py, shape)?;
    *slot = fresh.as_untyped().clone().unbind();
    Ok(fresh)
}

/// Copy `src` into the view in `slot` (replacing the view if tampered
/// with): every row, or with `rows` only the markets' rows where it is true.
/// An empty `src` is skipped.
fn publish<T: Element + Copy + Send + Sync>(
    py: Python<'_>,
    slot: &mut Py<PyUntypedArray>,
    shape: &[usize],
    src: &[T],
    threads: usize,
    rows: Option<&[bool]>,
) -> PyResult<()> {
    if src.is_empty() && shape.iter().product::<usize>() != 0 {
        return Ok(());
    }
    let a = usable::<T>(py, slot, shape)?;
    // SAFETY: `usable` checked that the array is C-contiguous, aligned,
    // writeable and of `shape` (so of src.len() elements); this thread holds
    // the GIL throughout, so no Python code runs while it is written.
    let dst = unsafe { a.as_slice_mut() }
        .map_err(|e| PyRuntimeError::new_err(format!("output buffer: {e}")))?;
    match rows {
        None => powermarket::pool::copy_wide(dst, src, threads),
        Some(mask) => {
            let per = src.len() / mask.len().max(1);
            for (i, _) in mask.iter().enumerate().filter(|(_, &f)| f) {
                dst[i * per..(i + 1) * per].copy_from_slice(&src[i * per..(i + 1) * per]);
            }
        }
    }
    Ok(())
}
