mod agents;
mod state;

use super::opponents::PyOpponents;
use super::scenario::{scenario_arg, PyScenario};
use super::{actions_arg, array_arg, borrow_env, elems, expect_shape, filled, seed_arg};
use crate::Core;
use agents::{agent_row, learner_action, plain_pair};
use numpy::{PyArray1, PyArray2, PyArrayMethods, ToPyArray};
use powermarket::clearing::TieRule;
use powermarket::env::fronts::{check_agent_names, FrontScratch, GivenRows};
use powermarket::env::{Market, MarketEnv, Record, StepInfo};
use powermarket::observe::Observer;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use pyo3::{intern, IntoPyObjectExt};

/// One electricity market with N generators, stepped hour by hour (arrays in,
/// arrays out: the fastest single-market API).
///
/// ``reset(seed=None)`` returns ``(obs, info)`` with ``obs`` of shape (N, D),
/// float32. ``step(actions)`` takes actions of shape (N, 2) (``[a0, a1]`` per
/// generator: withheld share in [0, 1] and price action in [-10, 10]; values
/// outside are clipped), or (N, K, 2) when the scenario has ``segments`` K >
/// 1, and returns ``(obs, rewards, terminated, truncated, info)``. Each call
/// returns new arrays. ``info`` holds ``price`` and ``average_paid``
/// (€/MWh), ``demand`` and ``shortfall`` (MW) and ``cleared`` (N,) MW.
#[pyclass(name = "MarketEnv", module = "powermarket._core")]
#[derive(Clone)]
pub struct PyMarketEnv {
    env: MarketEnv,
    observer: Observer,
    tie_rule: TieRule,
    /// Memory of the front steps, kept between calls.
    scratch: FrontScratch,
}

/// A new, uninitialised (N, D) float32 array for the core to fill.
fn obs_array<'py>(py: Python<'py>, n: usize, d: usize) -> Bound<'py, PyArray2<f32>> {
    // SAFETY: float32 has no invalid bit patterns, and every caller has the
    // core write all N x D values before the array reaches Python; on an
    // error the array is dropped unseen.
    unsafe { PyArray2::<f32>::new(py, [n, d], false) }
}

impl PyMarketEnv {
    fn build(
        scenario: Option<&Bound<'_, PyAny>>,
        observer: &str,
        seed: Option<&Bound<'_, PyAny>>,
        tie_rule: &str,
    ) -> PyResult<Self> {
        let observer = Observer::parse(observer).py()?;
        let tie_rule = TieRule::parse(tie_rule).py()?;
        let scenario = scenario_arg(scenario)?;
        let env = MarketEnv::new(scenario, observer, tie_rule, seed_arg(seed)?).py()?;
        Ok(PyMarketEnv {
            env,
            observer,
            tie_rule,
            scratch: Default::default(),
        })
    }
}

fn record_dict<'py>(
    py: Python<'py>,
    r: &Record,
    market: &Market,
    load_factors: &[f64],
) -> PyResult<Bound<'py, PyDict>> {
    let (n, a, s, segments) = (market.n(), market.agents(), market.s(), market.segments());
    let h = r.prices.len();
    let d = PyDict::new(py);
    // Per-offer arrays: (hours, N), or (hours, N, K) with K blocks; the
    // storage units' (hours, S[, K]).
    let blocks = |v: &[f64], units: usize| -> PyResult<Bound<'py, PyAny>> {
        let a = v.to_pyarray(py);
        Ok(if segments == 1 {
            a.reshape([h, units])?.into_any()
        } else {
            a.reshape([h, units, segments])?.into_any()
        })
    };
    let mat = |v: &[f64]| blocks(v, n);
    d.set_item("bids", mat(&r.bids)?)?;
    d.set_item("offered", mat(&r.offered)?)?;
    d.set_item("cleared", mat(&r.cleared)?)?;
    d.set_item("paid", mat(&r.paid)?)?;
    d.set_item("rewards", r.rewards.to_pyarray(py).reshape([h, a])?)?;
    d.set_item("prices", r.prices.to_pyarray(py))?;
    d.set_item("average_paid", r.average_paid.to_pyarray(py))?;
    d.set_item("demand", r.demand.to_pyarray(py))?;
    d.set_item(
        "availability",
        load_factors[..h * n].to_pyarray(py).reshape([h, n])?,
    )?;
    if s > 0 {
        d.set_item("storage_bids", blocks(&r.storage_bids, s)?)?;
        d.set_item("storage_offered", blocks(&r.storage_offered, s)?)?;
        d.set_item("storage_cleared", blocks(&r.storage_cleared, s)?)?;
        // Per unit and hour: what it sold and bought, MW (= MWh).
        let (mut dis, mut chg) = (vec![0.0; h * s], vec![0.0; h * s]);
        for (j, blk) in r.storage_cleared.chunks_exact(segments).enumerate() {
            for &x in blk {
                if x > 0.0 {
                    dis[j] += x;
                } else {
                    chg[j] -= x;
                }
            }
        }
        d.set_item("discharge", dis.to_pyarray(py).reshape([h, s])?)?;
        d.set_item("charge", chg.to_pyarray(py).reshape([h, s])?)?;
        d.set_item("soc", r.soc.to_pyarray(py).reshape([h + 1, s])?)?;
    }
    if market.grid.is_some() {
        let (z, l) = (market.nodes_len(), market.lines_len());
        d.set_item("node_prices", r.node_prices.to_pyarray(py).reshape([h, z])?)?;
        d.set_item("flows", r.flows.to_pyarray(py).reshape([h, l])?)?;
        d.set_item("congestion_rent", r.congestion_rent.to_pyarray(py))?;
    }
    Ok(d)
}

/// A networked market's `info` items after a step: `node_prices` (Z,),
/// `flows` (L,) and `congestion_rent`; nothing otherwise.
fn network_info<'py>(
    py: Python<'py>,
    env: &MarketEnv,
    info: &StepInfo,
    dict: &Bound<'py, PyDict>,
) -> PyResult<()> {
    if env.market().grid.is_some() {
        dict.set_item(intern!(py, "node_prices"), env.last_prices().to_pyarray(py))?;
        dict.set_item(intern!(py, "flows"), env.last_flows().to_pyarray(py))?;
        dict.set_item(intern!(py, "congestion_rent"), info.congestion_rent)?;
    }
    Ok(())
}

/// A step's `info` scalars: `price`, `demand`, `shortfall` and
/// `average_paid` (new float objects: sharing one costs more than it saves).
#[inline]
fn info_dict<'py>(py: Python<'py>, info: &StepInfo) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item(intern!(py, "price"), info.price)?;
    dict.set_item(intern!(py, "demand"), info.demand)?;
    dict.set_item(intern!(py, "shortfall"), info.shortfall)?;
    dict.set_item(intern!(py, "average_paid"), info.average_paid)?;
    Ok(dict)
}

/// The action array of one market: (N, 2), or (N, K, 2) with K blocks.
fn market_actions<'py>(
    actions: &Bound<'py, PyAny>,
    market: &Market,
) -> PyResult<super::Actions<'py>> {
    let (n, k) = (market.agents(), market.segments());
    let shape: &[usize] = if k == 1 { &[n, 2] } else { &[n, k, 2] };
    let a = actions_arg(actions, shape.len()).map_err(|e| {
        let py = actions.py();
        if e.is_instance_of::<PyValueError>(py) {
            PyValueError::new_err(format!(
                "actions must have shape {} ([a0, a1] per agent{}): {}",
                market.action_shape(),
                if k == 1 { "" } else { " and offer block" },
                e.value(py)
            ))
        } else {
            e
        }
    })?;
    expect_shape("actions", a.shape(), shape)?;
    Ok(a)
}

#[pymethods]
impl PyMarketEnv {
    #[new]
    #[pyo3(signature = (scenario=None, observer="simple", seed=None, tie_rule="pro_rata"))]
    fn new(
        scenario: Option<&Bound<'_, PyAny>>,
        observer: &str,
        seed: Option<&Bound<'_, PyAny>>,
        tie_rule: &str,
    ) -> PyResult<Self> {
        Self::build(scenario, observer, seed, tie_rule)
    }

    /// Start an episode. ``seed`` reseeds the market's RNG (same seed and
    /// same actions give a bit-identical episode); ``options`` is accepted for
    /// Gymnasium compatibility and must be None or empty.
    #[pyo3(signature = (seed=None, options=None))]
    fn reset<'py>(
        slf: &Bound<'py, Self>,
        seed: Option<&Bound<'py, PyAny>>,
        options: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<(Bound<'py, PyArray2<f32>>, Bound<'py, PyDict>)> {
        let py = slf.py();
        let mut this = borrow_env(slf, "MarketEnv")?;
        let this = &mut *this;
        if let Some(o) = options {
            if !o.is_none() && o.is_truthy()? {
                return Err(PyValueError::new_err(
                    "options: MarketEnv.reset takes no options (got a non-empty value)",
                ));
            }
        }
        let seed = seed_arg(seed)?;
        let obs = obs_array(py, this.env.num_agents(), this.env.obs_dim());
        this.env.reset(seed, filled(&obs)).py()?;
        let info = PyDict::new(py);
        info.set_item(intern!(py, "demand"), this.env.demand()[0])?;
        Ok((obs, info))
    }

    /// Step one hour with actions of shape (N, 2), or (N, K, 2) with K
    /// segments. Raises ValueError for a
    /// wrong shape or NaN/inf (naming the agent; nothing is stepped) and
    /// RuntimeError before ``reset()`` or after the episode ended.
    fn step<'py>(
        slf: &Bound<'py, Self>,
        actions: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let mut guard = borrow_env(slf, "MarketEnv")?;
        let this = &mut *guard;
        let (n, d) = (this.env.num_agents(), this.env.obs_dim());
        let a = market_actions(actions, this.env.market())?;
        let obs = obs_array(py, n, d);
        // SAFETY: as in `obs_array`: the step writes all N rewards, or fails
        // and the array is dropped unseen.
        let rewards = unsafe { PyArray1::<f32>::new(py, n, false) };
        let info = this
            .env
            .step(a.values(), filled(&obs), filled(&rewards))
            .py()?;
        let cleared = this.env.last_cleared().to_pyarray(py);
        let dict = info_dict(py, &info)?;
        dict.set_item(intern!(py, "cleared"), cleared)?;
        network_info(py, &this.env, &info, &dict)?;
        if !this.env.soc().is_empty() {
            dict.set_item(intern!(py, "soc"), this.env.soc().to_pyarray(py))?;
        }
        let term = info.terminated.into_bound_py_any(py)?;
        let trunc = false.into_bound_py_any(py)?;
        super::tuple(
            py,
            [
                obs.into_any(),
                rewards.into_any(),
                term,
                trunc,
                dict.into_any(),
            ],
        )
    }

    /// The PettingZoo step: ``actions`` maps every name in ``agents`` (the
    /// agent names, in index order) to its action, ``[a0, a1]`` or (K, 2)
    /// with K segments. Returns ``(observations, rewards, terminations,
    /// truncations, infos)`` as dicts keyed by agent. Used by
    /// ``powermarket.pettingzoo``; the step is the core's
    /// (``MarketEnv::step_rows``), this only converts.
    fn step_dict<'py>(
        slf: &Bound<'py, Self>,
        actions: &Bound<'py, PyDict>,
        agents: &Bound<'py, PyList>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let mut guard = borrow_env(slf, "MarketEnv")?;
        let this = &mut *guard;
        let (n, d) = (this.env.num_agents(), this.env.obs_dim());
        let names = agents
            .iter()
            .map(|a| a.cast_into::<PyString>().map_err(PyErr::from))
            .collect::<PyResult<Vec<_>>>()
            .map_err(|_| PyValueError::new_err("agents: must be a list of agent names (str)"))?;
        let strs = names
            .iter()
            .map(|s| s.to_str())
            .collect::<PyResult<Vec<&str>>>()?;
        check_agent_names(
            strs.iter().copied(),
            this.env.market().n(),
            this.env.market().s(),
        )
        .py()?;
        if actions.len() != n {
            for key in actions.keys() {
                if !agents.contains(&key)? {
                    let gens = this.env.market().n();
                    let last = powermarket::env::action::agent_name(n - 1, gens);
                    let kinds = if n > gens {
                        format!("gen_0 ... gen_{}, sto_0 ... {last}", gens - 1)
                    } else {
                        format!("gen_0 ... {last}")
                    };
                    return Err(PyValueError::new_err(format!(
                        "actions: unknown agent {}; agents are {kinds}",
                        key.repr()?
                    )));
                }
            }
        }
        let k = this.env.market().segments();
        let mut rows: Vec<Option<Vec<f32>>> = Vec::with_capacity(n);
        for name in &names {
            rows.push(match actions.get_item(name)? {
                None => None,
                Some(act) => Some(agent_row(&act, k, name.to_str()?)?),
            });
        }
        let rows: Vec<Option<&[f32]>> = rows.iter().map(|r| r.as_deref()).collect();
        let (env, sc) = (&mut this.env, &mut this.scratch);
        let out = env.step_rows(&rows, sc).py()?;
        let (o, r, te, tr, inf) = (
            PyDict::new(py),
            PyDict::new(py),
            PyDict::new(py),
            PyDict::new(py),
            PyDict::new(py),
        );
        let info = out.info;
        let (price, demand, average_paid) = (
            info.price.into_bound_py_any(py)?,
            info.demand.into_bound_py_any(py)?,
            info.average_paid.into_bound_py_any(py)?,
        );
        let term = info.terminated.into_bound_py_any(py)?;
        let trunc = false.into_bound_py_any(py)?;
        for (i, name) in names.iter().enumerate() {
            o.set_item(name, PyArray1::from_slice(py, &out.obs[i * d..(i + 1) * d]))?;
            r.set_item(name, out.rewards[i] as f64)?;
            te.set_item(name, &term)?;
            tr.set_item(name, &trunc)?;
            let one = PyDict::new(py);
            one.set_item(intern!(py, "price"), &price)?;
            one.set_item(intern!(py, "average_paid"), &average_paid)?;
            one.set_item(intern!(py, "cleared"), env.last_cleared()[i])?;
            one.set_item(intern!(py, "demand"), &demand)?;
            let gens = env.market().n();
            if i >= gens {
                one.set_item(intern!(py, "soc"), env.soc()[i - gens])?;
            }
            network_info(py, env, &info, &one)?;
            if let Some(g) = &env.market().grid {
                one.set_item(intern!(py, "node_price"), env.last_prices()[g.node_of[i]])?;
            }
            inf.set_item(name, one)?;
        }
        super::tuple(
            py,
            [
                o.into_any(),
                r.into_any(),
                te.into_any(),
                tr.into_any(),
                inf.into_any(),
            ],
        )
    }

    /// The Gymnasium single-learner step (used by
    /// ``powermarket.gymnasium.MarketSingleAgentEnv``): ``agent`` plays
    /// ``action`` ((2,), or (K, 2) with K segments; any array of that size,
    /// clipped to the box in float64), the rows of ``given`` (N, K, 2) where
    /// ``mask`` (N,) is true are the caller's, and the other agents follow
    /// the built-in ``opponents`` (market 0's RNG). Returns ``(obs (D,),
    /// reward, terminated, truncated, info)`` as ``Env.step`` does. The step
    /// is the core's (``MarketEnv::step_single``); on error nothing changes.
    #[pyo3(signature = (action, agent, opponents, given=None, mask=None))]
    fn step_single<'py>(
        slf: &Bound<'py, Self>,
        action: &Bound<'py, PyAny>,
        agent: usize,
        opponents: &Bound<'py, PyOpponents>,
        given: Option<&Bound<'py, PyAny>>,
        mask: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let mut guard = borrow_env(slf, "MarketEnv")?;
        let this = &mut *guard;
        let (n, d, k) = (
            this.env.num_agents(),
            this.env.obs_dim(),
            this.env.market().segments(),
        );
        let pair;
        let owned;
        let action: &[f32] = match (k, plain_pair(action)) {
            (1, Some(p)) => {
                pair = [0, 1].map(|c| powermarket::env::action::clipped(c, p[c]) as f32);
                &pair
            }
            _ => {
                owned = learner_action(action, k, agent, this.env.market().n())?;
                &owned
            }
        };
        let given = match (given, mask) {
            (Some(g), Some(m)) if !g.is_none() && !m.is_none() => {
                let g = array_arg::<f32>(g, "given", if k == 1 { 2 } else { 3 })?;
                let m = array_arg::<bool>(m, "mask", 1)?;
                Some((elems(&g).to_vec(), elems(&m).to_vec()))
            }
            _ => None,
        };
        let rows = given.as_ref().map(|(a, m)| GivenRows {
            actions: a,
            mask: m,
        });
        let mut ops = opponents.try_borrow_mut().map_err(|_| {
            pyo3::exceptions::PyRuntimeError::new_err("opponents are being used by another thread")
        })?;
        let delta = ops.max_bid_delta;
        let (env, sc) = (&mut this.env, &mut this.scratch);
        let out = env
            .step_single(agent, action, rows, &mut ops.inner, delta, sc)
            .py()?;
        let row = PyArray1::from_slice(py, &out.obs[agent * d..(agent + 1) * d]);
        let dict = info_dict(py, &out.info)?;
        let (reward, terminated) = (out.rewards[agent] as f64, out.info.terminated);
        if !env.soc().is_empty() {
            dict.set_item(intern!(py, "soc"), env.soc().to_pyarray(py))?;
        }
        debug_assert_eq!(out.rewards.len(), n);
        dict.set_item(intern!(py, "cleared"), env.last_cleared()[agent])?;
        network_info(py, env, &out.info, &dict)?;
        if let Some(g) = &env.market().grid {
            dict.set_item(
                intern!(py, "node_price"),
                env.last_prices()[g.node_of[agent]],
            )?;
        }
        PyTuple::new(
            py,
            [
                row.into_any(),
                reward.into_bound_py_any(py)?,
                terminated.into_bound_py_any(py)?,
                false.into_bound_py_any(py)?,
                dict.into_any(),
            ],
        )
    }

    /// The current episode so far, NumPy copies: ``bids``, ``offered``,
    /// ``cleared``, ``paid`` per offer ((hours, N), or (hours, N, K) with K
    /// segments), ``rewards`` and ``availability`` (load factors) (hours, N)
    /// and ``prices``, ``average_paid``, ``demand`` (hours,).
    fn episode_record<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let lf = self.env.load_factors();
        record_dict(py, &self.env.record(), self.env.market(), &lf)
    }

    /// The current observation (N, D): the one the last ``reset`` or
    /// ``step`` returned (a new array). RuntimeError before ``reset()``.
    fn observe<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let obs = obs_array(py, self.env.num_agents(), self.env.obs_dim());
        self.env.observe(filled(&obs)).py()?;
        Ok(obs)
    }

    /// Lower and upper bounds of every observation feature, each (N, D) float32.
    fn observation_bounds<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyArray2<f32>>, Bound<'py, PyArray2<f32>>)> {
        super::bounds(py, self.env.market())
    }

    /// Realised demand of every hour of the current episode, MW (a copy).
    #[getter]
    fn demand<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.env.demand().to_pyarray(py)
    }

    /// Load factors of every hour and generator of the current episode,
    /// (T, N) (a copy): its own draw with ``availability_noise``, else the
    /// scenario's (all ones without availability).
    #[getter]
    fn availability<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let (n, t) = (self.env.market().n(), self.env.horizon());
        self.env.load_factors().to_pyarray(py).reshape([t, n])
    }

    /// Number of agents A = N + S (generators, then storage units).
    #[getter]
    fn num_agents(&self) -> usize {
        self.env.num_agents()
    }

    /// Features per agent.
    #[getter]
    fn obs_dim(&self) -> usize {
        self.env.obs_dim()
    }

    /// Hours per episode, T.
    #[getter]
    fn horizon(&self) -> usize {
        self.env.horizon()
    }

    /// Hours stepped in the current episode (None before the first reset).
    #[getter]
    fn t(&self) -> Option<usize> {
        self.env.t()
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
            inner: self.env.scenario().clone(),
        }
    }

    /// A copy with the same state, RNG included.
    fn __copy__(&self) -> Self {
        self.clone()
    }

    /// A copy with the same state, RNG included.
    fn __deepcopy__(&self, _memo: &Bound<'_, PyAny>) -> Self {
        self.clone()
    }

    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        state::reduce(self, py)
    }

    fn __repr__(&self) -> String {
        format!(
            "MarketEnv(n={}, t={}, observer={:?}, tie_rule={:?})",
            self.env.num_agents(),
            self.env.horizon(),
            self.observer.name(),
            self.tie_rule.name()
        )
    }
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyMarketEnv>()?;
    m.add_function(wrap_pyfunction!(state::_restore_market_env, m)?)?;
    Ok(())
}
