//! The presets: easy_marl's default and competitive markets, and
//! powermarket's own week (`Scenario.advanced()` is in [`super::advanced`]).

use super::{linspace, max_of, Scenario};
use crate::error::{MarketError, Result};
use crate::network::NetworkKind;
use std::f64::consts::PI;

impl Scenario {
    /// The easy_marl default: demand `(sin(linspace(0, 2pi, t)) + 1.5) * 50`,
    /// `n` equal generators of `150 / n` MW, costs `linspace(20, 40, n)` €/MWh.
    pub fn default_preset(n: usize, t: usize) -> Result<Self> {
        check_sizes(n, t)?;
        let demand = linspace(0.0, 2.0 * PI, t)
            .into_iter()
            .map(|x| (x.sin() + 1.5) * 50.0)
            .collect();
        let s = Self::with_fleet(vec![150.0 / n as f64; n], linspace(20.0, 40.0, n), demand);
        s.validated()
    }

    /// The default market ([`Scenario::default_preset`]) plus one battery
    /// sized like SustainGym's: 20 MW, 80 MWh, efficiencies 0.95 / 0.95,
    /// half full at the start, reference price and terminal value the mean
    /// generator cost.
    pub fn with_battery(n: usize, t: usize) -> Result<Self> {
        let mut s = Self::default_preset(n, t)?;
        s.storage = vec![crate::units::storage::Storage::new(20.0, 80.0)];
        s.validated()
    }

    /// easy_marl's `make_competitive_params(n, t, competition_rate)`:
    /// `competition_rate` generators share each cost level. Costs are
    /// `linspace(20, 40, ceil(n / rate))` repeated `rate` times, trimmed to
    /// `n` and sorted (€/MWh); capacities `150 / n` MW each; demand
    /// `sin(linspace(0, 2pi, t)) + 1.5` scaled so that its peak is
    /// `sum(capacities[:-1]) - 1` MW (the fleet without one plant, less 1 MW).
    /// Needs `n >= 2` (with one plant the peak would be -1 MW) and `rate >= 1`.
    pub fn competitive(n: usize, t: usize, competition_rate: usize) -> Result<Self> {
        if competition_rate == 0 {
            return Err(MarketError::Scenario {
                agent: None,
                hour: None,
                field: "competition_rate",
                message: "must be an int >= 1 (generators per cost level), got 0".into(),
            });
        }
        check_sizes(n, t)?;
        if n < 2 {
            return Err(MarketError::Scenario {
                agent: None,
                hour: None,
                field: "n",
                message: format!(
                    "the competitive preset needs n >= 2 (its peak demand is the fleet \
                     without one plant, less 1 MW), got {n}"
                ),
            });
        }
        let capacities = vec![150.0 / n as f64; n];
        let levels = linspace(20.0, 40.0, n.div_ceil(competition_rate));
        let mut costs: Vec<f64> = (0..n).map(|i| levels[i % levels.len()]).collect();
        costs.sort_by(f64::total_cmp);
        let shape: Vec<f64> = linspace(0.0, 2.0 * PI, t)
            .into_iter()
            .map(|x| x.sin() + 1.5)
            .collect();
        let top = max_of(&shape);
        let peak = capacities[..n - 1].iter().sum::<f64>() - 1.0;
        let demand = shape.into_iter().map(|d| d / top * peak).collect();
        Self::with_fleet(capacities, costs, demand).validated()
    }

    /// One week of hours (T = 168, hour 0 = Monday 00:00). Weekdays follow a
    /// daily curve peaking at 18:00 (`(1.5 - cos(2pi (h - 6) / 24)... )`),
    /// weekends run at 80 %. One generator in five (at least one when n >= 2)
    /// is renewable, with zero marginal cost; the rest have costs
    /// `linspace(20, 40)`. Total capacity is 1.2 times the peak demand.
    pub fn weekly(n: usize) -> Result<Self> {
        check_sizes(n, 168)?;
        let demand: Vec<f64> = (0..168)
            .map(|t| {
                let hour = (t % 24) as f64;
                let day = t / 24;
                let level = if day >= 5 { 0.8 } else { 1.0 };
                level * (((2.0 * PI * (hour - 12.0) / 24.0).sin() + 1.5) * 50.0)
            })
            .collect();
        let renewables = if n >= 2 { n.div_ceil(5) } else { 0 };
        let mut costs = vec![0.0; renewables];
        costs.extend(linspace(20.0, 40.0, n - renewables));
        let peak = max_of(&demand);
        let s = Self::with_fleet(vec![1.2 * peak / n as f64; n], costs, demand);
        s.validated()
    }
}

/// Largest N or T a preset builds (a typo like n=10**12 is an error, not an
/// allocation failure).
pub const MAX_PRESET_SIZE: usize = 10_000_000;

impl Scenario {
    /// Two zones over one line ([`NetworkKind::Transport`]): `"north"`, a
    /// cheap exporting zone (60 MW of wind at 0 €/MWh with the load factor
    /// [`super::wind_load_factor`], and 50 MW of coal at 25 €/MWh), and
    /// `"south"`, an expensive importing one (40 MW of gas at 45 and 30 MW
    /// of oil at 70 €/MWh), joined by a 40 MW line. Demand is the default
    /// preset's, `(sin(linspace(0, 2pi, t)) + 1.5) * 50` (peak 125 MW), 30 %
    /// in the north and 70 % in the south: the line binds once the south
    /// needs more than 40 MW (total demand above about 57 MW), and at the
    /// peak (87.5 MW in the south) the gas plant is pivotal there.
    pub fn two_zones(t: usize) -> Result<Self> {
        check_sizes(1, t)?;
        let mut s = Self::default_preset(4, t)?;
        s.capacities = vec![60.0, 50.0, 40.0, 30.0];
        s.costs = vec![0.0, 25.0, 45.0, 70.0];
        s.availability = Some(
            (0..t)
                .flat_map(|h| [super::wind_load_factor(h), 1.0, 1.0, 1.0])
                .collect(),
        );
        s.network = NetworkKind::Transport;
        s.node_names = vec!["north".into(), "south".into()];
        s.nodes = vec![0, 0, 1, 1];
        s.demand_shares = Some(vec![0.3, 0.7]);
        s.lines = vec![[0.0, 1.0, 40.0, 1.0]];
        s.validated()
    }

    /// Three nodes in a loop under DC power flow ([`NetworkKind::Dc`]), the
    /// textbook case of loop flows: `"west"` with 120 MW at 20 €/MWh,
    /// `"east"` with 120 MW at 50 €/MWh, and all demand at `"city"`; three
    /// lines of equal reactance, the west-city line limited to 60 MW (the
    /// others unlimited). Demand is the default preset's (peak 125 MW). Power
    /// from the west reaches the city 2/3 on the direct line, so that line
    /// binds above 90 MW of demand, and the city's price then rises above
    /// both offers (80 €/MWh at cost offers): serving one more MW there takes
    /// 2 MW more from the east and 1 MW less from the west.
    pub fn three_nodes(t: usize) -> Result<Self> {
        check_sizes(1, t)?;
        let mut s = Self::default_preset(2, t)?;
        s.capacities = vec![120.0, 120.0];
        s.costs = vec![20.0, 50.0];
        s.network = NetworkKind::Dc;
        s.node_names = vec!["west".into(), "east".into(), "city".into()];
        s.nodes = vec![0, 1];
        s.demand_shares = Some(vec![0.0, 0.0, 1.0]);
        s.lines = vec![
            [0.0, 2.0, 60.0, 1.0],
            [1.0, 2.0, f64::INFINITY, 1.0],
            [0.0, 1.0, f64::INFINITY, 1.0],
        ];
        s.validated()
    }
}

fn check_sizes(n: usize, t: usize) -> Result<()> {
    for (field, v) in [("n", n), ("t", t)] {
        if v > MAX_PRESET_SIZE {
            return Err(MarketError::Scenario {
                agent: None,
                hour: None,
                field,
                message: format!("must be <= {MAX_PRESET_SIZE}, got {v}"),
            });
        }
    }
    if n == 0 {
        return Err(MarketError::Scenario {
            agent: None,
            hour: None,
            field: "n",
            message: "must be >= 1, got 0".into(),
        });
    }
    if t == 0 {
        return Err(MarketError::Scenario {
            agent: None,
            hour: None,
            field: "t",
            message: "must be >= 1, got 0".into(),
        });
    }
    Ok(())
}
