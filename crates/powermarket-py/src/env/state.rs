//! Pickling of `MarketEnv`: the state it is rebuilt from, RNG included.

use super::PyMarketEnv;
use crate::scenario::PyScenario;
use crate::state_item;
use crate::Core;
use numpy::{PyReadonlyArray1, ToPyArray};
use powermarket::clearing::TieRule;
use powermarket::env::{Market, MarketEnv, Record, Snapshot};
use powermarket::observe::Observer;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};
use pyo3::IntoPyObjectExt;
use std::sync::Arc;

/// `__reduce__`: `_restore_market_env` and its arguments.
pub(super) fn reduce<'py>(
    this: &PyMarketEnv,
    py: Python<'py>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
    let s = this.env.snapshot();
    let state = PyDict::new(py);
    state.set_item("rng_seed", PyBytes::new(py, &s.rng_seed))?;
    state.set_item("rng_stream", s.rng_stream)?;
    state.set_item("rng_word_pos", s.rng_word_pos)?;
    state.set_item("t", s.t)?;
    state.set_item("demand", s.demand.to_pyarray(py))?;
    state.set_item("last_price", s.last_price)?;
    state.set_item("last_cleared", s.last_cleared.to_pyarray(py))?;
    state.set_item("availability", s.availability.to_pyarray(py))?;
    let r = &s.record;
    state.set_item("bids", r.bids.to_pyarray(py))?;
    state.set_item("offered", r.offered.to_pyarray(py))?;
    state.set_item("cleared", r.cleared.to_pyarray(py))?;
    state.set_item("rewards", r.rewards.to_pyarray(py))?;
    state.set_item("prices", r.prices.to_pyarray(py))?;
    state.set_item("record_demand", r.demand.to_pyarray(py))?;
    let restore = py
        .import("powermarket._core")?
        .getattr("_restore_market_env")?;
    let args = PyTuple::new(
        py,
        [
            PyScenario {
                inner: this.env.scenario().clone(),
            }
            .into_bound_py_any(py)?,
            this.observer.name().into_bound_py_any(py)?,
            this.tie_rule.name().into_bound_py_any(py)?,
            state.into_any(),
        ],
    )?;
    Ok((restore, args))
}

fn vec_item<'py, T: numpy::Element + Copy>(d: &Bound<'py, PyDict>, k: &str) -> PyResult<Vec<T>> {
    let a: PyReadonlyArray1<'py, T> = state_item(d, k)?.extract()?;
    Ok(a.as_slice()?.to_vec())
}

/// Rebuild a pickled MarketEnv (internal).
#[pyfunction]
pub(super) fn _restore_market_env(
    scenario: &Bound<'_, PyScenario>,
    observer: &str,
    tie_rule: &str,
    state: &Bound<'_, PyDict>,
) -> PyResult<PyMarketEnv> {
    let observer = Observer::parse(observer).py()?;
    let tie_rule = TieRule::parse(tie_rule).py()?;
    let market = Arc::new(Market::new(scenario.get().inner.clone(), observer, tie_rule).py()?);
    let get = |k: &str| state_item(state, k);
    let seed_bytes: Vec<u8> = get("rng_seed")?.extract()?;
    let rng_seed: [u8; 32] = seed_bytes
        .try_into()
        .map_err(|_| PyValueError::new_err("state: rng_seed must be 32 bytes"))?;
    let snap = Snapshot {
        rng_seed,
        rng_stream: get("rng_stream")?.extract()?,
        rng_word_pos: get("rng_word_pos")?.extract()?,
        t: get("t")?.extract()?,
        demand: vec_item(state, "demand")?,
        last_price: get("last_price")?.extract()?,
        last_cleared: vec_item(state, "last_cleared")?,
        availability: vec_item(state, "availability")?,
        record: Record {
            bids: vec_item(state, "bids")?,
            offered: vec_item(state, "offered")?,
            cleared: vec_item(state, "cleared")?,
            // Derived from the rest by `MarketEnv::record`.
            paid: Vec::new(),
            average_paid: Vec::new(),
            rewards: vec_item(state, "rewards")?,
            prices: vec_item(state, "prices")?,
            demand: vec_item(state, "record_demand")?,
        },
    };
    Ok(PyMarketEnv {
        env: MarketEnv::restore(market, snap).py()?,
        observer,
        tie_rule,
        single: Default::default(),
    })
}
