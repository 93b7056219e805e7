//! `"random"`: uniform over the agent kind's action box, a0 in [0, 1) for a
//! generator and [-1, 1) for a storage unit, a1 in [low, high) of the
//! market's price action ([-10, 10) or [-1, 1)), drawn from the strategy
//! set's own RNG.

use super::{Rule, RuleCtx};
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

    fn action(&self, ctx: &RuleCtx, rng: &mut ChaCha8Rng) -> [f32; 2] {
        let (low, high) = (ctx.kind.low, ctx.kind.high);
        let a0 = rng.random::<f32>();
        // A generator's a0 box is [0, 1): the draw itself, as it always was.
        let a0 = if low[0] == 0.0 && high[0] == 1.0 {
            a0
        } else {
            a0 * (high[0] - low[0]) + low[0]
        };
        let (lo1, hi1) = (ctx.price_action.low()[1], ctx.price_action.high()[1]);
        [a0, rng.random::<f32>() * (hi1 - lo1) + lo1]
    }
}
