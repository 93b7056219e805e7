//! The checks and constants (option names included) every Python front
//! imports from `_core`, so
//! that the same bad input gets the same message and exception everywhere:
//! the action box and its check, agent names, the seed check and the
//! step-before-reset check. The facts themselves live in the core
//! (`powermarket::env::action`).

use crate::{expect_shape, numeric_gate, one_seed, require, Core};
use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use powermarket::env::action::{
    agent_index, agent_name, clipped, first_non_finite, not_finite_message, ACTION_HIGH,
    ACTION_LOW, COMPONENTS,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

/// Actions as float32 values of `shape`, finite values clipped to the
/// action box in float64 first (so 1e300 becomes the bound, not an
/// infinity); NaN and infinities stay, for a check to report. Non-numbers
/// are a TypeError naming `arg`, a wrong shape a ValueError; with
/// `flatten`, any array of `shape`'s size is reshaped.
pub(crate) fn actions_values(
    actions: &Bound<'_, PyAny>,
    shape: &[usize],
    arg: &str,
    flatten: bool,
) -> PyResult<Vec<f32>> {
    let py = actions.py();
    numeric_gate(actions, arg)?;
    let wide = require(py)?
        .call1((actions, numpy::dtype::<f64>(py), "CA"))
        .map_err(|e| {
            PyValueError::new_err(format!(
                "{arg} must be an array of numbers: {}",
                e.value(py)
            ))
        })?
        .cast_into::<PyArrayDyn<f64>>()?;
    let want: usize = shape.iter().product();
    if !(flatten && wide.len() == want) {
        expect_shape(arg, wide.shape(), shape)?;
    }
    let ro = wide.try_readonly()?;
    let values = ro.as_slice()?;
    Ok(values
        .iter()
        .enumerate()
        .map(|(j, &x)| clipped(j % 2, x) as f32)
        .collect())
}

/// Actions as a new float32 array of ``shape``, finite values clipped to
/// the action box in float64 first (so 1e300 becomes the bound, not an
/// infinity). Non-numbers are a TypeError naming ``arg``; a wrong shape, or
/// NaN or an infinity, a ValueError. For the latter, ``where(index)`` (the
/// index without its last axis, the component) names the agent and market.
/// With ``flatten``, any array of ``shape``'s size is reshaped.
#[pyfunction]
#[pyo3(signature = (actions, shape, arg="actions", r#where=None, flatten=false))]
fn check_actions<'py>(
    py: Python<'py>,
    actions: &Bound<'py, PyAny>,
    shape: Vec<usize>,
    arg: &str,
    r#where: Option<&Bound<'py, PyAny>>,
    flatten: bool,
) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
    let values = actions_values(actions, &shape, arg, flatten)?;
    if let Some(k) = first_non_finite(&values) {
        let index = unravel(k, &shape);
        let who = match r#where {
            Some(f) if !f.is_none() => {
                let lead = PyTuple::new(py, &index[..index.len().saturating_sub(1)])?;
                let w = f.call1((lead,))?;
                (!w.is_none())
                    .then(|| w.str().map(|s| s.to_string()))
                    .transpose()?
            }
            _ => None,
        };
        // The agent's kind names a0: a storage unit's when the place (or,
        // without one, the argument) names one ("sto_<u>"), else a
        // generator's.
        let storage = names_storage(who.as_deref().unwrap_or(arg));
        let kind = &powermarket::units::KINDS[usize::from(storage)];
        let message = not_finite_message(arg, who.as_deref(), kind, k % 2, values[k] as f64);
        return Err(crate::errors::action_error(
            py,
            message,
            None,
            None,
            k % 2,
            values[k] as f64,
        ));
    }
    numpy::PyArray1::from_vec(py, values).reshape(shape)
}

/// Whether `text` names a storage unit: "sto_" and a digit.
fn names_storage(text: &str) -> bool {
    text.match_indices("sto_")
        .any(|(i, _)| text[i + 4..].starts_with(|c: char| c.is_ascii_digit()))
}

/// The multi-index of flat index `k` in a C-ordered array of `shape`.
fn unravel(mut k: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (slot, &dim) in index.iter_mut().zip(shape).rev() {
        *slot = k % dim.max(1);
        k /= dim.max(1);
    }
    index
}

/// ``None`` or an int in ``[0, 2**64)``: a bool is a TypeError, anything
/// else a ValueError naming ``arg``.
#[pyfunction]
#[pyo3(signature = (seed, arg="seed"))]
fn check_seed(seed: &Bound<'_, PyAny>, arg: &str) -> PyResult<Option<u64>> {
    if seed.is_none() {
        return Ok(None);
    }
    one_seed(seed, arg).map(Some)
}

/// RuntimeError unless a market at ``hour`` (None: never reset) of
/// ``horizon`` hours can be stepped.
#[pyfunction]
fn check_steppable(hour: Option<usize>, horizon: usize) -> PyResult<()> {
    powermarket::env::check_steppable(hour.unwrap_or(powermarket::env::NOT_STARTED), horizon).py()
}

/// The name of agent ``i`` in a market of ``n`` generators (``"gen_3"``,
/// or ``"sto_0"`` for agent ``n``); ``n`` None: every agent a generator.
#[pyfunction(name = "agent_name")]
#[pyo3(signature = (i, n=None))]
fn py_agent_name(i: usize, n: Option<usize>) -> String {
    agent_name(i, n.unwrap_or(usize::MAX))
}

/// The index of an agent name such as ``"gen_3"`` or ``"sto_0"`` in a
/// market of ``n`` generators and ``s`` storage units, or None for any other
/// text (``n`` None: any number of generators and no storage).
#[pyfunction(name = "agent_index")]
#[pyo3(signature = (name, n=None, s=0))]
fn py_agent_index(name: &str, n: Option<usize>, s: usize) -> Option<usize> {
    agent_index(name, n.unwrap_or(usize::MAX), s)
}

/// The action box ``(low, high)`` of one agent under ``price_action``
/// (``"tanh"``: ``a1`` in [-10, 10]; ``"linear"``: ``a1`` in [-1, 1]), each
/// a tuple ``(a0, a1)``. An unknown name is a ValueError listing the valid ones.
#[pyfunction]
#[pyo3(signature = (price_action="tanh"))]
fn action_box(price_action: &str) -> PyResult<((f64, f64), (f64, f64))> {
    let pa: powermarket::env::PriceAction = price_action.parse().py()?;
    let (lo, hi) = (pa.low(), pa.high());
    Ok(((lo[0] as f64, lo[1] as f64), (hi[0] as f64, hi[1] as f64)))
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("ACTION_LOW", PyTuple::new(py, ACTION_LOW.map(f64::from))?)?;
    m.add(
        "STORAGE_ACTION_LOW",
        PyTuple::new(
            py,
            powermarket::units::storage::STORAGE_ACTION_LOW.map(f64::from),
        )?,
    )?;
    m.add(
        "STORAGE_ACTION_HIGH",
        PyTuple::new(
            py,
            powermarket::units::storage::STORAGE_ACTION_HIGH.map(f64::from),
        )?,
    )?;
    m.add(
        "STORAGE_FEATURES",
        PyTuple::new(py, powermarket::observe::STORAGE_FEATURES)?,
    )?;
    m.add("ACTION_HIGH", PyTuple::new(py, ACTION_HIGH.map(f64::from))?)?;
    m.add("ACTION_COMPONENTS", PyTuple::new(py, COMPONENTS)?)?;
    m.add(
        "OBSERVERS",
        PyTuple::new(py, powermarket::observe::Observer::NAMES)?,
    )?;
    m.add(
        "TIE_RULES",
        PyTuple::new(py, powermarket::clearing::TieRule::NAMES)?,
    )?;
    m.add(
        "MECHANISMS",
        PyTuple::new(py, powermarket::clearing::Mechanism::NAMES)?,
    )?;
    m.add(
        "PRICE_ACTIONS",
        PyTuple::new(py, powermarket::env::PriceAction::NAMES)?,
    )?;
    m.add_function(wrap_pyfunction!(action_box, m)?)?;
    m.add_function(wrap_pyfunction!(check_actions, m)?)?;
    m.add_function(wrap_pyfunction!(check_seed, m)?)?;
    m.add_function(wrap_pyfunction!(check_steppable, m)?)?;
    m.add_function(wrap_pyfunction!(py_agent_name, m)?)?;
    m.add_function(wrap_pyfunction!(py_agent_index, m)?)?;
    Ok(())
}
