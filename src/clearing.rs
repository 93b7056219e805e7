//! Uniform-price, merit-order market clearing.
//!
//! Prices are in €/MWh, quantities and demand in MW (one hour, so MWh).
//! The marginal price `p*` is the lowest offer price at which the cumulative
//! offered quantity reaches the demand. Offers below `p*` clear fully, offers
//! above clear nothing, and the offers at `p*` share what is left according to
//! the [`TieRule`].
//!
//! Two algorithms sit behind one entry point:
//! - [`TieRule::ProRata`] (default) finds `p*` by a weighted quickselect in
//!   expected O(N), then makes two linear passes;
//! - [`TieRule::Index`] reproduces the classic NumPy implementation
//!   (`argsort(kind="stable")`, `cumsum`, `searchsorted(side="left")`)
//!   operation for operation, so its price is bit-identical to it.
//!
//! Neither allocates once its [`Workspace`] has grown to the problem size.

use crate::error::{MarketError, Result};

/// How the offers priced exactly at the marginal price share the residual demand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub enum TieRule {
    /// In proportion to their offered quantities, as exchanges do.
    #[default]
    ProRata,
    /// In index order (a stable sort): the classic argsort/cumsum rule.
    Index,
}

impl TieRule {
    pub const NAMES: [&'static str; 2] = ["pro_rata", "index"];

    /// Parse the Python-facing name.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "pro_rata" => Ok(TieRule::ProRata),
            "index" => Ok(TieRule::Index),
            other => Err(MarketError::UnknownName {
                arg: "tie_rule",
                value: other.to_string(),
                valid: Self::NAMES.join(", "),
            }),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TieRule::ProRata => "pro_rata",
            TieRule::Index => "index",
        }
    }
}

/// Market rules that shape the clearing.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Rules {
    pub tie_rule: TieRule,
    /// Price (€/MWh) in a shortage (supply < demand): a price cap or value of
    /// lost load. `None` means the highest offer price.
    pub shortage_price: Option<f64>,
}

impl Rules {
    pub fn validate(&self) -> Result<()> {
        if let Some(p) = self.shortage_price {
            if !p.is_finite() {
                return Err(MarketError::BadScalar {
                    arg: "shortage_price",
                    requirement: "must be finite (or None)",
                    value: p,
                });
            }
        }
        Ok(())
    }
}

/// The outcome of one clearing; the per-offer quantities go to a caller's slice.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Clearing {
    /// Uniform clearing price, €/MWh.
    pub price: f64,
    /// Total cleared quantity, MW: `min(demand, total offered)` up to rounding.
    pub total: f64,
    /// True when total offered quantity is below demand.
    pub shortage: bool,
}

/// Reusable scratch memory, so that clearing does not allocate per call.
#[derive(Clone, Debug, Default)]
pub struct Workspace {
    keys: Vec<(f64, f64)>,
    order: Vec<u32>,
    sort_keys: Vec<u128>,
    hist: Vec<f64>,
}

impl Workspace {
    pub fn new() -> Self {
        Self::default()
    }

    /// A workspace already sized for `n` offers.
    pub fn with_capacity(n: usize) -> Self {
        Workspace {
            keys: Vec::with_capacity(n),
            order: Vec::with_capacity(n),
            sort_keys: Vec::with_capacity(n),
            hist: Vec::with_capacity(2 * bucket_count(n)),
        }
    }
}

/// One fused pass over the offers: price range, total quantity and whether
/// every value is valid. Four independent lanes keep the dependency chains
/// short (and let the compiler use SIMD).
#[derive(Clone, Copy, Debug)]
struct Summary {
    lo: f64,
    hi: f64,
    total: f64,
    valid: bool,
}

fn summarize(bids: &[f64], quantities: &[f64]) -> Summary {
    const L: usize = 4;
    let mut lo = [f64::INFINITY; L];
    let mut hi = [f64::NEG_INFINITY; L];
    let mut tot = [0.0f64; L];
    // x * 0 is 0 for finite x and NaN for NaN or infinity.
    let mut probe = [0.0f64; L];
    let mut qmin = [0.0f64; L];
    let bc = bids.chunks_exact(L);
    let qc = quantities.chunks_exact(L);
    let (br, qr) = (bc.remainder(), qc.remainder());
    for (b, q) in bc.zip(qc) {
        for l in 0..L {
            lo[l] = lo[l].min(b[l]);
            hi[l] = hi[l].max(b[l]);
            tot[l] += q[l];
            probe[l] += b[l] * 0.0 + q[l] * 0.0;
            qmin[l] = qmin[l].min(q[l]);
        }
    }
    for (&b, &q) in br.iter().zip(qr) {
        lo[0] = lo[0].min(b);
        hi[0] = hi[0].max(b);
        tot[0] += q;
        probe[0] += b * 0.0 + q * 0.0;
        qmin[0] = qmin[0].min(q);
    }
    let min4 = |v: [f64; L]| v[0].min(v[1]).min(v[2].min(v[3]));
    let max4 = |v: [f64; L]| v[0].max(v[1]).max(v[2].max(v[3]));
    Summary {
        lo: min4(lo),
        hi: max4(hi),
        total: (tot[0] + tot[1]) + (tot[2] + tot[3]),
        valid: (probe[0] + probe[1]) + (probe[2] + probe[3]) == 0.0 && min4(qmin) >= 0.0,
    }
}

/// Check one clearing problem; the first bad value is reported.
pub fn validate(bids: &[f64], quantities: &[f64], demand: f64, rules: &Rules) -> Result<()> {
    check(bids, quantities, demand, rules).map(|_| ())
}

fn check(bids: &[f64], quantities: &[f64], demand: f64, rules: &Rules) -> Result<Summary> {
    if bids.len() != quantities.len() {
        return Err(MarketError::LengthMismatch {
            arg: "quantities",
            other: "bids",
            got: quantities.len(),
            expected: bids.len(),
        });
    }
    if bids.is_empty() {
        return Err(MarketError::Empty { arg: "bids" });
    }
    let summary = summarize(bids, quantities);
    if summary.valid {
        validate_demand(demand)?;
        rules.validate()?;
        return Ok(summary);
    }
    if let Some(index) = bids.iter().position(|b| !b.is_finite()) {
        return Err(MarketError::NotFinite {
            arg: "bids",
            index,
            value: bids[index],
        });
    }
    if let Some(index) = quantities
        .iter()
        .position(|q| !(q.is_finite() && *q >= 0.0))
    {
        let value = quantities[index];
        return Err(if value.is_finite() {
            MarketError::Negative {
                arg: "quantities",
                index,
                value,
            }
        } else {
            MarketError::NotFinite {
                arg: "quantities",
                index,
                value,
            }
        });
    }
    unreachable!("summarize flagged an input that no check finds")
}

pub(crate) fn validate_demand(demand: f64) -> Result<()> {
    if !(demand.is_finite() && demand >= 0.0) {
        return Err(MarketError::BadScalar {
            arg: "demand",
            requirement: "must be finite and >= 0",
            value: demand,
        });
    }
    Ok(())
}

/// Validate, then clear into `cleared` (same length as `bids`).
pub fn clear_into(
    bids: &[f64],
    quantities: &[f64],
    demand: f64,
    rules: &Rules,
    ws: &mut Workspace,
    cleared: &mut [f64],
) -> Result<Clearing> {
    let summary = check(bids, quantities, demand, rules)?;
    if cleared.len() != bids.len() {
        return Err(MarketError::LengthMismatch {
            arg: "cleared",
            other: "bids",
            got: cleared.len(),
            expected: bids.len(),
        });
    }
    Ok(clear_summarized(
        bids, quantities, demand, rules, ws, cleared, &summary,
    ))
}

/// Convenience form that allocates the result; use [`clear_into`] on hot paths.
pub fn clear(
    bids: &[f64],
    quantities: &[f64],
    demand: f64,
    rules: &Rules,
    ws: &mut Workspace,
) -> Result<(Clearing, Vec<f64>)> {
    let mut cleared = vec![0.0; bids.len()];
    let c = clear_into(bids, quantities, demand, rules, ws, &mut cleared)?;
    Ok((c, cleared))
}

/// Clear a problem that the caller has validated (see [`validate`]).
///
/// Inputs that break the preconditions give an unspecified (but memory-safe)
/// result; debug builds assert them.
pub fn clear_unchecked(
    bids: &[f64],
    quantities: &[f64],
    demand: f64,
    rules: &Rules,
    ws: &mut Workspace,
    cleared: &mut [f64],
) -> Clearing {
    debug_assert!(validate(bids, quantities, demand, rules).is_ok());
    debug_assert_eq!(cleared.len(), bids.len());
    let summary = summarize(bids, quantities);
    clear_summarized(bids, quantities, demand, rules, ws, cleared, &summary)
}

fn clear_summarized(
    bids: &[f64],
    quantities: &[f64],
    demand: f64,
    rules: &Rules,
    ws: &mut Workspace,
    cleared: &mut [f64],
    summary: &Summary,
) -> Clearing {
    match rules.tie_rule {
        TieRule::ProRata => clear_pro_rata(bids, quantities, demand, rules, ws, cleared, summary),
        TieRule::Index => clear_index(bids, quantities, demand, rules, ws, cleared),
    }
}

fn shortage(
    quantities: &[f64],
    hi: f64,
    total: f64,
    rules: &Rules,
    cleared: &mut [f64],
) -> Clearing {
    cleared.copy_from_slice(quantities);
    Clearing {
        price: rules.shortage_price.unwrap_or(hi),
        total,
        shortage: true,
    }
}

/// Segments this short are sorted outright rather than partitioned.
const SMALL: usize = 16;

fn clear_pro_rata(
    bids: &[f64],
    quantities: &[f64],
    demand: f64,
    rules: &Rules,
    ws: &mut Workspace,
    cleared: &mut [f64],
    summary: &Summary,
) -> Clearing {
    if summary.total < demand {
        return shortage(quantities, summary.hi, summary.total, rules, cleared);
    }
    let m = if demand == 0.0 {
        Marginal {
            price: summary.lo,
            below: 0.0,
            at: 0.0,
        }
    } else {
        select_by_buckets(bids, quantities, demand, summary, ws)
    };
    let residual = (demand - m.below).clamp(0.0, m.at);
    let share = if m.at > 0.0 { residual / m.at } else { 0.0 };
    let price = m.price;
    // Branch-free: offers below clear fully, at the price take `share`.
    for ((c, &b), &q) in cleared.iter_mut().zip(bids).zip(quantities) {
        *c = masked(q, b < price) + masked(q * share, b == price);
    }
    Clearing {
        price,
        total: m.below + residual,
        shortage: false,
    }
}

/// The marginal price with the quantity offered below it and at it.
struct Marginal {
    price: f64,
    below: f64,
    at: f64,
}

/// Move the keys priced below `pivot` to the front, without branches.
/// Returns how many there are and their total quantity.
fn partition_below(keys: &mut [(f64, f64)], pivot: f64) -> (usize, f64) {
    let mut k = 0;
    let mut sum = 0.0;
    for i in 0..keys.len() {
        let x = keys[i];
        keys.swap(i, k);
        let hit = x.0 < pivot;
        sum += masked(x.1, hit);
        k += hit as usize;
    }
    (k, sum)
}

/// Move the keys priced at most `pivot` to the front, without branches.
fn partition_at_most(keys: &mut [(f64, f64)], pivot: f64) -> (usize, f64) {
    let mut k = 0;
    let mut sum = 0.0;
    for i in 0..keys.len() {
        let x = keys[i];
        keys.swap(i, k);
        let hit = x.0 <= pivot;
        sum += masked(x.1, hit);
        k += hit as usize;
    }
    (k, sum)
}

/// `x` where `keep` holds, else 0.0, without a branch (random data would
/// make a branch mispredict half the time).
#[inline(always)]
fn masked(x: f64, keep: bool) -> f64 {
    std::hint::select_unpredictable(keep, x, 0.0)
}

/// Number of price buckets for `n` offers.
fn bucket_count(n: usize) -> usize {
    (n / 4).clamp(8, 1024)
}

/// Find the marginal price in two branch-free passes before any data moves.
/// Offers fall into equal-width price buckets over `[lo, hi]`; the first
/// pass adds up each bucket's quantity, a scan finds the bucket where
/// cumulative supply reaches `demand`, and the second pass sums the quantity
/// below that bucket and gathers its offers for [`select_marginal`]. The
/// bucket index is monotone in price, so the bucket brackets the answer.
fn select_by_buckets(
    bids: &[f64],
    quantities: &[f64],
    demand: f64,
    summary: &Summary,
    ws: &mut Workspace,
) -> Marginal {
    let n = bids.len();
    ws.keys.clear();
    let (lo, hi) = (summary.lo, summary.hi);
    let nb = bucket_count(n);
    let width = hi - lo;
    let scale = nb as f64 / width;
    // Few offers, one price, or a range too wide or too narrow for finite
    // bucket arithmetic: quickselect over all offers.
    if n <= 2 * SMALL || !(width > 0.0 && width.is_finite() && scale.is_finite()) {
        ws.keys
            .extend(bids.iter().copied().zip(quantities.iter().copied()));
        return select_marginal(&mut ws.keys, demand, 0.0);
    }
    let top = nb - 1;
    let top_f = top as f64;
    let bucket = |b: f64| {
        // lo <= b <= hi and width, scale finite: x is finite, in [0, top].
        let x = ((b - lo) * scale).clamp(0.0, top_f);
        // SAFETY: x is finite and within [0, top], which fits in i32.
        unsafe { x.to_int_unchecked::<i32>() as usize }
    };
    // Two interleaved histograms halve the store-to-load chains.
    ws.hist.clear();
    ws.hist.resize(2 * nb, 0.0);
    let (h0, h1) = ws.hist.split_at_mut(nb);
    let bc = bids.chunks_exact(2);
    let qc = quantities.chunks_exact(2);
    let (br, qr) = (bc.remainder(), qc.remainder());
    for (b, q) in bc.zip(qc) {
        h0[bucket(b[0])] += q[0];
        h1[bucket(b[1])] += q[1];
    }
    for (&b, &q) in br.iter().zip(qr) {
        h0[bucket(b)] += q;
    }
    let mut acc = 0.0;
    let mut k = 0;
    while k < top && acc + (h0[k] + h1[k]) < demand {
        acc += h0[k] + h1[k];
        k += 1;
    }
    ws.keys.resize(n, (0.0, 0.0));
    let (mut below0, mut below1) = (0.0f64, 0.0f64);
    let mut len = 0;
    let keys = &mut ws.keys[..];
    let mut gather = |b: f64, q: f64, below: &mut f64| {
        let kb = bucket(b);
        *below += masked(q, kb < k);
        keys[len] = (b, q);
        len += (kb == k) as usize;
    };
    for (b, q) in bids.chunks_exact(2).zip(quantities.chunks_exact(2)) {
        gather(b[0], q[0], &mut below0);
        gather(b[1], q[1], &mut below1);
    }
    for (&b, &q) in br.iter().zip(qr) {
        gather(b, q, &mut below0);
    }
    select_marginal(&mut ws.keys[..len], demand, below0 + below1)
}

/// Weighted quickselect: the lowest price at which the cumulative quantity of
/// `keys` (price, quantity) reaches `demand`, with the quantity offered below
/// that price and at it. Requires `0 < demand <= sum(q)` up to rounding;
/// reorders `keys`. Expected O(N): each round partitions the part of the
/// keys that can still hold the answer around a pivot and keeps one side.
fn select_marginal(keys: &mut [(f64, f64)], demand: f64, below: f64) -> Marginal {
    let (mut lo, mut hi) = (0usize, keys.len());
    // Quantity of all keys left of `lo` (and of all offers below `keys`);
    // all of them are priced below keys[lo..hi].
    let mut acc = below;
    // A fixed-seed xorshift picks pivots: expected O(N) on any input, and the
    // result stays a pure function of the input.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    loop {
        let len = hi - lo;
        if len <= SMALL {
            let seg = &mut keys[lo..hi];
            insertion_sort_by_price(seg);
            let mut below = acc;
            let mut i = 0;
            while i < seg.len() {
                let p = seg[i].0;
                let mut at = 0.0;
                let mut j = i;
                while j < seg.len() && seg[j].0 == p {
                    at += seg[j].1;
                    j += 1;
                }
                // The last price of the segment is the answer whatever the
                // rounding (the caller guarantees supply >= demand).
                if below + at >= demand || j == seg.len() {
                    return Marginal {
                        price: p,
                        below,
                        at,
                    };
                }
                below += at;
                i = j;
            }
            unreachable!("select_marginal: empty segment");
        }
        let pivot = {
            let mut pick = || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                keys[lo + (state % len as u64) as usize].0
            };
            median3(pick(), pick(), pick())
        };
        let (k, sum_lt) = partition_below(&mut keys[lo..hi], pivot);
        let lt = lo + k;
        if acc + sum_lt >= demand && lt > lo {
            hi = lt;
            continue;
        }
        let (k2, sum_eq) = partition_at_most(&mut keys[lt..hi], pivot);
        let gt = lt + k2;
        if acc + sum_lt + sum_eq >= demand || gt == hi {
            return Marginal {
                price: pivot,
                below: acc + sum_lt,
                at: sum_eq,
            };
        }
        acc += sum_lt + sum_eq;
        lo = gt;
    }
}

fn median3(a: f64, b: f64, c: f64) -> f64 {
    if a < b {
        if b < c {
            b
        } else if a < c {
            c
        } else {
            a
        }
    } else if a < c {
        a
    } else if b < c {
        c
    } else {
        b
    }
}

fn insertion_sort_by_price(seg: &mut [(f64, f64)]) {
    for i in 1..seg.len() {
        let x = seg[i];
        let mut j = i;
        while j > 0 && seg[j - 1].0 > x.0 {
            seg[j] = seg[j - 1];
            j -= 1;
        }
        seg[j] = x;
    }
}

/// The classic algorithm, step for step: stable argsort by price, sequential
/// cumulative sum, first index whose cumulative sum reaches the demand.
fn clear_index(
    bids: &[f64],
    quantities: &[f64],
    demand: f64,
    rules: &Rules,
    ws: &mut Workspace,
    cleared: &mut [f64],
) -> Clearing {
    let n = bids.len();
    // Sort (price, index) pairs as integers: the price bits mapped to an
    // order-preserving u64 above the index. Same order as a stable argsort;
    // `+ 0.0` folds -0.0 into 0.0, which NumPy also treats as equal.
    ws.sort_keys.clear();
    ws.sort_keys.extend(bids.iter().enumerate().map(|(i, &b)| {
        let bits = (b + 0.0).to_bits();
        let ordered = if bits >> 63 == 1 {
            !bits
        } else {
            bits | (1 << 63)
        };
        ((ordered as u128) << 32) | i as u128
    }));
    ws.sort_keys.sort_unstable();
    ws.order.clear();
    ws.order
        .extend(ws.sort_keys.iter().map(|&k| (k & 0xFFFF_FFFF) as u32));
    debug_assert_eq!(ws.order.len(), n);
    let mut cum = 0.0;
    for (k, &i) in ws.order.iter().enumerate() {
        let i = i as usize;
        let before = cum;
        cum += quantities[i];
        if cum >= demand {
            cleared.fill(0.0);
            for &j in &ws.order[..k] {
                cleared[j as usize] = quantities[j as usize];
            }
            // The clamp only guards the last ulp: 0 <= cleared <= offered.
            let marginal = (demand - before).clamp(0.0, quantities[i]);
            cleared[i] = marginal;
            return Clearing {
                price: bids[i],
                total: before + marginal,
                shortage: false,
            };
        }
    }
    let hi = ws.order.last().map_or(f64::NAN, |&i| bids[i as usize]);
    shortage(quantities, hi, cum, rules, cleared)
}

/// Clear `m` independent markets of `n` offers each, stored row-major.
///
/// Every market is validated before any is cleared, so a bad input leaves the
/// outputs untouched. Large batches are spread over the rayon pool.
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
        bids.par_chunks_exact(n)
            .zip(quantities.par_chunks_exact(n))
            .zip(demand.par_iter().zip(prices.par_iter_mut()))
            .zip(cleared.par_chunks_exact_mut(n))
            .for_each_init(|| Workspace::with_capacity(n), work);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn run(b: &[f64], q: &[f64], d: f64, rule: TieRule) -> (Clearing, Vec<f64>) {
        let rules = Rules {
            tie_rule: rule,
            shortage_price: None,
        };
        clear(b, q, d, &rules, &mut Workspace::new()).unwrap()
    }

    #[test]
    fn simple_merit_order() {
        for rule in [TieRule::ProRata, TieRule::Index] {
            let (c, x) = run(&[30.0, 10.0, 20.0], &[10.0, 10.0, 10.0], 15.0, rule);
            assert_eq!(c.price, 20.0);
            assert_eq!(x, vec![0.0, 10.0, 5.0]);
            assert!(!c.shortage);
        }
    }

    #[test]
    fn exact_boundary_takes_lower_price() {
        // Cumulative supply reaches demand exactly at 10: side="left".
        for rule in [TieRule::ProRata, TieRule::Index] {
            let (c, x) = run(&[10.0, 20.0], &[5.0, 5.0], 5.0, rule);
            assert_eq!(c.price, 10.0);
            assert_eq!(x, vec![5.0, 0.0]);
        }
    }

    #[test]
    fn ties_pro_rata_and_index() {
        let b = [10.0, 20.0, 20.0, 20.0];
        let q = [4.0, 2.0, 4.0, 2.0];
        let (c, x) = run(&b, &q, 8.0, TieRule::ProRata);
        assert_eq!(c.price, 20.0);
        assert_eq!(x, vec![4.0, 1.0, 2.0, 1.0]);
        let (c, x) = run(&b, &q, 8.0, TieRule::Index);
        assert_eq!(c.price, 20.0);
        assert_eq!(x, vec![4.0, 2.0, 2.0, 0.0]);
    }

    #[test]
    fn shortage_prices() {
        let (c, x) = run(&[10.0, 50.0], &[1.0, 2.0], 10.0, TieRule::ProRata);
        assert!(c.shortage);
        assert_eq!(c.price, 50.0);
        assert_eq!(x, vec![1.0, 2.0]);
        let rules = Rules {
            tie_rule: TieRule::Index,
            shortage_price: Some(3000.0),
        };
        let (c, _) = clear(
            &[10.0, 50.0],
            &[1.0, 2.0],
            10.0,
            &rules,
            &mut Workspace::new(),
        )
        .unwrap();
        assert_eq!(c.price, 3000.0);
        // No shortage: the cap plays no part.
        let (c, _) = clear(
            &[10.0, 50.0],
            &[1.0, 2.0],
            2.0,
            &rules,
            &mut Workspace::new(),
        )
        .unwrap();
        assert_eq!(c.price, 50.0);
    }

    #[test]
    fn zero_demand_is_lowest_price_nothing_cleared() {
        for rule in [TieRule::ProRata, TieRule::Index] {
            let (c, x) = run(&[7.0, -3.0, 9.0], &[1.0, 0.0, 2.0], 0.0, rule);
            assert_eq!(c.price, -3.0);
            assert_eq!(x, vec![0.0; 3]);
        }
    }

    #[test]
    fn zero_quantity_offer_sets_price_when_reached() {
        // Supply reaches demand at 10; the zero offer at 5 does not matter.
        for rule in [TieRule::ProRata, TieRule::Index] {
            let (c, _) = run(&[5.0, 10.0], &[0.0, 3.0], 3.0, rule);
            assert_eq!(c.price, 10.0);
        }
    }

    #[test]
    fn large_inputs_agree_between_rules_without_ties() {
        let n = 500;
        let b: Vec<f64> = (0..n)
            .map(|i| ((i * 7919) % 1013) as f64 + 0.5 * (i % 2) as f64)
            .collect();
        let q: Vec<f64> = (0..n).map(|i| (i % 13) as f64).collect();
        let total: f64 = q.iter().sum();
        for frac in [0.0, 0.1, 0.5, 0.77, 1.0] {
            let d = total * frac;
            let (c1, x1) = run(&b, &q, d, TieRule::ProRata);
            let (c2, _) = run(&b, &q, d, TieRule::Index);
            assert_eq!(c1.price, c2.price, "demand {d}");
            let s: f64 = x1.iter().sum();
            assert!((s - d).abs() < 1e-9);
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let r = Rules::default();
        let mut ws = Workspace::new();
        let e = clear(&[1.0, f64::NAN], &[1.0, 1.0], 1.0, &r, &mut ws).unwrap_err();
        assert_eq!(e.to_string(), "bids[1] must be finite, got NaN");
        let e = clear(&[1.0, 2.0], &[1.0, -1.0], 1.0, &r, &mut ws).unwrap_err();
        assert_eq!(e.to_string(), "quantities[1] must be >= 0, got -1");
        let e = clear(&[1.0], &[f64::INFINITY], 1.0, &r, &mut ws).unwrap_err();
        assert!(e.to_string().contains("quantities[0] must be finite"));
        assert!(clear(&[1.0], &[1.0], -1.0, &r, &mut ws).is_err());
        assert!(clear(&[1.0], &[1.0], f64::NAN, &r, &mut ws).is_err());
        assert!(clear(&[1.0], &[1.0, 2.0], 1.0, &r, &mut ws).is_err());
        assert!(clear(&[], &[], 1.0, &r, &mut ws).is_err());
        let bad = Rules {
            shortage_price: Some(f64::NAN),
            ..Rules::default()
        };
        assert!(clear(&[1.0], &[1.0], 1.0, &bad, &mut ws).is_err());
        assert!(TieRule::parse("fifo").is_err());
    }

    #[test]
    fn batch_matches_single_and_reports_market() {
        let n = 3;
        let b = [30.0, 10.0, 20.0, 1.0, 2.0, 3.0];
        let q = [10.0, 10.0, 10.0, 1.0, 1.0, 1.0];
        let d = [15.0, 2.5];
        let mut p = [0.0; 2];
        let mut x = [0.0; 6];
        clear_batch(&b, &q, &d, n, &Rules::default(), &mut p, &mut x).unwrap();
        assert_eq!(p, [20.0, 3.0]);
        assert_eq!(x, [0.0, 10.0, 5.0, 1.0, 1.0, 0.5]);
        let d = [15.0, -1.0];
        let e = clear_batch(&b, &q, &d, n, &Rules::default(), &mut p, &mut x).unwrap_err();
        assert!(e.to_string().starts_with("market 1: demand"), "{e}");
    }
}
