//! `simple_v3`: `[D_t/Dmax, K_i/Kmax, c_i/cmax, sin/cos hour, sin/cos
//! weekday]`, the time of day and week on circles (easy_marl).

use super::{ObsContext, ObsInput, Observe};
use std::f64::consts::PI;

pub struct SimpleV3;

impl Observe for SimpleV3 {
    fn dim(_n: usize) -> usize {
        7
    }

    #[inline]
    fn write(ctx: &ObsContext, input: &ObsInput<'_>, out: &mut [f32]) {
        let d = ctx.demand(input);
        let ha = 2.0 * PI * (input.hour % 24) as f64 / 24.0;
        let da = 2.0 * PI * ((input.hour / 24) % 7) as f64 / 7.0;
        let feats = [
            ha.sin() as f32,
            ha.cos() as f32,
            da.sin() as f32,
            da.cos() as f32,
        ];
        for row in ctx.rows(out) {
            row[0] = d;
            row[3..7].copy_from_slice(&feats);
        }
    }

    fn bounds(ctx: &ObsContext, _i: usize, lo: &mut [f32], hi: &mut [f32]) {
        (lo[2], hi[2]) = ctx.cost_bounds;
        lo[3..7].fill(-1.0);
    }
}
