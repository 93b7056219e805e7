//! `"random"`: uniform over the action box, a0 in [0, 1), a1 in [low, high),
//! drawn from the strategy set's own RNG.

use super::Rule;
use crate::env::PriceAction;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Random;

impl Rule for Random {
    const NAME: &'static str = "random";
    const PARAMS: &'static [&'static str] = &[];

    fn from_params(_: &[f64]) -> Self {
        Random
    }

    fn params(&self) -> Vec<f64> {
        Vec::new()
    }

    fn action(&self, _: f64, pa: PriceAction, rng: &mut ChaCha8Rng) -> [f32; 2] {
        let (lo, hi) = (pa.low()[1], pa.high()[1]);
        [rng.random::<f32>(), rng.random::<f32>() * (hi - lo) + lo]
    }
}
