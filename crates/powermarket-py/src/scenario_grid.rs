//! The network fields of a scenario between Python and the core: node
//! names, nodes, lines and demand shares, a (T, Z) demand split into hourly
//! totals and shares, and default node names.

use super::{array_arg, elems, shape_str};
use numpy::PyUntypedArrayMethods;
use powermarket::network::node_index;
use powermarket::scenario::{Scenario, Value};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::IntoPyObjectExt;

fn repr(o: &Bound<'_, PyAny>) -> String {
    let r = o.repr().map(|r| r.to_string()).unwrap_or_default();
    if r.chars().count() > 80 {
        format!("{}...", r.chars().take(77).collect::<String>())
    } else {
        r
    }
}

/// `node_names`: a list of strings (None: none).
pub(crate) fn names_arg(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<String>> {
    let Some(o) = obj.filter(|o| !o.is_none()) else {
        return Ok(Vec::new());
    };
    if o.is_instance_of::<pyo3::types::PyString>() {
        return Err(PyValueError::new_err(format!(
            "node_names must be a list of strings, got the string {}",
            repr(o)
        )));
    }
    let mut out = Vec::new();
    for (i, item) in o
        .try_iter()
        .map_err(|_| {
            PyValueError::new_err(format!(
                "node_names must be a list of strings, got {}",
                repr(o)
            ))
        })?
        .enumerate()
    {
        let item = item?;
        out.push(item.extract::<String>().map_err(|_| {
            PyValueError::new_err(format!(
                "node_names: node {i} must be a string, got {}",
                repr(&item)
            ))
        })?);
    }
    Ok(out)
}

/// `nodes` / `demand_bid_nodes`: ints >= 0 (None: none); the core checks
/// them against the number of nodes.
pub(crate) fn nodes_arg(
    obj: Option<&Bound<'_, PyAny>>,
    field: &'static str,
) -> PyResult<Vec<usize>> {
    let Some(o) = obj.filter(|o| !o.is_none()) else {
        return Ok(Vec::new());
    };
    let a = array_arg::<f64>(o, field, 1)?;
    elems(&a)
        .iter()
        .enumerate()
        .map(|(i, &v)| node_index(field, i, v, u32::MAX as usize))
        .collect::<powermarket::error::Result<Vec<_>>>()
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

/// `lines`: rows `(from, to, capacity, reactance)` (an (L, 4) array).
pub(crate) fn lines_arg(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<[f64; 4]>> {
    let Some(o) = obj.filter(|o| !o.is_none()) else {
        return Ok(Vec::new());
    };
    if o.len().is_ok_and(|l| l == 0) {
        return Ok(Vec::new());
    }
    let a = array_arg::<f64>(o, "lines", 2)?;
    if a.shape()[1] != 4 {
        return Err(PyValueError::new_err(format!(
            "lines must have shape (L, 4), rows (from, to, capacity MW, reactance), got {}",
            shape_str(a.shape())
        )));
    }
    Ok(elems(&a)
        .chunks_exact(4)
        .map(|r| [r[0], r[1], r[2], r[3]])
        .collect())
}

/// `demand_shares`: None, (Z,) or (T, Z) floats, flattened.
pub(crate) fn shares_arg(obj: Option<&Bound<'_, PyAny>>, t: usize) -> PyResult<Option<Vec<f64>>> {
    let Some(o) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    let ndim = array_arg::<f64>(o, "demand_shares", 1)
        .map(|_| 1)
        .or_else(|_| array_arg::<f64>(o, "demand_shares", 2).map(|_| 2))?;
    let a = array_arg::<f64>(o, "demand_shares", ndim)?;
    if ndim == 2 && a.shape()[0] != t {
        return Err(PyValueError::new_err(format!(
            "demand_shares must be (Z,) or (T, Z) with T = {t} hours, got {}",
            shape_str(a.shape())
        )));
    }
    Ok(Some(elems(&a).to_vec()))
}

/// The shares as Python values: a list of Z, or T rows of Z.
pub(crate) fn shares_py<'py>(py: Python<'py>, s: &Scenario) -> PyResult<Bound<'py, PyAny>> {
    match &s.demand_shares {
        Some(sh) if sh.len() != s.z() => sh
            .chunks(s.z())
            .map(<[f64]>::to_vec)
            .collect::<Vec<_>>()
            .into_bound_py_any(py),
        other => other.clone().into_bound_py_any(py),
    }
}

/// A (T, Z) `demand` as hourly totals (summed in node order) and (T, Z)
/// shares `d[t, z] / total[t]`; `None` for a 1-D demand.
pub(crate) fn split_node_demand(obj: &Bound<'_, PyAny>) -> PyResult<Option<(Vec<f64>, Vec<f64>)>> {
    let Ok(a) = array_arg::<f64>(obj, "demand", 2) else {
        return Ok(None);
    };
    let z = a.shape()[1];
    if z == 0 {
        return Err(PyValueError::new_err(
            "demand of shape (T, 0): give at least one node",
        ));
    }
    let d = elems(&a);
    for (i, &v) in d.iter().enumerate() {
        if !(v.is_finite() && v >= 0.0) {
            return Err(crate::errors::py_err(
                powermarket::error::MarketError::scenario(
                    "demand",
                    format!(
                        "hour {}, node {}: a node's demand must be finite and >= 0, got {v}",
                        i / z,
                        i % z
                    ),
                ),
            ));
        }
    }
    let mut totals = Vec::with_capacity(a.shape()[0]);
    let mut shares = Vec::with_capacity(d.len());
    for row in d.chunks_exact(z) {
        let total = row.iter().fold(0.0, |s, &v| s + v);
        totals.push(total);
        shares.extend(row.iter().map(|&v| v / total));
    }
    Ok(Some((totals, shares)))
}

/// The number of nodes a scenario without node names implies: the most of
/// the shares' width `shares_width`, one past the largest node of an
/// agent, a line end or a demand bid.
pub(crate) fn implied_nodes(s: &Scenario, shares_width: usize) -> usize {
    let from_nodes = s
        .nodes
        .iter()
        .chain(&s.demand_bid_nodes)
        .map(|&k| k + 1)
        .max()
        .unwrap_or(0);
    let from_lines = s
        .lines
        .iter()
        .map(|r| r[0].max(r[1]))
        .filter(|v| v.is_finite() && *v >= 0.0 && *v < u32::MAX as f64)
        .map(|v| v as usize + 1)
        .max()
        .unwrap_or(0);
    shares_width.max(from_nodes).max(from_lines)
}

/// The width (last dimension) of a `demand_shares` or 2-D `demand` value.
pub(crate) fn width_of(obj: Option<&Bound<'_, PyAny>>) -> usize {
    obj.filter(|o| !o.is_none())
        .and_then(|o| {
            o.getattr("shape").ok().or_else(|| {
                let np = o.py().import("numpy").ok()?;
                np.call_method1("shape", (o,)).ok()
            })
        })
        .and_then(|shape| shape.extract::<Vec<usize>>().ok())
        .and_then(|shape| shape.last().copied())
        .unwrap_or(0)
}

/// Name the nodes `node_0 ..` when a networked scenario gives no names.
pub(crate) fn default_names(s: &mut Scenario, shares_width: usize) -> PyResult<()> {
    if !s.node_names.is_empty() {
        return Ok(());
    }
    let z = implied_nodes(s, shares_width);
    if z > 1 {
        if z > powermarket::network::MAX_NODES {
            // Name the field whose largest node index implies so many nodes.
            let largest = |v: &[usize]| v.iter().map(|&k| k + 1).max().unwrap_or(0);
            let field = if largest(&s.nodes) == z {
                "nodes"
            } else if largest(&s.demand_bid_nodes) == z {
                "demand_bid_nodes"
            } else {
                "lines"
            };
            return Err(crate::errors::py_err(
                powermarket::error::MarketError::scenario(
                    field,
                    format!(
                        "a network has at most {} nodes; this node index implies {z} (name the \
                     nodes with node_names)",
                        powermarket::network::MAX_NODES
                    ),
                ),
            ));
        }
        s.set(
            "node_names",
            Value::Names((0..z).map(|k| format!("node_{k}")).collect()),
        )
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    }
    Ok(())
}
