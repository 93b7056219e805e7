//! Bindings of `powermarket::analysis`: convert, validate, copy the inputs into
//! Rust-owned memory, release the GIL, hand the results to NumPy.

use super::scenario::scenario_arg;
use super::{actions_arg, array_arg, elems, expect_shape};
use crate::Core;
use numpy::{Element, PyArray1, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use powermarket::analysis::{self, Grid};
use powermarket::clearing::TieRule;
use powermarket::env::Market;
use powermarket::error::agent_name;
use powermarket::observe::Observer;
use pyo3::exceptions::{PyMemoryError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// A Rust-owned copy of a slice (the GIL is released afterwards, so the core
/// never reads Python-owned memory).
fn owned<T: Element + Copy>(values: &[T], arg: &str) -> PyResult<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(values.len()).map_err(|_| {
        PyMemoryError::new_err(format!("{arg}: cannot copy {} values", values.len()))
    })?;
    v.extend_from_slice(values);
    Ok(v)
}

/// A 1-D float64 argument, copied.
fn vec_arg(obj: &Bound<'_, PyAny>, arg: &str) -> PyResult<Vec<f64>> {
    owned(elems(&array_arg::<f64>(obj, arg, 1)?), arg)
}

/// An array argument of `ndim` dimensions: its shape and a copy.
fn nd_arg(obj: &Bound<'_, PyAny>, arg: &str, ndim: usize) -> PyResult<(Vec<usize>, Vec<f64>)> {
    let a = array_arg::<f64>(obj, arg, ndim)?;
    Ok((a.shape().to_vec(), owned(elems(&a), arg)?))
}

fn array<'py, T: Element>(
    py: Python<'py>,
    v: Vec<T>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    PyArray1::from_vec(py, v).reshape(shape)
}

fn number(obj: &Bound<'_, PyAny>, arg: &str, unit: &str) -> PyResult<f64> {
    obj.extract::<f64>().map_err(|_| {
        PyValueError::new_err(format!(
            "{arg} must be a number ({unit}), got {}",
            obj.repr().map(|r| r.to_string()).unwrap_or_default()
        ))
    })
}

/// The competitive benchmark: every generator offers its full capacity at
/// cost. Returns a dict with ``price`` (T,) €/MWh, ``cleared`` (T, N) MW and
/// ``profit`` (T, N) € per hour, on ``demand`` (MW per hour) or the
/// scenario's base profile. A networked scenario clears on its network and
/// adds ``node_prices`` (T, Z), ``flows`` (T, L) and ``congestion_rent``
/// (T,); ``price`` is then the demand-weighted mean of the node prices.
#[pyfunction]
#[pyo3(signature = (scenario, demand=None, *, tie_rule="pro_rata"))]
fn competitive<'py>(
    py: Python<'py>,
    scenario: &Bound<'py, PyAny>,
    demand: Option<&Bound<'py, PyAny>>,
    tie_rule: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let s = scenario_arg(Some(scenario))?;
    let rules = s.rules(TieRule::parse(tie_rule).py()?);
    let demand = match demand {
        Some(d) if !d.is_none() => Some(vec_arg(d, "demand")?),
        _ => None,
    };
    let out = py
        .detach(|| analysis::competitive(&s, &rules, demand.as_deref()))
        .py()?;
    let (t, n) = (out.price.len(), s.n());
    let d = PyDict::new(py);
    d.set_item("price", PyArray1::from_vec(py, out.price))?;
    d.set_item("cleared", array(py, out.cleared, &[t, n])?)?;
    d.set_item("profit", array(py, out.profit, &[t, n])?)?;
    if s.networked() {
        let (z, l) = (s.z(), s.lines.len());
        d.set_item("node_prices", array(py, out.node_prices, &[t, z])?)?;
        d.set_item("flows", array(py, out.flows, &[t, l])?)?;
        d.set_item(
            "congestion_rent",
            PyArray1::from_vec(py, out.congestion_rent),
        )?;
    }
    Ok(d)
}

/// Market-power metrics of an episode: ``bids`` and ``cleared`` (T, N),
/// ``prices`` and ``demand`` (T,), and optionally the episode's load factors
/// ``availability`` (T, N). With storage units, ``soc`` (T, S), the state of
/// charge at the start of each hour, and ``discharge`` (T, S) MW make them
/// suppliers too (``rsi`` and ``pivotal`` (T, A)). Returns ``rsi``,
/// ``pivotal``, ``hhi``, ``lerner`` and ``markup`` (see
/// ``powermarket.analysis.market_power``). A networked scenario adds the
/// per-node metrics ``node_demand``, ``reachable_supply``, ``node_rsi``,
/// ``node_pivotal`` (T, Z), ``local_rsi``, ``local_pivotal`` (T, A) and,
/// with ``node_prices`` (T, Z), ``node_lerner`` (T, N).
#[pyfunction]
#[pyo3(signature = (scenario, bids, cleared, prices, demand, availability=None, *, soc=None,
                    discharge=None, node_prices=None))]
#[allow(clippy::too_many_arguments)]
fn market_power<'py>(
    py: Python<'py>,
    scenario: &Bound<'py, PyAny>,
    bids: &Bound<'py, PyAny>,
    cleared: &Bound<'py, PyAny>,
    prices: &Bound<'py, PyAny>,
    demand: &Bound<'py, PyAny>,
    availability: Option<&Bound<'py, PyAny>>,
    soc: Option<&Bound<'py, PyAny>>,
    discharge: Option<&Bound<'py, PyAny>>,
    node_prices: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let s = scenario_arg(Some(scenario))?;
    let n = s.n();
    let prices = vec_arg(prices, "prices")?;
    let t = prices.len();
    let demand = vec_arg(demand, "demand")?;
    expect_shape("demand", &[demand.len()], &[t])?;
    let (shape, bids) = nd_arg(bids, "bids", 2)?;
    expect_shape("bids", &shape, &[t, n])?;
    let (shape, cleared) = nd_arg(cleared, "cleared", 2)?;
    expect_shape("cleared", &shape, &[t, n])?;
    let availability = match availability {
        Some(a) if !a.is_none() => {
            let (shape, a) = nd_arg(a, "availability", 2)?;
            expect_shape("availability", &shape, &[t, n])?;
            Some(a)
        }
        _ => None,
    };
    let storage = match (
        soc.filter(|x| !x.is_none()),
        discharge.filter(|x| !x.is_none()),
    ) {
        (None, None) => None,
        (Some(soc), Some(dis)) => {
            let su = s.s();
            let (shape, soc) = nd_arg(soc, "soc", 2)?;
            expect_shape("soc", &shape, &[t, su])?;
            let (shape, dis) = nd_arg(dis, "discharge", 2)?;
            expect_shape("discharge", &shape, &[t, su])?;
            Some((soc, dis))
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(PyValueError::new_err(
                "soc and discharge must be given together (the storage units' state of \
                 charge at the start of each hour and their discharge), or neither",
            ))
        }
    };
    let node_prices = match node_prices.filter(|x| !x.is_none()) {
        None => None,
        Some(np) => {
            if !s.networked() {
                return Err(PyValueError::new_err(
                    "node_prices: given for a scenario that is not networked (one node on \
                     the copper plate); leave it out",
                ));
            }
            let (shape, np) = nd_arg(np, "node_prices", 2)?;
            expect_shape("node_prices", &shape, &[t, s.z()])?;
            Some(np)
        }
    };
    let out = py
        .detach(|| {
            analysis::market_power_at_nodes(
                &s,
                &bids,
                &cleared,
                &prices,
                &demand,
                availability.as_deref(),
                storage.as_ref().map(|(soc, dis)| analysis::StorageRecord {
                    soc,
                    discharge: dis,
                }),
                node_prices.as_deref(),
            )
        })
        .py()?;
    let a = if storage.is_some() { n + s.s() } else { n };
    let d = PyDict::new(py);
    d.set_item("rsi", array(py, out.rsi, &[t, a])?)?;
    d.set_item("pivotal", array(py, out.pivotal, &[t, a])?)?;
    d.set_item("hhi", PyArray1::from_vec(py, out.hhi))?;
    d.set_item("lerner", array(py, out.lerner, &[t, n])?)?;
    d.set_item("markup", array(py, out.markup, &[t, n])?)?;
    if let Some(nd) = out.nodes {
        let z = nd.z;
        d.set_item("node_demand", array(py, nd.node_demand, &[t, z])?)?;
        d.set_item("reachable_supply", array(py, nd.reachable, &[t, z])?)?;
        d.set_item("node_rsi", array(py, nd.node_rsi, &[t, z])?)?;
        d.set_item("node_pivotal", array(py, nd.node_pivotal, &[t, z])?)?;
        d.set_item("local_rsi", array(py, nd.local_rsi, &[t, a])?)?;
        d.set_item("local_pivotal", array(py, nd.local_pivotal, &[t, a])?)?;
        if let Some(l) = nd.lerner {
            d.set_item("node_lerner", array(py, l, &[t, n])?)?;
        }
    }
    Ok(d)
}

/// Regret of played episodes on a grid of deviations (the hot loop of
/// ``powermarket.analysis.exploitability``). ``actions`` (E, T, A, 2) as the
/// env received them, ``demand`` (E, T) realised MW, ``availability``
/// (E, T, N) realised load factors (None: the scenario's); the candidate
/// deviations are every pair of ``withheld`` x ``price_action``; storage
/// units are searched on ``soc_grid`` states of charge (None: 101). The GIL
/// is released and large inputs use several threads.
#[pyfunction]
#[pyo3(signature = (scenario, actions, demand, withheld, price_action, *, tie_rule="pro_rata",
                    availability=None, soc_grid=None))]
#[allow(clippy::too_many_arguments)]
fn exploitability_of_play<'py>(
    py: Python<'py>,
    scenario: &Bound<'py, PyAny>,
    actions: &Bound<'py, PyAny>,
    demand: &Bound<'py, PyAny>,
    withheld: &Bound<'py, PyAny>,
    price_action: &Bound<'py, PyAny>,
    tie_rule: &str,
    availability: Option<&Bound<'py, PyAny>>,
    soc_grid: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let soc_grid = match soc_grid.filter(|g| !g.is_none()) {
        None => analysis::DEFAULT_SOC_GRID,
        Some(g) => {
            let bad = || {
                PyValueError::new_err(format!(
                    "soc_grid must be an int >= 2 (points of the state-of-charge grid), got {}",
                    g.repr().map(|r| r.to_string()).unwrap_or_default()
                ))
            };
            if g.is_instance_of::<pyo3::types::PyBool>() {
                return Err(bad());
            }
            match g.extract::<i64>() {
                Ok(k) if k >= 2 => usize::try_from(k).map_err(|_| bad())?,
                _ => return Err(bad()),
            }
        }
    };
    let market = Market::new(
        scenario_arg(Some(scenario))?,
        Observer::Simple,
        TieRule::parse(tie_rule).py()?,
    )
    .py()?;
    let (n, t, na) = (market.n(), market.horizon(), market.agents());
    let a = actions_arg(actions, 4)?;
    let e = a.shape()[0];
    expect_shape("actions", a.shape(), &[e, t, na, 2])?;
    if e == 0 {
        return Err(PyValueError::new_err(
            "actions must hold at least one episode, got shape (0, ...)",
        ));
    }
    if let Some(k) = a.values().iter().position(|x| !x.is_finite()) {
        let (row, agent, comp) = (k / (2 * na), (k / 2) % na, k % 2);
        return Err(PyValueError::new_err(format!(
            "actions[{}, {}] for {}: {} must be finite, got {}",
            row / t,
            row % t,
            agent_name(agent, n),
            if comp == 0 && agent < n {
                "a0 (withheld share)"
            } else if comp == 0 {
                "a0 (signed power share)"
            } else {
                "a1 (price action)"
            },
            a.values()[k]
        )));
    }
    let acts = owned(a.values(), "actions")?;
    let (shape, demand) = nd_arg(demand, "demand", 2)?;
    expect_shape("demand", &shape, &[e, t])?;
    let availability = match availability {
        Some(a) if !a.is_none() => {
            let (shape, a) = nd_arg(a, "availability", 3)?;
            expect_shape("availability", &shape, &[e, t, n])?;
            Some(a)
        }
        _ => None,
    };
    let withheld = vec_arg(withheld, "withheld")?;
    let price_action = vec_arg(price_action, "price_action")?;
    let grid = Grid {
        withheld: &withheld,
        price_action: &price_action,
    };
    let x = py
        .detach(|| {
            analysis::exploitability_with(
                &market,
                &acts,
                &demand,
                availability.as_deref(),
                e,
                &grid,
                soc_grid,
            )
        })
        .py()?;
    let eur = analysis::eur_per_day(&market);
    let nash_conv = x.nash_conv();
    let in_eur = |v: &[f64]| v.iter().map(|r| r * eur).collect::<Vec<_>>();
    let d = PyDict::new(py);
    d.set_item(
        "regret_eur_per_day",
        PyArray1::from_vec(py, in_eur(&x.regret)),
    )?;
    d.set_item(
        "played_reward_eur_per_day",
        PyArray1::from_vec(py, in_eur(&x.played_reward)),
    )?;
    d.set_item("nash_conv", nash_conv)?;
    d.set_item("nash_conv_eur_per_day", nash_conv * eur)?;
    d.set_item("regret", PyArray1::from_vec(py, x.regret))?;
    d.set_item("played_reward", PyArray1::from_vec(py, x.played_reward))?;
    d.set_item(
        "regret_per_episode",
        array(py, x.regret_per_episode, &[e, na])?,
    )?;
    d.set_item("best_response", array(py, x.best_response, &[e, t, na, 2])?)?;
    d.set_item("eur_per_day_per_reward", eur)?;
    Ok(d)
}

/// An approximate pure Nash equilibrium of the per-hour game on a grid, by
/// best-response dynamics (the core of ``powermarket.analysis.equilibrium``).
/// ``demand`` (E, T) MW; the candidate actions are every pair of
/// ``withheld`` x ``price_action``. Returns one dict per start (``profiles``),
/// the index of the best one (``best``), the distinct converged ones
/// (``distinct``) and ``eur_per_day_per_reward``.
#[pyfunction]
#[pyo3(signature = (scenario, demand, withheld, price_action, *, tie_rule="pro_rata",
                    max_moves=100, tol=0.01, seed=None, starts=1))]
#[allow(clippy::too_many_arguments)]
fn equilibrium<'py>(
    py: Python<'py>,
    scenario: &Bound<'py, PyAny>,
    demand: &Bound<'py, PyAny>,
    withheld: &Bound<'py, PyAny>,
    price_action: &Bound<'py, PyAny>,
    tie_rule: &str,
    max_moves: usize,
    tol: f64,
    seed: Option<&Bound<'py, PyAny>>,
    starts: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let seed = super::seed_arg(seed)?.unwrap_or(0);
    let market = Market::new(
        scenario_arg(Some(scenario))?,
        Observer::Simple,
        TieRule::parse(tie_rule).py()?,
    )
    .py()?;
    let (n, t) = (market.n(), market.horizon());
    let (shape, demand) = nd_arg(demand, "demand", 2)?;
    let e = shape[0];
    expect_shape("demand", &shape, &[e, t])?;
    let withheld = vec_arg(withheld, "withheld")?;
    let price_action = vec_arg(price_action, "price_action")?;
    let grid = Grid {
        withheld: &withheld,
        price_action: &price_action,
    };
    let opts = analysis::EquilibriumOptions {
        max_moves,
        tol,
        seed,
        starts,
    };
    let eq = py
        .detach(|| analysis::equilibrium(&market, &demand, e, &grid, &opts))
        .py()?;
    let eur = analysis::eur_per_day(&market);
    let profiles = pyo3::types::PyList::empty(py);
    for p in eq.profiles {
        let d = PyDict::new(py);
        d.set_item("start", p.start)?;
        d.set_item("nash_conv", p.nash_conv())?;
        d.set_item("converged", p.converged)?;
        d.set_item("exact_hours", p.exact)?;
        d.set_item("actions", array(py, p.actions, &[e, t, n, 2])?)?;
        d.set_item("regret", PyArray1::from_vec(py, p.regret))?;
        d.set_item("reward", PyArray1::from_vec(py, p.reward))?;
        d.set_item("profit", PyArray1::from_vec(py, p.profit))?;
        d.set_item("prices", array(py, p.price, &[e, t])?)?;
        d.set_item("cleared", array(py, p.cleared, &[e, t, n])?)?;
        d.set_item("moves", array(py, p.moves, &[e, t])?)?;
        profiles.append(d)?;
    }
    let d = PyDict::new(py);
    d.set_item("profiles", profiles)?;
    d.set_item("best", eq.best)?;
    d.set_item("distinct", eq.distinct)?;
    d.set_item("eur_per_day_per_reward", eur)?;
    Ok(d)
}

/// Every pure-strategy Nash equilibrium of a one-hour uniform-price auction
/// in which each generator offers its full capacity at a price from
/// ``prices_grid`` (see ``powermarket.analysis.pure_nash``).
#[pyfunction]
#[pyo3(signature = (prices_grid, capacities, costs, demand, *, price_cap=None))]
fn pure_nash<'py>(
    py: Python<'py>,
    prices_grid: &Bound<'py, PyAny>,
    capacities: &Bound<'py, PyAny>,
    costs: &Bound<'py, PyAny>,
    demand: &Bound<'py, PyAny>,
    price_cap: Option<f64>,
) -> PyResult<Bound<'py, PyDict>> {
    let demand = number(demand, "demand", "MW")?;
    let grid = vec_arg(prices_grid, "prices_grid")?;
    let capacities = vec_arg(capacities, "capacities")?;
    let costs = vec_arg(costs, "costs")?;
    let eq = py
        .detach(|| analysis::pure_nash(&grid, &capacities, &costs, demand, price_cap))
        .py()?;
    let (k, n) = (eq.len(), eq.n);
    let d = PyDict::new(py);
    d.set_item("bids", array(py, eq.bids, &[k, n])?)?;
    d.set_item("price", PyArray1::from_vec(py, eq.price))?;
    d.set_item("cleared", array(py, eq.cleared, &[k, n])?)?;
    d.set_item("profit", array(py, eq.profit, &[k, n])?)?;
    d.set_item("profiles", eq.profiles)?;
    Ok(d)
}

/// The Cournot–Nash equilibrium with inverse demand ``P = a - b Q``,
/// constant costs and capacities. Returns ``(price, quantities)``.
#[pyfunction]
fn cournot<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    costs: &Bound<'py, PyAny>,
    capacities: &Bound<'py, PyAny>,
) -> PyResult<(f64, Bound<'py, PyArray1<f64>>)> {
    let a = number(a, "a", "€/MWh")?;
    let b = number(b, "b", "€/MWh per MW")?;
    let costs = vec_arg(costs, "costs")?;
    let capacities = vec_arg(capacities, "capacities")?;
    let (p, q) = py
        .detach(|| analysis::cournot(a, b, &costs, &capacities))
        .py()?;
    Ok((p, PyArray1::from_vec(py, q)))
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("PURE_NASH_MAX_PROFILES", analysis::MAX_PROFILES)?;
    m.add("EXPLOITABILITY_MAX_WORK", analysis::MAX_EXPLOIT_WORK)?;
    m.add("EXPLOITABILITY_SOC_GRID", analysis::DEFAULT_SOC_GRID)?;
    m.add(
        "EQUILIBRIUM_MAX_CLEARINGS",
        analysis::EQUILIBRIUM_MAX_CLEARINGS,
    )?;
    m.add_function(wrap_pyfunction!(competitive, m)?)?;
    m.add_function(wrap_pyfunction!(market_power, m)?)?;
    m.add_function(wrap_pyfunction!(exploitability_of_play, m)?)?;
    m.add_function(wrap_pyfunction!(equilibrium, m)?)?;
    m.add_function(wrap_pyfunction!(pure_nash, m)?)?;
    m.add_function(wrap_pyfunction!(cournot, m)?)?;
    Ok(())
}
