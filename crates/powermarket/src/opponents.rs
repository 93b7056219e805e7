//! Built-in bidding strategies for the generators a learner plays against.

use crate::env::action::{ACTION_HIGH, ACTION_LOW};
use crate::error::{MarketError, Result};
use crate::rng::RngState;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

/// A fixed bidding rule, expressed as an action `[a0, a1]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Strategy {
    /// Offer the whole capacity at marginal cost: `[0, 0]`.
    Truthful,
    /// The same action every hour.
    Constant([f32; 2]),
    /// Uniform over the action box, from the strategy set's own RNG.
    Random,
    /// Whole capacity at `cost + markup` €/MWh (the markup is limited to
    /// what the action can express, `|markup| < max_bid_delta`).
    Markup(f64),
}

impl Strategy {
    pub const NAMES: [&'static str; 4] = ["truthful", "random", "constant", "markup"];

    /// The action of this strategy given `max_bid_delta` (€/MWh).
    fn action(&self, max_bid_delta: f64, rng: &mut ChaCha8Rng) -> [f32; 2] {
        match *self {
            Strategy::Truthful => [0.0, 0.0],
            Strategy::Constant(a) => a,
            // Uniform over the box: a0 in [0, 1), a1 in [low, high).
            Strategy::Random => {
                let (lo, hi) = (ACTION_LOW[1], ACTION_HIGH[1]);
                [rng.random::<f32>(), rng.random::<f32>() * (hi - lo) + lo]
            }
            Strategy::Markup(m) => {
                let x = if max_bid_delta > 0.0 {
                    (m / max_bid_delta).clamp(-1.0, 1.0)
                } else {
                    0.0
                };
                let (lo, hi) = (ACTION_LOW[1] as f64, ACTION_HIGH[1] as f64);
                [0.0, (x.atanh().clamp(lo, hi)) as f32]
            }
        }
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |value: f64| {
            Err(MarketError::BadScalar {
                arg: "opponent",
                requirement: "parameters must be finite",
                value,
            })
        };
        match *self {
            Strategy::Constant(a) if !(a[0].is_finite() && a[1].is_finite()) => {
                bad(if a[0].is_finite() { a[1] } else { a[0] } as f64)
            }
            Strategy::Markup(m) if !m.is_finite() => bad(m),
            _ => Ok(()),
        }
    }
}

/// Strategies for every agent (the learner's own slot is skipped), for
/// `num_markets` markets, each with its own RNG so that market i's draws do
/// not depend on how many markets there are.
#[derive(Clone, Debug)]
pub struct Opponents {
    pub strategies: Vec<Strategy>,
    rngs: Vec<ChaCha8Rng>,
}

impl Opponents {
    /// Market i's RNG uses key `seed`, stream i (OS entropy when `None`).
    pub fn new(strategies: Vec<Strategy>, seed: Option<u64>, num_markets: usize) -> Result<Self> {
        for s in &strategies {
            s.validate()?;
        }
        if num_markets == 0 {
            return Err(MarketError::Invalid {
                arg: "num_markets",
                message: "must be >= 1, got 0".into(),
            });
        }
        let key = seed.unwrap_or_else(rand::random);
        let mut rngs = Vec::new();
        rngs.try_reserve_exact(num_markets)
            .map_err(|_| MarketError::Memory {
                what: "num_markets",
                bytes: num_markets.saturating_mul(std::mem::size_of::<ChaCha8Rng>()),
            })?;
        rngs.extend((0..num_markets).map(|i| crate::rng::stream_rng(key, i as u64)));
        Ok(Opponents { strategies, rngs })
    }

    pub fn num_markets(&self) -> usize {
        self.rngs.len()
    }

    /// Reseed the markets where `mask` is true (all when `None`): market i
    /// with key `seed`, stream i.
    pub fn reseed(&mut self, seed: u64, mask: Option<&[bool]>) -> Result<()> {
        self.check_mask(mask)?;
        for (i, r) in self.rngs.iter_mut().enumerate() {
            if mask.is_none_or(|m| m[i]) {
                *r = crate::rng::stream_rng(seed, i as u64);
            }
        }
        Ok(())
    }

    /// Reseed market i with key `seeds[i]`, stream 0, where `mask` is true.
    pub fn reseed_each(&mut self, seeds: &[u64], mask: Option<&[bool]>) -> Result<()> {
        self.check_mask(mask)?;
        if seeds.len() != self.rngs.len() {
            return Err(MarketError::Shape {
                arg: "seed",
                expected: format!("a list of {} seeds", self.rngs.len()),
                got: format!("{} seeds", seeds.len()),
            });
        }
        for (i, (r, &s)) in self.rngs.iter_mut().zip(seeds).enumerate() {
            if mask.is_none_or(|m| m[i]) {
                *r = crate::rng::stream_rng(s, 0);
            }
        }
        Ok(())
    }

    fn check_mask(&self, mask: Option<&[bool]>) -> Result<()> {
        match mask {
            Some(m) if m.len() != self.rngs.len() => Err(MarketError::Shape {
                arg: "mask",
                expected: format!("({},)", self.rngs.len()),
                got: format!("{} values", m.len()),
            }),
            _ => Ok(()),
        }
    }

    /// Every market's RNG state, for pickling.
    pub fn rng_states(&self) -> Vec<RngState> {
        self.rngs.iter().map(RngState::capture).collect()
    }

    /// Rebuild from [`Opponents::rng_states`].
    pub fn restore(strategies: Vec<Strategy>, states: &[RngState]) -> Result<Self> {
        let mut o = Opponents::new(strategies, Some(0), states.len().max(1))?;
        if states.is_empty() {
            return Err(MarketError::Invalid {
                arg: "state",
                message: "no RNG states".into(),
            });
        }
        for (r, state) in o.rngs.iter_mut().zip(states) {
            *r = state.restore();
        }
        Ok(o)
    }

    /// Write every agent's action except `skip`'s into `actions`, (N, 2) or
    /// (N, K, 2) with K offer blocks per agent (each block gets the
    /// strategy's action; `Random` draws one per block), drawing from market
    /// `market`'s RNG.
    pub fn fill_market(&mut self, market: usize, actions: &mut [f32], skip: usize, delta: f64) {
        let n = self.strategies.len().max(1);
        let per_agent = (actions.len() / n).max(2);
        let rng = &mut self.rngs[market];
        for (i, (agent, s)) in actions
            .chunks_exact_mut(per_agent)
            .zip(&self.strategies)
            .enumerate()
        {
            if i != skip {
                for a in agent.chunks_exact_mut(2) {
                    a.copy_from_slice(&s.action(delta, rng));
                }
            }
        }
    }

    /// [`Opponents::fill_market`] for market 0.
    pub fn fill(&mut self, actions: &mut [f32], skip: usize, max_bid_delta: f64) {
        self.fill_market(0, actions, skip, max_bid_delta);
    }

    /// Fill (M, N, 2) actions, or (M, N, K, 2) with `segments` K > 1, market
    /// i from RNG i; M must be `num_markets`.
    pub fn fill_batch(
        &mut self,
        actions: &mut [f32],
        skip: usize,
        delta: f64,
        segments: usize,
    ) -> Result<()> {
        let n = self.strategies.len();
        let m = self.rngs.len();
        let k = segments.max(1);
        if actions.len() != m * n * k * 2 {
            return Err(MarketError::Shape {
                arg: "actions",
                expected: if k == 1 {
                    format!("({m}, {n}, 2)")
                } else {
                    format!("({m}, {n}, {k}, 2)")
                },
                got: format!("{} values", actions.len()),
            });
        }
        if n == 0 {
            return Ok(());
        }
        for (i, chunk) in actions.chunks_exact_mut(2 * n * k).enumerate() {
            self.fill_market(i, chunk, skip, delta);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_maps_to_bid() {
        let mut o =
            Opponents::new(vec![Strategy::Markup(10.0), Strategy::Truthful], Some(0), 1).unwrap();
        let mut a = [9f32; 4];
        o.fill(&mut a, 1, 50.0);
        assert_eq!(a[0], 0.0);
        assert!(((a[1] as f64).tanh() * 50.0 - 10.0).abs() < 1e-4);
        assert_eq!(&a[2..], &[9.0, 9.0]);
    }

    #[test]
    fn random_in_box() {
        let mut o = Opponents::new(vec![Strategy::Random; 3], Some(1), 1).unwrap();
        let mut a = [0f32; 6];
        for _ in 0..100 {
            o.fill(&mut a, 9, 50.0);
            for p in a.chunks(2) {
                assert!((0.0..=1.0).contains(&p[0]) && (-10.0..=10.0).contains(&p[1]));
            }
        }
    }
}

#[cfg(test)]
mod stream_tests {
    use super::*;

    #[test]
    fn market_draws_do_not_depend_on_the_number_of_markets() {
        let mut one = Opponents::new(vec![Strategy::Random; 2], Some(9), 1).unwrap();
        let mut four = Opponents::new(vec![Strategy::Random; 2], Some(9), 4).unwrap();
        let mut a = [0f32; 4];
        let mut b = [0f32; 16];
        one.fill(&mut a, 9, 50.0);
        four.fill_batch(&mut b, 9, 50.0, 1).unwrap();
        assert_eq!(a, b[..4]);
        assert_ne!(b[..4], b[4..8]);
        assert!(four.fill_batch(&mut a, 9, 50.0, 1).is_err());
    }
}
