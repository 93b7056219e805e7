//! M network clearings of one grid in one call, spread over the shared pool.

use super::{
    clear_network_unchecked, settle, validate, NetWorkspace, Network, NetworkOut, NodalBids,
};
use crate::clearing::Rules;
use crate::error::{MarketError, Result};

/// The inputs of a batch, row-major: `bids`, `quantities` (M, N), `demand`
/// (M, Z), `bid_prices`, `bid_quantities` (M, B); the nodes of the offers
/// (N) and of the bids (B) are the same in every market.
#[derive(Clone, Copy, Debug)]
pub struct NetworkBatch<'a> {
    pub bids: &'a [f64],
    pub quantities: &'a [f64],
    pub nodes: &'a [usize],
    pub demand: &'a [f64],
    pub bid_prices: &'a [f64],
    pub bid_quantities: &'a [f64],
    pub bid_nodes: &'a [usize],
}

/// The outputs of a batch: prices (M, Z), cleared (M, N), flows (M, L),
/// served (M, B), congestion rent (M), and what each offer is paid (M, N)
/// when asked for.
pub struct NetworkBatchOut<'a> {
    pub prices: &'a mut [f64],
    pub cleared: &'a mut [f64],
    pub flows: &'a mut [f64],
    pub served: &'a mut [f64],
    pub rent: &'a mut [f64],
    pub paid: Option<&'a mut [f64]>,
}

/// `m` rows of `width` (an empty slice per row when `width` is 0).
fn rows(buf: &mut [f64], width: usize, m: usize) -> Result<Vec<&mut [f64]>> {
    let mut v = Vec::new();
    v.try_reserve_exact(m).map_err(|_| MarketError::Memory {
        what: "demand",
        bytes: m.saturating_mul(16),
    })?;
    if width == 0 {
        v.extend((0..m).map(|_| <&mut [f64]>::default()));
    } else {
        v.extend(buf.chunks_exact_mut(width));
    }
    Ok(v)
}

/// Clear `m` markets (`m` = the rows of `demand`) on `net`. Every market is
/// checked before any is cleared; errors name the market.
pub fn clear_network_batch(
    batch: NetworkBatch<'_>,
    net: &Network,
    rules: &Rules,
    out: NetworkBatchOut<'_>,
) -> Result<()> {
    let (n, z, l, b) = (
        batch.nodes.len(),
        net.nodes(),
        net.lines().len(),
        batch.bid_nodes.len(),
    );
    if n == 0 {
        return Err(MarketError::Empty { arg: "bids" });
    }
    let m = batch.demand.len() / z;
    let shape = |arg: &'static str, got: usize, cols: usize| {
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
    shape("demand", batch.demand.len(), z)?;
    shape("bids", batch.bids.len(), n)?;
    shape("quantities", batch.quantities.len(), n)?;
    shape("demand_bids prices", batch.bid_prices.len(), b)?;
    shape("demand_bids quantities", batch.bid_quantities.len(), b)?;
    shape("prices", out.prices.len(), z)?;
    shape("cleared", out.cleared.len(), n)?;
    shape("flows", out.flows.len(), l)?;
    shape("served", out.served.len(), b)?;
    shape("rent", out.rent.len(), 1)?;
    if let Some(p) = out.paid.as_deref() {
        shape("paid", p.len(), n)?;
    }
    rules.validate()?;
    let market = |k: usize| {
        let bids = NodalBids {
            prices: &batch.bid_prices[k * b..(k + 1) * b],
            quantities: &batch.bid_quantities[k * b..(k + 1) * b],
            nodes: batch.bid_nodes,
        };
        (
            &batch.bids[k * n..(k + 1) * n],
            &batch.quantities[k * n..(k + 1) * n],
            &batch.demand[k * z..(k + 1) * z],
            bids,
        )
    };
    for k in 0..m {
        let (bs, qs, ds, db) = market(k);
        validate(bs, qs, batch.nodes, ds, net, Some(db), rules).map_err(|e| e.in_market(k))?;
    }
    let new_scratch = || -> Result<(NetWorkspace, Vec<f64>)> {
        let mut ws = NetWorkspace::default();
        ws.try_reserve(n, b, z, l)?;
        let shed = crate::error::try_zeros::<f64>(z, "demand")?;
        Ok((ws, shed))
    };
    let one = |sc: &mut (NetWorkspace, Vec<f64>),
               k: usize,
               prices: &mut [f64],
               cleared: &mut [f64],
               flows: &mut [f64],
               served: &mut [f64],
               rent: &mut f64,
               paid: Option<&mut [f64]>|
     -> Result<()> {
        let (bs, qs, ds, db) = market(k);
        let (ws, shed) = sc;
        let c = clear_network_unchecked(
            bs,
            qs,
            batch.nodes,
            ds,
            net,
            Some(db),
            rules,
            ws,
            NetworkOut {
                prices: &mut *prices,
                cleared,
                flows,
                served,
                shed,
            },
        )
        .map_err(|e| e.in_market(k))?;
        *rent = c.congestion_rent;
        if let Some(paid) = paid {
            // The clearing left the clipped offer prices in the workspace.
            settle(rules, prices, batch.nodes, &ws.clipped, paid);
        }
        Ok(())
    };
    let NetworkBatchOut {
        prices,
        cleared,
        flows,
        served,
        rent,
        paid,
    } = out;
    let want_paid = paid.is_some();
    let mut paid_buf = paid;
    let price_rows = rows(prices, z, m)?;
    let cleared_rows = rows(cleared, n, m)?;
    let flow_rows = rows(flows, l, m)?;
    let served_rows = rows(served, b, m)?;
    let mut paid_rows: Vec<Option<&mut [f64]>> = Vec::new();
    paid_rows
        .try_reserve_exact(m)
        .map_err(|_| MarketError::Memory {
            what: "demand",
            bytes: m.saturating_mul(16),
        })?;
    match paid_buf.as_mut() {
        Some(p) if want_paid => paid_rows.extend(p.chunks_exact_mut(n).map(Some)),
        _ => paid_rows.extend((0..m).map(|_| None)),
    }
    const PARALLEL_MIN: usize = 16;
    if m >= PARALLEL_MIN {
        use rayon::prelude::*;
        crate::pool::shared()?.install(|| {
            price_rows
                .into_par_iter()
                .zip(cleared_rows)
                .zip(flow_rows)
                .zip(served_rows)
                .zip(rent.par_iter_mut())
                .zip(paid_rows)
                .enumerate()
                .map_init(
                    &new_scratch,
                    |sc, (k, (((((p, c), f), s), r), pd))| match sc {
                        Ok(sc) => one(sc, k, p, c, f, s, r, pd),
                        Err(e) => Err(e.clone()),
                    },
                )
                .collect::<Result<()>>()
        })
    } else {
        let mut sc = new_scratch()?;
        for (k, (((((p, c), f), s), r), pd)) in price_rows
            .into_iter()
            .zip(cleared_rows)
            .zip(flow_rows)
            .zip(served_rows)
            .zip(rent.iter_mut())
            .zip(paid_rows)
            .enumerate()
        {
            one(&mut sc, k, p, c, f, s, r, pd)?;
        }
        Ok(())
    }
}
