//! Price-responsive demand: an inelastic part plus bids (price, quantity).
//!
//! For a candidate price `p` (an offer or a bid price), with `S(p)` the
//! offers priced at most `p`, `Dmin(p) = D0 + sum of bids priced above p`
//! and `Dmax(p) = D0 + sum of bids priced at or above p`, the clearing price
//! is the lowest candidate with `S(p) >= Dmin(p)` (decided with the exact
//! unit sums of [`super::units`]) and the traded volume is
//! `Q = min(S(p), Dmax(p))`. When not even the highest candidate meets the
//! inelastic demand, it is a shortage, cleared as without bids.
//!
//! The search reuses the inelastic clearing: a binary search over the bid
//! prices finds the first bid price `v_j` that the supply meets; between
//! `v_{j-1}` and `v_j` the demand is the constant `Dj = Dmax(v_j)`, so the
//! inelastic clearing at `Dj` gives the price when it lies below `v_j`.
//! Otherwise the price is `v_j` itself. Without bids this is exactly the
//! inelastic clearing (same code, same bits).

use super::summary::summarize;
use super::units::Units;
use super::{clear_summarized, grow, Clearing, Rules, Workspace};
use crate::error::{MarketError, Result};

/// Demand of one hour: `inelastic` MW served first, then bids grouped by
/// price, ascending: `groups[g] = (price, total quantity at that price)`.
#[derive(Clone, Copy, Debug)]
pub struct DemandCurve<'a> {
    pub inelastic: f64,
    pub groups: &'a [(f64, f64)],
}

/// Bid (or group) `index`: price finite, quantity finite and >= 0.
fn check_bid(index: usize, p: f64, q: f64) -> Result<()> {
    if !p.is_finite() {
        return Err(MarketError::NotFinite {
            arg: "demand_bids prices",
            index,
            value: p,
        });
    }
    if q.is_finite() && q >= 0.0 {
        return Ok(());
    }
    let arg = "demand_bids quantities";
    Err(if q.is_finite() {
        MarketError::Negative {
            arg,
            index,
            value: q,
        }
    } else {
        MarketError::NotFinite {
            arg,
            index,
            value: q,
        }
    })
}

/// The demand side's sums stay finite: `(B + 1) x` the largest of the
/// inelastic demand `demand` and the bid quantities is finite, so that every
/// sum of them (the demand levels, a group's quantity) is. Both must already
/// be finite and >= 0.
pub fn validate_demand_total(demand: f64, quantities: &[f64]) -> Result<()> {
    let qmax = quantities.iter().fold(demand, |m, &q| m.max(q));
    let terms = quantities.len() as f64 + 1.0;
    if !(qmax * terms).is_finite() {
        return Err(MarketError::Invalid {
            arg: "demand_bids",
            message: format!(
                "the demand (inelastic {demand:e} MW plus {} bids of up to {qmax:e} MW) can \
                 add up beyond the float64 range: (bids + 1) x the largest quantity must be \
                 finite; use quantities of ordinary magnitudes",
                quantities.len()
            ),
        });
    }
    Ok(())
}

/// Check a demand curve: finite inelastic part >= 0, group prices finite and
/// strictly ascending, group quantities finite and >= 0, and their sums
/// finite ([`validate_demand_total`]).
pub fn validate_curve(demand: &DemandCurve<'_>) -> Result<()> {
    super::validate_demand(demand.inelastic)?;
    let mut last = f64::NEG_INFINITY;
    for (index, &(p, q)) in demand.groups.iter().enumerate() {
        check_bid(index, p, q)?;
        if p <= last {
            return Err(MarketError::Invalid {
                arg: "demand_bids",
                message: format!("group prices must ascend strictly, got {p} after {last}"),
            });
        }
        last = p;
    }
    // The demand levels of the clearing: D0 plus the groups from the top.
    let levels = demand
        .groups
        .iter()
        .rev()
        .fold(demand.inelastic, |acc, g| acc + g.1);
    if !levels.is_finite() {
        return Err(MarketError::Invalid {
            arg: "demand_bids",
            message: "the inelastic demand plus the bids exceeds the float64 range".into(),
        });
    }
    Ok(())
}

/// Group bids `(prices, quantities)` by price into `groups` (ascending, one
/// entry per distinct price, quantities summed in index order) and write to
/// `group_of[k]` the group of bid `k`. Prices must be finite (the error
/// names the bid), quantities finite and >= 0.
pub fn group_bids(
    prices: &[f64],
    quantities: &[f64],
    groups: &mut Vec<(f64, f64)>,
    group_of: &mut Vec<u32>,
) -> Result<()> {
    if prices.len() != quantities.len() {
        return Err(MarketError::LengthMismatch {
            arg: "demand_bids quantities",
            other: "demand_bids prices",
            got: quantities.len(),
            expected: prices.len(),
        });
    }
    validate_bids(prices, quantities)?;
    // `group_of` first holds the merit order of the bids (no allocation once
    // the vectors have grown), then each bid's group.
    // -0.0 and 0.0 are one price.
    let key = |k: u32| prices[k as usize] + 0.0;
    group_of.clear();
    group_of.extend(0..prices.len() as u32);
    // Index order among equal prices: the quantities of a group add up in it.
    group_of.sort_unstable_by(|&a, &b| key(a).total_cmp(&key(b)).then(a.cmp(&b)));
    groups.clear();
    for &k in group_of.iter() {
        let p = key(k);
        match groups.last_mut() {
            Some(last) if last.0 == p => last.1 += quantities[k as usize],
            _ => groups.push((p, quantities[k as usize])),
        }
    }
    for (k, g) in group_of.iter_mut().enumerate() {
        let p = key(k as u32);
        *g = groups.partition_point(|&(q, _)| q < p) as u32;
    }
    Ok(())
}

/// Check bids: every price finite, every quantity finite and >= 0 (the
/// error names the first bad bid).
pub fn validate_bids(prices: &[f64], quantities: &[f64]) -> Result<()> {
    for (index, (&p, &q)) in prices.iter().zip(quantities).enumerate() {
        check_bid(index, p, q)?;
    }
    Ok(())
}

/// Clear `offers` against a price-responsive demand: the per-offer cleared
/// quantities go to `cleared`, the served quantity of each bid group to
/// `served` (same length as `demand.groups`). The returned clearing's
/// `total` is the traded volume (served to the inelastic part and the bids).
///
/// The offers must be valid for [`super::validate`] with demand
/// `demand.inelastic`, and the curve for [`validate_curve`]; rules must
/// validate. Debug builds assert this.
#[allow(clippy::too_many_arguments)]
pub fn clear_elastic_unchecked(
    bids: &[f64],
    quantities: &[f64],
    demand: &DemandCurve<'_>,
    rules: &Rules,
    ws: &mut Workspace,
    cleared: &mut [f64],
    served: &mut [f64],
) -> Clearing {
    debug_assert!(super::validate(bids, quantities, demand.inelastic, rules).is_ok());
    debug_assert!(validate_curve(demand).is_ok());
    debug_assert_eq!(served.len(), demand.groups.len());
    let summary = &summarize(bids, quantities);
    let groups = demand.groups;
    let g_count = groups.len();
    if g_count == 0 {
        return clear_summarized(
            bids,
            quantities,
            demand.inelastic,
            rules,
            ws,
            cleared,
            summary,
        );
    }
    // levels[g] = D0 + the bids of groups g.. (priced at or above group g):
    // Dmax(v_g) = levels[g], Dmin(v_g) = levels[g + 1], levels[G] = D0.
    let levels = grow(&mut ws.levels, g_count + 1);
    levels[g_count] = demand.inelastic;
    for g in (0..g_count).rev() {
        levels[g] = levels[g + 1] + groups[g].1;
    }
    // Offer units once: the exact supply at each probed bid price.
    let n = bids.len();
    let scale = Units::new(summary.qmax, n, 0.0);
    let units = grow(&mut ws.offer_units, n);
    for (u, &q) in units.iter_mut().zip(quantities) {
        *u = scale.of(q);
    }
    let supply_at = |v: f64| -> i64 {
        bids.iter()
            .zip(units.iter())
            .map(|(&b, &u)| if b <= v { u } else { 0 })
            .sum()
    };
    let met = |g: usize| -> bool {
        let target = Units::new(summary.qmax, n, levels[g + 1]);
        target.met(supply_at(groups[g].0))
    };
    // The first group whose price the supply meets (met is monotone in g).
    let (mut lo, mut hi) = (0, g_count);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if met(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let j = lo;
    let dj = levels[j];
    let inner = clear_summarized(bids, quantities, dj, rules, ws, cleared, summary);
    let levels = &ws.levels;
    if j == g_count {
        // No bid price clears: the inelastic clearing (or a shortage) at D0,
        // above every bid, so no bid is served.
        served.fill(0.0);
        return inner;
    }
    let vj = groups[j].0;
    let c = if !inner.shortage && inner.price <= vj {
        inner
    } else {
        // The price is the bid price v_j: every offer at or below it clears.
        let mut total = 0.0;
        for ((c, &b), &q) in cleared.iter_mut().zip(bids).zip(quantities) {
            *c = if b <= vj { q } else { 0.0 };
            total += *c;
        }
        Clearing {
            price: vj + 0.0,
            total,
            shortage: false,
        }
    };
    // Groups above the price are served fully, the group at it shares what
    // is left of the volume, the ones below get nothing.
    let at_price = c.price == vj;
    let dmin = if at_price { levels[j + 1] } else { levels[j] };
    for (g, s) in served.iter_mut().enumerate() {
        *s = if g > j || (g == j && !at_price) {
            groups[g].1
        } else if g == j {
            // max/min rather than clamp, which panics on a NaN bound.
            (c.total - dmin).max(0.0).min(groups[g].1)
        } else {
            0.0
        };
    }
    c
}

/// Per-bid served quantities from per-group ones: a group served fully
/// serves each of its bids fully; a partly served group shares pro rata.
pub fn spread_served(
    quantities: &[f64],
    group_of: &[u32],
    groups: &[(f64, f64)],
    served_groups: &[f64],
    out: &mut [f64],
) {
    for ((o, &q), &g) in out.iter_mut().zip(quantities).zip(group_of) {
        let (total, s) = (groups[g as usize].1, served_groups[g as usize]);
        *o = if s >= total {
            q
        } else if total > 0.0 {
            s * (q / total)
        } else {
            0.0
        };
    }
}
