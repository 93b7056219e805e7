//! Built-in bidding strategies for the generators a learner plays against.

use crate::error::{MarketError, Result};
use rand::{RngExt, SeedableRng};
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
            Strategy::Random => [rng.random::<f32>(), rng.random::<f32>() * 20.0 - 10.0],
            Strategy::Markup(m) => {
                let x = if max_bid_delta > 0.0 {
                    (m / max_bid_delta).clamp(-1.0, 1.0)
                } else {
                    0.0
                };
                [0.0, (x.atanh().clamp(-10.0, 10.0)) as f32]
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

/// Strategies for every agent (the learner's own slot is skipped).
#[derive(Clone, Debug)]
pub struct Opponents {
    pub strategies: Vec<Strategy>,
    rng: ChaCha8Rng,
}

impl Opponents {
    pub fn new(strategies: Vec<Strategy>, seed: Option<u64>) -> Result<Self> {
        for s in &strategies {
            s.validate()?;
        }
        Ok(Opponents {
            strategies,
            rng: crate::env::make_rng(seed),
        })
    }

    pub fn reseed(&mut self, seed: u64) {
        self.rng = ChaCha8Rng::seed_from_u64(seed);
    }

    /// RNG state `(seed, stream, word position)`, for pickling.
    pub fn rng_state(&self) -> ([u8; 32], u64, u128) {
        (
            self.rng.get_seed(),
            self.rng.get_stream(),
            self.rng.get_word_pos(),
        )
    }

    /// Rebuild from [`Opponents::rng_state`].
    pub fn restore(strategies: Vec<Strategy>, state: ([u8; 32], u64, u128)) -> Result<Self> {
        let mut o = Opponents::new(strategies, Some(0))?;
        o.rng = ChaCha8Rng::from_seed(state.0);
        o.rng.set_stream(state.1);
        o.rng.set_word_pos(state.2);
        Ok(o)
    }

    /// Write every agent's action except `skip`'s into `actions` (N, 2).
    pub fn fill(&mut self, actions: &mut [f32], skip: usize, max_bid_delta: f64) {
        for (i, (a, s)) in actions
            .chunks_exact_mut(2)
            .zip(&self.strategies)
            .enumerate()
        {
            if i != skip {
                a.copy_from_slice(&s.action(max_bid_delta, &mut self.rng));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_maps_to_bid() {
        let mut o =
            Opponents::new(vec![Strategy::Markup(10.0), Strategy::Truthful], Some(0)).unwrap();
        let mut a = [9f32; 4];
        o.fill(&mut a, 1, 50.0);
        assert_eq!(a[0], 0.0);
        assert!(((a[1] as f64).tanh() * 50.0 - 10.0).abs() < 1e-4);
        assert_eq!(&a[2..], &[9.0, 9.0]);
    }

    #[test]
    fn random_in_box() {
        let mut o = Opponents::new(vec![Strategy::Random; 3], Some(1)).unwrap();
        let mut a = [0f32; 6];
        for _ in 0..100 {
            o.fill(&mut a, 9, 50.0);
            for p in a.chunks(2) {
                assert!((0.0..=1.0).contains(&p[0]) && (-10.0..=10.0).contains(&p[1]));
            }
        }
    }
}
