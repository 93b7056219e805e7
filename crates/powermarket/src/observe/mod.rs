//! Observers: the features each agent sees before it bids.
//!
//! The easy_marl observers `simple`, `simple_v2`, `simple_v3` and `basic` are
//! reproduced feature for feature; `market` adds the last clearing price and
//! the agent's own last dispatch, and `market_v2` adds what availability and
//! ramp limits allow: the load factor now and the ramp window.
//!
//! Each observer is one file with one unit struct implementing [`Observe`]:
//! its width, the features that never change in an episode (computed once
//! into a per-agent template), the features a step writes, and the bounds of
//! each feature. Adding an observer is one file plus one line in the
//! registry ([`observers!`] below).

mod basic;
mod market;
mod market_v2;
mod simple;
mod simple_v2;
mod simple_v3;

use crate::error::{MarketError, Result};
use crate::scenario::Scenario;

/// The dynamic inputs of one observation.
#[derive(Clone, Copy, Debug)]
pub struct ObsInput<'a> {
    /// Hour index for the time features (0-based; T on the final observation).
    pub hour: usize,
    /// The demand shown, MW.
    pub demand: f64,
    /// Last clearing price, €/MWh (`None` before the first step; on a
    /// networked market, node 0's price).
    pub last_price: Option<f64>,
    /// Last node prices of a networked market, €/MWh (Z values; NaN before
    /// the first step); one value (the clearing price) otherwise.
    pub node_prices: &'a [f64],
    /// Last cleared quantity per agent, MW (ignored before the first step);
    /// A values, a storage unit's being its net sale (discharge - charge).
    pub last_cleared: &'a [f64],
    /// State of charge of each storage unit, MWh (S values).
    pub soc: &'a [f64],
    /// Load factors of the hour shown (the last hour on the final
    /// observation), N values; `None`: all ones.
    pub load_factors: Option<&'a [f64]>,
}

/// What an observer knows of its scenario: the scales of the features and
/// the fleet, computed once.
#[derive(Clone, Debug)]
pub struct ObsContext {
    /// Agents.
    pub n: usize,
    /// Features per agent.
    pub dim: usize,
    pub inv_demand_scale: f64,
    pub inv_cost_scale: f64,
    pub capacity_scale: f64,
    pub cost_scale: f64,
    pub capacity: Vec<f64>,
    pub inv_capacity: Vec<f64>,
    pub costs: Vec<f64>,
    /// `r_i K_i`, MW per hour, for the ramp window; `None` without ramp limits.
    pub ramp_mw: Option<Vec<f64>>,
    /// Range of the demand feature over every episode.
    pub demand_bounds: (f32, f32),
    /// Range of the price feature (always containing 0).
    pub price_bounds: (f32, f32),
    /// Range of the cost features over the fleet, widened to [0, 1].
    pub cost_bounds: (f32, f32),
    /// The storage units, with their reference prices (€/MWh).
    pub storage: Vec<(crate::units::storage::Storage, f64)>,
}

impl ObsContext {
    fn new(s: &Scenario, dim: usize) -> Self {
        let (ks, cs, ds) = (s.capacity_scale(), s.cost_scale(), s.demand_scale());
        let inv_demand_scale = 1.0 / ds;
        let inv_cost_scale = 1.0 / cs;
        let (nlo, nhi) = s.noise_bounds();
        let dmin = s.demand.iter().copied().fold(f64::INFINITY, f64::min);
        let dmax = s.demand.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        // Demand shown is base + clipped noise; rounding is monotone, so the
        // bounds computed the same way hold exactly.
        let d_lo = (((dmin + nlo).min(dmin)) * inv_demand_scale) as f32;
        let d_hi = (((dmax + nhi).max(dmax)) * inv_demand_scale) as f32;
        let (plo, phi) = s.price_bounds();
        let p_lo = ((plo * inv_cost_scale) as f32).min(0.0);
        let p_hi = ((phi * inv_cost_scale) as f32).max(0.0);
        // Static features get the range they take over the fleet (widened to
        // [0, 1]), not their single value: a Box whose low equals its high is
        // a degenerate space for most learners.
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
        ObsContext {
            n: s.n(),
            dim,
            inv_demand_scale,
            inv_cost_scale,
            capacity_scale: ks,
            cost_scale: cs,
            capacity: s.capacities.clone(),
            inv_capacity: s.capacities.iter().map(|k| 1.0 / k).collect(),
            costs: s.costs.clone(),
            ramp_mw: s
                .ramp_limits
                .as_ref()
                .map(|r| r.iter().zip(&s.capacities).map(|(r, k)| r * k).collect()),
            demand_bounds: (d_lo, d_hi),
            price_bounds: (p_lo, p_hi),
            cost_bounds: (c_lo, c_hi),
            storage: s
                .storage
                .iter()
                .map(|u| (u.clone(), u.reference(s.mean_cost())))
                .collect(),
        }
    }

    /// The demand feature of `input`.
    #[inline]
    pub fn demand(&self, input: &ObsInput<'_>) -> f32 {
        (input.demand * self.inv_demand_scale) as f32
    }

    /// The rows of `out`, one per agent.
    #[inline]
    pub fn rows<'a>(&self, out: &'a mut [f32]) -> std::slice::ChunksExactMut<'a, f32> {
        out.chunks_exact_mut(self.dim)
    }
}

/// An observer: its width, its rows and its bounds. The features are
/// documented on each implementation, in order.
pub trait Observe {
    /// Features per agent in a market of `n` agents.
    fn dim(n: usize) -> usize;

    /// Agent `i`'s features that never change during an episode, written
    /// into its zeroed row. The default is the own capacity and cost ratios
    /// in features 1 and 2.
    fn fixed(ctx: &ObsContext, i: usize, row: &mut [f32]) {
        row[1] = (ctx.capacity[i] / ctx.capacity_scale) as f32;
        row[2] = (ctx.costs[i] / ctx.cost_scale) as f32;
    }

    /// Write the changing features of every agent into `out` (N rows of
    /// `dim`), which holds the fixed features already.
    fn write(ctx: &ObsContext, input: &ObsInput<'_>, out: &mut [f32]);

    /// Agent `i`'s bounds, into rows preset to `[0, 1]` with the demand
    /// feature's range in feature 0. The default gives feature 2 (the own
    /// cost) the fleet's cost range.
    fn bounds(ctx: &ObsContext, _i: usize, lo: &mut [f32], hi: &mut [f32]) {
        (lo[2], hi[2]) = ctx.cost_bounds;
    }

    /// The features that belong to the agent itself (its capacity, cost,
    /// dispatch, limits, or its view of the others) in a market of `n`
    /// generators: a storage unit's row holds [`STORAGE_FEATURES`] there,
    /// and every other feature as the generators' rows have it. The
    /// default is features 1 and 2 (capacity and cost).
    fn own(_n: usize) -> Vec<usize> {
        vec![1, 2]
    }

    /// The index of the last-price feature, if the observer has one: on a
    /// networked market each agent sees its own node's price there (and
    /// its own node's demand in feature 0).
    fn price_feature() -> Option<usize> {
        None
    }
}

/// What a storage unit's row holds in its observer's own features
/// ([`Observe::own`]), in order (zeros past the last): the state of
/// charge as a share of E, P / E (per hour), the last net sale as a share
/// of P (0 before the first step), what it can discharge and charge now as
/// shares of P, its reference price / cmax, and its round-trip efficiency.
pub const STORAGE_FEATURES: [&str; 7] = [
    "soc / E",
    "P / E",
    "last net sale / P",
    "max discharge now / P",
    "max charge now / P",
    "reference price / cmax",
    "eta_c * eta_d",
];

impl ObsContext {
    /// Storage unit `u`'s features ([`STORAGE_FEATURES`]) and their bounds.
    fn storage_features(&self, input: Option<&ObsInput<'_>>, u: usize) -> [[f32; 3]; 7] {
        let (unit, reference) = &self.storage[u];
        let (p, e) = (unit.power, unit.energy);
        let soc = input.map_or(unit.soc0(), |i| i.soc[u]);
        let net = match input {
            Some(i) if i.last_price.is_some() => i.last_cleared[self.n + u] / p,
            _ => 0.0,
        };
        let rp = reference * self.inv_cost_scale;
        let pe = p / e;
        let f = |x: f64, lo: f64, hi: f64| [x as f32, lo as f32, hi as f32];
        [
            f(soc / e, 0.0, 1.0),
            f(pe, 0.0, pe.max(1.0)),
            f(net, -1.0, 1.0),
            f(unit.max_discharge(soc) / p, 0.0, 1.0),
            f(unit.max_charge(soc) / p, 0.0, 1.0),
            f(rp, rp.min(0.0), rp.max(1.0)),
            f(unit.efficiency_charge * unit.efficiency_discharge, 0.0, 1.0),
        ]
    }
}

/// The hour-of-day feature `(t mod 24) / 24` of `simple` and its kin.
#[inline]
pub(crate) fn hour_of_day(hour: usize) -> f32 {
    ((hour % 24) as f64 / 24.0) as f32
}

/// The day-of-week feature `((t div 24) mod 7) / 7`.
#[inline]
pub(crate) fn day_of_week(hour: usize) -> f32 {
    (((hour / 24) % 7) as f64 / 7.0) as f32
}

macro_rules! observers {
    ($( $(#[$doc:meta])* $variant:ident => $name:literal, $ty:ty; )*) => {
        /// Which features an agent observes.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Observer {
            $( $(#[$doc])* $variant, )*
        }

        impl Observer {
            /// Every observer's name, as the fronts accept it.
            pub const NAMES: &'static [&'static str] = &[$( $name ),*];

            /// The observer called `name`; the error lists the valid names.
            pub fn parse(name: &str) -> Result<Self> {
                match name {
                    $( $name => Ok(Observer::$variant), )*
                    other => Err(MarketError::UnknownName {
                        arg: "observer",
                        value: other.to_string(),
                        valid: Self::NAMES.join(", "),
                    }),
                }
            }

            pub fn name(self) -> &'static str {
                match self {
                    $( Observer::$variant => $name, )*
                }
            }

            /// Features per agent for a market of `n` agents.
            pub fn dim(self, n: usize) -> usize {
                match self {
                    $( Observer::$variant => <$ty>::dim(n), )*
                }
            }

            fn fixed(self, ctx: &ObsContext, i: usize, row: &mut [f32]) {
                match self {
                    $( Observer::$variant => <$ty>::fixed(ctx, i, row), )*
                }
            }

            #[inline]
            fn write(self, ctx: &ObsContext, input: &ObsInput<'_>, out: &mut [f32]) {
                match self {
                    $( Observer::$variant => <$ty>::write(ctx, input, out), )*
                }
            }

            fn bounds(self, ctx: &ObsContext, i: usize, lo: &mut [f32], hi: &mut [f32]) {
                match self {
                    $( Observer::$variant => <$ty>::bounds(ctx, i, lo, hi), )*
                }
            }

            fn own(self, n: usize) -> Vec<usize> {
                match self {
                    $( Observer::$variant => <$ty>::own(n), )*
                }
            }

            fn price_feature(self) -> Option<usize> {
                match self {
                    $( Observer::$variant => <$ty>::price_feature(), )*
                }
            }
        }
    };
}

// The registry: one line per observer.
observers! {
    /// `[D_t/Dmax, K_i/Kmax, c_i/cmax, (t mod 24)/24]`
    Simple => "simple", simple::Simple;
    /// `simple` + `((t div 24) mod 7)/7`
    SimpleV2 => "simple_v2", simple_v2::SimpleV2;
    /// `[D_t/Dmax, K_i/Kmax, c_i/cmax, sin/cos hour, sin/cos weekday]`
    SimpleV3 => "simple_v3", simple_v3::SimpleV3;
    /// `[D_t/Dmax, K_i/Kmax, others' c/cmax (N-1), others' K/Kmax (N-1)]`
    Basic => "basic", basic::Basic;
    /// `simple` + `[last price / cmax, own last cleared / K_i]` (zeros at t = 0)
    Market => "market", market::Market;
    /// `market` + `[own load factor now, ramp window low / K_i, high / K_i]`
    MarketV2 => "market_v2", market_v2::MarketV2;
}

/// An observer bound to a scenario: the static template, the scales and
/// the bounds.
#[derive(Clone, Debug)]
pub struct ObsBuilder {
    pub kind: Observer,
    ctx: ObsContext,
    template: Vec<f32>,
    low: Vec<f32>,
    high: Vec<f32>,
    /// The observer's own features ([`Observe::own`]) and the others.
    own: Vec<usize>,
    shared: Vec<usize>,
    /// What each agent sees of its node on a networked market.
    nodes: Option<NodeView>,
}

/// The node features of a networked market: each agent's node, the share
/// of each hour's demand at each node, and each node's demand scale.
#[derive(Clone, Debug)]
struct NodeView {
    node_of: Vec<usize>,
    /// `share(t, z)` for every hour (T x Z) and `1 / max_t(D_t share(t, z))`.
    shares: Vec<f64>,
    inv_scale: Vec<f64>,
    z: usize,
    price_feature: Option<usize>,
    inv_cost_scale: f64,
}

impl NodeView {
    fn new(kind: Observer, s: &Scenario, ctx: &ObsContext) -> Option<Self> {
        if !s.networked() {
            return None;
        }
        let (z, t) = (s.z(), s.t());
        let shares: Vec<f64> = (0..t)
            .flat_map(|h| (0..z).map(move |node| (h, node)))
            .map(|(h, node)| s.demand_share(h, node))
            .collect();
        let inv_scale = (0..z)
            .map(|node| {
                let peak = (0..t)
                    .map(|h| s.demand[h] * shares[h * z + node])
                    .fold(0.0, f64::max);
                if peak > 0.0 {
                    1.0 / peak
                } else {
                    1.0
                }
            })
            .collect();
        Some(NodeView {
            node_of: (0..s.agents()).map(|a| s.node_of(a)).collect(),
            shares,
            inv_scale,
            z,
            price_feature: kind.price_feature().filter(|&f| f < ctx.dim),
            inv_cost_scale: ctx.inv_cost_scale,
        })
    }

    /// Agent `a`'s demand feature for a (noisy) total demand `total` in hour `t`.
    #[inline]
    fn demand(&self, a: usize, t: usize, total: f64) -> f32 {
        let node = self.node_of[a];
        (total * self.shares[t * self.z + node] * self.inv_scale[node]) as f32
    }

    /// Each row's demand and price features from its own node.
    fn write(&self, input: &ObsInput<'_>, dim: usize, out: &mut [f32]) {
        let t = input.hour.min(self.shares.len() / self.z - 1);
        for (a, row) in out.chunks_exact_mut(dim).enumerate() {
            row[0] = self.demand(a, t, input.demand);
            if let (Some(f), Some(_)) = (self.price_feature, input.last_price) {
                let p = input.node_prices[self.node_of[a]];
                row[f] = (p * self.inv_cost_scale) as f32;
            }
        }
    }

    /// Agent `a`'s bounds of the demand feature (noise clipped to
    /// `[lo, hi]` MW around each hour's demand) and of the price feature
    /// (unbounded under `"dc"`: loop flows can price a node beyond every offer).
    fn bounds(&self, s: &Scenario, a: usize, lo: &mut [f32], hi: &mut [f32]) {
        let (nlo, nhi) = s.noise_bounds();
        let (mut dlo, mut dhi) = (f32::INFINITY, f32::NEG_INFINITY);
        for (t, &d) in s.demand.iter().enumerate() {
            dlo = dlo.min(self.demand(a, t, (d + nlo).min(d)));
            dhi = dhi.max(self.demand(a, t, (d + nhi).max(d)));
        }
        (lo[0], hi[0]) = (dlo, dhi);
        if let Some(f) = self.price_feature {
            if s.network == crate::network::NetworkKind::Dc {
                (lo[f], hi[f]) = (f32::MIN, f32::MAX);
            }
        }
    }
}

impl ObsBuilder {
    pub fn new(kind: Observer, s: &Scenario) -> Self {
        let (n, a) = (s.n(), s.agents());
        let dim = kind.dim(n);
        let ctx = ObsContext::new(s, dim);
        let mut template = vec![0f32; a * dim];
        let mut low = vec![0f32; a * dim];
        let mut high = vec![1f32; a * dim];
        for i in 0..n {
            let rows = i * dim..(i + 1) * dim;
            kind.fixed(&ctx, i, &mut template[rows.clone()]);
            let (lo, hi) = (&mut low[rows.clone()], &mut high[rows]);
            (lo[0], hi[0]) = ctx.demand_bounds;
            kind.bounds(&ctx, i, lo, hi);
        }
        let own: Vec<usize> = kind.own(n).into_iter().filter(|&f| f < dim).collect();
        let shared: Vec<usize> = (0..dim).filter(|f| !own.contains(f)).collect();
        let nodes = NodeView::new(kind, s, &ctx);
        for u in 0..s.s() {
            let rows = (n + u) * dim..(n + u + 1) * dim;
            for &f in &shared {
                low[rows.start + f] = low[f];
                high[rows.start + f] = high[f];
            }
            let features = ctx.storage_features(None, u);
            for (&f, [_, lo, hi]) in own.iter().zip(features) {
                (low[rows.start + f], high[rows.start + f]) = (lo, hi);
            }
        }
        if let (Some(v), true) = (&nodes, dim > 0) {
            for a in 0..a {
                let rows = a * dim..(a + 1) * dim;
                v.bounds(s, a, &mut low[rows.clone()], &mut high[rows]);
            }
        }
        ObsBuilder {
            kind,
            ctx,
            template,
            low,
            high,
            own,
            shared,
            nodes,
        }
    }

    pub fn dim(&self) -> usize {
        self.ctx.dim
    }

    /// Write the (A, D) observation matrix into `out`: the generators' rows,
    /// then the storage units'.
    #[inline]
    pub fn write(&self, input: &ObsInput<'_>, out: &mut [f32]) {
        let (n, dim) = (self.ctx.n, self.ctx.dim);
        debug_assert_eq!(out.len(), (n + self.ctx.storage.len()) * dim);
        out.copy_from_slice(&self.template);
        let (gens, units) = out.split_at_mut(n * dim);
        self.kind.write(&self.ctx, input, gens);
        for (u, row) in units.chunks_exact_mut(dim.max(1)).enumerate() {
            for &f in &self.shared {
                row[f] = gens[f];
            }
            let features = self.ctx.storage_features(Some(input), u);
            for (&f, [x, _, _]) in self.own.iter().zip(features) {
                row[f] = x;
            }
        }
        if let (Some(v), true) = (&self.nodes, dim > 0) {
            v.write(input, dim, out);
        }
    }

    /// Per-agent lower bounds, (A, D) row-major.
    pub fn low(&self) -> &[f32] {
        &self.low
    }

    /// Per-agent upper bounds, (A, D) row-major.
    pub fn high(&self) -> &[f32] {
        &self.high
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
                node_prices: &[f64::NAN],
                last_cleared: &cleared,
                soc: &[],
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

    #[test]
    fn every_name_parses_back_to_its_observer_with_its_width() {
        let s = Scenario::default_preset(4, 24).unwrap();
        for &name in Observer::NAMES {
            let o = Observer::parse(name).unwrap();
            assert_eq!(o.name(), name);
            let b = ObsBuilder::new(o, &s);
            assert_eq!(b.low().len(), 4 * o.dim(4));
            assert!(b.low().iter().zip(b.high()).all(|(l, h)| l <= h), "{name}");
        }
    }
}
