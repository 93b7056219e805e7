//! `clear_network` and `clear_network_batch`: convert, copy, release the
//! GIL, call `powermarket::network`, publish.

use super::{array_arg, elems, expect_shape};
use crate::clearing::{copy_vec, rules};
use crate::Core;
use numpy::{PyArray1, PyArrayMethods, PyUntypedArrayMethods};
use powermarket::error::try_zeros;
use powermarket::network::{
    self, node_indices, Model, NetWorkspace, Network, NetworkBatch, NetworkBatchOut, NetworkOut,
    NodalBids,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

thread_local! {
    /// One workspace per thread, reused across calls (the GIL is released
    /// while it is in use, so each OS thread needs its own).
    static NWS: std::cell::RefCell<NetWorkspace> = std::cell::RefCell::new(NetWorkspace::default());
}

/// `lines` as rows `[from, to, capacity, reactance]`: an (L, 4) array, or
/// an empty sequence for no lines.
fn lines_arg(obj: &Bound<'_, PyAny>) -> PyResult<Vec<[f64; 4]>> {
    let a = match array_arg::<f64>(obj, "lines", 2) {
        Ok(a) => a,
        // An empty list or array is "no lines".
        Err(e) => match array_arg::<f64>(obj, "lines", 1) {
            Ok(flat) if flat.len() == 0 => return Ok(Vec::new()),
            _ => return Err(e),
        },
    };
    let shape = a.shape();
    if shape[1] != 4 && shape[0] != 0 {
        return Err(PyValueError::new_err(format!(
            "lines must have shape (L, 4) (rows [from, to, capacity, reactance]), got {}",
            super::shape_str(shape)
        )));
    }
    let flat = elems(&a);
    let mut rows = Vec::new();
    rows.try_reserve_exact(shape[0]).map_err(|_| {
        pyo3::exceptions::PyMemoryError::new_err(format!("lines: cannot copy {} rows", shape[0]))
    })?;
    rows.extend(flat.chunks_exact(4).map(|r| [r[0], r[1], r[2], r[3]]));
    Ok(rows)
}

/// `demand_bids=(prices, quantities, nodes)`: prices and quantities of
/// `ndim` dimensions, nodes 1-D.
fn nodal_bids_arg<'py>(
    obj: &Bound<'py, PyAny>,
    ndim: usize,
) -> PyResult<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    let triple = obj
        .extract::<(Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyAny>)>()
        .map_err(|_| {
            PyTypeError::new_err(format!(
                "demand_bids must be a triple (prices, quantities, nodes), got {}",
                obj.repr().map(|r| r.to_string()).unwrap_or_default()
            ))
        })?;
    let p = array_arg::<f64>(&triple.0, "demand_bids prices", ndim)?;
    let q = array_arg::<f64>(&triple.1, "demand_bids quantities", ndim)?;
    let k = array_arg::<f64>(&triple.2, "demand_bids nodes", 1)?;
    if p.shape() != q.shape() {
        return Err(PyValueError::new_err(format!(
            "demand_bids quantities must have the shape of demand_bids prices {}, got {}",
            super::shape_str(p.shape()),
            super::shape_str(q.shape())
        )));
    }
    let b = p.shape()[ndim - 1];
    expect_shape("demand_bids nodes", k.shape(), &[b])?;
    Ok((
        copy_vec(elems(&p), "demand_bids")?,
        copy_vec(elems(&q), "demand_bids")?,
        copy_vec(elems(&k), "demand_bids")?,
    ))
}

/// Clear one hour on a network of Z nodes (``demand`` is (Z,) MW).
///
/// ``nodes`` (N,) gives the node of each offer, ``lines`` is (L, 4) with
/// rows ``[from, to, capacity_MW, reactance]`` (capacity ``inf`` for no
/// limit; the reactance is ignored by ``model="transport"``). ``model`` is
/// ``"dc"`` (flows = PTDF x injections) or ``"transport"`` (free flows per
/// line, no loop flows). The network must be connected.
///
/// The dispatch maximises welfare subject to each node's balance and the
/// line limits; prices are the duals of the node balances. With no line
/// binding the result is :func:`clear`'s on the total demand, bit for bit.
/// ``demand_bids=(prices, quantities, nodes)`` adds price-responsive bids
/// at nodes; cap, floor, shortage price and tie rule are those of
/// :func:`clear`, applied at each node (docs/semantics.md).
///
/// Returns ``(prices (Z,), cleared (N,), flows (L,))``, then ``served (B,)``
/// with demand bids and ``paid (N,)`` (what each offer is paid per MWh)
/// when ``mechanism`` is given. The GIL is released while clearing.
#[pyfunction]
#[pyo3(signature = (
    bids, quantities, nodes, demand, lines, *, model="dc", demand_bids=None,
    price_cap=None, price_floor=None, shortage_price=None, mechanism=None,
    tie_rule="pro_rata"
))]
#[allow(clippy::too_many_arguments)]
fn clear_network<'py>(
    py: Python<'py>,
    bids: &Bound<'py, PyAny>,
    quantities: &Bound<'py, PyAny>,
    nodes: &Bound<'py, PyAny>,
    demand: &Bound<'py, PyAny>,
    lines: &Bound<'py, PyAny>,
    model: &str,
    demand_bids: Option<&Bound<'py, PyAny>>,
    price_cap: Option<f64>,
    price_floor: Option<f64>,
    shortage_price: Option<f64>,
    mechanism: Option<&str>,
    tie_rule: &str,
) -> PyResult<Bound<'py, PyTuple>> {
    let rules = rules(tie_rule, shortage_price, price_cap, price_floor, mechanism)?;
    let model: Model = model.parse().py()?;
    let b = array_arg::<f64>(bids, "bids", 1)?;
    let q = array_arg::<f64>(quantities, "quantities", 1)?;
    let k = array_arg::<f64>(nodes, "nodes", 1)?;
    let d = array_arg::<f64>(demand, "demand", 1)?;
    let rows = lines_arg(lines)?;
    // Copies the core owns: Python threads may write the inputs while the
    // GIL is released.
    let (bs, qs, ds) = (
        copy_vec(elems(&b), "bids")?,
        copy_vec(elems(&q), "quantities")?,
        copy_vec(elems(&d), "demand")?,
    );
    let z = ds.len();
    let net = Network::new(z, &rows, model).py()?;
    if k.len() != bs.len() {
        return Err(PyValueError::new_err(format!(
            "length mismatch: nodes has length {}, expected {} (the length of bids)",
            k.len(),
            bs.len()
        )));
    }
    let node_of = node_indices("nodes", elems(&k), z).py()?;
    let bid_arrays = demand_bids.map(|x| nodal_bids_arg(x, 1)).transpose()?;
    let (bp, bq, bn) = match bid_arrays {
        Some((p, q, nk)) => {
            let bn = node_indices("demand_bids nodes", &nk, z).py()?;
            (p, q, bn)
        }
        None => (Vec::new(), Vec::new(), Vec::new()),
    };
    let (n, l, nb) = (bs.len(), rows.len(), bp.len());
    let mut prices = try_zeros::<f64>(z, "demand").py()?;
    let mut cleared = try_zeros::<f64>(n, "bids").py()?;
    let mut flows = try_zeros::<f64>(l, "lines").py()?;
    let mut served = try_zeros::<f64>(nb, "demand_bids").py()?;
    let mut shed = try_zeros::<f64>(z, "demand").py()?;
    let want_paid = mechanism.is_some();
    let mut paid = if want_paid {
        try_zeros::<f64>(n, "bids").py()?
    } else {
        Vec::new()
    };
    let has_bids = demand_bids.is_some();
    py.detach(|| -> powermarket::Result<()> {
        NWS.with(|cell| {
            let mut ws = cell.borrow_mut();
            let ws = &mut *ws;
            network::clear_network(
                &bs,
                &qs,
                &node_of,
                &ds,
                &net,
                has_bids.then_some(NodalBids {
                    prices: &bp,
                    quantities: &bq,
                    nodes: &bn,
                }),
                &rules,
                ws,
                NetworkOut {
                    prices: &mut prices,
                    cleared: &mut cleared,
                    flows: &mut flows,
                    served: &mut served,
                    shed: &mut shed,
                },
            )?;
            if want_paid {
                network::settle(&rules, &prices, &node_of, ws.clipped(), &mut paid);
            }
            Ok(())
        })
    })
    .py()?;
    let mut items = vec![
        PyArray1::from_vec(py, prices).into_any(),
        PyArray1::from_vec(py, cleared).into_any(),
        PyArray1::from_vec(py, flows).into_any(),
    ];
    if has_bids {
        items.push(PyArray1::from_vec(py, served).into_any());
    }
    if want_paid {
        items.push(PyArray1::from_vec(py, paid).into_any());
    }
    PyTuple::new(py, items)
}

/// Clear M hours (or markets) on one network, as :func:`clear_network`
/// does each.
///
/// ``bids`` and ``quantities`` are (M, N), ``demand`` (M, Z); ``nodes``
/// (N,) and ``lines`` (L, 4) are shared. ``demand_bids`` is ``(prices (M,
/// B), quantities (M, B), nodes (B,))``. Returns ``(prices (M, Z), cleared
/// (M, N), flows (M, L))``, then ``served (M, B)`` with demand bids and
/// ``paid (M, N)`` with a mechanism. Every market is checked before any is
/// cleared (errors name the market); the GIL is released and large batches
/// use several threads.
#[pyfunction]
#[pyo3(signature = (
    bids, quantities, nodes, demand, lines, *, model="dc", demand_bids=None,
    price_cap=None, price_floor=None, shortage_price=None, mechanism=None,
    tie_rule="pro_rata"
))]
#[pyo3(name = "clear_network_batch")]
#[allow(clippy::too_many_arguments)]
fn clear_network_batch<'py>(
    py: Python<'py>,
    bids: &Bound<'py, PyAny>,
    quantities: &Bound<'py, PyAny>,
    nodes: &Bound<'py, PyAny>,
    demand: &Bound<'py, PyAny>,
    lines: &Bound<'py, PyAny>,
    model: &str,
    demand_bids: Option<&Bound<'py, PyAny>>,
    price_cap: Option<f64>,
    price_floor: Option<f64>,
    shortage_price: Option<f64>,
    mechanism: Option<&str>,
    tie_rule: &str,
) -> PyResult<Bound<'py, PyTuple>> {
    let rules = rules(tie_rule, shortage_price, price_cap, price_floor, mechanism)?;
    let model: Model = model.parse().py()?;
    let b = array_arg::<f64>(bids, "bids", 2)?;
    let q = array_arg::<f64>(quantities, "quantities", 2)?;
    let k = array_arg::<f64>(nodes, "nodes", 1)?;
    let d = array_arg::<f64>(demand, "demand", 2)?;
    let rows = lines_arg(lines)?;
    let (m, n) = (b.shape()[0], b.shape()[1]);
    let z = d.shape()[1];
    expect_shape("quantities", q.shape(), &[m, n])?;
    expect_shape("nodes", k.shape(), &[n])?;
    expect_shape("demand", d.shape(), &[m, z])?;
    let net = Network::new(z, &rows, model).py()?;
    let node_of = node_indices("nodes", elems(&k), z).py()?;
    let (bs, qs, ds) = (
        copy_vec(elems(&b), "bids")?,
        copy_vec(elems(&q), "quantities")?,
        copy_vec(elems(&d), "demand")?,
    );
    let has_bids = demand_bids.is_some();
    let (bp, bq, bn) = match demand_bids.map(|x| nodal_bids_arg(x, 2)).transpose()? {
        Some((p, q, nk)) => {
            let bn = node_indices("demand_bids nodes", &nk, z).py()?;
            if p.len() != m * bn.len() {
                return Err(PyValueError::new_err(format!(
                    "demand_bids prices must have shape ({m}, {}) (one row per market), got {} \
                     values",
                    bn.len(),
                    p.len()
                )));
            }
            (p, q, bn)
        }
        None => (Vec::new(), Vec::new(), Vec::new()),
    };
    let (l, nb) = (rows.len(), bn.len());
    let size =
        |a: usize, c: usize, what: &'static str| powermarket::error::checked_size(a, c, what).py();
    let mut prices = try_zeros::<f64>(size(m, z, "demand")?, "demand").py()?;
    let mut cleared = try_zeros::<f64>(size(m, n, "bids")?, "bids").py()?;
    let mut flows = try_zeros::<f64>(size(m, l, "lines")?, "lines").py()?;
    let mut served = try_zeros::<f64>(size(m, nb, "demand_bids")?, "demand_bids").py()?;
    let mut rent = try_zeros::<f64>(m, "demand").py()?;
    let want_paid = mechanism.is_some();
    let mut paid = if want_paid {
        try_zeros::<f64>(size(m, n, "bids")?, "bids").py()?
    } else {
        Vec::new()
    };
    py.detach(|| {
        network::clear_network_batch(
            NetworkBatch {
                bids: &bs,
                quantities: &qs,
                nodes: &node_of,
                demand: &ds,
                bid_prices: &bp,
                bid_quantities: &bq,
                bid_nodes: &bn,
            },
            &net,
            &rules,
            NetworkBatchOut {
                prices: &mut prices,
                cleared: &mut cleared,
                flows: &mut flows,
                served: &mut served,
                rent: &mut rent,
                paid: want_paid.then_some(&mut paid[..]),
            },
        )
    })
    .py()?;
    let mut items = vec![
        PyArray1::from_vec(py, prices).reshape([m, z])?.into_any(),
        PyArray1::from_vec(py, cleared).reshape([m, n])?.into_any(),
        PyArray1::from_vec(py, flows).reshape([m, l])?.into_any(),
    ];
    if has_bids {
        items.push(PyArray1::from_vec(py, served).reshape([m, nb])?.into_any());
    }
    if want_paid {
        items.push(PyArray1::from_vec(py, paid).reshape([m, n])?.into_any());
    }
    PyTuple::new(py, items)
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(clear_network, m)?)?;
    m.add_function(wrap_pyfunction!(clear_network_batch, m)?)?;
    m.add("NETWORK_MODELS", PyTuple::new(m.py(), Model::NAMES)?)?;
    Ok(())
}
