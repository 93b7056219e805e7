//! `("markup", eur_per_mwh)`: the whole capacity at `cost + markup` €/MWh;
//! the markup is limited to what the action can express,
//! `|markup| < max_bid_delta` (`a1 = atanh(markup / max_bid_delta)`, clipped
//! to the action box, or `markup / max_bid_delta` with the linear price action).

use super::Rule;
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

    fn action(&self, max_bid_delta: f64, pa: PriceAction, _: &mut ChaCha8Rng) -> [f32; 2] {
        let x = if max_bid_delta > 0.0 {
            (self.0 / max_bid_delta).clamp(-1.0, 1.0)
        } else {
            0.0
        };
        [0.0, pa.from_share(x)]
    }
}
