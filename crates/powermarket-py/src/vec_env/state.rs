//! Pickling of `VecMarketEnv`: its state as a dict of plain values, and
//! the rebuild.

use super::PyVecMarketEnv;
use crate::pickle::{check_format, item, new_state, rng_to_py, rngs_from_py, vec_item};
use crate::scenario::{scenario_arg, PyScenario};
use crate::Core;
use numpy::ToPyArray;
use powermarket::clearing::TieRule;
use powermarket::env::Market;
use powermarket::observe::Observer;
use powermarket::vec_env::{Column, ColumnMut, VecMarketEnv, VecSnapshot};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::Arc;

impl PyVecMarketEnv {
    /// Everything needed to rebuild this env, as a dict of plain values:
    /// the markets' state and every output of the table.
    pub(super) fn state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.env.snapshot();
        let d = new_state(py)?;
        d.set_item(
            "scenario",
            PyScenario {
                inner: self.env.market().scenario.clone(),
            },
        )?;
        d.set_item("observer", self.observer.name())?;
        d.set_item("tie_rule", self.tie_rule.name())?;
        d.set_item("num_threads", self.env.num_threads())?;
        let rngs: Vec<_> = s.rngs.iter().map(|r| rng_to_py(py, r)).collect();
        d.set_item("rngs", rngs)?;
        d.set_item("hours", s.ts)?;
        d.set_item("demand", s.demand.to_pyarray(py))?;
        d.set_item("last_price", s.last_price.to_pyarray(py))?;
        d.set_item("last_cleared", s.last_cleared.to_pyarray(py))?;
        d.set_item("soc", s.soc.to_pyarray(py))?;
        d.set_item("availability", s.availability.to_pyarray(py))?;
        let outputs = PyDict::new(py);
        for (spec, col) in self.out.columns() {
            // Observations are a function of the state, rebuilt on load.
            if spec.name == "obs" {
                continue;
            }
            let a = match col {
                Column::F32(v) => v.to_pyarray(py).into_any(),
                Column::F64(v) => v.to_pyarray(py).into_any(),
                Column::Bool(v) => v.to_pyarray(py).into_any(),
            };
            outputs.set_item(spec.name, a)?;
        }
        d.set_item("outputs", outputs)?;
        Ok(d)
    }
}

pub(super) fn restore(py: Python<'_>, d: &Bound<'_, PyDict>) -> PyResult<PyVecMarketEnv> {
    check_format(d, "VecMarketEnv")?;
    let scenario = item(d, "scenario")?;
    let observer = Observer::parse(&item(d, "observer")?.extract::<String>()?).py()?;
    let tie_rule = TieRule::parse(&item(d, "tie_rule")?.extract::<String>()?).py()?;
    let num_threads: usize = item(d, "num_threads")?.extract()?;
    let market = Arc::new(Market::new(scenario_arg(Some(&scenario))?, observer, tie_rule).py()?);
    let rngs = rngs_from_py(&item(d, "rngs")?)?;
    let m = rngs.len();
    let (n, t) = (market.agents(), market.horizon());
    let snap = VecSnapshot {
        rngs,
        ts: item(d, "hours")?.extract()?,
        demand: vec_item(d, "demand", Some(m * t))?,
        last_price: vec_item(d, "last_price", None)?,
        last_cleared: vec_item(d, "last_cleared", Some(m * n))?,
        soc: vec_item(d, "soc", Some(m * market.s()))?,
        availability: vec_item(d, "availability", Some(m * market.availability_len()))?,
    };
    let env = VecMarketEnv::restore(market, snap, num_threads).py()?;
    let mut this = PyVecMarketEnv::build(py, env, observer, tie_rule)?;
    let outputs = item(d, "outputs")?.cast_into::<PyDict>()?;
    let sizes = this.env.sizes();
    for (spec, col) in this.out.columns_mut() {
        if spec.name == "obs" {
            continue;
        }
        let len = Some(m * sizes.per_market(spec.width));
        match col {
            ColumnMut::F32(dst) => dst.copy_from_slice(&vec_item(&outputs, spec.name, len)?),
            ColumnMut::F64(dst) => dst.copy_from_slice(&vec_item(&outputs, spec.name, len)?),
            ColumnMut::Bool(dst) => dst.copy_from_slice(&vec_item(&outputs, spec.name, len)?),
        }
    }
    let mut obs = std::mem::take(&mut this.out.obs);
    if !obs.is_empty() {
        this.env.observe(&mut obs).py()?;
    }
    this.out.obs = obs;
    this.publish_step(py, true, None)?;
    Ok(this)
}

/// Rebuild a pickled VecMarketEnv (internal).
#[pyfunction]
pub(super) fn _restore_vec_market_env(
    py: Python<'_>,
    state: &Bound<'_, PyDict>,
) -> PyResult<PyVecMarketEnv> {
    restore(py, state)
}
