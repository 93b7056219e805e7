//! `("markup", eur_per_mwh)`: the whole capacity at `cost + markup` €/MWh;
//! the markup is limited to what the action can express,
//! `|markup| < max_bid_delta` (`a1 = atanh(markup / max_bid_delta)`, clipped
//! to the action box).

use super::{Rule, RuleCtx};
use crate::env::action::{ACTION_HIGH, ACTION_LOW};
use rand_chacha::ChaCha8Rng;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Markup(pub f64);

impl Rule for Markup {
    const NAME: &'static str = "markup";
    const PARAMS: &'static [&'static str] = &["eur_per_mwh"];

    fn from_params(p: &[f64]) -> Self {
        Markup(p[0])
    }

    fn params(&self) -> Vec<f64> {
        vec![self.0]
    }

    fn action(&self, ctx: &RuleCtx, _: &mut ChaCha8Rng) -> [f32; 2] {
        [0.0, price_action(self.0, ctx.max_bid_delta)]
    }
}

/// The price action `a1` that bids `offset` €/MWh over the agent's cost or
/// reference price: `atanh(offset / max_bid_delta)`, the ratio clipped to
/// [-1, 1] and the action to the box.
pub(crate) fn price_action(offset: f64, max_bid_delta: f64) -> f32 {
    let x = if max_bid_delta > 0.0 {
        (offset / max_bid_delta).clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let (lo, hi) = (ACTION_LOW[1] as f64, ACTION_HIGH[1] as f64);
    (x.atanh().clamp(lo, hi)) as f32
}
