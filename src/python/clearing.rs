use super::{array_arg, elems, expect_shape, filled};
use crate::clearing::{self, Rules, TieRule, Workspace};
use crate::error::try_zeros;
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{PyMemoryError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use std::cell::RefCell;

fn rules(tie_rule: &str, shortage_price: Option<f64>) -> PyResult<Rules> {
    let r = Rules {
        tie_rule: TieRule::parse(tie_rule)?,
        shortage_price,
        ..Rules::default()
    };
    r.validate()?;
    Ok(r)
}

thread_local! {
    static WS: RefCell<Workspace> = RefCell::new(Workspace::new());
}

/// Clear one uniform-price market.
///
/// Offers are sorted by price (merit order); the price is the lowest offer
/// price at which cumulative offered quantity reaches ``demand``. Offers
/// below it clear fully, offers above clear nothing, and offers at it share
/// the rest by ``tie_rule``: ``"pro_rata"`` (by quantity) or ``"index"``
/// (by position, as the classic argsort/cumsum/searchsorted code does). In a
/// shortage everything clears at the highest offer price, or at
/// ``shortage_price`` when given.
///
/// Returns ``(price, cleared)``, a float and a float64 array.
/// Raises ``ValueError`` on NaN/inf prices, negative or non-finite
/// quantities or demand, mismatched or empty arrays, and unknown rules.
#[pyfunction]
#[pyo3(signature = (bids, quantities, demand, *, tie_rule="pro_rata", shortage_price=None))]
fn clear<'py>(
    py: Python<'py>,
    bids: &Bound<'py, PyAny>,
    quantities: &Bound<'py, PyAny>,
    demand: &Bound<'py, PyAny>,
    tie_rule: &str,
    shortage_price: Option<f64>,
) -> PyResult<(f64, Bound<'py, PyArray1<f64>>)> {
    // Floats and ints directly; other objects only if they are real numbers.
    let real = demand.is_exact_instance_of::<pyo3::types::PyFloat>()
        || demand.is_exact_instance_of::<pyo3::types::PyInt>()
        || ((demand.hasattr("__float__")? || demand.hasattr("__index__")?)
            && !demand.is_instance_of::<pyo3::types::PyComplex>());
    let demand: f64 = if !real {
        return Err(PyTypeError::new_err(format!(
            "demand must be a real number (MW), got {}",
            demand.repr().map(|r| r.to_string()).unwrap_or_default()
        )));
    } else {
        demand.extract().map_err(|_| {
            PyValueError::new_err(format!(
                "demand must be a number (MW), got {}",
                demand.repr().map(|r| r.to_string()).unwrap_or_default()
            ))
        })?
    };
    let rules = rules(tie_rule, shortage_price)?;
    let b = array_arg::<f64>(bids, "bids", 1)?;
    let q = array_arg::<f64>(quantities, "quantities", 1)?;
    let (b, q) = (elems(&b), elems(&q));
    let out = unsafe { PyArray1::<f64>::new(py, b.len(), false) };
    // One call validates (errors leave `out` unreturned) and clears.
    let c = WS.with(|ws| {
        clearing::clear_into(b, q, demand, &rules, &mut ws.borrow_mut(), filled(&out))
    })?;
    Ok((c.price, out))
}

/// Clear M independent markets at once.
///
/// ``bids`` and ``quantities`` are (M, N), ``demand`` is (M,). Returns
/// ``(prices (M,), cleared (M, N))``. The GIL is released while clearing and
/// large batches use several threads. Every market is checked before any is
/// cleared; errors name the market.
#[pyfunction]
#[pyo3(signature = (bids, quantities, demand, *, tie_rule="pro_rata", shortage_price=None))]
fn clear_batch<'py>(
    py: Python<'py>,
    bids: &Bound<'py, PyAny>,
    quantities: &Bound<'py, PyAny>,
    demand: &Bound<'py, PyAny>,
    tie_rule: &str,
    shortage_price: Option<f64>,
) -> PyResult<(Bound<'py, PyArray1<f64>>, Bound<'py, PyArray2<f64>>)> {
    let rules = rules(tie_rule, shortage_price)?;
    let b = array_arg::<f64>(bids, "bids", 2)?;
    let q = array_arg::<f64>(quantities, "quantities", 2)?;
    let d = array_arg::<f64>(demand, "demand", 1)?;
    let (m, n) = (b.shape()[0], b.shape()[1]);
    expect_shape("quantities", q.shape(), &[m, n])?;
    expect_shape("demand", d.shape(), &[m])?;
    // Copies the core owns: Python threads may write the inputs while the
    // GIL is released.
    let copy = |a: &Bound<'py, numpy::PyArrayDyn<f64>>| -> PyResult<Vec<f64>> {
        let src = elems(a);
        let mut v = Vec::new();
        v.try_reserve_exact(src.len()).map_err(|_| {
            PyMemoryError::new_err(format!("clear_batch: cannot copy {} values", src.len()))
        })?;
        v.extend_from_slice(src);
        Ok(v)
    };
    let (bs, qs, ds) = (copy(&b)?, copy(&q)?, copy(&d)?);
    let mut p = try_zeros::<f64>(m, "demand")?;
    let mut x = try_zeros::<f64>(m * n, "bids")?;
    py.detach(|| clearing::clear_batch(&bs, &qs, &ds, n, &rules, &mut p, &mut x))?;
    Ok((
        PyArray1::from_vec(py, p),
        PyArray1::from_vec(py, x).reshape([m, n])?,
    ))
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(clear, m)?)?;
    m.add_function(wrap_pyfunction!(clear_batch, m)?)?;
    Ok(())
}
