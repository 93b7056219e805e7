//! What a generator can offer in an hour: its availability (capacity times
//! load factor) and its ramp window around the previous hour's dispatch.
//!
//! This is an offer-side approximation of ramping: the window clips what a
//! generator *offers*, so its dispatch can still fall below the window's
//! floor when it prices itself out of the merit order. Every rule here is
//! stated in `docs/semantics.md` ("Availability and ramps").

use crate::scenario::Scenario;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// Hour-to-hour autocorrelation of the availability perturbation.
pub const AVAILABILITY_AR1: f64 = 0.9;

/// The offer-side limits of a market, precomputed from its scenario. A
/// market without availability and ramp fields has none (`Option::None` in
/// [`crate::env::Market`]) and its step does no work for them.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Generators whose base load factors are not all 1 (wind, solar): the
    /// ones `availability_noise` perturbs.
    pub variable: Vec<usize>,
    /// `availability_noise`: scale of the multiplicative AR(1) perturbation.
    pub noise: f64,
    /// `r_i K_i`, MW per hour; `None` without ramp limits.
    pub ramp_mw: Option<Vec<f64>>,
    /// € per MW of change; `None` without ramp costs.
    pub ramp_costs: Option<Vec<f64>>,
}

impl Limits {
    /// `None` when the scenario has no availability, ramp limit or ramp cost.
    pub fn new(s: &Scenario) -> Option<Self> {
        if s.availability.is_none() && s.ramp_limits.is_none() && s.ramp_costs.is_none() {
            return None;
        }
        let n = s.n();
        let variable = match &s.availability {
            Some(a) => (0..n)
                .filter(|&i| a.iter().skip(i).step_by(n).any(|&x| x < 1.0))
                .collect(),
            None => vec![],
        };
        Some(Limits {
            variable,
            noise: s.availability_noise,
            ramp_mw: s
                .ramp_limits
                .as_ref()
                .map(|r| r.iter().zip(&s.capacities).map(|(r, k)| r * k).collect()),
            ramp_costs: s.ramp_costs.clone(),
        })
    }

    /// True when each episode draws its own load factors (a per-market
    /// (T, N) buffer); otherwise the scenario's are used as they are.
    pub fn draws_availability(&self) -> bool {
        self.noise > 0.0 && !self.variable.is_empty()
    }

    /// The ramp limit of generator `i` as it applies in an hour: `Some((prev,
    /// r_i K_i))` from hour 1 on with ramp limits, else `None` (hour 0 is free).
    #[inline]
    pub fn ramp(&self, i: usize, hour: usize, prev: f64) -> Option<(f64, f64)> {
        match &self.ramp_mw {
            Some(r) if hour > 0 => Some((prev, r[i])),
            _ => None,
        }
    }

    /// Ramp cost of generator `i` for moving from `prev` to `x` MW, €:
    /// `ramp_cost_i |x - prev|` from hour 1 on, else 0.
    #[inline]
    pub fn ramp_cost(&self, i: usize, hour: usize, prev: f64, x: f64) -> f64 {
        match &self.ramp_costs {
            Some(c) if hour > 0 => c[i] * (x - prev).abs(),
            _ => 0.0,
        }
    }
}

/// The ramp window of a generator, MW: `[max(0, prev - ramp), min(available,
/// prev + ramp)]`. When availability fell below the floor the window is
/// empty and the upper bound wins: `[hi, hi]`.
#[inline]
pub fn ramp_window(prev: f64, ramp: f64, available: f64) -> (f64, f64) {
    let hi = available.min(prev + ramp);
    let lo = (prev - ramp).max(0.0).min(hi);
    (lo, hi)
}

/// The quantity a generator offers, MW, from `q` = `(1 - a0) K` of the action
/// mapping: scaled by the hour's load factor `lf` (so `(1 - a0) K LF`), then,
/// with `ramp = Some((prev, r K))`, clipped into [`ramp_window`] around the
/// previous hour's cleared quantity `prev` (so withholding cannot take the
/// offer below the floor). The one place availability and ramp limits act on
/// an offer; an offer of several blocks would clip their total in merit order.
#[inline]
pub fn limited_quantity(q: f64, capacity: f64, lf: f64, ramp: Option<(f64, f64)>) -> f64 {
    let q = q * lf;
    match ramp {
        Some((prev, r)) => {
            let (lo, hi) = ramp_window(prev, r, capacity * lf);
            q.max(lo).min(hi)
        }
        None => q,
    }
}

/// [`limited_quantity`] for a generator with K > 1 offer blocks: each block's
/// quantity `(1 - a0_k) K / K_blocks` is scaled by `lf`; then, with a ramp
/// limit, the blocks are taken in merit order (price, then block index) and
/// their total is clipped into the [`ramp_window`]: blocks beyond the upper
/// bound are cut from the most expensive down, and a total below the floor is
/// raised from the cheapest block up, each block to at most its share of the
/// available capacity, `capacity lf / K_blocks`. With one block this is
/// exactly [`limited_quantity`].
pub fn limited_blocks(
    prices: &[f64],
    quantities: &mut [f64],
    capacity: f64,
    lf: f64,
    ramp: Option<(f64, f64)>,
) {
    let k = quantities.len();
    for q in quantities.iter_mut() {
        *q *= lf;
    }
    let Some((prev, r)) = ramp else {
        return;
    };
    let (lo, hi) = ramp_window(prev, r, capacity * lf);
    let block_max = capacity * lf / k as f64;
    // Merit order of the blocks (K is small: an insertion sort of indices).
    let mut order: Vec<usize> = (0..k).collect();
    for a in 1..k {
        let mut b = a;
        while b > 0 && prices[order[b - 1]] > prices[order[b]] {
            order.swap(b - 1, b);
            b -= 1;
        }
    }
    let mut total = 0.0;
    for &j in &order {
        let q = quantities[j].min((hi - total).max(0.0));
        quantities[j] = q;
        total += q;
    }
    let mut deficit = lo - total;
    for &j in &order {
        if deficit <= 0.0 {
            break;
        }
        let room = (block_max - quantities[j]).max(0.0);
        let add = room.min(deficit);
        quantities[j] += add;
        deficit -= add;
    }
}

/// Draw one episode's load factors into `out` ((T, N) row-major): the
/// scenario's, with each variable generator's series multiplied by
/// `1 + e_t`, where `e_0 = noise z_0` and
/// `e_t = rho e_(t-1) + noise sqrt(1 - rho^2) z_t` (`rho` =
/// [`AVAILABILITY_AR1`], `z` standard normals drawn generator by generator
/// in index order, hour by hour), clipped to [0, 1].
pub fn draw_availability(s: &Scenario, l: &Limits, rng: &mut ChaCha8Rng, out: &mut [f64]) {
    let (n, t) = (s.n(), s.t());
    debug_assert_eq!(out.len(), n * t);
    let base = s.availability.as_deref().unwrap_or(&[]);
    out.copy_from_slice(base);
    let innovation = l.noise * (1.0 - AVAILABILITY_AR1 * AVAILABILITY_AR1).sqrt();
    for &i in &l.variable {
        let mut e = 0.0;
        for h in 0..t {
            let z: f64 = StandardNormal.sample(&mut *rng);
            e = if h == 0 {
                l.noise * z
            } else {
                AVAILABILITY_AR1 * e + innovation * z
            };
            let k = h * n + i;
            out[k] = (base[k] * (1.0 + e)).clamp(0.0, 1.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_clips_and_upper_bound_wins() {
        // prev 10 MW, ramp 5 MW/h, 30 MW available: [5, 15].
        assert_eq!(ramp_window(10.0, 5.0, 30.0), (5.0, 15.0));
        assert_eq!(limited_quantity(30.0, 30.0, 1.0, Some((10.0, 5.0))), 15.0);
        assert_eq!(limited_quantity(0.0, 30.0, 1.0, Some((10.0, 5.0))), 5.0);
        // Availability fell to 3 MW, below the floor 5: the offer is 3.
        assert_eq!(ramp_window(10.0, 5.0, 3.0), (3.0, 3.0));
        assert_eq!(limited_quantity(30.0, 30.0, 0.1, Some((10.0, 5.0))), 3.0);
        // Hour 0 or no ramp limits: only the load factor applies.
        assert_eq!(limited_quantity(20.0, 30.0, 0.5, None), 10.0);
        assert_eq!(ramp_window(2.0, 5.0, 30.0), (0.0, 7.0));
    }
}
