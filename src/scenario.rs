//! A market scenario: the generator fleet, the hourly demand profile and the
//! market rules, with the presets of the easy_marl electricity example.

mod advanced;
pub mod spline;

pub use advanced::{
    advanced_demand_shape, solar_load_factor, wind_load_factor, ADVANCED_HOURS, WEEKDAY_POINTS,
    WEEKEND_POINTS,
};

use crate::clearing::{Mechanism, Rules};
use crate::error::{MarketError, Result};
use std::f64::consts::PI;

/// Fleet, demand and rules of one market. Immutable once validated; share it
/// between markets by reference.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Capacity of each generator, MW (N values, > 0).
    pub capacities: Vec<f64>,
    /// Marginal cost of each generator, €/MWh (N values).
    pub costs: Vec<f64>,
    /// Noise-free demand of each hour, MW (T values, > 0).
    pub demand: Vec<f64>,
    /// Largest bid markup or markdown over cost, €/MWh.
    pub max_bid_delta: f64,
    /// Weight of the squared bid deviation `(b - c)^2` in the reward.
    pub bid_penalty: f64,
    /// Penalty per MW of unserved demand, charged to every generator.
    pub lol_penalty: f64,
    /// Standard deviation of the hourly demand noise, as a fraction of the peak demand.
    pub demand_noise: f64,
    /// Price in a shortage (price cap / value of lost load); `None`: highest offer price.
    pub shortage_price: Option<f64>,
    /// Offer blocks per generator, K >= 1: each offers K blocks of K_i / K MW.
    pub segments: usize,
    /// Price-responsive demand: `(price €/MWh, share of the hour's demand)`
    /// per bid; the rest of the demand is inelastic.
    pub demand_bids: Vec<(f64, f64)>,
    /// How cleared offers are paid.
    pub mechanism: Mechanism,
    /// Highest admissible offer/bid price and the price of a shortage, €/MWh.
    pub price_cap: Option<f64>,
    /// Lowest admissible offer/bid price, €/MWh.
    pub price_floor: Option<f64>,
    /// Load factor of each generator in each hour, in [0, 1], (T, N) row-major:
    /// generator `i` can offer at most `K_i * LF[t, i]` MW in hour `t`.
    /// `None`: every load factor is 1 (and no per-step work is done for it).
    pub availability: Option<Vec<f64>>,
    /// Size of the per-episode AR(1) perturbation of the load factors of the
    /// variable generators (see [`crate::env::limits`]); 0: none, and no
    /// random number is drawn for it.
    pub availability_noise: f64,
    /// Largest change of cleared quantity from one hour to the next, as a
    /// share of capacity per hour (N values, >= 0); `None`: no limits.
    pub ramp_limits: Option<Vec<f64>>,
    /// Cost of a change of cleared quantity, € per MW of change (N values,
    /// >= 0); `None`: no ramp costs.
    pub ramp_costs: Option<Vec<f64>>,
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
    /// Defaults of the easy_marl example for the scalar fields.
    pub fn with_fleet(capacities: Vec<f64>, costs: Vec<f64>, demand: Vec<f64>) -> Self {
        Scenario {
            capacities,
            costs,
            demand,
            max_bid_delta: 50.0,
            bid_penalty: 0.01,
            lol_penalty: 1.0,
            demand_noise: 0.05,
            shortage_price: None,
            segments: 1,
            demand_bids: Vec::new(),
            mechanism: Mechanism::Uniform,
            price_cap: None,
            price_floor: None,
            availability: None,
            availability_noise: 0.0,
            ramp_limits: None,
            ramp_costs: None,
        }
    }

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
                field: "competition_rate",
                message: "must be an int >= 1 (generators per cost level), got 0".into(),
            });
        }
        check_sizes(n, t)?;
        if n < 2 {
            return Err(MarketError::Scenario {
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

    /// Check every field; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        let err =
            |field: &'static str, message: String| Err(MarketError::Scenario { field, message });
        if self.capacities.is_empty() {
            return err("capacities", "needs at least one generator (N >= 1)".into());
        }
        if self.demand.is_empty() {
            return err("demand", "needs at least one hour (T >= 1)".into());
        }
        if self.costs.len() != self.capacities.len() {
            return err(
                "costs",
                format!(
                    "has {} values but capacities has {}",
                    self.costs.len(),
                    self.capacities.len()
                ),
            );
        }
        for (i, &k) in self.capacities.iter().enumerate() {
            if !(k.is_finite() && k > 0.0) {
                return err(
                    "capacities",
                    format!("gen_{i} must be finite and > 0, got {k}"),
                );
            }
        }
        for (i, &c) in self.costs.iter().enumerate() {
            if !c.is_finite() {
                return err("costs", format!("gen_{i} must be finite, got {c}"));
            }
        }
        for (h, &d) in self.demand.iter().enumerate() {
            if !(d.is_finite() && d > 0.0) {
                return err(
                    "demand",
                    format!("hour {h} must be finite and > 0, got {d}"),
                );
            }
        }
        let scalars = [
            ("max_bid_delta", self.max_bid_delta),
            ("bid_penalty", self.bid_penalty),
            ("lol_penalty", self.lol_penalty),
            ("demand_noise", self.demand_noise),
            ("availability_noise", self.availability_noise),
        ];
        for (field, v) in scalars {
            if !(v.is_finite() && v >= 0.0) {
                return err(field, format!("must be finite and >= 0, got {v}"));
            }
        }
        if let Some(p) = self.shortage_price {
            if !p.is_finite() {
                return err("shortage_price", format!("must be finite or None, got {p}"));
            }
        }
        self.validate_design()?;
        self.validate_limits()?;
        // Each field finite is not enough: bids, profits and penalties must
        // stay finite too, or a step would return inf/NaN silently.
        for (i, &c) in self.costs.iter().enumerate() {
            if !((c + self.max_bid_delta).is_finite() && (c - self.max_bid_delta).is_finite()) {
                return err(
                    "max_bid_delta",
                    format!(
                        "{:e}: cost of gen_{i} ({c:e}) +/- max_bid_delta overflows",
                        self.max_bid_delta
                    ),
                );
            }
        }
        // A bid is cost + tanh(a) * max_bid_delta: the cost must be fine
        // enough for the markup to show (and the bid penalty to be exact).
        for (i, &c) in self.costs.iter().enumerate() {
            if c.abs() > MAX_COST_TO_DELTA * self.max_bid_delta.max(1.0) {
                return err(
                    "costs",
                    format!(
                        "gen_{i} cost {c:e} is too large for markups of up to max_bid_delta \
                         ({:e}) to be represented; |cost| must be <= 2^40 x max(1, max_bid_delta)",
                        self.max_bid_delta
                    ),
                );
            }
        }
        // Normalisers are divided by: their reciprocals and the reward scale
        // 20 / (demand_scale * cost_scale * T) must be finite too.
        for (i, &k) in self.capacities.iter().enumerate() {
            if !(1.0 / k).is_finite() {
                return err(
                    "capacities",
                    format!("gen_{i} is too small to normalise by, got {k}"),
                );
            }
        }
        let reward_scale =
            20.0 / (self.demand_scale() * self.cost_scale() * self.t().max(1) as f64);
        if !(1.0 / self.demand_scale()).is_finite() {
            return err(
                "demand",
                format!(
                    "peak demand {:e} MW is too small to normalise by",
                    self.demand_scale()
                ),
            );
        }
        if !((1.0 / self.cost_scale()).is_finite() && reward_scale.is_finite()) {
            return err(
                "costs",
                format!(
                    "the reward scale 20 / (peak demand {:e} x highest cost {:e} x T) is not \
                     finite; use costs and demand of ordinary magnitudes",
                    self.demand_scale(),
                    self.cost_scale()
                ),
            );
        }
        let total_k: f64 = self.capacities.iter().sum();
        let kmax = max_of(&self.capacities);
        if !(total_k.is_finite() && (kmax * self.n() as f64).is_finite()) {
            return err(
                "capacities",
                format!(
                    "N x the largest capacity ({} x {kmax:e} MW) exceeds the float64 range",
                    self.n()
                ),
            );
        }
        let (cmin, cmax) = (min_of(&self.costs), max_of(&self.costs));
        if !(cmax - cmin).is_finite() {
            return err(
                "costs",
                format!("the range of costs [{cmin:e}, {cmax:e}] exceeds the float64 range"),
            );
        }
        let (plo, phi) = self.price_bounds();
        if !(phi - plo).is_finite() {
            return err(
                "max_bid_delta",
                format!(
                    "{:e} widens the bid range beyond the float64 range (costs {cmin:e} to {cmax:e})",
                    self.max_bid_delta
                ),
            );
        }
        // Demand noise can raise an hour's demand by up to `noise_hi`; the
        // loss-of-load penalty is charged on that demand.
        let (_, noise_hi) = self.noise_bounds();
        let peak = max_of(&self.demand) + noise_hi;
        let worst_profit = (phi - plo) * 2.0 * total_k;
        if !worst_profit.is_finite() {
            return err(
                "capacities",
                format!(
                    "total capacity {total_k:e} MW times the bid range {:e} EUR/MWh overflows",
                    phi - plo
                ),
            );
        }
        let bid_term = self.bid_penalty * self.max_bid_delta * self.max_bid_delta;
        let ramp_term = self.worst_ramp_cost();
        if !bid_term.is_finite() {
            return err(
                "bid_penalty",
                format!(
                    "{:e} x max_bid_delta^2 ({:e}) overflows",
                    self.bid_penalty, self.max_bid_delta
                ),
            );
        }
        let lol_term = self.lol_penalty * peak;
        if !lol_term.is_finite() {
            return err(
                "lol_penalty",
                format!(
                    "{:e} x the highest possible demand ({peak:e} MW) overflows",
                    self.lol_penalty
                ),
            );
        }
        // Rewards and the price feature are float32: they must fit.
        let f32_max = f32::MAX as f64;
        let worst_reward = (worst_profit + bid_term + lol_term + ramp_term) * reward_scale;
        if worst_reward >= f32_max || worst_reward.is_nan() {
            let field = if ramp_term >= worst_profit.max(bid_term).max(lol_term) {
                "ramp_costs"
            } else if lol_term >= worst_profit.max(bid_term) {
                if self.demand_noise > 0.0 && noise_hi > max_of(&self.demand) {
                    "demand_noise"
                } else {
                    "lol_penalty"
                }
            } else if bid_term >= worst_profit {
                "bid_penalty"
            } else {
                "costs"
            };
            return err(
                field,
                format!(
                    "rewards could overflow float32: reward scale {reward_scale:e} \
                     (20 / (peak demand x highest cost x T)) times profits and penalties up to \
                     {:e} (demand_noise {}, highest possible demand {peak:e} MW, \
                     lol_penalty {}, costs {cmin:e} to {cmax:e}); use values of ordinary magnitudes",
                    worst_profit + bid_term + lol_term + ramp_term,
                    self.demand_noise,
                    self.lol_penalty
                ),
            );
        }
        let worst_price_feature = plo.abs().max(phi.abs()) / self.cost_scale();
        if worst_price_feature >= f32_max || worst_price_feature.is_nan() {
            return err(
                "costs",
                "prices divided by the highest cost would overflow float32".into(),
            );
        }
        Ok(())
    }

    /// The market-design fields: segments, demand bids, cap and floor.
    fn validate_design(&self) -> Result<()> {
        let err =
            |field: &'static str, message: String| Err(MarketError::Scenario { field, message });
        if !(1..=MAX_SEGMENTS).contains(&self.segments) {
            return err(
                "segments",
                format!(
                    "must be an int in [1, {MAX_SEGMENTS}] (offer blocks per generator), got {}",
                    self.segments
                ),
            );
        }
        for (field, v) in [
            ("price_cap", self.price_cap),
            ("price_floor", self.price_floor),
        ] {
            if let Some(p) = v {
                if !p.is_finite() {
                    return err(field, format!("must be finite or None, got {p}"));
                }
            }
        }
        if let (Some(lo), Some(hi)) = (self.price_floor, self.price_cap) {
            if lo > hi {
                return err(
                    "price_floor",
                    format!("must be <= price_cap ({hi}), got {lo}"),
                );
            }
        }
        let mut total = 0.0;
        for (k, &(p, share)) in self.demand_bids.iter().enumerate() {
            if !p.is_finite() {
                return err(
                    "demand_bids",
                    format!("bid {k}: price must be finite, got {p}"),
                );
            }
            if !(0.0..=1.0).contains(&share) {
                return err(
                    "demand_bids",
                    format!("bid {k}: share must be in [0, 1], got {share}"),
                );
            }
            total += share;
        }
        // A float sum like 0.1 + 0.2 + 0.7 may exceed 1 by an ulp or two.
        if total > 1.0 + SHARE_SUM_SLACK {
            return err(
                "demand_bids",
                format!("shares must sum to at most 1, got {total}"),
            );
        }
        Ok(())
    }

    /// The availability and ramp fields: shapes, ranges, finiteness.
    fn validate_limits(&self) -> Result<()> {
        let err =
            |field: &'static str, message: String| Err(MarketError::Scenario { field, message });
        let (n, t) = (self.n(), self.t());
        if let Some(a) = &self.availability {
            if Some(a.len()) != t.checked_mul(n) {
                return err(
                    "availability",
                    format!(
                        "must have shape (T, N) = ({t}, {n}) (one load factor per hour and \
                         generator), got {} values",
                        a.len()
                    ),
                );
            }
            if let Some(k) = a.iter().position(|x| !(0.0..=1.0).contains(x)) {
                return err(
                    "availability",
                    format!(
                        "load factor of gen_{} in hour {} must be in [0, 1], got {}",
                        k % n,
                        k / n,
                        a[k]
                    ),
                );
            }
        }
        for (field, v) in [
            ("ramp_limits", &self.ramp_limits),
            ("ramp_costs", &self.ramp_costs),
        ] {
            let Some(v) = v else { continue };
            if v.len() != n {
                return err(
                    field,
                    format!("has {} values but there are {n} generators", v.len()),
                );
            }
            if let Some(i) = v.iter().position(|x| !(x.is_finite() && *x >= 0.0)) {
                return err(
                    field,
                    format!("gen_{i} must be finite and >= 0, got {}", v[i]),
                );
            }
            if let Some(i) = v
                .iter()
                .zip(&self.capacities)
                .position(|(r, k)| !(r * k).is_finite())
            {
                return err(field, format!("gen_{i}: {:e} x capacity overflows", v[i]));
            }
        }
        Ok(())
    }

    /// Share of each hour's demand that is inelastic: `1 - sum(shares)`.
    pub fn inelastic_share(&self) -> f64 {
        let bids: f64 = self.demand_bids.iter().map(|b| b.1).sum();
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

    /// `self` after [`Scenario::validate`].
    pub fn validated(self) -> Result<Self> {
        self.validate()?;
        Ok(self)
    }

    /// Number of generators N.
    pub fn n(&self) -> usize {
        self.capacities.len()
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
    /// cap and floor, or the shortage price (the cap when set).
    pub fn price_bounds(&self) -> (f64, f64) {
        let mut lo = min_of(&self.costs) - self.max_bid_delta;
        let mut hi = max_of(&self.costs) + self.max_bid_delta;
        for &(p, _) in &self.demand_bids {
            lo = lo.min(p);
            hi = hi.max(p);
        }
        let rules = self.rules(crate::TieRule::default());
        (lo, hi) = (rules.clip(lo), rules.clip(hi));
        if let Some(p) = self.price_cap.or(self.shortage_price) {
            lo = lo.min(p);
            hi = hi.max(p);
        }
        (lo, hi)
    }
}

/// Largest |cost| relative to max(1, max_bid_delta): 2^40.
pub const MAX_COST_TO_DELTA: f64 = (1u64 << 40) as f64;

/// Largest N or T a preset builds (a typo like n=10**12 is an error, not an
/// allocation failure).
pub const MAX_PRESET_SIZE: usize = 10_000_000;

fn check_sizes(n: usize, t: usize) -> Result<()> {
    for (field, v) in [("n", n), ("t", t)] {
        if v > MAX_PRESET_SIZE {
            return Err(MarketError::Scenario {
                field,
                message: format!("must be <= {MAX_PRESET_SIZE}, got {v}"),
            });
        }
    }
    if n == 0 {
        return Err(MarketError::Scenario {
            field: "n",
            message: "must be >= 1, got 0".into(),
        });
    }
    if t == 0 {
        return Err(MarketError::Scenario {
            field: "t",
            message: "must be >= 1, got 0".into(),
        });
    }
    Ok(())
}

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
