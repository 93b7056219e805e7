use super::array_arg;
use super::elems;
use crate::errors::in_field;
use crate::scenario_grid as grid;
use crate::Core;
use numpy::{PyArray1, PyArrayMethods, PyUntypedArrayMethods, ToPyArray};
use powermarket::scenario::{Field, InFile, Kind, Scenario, Value, FIELDS};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use pyo3::IntoPyObjectExt;

/// A market scenario: generator capacities (MW), marginal costs (€/MWh), the
/// hourly demand profile (MW) and the market rules.
///
/// Build one with a preset (``Scenario.default(n=5, t=24)``,
/// ``Scenario.competitive(...)``, ``Scenario.weekly(n=5)``,
/// ``Scenario.advanced()``) or with the keyword constructor. Optional
/// realism fields: ``availability`` ((T, N) load factors in [0, 1]),
/// ``availability_noise``, ``ramp_limits`` (share of capacity per hour) and
/// ``ramp_costs`` (€/MW of change); see docs/semantics.md. Scenarios are immutable; ``replace(**fields)`` gives
/// a modified copy.
#[pyclass(name = "Scenario", module = "powermarket._core", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct PyScenario {
    pub inner: Scenario,
}

/// EUPHEMIA's harmonised day-ahead price limits, €/MWh.
const EUPHEMIA_FLOOR: f64 = -500.0;
const EUPHEMIA_CAP: f64 = 4000.0;

/// A preset size (`n`, `t`): an int >= 0 (checked further by the core), or
/// the default when omitted.
fn size(obj: Option<&Bound<'_, PyAny>>, arg: &str, default: usize) -> PyResult<usize> {
    Ok(super::opt_count_arg(obj, arg)?.unwrap_or(default))
}

/// `competition_rate`: an int >= 1 (bools, floats such as 2.0 and ints
/// below 1 are ValueError). Ints beyond 2**64 act as 2**64 - 1: any rate
/// >= n puts every generator on one cost level.
fn rate_arg(r: &Bound<'_, PyAny>) -> PyResult<usize> {
    let bad = || {
        PyValueError::new_err(format!(
            "competition_rate must be an int >= 1 (generators per cost level), got {}",
            r.repr().map(|x| x.to_string()).unwrap_or_default()
        ))
    };
    if r.is_instance_of::<pyo3::types::PyBool>() || !r.hasattr("__index__")? {
        return Err(bad());
    }
    let v = r.call_method0("__index__")?;
    if v.lt(1)? {
        return Err(bad());
    }
    Ok(v.extract::<usize>().unwrap_or(usize::MAX))
}

fn vec_arg(obj: &Bound<'_, PyAny>, field: &str) -> PyResult<Vec<f64>> {
    Ok(elems(&array_arg::<f64>(obj, field, 1)?).to_vec())
}

/// An optional per-generator field (`None` stays `None`).
fn opt_vec_arg(obj: Option<&Bound<'_, PyAny>>, field: &str) -> PyResult<Option<Vec<f64>>> {
    match obj {
        Some(o) if !o.is_none() => Ok(Some(vec_arg(o, field)?)),
        _ => Ok(None),
    }
}

/// The optional (T, N) `availability`, checked against the shape of the fleet
/// and demand (a transposed array must not pass as the right length).
fn availability_arg(
    obj: Option<&Bound<'_, PyAny>>,
    t: usize,
    n: usize,
) -> PyResult<Option<Vec<f64>>> {
    let Some(o) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    let a = array_arg::<f64>(o, "availability", 2)?;
    if a.shape() != [t, n] {
        return Err(PyValueError::new_err(format!(
            "scenario field `availability`: must have shape (T, N) = ({t}, {n}) (one load \
             factor per hour and generator), got {}",
            super::shape_str(a.shape())
        )));
    }
    Ok(Some(elems(&a).to_vec()))
}

/// A field's value from Python, converted by its kind. `n` and `t` are
/// the fleet and hour counts (for the (T, N) availability). Errors name the
/// field.
fn field_value(f: &Field, obj: &Bound<'_, PyAny>, n: usize, t: usize) -> PyResult<Value> {
    let given = (!obj.is_none()).then_some(obj);
    let number = |o: &Bound<'_, PyAny>| -> PyResult<f64> {
        o.extract::<f64>().map_err(|_| {
            PyValueError::new_err(format!("scenario field `{}` must be a number", f.name))
        })
    };
    let convert = || -> PyResult<Value> {
        Ok(match f.kind {
            Kind::Number => Value::Number(number(obj)?),
            Kind::OptNumber => Value::OptNumber(given.map(number).transpose()?),
            Kind::Count => Value::Count(segments_arg(given)?),
            Kind::Name => Value::Name(match given {
                Some(o) => o.extract::<String>().map_err(|_| {
                    PyValueError::new_err(format!("scenario field `{}` must be a string", f.name))
                })?,
                None => Scenario::defaults()
                    .get(f.name)
                    .map_or(String::new(), |v| match v {
                        Value::Name(s) => s,
                        _ => String::new(),
                    }),
            }),
            Kind::PerAgent | Kind::PerHour => Value::Numbers(vec_arg(obj, f.name)?),
            Kind::OptPerAgent => Value::OptNumbers(opt_vec_arg(given, f.name)?),
            Kind::OptPerHourAgent => Value::OptNumbers(availability_arg(given, t, n)?),
            Kind::Pairs => Value::Pairs(demand_bids_arg(given)?),
            Kind::Storage => Value::Storage(crate::storage::storage_from_py(given)?),
            Kind::Names => Value::Names(grid::names_arg(given)?),
            Kind::Nodes => Value::Indices(grid::nodes_arg(given, f.name)?),
            Kind::Lines => Value::Lines(grid::lines_arg(given)?),
            Kind::Shares => Value::OptNumbers(grid::shares_arg(given, t)?),
        })
    };
    in_field(f.name, convert())
}

/// A field's value as plain Python values (lists, floats, ints, str, None);
/// a (T, N) table as a list of T rows.
fn field_py<'py>(
    py: Python<'py>,
    f: &Field,
    v: Value,
    s: &Scenario,
) -> PyResult<Bound<'py, PyAny>> {
    let n = s.n();
    if f.kind == Kind::Shares {
        return grid::shares_py(py, s);
    }
    Ok(match v {
        Value::Number(x) => x.into_bound_py_any(py)?,
        Value::OptNumber(x) => x.into_bound_py_any(py)?,
        Value::Count(k) => k.into_bound_py_any(py)?,
        Value::Name(s) => s.into_bound_py_any(py)?,
        Value::Numbers(v) => v.into_bound_py_any(py)?,
        Value::OptNumbers(v) if f.kind == Kind::OptPerHourAgent => v
            .map(|a| a.chunks(n.max(1)).map(<[f64]>::to_vec).collect::<Vec<_>>())
            .into_bound_py_any(py)?,
        Value::OptNumbers(v) => v.into_bound_py_any(py)?,
        Value::Pairs(v) => v.into_bound_py_any(py)?,
        Value::Storage(v) => crate::storage::storage_to_dicts(py, &v)?,
        Value::Names(v) => v.into_bound_py_any(py)?,
        Value::Indices(v) => v.into_bound_py_any(py)?,
        Value::Lines(v) => v
            .iter()
            .map(|r| r.to_vec())
            .collect::<Vec<_>>()
            .into_bound_py_any(py)?,
    })
}

/// A validated scenario from `(field, value)` items: the fleet and demand
/// (required), then any other field, each converted by the field table.
fn build<'py>(items: &[(&str, Bound<'py, PyAny>)]) -> PyResult<Scenario> {
    let find = |name: &str| items.iter().find(|(k, _)| *k == name).map(|(_, v)| v);
    for (k, _) in items {
        if !FIELDS.iter().any(|f| f.name == *k) {
            return Err(PyValueError::new_err(format!(
                "unknown scenario field {k:?}; valid fields are: {}",
                FIELDS.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let mut s = Scenario::defaults();
    // The required fields first: the others' shapes are checked against them.
    let required = |f: &&Field| {
        matches!(
            f.file,
            InFile::Demand | InFile::Generators { missing: None, .. }
        )
    };
    let mut node_demand = None;
    for f in FIELDS.iter().filter(required) {
        let obj = find(f.name).ok_or_else(|| {
            PyValueError::new_err(format!("scenario dict is missing the field {:?}", f.name))
        })?;
        // A (T, Z) demand: hourly totals, and shares for `demand_shares`.
        if let (InFile::Demand, Some((totals, shares))) = (f.file, grid::split_node_demand(obj)?) {
            node_demand = Some(shares);
            s.set(f.name, Value::Numbers(totals)).py()?;
            continue;
        }
        s.set(f.name, field_value(f, obj, 0, 0)?).py()?;
    }
    let (n, t) = (s.n(), s.t());
    for f in FIELDS.iter().filter(|f| !required(f)) {
        if let Some(obj) = find(f.name) {
            s.set(f.name, field_value(f, obj, n, t)?).py()?;
        }
    }
    let mut width = grid::width_of(find("demand_shares"));
    if let Some(shares) = node_demand {
        if s.demand_shares.is_some() {
            return Err(PyValueError::new_err(
                "demand: a (T, Z) demand gives each node's demand; do not give demand_shares too",
            ));
        }
        width = grid::width_of(find("demand"));
        s.set("demand_shares", Value::OptNumbers(Some(shares)))
            .py()?;
    }
    grid::default_names(&mut s, width)?;
    s.validated().py()
}

/// `segments`: an int >= 1 (the core checks the upper limit).
fn segments_arg(obj: Option<&Bound<'_, PyAny>>) -> PyResult<usize> {
    match obj {
        None => Ok(1),
        Some(o) if o.is_none() => Ok(1),
        Some(o) => {
            let k = super::count_arg(o, "segments")?;
            if k == 0 {
                return Err(PyValueError::new_err(
                    "segments must be an int >= 1 (offer blocks per generator), got 0",
                ));
            }
            Ok(k)
        }
    }
}

/// `demand_bids`: None or a sequence of `(price, share)` pairs.
fn demand_bids_arg(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<(f64, f64)>> {
    let Some(o) = obj.filter(|o| !o.is_none()) else {
        return Ok(Vec::new());
    };
    let bad = |what: String| {
        PyValueError::new_err(format!(
            "demand_bids must be a list of (price, share) pairs, {what}"
        ))
    };
    let items: Vec<Bound<'_, PyAny>> = o
        .try_iter()
        .map_err(|_| {
            bad(format!(
                "got {}",
                o.repr().map(|r| r.to_string()).unwrap_or_default()
            ))
        })?
        .collect::<PyResult<_>>()?;
    let mut out = Vec::with_capacity(items.len());
    for (k, item) in items.iter().enumerate() {
        let pair: (f64, f64) = item.extract().map_err(|_| {
            bad(format!(
                "got {} as bid {k}",
                item.repr().map(|r| r.to_string()).unwrap_or_default()
            ))
        })?;
        out.push(pair);
    }
    Ok(out)
}

#[pymethods]
impl PyScenario {
    #[new]
    #[pyo3(signature = (capacities, costs, demand, *, max_bid_delta=50.0, bid_penalty=0.01,
                        lol_penalty=1.0, demand_noise=0.05, shortage_price=None,
                        segments=None, demand_bids=None, mechanism=None, price_cap=None,
                        price_floor=None, availability=None, availability_noise=0.0,
                        ramp_limits=None, ramp_costs=None, storage=None, price_action=None,
                        network=None, node_names=None, nodes=None, lines=None,
                        demand_shares=None, demand_bid_nodes=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        capacities: &Bound<'_, PyAny>,
        costs: &Bound<'_, PyAny>,
        demand: &Bound<'_, PyAny>,
        max_bid_delta: f64,
        bid_penalty: f64,
        lol_penalty: f64,
        demand_noise: f64,
        shortage_price: Option<f64>,
        segments: Option<&Bound<'_, PyAny>>,
        demand_bids: Option<&Bound<'_, PyAny>>,
        mechanism: Option<&str>,
        price_cap: Option<f64>,
        price_floor: Option<f64>,
        availability: Option<&Bound<'_, PyAny>>,
        availability_noise: f64,
        ramp_limits: Option<&Bound<'_, PyAny>>,
        ramp_costs: Option<&Bound<'_, PyAny>>,
        storage: Option<&Bound<'_, PyAny>>,
        price_action: Option<&Bound<'_, PyAny>>,
        network: Option<&Bound<'_, PyAny>>,
        node_names: Option<&Bound<'_, PyAny>>,
        nodes: Option<&Bound<'_, PyAny>>,
        lines: Option<&Bound<'_, PyAny>>,
        demand_shares: Option<&Bound<'_, PyAny>>,
        demand_bid_nodes: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let py = capacities.py();
        let mut items: Vec<(&str, Bound<'_, PyAny>)> = vec![
            ("capacities", capacities.clone()),
            ("costs", costs.clone()),
            ("demand", demand.clone()),
            ("max_bid_delta", max_bid_delta.into_bound_py_any(py)?),
            ("bid_penalty", bid_penalty.into_bound_py_any(py)?),
            ("lol_penalty", lol_penalty.into_bound_py_any(py)?),
            ("demand_noise", demand_noise.into_bound_py_any(py)?),
            ("shortage_price", shortage_price.into_bound_py_any(py)?),
            ("price_cap", price_cap.into_bound_py_any(py)?),
            ("price_floor", price_floor.into_bound_py_any(py)?),
            (
                "availability_noise",
                availability_noise.into_bound_py_any(py)?,
            ),
            ("mechanism", mechanism.into_bound_py_any(py)?),
        ];
        for (name, obj) in [
            ("segments", segments),
            ("demand_bids", demand_bids),
            ("availability", availability),
            ("ramp_limits", ramp_limits),
            ("ramp_costs", ramp_costs),
            ("storage", storage),
            ("price_action", price_action),
            ("network", network),
            ("node_names", node_names),
            ("nodes", nodes),
            ("lines", lines),
            ("demand_shares", demand_shares),
            ("demand_bid_nodes", demand_bid_nodes),
        ] {
            if let Some(o) = obj {
                items.push((name, o.clone()));
            }
        }
        Ok(PyScenario {
            inner: build(&items)?,
        })
    }

    /// The easy_marl default market: ``n`` generators of ``150/n`` MW with
    /// costs ``linspace(20, 40, n)``, demand ``(sin(linspace(0, 2pi, t)) + 1.5) * 50``.
    #[staticmethod]
    #[pyo3(signature = (n=None, t=None))]
    fn default(n: Option<&Bound<'_, PyAny>>, t: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let (n, t) = (size(n, "n", 5)?, size(t, "t", 24)?);
        Ok(PyScenario {
            inner: Scenario::default_preset(n, t).py()?,
        })
    }

    /// The default market plus one battery sized like SustainGym's: a
    /// ``Storage(power=20, energy=80)`` (efficiencies 0.95 / 0.95, half full
    /// at the start), agent ``sto_0`` after the ``n`` generators.
    #[staticmethod]
    #[pyo3(signature = (n=None, t=None))]
    fn with_battery(n: Option<&Bound<'_, PyAny>>, t: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let (n, t) = (size(n, "n", 5)?, size(t, "t", 24)?);
        Ok(PyScenario {
            inner: Scenario::with_battery(n, t).py()?,
        })
    }

    /// easy_marl's competitive market: ``competition_rate`` generators per
    /// cost level, costs ``linspace(20, 40, ceil(n / rate))`` repeated and
    /// sorted, ``150/n`` MW each, demand ``sin(linspace(0, 2pi, t)) + 1.5``
    /// scaled to a peak of ``sum(capacities[:-1]) - 1`` MW. ``competition_rate``
    /// is an int >= 1; anything else is a ValueError.
    #[staticmethod]
    #[pyo3(signature = (n=None, t=None, competition_rate=None))]
    fn competitive(
        n: Option<&Bound<'_, PyAny>>,
        t: Option<&Bound<'_, PyAny>>,
        competition_rate: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let (n, t) = (size(n, "n", 8)?, size(t, "t", 24)?);
        let rate = match competition_rate {
            Some(r) if !r.is_none() => rate_arg(r)?,
            _ => 2,
        };
        Ok(PyScenario {
            inner: Scenario::competitive(n, t, rate).py()?,
        })
    }

    /// A 168-hour week (weekends at 80 % of weekday demand) in which one
    /// generator in five is a zero-cost renewable.
    #[staticmethod]
    #[pyo3(signature = (n=None))]
    fn weekly(n: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let n = size(n, "n", 5)?;
        Ok(PyScenario {
            inner: Scenario::weekly(n).py()?,
        })
    }

    /// Two zones over one 40 MW line (``network="transport"``): ``"north"``
    /// exports (60 MW of wind at 0 €/MWh with a wind load factor, 50 MW of
    /// coal at 25), ``"south"`` imports (40 MW of gas at 45, 30 MW of oil
    /// at 70); demand the default preset's, 30 % north and 70 % south. The
    /// line binds around the peak, where the gas plant is pivotal in the south.
    #[staticmethod]
    #[pyo3(signature = (t=None))]
    fn two_zones(t: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let t = size(t, "t", 24)?;
        Ok(PyScenario {
            inner: Scenario::two_zones(t).py()?,
        })
    }

    /// Three nodes in a loop under DC power flow (``network="dc"``):
    /// ``"west"`` (120 MW at 20 €/MWh), ``"east"`` (120 MW at 50 €/MWh) and
    /// ``"city"`` (all the demand), lines of equal reactance, the west-city
    /// line limited to 60 MW. Above 90 MW of demand the loop flows make the
    /// city's price exceed both offers.
    #[staticmethod]
    #[pyo3(signature = (t=None))]
    fn three_nodes(t: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let t = size(t, "t", 24)?;
        Ok(PyScenario {
            inner: Scenario::three_nodes(t).py()?,
        })
    }

    /// A DC scenario from a pandapower net (the ``grid`` extra):
    /// ``powermarket.grid.from_pandapower``.
    #[staticmethod]
    #[pyo3(signature = (net, **kwargs))]
    fn from_pandapower<'py>(
        net: &Bound<'py, PyAny>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        net.py()
            .import("powermarket.grid")?
            .getattr("from_pandapower")?
            .call((net,), kwargs)
    }

    /// A DC scenario from a PyPSA network (the ``grid`` extra):
    /// ``powermarket.grid.from_pypsa``.
    #[staticmethod]
    #[pyo3(signature = (network, **kwargs))]
    fn from_pypsa<'py>(
        network: &Bound<'py, PyAny>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        network
            .py()
            .import("powermarket.grid")?
            .getattr("from_pypsa")?
            .call((network,), kwargs)
    }

    /// easy_marl's advanced market (``get_params()`` of its
    /// ``make_advanced_params.py``): one week (168 h) of five plants of 40,
    /// 40, 20, 20, 20 MW at 0, 0, 10, 20, 30 €/MWh, offshore wind (plant 0)
    /// and solar (plant 1) with synthetic load factors, ramp limits 1, 1,
    /// 0.25, 0.5, 1 (share of capacity per hour), ramp costs 0, 0, 1, 1, 1
    /// €/MW and a weekday/weekend demand from periodic cubic splines, peak
    /// 0.75 x total capacity (105 MW).
    #[staticmethod]
    fn advanced() -> PyResult<Self> {
        Ok(PyScenario {
            inner: Scenario::advanced().py()?,
        })
    }

    /// Read a scenario file (TOML, the demand inline or in a CSV beside it);
    /// the same as ``powermarket.load_scenario(path, allow_outside=...)``. A
    /// malformed file is a ValueError naming the file, the field and the line;
    /// a CSV outside the file's folder needs ``allow_outside=True``.
    #[staticmethod]
    #[pyo3(signature = (path, *, allow_outside=false))]
    fn load(py: Python<'_>, path: &Bound<'_, PyAny>, allow_outside: bool) -> PyResult<Self> {
        let load = py.import("powermarket.scenario_files")?.getattr("load")?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("allow_outside", allow_outside)?;
        Ok(load
            .call((path,), Some(&kwargs))?
            .cast::<PyScenario>()?
            .get()
            .clone())
    }

    /// Write this scenario to a TOML file (``csv=True``: the demand in a CSV
    /// beside it); the same as ``powermarket.save_scenario(self, path)``.
    #[pyo3(signature = (path, *, csv=false, description=None))]
    fn save(
        slf: &Bound<'_, Self>,
        path: &Bound<'_, PyAny>,
        csv: bool,
        description: Option<&str>,
    ) -> PyResult<()> {
        let py = slf.py();
        let save = py.import("powermarket.scenario_files")?.getattr("save")?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("csv", csv)?;
        kwargs.set_item("description", description)?;
        save.call((slf, path), Some(&kwargs))?;
        Ok(())
    }

    /// Build from a dict as produced by ``to_dict()``; unknown keys are an error.
    #[staticmethod]
    fn from_dict(d: &Bound<'_, PyDict>) -> PyResult<Self> {
        let keys: Vec<String> = d.keys().extract()?;
        let items = keys
            .iter()
            .map(|k| Ok((k.as_str(), d.as_any().get_item(k)?)))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(PyScenario {
            inner: build(&items)?,
        })
    }

    /// All fields as plain Python values (lists and floats), in the order
    /// of the field table.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = &self.inner;
        let d = PyDict::new(py);
        for f in FIELDS {
            let v = s.get(f.name).expect("the table names fields of Scenario");
            d.set_item(f.name, field_py(py, f, v, s)?)?;
        }
        Ok(d)
    }

    /// A copy with some fields changed, e.g. ``s.replace(demand_noise=0.0)``.
    #[pyo3(signature = (**changes))]
    fn replace(&self, py: Python<'_>, changes: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let d = self.to_dict(py)?;
        if let Some(c) = changes {
            // A new (T, Z) demand brings its own shares.
            if let Some(demand) = c.get_item("demand")? {
                if !c.contains("demand_shares")? && grid::width_of(Some(&demand)) > 0 {
                    let ndim = py
                        .import("numpy")?
                        .call_method1("ndim", (&demand,))?
                        .extract::<usize>()?;
                    if ndim == 2 {
                        d.set_item("demand_shares", py.None())?;
                    }
                }
            }
            d.update(c.as_mapping())?;
        }
        Self::from_dict(&d)
    }

    /// Which market clears: ``"copper"``, ``"transport"`` or ``"dc"``.
    #[getter]
    fn network(&self) -> &'static str {
        self.inner.network.name()
    }

    /// The name of each node (empty with one node).
    #[getter]
    fn node_names(&self) -> Vec<String> {
        self.inner.node_names.clone()
    }

    /// Number of nodes Z.
    #[getter]
    fn num_nodes(&self) -> usize {
        self.inner.z()
    }

    /// Number of lines L.
    #[getter]
    fn num_lines(&self) -> usize {
        self.inner.lines.len()
    }

    /// The node of each agent (generators, then storage units), (A,) ints.
    #[getter]
    fn nodes<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        let s = &self.inner;
        let v: Vec<i64> = (0..s.agents()).map(|a| s.node_of(a) as i64).collect();
        v.to_pyarray(py)
    }

    /// The node of each demand bid, (B,) ints.
    #[getter]
    fn demand_bid_nodes<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        let s = &self.inner;
        let v: Vec<i64> = (0..s.demand_bids.len())
            .map(|k| s.bid_node(k) as i64)
            .collect();
        v.to_pyarray(py)
    }

    /// The lines, (L, 4): ``[from, to, capacity MW, reactance]``.
    #[getter]
    fn lines<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let flat: Vec<f64> = self.inner.lines.iter().flatten().copied().collect();
        Ok(flat
            .to_pyarray(py)
            .reshape([self.inner.lines.len(), 4])?
            .into_any())
    }

    /// The share of demand at each node: None (one node), (Z,) or (T, Z).
    #[getter]
    fn demand_shares<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let s = &self.inner;
        let Some(sh) = &s.demand_shares else {
            return Ok(None);
        };
        let a = sh.to_pyarray(py);
        Ok(Some(if sh.len() == s.z() {
            a.into_any()
        } else {
            a.reshape([s.t(), s.z()])?.into_any()
        }))
    }

    /// Noise-free demand of each node in each hour, (T, Z) MW:
    /// ``demand[t] * share[t, z]``.
    #[getter]
    fn node_demand<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let s = &self.inner;
        let (t, z) = (s.t(), s.z());
        let v: Vec<f64> = (0..t)
            .flat_map(|h| (0..z).map(move |k| (h, k)))
            .map(|(h, k)| s.demand[h] * s.demand_share(h, k))
            .collect();
        Ok(v.to_pyarray(py).reshape([t, z])?.into_any())
    }

    /// Number of generators.
    #[getter]
    fn n(&self) -> usize {
        self.inner.n()
    }

    /// Number of storage units.
    #[getter]
    fn s(&self) -> usize {
        self.inner.s()
    }

    /// Number of agents, generators then storage units.
    #[getter]
    fn num_agents(&self) -> usize {
        self.inner.agents()
    }

    /// The reference price of each storage unit, €/MWh (its own, or the mean
    /// generator cost).
    #[getter]
    fn storage_reference_prices(&self) -> Vec<f64> {
        let mean = self.inner.mean_cost();
        self.inner
            .storage
            .iter()
            .map(|u| u.reference(mean))
            .collect()
    }

    /// Hours per episode.
    #[getter]
    fn t(&self) -> usize {
        self.inner.t()
    }

    /// Capacities, MW (a copy).
    #[getter]
    fn capacities<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.inner.capacities.to_pyarray(py)
    }

    /// Marginal costs, €/MWh (a copy).
    #[getter]
    fn costs<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.inner.costs.to_pyarray(py)
    }

    /// Noise-free hourly demand, MW (a copy).
    #[getter]
    fn demand<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.inner.demand.to_pyarray(py)
    }

    /// Largest bid markup or markdown over cost, €/MWh.
    #[getter]
    fn max_bid_delta(&self) -> f64 {
        self.inner.max_bid_delta
    }

    /// Weight of the squared bid deviation in the reward.
    #[getter]
    fn bid_penalty(&self) -> f64 {
        self.inner.bid_penalty
    }

    /// Penalty per MW of unserved demand.
    #[getter]
    fn lol_penalty(&self) -> f64 {
        self.inner.lol_penalty
    }

    /// Demand noise standard deviation, as a fraction of peak demand.
    #[getter]
    fn demand_noise(&self) -> f64 {
        self.inner.demand_noise
    }

    /// Price in a shortage (None: the highest offer price).
    #[getter]
    fn shortage_price(&self) -> Option<f64> {
        self.inner.shortage_price
    }

    /// Offer blocks per generator (K): each offers K blocks of K_i / K MW.
    #[getter]
    fn segments(&self) -> usize {
        self.inner.segments
    }

    /// Price-responsive demand: a list of ``(price, share)`` pairs; a
    /// ``share`` of each hour's demand is bid at ``price`` €/MWh.
    #[getter]
    fn demand_bids(&self) -> Vec<(f64, f64)> {
        self.inner.demand_bids.clone()
    }

    /// Storage units: a list of ``powermarket.Storage`` (agents ``sto_0``,
    /// ``sto_1``, ... after the generators).
    #[getter]
    fn storage<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        crate::storage::storage_to_py(py, &self.inner.storage)
    }

    /// Settlement: ``"uniform"`` or ``"pay_as_bid"``.
    #[getter]
    fn mechanism(&self) -> &'static str {
        self.inner.mechanism.name()
    }

    /// How the price action ``a1`` becomes a bid: ``"tanh"`` (``a1`` in
    /// [-10, 10], bid ``c + tanh(a1) * max_bid_delta``) or ``"linear"``
    /// (``a1`` in [-1, 1], bid ``c + a1 * max_bid_delta``).
    #[getter]
    fn price_action(&self) -> &'static str {
        self.inner.price_action.name()
    }

    /// Price cap, €/MWh (None: no cap): prices are clipped to it, and it
    /// is the price of a shortage.
    #[getter]
    fn price_cap(&self) -> Option<f64> {
        self.inner.price_cap
    }

    /// Price floor, €/MWh (None: no floor).
    #[getter]
    fn price_floor(&self) -> Option<f64> {
        self.inner.price_floor
    }

    /// A copy with EUPHEMIA's harmonised day-ahead limits: ``price_floor``
    /// -500 and ``price_cap`` 4000 €/MWh.
    fn euphemia_limits(&self) -> PyResult<Self> {
        let mut inner = self.inner.clone();
        inner.price_floor = Some(EUPHEMIA_FLOOR);
        inner.price_cap = Some(EUPHEMIA_CAP);
        Ok(PyScenario {
            inner: inner.validated().py()?,
        })
    }

    /// Load factors (T, N) in [0, 1], or None (all ones). A copy.
    #[getter]
    fn availability<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let s = &self.inner;
        s.availability
            .as_ref()
            .map(|a| Ok(a.to_pyarray(py).reshape([s.t(), s.n()])?.into_any()))
            .transpose()
    }

    /// Scale of the per-episode AR(1) perturbation of the variable
    /// generators' load factors (0: none).
    #[getter]
    fn availability_noise(&self) -> f64 {
        self.inner.availability_noise
    }

    /// Ramp limits, share of capacity per hour (N,), or None. A copy.
    #[getter]
    fn ramp_limits<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray1<f64>>> {
        self.inner.ramp_limits.as_ref().map(|r| r.to_pyarray(py))
    }

    /// Ramp costs, € per MW of change (N,), or None. A copy.
    #[getter]
    fn ramp_costs<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray1<f64>>> {
        self.inner.ramp_costs.as_ref().map(|r| r.to_pyarray(py))
    }

    /// Peak noise-free demand (the demand normaliser).
    #[getter]
    fn demand_scale(&self) -> f64 {
        self.inner.demand_scale()
    }

    /// Highest marginal cost (the cost normaliser).
    #[getter]
    fn cost_scale(&self) -> f64 {
        self.inner.cost_scale()
    }

    /// Largest capacity (the capacity normaliser).
    #[getter]
    fn capacity_scale(&self) -> f64 {
        self.inner.capacity_scale()
    }

    fn __repr__(&self) -> String {
        format!(
            "Scenario(n={}, {}t={}, capacity={} MW, peak_demand={} MW, demand_noise={})",
            self.inner.n(),
            if self.inner.s() > 0 {
                format!("storage={}, ", self.inner.s())
            } else {
                String::new()
            },
            self.inner.t(),
            self.inner.capacities.iter().sum::<f64>(),
            self.inner.demand_scale(),
            self.inner.demand_noise
        )
    }

    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let cls = py.get_type::<PyScenario>();
        Ok((
            cls.getattr("from_dict")?,
            PyTuple::new(py, [self.to_dict(py)?])?,
        ))
    }
}

/// `None` → the default preset; a Scenario → its value.
pub(crate) fn scenario_arg(s: Option<&Bound<'_, PyAny>>) -> PyResult<Scenario> {
    match s {
        None => Ok(Scenario::default_preset(5, 24).py()?),
        Some(s) if s.is_none() => Ok(Scenario::default_preset(5, 24).py()?),
        Some(s) => {
            if let Ok(sc) = s.cast::<PyScenario>() {
                Ok(sc.get().inner.clone())
            } else if let Ok(d) = s.cast::<PyDict>() {
                Ok(PyScenario::from_dict(d)?.inner)
            } else {
                Err(PyValueError::new_err(format!(
                    "scenario must be a powermarket.Scenario, a dict or None, got {}",
                    s.get_type().name()?
                )))
            }
        }
    }
}

/// The field table as Python values: `(name, kind, section, key, missing)`
/// per field, `section` one of "market", "generators", "demand", `key` the
/// name in that section of a scenario file, `missing` a generator's value
/// when its key is absent (None: required).
fn field_table(py: Python<'_>) -> PyResult<Bound<'_, PyTuple>> {
    let rows = FIELDS
        .iter()
        .map(|f| {
            let kind = format!("{:?}", f.kind);
            let (section, key, missing) = match f.file {
                InFile::Market => ("market", f.name, None),
                InFile::Generators { key, missing } => ("generators", key, missing),
                InFile::Demand => ("demand", "values", None),
                InFile::Storage => ("storage", f.name, None),
                InFile::Nodes { key } => ("nodes", key, None),
                InFile::AgentNodes => ("agents", "node", Some(0.0)),
                InFile::Lines => ("lines", f.name, None),
            };
            (f.name, kind, section, key, missing).into_pyobject(py)
        })
        .collect::<PyResult<Vec<_>>>()?;
    PyTuple::new(py, rows)
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyScenario>()?;
    m.add("SCENARIO_FIELDS", field_table(m.py())?)?;
    Ok(())
}
