//! Pickling of `VecMarketEnv`: its state as a dict of plain values, and
//! the rebuild.

use super::buffers::Outputs;
use super::PyVecMarketEnv;
use crate::scenario::{scenario_arg, PyScenario};
use crate::Core;
use numpy::{Element, ToPyArray};
use powermarket::clearing::TieRule;
use powermarket::env::Market;
use powermarket::observe::Observer;
use powermarket::vec_env::{VecMarketEnv, VecSnapshot};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use std::sync::Arc;

impl PyVecMarketEnv {
    /// Everything needed to rebuild this env, as a dict of plain values.
    pub(super) fn state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.env.snapshot();
        let d = PyDict::new(py);
        d.set_item(
            "scenario",
            PyScenario {
                inner: self.env.market().scenario.clone(),
            },
        )?;
        d.set_item("observer", self.observer.name())?;
        d.set_item("tie_rule", self.tie_rule.name())?;
        d.set_item("num_threads", self.env.num_threads())?;
        let rngs = s
            .rngs
            .iter()
            .map(|(seed, stream, pos)| (PyBytes::new(py, seed), *stream, *pos))
            .collect::<Vec<_>>();
        d.set_item("rngs", rngs)?;
        d.set_item("hours", s.ts)?;
        d.set_item("demand", s.demand.to_pyarray(py))?;
        d.set_item("last_price", s.last_price.to_pyarray(py))?;
        d.set_item("last_cleared", s.last_cleared.to_pyarray(py))?;
        d.set_item("availability", s.availability.to_pyarray(py))?;
        let o = &self.out;
        d.set_item("rewards", o.rewards.to_pyarray(py))?;
        d.set_item("terminated", o.terminated.to_pyarray(py))?;
        d.set_item("truncated", o.truncated.to_pyarray(py))?;
        d.set_item("final_obs", o.final_obs.to_pyarray(py))?;
        d.set_item("final_mask", o.final_mask.to_pyarray(py))?;
        d.set_item("price", o.price.to_pyarray(py))?;
        d.set_item("demand_out", o.demand.to_pyarray(py))?;
        d.set_item("shortfall", o.shortfall.to_pyarray(py))?;
        d.set_item("average_paid", o.average_paid.to_pyarray(py))?;
        d.set_item("cleared", o.cleared.to_pyarray(py))?;
        Ok(d)
    }
}

use crate::state_item as item;

fn vec_of<T: Element + Copy>(d: &Bound<'_, PyDict>, k: &str, len: usize) -> PyResult<Vec<T>> {
    let a: numpy::PyReadonlyArray1<'_, T> = item(d, k)?.extract()?;
    let v = a.as_slice()?.to_vec();
    if v.len() != len {
        return Err(PyValueError::new_err(format!(
            "state: {k} has {} values, expected {len}",
            v.len()
        )));
    }
    Ok(v)
}

pub(super) fn restore(py: Python<'_>, d: &Bound<'_, PyDict>) -> PyResult<PyVecMarketEnv> {
    let scenario = item(d, "scenario")?;
    let observer = Observer::parse(&item(d, "observer")?.extract::<String>()?).py()?;
    let tie_rule = TieRule::parse(&item(d, "tie_rule")?.extract::<String>()?).py()?;
    let num_threads: usize = item(d, "num_threads")?.extract()?;
    let market = Arc::new(Market::new(scenario_arg(Some(&scenario))?, observer, tie_rule).py()?);
    let rngs = item(d, "rngs")?
        .extract::<Vec<(Vec<u8>, u64, u128)>>()?
        .into_iter()
        .map(|(seed, stream, pos)| {
            let seed: [u8; 32] = seed
                .try_into()
                .map_err(|_| PyValueError::new_err("state: rng seeds must be 32 bytes"))?;
            Ok((seed, stream, pos))
        })
        .collect::<PyResult<Vec<_>>>()?;
    let m = rngs.len();
    let (n, t, dim) = (market.n(), market.horizon(), market.obs_dim());
    let snap = VecSnapshot {
        rngs,
        ts: item(d, "hours")?.extract()?,
        demand: vec_of(d, "demand", m * t)?,
        last_price: vec_of(d, "last_price", m)?,
        last_cleared: vec_of(d, "last_cleared", m * n)?,
        availability: vec_of(d, "availability", m * market.availability_len())?,
    };
    let env = VecMarketEnv::restore(market, snap, num_threads).py()?;
    let mut this = PyVecMarketEnv::build(py, env, observer, tie_rule)?;
    let mut obs_out = std::mem::take(&mut this.out.obs);
    if !obs_out.is_empty() {
        this.env.observe(&mut obs_out).py()?;
    }
    this.out = Outputs {
        obs: obs_out,
        rewards: vec_of(d, "rewards", m * n)?,
        terminated: vec_of(d, "terminated", m)?,
        truncated: vec_of(d, "truncated", m)?,
        final_obs: vec_of(d, "final_obs", m * n * dim)?,
        final_mask: vec_of(d, "final_mask", m)?,
        price: vec_of(d, "price", m)?,
        demand: vec_of(d, "demand_out", m)?,
        shortfall: vec_of(d, "shortfall", m)?,
        average_paid: vec_of(d, "average_paid", m)?,
        cleared: vec_of(d, "cleared", m * n)?,
    };
    this.publish_step(py, true)?;
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
