//! `simple_v2`: `simple` + `((t div 24) mod 7)/7`, the day of the week (easy_marl).

use super::{day_of_week, hour_of_day, ObsContext, ObsInput, Observe};

pub struct SimpleV2;

impl Observe for SimpleV2 {
    fn dim(_n: usize) -> usize {
        5
    }

    #[inline]
    fn write(ctx: &ObsContext, input: &ObsInput<'_>, out: &mut [f32]) {
        let (d, h, wd) = (
            ctx.demand(input),
            hour_of_day(input.hour),
            day_of_week(input.hour),
        );
        for row in ctx.rows(out) {
            row[0] = d;
            row[3] = h;
            row[4] = wd;
        }
    }
}
