//! Validation of a scenario: every field, the market-design and the
//! availability/ramp fields, and the float ranges that steps must stay in.

use super::{
    max_of, min_of, Scenario, MAX_AVAILABILITY_NOISE, MAX_COST_TO_DELTA, MAX_SEGMENTS,
    SHARE_SUM_SLACK,
};
use crate::error::{MarketError, Result};

impl Scenario {
    /// Check every field; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        let err = |field: &'static str, message: String| Err(MarketError::scenario(field, message));
        let err_agent = |field: &'static str, i: usize, message: String| -> Result<()> {
            Err(MarketError::scenario(field, message).at_agent(i))
        };
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
                return err_agent(
                    "capacities",
                    i,
                    format!("gen_{i} must be finite and > 0, got {k}"),
                );
            }
        }
        for (i, &c) in self.costs.iter().enumerate() {
            if !c.is_finite() {
                return err_agent("costs", i, format!("gen_{i} must be finite, got {c}"));
            }
        }
        for (h, &d) in self.demand.iter().enumerate() {
            if !(d.is_finite() && d > 0.0) {
                return Err(MarketError::scenario(
                    "demand",
                    format!("hour {h} must be finite and > 0, got {d}"),
                )
                .at_hour(h));
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
        // The AR(1) draw multiplies load factors by 1 + e_t with e_t of
        // standard deviation sigma: beyond the bound every draw is clipped to
        // 0 or 1 anyway, and far beyond it e_t overflows to inf and NaN.
        if self.availability_noise > MAX_AVAILABILITY_NOISE {
            return err(
                "availability_noise",
                format!(
                    "must be <= {MAX_AVAILABILITY_NOISE} (a relative standard deviation), got {}",
                    self.availability_noise
                ),
            );
        }
        if let Some(p) = self.shortage_price {
            if !p.is_finite() {
                return err("shortage_price", format!("must be finite or None, got {p}"));
            }
        }
        self.validate_network()?;
        self.validate_design()?;
        self.validate_limits()?;
        let n = self.n();
        for (u, unit) in self.storage.iter().enumerate() {
            unit.validate(u, n + u)?;
            let r = unit.reference(self.mean_cost());
            // As for costs: the price action must be able to move a bid.
            let limit = MAX_COST_TO_DELTA * self.max_bid_delta.max(1.0);
            if r.abs() > limit {
                return Err(MarketError::scenario(
                    crate::units::storage::field_path("reference_price"),
                    format!(
                        "sto_{u}: reference price {r:e} is too large for max_bid_delta {:e}: \
                         |reference price| must be at most 2^40 x max(1, max_bid_delta) = \
                         {limit:e}, or every bid rounds to it",
                        self.max_bid_delta
                    ),
                )
                .at_agent(n + u));
            }
            if !((r + self.max_bid_delta).is_finite() && (r - self.max_bid_delta).is_finite()) {
                return Err(MarketError::scenario(
                    "storage",
                    format!("sto_{u}: reference price {r:e} +/- max_bid_delta overflows"),
                )
                .at_agent(n + u));
            }
        }
        // Each field finite is not enough: bids, profits and penalties must
        // stay finite too, or a step would return inf/NaN silently.
        for (i, &c) in self.costs.iter().enumerate() {
            if !((c + self.max_bid_delta).is_finite() && (c - self.max_bid_delta).is_finite()) {
                return err_agent(
                    "max_bid_delta",
                    i,
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
                return err_agent(
                    "costs",
                    i,
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
                return err_agent(
                    "capacities",
                    i,
                    format!("gen_{i} is too small to normalise by, got {k}"),
                );
            }
        }
        let reward_scale = self.reward_scale();
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
        // The price of largest magnitude, and the field that set it.
        let extreme = if phi.abs() >= plo.abs() { phi } else { plo };
        if !(phi - plo).is_finite() {
            return err(
                self.price_field(extreme, "max_bid_delta"),
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
        // |P - c_i| for any price P and cost c_i: clipping to a floor above
        // the costs (or a cap below them) moves prices away from every cost.
        let price_span = |lo: f64, hi: f64| ((hi - lo) * 2.0).max(hi - cmin).max(cmax - lo);
        let worst_profit = price_span(plo, phi) * total_k;
        // The same with offers only (no cap, floor, shortage price or demand
        // bid): when that is fine, the price field is the one to blame.
        let (olo, ohi) = (cmin - self.max_bid_delta, cmax + self.max_bid_delta);
        let profit_field = if (price_span(olo, ohi) * total_k).is_finite() {
            self.price_field(extreme, "capacities")
        } else {
            "capacities"
        };
        if !worst_profit.is_finite() {
            return err(
                profit_field,
                format!(
                    "total capacity {total_k:e} MW times the bid range {:e} EUR/MWh overflows",
                    phi - plo
                ),
            );
        }
        // The bid penalty is charged on the clipped bid: its distance from
        // the cost is max_bid_delta, or more when a floor above the cost (or
        // a cap below it) moves the bid.
        let (markup, markup_field) = self.worst_markup();
        let bid_term = self.bid_penalty * markup * markup;
        let ramp_term = self.worst_ramp_cost();
        if !markup.is_finite() {
            return err(
                markup_field,
                format!("moves bids {markup:e} EUR/MWh away from cost, beyond the float64 range"),
            );
        }
        if !bid_term.is_finite() {
            return err(
                if markup_field != "max_bid_delta" {
                    markup_field
                } else {
                    "bid_penalty"
                },
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
                if markup_field != "max_bid_delta" {
                    markup_field
                } else {
                    "bid_penalty"
                }
            } else if profit_field != "capacities" {
                profit_field
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
        // A storage unit's money in an hour: both legs at the most extreme
        // price (2 P |p|), the throughput cost (2 P cost) and, in the last
        // hour, the terminal value of at most E MWh.
        let pmax = plo.abs().max(phi.abs());
        let mean_cost = self.mean_cost();
        for (u, unit) in self.storage.iter().enumerate() {
            let money = 2.0 * unit.power * (pmax + unit.cost)
                + unit.terminal(mean_cost).abs() * unit.energy;
            let worst = money * reward_scale;
            if worst >= f32_max || worst.is_nan() {
                return Err(MarketError::scenario(
                    crate::units::storage::field_path("power"),
                    format!(
                        "sto_{u}: rewards could overflow float32: reward scale \
                         {reward_scale:e} times up to {money:e} € in an hour (2 x power x \
                         (|price| up to {pmax:e} + cost) + |terminal value| x energy); use \
                         values of ordinary magnitudes"
                    ),
                )
                .at_agent(self.n() + u));
            }
        }
        let worst_price_feature = plo.abs().max(phi.abs()) / self.cost_scale();
        if worst_price_feature >= f32_max || worst_price_feature.is_nan() {
            return err(
                self.price_field(extreme, "costs"),
                "prices divided by the highest cost would overflow float32".into(),
            );
        }
        Ok(())
    }

    /// The field that sets price bound `p` (one of [`Scenario::price_bounds`]):
    /// the cap, the floor, the shortage price (without a cap) or a demand bid
    /// when `p` is theirs, else `offers` (the field to name for offer prices).
    fn price_field(&self, p: f64, offers: &'static str) -> &'static str {
        if self.price_cap == Some(p) {
            "price_cap"
        } else if self.price_floor == Some(p) {
            "price_floor"
        } else if self.price_cap.is_none() && self.shortage_price == Some(p) {
            "shortage_price"
        } else if self.demand_bids.iter().any(|&(b, _)| b == p) {
            "demand_bids"
        } else {
            offers
        }
    }

    /// Largest `|b - c_i|` of a clipped bid `b = clip(c_i + tanh(a) delta)`,
    /// and the field that moved it beyond `max_bid_delta` (the cap or floor).
    fn worst_markup(&self) -> (f64, &'static str) {
        let rules = self.rules(crate::TieRule::default());
        let (mut worst, mut field) = (self.max_bid_delta, "max_bid_delta");
        for &c in &self.costs {
            for b in [c - self.max_bid_delta, c + self.max_bid_delta] {
                let clipped = rules.clip(b);
                let d = (clipped - c).abs();
                if d > worst || d.is_nan() {
                    worst = d;
                    if clipped != b {
                        field = if Some(clipped) == self.price_floor {
                            "price_floor"
                        } else {
                            "price_cap"
                        };
                    }
                }
            }
        }
        (worst, field)
    }

    /// The market-design fields: segments, demand bids, cap and floor.
    fn validate_design(&self) -> Result<()> {
        let err = |field: &'static str, message: String| Err(MarketError::scenario(field, message));
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
        let mut total = vec![0.0; self.z()];
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
            total[self.bid_node(k)] += share;
        }
        // A float sum like 0.1 + 0.2 + 0.7 may exceed 1 by an ulp or two.
        for (z, &total) in total.iter().enumerate() {
            if total > 1.0 + SHARE_SUM_SLACK {
                let at = if self.z() > 1 {
                    format!(" at node {z}")
                } else {
                    String::new()
                };
                return err(
                    "demand_bids",
                    format!("shares{at} must sum to at most 1, got {total}"),
                );
            }
        }
        Ok(())
    }

    /// The availability and ramp fields: shapes, ranges, finiteness.
    fn validate_limits(&self) -> Result<()> {
        let err = |field: &'static str, message: String| Err(MarketError::scenario(field, message));
        let err_agent = |field: &'static str, i: usize, message: String| -> Result<()> {
            Err(MarketError::scenario(field, message).at_agent(i))
        };
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
                return Err(MarketError::scenario(
                    "availability",
                    format!(
                        "load factor of gen_{} in hour {} must be in [0, 1], got {}",
                        k % n,
                        k / n,
                        a[k]
                    ),
                )
                .at_agent(k % n)
                .at_hour(k / n));
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
                return err_agent(
                    field,
                    i,
                    format!("gen_{i} must be finite and >= 0, got {}", v[i]),
                );
            }
            if let Some(i) = v
                .iter()
                .zip(&self.capacities)
                .position(|(r, k)| !(r * k).is_finite())
            {
                return err_agent(
                    field,
                    i,
                    format!("gen_{i}: {:e} x capacity overflows", v[i]),
                );
            }
        }
        Ok(())
    }

    /// `self` after [`Scenario::validate`].
    /// Lists of nodes that put everything at node 0 are stored empty (the
    /// same market), so that equal markets compare equal.
    pub fn validated(mut self) -> Result<Self> {
        self.validate()?;
        for nodes in [&mut self.nodes, &mut self.demand_bid_nodes] {
            if nodes.iter().all(|&k| k == 0) {
                nodes.clear();
            }
        }
        Ok(self)
    }
}
