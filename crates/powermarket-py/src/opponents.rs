//! The built-in opponents of the Gymnasium fronts (`powermarket._core.Opponents`).

use super::{expect_shape, seed_arg};
use crate::pickle::{check_format, item, new_state, rng_to_py, rngs_from_py};
use crate::Core;
use numpy::{PyArrayMethods, PyUntypedArrayMethods};
use powermarket::env::PriceAction;
use powermarket::error::MarketError;
use powermarket::opponents::{Opponents, Strategy};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use pyo3::IntoPyObjectExt;

/// Built-in opponent strategies, computed in Rust (internal; used by the
/// Gymnasium single-learner env).
///
/// ``strategies`` has one entry per agent: ``"truthful"``, ``"random"``,
/// ``("constant", a0, a1)`` or ``("markup", eur_per_mwh)``; the learner's own
/// entry is ignored. ``scenario`` (the market's) sets which agents are storage
/// units, their costs or reference prices, and its ``price_action`` (the box
/// their price actions are drawn from or mapped to; ``"tanh"`` without one).
#[pyclass(name = "Opponents", module = "powermarket._core")]
#[derive(Clone)]
pub struct PyOpponents {
    pub(super) inner: Opponents,
    pub(super) max_bid_delta: f64,
}

/// A strategy spec: a name, or a tuple `(name, *parameters)`; the core
/// checks it (`Strategy::from_spec`). Errors name the agent.
fn parse_strategy(obj: &Bound<'_, PyAny>, agent: usize, generators: usize) -> PyResult<Strategy> {
    let who = powermarket::env::action::agent_name(agent, generators);
    let bad = || {
        PyValueError::new_err(format!(
            "opponent for {who}: expected {}, got {}",
            Strategy::usage(),
            obj.repr().map(|r| r.to_string()).unwrap_or_default()
        ))
    };
    let (name, params): (String, Vec<f64>) = if let Ok(s) = obj.extract::<String>() {
        (s, Vec::new())
    } else {
        let t = obj.cast::<PyTuple>().map_err(|_| bad())?;
        let name = t.get_item(0).and_then(|x| x.extract()).map_err(|_| bad())?;
        let params = t
            .iter()
            .skip(1)
            .map(|x| x.extract::<f64>().map_err(|_| bad()))
            .collect::<PyResult<_>>()?;
        (name, params)
    };
    Strategy::from_spec(&name, &params).map_err(|e| match e {
        MarketError::BadScalar { value, .. } => PyValueError::new_err(format!(
            "opponent for {who}: parameters must be finite, got {value}"
        )),
        _ => bad(),
    })
}

#[pymethods]
impl PyOpponents {
    #[new]
    #[pyo3(signature = (strategies, max_bid_delta, seed=None, num_markets=None, scenario=None))]
    fn new(
        strategies: Vec<Bound<'_, PyAny>>,
        max_bid_delta: f64,
        seed: Option<&Bound<'_, PyAny>>,
        num_markets: Option<&Bound<'_, PyAny>>,
        scenario: Option<&Bound<'_, crate::scenario::PyScenario>>,
    ) -> PyResult<Self> {
        if !(max_bid_delta.is_finite() && max_bid_delta >= 0.0) {
            return Err(PyValueError::new_err(format!(
                "max_bid_delta must be finite and >= 0, got {max_bid_delta}"
            )));
        }
        if let Some(s) = scenario {
            let agents = s.get().inner.agents();
            if strategies.len() != agents {
                return Err(PyValueError::new_err(format!(
                    "strategies: expected one per agent of the scenario ({agents}), got {}",
                    strategies.len()
                )));
            }
        }
        let n = scenario.map_or(usize::MAX, |s| s.get().inner.n());
        let parsed = strategies
            .iter()
            .enumerate()
            .map(|(i, s)| parse_strategy(s, i, n))
            .collect::<PyResult<Vec<_>>>()?;
        let num_markets = super::opt_count_arg(num_markets, "num_markets")?.unwrap_or(1);
        let mut inner = Opponents::new(parsed, seed_arg(seed)?, num_markets).py()?;
        if let Some(s) = scenario {
            inner.set_scenario(&s.get().inner);
        }
        Ok(PyOpponents {
            inner,
            max_bid_delta,
        })
    }

    /// Reseed the RNGs of the random strategies: an int ``s`` gives market
    /// ``i`` key ``s``, stream ``i``; a list of ``num_markets`` ints gives
    /// market ``i`` key ``seed[i]``, stream 0. ``mask`` limits the markets.
    #[pyo3(signature = (seed, mask=None))]
    fn reseed(&mut self, seed: &Bound<'_, PyAny>, mask: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let m = self.inner.num_markets();
        let mask = super::mask_arg(mask, m)?;
        match super::seeds_arg(Some(seed), m)? {
            super::Seeds::Base(Some(s)) => self.inner.reseed(s, mask.as_deref()).py()?,
            super::Seeds::PerMarket(list) => self.inner.reseed_each(&list, mask.as_deref()).py()?,
            super::Seeds::Base(None) => {
                return Err(PyValueError::new_err(
                    "seed: reseed needs an int or a list of ints",
                ))
            }
        }
        Ok(())
    }

    /// The price action their actions are for: ``"tanh"`` or ``"linear"``.
    #[getter]
    fn price_action(&self) -> &'static str {
        self.inner.price_action.name()
    }

    /// Number of markets (one RNG each).
    #[getter]
    fn num_markets(&self) -> usize {
        self.inner.num_markets()
    }

    /// Write every agent's action but ``skip``'s into ``actions`` (N, 2), or
    /// (N, K, 2) with K offer blocks (each block gets the strategy's action),
    /// float32, drawing from market 0's RNG. ``last_price`` is the market's
    /// last clearing price, or its Z node prices (a rule sees its own node's).
    #[pyo3(signature = (actions, skip, last_price=None))]
    fn fill(
        &mut self,
        actions: &Bound<'_, PyAny>,
        skip: usize,
        last_price: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let last_prices: Option<Vec<f64>> = match last_price {
            None => None,
            Some(p) if p.is_none() => None,
            Some(p) => Some(match p.extract::<f64>() {
                Ok(x) => vec![x],
                Err(_) => p.extract::<Vec<f64>>().map_err(|_| {
                    PyValueError::new_err("last_price must be a float or a sequence of node prices")
                })?,
            }),
        };
        let actions = float32_array(actions)?;
        let actions = &actions;
        let n = self.inner.strategies.len();
        match actions.shape() {
            [_, _, k] if *k != 2 => expect_shape("actions", actions.shape(), &[n, 2])?,
            [_, k, _] => expect_shape("actions", actions.shape(), &[n, *k, 2])?,
            _ => expect_shape("actions", actions.shape(), &[n, 2])?,
        }
        let mut rw = writable(actions)?;
        let slice = rw.as_slice_mut()?;
        self.inner.fill(
            slice,
            skip,
            self.max_bid_delta,
            &last_prices.unwrap_or_default(),
        );
        Ok(())
    }

    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let specs = self
            .inner
            .strategies
            .iter()
            .map(|s| {
                let (name, params) = s.spec();
                if params.is_empty() {
                    name.into_bound_py_any(py)
                } else {
                    let mut items = vec![name.into_bound_py_any(py)?];
                    for p in params {
                        items.push(p.into_bound_py_any(py)?);
                    }
                    PyTuple::new(py, items)?.into_bound_py_any(py)
                }
            })
            .collect::<PyResult<Vec<_>>>()?;
        let states = self
            .inner
            .rng_states()
            .iter()
            .map(|s| rng_to_py(py, s))
            .collect::<Vec<_>>();
        let restore = py
            .import("powermarket._core")?
            .getattr("_restore_opponents")?;
        let state = new_state(py)?;
        state.set_item("strategies", specs)?;
        state.set_item("max_bid_delta", self.max_bid_delta)?;
        state.set_item("price_action", self.inner.price_action.name())?;
        state.set_item("rngs", states)?;
        let (generators, references, nodes) = self.inner.agents();
        state.set_item("generators", generators)?;
        state.set_item("references", references.to_vec())?;
        state.set_item("nodes", nodes.to_vec())?;
        Ok((restore, (state,).into_pyobject(py)?))
    }

    /// Fill (M, N, 2) float32 ``actions``, or (M, N, K, 2) with K offer
    /// blocks, market by market (market ``i`` from RNG ``i``; M must equal
    /// ``num_markets``), skipping agent ``skip``.
    #[pyo3(signature = (actions, skip, last_prices=None))]
    fn fill_batch(
        &mut self,
        actions: &Bound<'_, PyAny>,
        skip: usize,
        last_prices: Option<Vec<f64>>,
    ) -> PyResult<()> {
        let actions = float32_array(actions)?;
        let actions = &actions;
        let n = self.inner.strategies.len();
        let m = self.inner.num_markets();
        if let Some(p) = &last_prices {
            if p.is_empty() || p.len() % m != 0 {
                return Err(PyValueError::new_err(format!(
                    "last_prices: expected one per market ({m}), or (M, Z) node prices, got {}",
                    p.len()
                )));
            }
        }
        let k = match actions.shape() {
            [_, _, k, _] => *k,
            _ => 1,
        };
        if k == 1 && actions.ndim() != 4 {
            expect_shape("actions", actions.shape(), &[m, n, 2])?;
        } else {
            expect_shape("actions", actions.shape(), &[m, n, k, 2])?;
        }
        let mut rw = writable(actions)?;
        self.inner
            .fill_batch(
                rw.as_slice_mut()?,
                skip,
                self.max_bid_delta,
                k,
                last_prices.as_deref().unwrap_or(&[]),
            )
            .py()?;
        Ok(())
    }

    /// A copy with the same state, RNGs included.
    fn __copy__(&self) -> Self {
        self.clone()
    }

    /// A copy with the same state, RNGs included.
    fn __deepcopy__(&self, _memo: &Bound<'_, PyAny>) -> Self {
        self.clone()
    }
}

/// `actions` as a float32 NumPy array (written in place), or a TypeError
/// naming the argument and what it got.
fn float32_array<'py>(actions: &Bound<'py, PyAny>) -> PyResult<Bound<'py, numpy::PyArrayDyn<f32>>> {
    actions
        .cast::<numpy::PyArrayDyn<f32>>()
        .cloned()
        .map_err(|_| {
            let got = actions
                .getattr("dtype")
                .map(|d| format!("dtype {d}"))
                .unwrap_or_else(|_| {
                    actions
                        .get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                });
            pyo3::exceptions::PyTypeError::new_err(format!(
                "actions must be a float32 NumPy array (filled in place), got {got}"
            ))
        })
}

fn writable<'py, D: numpy::ndarray::Dimension>(
    a: &Bound<'py, numpy::PyArray<f32, D>>,
) -> PyResult<numpy::PyReadwriteArray<'py, f32, D>> {
    a.try_readwrite().map_err(|e| {
        PyValueError::new_err(format!("actions must be a writeable float32 array: {e}"))
    })
}

/// Rebuild pickled Opponents (internal).
#[pyfunction]
fn _restore_opponents(state: &Bound<'_, PyDict>) -> PyResult<PyOpponents> {
    check_format(state, "Opponents")?;
    let parsed = item(state, "strategies")?
        .try_iter()?
        .enumerate()
        .map(|(i, s)| parse_strategy(&s?, i, usize::MAX))
        .collect::<PyResult<Vec<_>>>()?;
    let states = rngs_from_py(&item(state, "rngs")?)?;
    let mut inner = Opponents::restore(parsed, &states).py()?;
    inner.price_action = item(state, "price_action")?
        .extract::<String>()?
        .parse::<PriceAction>()
        .py()?;
    inner.set_agents(
        item(state, "generators")?.extract()?,
        item(state, "references")?.extract()?,
        item(state, "nodes")?.extract()?,
    );
    Ok(PyOpponents {
        inner,
        max_bid_delta: item(state, "max_bid_delta")?.extract()?,
    })
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyOpponents>()?;
    m.add_function(wrap_pyfunction!(_restore_opponents, m)?)?;
    Ok(())
}
