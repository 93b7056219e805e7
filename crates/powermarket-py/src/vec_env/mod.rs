mod buffers;
mod state;

use super::scenario::{scenario_arg, PyScenario};
use super::{actions_arg, borrow_env, count_arg, expect_shape, mask_arg, opt_count_arg, seeds_arg};
use crate::Core;
use buffers::{small_obs, Views};
use numpy::{PyArray1, PyArray2, PyArrayMethods, ToPyArray};
use powermarket::clearing::TieRule;
use powermarket::env::Market;
use powermarket::error::{checked_size, try_zeros};
use powermarket::observe::Observer;
use powermarket::vec_env::{Place, VecMarketEnv, VecOutputs, OUTPUTS};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use state::restore;
use std::sync::Arc;

/// M independent markets of one scenario, stepped in one call.
///
/// ``step(actions)`` takes (M, N, 2) actions ((M, N, K, 2) when the scenario
/// has ``segments`` K > 1) and returns ``(obs (M, N, D),
/// rewards (M, N), terminated (M,), truncated (M,), info)``. The arrays are
/// buffers allocated once and reused: the next ``step``/``reset`` overwrites
/// them (pass ``copy=True`` to get copies). A buffer that was tampered with
/// (made read-only, reshaped, re-typed or resized) is replaced by a fresh
/// one, never written behind the user's back. The actions are copied before
/// the GIL is released; the markets are spread over the shared thread pool.
///
/// Markets reset themselves in the same step in which they end: ``obs`` then
/// holds the first observation of the new episode, ``info["final_obs"]`` the
/// last observation of the old one where ``info["_final_obs"]`` is true.
/// ``info`` also has ``price``, ``demand``, ``shortfall``, ``average_paid``
/// (M,) and ``cleared`` (M, N). Seeding: market ``i`` of ``seed=s`` uses key ``s``,
/// ChaCha stream ``i`` (market 0 equals ``MarketEnv(seed=s)``); a list of M
/// seeds gives market ``i`` key ``seed[i]``, stream 0 (it equals
/// ``MarketEnv(seed=seed[i])``).
#[pyclass(name = "VecMarketEnv", module = "powermarket._core")]
pub struct PyVecMarketEnv {
    env: VecMarketEnv,
    observer: Observer,
    tie_rule: TieRule,
    /// The last actions, copied from Python before the GIL is released.
    actions: Vec<f32>,
    out: VecOutputs,
    views: Views,
}

/// A shared borrow of the env, or a RuntimeError saying that another thread
/// is using it (never PyO3's bare borrow error, never a panic).
fn borrow_ref<'py>(slf: &Bound<'py, PyVecMarketEnv>) -> PyResult<PyRef<'py, PyVecMarketEnv>> {
    slf.try_borrow().map_err(|_| {
        PyRuntimeError::new_err(
            "VecMarketEnv is being used by another thread: envs are not thread-safe; \
             use one env per thread (or guard it with a lock)",
        )
    })
}

/// A market index argument `i` in `[0, M)`.
fn market_index(env: &VecMarketEnv, i: &Bound<'_, PyAny>) -> PyResult<usize> {
    let i = count_arg(i, "i")?;
    if i >= env.num_envs() {
        return Err(PyValueError::new_err(format!(
            "market index {i} out of range for {} markets",
            env.num_envs()
        )));
    }
    Ok(i)
}

fn maybe_copy<'py>(a: Bound<'py, PyAny>, copy: bool) -> PyResult<Bound<'py, PyAny>> {
    if copy {
        a.call_method0(intern!(a.py(), "copy"))
    } else {
        Ok(a)
    }
}

impl PyVecMarketEnv {
    fn shape_md(&self) -> [usize; 3] {
        let m = self.env.market();
        [self.env.num_envs(), m.agents(), m.obs_dim()]
    }

    fn build(
        py: Python<'_>,
        env: VecMarketEnv,
        observer: Observer,
        tie_rule: TieRule,
    ) -> PyResult<Self> {
        let (m, sizes) = (env.num_envs(), env.sizes());
        let obs_len = checked_size(m, sizes.n * sizes.d, "num_envs").py()?;
        let out = VecOutputs::new(m, sizes, small_obs(obs_len)).py()?;
        let actions = try_zeros(
            checked_size(m, env.market().action_len(), "num_envs").py()?,
            "num_envs",
        )
        .py()?;
        Ok(PyVecMarketEnv {
            views: Views::new(py, m, sizes)?,
            out,
            actions,
            env,
            observer,
            tie_rule,
        })
    }

    /// Write every market's observation straight into the NumPy buffer
    /// (replacing it if tampered with): this thread holds the GIL, so no
    /// Python code runs meanwhile.
    fn observe_into_view(&mut self, py: Python<'_>) -> PyResult<()> {
        let obs = self.views.obs(py, &self.shape_md())?;
        // SAFETY: `Views::obs` checked that the array is C-contiguous,
        // aligned, writeable and of (M, N, D); the GIL is held throughout.
        let dst = unsafe { obs.as_slice_mut() }
            .map_err(|e| PyRuntimeError::new_err(format!("output buffer: {e}")))?;
        self.env.observe(dst).py()
    }

    /// Copy every output into its view (observations of a large batch are
    /// computed from the state instead). `all_rows`: every row of the
    /// outputs written only where a market ended (after unpickling). With
    /// `only`, just the outputs it names.
    fn publish_step(
        &mut self,
        py: Python<'_>,
        all_rows: bool,
        only: Option<&[&str]>,
    ) -> PyResult<()> {
        let (m, sizes, th) = (
            self.env.num_envs(),
            self.env.sizes(),
            self.env.num_threads(),
        );
        self.views
            .publish(py, &self.out, m, sizes, th, all_rows, only)?;
        if self.out.obs.is_empty() {
            self.observe_into_view(py)?;
        }
        Ok(())
    }
}

#[pymethods]
impl PyVecMarketEnv {
    #[new]
    #[pyo3(signature = (scenario=None, num_envs=None, observer="simple", seed=None, num_threads=None, tie_rule="pro_rata"))]
    fn new(
        py: Python<'_>,
        scenario: Option<&Bound<'_, PyAny>>,
        num_envs: Option<&Bound<'_, PyAny>>,
        observer: &str,
        seed: Option<&Bound<'_, PyAny>>,
        num_threads: Option<&Bound<'_, PyAny>>,
        tie_rule: &str,
    ) -> PyResult<Self> {
        let observer = Observer::parse(observer).py()?;
        let tie_rule = TieRule::parse(tie_rule).py()?;
        let num_envs = match num_envs {
            Some(v) if !v.is_none() => count_arg(v, "num_envs")?,
            _ => 1,
        };
        let num_threads = opt_count_arg(num_threads, "num_threads")?;
        let seeds = seeds_arg(seed, num_envs)?;
        let market = Arc::new(Market::new(scenario_arg(scenario)?, observer, tie_rule).py()?);
        let env = VecMarketEnv::new(market, num_envs, seeds, num_threads).py()?;
        Self::build(py, env, observer, tie_rule)
    }

    /// Reset all markets, or only those where ``mask`` (M,) is true (any
    /// non-zero value counts as true). With ``seed`` the reset markets are
    /// reseeded: an int ``s`` gives market ``i`` key ``s``, stream ``i``; a
    /// list of M ints gives market ``i`` key ``seed[i]``, stream 0. Returns
    /// ``(obs, info)``. A failed call changes nothing.
    #[pyo3(signature = (seed=None, mask=None, options=None, copy=false))]
    fn reset<'py>(
        slf: &Bound<'py, Self>,
        seed: Option<&Bound<'py, PyAny>>,
        mask: Option<&Bound<'py, PyAny>>,
        options: Option<&Bound<'py, PyAny>>,
        copy: bool,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyDict>)> {
        let py = slf.py();
        let mut this = borrow_env(slf, "VecMarketEnv")?;
        if let Some(o) = options {
            if !o.is_none() && o.is_truthy()? {
                return Err(PyValueError::new_err(
                    "options: VecMarketEnv.reset takes no options (use seed= and mask=)",
                ));
            }
        }
        let m = this.env.num_envs();
        let seeds = seeds_arg(seed, m)?;
        let mask = mask_arg(mask, m)?;
        let this = &mut *this;
        // Every row of the returned buffer is rewritten from the markets'
        // state (a large batch's straight into NumPy memory, the GIL held).
        let obs = (!this.out.obs.is_empty()).then_some(&mut this.out.obs[..]);
        this.env.reset(seeds, mask.as_deref(), obs).py()?;
        this.out.final_mask.fill(false);
        this.publish_step(py, false, Some(&["obs", "final_mask"]))?;
        let obs = this.views.get(py, "obs");
        Ok((maybe_copy(obs, copy)?, PyDict::new(py)))
    }

    /// Step all markets with actions (M, N, 2), or (M, N, K, 2) with K
    /// segments. The actions are copied (in
    /// float64 with finite values clipped to the action box, unless they are
    /// already float32) before the GIL is released. Errors (wrong shape,
    /// NaN/inf naming market and agent, stepping before ``reset``) leave
    /// every market and buffer unchanged.
    #[pyo3(signature = (actions, copy=false))]
    fn step<'py>(
        slf: &Bound<'py, Self>,
        actions: &Bound<'py, PyAny>,
        copy: bool,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let mut guard = borrow_env(slf, "VecMarketEnv")?;
        let this = &mut *guard;
        let [m, n, _] = this.shape_md();
        {
            let k = this.env.market().segments();
            let shape: &[usize] = if k == 1 { &[m, n, 2] } else { &[m, n, k, 2] };
            let a = actions_arg(actions, shape.len()).map_err(|e| {
                if e.is_instance_of::<PyValueError>(py) {
                    PyValueError::new_err(format!(
                        "actions must have shape {}: {}",
                        super::shape_str(shape),
                        e.value(py)
                    ))
                } else {
                    e
                }
            })?;
            expect_shape("actions", a.shape(), shape)?;
            this.actions.copy_from_slice(a.values());
        }
        let (env, acts, out) = (&mut this.env, &this.actions, &mut this.out);
        py.detach(|| env.step(acts, out.rows())).py()?;
        this.publish_step(py, false, None)?;
        let info = PyDict::new(py);
        let mut items: [Option<Bound<'py, PyAny>>; 5] = Default::default();
        let sizes = this.env.sizes();
        for (spec, view) in OUTPUTS.iter().zip(this.views.all(py)) {
            // Outputs with no value per market (the storage outputs of a
            // market without storage) are left out of `info`.
            if sizes.per_market(spec.width) == 0 && matches!(spec.place, Place::Info(_)) {
                continue;
            }
            let view = maybe_copy(view, copy)?;
            match spec.place {
                Place::Tuple(i) => items[i] = Some(view),
                Place::Info(key) => info.set_item(PyString::intern(py, key), view)?,
            }
        }
        items[4] = Some(info.into_any());
        super::tuple(py, items.map(|x| x.expect("the table fills items 0-3")))
    }

    /// Realised demand of market ``i``'s current episode, MW (a copy).
    fn episode_demand<'py>(
        slf: &Bound<'py, Self>,
        i: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let py = slf.py();
        let this = borrow_ref(slf)?;
        let i = market_index(&this.env, i)?;
        Ok(this.env.demand_of(i).to_pyarray(py))
    }

    /// Load factors of market ``i``'s current episode, (T, N) (a copy): its
    /// own draw with ``availability_noise``, else the scenario's.
    fn episode_availability<'py>(
        slf: &Bound<'py, Self>,
        i: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let py = slf.py();
        let this = borrow_ref(slf)?;
        let i = market_index(&this.env, i)?;
        let (n, t) = (this.env.market().n(), this.env.market().horizon());
        this.env.load_factors_of(i).to_pyarray(py).reshape([t, n])
    }

    /// Hour of each market's current episode, as an (M,) int64 array (-1 before reset).
    #[getter]
    fn hours<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let py = slf.py();
        let this = borrow_ref(slf)?;
        let h: Vec<i64> = this
            .env
            .hours()
            .into_iter()
            .map(|h| h.map_or(-1, |v| v as i64))
            .collect();
        Ok(PyArray1::from_vec(py, h))
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

    /// Number of agents A = N + S (generators, then storage units).
    #[getter]
    fn num_agents(&self) -> usize {
        self.env.market().agents()
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

    /// Pieces a step is cut into for the shared thread pool (at most
    /// min(num_threads, pool size) run at once).
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

    /// A copy with the same state, RNGs and buffers' contents included.
    fn __copy__(slf: &Bound<'_, Self>) -> PyResult<Self> {
        let py = slf.py();
        let this = borrow_ref(slf)?;
        restore(py, &this.state(py)?)
    }

    /// A copy with the same state, RNGs and buffers' contents included.
    fn __deepcopy__(slf: &Bound<'_, Self>, _memo: &Bound<'_, PyAny>) -> PyResult<Self> {
        Self::__copy__(slf)
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let state = borrow_ref(slf)?.state(py)?;
        let restore = py
            .import("powermarket._core")?
            .getattr("_restore_vec_market_env")?;
        Ok((restore, PyTuple::new(py, [state])?))
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

/// The output table as Python values: `(name, dtype, width, info key)` per
/// output, width one of "market", "agent", "obs", the key None for the
/// items of the returned tuple.
fn output_table(py: Python<'_>) -> PyResult<Bound<'_, PyTuple>> {
    use powermarket::vec_env::Width;
    let rows = OUTPUTS
        .iter()
        .map(|o| {
            let width = match o.width {
                Width::One => "market",
                Width::Agents => "agent",
                Width::Obs => "obs",
                Width::Storage => "storage",
                Width::Nodes => "node",
                Width::Lines => "line",
                Width::Network => "network",
            };
            let key = match o.place {
                Place::Tuple(_) => None,
                Place::Info(k) => Some(k),
            };
            (o.name, o.dtype.name(), width, key).into_pyobject(py)
        })
        .collect::<PyResult<Vec<_>>>()?;
    PyTuple::new(py, rows)
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyVecMarketEnv>()?;
    m.add("VEC_OUTPUTS", output_table(m.py())?)?;
    m.add_function(wrap_pyfunction!(state::_restore_vec_market_env, m)?)?;
    Ok(())
}
