use super::scenario::{scenario_arg, PyScenario};
use super::{actions_arg, array_arg, elems, expect_shape, filled, seed_arg};
use crate::clearing::TieRule;
use crate::env::Market;
use crate::observe::Observer;
use crate::vec_env::{VecBuffers, VecMarketEnv};
use numpy::{PyArray1, PyArray2, PyArray3, PyArrayMethods, PyUntypedArrayMethods, ToPyArray};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use std::sync::Arc;

/// M independent markets of one scenario, stepped in one call.
///
/// ``step(actions)`` takes (M, N, 2) actions and returns ``(obs (M, N, D),
/// rewards (M, N), terminated (M,), truncated (M,), info)``. The arrays are
/// views of buffers allocated once: the next ``step``/``reset`` overwrites
/// them (pass ``copy=True`` to get copies). The GIL is released while
/// stepping and markets are spread over ``num_threads`` threads.
///
/// Markets reset themselves in the same step in which they end: ``obs`` then
/// holds the first observation of the new episode, ``info["final_obs"]`` the
/// last observation of the old one where ``info["_final_obs"]`` is true.
/// ``info`` also has ``price``, ``demand``, ``shortfall`` (M,) and
/// ``cleared`` (M, N). Market ``i`` is seeded ``seed + i``.
#[pyclass(name = "VecMarketEnv", module = "powermarket._core")]
pub struct PyVecMarketEnv {
    env: VecMarketEnv,
    observer: Observer,
    tie_rule: TieRule,
    obs: Py<PyArray3<f32>>,
    rewards: Py<PyArray2<f32>>,
    terminated: Py<PyArray1<bool>>,
    truncated: Py<PyArray1<bool>>,
    final_obs: Py<PyArray3<f32>>,
    final_mask: Py<PyArray1<bool>>,
    price: Py<PyArray1<f64>>,
    demand: Py<PyArray1<f64>>,
    shortfall: Py<PyArray1<f64>>,
    cleared: Py<PyArray2<f64>>,
}

fn maybe_copy<'py>(a: Bound<'py, PyAny>, copy: bool) -> PyResult<Bound<'py, PyAny>> {
    if copy {
        a.call_method0(intern!(a.py(), "copy"))
    } else {
        Ok(a)
    }
}

#[pymethods]
impl PyVecMarketEnv {
    #[new]
    #[pyo3(signature = (scenario=None, num_envs=1, observer="simple", seed=None, num_threads=None, tie_rule="pro_rata"))]
    fn new(
        py: Python<'_>,
        scenario: Option<&Bound<'_, PyAny>>,
        num_envs: usize,
        observer: &str,
        seed: Option<&Bound<'_, PyAny>>,
        num_threads: Option<usize>,
        tie_rule: &str,
    ) -> PyResult<Self> {
        let observer = Observer::parse(observer)?;
        let tie_rule = TieRule::parse(tie_rule)?;
        let market = Arc::new(Market::new(scenario_arg(scenario)?, observer, tie_rule)?);
        let (n, d) = (market.n(), market.obs_dim());
        let env = VecMarketEnv::new(market, num_envs, seed_arg(seed)?, num_threads)?;
        let m = num_envs;
        Ok(PyVecMarketEnv {
            env,
            observer,
            tie_rule,
            obs: PyArray3::zeros(py, [m, n, d], false).unbind(),
            rewards: PyArray2::zeros(py, [m, n], false).unbind(),
            terminated: PyArray1::from_vec(py, vec![false; m]).unbind(),
            truncated: PyArray1::from_vec(py, vec![false; m]).unbind(),
            final_obs: PyArray3::zeros(py, [m, n, d], false).unbind(),
            final_mask: PyArray1::from_vec(py, vec![false; m]).unbind(),
            price: PyArray1::zeros(py, m, false).unbind(),
            demand: PyArray1::zeros(py, m, false).unbind(),
            shortfall: PyArray1::zeros(py, m, false).unbind(),
            cleared: PyArray2::zeros(py, [m, n], false).unbind(),
        })
    }

    /// Reset all markets, or only those where ``mask`` (M,) bool is true.
    /// With ``seed``, reset markets are reseeded (market ``i`` with ``seed + i``).
    /// Returns ``(obs, info)``.
    #[pyo3(signature = (seed=None, mask=None, options=None, copy=false))]
    fn reset<'py>(
        &mut self,
        py: Python<'py>,
        seed: Option<&Bound<'py, PyAny>>,
        mask: Option<&Bound<'py, PyAny>>,
        options: Option<&Bound<'py, PyAny>>,
        copy: bool,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyDict>)> {
        if let Some(o) = options {
            if !o.is_none() && o.is_truthy()? {
                return Err(pyo3::exceptions::PyValueError::new_err(
                    "options: VecMarketEnv.reset takes no options (use seed= and mask=)",
                ));
            }
        }
        let seed = seed_arg(seed)?;
        let mask_arr = match mask {
            Some(m) if !m.is_none() => {
                // Read as bytes (any non-zero is true): a bool view of other
                // bytes must not reach Rust as `bool`.
                let a = array_arg::<u8>(m, "mask", 1)?;
                expect_shape("mask", a.shape(), &[self.env.num_envs()])?;
                Some(elems(&a).iter().map(|&b| b != 0).collect::<Vec<bool>>())
            }
            _ => None,
        };
        let obs = self.obs.bind(py);
        self.env.reset(seed, mask_arr.as_deref(), filled(obs))?;
        filled(self.final_mask.bind(py)).fill(false);
        let info = PyDict::new(py);
        Ok((maybe_copy(obs.clone().into_any(), copy)?, info))
    }

    /// Step all markets with actions (M, N, 2). float32 C-contiguous arrays
    /// are used without a copy; others are converted once. Errors (wrong
    /// shape, NaN/inf naming market and agent, stepping before ``reset``)
    /// leave every market and buffer unchanged.
    #[pyo3(signature = (actions, copy=false))]
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        actions: &Bound<'py, PyAny>,
        copy: bool,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let (m, n) = (self.env.num_envs(), self.env.market().n());
        let a = actions_arg(actions, 3)?;
        expect_shape("actions", a.shape(), &[m, n, 2])?;
        // The actions may be (a view of) one of this env's own buffers: then
        // copy them, since the step writes those buffers while reading actions.
        let aliased = match &a {
            super::Actions::Array(arr) => {
                let start = arr.data() as usize;
                let end = start + 4 * arr.len();
                [self.obs.bind(py).data(), self.final_obs.bind(py).data()]
                    .iter()
                    .zip([self.obs.bind(py).len(), self.final_obs.bind(py).len()])
                    .chain(std::iter::once((
                        &self.rewards.bind(py).data(),
                        self.rewards.bind(py).len(),
                    )))
                    .any(|(&p, len)| {
                        let (s0, e0) = (p as usize, p as usize + 4 * len);
                        start < e0 && s0 < end
                    })
            }
            super::Actions::Owned(..) => false,
        };
        let copied: Vec<f32>;
        let acts: &[f32] = if aliased {
            copied = a.values().to_vec();
            &copied
        } else {
            a.values()
        };
        let (obs, rewards, terminated, truncated) = (
            self.obs.bind(py),
            self.rewards.bind(py),
            self.terminated.bind(py),
            self.truncated.bind(py),
        );
        let (final_obs, final_mask, price, demand, shortfall, cleared) = (
            self.final_obs.bind(py),
            self.final_mask.bind(py),
            self.price.bind(py),
            self.demand.bind(py),
            self.shortfall.bind(py),
            self.cleared.bind(py),
        );
        let out = VecBuffers {
            obs: filled(obs),
            rewards: filled(rewards),
            terminated: filled(terminated),
            truncated: filled(truncated),
            final_obs: filled(final_obs),
            final_mask: filled(final_mask),
            price: filled(price),
            demand: filled(demand),
            shortfall: filled(shortfall),
            cleared: filled(cleared),
        };
        let env = &mut self.env;
        py.detach(move || env.step(acts, out))?;
        let info = PyDict::new(py);
        info.set_item(
            intern!(py, "final_obs"),
            maybe_copy(final_obs.clone().into_any(), copy)?,
        )?;
        info.set_item(
            intern!(py, "_final_obs"),
            maybe_copy(final_mask.clone().into_any(), copy)?,
        )?;
        info.set_item(
            intern!(py, "price"),
            maybe_copy(price.clone().into_any(), copy)?,
        )?;
        info.set_item(
            intern!(py, "demand"),
            maybe_copy(demand.clone().into_any(), copy)?,
        )?;
        info.set_item(
            intern!(py, "shortfall"),
            maybe_copy(shortfall.clone().into_any(), copy)?,
        )?;
        info.set_item(
            intern!(py, "cleared"),
            maybe_copy(cleared.clone().into_any(), copy)?,
        )?;
        super::tuple(
            py,
            [
                maybe_copy(obs.clone().into_any(), copy)?,
                maybe_copy(rewards.clone().into_any(), copy)?,
                maybe_copy(terminated.clone().into_any(), copy)?,
                maybe_copy(truncated.clone().into_any(), copy)?,
                info.into_any(),
            ],
        )
    }

    /// Realised demand of market ``i``'s current episode, MW (a copy).
    fn episode_demand<'py>(
        &self,
        py: Python<'py>,
        i: usize,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        if i >= self.env.num_envs() {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "market index {i} out of range for {} markets",
                self.env.num_envs()
            )));
        }
        Ok(self.env.demand_of(i).to_pyarray(py))
    }

    /// Hour of each market's current episode, as an (M,) int64 array (-1 before reset).
    #[getter]
    fn hours<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        let h: Vec<i64> = self
            .env
            .hours()
            .into_iter()
            .map(|h| h.map_or(-1, |v| v as i64))
            .collect();
        PyArray1::from_vec(py, h)
    }

    /// Lower and upper bounds of every observation feature, each (N, D) float32.
    fn observation_bounds<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyArray2<f32>>, Bound<'py, PyArray2<f32>>)> {
        super::bounds(py, self.env.market())
    }

    /// Number of markets, M.
    #[getter]
    fn num_envs(&self) -> usize {
        self.env.num_envs()
    }

    /// Number of generators N.
    #[getter]
    fn num_agents(&self) -> usize {
        self.env.market().n()
    }

    /// Features per agent, D.
    #[getter]
    fn obs_dim(&self) -> usize {
        self.env.market().obs_dim()
    }

    /// Hours per episode, T.
    #[getter]
    fn horizon(&self) -> usize {
        self.env.market().horizon()
    }

    /// Threads used by `step`.
    #[getter]
    fn num_threads(&self) -> usize {
        self.env.num_threads()
    }

    /// Name of the observer.
    #[getter]
    fn observer(&self) -> &'static str {
        self.observer.name()
    }

    /// Tie rule of the clearing.
    #[getter]
    fn tie_rule(&self) -> &'static str {
        self.tie_rule.name()
    }

    /// The scenario (a copy).
    #[getter]
    fn scenario(&self) -> PyScenario {
        PyScenario {
            inner: self.env.market().scenario.clone(),
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "VecMarketEnv(num_envs={}, n={}, t={}, observer={:?}, num_threads={})",
            self.env.num_envs(),
            self.env.market().n(),
            self.env.market().horizon(),
            self.observer.name(),
            self.env.num_threads()
        )
    }
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyVecMarketEnv>()
}
