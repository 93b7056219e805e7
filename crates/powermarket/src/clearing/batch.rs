//! Many independent clearings in one call, spread over the shared pool.

use super::demand::{group_bids, spread_served, validate_bids, validate_demand_total};
use super::{clear_elastic_unchecked, clear_unchecked, validate, DemandCurve, Rules, Workspace};
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
    clear_batch_with(
        bids,
        quantities,
        demand,
        n,
        None,
        rules,
        BatchOut {
            prices,
            cleared,
            served: &mut [],
            paid: None,
        },
    )
}

/// Demand bids of a batch: `prices` and `quantities` are (M, B) row-major.
#[derive(Clone, Copy, Debug)]
pub struct BatchBids<'a> {
    pub prices: &'a [f64],
    pub quantities: &'a [f64],
    pub b: usize,
}

/// Outputs of a batch: prices (M), cleared (M, N), served (M, B) when there
/// are bids, and the settlement price of each offer (M, N) when asked for.
pub struct BatchOut<'a> {
    pub prices: &'a mut [f64],
    pub cleared: &'a mut [f64],
    pub served: &'a mut [f64],
    pub paid: Option<&'a mut [f64]>,
}

/// Per-worker scratch of the general batch.
#[derive(Default)]
struct Scratch {
    ws: Workspace,
    clipped: Vec<f64>,
    bid_prices: Vec<f64>,
    groups: Vec<(f64, f64)>,
    group_of: Vec<u32>,
    served_g: Vec<f64>,
}

/// [`clear_batch`] with optional demand bids, price limits (from `rules`)
/// and settlement. Offer and bid prices are clipped to the limits before
/// clearing.
#[allow(clippy::too_many_arguments)]
pub fn clear_batch_with(
    bids: &[f64],
    quantities: &[f64],
    demand: &[f64],
    n: usize,
    demand_bids: Option<BatchBids<'_>>,
    rules: &Rules,
    out: BatchOut<'_>,
) -> Result<()> {
    let m = demand.len();
    if n == 0 {
        return Err(MarketError::Empty { arg: "bids" });
    }
    let expect = |arg: &'static str, got: usize, cols: usize| {
        if got != m * cols {
            Err(MarketError::Shape {
                arg,
                expected: format!("({m}, {cols})"),
                got: format!("{got} elements"),
            })
        } else {
            Ok(())
        }
    };
    expect("bids", bids.len(), n)?;
    expect("quantities", quantities.len(), n)?;
    expect("cleared", out.cleared.len(), n)?;
    let b = demand_bids.map_or(0, |d| d.b);
    if let Some(d) = demand_bids {
        expect("demand_bids prices", d.prices.len(), b)?;
        expect("demand_bids quantities", d.quantities.len(), b)?;
        expect("served", out.served.len(), b)?;
    }
    if let Some(paid) = out.paid.as_deref() {
        expect("paid", paid.len(), n)?;
    }
    if out.prices.len() != m {
        return Err(MarketError::LengthMismatch {
            arg: "prices",
            other: "demand",
            got: out.prices.len(),
            expected: m,
        });
    }
    rules.validate()?;
    for (k, ((bs, qs), &d)) in bids
        .chunks_exact(n)
        .zip(quantities.chunks_exact(n))
        .zip(demand)
        .enumerate()
    {
        validate(bs, qs, d, rules).map_err(|e| e.in_market(k))?;
        if let Some(db) = demand_bids {
            let row = k * b..(k + 1) * b;
            validate_bids(&db.prices[row.clone()], &db.quantities[row.clone()])
                .and_then(|()| validate_demand_total(d, &db.quantities[row]))
                .map_err(|e| e.in_market(k))?;
        }
    }
    let plain = demand_bids.is_none() && !rules.has_limits() && out.paid.is_none();
    let one = |sc: &mut Scratch,
               k: usize,
               price: &mut f64,
               cleared: &mut [f64],
               served: &mut [f64],
               paid: Option<&mut [f64]>| {
        let row = k * n..(k + 1) * n;
        let (bs, qs) = (&bids[row.clone()], &quantities[row]);
        if plain {
            *price = clear_unchecked(bs, qs, demand[k], rules, &mut sc.ws, cleared).price;
            return;
        }
        sc.clipped.clear();
        sc.clipped.extend_from_slice(bs);
        rules.clip_all(&mut sc.clipped);
        let (bid_p, bid_q): (&[f64], &[f64]) = match demand_bids {
            Some(db) => {
                sc.bid_prices.clear();
                sc.bid_prices
                    .extend_from_slice(&db.prices[k * b..(k + 1) * b]);
                rules.clip_all(&mut sc.bid_prices);
                (&sc.bid_prices, &db.quantities[k * b..(k + 1) * b])
            }
            None => (&[], &[]),
        };
        // Validated above: grouping cannot fail.
        let _ = group_bids(bid_p, bid_q, &mut sc.groups, &mut sc.group_of);
        sc.served_g.clear();
        sc.served_g.resize(sc.groups.len(), 0.0);
        let curve = DemandCurve {
            inelastic: demand[k],
            groups: &sc.groups,
        };
        let c = clear_elastic_unchecked(
            &sc.clipped,
            qs,
            &curve,
            rules,
            &mut sc.ws,
            cleared,
            &mut sc.served_g,
        );
        *price = c.price;
        spread_served(bid_q, &sc.group_of, &sc.groups, &sc.served_g, served);
        if let Some(paid) = paid {
            rules.mechanism.settle(c.price, &sc.clipped, paid);
        }
    };
    let BatchOut {
        prices,
        cleared,
        served,
        paid,
    } = out;
    let new_scratch = || Scratch {
        ws: Workspace::with_capacity(n),
        ..Scratch::default()
    };
    const PARALLEL_MIN: usize = 1 << 14;
    if m * n >= PARALLEL_MIN && m > 1 {
        use rayon::prelude::*;
        let paid_rows: Vec<Option<&mut [f64]>> = match paid {
            Some(p) => p.chunks_exact_mut(n).map(Some).collect(),
            None => (0..m).map(|_| None).collect(),
        };
        let served_rows: Vec<&mut [f64]> = if b == 0 {
            (0..m).map(|_| <&mut [f64]>::default()).collect()
        } else {
            served.chunks_exact_mut(b).collect()
        };
        crate::pool::shared()?.install(|| {
            prices
                .par_iter_mut()
                .zip(cleared.par_chunks_exact_mut(n))
                .zip(served_rows.into_par_iter())
                .zip(paid_rows.into_par_iter())
                .enumerate()
                .for_each_init(new_scratch, |sc, (k, (((p, c), s), pd))| {
                    one(sc, k, p, c, s, pd)
                })
        });
    } else {
        let mut sc = new_scratch();
        let mut paid_rows = paid.map(|p| p.chunks_exact_mut(n));
        let mut served_rows = (b > 0).then(|| served.chunks_exact_mut(b));
        for (k, (p, c)) in prices
            .iter_mut()
            .zip(cleared.chunks_exact_mut(n))
            .enumerate()
        {
            let s = served_rows
                .as_mut()
                .and_then(|r| r.next())
                .unwrap_or_default();
            let pd = paid_rows.as_mut().and_then(|r| r.next());
            one(&mut sc, k, p, c, s, pd);
        }
    }
    Ok(())
}
