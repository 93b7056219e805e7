use super::{array_arg, elems, expect_shape, filled};
use crate::Core;
use numpy::{PyArray1, PyArrayMethods, PyUntypedArrayMethods};
use powermarket::clearing::{self, Rules, TieRule, Workspace};
use powermarket::error::try_zeros;
use pyo3::exceptions::{PyMemoryError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use pyo3::IntoPyObjectExt;
use std::cell::RefCell;

pub(crate) fn rules(
    tie_rule: &str,
    shortage_price: Option<f64>,
    price_cap: Option<f64>,
    price_floor: Option<f64>,
    mechanism: Option<&str>,
) -> PyResult<Rules> {
    let r = Rules {
        tie_rule: TieRule::parse(tie_rule).py()?,
        shortage_price,
        price_cap,
        price_floor,
        mechanism: mechanism
            .map(str::parse)
            .transpose()
            .py()?
            .unwrap_or_default(),
    };
    r.validate().py()?;
    Ok(r)
}

/// `demand_bids=(prices, quantities)`: two arrays of `ndim` dimensions.
fn demand_bids_arg<'py>(
    obj: &Bound<'py, PyAny>,
    ndim: usize,
) -> PyResult<(
    Bound<'py, numpy::PyArrayDyn<f64>>,
    Bound<'py, numpy::PyArrayDyn<f64>>,
)> {
    let pair = obj
        .extract::<(Bound<'py, PyAny>, Bound<'py, PyAny>)>()
        .map_err(|_| {
            PyTypeError::new_err(format!(
                "demand_bids must be a pair (prices, quantities), got {}",
                obj.repr().map(|r| r.to_string()).unwrap_or_default()
            ))
        })?;
    let p = array_arg::<f64>(&pair.0, "demand_bids prices", ndim)?;
    let q = array_arg::<f64>(&pair.1, "demand_bids quantities", ndim)?;
    if p.shape() != q.shape() {
        return Err(PyValueError::new_err(format!(
            "demand_bids quantities must have the shape of demand_bids prices {:?}, got {:?}",
            p.shape(),
            q.shape()
        )));
    }
    Ok((p, q))
}

pub(crate) fn copy_vec(src: &[f64], arg: &str) -> PyResult<Vec<f64>> {
    let mut v = Vec::new();
    v.try_reserve_exact(src.len())
        .map_err(|_| PyMemoryError::new_err(format!("{arg}: cannot copy {} values", src.len())))?;
    v.extend_from_slice(src);
    Ok(v)
}

thread_local! {
    static WS: RefCell<Workspace> = const { RefCell::new(Workspace::new()) };
}

/// Clear one market.
///
/// Offers are sorted by price (merit order); without demand bids the price is
/// the lowest offer price at which cumulative offered quantity reaches
/// ``demand``. Offers below it clear fully, offers above clear nothing, and
/// offers at it share the rest by ``tie_rule``: ``"pro_rata"`` (by quantity)
/// or ``"index"`` (by position, as the classic argsort/cumsum/searchsorted
/// code does). In a shortage everything clears at ``price_cap``, else
/// ``shortage_price``, else the highest offer price.
///
/// ``demand`` is the inelastic part; ``demand_bids=(prices, quantities)`` adds
/// price-responsive bids, and the price becomes the lowest offer or bid price
/// at which supply meets the demand priced above it (docs/semantics.md).
/// ``price_cap``/``price_floor`` clip every offer and bid price first.
///
/// Returns ``(price, cleared)``; then ``served`` (per bid) when
/// ``demand_bids`` is given, then ``paid`` (the price paid per MWh of each
/// offer under ``mechanism``: ``"uniform"`` or ``"pay_as_bid"``) when
/// ``mechanism`` is given. Dispatch does not depend on the mechanism.
/// Raises ``ValueError`` on NaN/inf prices, negative or non-finite
/// quantities or demand, mismatched or empty arrays, and unknown rules.
#[pyfunction]
#[pyo3(signature = (
    bids, quantities, demand, *, tie_rule="pro_rata", shortage_price=None,
    demand_bids=None, price_cap=None, price_floor=None, mechanism=None
))]
#[allow(clippy::too_many_arguments)]
fn clear<'py>(
    py: Python<'py>,
    bids: &Bound<'py, PyAny>,
    quantities: &Bound<'py, PyAny>,
    demand: &Bound<'py, PyAny>,
    tie_rule: &str,
    shortage_price: Option<f64>,
    demand_bids: Option<&Bound<'py, PyAny>>,
    price_cap: Option<f64>,
    price_floor: Option<f64>,
    mechanism: Option<&str>,
) -> PyResult<Bound<'py, PyTuple>> {
    let demand = demand_arg(demand)?;
    let rules = rules(tie_rule, shortage_price, price_cap, price_floor, mechanism)?;
    let b = array_arg::<f64>(bids, "bids", 1)?;
    let q = array_arg::<f64>(quantities, "quantities", 1)?;
    let (b, q) = (elems(&b), elems(&q));
    // SAFETY: float64 has no invalid bit patterns; the clearing below writes
    // every value, or fails and the array is dropped unseen.
    let out = unsafe { PyArray1::<f64>::new(py, b.len(), false) };
    if demand_bids.is_none() && !rules.has_limits() && mechanism.is_none() {
        // One call validates (errors leave `out` unreturned) and clears.
        let c = WS
            .with(|ws| {
                clearing::clear_into(b, q, demand, &rules, &mut ws.borrow_mut(), filled(&out))
            })
            .py()?;
        return (c.price, out).into_pyobject(py);
    }
    clear_design(
        py,
        b,
        q,
        demand,
        rules,
        demand_bids,
        mechanism.is_some(),
        out,
    )
}

/// `demand` as MW: a float or int directly, other objects only if they are
/// real numbers (TypeError for complex, strings and the like).
#[inline]
fn demand_arg(demand: &Bound<'_, PyAny>) -> PyResult<f64> {
    if let Ok(f) = demand.cast_exact::<pyo3::types::PyFloat>() {
        return Ok(f.value());
    }
    demand_slow(demand)
}

#[cold]
#[inline(never)]
fn demand_slow(demand: &Bound<'_, PyAny>) -> PyResult<f64> {
    let real = demand.is_exact_instance_of::<pyo3::types::PyInt>()
        || ((demand.hasattr("__float__")? || demand.hasattr("__index__")?)
            && !demand.is_instance_of::<pyo3::types::PyComplex>());
    if !real {
        return Err(PyTypeError::new_err(format!(
            "demand must be a real number (MW), got {}",
            demand.repr().map(|r| r.to_string()).unwrap_or_default()
        )));
    }
    demand.extract().map_err(|_| {
        PyValueError::new_err(format!(
            "demand must be a number (MW), got {}",
            demand.repr().map(|r| r.to_string()).unwrap_or_default()
        ))
    })
}

/// [`clear`] with demand bids, a cap or floor, or a mechanism (out of line,
/// so that the plain call stays small).
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn clear_design<'py>(
    py: Python<'py>,
    b: &[f64],
    q: &[f64],
    demand: f64,
    rules: Rules,
    demand_bids: Option<&Bound<'py, PyAny>>,
    with_paid: bool,
    out: Bound<'py, PyArray1<f64>>,
) -> PyResult<Bound<'py, PyTuple>> {
    clearing::validate(b, q, demand, &rules).py()?;
    let bid_arrays = demand_bids.map(|d| demand_bids_arg(d, 1)).transpose()?;
    let (bid_p, bid_q): (Vec<f64>, &[f64]) = match &bid_arrays {
        Some((p, q)) => (copy_vec(elems(p), "demand_bids")?, elems(q)),
        None => (Vec::new(), &[]),
    };
    clearing::validate_bids(&bid_p, bid_q).py()?;
    clearing::validate_demand_total(demand, bid_q).py()?;
    // Clip after validating, so that errors report the prices as given.
    let mut clipped = copy_vec(b, "bids")?;
    rules.clip_all(&mut clipped);
    let mut bid_p = bid_p;
    rules.clip_all(&mut bid_p);
    let (mut groups, mut group_of) = (Vec::new(), Vec::new());
    clearing::group_bids(&bid_p, bid_q, &mut groups, &mut group_of).py()?;
    let mut served_g = vec![0.0; groups.len()];
    let curve = clearing::DemandCurve {
        inelastic: demand,
        groups: &groups,
    };
    let c = WS.with(|ws| {
        clearing::clear_elastic_unchecked(
            &clipped,
            q,
            &curve,
            &rules,
            &mut ws.borrow_mut(),
            filled(&out),
            &mut served_g,
        )
    });
    let mut items = vec![c.price.into_bound_py_any(py)?, out.into_any()];
    if demand_bids.is_some() {
        let mut served = vec![0.0; bid_q.len()];
        clearing::spread_served(bid_q, &group_of, &groups, &served_g, &mut served);
        items.push(PyArray1::from_vec(py, served).into_any());
    }
    if with_paid {
        let mut paid = vec![0.0; clipped.len()];
        rules.mechanism.settle(c.price, &clipped, &mut paid);
        items.push(PyArray1::from_vec(py, paid).into_any());
    }
    PyTuple::new(py, items)
}

/// Clear M independent markets at once.
///
/// ``bids`` and ``quantities`` are (M, N), ``demand`` is (M,), and
/// ``demand_bids`` (optional) a pair of (M, B) arrays. Returns
/// ``(prices (M,), cleared (M, N))``, then ``served (M, B)`` with demand bids
/// and ``paid (M, N)`` with a mechanism, as :func:`clear` does per market.
/// The GIL is released while clearing and large batches use several
/// threads. Every market is checked before any is cleared; errors name the
/// market.
#[pyfunction]
#[pyo3(signature = (
    bids, quantities, demand, *, tie_rule="pro_rata", shortage_price=None,
    demand_bids=None, price_cap=None, price_floor=None, mechanism=None
))]
#[allow(clippy::too_many_arguments)]
fn clear_batch<'py>(
    py: Python<'py>,
    bids: &Bound<'py, PyAny>,
    quantities: &Bound<'py, PyAny>,
    demand: &Bound<'py, PyAny>,
    tie_rule: &str,
    shortage_price: Option<f64>,
    demand_bids: Option<&Bound<'py, PyAny>>,
    price_cap: Option<f64>,
    price_floor: Option<f64>,
    mechanism: Option<&str>,
) -> PyResult<Bound<'py, PyTuple>> {
    let rules = rules(tie_rule, shortage_price, price_cap, price_floor, mechanism)?;
    let b = array_arg::<f64>(bids, "bids", 2)?;
    let q = array_arg::<f64>(quantities, "quantities", 2)?;
    let d = array_arg::<f64>(demand, "demand", 1)?;
    let (m, n) = (b.shape()[0], b.shape()[1]);
    expect_shape("quantities", q.shape(), &[m, n])?;
    expect_shape("demand", d.shape(), &[m])?;
    let bid_arrays = demand_bids.map(|x| demand_bids_arg(x, 2)).transpose()?;
    let nb = match &bid_arrays {
        Some((p, _)) => {
            if p.shape()[0] != m {
                return Err(PyValueError::new_err(format!(
                    "demand_bids prices must have shape ({m}, B) (one row per market), got {:?}",
                    p.shape()
                )));
            }
            p.shape()[1]
        }
        None => 0,
    };
    // Copies the core owns: Python threads may write the inputs while the
    // GIL is released.
    let (bs, qs, ds) = (
        copy_vec(elems(&b), "bids")?,
        copy_vec(elems(&q), "quantities")?,
        copy_vec(elems(&d), "demand")?,
    );
    let (bp, bq) = match &bid_arrays {
        Some((p, q)) => (
            copy_vec(elems(p), "demand_bids")?,
            copy_vec(elems(q), "demand_bids")?,
        ),
        None => (Vec::new(), Vec::new()),
    };
    let mut p = try_zeros::<f64>(m, "demand").py()?;
    let mut x = try_zeros::<f64>(m * n, "bids").py()?;
    let mut served = try_zeros::<f64>(m * nb, "demand_bids").py()?;
    let mut paid = if mechanism.is_some() {
        try_zeros::<f64>(m * n, "bids").py()?
    } else {
        Vec::new()
    };
    let want_paid = mechanism.is_some();
    let has_bids = bid_arrays.is_some();
    py.detach(|| {
        clearing::clear_batch_with(
            &bs,
            &qs,
            &ds,
            n,
            has_bids.then_some(clearing::BatchBids {
                prices: &bp,
                quantities: &bq,
                b: nb,
            }),
            &rules,
            clearing::BatchOut {
                prices: &mut p,
                cleared: &mut x,
                served: &mut served,
                paid: want_paid.then_some(&mut paid[..]),
            },
        )
    })
    .py()?;
    let mut items = vec![
        PyArray1::from_vec(py, p).into_any(),
        PyArray1::from_vec(py, x).reshape([m, n])?.into_any(),
    ];
    if bid_arrays.is_some() {
        items.push(PyArray1::from_vec(py, served).reshape([m, nb])?.into_any());
    }
    if want_paid {
        items.push(PyArray1::from_vec(py, paid).reshape([m, n])?.into_any());
    }
    PyTuple::new(py, items)
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(clear, m)?)?;
    m.add_function(wrap_pyfunction!(clear_batch, m)?)?;
    Ok(())
}
