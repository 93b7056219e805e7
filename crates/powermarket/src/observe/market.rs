//! `market`: `simple` + `[last price / cmax, own last cleared / K_i]`, both
//! zero before the first step.

use super::{hour_of_day, ObsContext, ObsInput, Observe};

pub struct Market;

impl Market {
    /// Agent `i`'s features 4 and 5: the last price and its own last
    /// dispatch as a share of its capacity.
    #[inline]
    fn last_hour(ctx: &ObsContext, input: &ObsInput<'_>, i: usize, price: f32) -> [f32; 2] {
        let share = if input.last_price.is_some() {
            (input.last_cleared[i] * ctx.inv_capacity[i]) as f32
        } else {
            0.0
        };
        [price, share]
    }

    /// The price feature of `input` (0 before the first step).
    #[inline]
    fn price(ctx: &ObsContext, input: &ObsInput<'_>) -> f32 {
        input
            .last_price
            .map_or(0.0, |p| (p * ctx.inv_cost_scale) as f32)
    }
}

impl Observe for Market {
    fn dim(_n: usize) -> usize {
        6
    }

    #[inline]
    fn write(ctx: &ObsContext, input: &ObsInput<'_>, out: &mut [f32]) {
        let (d, h) = (ctx.demand(input), hour_of_day(input.hour));
        let price = Market::price(ctx, input);
        for (i, row) in ctx.rows(out).enumerate() {
            row[0] = d;
            row[3] = h;
            row[4..6].copy_from_slice(&Market::last_hour(ctx, input, i, price));
        }
    }

    fn bounds(ctx: &ObsContext, _i: usize, lo: &mut [f32], hi: &mut [f32]) {
        (lo[2], hi[2]) = ctx.cost_bounds;
        (lo[4], hi[4]) = ctx.price_bounds;
    }

    fn price_feature() -> Option<usize> {
        Some(4)
    }

    fn own(_n: usize) -> Vec<usize> {
        vec![1, 2, 5]
    }
}
