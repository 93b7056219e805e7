//! `"truthful"`: the whole capacity at marginal cost, `[0, 0]`.

use super::{Rule, RuleCtx};
use rand_chacha::ChaCha8Rng;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Truthful;

impl Rule for Truthful {
    const NAME: &'static str = "truthful";
    const PARAMS: &'static [&'static str] = &[];

    fn from_params(_: &[f64]) -> Self {
        Truthful
    }

    fn params(&self) -> Vec<f64> {
        Vec::new()
    }

    fn action(&self, _: &RuleCtx, _: &mut ChaCha8Rng) -> [f32; 2] {
        [0.0, 0.0]
    }
}
