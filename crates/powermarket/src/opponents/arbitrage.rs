//! `("arbitrage", buy_below, sell_above)`: a price-threshold storage rule.
//! Every block bids its full share of the power to charge at `buy_below`
//! €/MWh, or offers it for sale at `sell_above` €/MWh: with K >= 2 blocks,
//! even blocks bid and odd blocks offer; with one block, it offers when the
//! last clearing price was at or above `sell_above` and bids otherwise (and
//! in the first hour). The clearing then charges only at prices up to
//! `buy_below` and sells only at `sell_above` or more. The prices are
//! expressed through the price action around the unit's reference price, so
//! they are limited to `reference +- max_bid_delta`. For a generator the
//! rule offers everything at `sell_above`.

use super::markup::price_action;
use super::{Rule, RuleCtx};
use rand_chacha::ChaCha8Rng;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Arbitrage {
    pub buy_below: f64,
    pub sell_above: f64,
}

impl Rule for Arbitrage {
    const NAME: &'static str = "arbitrage";
    const PARAMS: &'static [&'static str] = &["buy_below", "sell_above"];

    fn from_params(p: &[f64]) -> Self {
        Arbitrage {
            buy_below: p[0],
            sell_above: p[1],
        }
    }

    fn params(&self) -> Vec<f64> {
        vec![self.buy_below, self.sell_above]
    }

    fn action(&self, ctx: &RuleCtx, _: &mut ChaCha8Rng) -> [f32; 2] {
        let sell = if ctx.kind.low[0] >= 0.0 {
            true
        } else if ctx.blocks >= 2 {
            ctx.block % 2 == 1
        } else {
            ctx.last_price.is_some_and(|p| p >= self.sell_above)
        };
        let (a0, target) = if sell {
            (ctx.kind.high[0], self.sell_above)
        } else {
            (ctx.kind.low[0], self.buy_below)
        };
        let a0 = if ctx.kind.low[0] >= 0.0 { 0.0 } else { a0 };
        [
            a0,
            price_action(target - ctx.reference, ctx.max_bid_delta, ctx.price_action),
        ]
    }
}
