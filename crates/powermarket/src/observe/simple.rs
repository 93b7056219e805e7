//! `simple`: `[D_t/Dmax, K_i/Kmax, c_i/cmax, (t mod 24)/24]` (easy_marl).

use super::{hour_of_day, ObsContext, ObsInput, Observe};

pub struct Simple;

impl Observe for Simple {
    fn dim(_n: usize) -> usize {
        4
    }

    #[inline]
    fn write(ctx: &ObsContext, input: &ObsInput<'_>, out: &mut [f32]) {
        let (d, h) = (ctx.demand(input), hour_of_day(input.hour));
        for row in ctx.rows(out) {
            row[0] = d;
            row[3] = h;
        }
    }
}
