//! The front steps' inputs: one agent's action, as the PettingZoo dict
//! step and the Gymnasium single-learner step receive it.

use crate::{actions_arg, expect_shape};
use numpy::{PyArray1, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

/// Two finite numbers from a plain action: a 1-D float32/float64 array of
/// length 2, or a list/tuple of two floats or ints. `None` for anything else.
pub(super) fn plain_pair(action: &Bound<'_, PyAny>) -> Option<[f64; 2]> {
    let array = crate::is_plain_ndarray(action);
    let pair = if let Some(a) = action.cast::<PyArray1<f32>>().ok().filter(|_| array) {
        let ro = a.try_readonly().ok()?;
        let v = ro.as_array();
        (v.len() == 2).then(|| [v[0] as f64, v[1] as f64])?
    } else if let Some(a) = action.cast::<PyArray1<f64>>().ok().filter(|_| array) {
        let ro = a.try_readonly().ok()?;
        let v = ro.as_array();
        (v.len() == 2).then(|| [v[0], v[1]])?
    } else if action.is_exact_instance_of::<PyList>() || action.is_exact_instance_of::<PyTuple>() {
        let seq = action.cast::<pyo3::types::PySequence>().ok()?;
        if seq.len().ok()? != 2 {
            return None;
        }
        let mut out = [0.0; 2];
        for (k, o) in out.iter_mut().enumerate() {
            let x = seq.get_item(k).ok()?;
            *o = if x.is_exact_instance_of::<pyo3::types::PyFloat>() {
                x.extract::<f64>().ok()?
            } else if x.is_exact_instance_of::<pyo3::types::PyInt>() {
                // Ints NumPy would not make a number array of: the general conversion.
                x.extract::<i64>().ok()? as f64
            } else {
                return None;
            };
        }
        out
    } else {
        return None;
    };
    pair.iter().all(|x| x.is_finite()).then_some(pair)
}

/// Two finite-or-not numbers from one agent's action: a float32/float64
/// array of shape (2,), or any sequence of two numbers. `None` if malformed.
pub(super) fn action_pair(act: &Bound<'_, PyAny>) -> PyResult<Option<[f32; 2]>> {
    if crate::is_plain_ndarray(act) {
        if let Ok(a) = act.cast::<PyArray1<f32>>() {
            if a.len() != 2 {
                return Ok(None);
            }
            if let Ok(ro) = a.try_readonly() {
                let v = ro.as_array();
                return Ok(Some([v[0], v[1]]));
            }
        }
    }
    match actions_arg(act, 1) {
        Ok(a) => {
            let v = a.values();
            Ok((v.len() == 2).then(|| [v[0], v[1]]))
        }
        // Not numbers at all (str, complex, masked, ...): TypeError as everywhere.
        Err(e) if e.is_instance_of::<pyo3::exceptions::PyTypeError>(act.py()) => Err(e),
        Err(_) => Ok(None),
    }
}

/// One agent's K blocks, shape (K, 2), as 2K float32 values (not yet
/// checked for finiteness: the env step names a bad value).
pub(super) fn agent_blocks(act: &Bound<'_, PyAny>, k: usize) -> PyResult<Vec<f32>> {
    let py = act.py();
    let a = actions_arg(act, 2).map_err(|e| {
        if e.is_instance_of::<PyValueError>(py) {
            PyValueError::new_err(format!(
                "expected shape ({k}, 2), [a0, a1] per offer block: {}",
                e.value(py)
            ))
        } else {
            e
        }
    })?;
    expect_shape("actions", a.shape(), &[k, 2])?;
    Ok(a.values().to_vec())
}

/// One agent's action row for the PettingZoo step: 2 numbers, or (K, 2)
/// with K blocks, as 2K float32 values clipped to the box (NaN stays, for
/// the core to report). Errors name the agent.
pub(super) fn agent_row(act: &Bound<'_, PyAny>, k: usize, name: &str) -> PyResult<Vec<f32>> {
    let py = act.py();
    let named = |e: PyErr| {
        let msg = format!("actions for {name}: {}", e.value(py));
        if e.is_instance_of::<pyo3::exceptions::PyTypeError>(py) {
            pyo3::exceptions::PyTypeError::new_err(msg)
        } else {
            PyValueError::new_err(msg)
        }
    };
    if k > 1 {
        return agent_blocks(act, k).map_err(named);
    }
    let pair = action_pair(act).map_err(named)?.ok_or_else(|| {
        PyValueError::new_err(format!(
            "actions for {name}: expected 2 numbers [a0, a1] (shape (2,)), got {}",
            act.repr().map(|r| r.to_string()).unwrap_or_default()
        ))
    })?;
    Ok(pair.to_vec())
}

/// The learner's action of the single-learner step: any array of 2K
/// numbers (shape (2,), (K, 2) or flat), clipped to the box in float64.
/// Shape errors name the agent.
pub(super) fn learner_action(
    action: &Bound<'_, PyAny>,
    k: usize,
    agent: usize,
    generators: usize,
) -> PyResult<Vec<f32>> {
    let shape: Vec<usize> = if k == 1 { vec![2] } else { vec![k, 2] };
    let arg = format!(
        "action for {}",
        powermarket::env::action::agent_name(agent, generators)
    );
    crate::checks::actions_values(action, &shape, &arg, true)
}
