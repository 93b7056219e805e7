//! Many independent clearings in one call, spread over the shared pool.

use super::{clear_unchecked, validate, Rules, Workspace};
use crate::error::{MarketError, Result};

/// Clear `m` independent markets of `n` offers each, stored row-major.
///
/// Every market is validated before any is cleared, so a bad input leaves the
/// outputs untouched. Large batches are spread over the shared pool
/// ([`crate::pool`]).
#[allow(clippy::too_many_arguments)]
pub fn clear_batch(
    bids: &[f64],
    quantities: &[f64],
    demand: &[f64],
    n: usize,
    rules: &Rules,
    prices: &mut [f64],
    cleared: &mut [f64],
) -> Result<()> {
    let m = demand.len();
    if n == 0 {
        return Err(MarketError::Empty { arg: "bids" });
    }
    let expect = |arg: &'static str, got: usize, expected: usize| {
        if got != expected {
            Err(MarketError::Shape {
                arg,
                expected: format!("({m}, {n})"),
                got: format!("{got} elements"),
            })
        } else {
            Ok(())
        }
    };
    expect("bids", bids.len(), m * n)?;
    expect("quantities", quantities.len(), m * n)?;
    expect("cleared", cleared.len(), m * n)?;
    if prices.len() != m {
        return Err(MarketError::LengthMismatch {
            arg: "prices",
            other: "demand",
            got: prices.len(),
            expected: m,
        });
    }
    for (k, ((b, q), &d)) in bids
        .chunks_exact(n)
        .zip(quantities.chunks_exact(n))
        .zip(demand)
        .enumerate()
    {
        validate(b, q, d, rules).map_err(|e| e.in_market(k))?;
    }
    type Job<'a> = (
        ((&'a [f64], &'a [f64]), (&'a f64, &'a mut f64)),
        &'a mut [f64],
    );
    let work = |ws: &mut Workspace, (((b, q), (d, p)), c): Job<'_>| {
        *p = clear_unchecked(b, q, *d, rules, ws, c).price;
    };
    const PARALLEL_MIN: usize = 1 << 14;
    if m * n >= PARALLEL_MIN && m > 1 {
        use rayon::prelude::*;
        crate::pool::shared()?.install(|| {
            bids.par_chunks_exact(n)
                .zip(quantities.par_chunks_exact(n))
                .zip(demand.par_iter().zip(prices.par_iter_mut()))
                .zip(cleared.par_chunks_exact_mut(n))
                .for_each_init(|| Workspace::with_capacity(n), work)
        });
    } else {
        let mut ws = Workspace::with_capacity(n);
        bids.chunks_exact(n)
            .zip(quantities.chunks_exact(n))
            .zip(demand.iter().zip(prices.iter_mut()))
            .zip(cleared.chunks_exact_mut(n))
            .for_each(|item| work(&mut ws, item));
    }
    Ok(())
}
