//! `("markup", eur_per_mwh)`: the whole capacity at `cost + markup` €/MWh;
//! the markup is limited to what the action can express,
//! `|markup| < max_bid_delta` (`a1 = atanh(markup / max_bid_delta)`, clipped
//! to the action box, or `markup / max_bid_delta` with the linear price action).

use super::{Rule, RuleCtx};
use crate::env::PriceAction;
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
        [
            0.0,
            price_action(self.0, ctx.max_bid_delta, ctx.price_action),
        ]
    }
}

/// The price action `a1` that bids `offset` €/MWh over the agent's cost or
/// reference price under `pa`: `atanh(offset / max_bid_delta)` (or the
/// ratio itself with the linear price action), the ratio clipped to
/// [-1, 1] and the action to the box ([`PriceAction::from_share`]).
pub(crate) fn price_action(offset: f64, max_bid_delta: f64, pa: PriceAction) -> f32 {
    let x = if max_bid_delta > 0.0 {
        offset / max_bid_delta
    } else {
        0.0
    };
    pa.from_share(x)
}
