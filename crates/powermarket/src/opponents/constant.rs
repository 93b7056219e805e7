//! `("constant", a0, a1)`: the same action every hour (float32, as actions are).

use super::{Rule, RuleCtx};
use rand_chacha::ChaCha8Rng;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Constant(pub [f32; 2]);

impl Rule for Constant {
    const NAME: &'static str = "constant";
    const PARAMS: &'static [&'static str] = &["a0", "a1"];

    fn from_params(p: &[f64]) -> Self {
        Constant([p[0] as f32, p[1] as f32])
    }

    fn params(&self) -> Vec<f64> {
        self.0.iter().map(|&x| x as f64).collect()
    }

    fn action(&self, _: &RuleCtx, _: &mut ChaCha8Rng) -> [f32; 2] {
        self.0
    }
}
