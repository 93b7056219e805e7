//! A market scenario: the generator fleet, the hourly demand profile and the
//! market rules, with the presets of the easy_marl electricity example.

mod advanced;
#[macro_use]
mod fields;
mod network;
mod presets;
pub mod spline;
mod validate;

pub use presets::MAX_PRESET_SIZE;

pub use advanced::{
    advanced_demand_shape, solar_load_factor, wind_load_factor, ADVANCED_HOURS, WEEKDAY_POINTS,
    WEEKEND_POINTS,
};

use crate::clearing::{Mechanism, Rules};
use crate::env::PriceAction;
use crate::network::NetworkKind;
use crate::units::storage::Storage;

pub use fields::{Field, InFile, Kind, Value};

// The fields of a scenario, declared once: the struct, its defaults, the
// field table that the bindings (`to_dict`, `replace`, pickling) and the
// scenario files loop over, and typed get/set by name are generated from
// this list. A field is `name: type = default, kind, place in a file`.
scenario_fields! {
    /// Capacity of each generator, MW (N values, > 0).
    capacities: Vec<f64> = Vec::new(), PerAgent, InFile::Generators { key: "capacity", missing: None };
    /// Marginal cost of each generator, €/MWh (N values).
    costs: Vec<f64> = Vec::new(), PerAgent, InFile::Generators { key: "cost", missing: None };
    /// Noise-free demand of each hour, MW (T values, > 0).
    demand: Vec<f64> = Vec::new(), PerHour, InFile::Demand;
    /// Largest bid markup or markdown over cost, €/MWh.
    max_bid_delta: f64 = 50.0, Number, InFile::Market;
    /// Weight of the squared bid deviation `(b - c)^2` in the reward.
    bid_penalty: f64 = 0.01, Number, InFile::Market;
    /// Penalty per MW of unserved demand, charged to every generator.
    lol_penalty: f64 = 1.0, Number, InFile::Market;
    /// Standard deviation of the hourly demand noise, as a fraction of the peak demand.
    demand_noise: f64 = 0.05, Number, InFile::Market;
    /// Price in a shortage (price cap / value of lost load); `None`: highest offer price.
    shortage_price: Option<f64> = None, OptNumber, InFile::Market;
    /// Size of the per-episode AR(1) perturbation of the load factors of the
    /// variable generators (see [`crate::units::generator`]); 0: none, and no
    /// random number is drawn for it.
    availability_noise: f64 = 0.0, Number, InFile::Market;
    /// Offer blocks per generator, K >= 1: each offers K blocks of K_i / K MW.
    segments: usize = 1, Count, InFile::Market;
    /// How cleared offers are paid.
    mechanism: Mechanism = Mechanism::Uniform, Name, InFile::Market;
    /// Highest admissible offer/bid price and the price of a shortage, €/MWh.
    price_cap: Option<f64> = None, OptNumber, InFile::Market;
    /// Lowest admissible offer/bid price, €/MWh.
    price_floor: Option<f64> = None, OptNumber, InFile::Market;
    /// Price-responsive demand: `(price €/MWh, share of the hour's demand)`
    /// per bid; the rest of the demand is inelastic.
    demand_bids: Vec<(f64, f64)> = Vec::new(), Pairs, InFile::Market;
    /// Load factor of each generator in each hour, in [0, 1], (T, N) row-major:
    /// generator `i` can offer at most `K_i * LF[t, i]` MW in hour `t`.
    /// `None`: every load factor is 1 (and no per-step work is done for it).
    availability: Option<Vec<f64>> = None, OptPerHourAgent, InFile::Generators { key: "availability", missing: Some(1.0) };
    /// Largest change of cleared quantity from one hour to the next, as a
    /// share of capacity per hour (N values, >= 0); `None`: no limits.
    ramp_limits: Option<Vec<f64>> = None, OptPerAgent, InFile::Generators { key: "ramp_limit", missing: Some(1.0) };
    /// Cost of a change of cleared quantity, € per MW of change (N values,
    /// >= 0); `None`: no ramp costs.
    ramp_costs: Option<Vec<f64>> = None, OptPerAgent, InFile::Generators { key: "ramp_cost", missing: Some(0.0) };
    /// Storage units (batteries), agents `sto_0 .. sto_{S-1}` after the
    /// generators (see [`crate::units::storage`]).
    storage: Vec<Storage> = Vec::new(), Storage, InFile::Storage;
    /// How the price action becomes a bid: `"tanh"` (a1 in [-10, 10]) or `"linear"` (a1 in [-1, 1]).
    price_action: PriceAction = PriceAction::Tanh, Name, InFile::Market;
    /// Which market clears: `"copper"` (one price), `"transport"` (zonal
    /// coupling over the lines) or `"dc"` (nodal prices under DC power flow).
    network: NetworkKind = NetworkKind::Copper, Name, InFile::Market;
    /// The name of each node; Z = max(1, its length). Empty: one node.
    node_names: Vec<String> = Vec::new(), Names, InFile::Nodes { key: "name" };
    /// The node of each agent (N generators, then S storage units), in
    /// `[0, Z)`; empty: every agent at node 0.
    nodes: Vec<usize> = Vec::new(), Nodes, InFile::AgentNodes;
    /// Lines `[from, to, capacity MW, reactance]` between the nodes.
    lines: Vec<[f64; 4]> = Vec::new(), Lines, InFile::Lines;
    /// Share of each hour's demand at each node: Z values (every hour) or
    /// (T, Z) row-major; each hour's shares are >= 0 and add up to 1.
    /// `None`: one node. Required when Z > 1.
    demand_shares: Option<Vec<f64>> = None, Shares, InFile::Nodes { key: "demand_share" };
    /// The node of each demand bid; empty: every bid at node 0.
    demand_bid_nodes: Vec<usize> = Vec::new(), Nodes, InFile::Market;
}

/// How far the demand-bid shares may sum above 1 (float rounding); the
/// inelastic share is then 0.
pub const SHARE_SUM_SLACK: f64 = 1e-9;

/// Largest number of offer blocks per generator.
pub const MAX_SEGMENTS: usize = 1024;

/// numpy.linspace(start, stop, num), bit for bit.
pub fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    if num == 1 {
        return vec![start];
    }
    let step = (stop - start) / (num - 1) as f64;
    let mut v: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    if let Some(last) = v.last_mut() {
        *last = stop;
    }
    v
}

fn positive_or_one(x: f64) -> f64 {
    if x > 0.0 {
        x
    } else {
        1.0
    }
}

fn max_of(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

fn min_of(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

impl Scenario {
    /// A scenario of this fleet and demand, every other field at its
    /// default (the easy_marl example's).
    pub fn with_fleet(capacities: Vec<f64>, costs: Vec<f64>, demand: Vec<f64>) -> Self {
        Scenario {
            capacities,
            costs,
            demand,
            ..Scenario::defaults()
        }
    }

    /// Share of each hour's demand that is inelastic: `1 - sum(shares)`
    /// (at node 0 of a networked scenario: [`Scenario::inelastic_share_at`]).
    pub fn inelastic_share(&self) -> f64 {
        self.inelastic_share_at(0)
    }

    /// Share of node `z`'s demand that is inelastic: `1 - sum(shares)` of
    /// the demand bids at the node, at least 0.
    pub fn inelastic_share_at(&self, z: usize) -> f64 {
        let bids: f64 = self
            .demand_bids
            .iter()
            .enumerate()
            .filter(|&(k, _)| self.bid_node(k) == z)
            .map(|(_, b)| b.1)
            .sum();
        (1.0 - bids).max(0.0)
    }

    /// Largest ramp cost one generator can pay in an hour, €:
    /// `max_i ramp_cost_i * K_i` (a change is at most the capacity).
    pub fn worst_ramp_cost(&self) -> f64 {
        match &self.ramp_costs {
            Some(rc) => rc
                .iter()
                .zip(&self.capacities)
                .map(|(r, k)| r * k)
                .fold(0.0, f64::max),
            None => 0.0,
        }
    }

    /// Load factor of generator `i` in hour `t` (1 without availability).
    pub fn load_factor(&self, t: usize, i: usize) -> f64 {
        self.availability
            .as_ref()
            .map_or(1.0, |a| a[t * self.n() + i])
    }

    /// Number of generators N.
    pub fn n(&self) -> usize {
        self.capacities.len()
    }

    /// Number of storage units S.
    pub fn s(&self) -> usize {
        self.storage.len()
    }

    /// Number of agents A = N + S: the generators, then the storage units.
    pub fn agents(&self) -> usize {
        self.n() + self.s()
    }

    /// Mean generator cost, €/MWh: the default reference price of storage.
    pub fn mean_cost(&self) -> f64 {
        self.costs.iter().sum::<f64>() / self.n().max(1) as f64
    }

    /// Number of hours T in an episode.
    pub fn t(&self) -> usize {
        self.demand.len()
    }

    /// Peak of the noise-free demand (1 if not positive).
    pub fn demand_scale(&self) -> f64 {
        positive_or_one(max_of(&self.demand))
    }

    /// Highest marginal cost (1 if not positive).
    pub fn cost_scale(&self) -> f64 {
        positive_or_one(max_of(&self.costs))
    }

    /// What a reward is in € times: `20 / (demand scale x cost scale x T)`
    /// (easy_marl's normalisation), so that an episode's return is of order 1.
    pub fn reward_scale(&self) -> f64 {
        20.0 / (self.demand_scale() * self.cost_scale() * self.t().max(1) as f64)
    }

    /// Largest capacity (1 if not positive).
    pub fn capacity_scale(&self) -> f64 {
        positive_or_one(max_of(&self.capacities))
    }

    /// Bounds `[lo, hi]` of the per-hour demand noise, MW.
    pub fn noise_bounds(&self) -> (f64, f64) {
        let total_k: f64 = self.capacities.iter().sum();
        let lo = -0.5 * min_of(&self.demand);
        let hi = (0.5 * (total_k - max_of(&self.demand))).max(0.0);
        (lo, hi)
    }

    /// Clearing rules implied by the scenario, with the given tie rule.
    pub fn rules(&self, tie_rule: crate::TieRule) -> Rules {
        Rules {
            tie_rule,
            shortage_price: self.shortage_price,
            price_cap: self.price_cap,
            price_floor: self.price_floor,
            mechanism: self.mechanism,
        }
    }

    /// Range of possible clearing and paid prices, €/MWh: every price is an
    /// offer `c_i + tanh(a) * delta` or a demand bid price, clipped to the
    /// cap and floor (or a storage unit's `reference_price +- delta`,
    /// clipped), or the shortage price (the cap when set). Under `"dc"`
    /// without a cap or shortage price, the range is widened by the default
    /// shedding price's margin on both sides (node prices of loop flows).
    pub fn price_bounds(&self) -> (f64, f64) {
        let mut lo = min_of(&self.costs) - self.max_bid_delta;
        let mut hi = max_of(&self.costs) + self.max_bid_delta;
        for &(p, _) in &self.demand_bids {
            lo = lo.min(p);
            hi = hi.max(p);
        }
        let mean_cost = self.mean_cost();
        for u in &self.storage {
            let r = u.reference(mean_cost);
            lo = lo.min(r - self.max_bid_delta);
            hi = hi.max(r + self.max_bid_delta);
        }
        let rules = self.rules(crate::TieRule::default());
        (lo, hi) = (rules.clip(lo), rules.clip(hi));
        match self.price_cap.or(self.shortage_price) {
            Some(p) => {
                lo = lo.min(p);
                hi = hi.max(p);
            }
            // Loop flows price nodes beyond the offers, up to the shedding
            // price (see `crate::network`); as far below, for the checks.
            None if self.network == NetworkKind::Dc => {
                let v = crate::network::default_dc_voll(lo, hi);
                (lo, hi) = (lo - (v - hi), v);
            }
            None => {}
        }
        (lo, hi)
    }
}

/// Largest `availability_noise` (the standard deviation of the relative
/// perturbation of load factors): far beyond any use, and small enough that
/// the AR(1) draw stays finite.
pub const MAX_AVAILABILITY_NOISE: f64 = 1000.0;

/// Largest |cost| relative to max(1, max_bid_delta): 2^40.
pub const MAX_COST_TO_DELTA: f64 = (1u64 << 40) as f64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_preset_values() {
        let s = Scenario::default_preset(5, 24).unwrap();
        assert_eq!(s.capacities, vec![30.0; 5]);
        assert_eq!(s.costs, vec![20.0, 25.0, 30.0, 35.0, 40.0]);
        assert_eq!(s.demand.len(), 24);
        assert!((s.demand[0] - 75.0).abs() < 1e-12);
        assert_eq!(s.cost_scale(), 40.0);
        let (lo, hi) = s.noise_bounds();
        assert!(lo < 0.0 && hi >= 0.0);
    }

    #[test]
    fn linspace_matches_numpy_endpoints() {
        assert_eq!(linspace(20.0, 40.0, 1), vec![20.0]);
        assert_eq!(linspace(0.0, 1.0, 3), vec![0.0, 0.5, 1.0]);
    }

    #[test]
    fn presets_validate_and_weekly_has_renewables() {
        let w = Scenario::weekly(5).unwrap();
        assert_eq!(w.t(), 168);
        assert_eq!(w.costs[0], 0.0);
        assert!(w.demand[24 * 5 + 18] < w.demand[18]);
        let c = Scenario::competitive(8, 24, 2).unwrap();
        assert_eq!(c.capacities, vec![18.75; 8]);
        assert!((max_of(&c.demand) - 130.25).abs() < 1e-12);
        assert_eq!(c.costs[0], 20.0);
        assert_eq!(c.costs[1], 20.0);
        assert_eq!(c.costs[7], 40.0);
        assert!(Scenario::competitive(4, 24, 0).is_err());
        assert!(Scenario::competitive(1, 24, 1).is_err());
        assert!(Scenario::default_preset(0, 24).is_err());
    }

    #[test]
    fn validation_names_field() {
        let mut s = Scenario::default_preset(3, 4).unwrap();
        s.capacities[1] = 0.0;
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("capacities") && e.contains("gen_1"), "{e}");
        let mut s = Scenario::default_preset(3, 4).unwrap();
        s.costs.pop();
        assert!(s.validate().unwrap_err().to_string().contains("costs"));
        let mut s = Scenario::default_preset(3, 4).unwrap();
        s.demand_noise = f64::NAN;
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("demand_noise"));
    }
}
