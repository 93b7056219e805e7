//! `basic`: `[D_t/Dmax, K_i/Kmax, others' c/cmax (N-1), others' K/Kmax
//! (N-1)]`: an agent sees the rest of the fleet, not its own cost (easy_marl).

use super::{ObsContext, ObsInput, Observe};

pub struct Basic;

impl Observe for Basic {
    fn dim(n: usize) -> usize {
        2 + 2 * (n - 1)
    }

    fn fixed(ctx: &ObsContext, i: usize, row: &mut [f32]) {
        let n = ctx.n;
        row[1] = (ctx.capacity[i] / ctx.capacity_scale) as f32;
        for (slot, j) in (0..n).filter(|&j| j != i).enumerate() {
            row[2 + slot] = (ctx.costs[j] / ctx.cost_scale) as f32;
            row[2 + (n - 1) + slot] = (ctx.capacity[j] / ctx.capacity_scale) as f32;
        }
    }

    #[inline]
    fn write(ctx: &ObsContext, input: &ObsInput<'_>, out: &mut [f32]) {
        let d = ctx.demand(input);
        for row in ctx.rows(out) {
            row[0] = d;
        }
    }

    fn bounds(ctx: &ObsContext, _i: usize, lo: &mut [f32], hi: &mut [f32]) {
        let others = 2..2 + (ctx.n - 1);
        lo[others.clone()].fill(ctx.cost_bounds.0);
        hi[others].fill(ctx.cost_bounds.1);
    }

    fn own(n: usize) -> Vec<usize> {
        (1..2 + 2 * (n - 1)).collect()
    }
}
