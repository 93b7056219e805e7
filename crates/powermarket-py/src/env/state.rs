//! Pickling of `MarketEnv`: the state it is rebuilt from, RNG included.

use super::PyMarketEnv;
use crate::pickle::{check_format, item, new_state, rng_from_py, rng_to_py, vec_item};
use crate::scenario::PyScenario;
use crate::Core;
use numpy::ToPyArray;
use powermarket::clearing::TieRule;
use powermarket::env::{Market, MarketEnv, Record, Snapshot};
use powermarket::observe::Observer;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use pyo3::IntoPyObjectExt;
use std::sync::Arc;

/// `__reduce__`: `_restore_market_env` and its arguments.
pub(super) fn reduce<'py>(
    this: &PyMarketEnv,
    py: Python<'py>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
    let s = this.env.snapshot();
    let state = new_state(py)?;
    state.set_item("rng", rng_to_py(py, &s.rng))?;
    state.set_item("t", s.t)?;
    state.set_item("demand", s.demand.to_pyarray(py))?;
    state.set_item("last_price", s.last_price.to_pyarray(py))?;
    state.set_item("last_cleared", s.last_cleared.to_pyarray(py))?;
    state.set_item("soc", s.soc.to_pyarray(py))?;
    state.set_item("availability", s.availability.to_pyarray(py))?;
    let r = &s.record;
    state.set_item("bids", r.bids.to_pyarray(py))?;
    state.set_item("offered", r.offered.to_pyarray(py))?;
    state.set_item("cleared", r.cleared.to_pyarray(py))?;
    state.set_item("rewards", r.rewards.to_pyarray(py))?;
    state.set_item("prices", r.prices.to_pyarray(py))?;
    state.set_item("record_demand", r.demand.to_pyarray(py))?;
    state.set_item("storage_bids", r.storage_bids.to_pyarray(py))?;
    state.set_item("storage_offered", r.storage_offered.to_pyarray(py))?;
    state.set_item("storage_cleared", r.storage_cleared.to_pyarray(py))?;
    state.set_item("record_soc", r.soc.to_pyarray(py))?;
    state.set_item("node_prices", r.node_prices.to_pyarray(py))?;
    state.set_item("flows", r.flows.to_pyarray(py))?;
    state.set_item("congestion_rent", r.congestion_rent.to_pyarray(py))?;
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

/// Rebuild a pickled MarketEnv (internal).
#[pyfunction]
pub(super) fn _restore_market_env(
    scenario: &Bound<'_, PyScenario>,
    observer: &str,
    tie_rule: &str,
    state: &Bound<'_, PyDict>,
) -> PyResult<PyMarketEnv> {
    check_format(state, "MarketEnv")?;
    let observer = Observer::parse(observer).py()?;
    let tie_rule = TieRule::parse(tie_rule).py()?;
    let market = Arc::new(Market::new(scenario.get().inner.clone(), observer, tie_rule).py()?);
    let get = |k: &str| item(state, k);
    let snap = Snapshot {
        rng: rng_from_py(&get("rng")?)?,
        t: get("t")?.extract()?,
        demand: vec_item(state, "demand", None)?,
        last_price: vec_item(state, "last_price", None)?,
        last_cleared: vec_item(state, "last_cleared", None)?,
        soc: vec_item(state, "soc", None)?,
        availability: vec_item(state, "availability", None)?,
        record: Record {
            bids: vec_item(state, "bids", None)?,
            offered: vec_item(state, "offered", None)?,
            cleared: vec_item(state, "cleared", None)?,
            // Derived from the rest by `MarketEnv::record`.
            paid: Vec::new(),
            average_paid: Vec::new(),
            rewards: vec_item(state, "rewards", None)?,
            prices: vec_item(state, "prices", None)?,
            demand: vec_item(state, "record_demand", None)?,
            storage_bids: vec_item(state, "storage_bids", None)?,
            storage_offered: vec_item(state, "storage_offered", None)?,
            storage_cleared: vec_item(state, "storage_cleared", None)?,
            soc: vec_item(state, "record_soc", None)?,
            node_prices: vec_item(state, "node_prices", None)?,
            flows: vec_item(state, "flows", None)?,
            congestion_rent: vec_item(state, "congestion_rent", None)?,
        },
    };
    Ok(PyMarketEnv {
        env: MarketEnv::restore(market, snap).py()?,
        observer,
        tie_rule,
        scratch: Default::default(),
    })
}
