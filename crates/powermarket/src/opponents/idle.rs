//! `"idle"`: a storage unit that neither charges nor discharges: `[0, 0]`
//! (for a generator this is the truthful offer).

use super::{Rule, RuleCtx};
use rand_chacha::ChaCha8Rng;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Idle;

impl Rule for Idle {
    const NAME: &'static str = "idle";
    const PARAMS: &'static [&'static str] = &[];

    fn from_params(_: &[f64]) -> Self {
        Idle
    }

    fn params(&self) -> Vec<f64> {
        Vec::new()
    }

    fn action(&self, _: &RuleCtx, _: &mut ChaCha8Rng) -> [f32; 2] {
        [0.0, 0.0]
    }
}
