//! Observers: the features each generator sees before it bids.
//!
//! The easy_marl observers `simple`, `simple_v2`, `simple_v3` and `basic` are
//! reproduced feature for feature; `market` adds the last clearing price and
//! the agent's own last dispatch, and `market_v2` adds what availability and
//! ramp limits allow: the load factor now and the ramp window. Features that never change during an episode
//! are computed once into a per-agent template; a step only writes the rest.

use crate::error::{MarketError, Result};
use crate::scenario::Scenario;
use std::f64::consts::PI;

/// Which features an agent observes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Observer {
    /// `[D_t/Dmax, K_i/Kmax, c_i/cmax, (t mod 24)/24]`
    Simple,
    /// `simple` + `((t div 24) mod 7)/7`
    SimpleV2,
    /// `[D_t/Dmax, K_i/Kmax, c_i/cmax, sin/cos hour, sin/cos weekday]`
    SimpleV3,
    /// `[D_t/Dmax, K_i/Kmax, others' c/cmax (N-1), others' K/Kmax (N-1)]`
    Basic,
    /// `simple` + `[last price / cmax, own last cleared / K_i]` (zeros at t = 0)
    Market,
    /// `market` + `[own load factor now, ramp window low / K_i, high / K_i]`
    MarketV2,
}

impl Observer {
    pub const NAMES: [&'static str; 6] = [
        "simple",
        "simple_v2",
        "simple_v3",
        "basic",
        "market",
        "market_v2",
    ];

    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "simple" => Observer::Simple,
            "simple_v2" => Observer::SimpleV2,
            "simple_v3" => Observer::SimpleV3,
            "basic" => Observer::Basic,
            "market" => Observer::Market,
            "market_v2" => Observer::MarketV2,
            other => {
                return Err(MarketError::UnknownName {
                    arg: "observer",
                    value: other.to_string(),
                    valid: Self::NAMES.join(", "),
                })
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Observer::Simple => "simple",
            Observer::SimpleV2 => "simple_v2",
            Observer::SimpleV3 => "simple_v3",
            Observer::Basic => "basic",
            Observer::Market => "market",
            Observer::MarketV2 => "market_v2",
        }
    }

    /// Features per agent for a market of `n` generators.
    pub fn dim(self, n: usize) -> usize {
        match self {
            Observer::Simple => 4,
            Observer::SimpleV2 => 5,
            Observer::SimpleV3 => 7,
            Observer::Basic => 2 + 2 * (n - 1),
            Observer::Market => 6,
            Observer::MarketV2 => 9,
        }
    }
}

/// The dynamic inputs of one observation.
#[derive(Clone, Copy, Debug)]
pub struct ObsInput<'a> {
    /// Hour index for the time features (0-based; T on the final observation).
    pub hour: usize,
    /// The demand shown, MW.
    pub demand: f64,
    /// Last clearing price, €/MWh (`None` before the first step).
    pub last_price: Option<f64>,
    /// Last cleared quantity per agent, MW (ignored before the first step).
    pub last_cleared: &'a [f64],
    /// Load factors of the hour shown (the last hour on the final
    /// observation), N values; `None`: all ones.
    pub load_factors: Option<&'a [f64]>,
}

/// An observer bound to a scenario: the static template and the scales.
#[derive(Clone, Debug)]
pub struct ObsBuilder {
    pub kind: Observer,
    n: usize,
    dim: usize,
    template: Vec<f32>,
    inv_demand_scale: f64,
    inv_cost_scale: f64,
    inv_capacity: Vec<f64>,
    capacity: Vec<f64>,
    /// `r_i K_i`, MW per hour, for the ramp window of `market_v2`.
    ramp_mw: Option<Vec<f64>>,
    low: Vec<f32>,
    high: Vec<f32>,
}

impl ObsBuilder {
    pub fn new(kind: Observer, s: &Scenario) -> Self {
        let n = s.n();
        let dim = kind.dim(n);
        let ks = s.capacity_scale();
        let cs = s.cost_scale();
        let ds = s.demand_scale();
        let mut template = vec![0f32; n * dim];
        for i in 0..n {
            let row = &mut template[i * dim..(i + 1) * dim];
            row[1] = (s.capacities[i] / ks) as f32;
            if kind == Observer::Basic {
                for (slot, j) in (0..n).filter(|&j| j != i).enumerate() {
                    row[2 + slot] = (s.costs[j] / cs) as f32;
                    row[2 + (n - 1) + slot] = (s.capacities[j] / ks) as f32;
                }
            } else {
                row[2] = (s.costs[i] / cs) as f32;
            }
        }
        let mut b = ObsBuilder {
            kind,
            n,
            dim,
            template,
            inv_demand_scale: 1.0 / ds,
            inv_cost_scale: 1.0 / cs,
            inv_capacity: s.capacities.iter().map(|k| 1.0 / k).collect(),
            capacity: s.capacities.clone(),
            ramp_mw: s
                .ramp_limits
                .as_ref()
                .map(|r| r.iter().zip(&s.capacities).map(|(r, k)| r * k).collect()),
            low: vec![],
            high: vec![],
        };
        b.compute_bounds(s);
        b
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Write the (N, D) observation matrix into `out`.
    #[inline]
    pub fn write(&self, input: &ObsInput<'_>, out: &mut [f32]) {
        debug_assert_eq!(out.len(), self.n * self.dim);
        out.copy_from_slice(&self.template);
        let d = (input.demand * self.inv_demand_scale) as f32;
        let hour = input.hour % 24;
        let day = (input.hour / 24) % 7;
        match self.kind {
            Observer::Simple | Observer::SimpleV2 | Observer::Market | Observer::MarketV2 => {
                let h = (hour as f64 / 24.0) as f32;
                let wd = (day as f64 / 7.0) as f32;
                let price = input
                    .last_price
                    .map_or(0.0, |p| (p * self.inv_cost_scale) as f32);
                for (i, row) in out.chunks_exact_mut(self.dim).enumerate() {
                    row[0] = d;
                    row[3] = h;
                    match self.kind {
                        Observer::SimpleV2 => row[4] = wd,
                        Observer::Market | Observer::MarketV2 => {
                            row[4] = price;
                            row[5] = if input.last_price.is_some() {
                                (input.last_cleared[i] * self.inv_capacity[i]) as f32
                            } else {
                                0.0
                            };
                            if self.kind == Observer::MarketV2 {
                                self.write_limits(input, i, &mut row[6..9]);
                            }
                        }
                        _ => {}
                    }
                }
            }
            Observer::SimpleV3 => {
                let ha = 2.0 * PI * hour as f64 / 24.0;
                let da = 2.0 * PI * day as f64 / 7.0;
                let feats = [
                    ha.sin() as f32,
                    ha.cos() as f32,
                    da.sin() as f32,
                    da.cos() as f32,
                ];
                for row in out.chunks_exact_mut(self.dim) {
                    row[0] = d;
                    row[3..7].copy_from_slice(&feats);
                }
            }
            Observer::Basic => {
                for row in out.chunks_exact_mut(self.dim) {
                    row[0] = d;
                }
            }
        }
    }

    /// `market_v2`'s features of agent `i`: load factor now, and the ramp
    /// window (what it may offer this hour) as shares of its capacity; the
    /// window is `[0, load factor]` in hour 0 and without ramp limits.
    fn write_limits(&self, input: &ObsInput<'_>, i: usize, out: &mut [f32]) {
        let lf = input.load_factors.map_or(1.0, |r| r[i]);
        let k = self.capacity[i];
        let (lo, hi) = match (&self.ramp_mw, input.last_price) {
            (Some(r), Some(_)) => {
                crate::env::limits::ramp_window(input.last_cleared[i], r[i], k * lf)
            }
            _ => (0.0, k * lf),
        };
        let share = |x: f64| ((x * self.inv_capacity[i]) as f32).clamp(0.0, 1.0);
        out[0] = lf as f32;
        out[1] = share(lo);
        out[2] = share(hi);
    }

    /// Per-agent lower bounds, (N, D) row-major.
    pub fn low(&self) -> &[f32] {
        &self.low
    }

    /// Per-agent upper bounds, (N, D) row-major.
    pub fn high(&self) -> &[f32] {
        &self.high
    }

    fn compute_bounds(&mut self, s: &Scenario) {
        let (nlo, nhi) = s.noise_bounds();
        let dmin = s.demand.iter().copied().fold(f64::INFINITY, f64::min);
        let dmax = s.demand.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        // Demand shown is base + clipped noise; rounding is monotone, so the
        // bounds computed the same way hold exactly.
        let d_lo = (((dmin + nlo).min(dmin)) * self.inv_demand_scale) as f32;
        let d_hi = (((dmax + nhi).max(dmax)) * self.inv_demand_scale) as f32;
        let (plo, phi) = s.price_bounds();
        let p_lo = ((plo * self.inv_cost_scale) as f32).min(0.0);
        let p_hi = ((phi * self.inv_cost_scale) as f32).max(0.0);
        // Static features get the range they take over the fleet (widened to
        // [0, 1]), not their single value: a Box whose low equals its high is
        // a degenerate space for most learners.
        let cs = s.cost_scale();
        let c_lo = s
            .costs
            .iter()
            .map(|c| (c / cs) as f32)
            .fold(0.0f32, f32::min);
        let c_hi = s
            .costs
            .iter()
            .map(|c| (c / cs) as f32)
            .fold(1.0f32, f32::max);
        self.low = vec![0.0; self.template.len()];
        self.high = vec![1.0; self.template.len()];
        for i in 0..self.n {
            let lo = &mut self.low[i * self.dim..(i + 1) * self.dim];
            let hi = &mut self.high[i * self.dim..(i + 1) * self.dim];
            lo[0] = d_lo;
            hi[0] = d_hi;
            // Capacity ratios are in (0, 1]; cost ratios in [c_lo, c_hi].
            if self.kind == Observer::Basic {
                for k in 2..2 + (self.n - 1) {
                    lo[k] = c_lo;
                    hi[k] = c_hi;
                }
            } else {
                lo[2] = c_lo;
                hi[2] = c_hi;
            }
            match self.kind {
                Observer::Simple => {
                    lo[3] = 0.0;
                    hi[3] = 1.0;
                }
                Observer::SimpleV2 => {
                    lo[3] = 0.0;
                    hi[3] = 1.0;
                    lo[4] = 0.0;
                    hi[4] = 1.0;
                }
                Observer::SimpleV3 => {
                    for k in 3..7 {
                        lo[k] = -1.0;
                        hi[k] = 1.0;
                    }
                }
                Observer::Basic => {}
                Observer::Market | Observer::MarketV2 => {
                    lo[3] = 0.0;
                    hi[3] = 1.0;
                    lo[4] = p_lo;
                    hi[4] = p_hi;
                    // Dispatch share, load factor and window shares: [0, 1].
                    for k in 5..self.dim {
                        lo[k] = 0.0;
                        hi[k] = 1.0;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_layout_matches_easy_marl() {
        let s = Scenario::default_preset(3, 24).unwrap();
        let b = ObsBuilder::new(Observer::Basic, &s);
        assert_eq!(b.dim(), 6);
        let mut out = vec![0f32; 18];
        let cleared = [0.0; 3];
        b.write(
            &ObsInput {
                hour: 0,
                demand: 75.0,
                last_price: None,
                last_cleared: &cleared,
                load_factors: None,
            },
            &mut out,
        );
        // agent 1: others are 0 and 2 -> costs 20, 40 / 40, capacities 1, 1.
        let d = (75.0 / s.demand_scale()) as f32;
        assert_eq!(&out[6..12], &[d, 1.0, 0.5, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn unknown_observer_lists_valid() {
        let e = Observer::parse("fancy").unwrap_err().to_string();
        assert!(e.contains("simple_v3") && e.contains("market"), "{e}");
    }
}
