//! `market_v2`: `market` + `[own load factor now, ramp window low / K_i,
//! high / K_i]`: what availability and ramp limits let the agent offer.

use super::market::Market;
use super::{ObsContext, ObsInput, Observe};
use crate::units::generator::ramp_window;

pub struct MarketV2;

impl MarketV2 {
    /// Agent `i`'s load factor now, and its ramp window (what it may offer
    /// this hour) as shares of its capacity; the window is `[0, load
    /// factor]` in hour 0 and without ramp limits.
    fn limits(ctx: &ObsContext, input: &ObsInput<'_>, i: usize) -> [f32; 3] {
        let lf = input.load_factors.map_or(1.0, |r| r[i]);
        let k = ctx.capacity[i];
        let (lo, hi) = match (&ctx.ramp_mw, input.last_price) {
            (Some(r), Some(_)) => ramp_window(input.last_cleared[i], r[i], k * lf),
            _ => (0.0, k * lf),
        };
        let share = |x: f64| ((x * ctx.inv_capacity[i]) as f32).clamp(0.0, 1.0);
        [lf as f32, share(lo), share(hi)]
    }
}

impl Observe for MarketV2 {
    fn dim(_n: usize) -> usize {
        9
    }

    /// `market`'s features, then the limits in features 6 to 8.
    #[inline]
    fn write(ctx: &ObsContext, input: &ObsInput<'_>, out: &mut [f32]) {
        Market::write(ctx, input, out);
        for (i, row) in ctx.rows(out).enumerate() {
            row[6..9].copy_from_slice(&MarketV2::limits(ctx, input, i));
        }
    }

    fn bounds(ctx: &ObsContext, i: usize, lo: &mut [f32], hi: &mut [f32]) {
        Market::bounds(ctx, i, lo, hi);
    }

    fn price_feature() -> Option<usize> {
        Some(4)
    }

    fn own(_n: usize) -> Vec<usize> {
        vec![1, 2, 5, 6, 7, 8]
    }
}
