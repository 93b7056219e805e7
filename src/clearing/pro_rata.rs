//! `pro_rata`: the marginal price by a weighted selection in expected O(N),
//! then the offers at that price share the residual demand in proportion to
//! their quantities.

use super::fast;
use super::units::Units;
use super::{
    bucket_count, grow, insertion_sort_by_price, shortage, Buckets, Clearing, Rules, Summary,
    Workspace, SMALL,
};

pub(super) fn clear(
    bids: &[f64],
    quantities: &[f64],
    demand: f64,
    rules: &Rules,
    ws: &mut Workspace,
    cleared: &mut [f64],
    summary: &Summary,
) -> Clearing {
    let n = bids.len();
    let found = if demand == 0.0 {
        Some((summary.lo, 0.0, 0.0))
    } else {
        // The float filter: its answer is used only where it provably
        // equals the exact rule's.
        if summary.total >= fast::threshold(demand) {
            let m = fast::select_by_buckets(bids, quantities, fast::threshold(demand), summary, ws);
            if fast::certain(n, summary.qmax, demand, m.below, m.at) {
                return finish(bids, quantities, demand, cleared, m.price, m.below, m.at);
            }
        } else if fast::certainly_short(n, summary.qmax, demand, summary.total) {
            return shortage(quantities, summary.hi, rules, cleared);
        }
        exact(bids, quantities, demand, ws, summary)
    };
    let Some((price, below, at)) = found else {
        return shortage(quantities, summary.hi, rules, cleared);
    };
    finish(bids, quantities, demand, cleared, price, below, at)
}

/// The exact decision (see [`super::units`]): `(price, below, at)`, or
/// `None` in a shortage.
fn exact(
    bids: &[f64],
    quantities: &[f64],
    demand: f64,
    ws: &mut Workspace,
    summary: &Summary,
) -> Option<(f64, f64, f64)> {
    let units = Units::new(summary.qmax, bids.len(), demand);
    if bids.len() <= SMALL {
        select_small(bids, quantities, &units, &mut ws.small)
    } else {
        // Float sums below and at the price give the quantities (the price
        // was decided with exact unit sums).
        select_by_buckets(bids, quantities, &units, summary, ws)
            .map(|p| (p, sums_below_and_at(bids, quantities, p)))
            .map(|(p, (below, at))| (p, below, at))
    }
}

/// Offers below `price` clear fully; those at it share the residual demand
/// in proportion to their quantities (float sums `below` and `at`).
fn finish(
    bids: &[f64],
    quantities: &[f64],
    demand: f64,
    cleared: &mut [f64],
    price: f64,
    below: f64,
    at: f64,
) -> Clearing {
    // max/min rather than clamp, which panics on a NaN bound.
    let residual = (demand - below).max(0.0).min(at);
    let share = if at > 0.0 { residual / at } else { 0.0 };
    if share < TINY && residual > 0.0 {
        // `q * share` would underflow: divide first.
        for ((c, &b), &q) in cleared.iter_mut().zip(bids).zip(quantities) {
            *c = if b < price {
                q
            } else if b == price {
                residual * (q / at)
            } else {
                0.0
            };
        }
    } else {
        // Plain selects, which the compiler turns into SIMD masks.
        for ((c, &b), &q) in cleared.iter_mut().zip(bids).zip(quantities) {
            let full = if b < price { q } else { 0.0 };
            let part = if b == price { q * share } else { 0.0 };
            *c = full + part;
        }
    }
    Clearing {
        price,
        total: below + residual,
        shortage: false,
    }
}

/// A few offers: sort them and scan in merit order, adding exact units (the
/// decision) and float quantities (below and at the price, in merit order).
/// Returns `(price, below, at)`, or `None` in a shortage.
fn select_small(
    bids: &[f64],
    quantities: &[f64],
    units: &Units,
    keys: &mut Vec<(f64, f64)>,
) -> Option<(f64, f64, f64)> {
    let keys = grow(keys, bids.len());
    for (k, (&b, &q)) in keys.iter_mut().zip(bids.iter().zip(quantities)) {
        *k = (b, q);
    }
    insertion_sort_by_price(keys);
    let (mut below_u, mut below) = (0, 0.0);
    let mut i = 0;
    while i < keys.len() {
        let p = keys[i].0;
        let (mut at_u, mut at) = (0, 0.0);
        let mut j = i;
        while j < keys.len() && keys[j].0 == p {
            at_u += units.of(keys[j].1);
            at += keys[j].1;
            j += 1;
        }
        if units.met(below_u + at_u) {
            return Some((p, below, at));
        }
        below_u += at_u;
        below += at;
        // A NaN never equals itself: step past it.
        i = j.max(i + 1);
    }
    None
}

/// Float sums of the quantities priced below `price` and at it. Offer `i`
/// goes to lane `i % 4` (the last `len % 4` offers to lanes 0, 1, ...), and
/// the lanes add up as `(l0 + l1) + (l2 + l3)`: the SSE2 path and the
/// portable one give the same bits.
fn sums_below_and_at(bids: &[f64], quantities: &[f64], price: f64) -> (f64, f64) {
    let n = bids.len().min(quantities.len());
    let head = n - n % 4;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is part of the x86_64 baseline.
    let (mut below, mut at) = unsafe { lanes_sse2(&bids[..head], &quantities[..head], price) };
    #[cfg(not(target_arch = "x86_64"))]
    let (mut below, mut at) = lanes_portable(&bids[..head], &quantities[..head], price);
    for (lane, (&b, &q)) in bids[head..n].iter().zip(&quantities[head..n]).enumerate() {
        below[lane] += if b < price { q } else { 0.0 };
        at[lane] += if b == price { q } else { 0.0 };
    }
    (
        (below[0] + below[1]) + (below[2] + below[3]),
        (at[0] + at[1]) + (at[2] + at[3]),
    )
}

/// The portable lanes (compiled everywhere, so that tests on x86_64 can
/// check that both paths give the same bits).
#[cfg_attr(all(target_arch = "x86_64", not(test)), allow(dead_code))]
fn lanes_portable(bids: &[f64], quantities: &[f64], price: f64) -> ([f64; 4], [f64; 4]) {
    let (mut below, mut at) = ([0.0; 4], [0.0; 4]);
    for (b, q) in bids.chunks_exact(4).zip(quantities.chunks_exact(4)) {
        for lane in 0..4 {
            below[lane] += if b[lane] < price { q[lane] } else { 0.0 };
            at[lane] += if b[lane] == price { q[lane] } else { 0.0 };
        }
    }
    (below, at)
}

/// [`sums_below_and_at`]'s lanes four offers at a time (length a multiple of 4).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
fn lanes_sse2(bids: &[f64], quantities: &[f64], price: f64) -> ([f64; 4], [f64; 4]) {
    use std::arch::x86_64::*;
    let n = bids.len().min(quantities.len()) / 4 * 4;
    let (bp, qp) = (bids.as_ptr(), quantities.as_ptr());
    let p = _mm_set1_pd(price);
    let zero = _mm_setzero_pd();
    let (mut lo0, mut lo1, mut at0, mut at1) = (zero, zero, zero, zero);
    let mut i = 0;
    while i < n {
        // SAFETY: i + 4 <= n <= both lengths.
        let (b0, b1, q0, q1) = unsafe {
            (
                _mm_loadu_pd(bp.add(i)),
                _mm_loadu_pd(bp.add(i + 2)),
                _mm_loadu_pd(qp.add(i)),
                _mm_loadu_pd(qp.add(i + 2)),
            )
        };
        lo0 = _mm_add_pd(lo0, _mm_and_pd(_mm_cmplt_pd(b0, p), q0));
        lo1 = _mm_add_pd(lo1, _mm_and_pd(_mm_cmplt_pd(b1, p), q1));
        at0 = _mm_add_pd(at0, _mm_and_pd(_mm_cmpeq_pd(b0, p), q0));
        at1 = _mm_add_pd(at1, _mm_and_pd(_mm_cmpeq_pd(b1, p), q1));
        i += 4;
    }
    let mut below = [0.0f64; 4];
    let mut at = [0.0f64; 4];
    // SAFETY: each array has room for four f64.
    unsafe {
        _mm_storeu_pd(below.as_mut_ptr(), lo0);
        _mm_storeu_pd(below.as_mut_ptr().add(2), lo1);
        _mm_storeu_pd(at.as_mut_ptr(), at0);
        _mm_storeu_pd(at.as_mut_ptr().add(2), at1);
    }
    (below, at)
}

/// Shares below this lose precision when multiplied by a quantity.
const TINY: f64 = 1e-280;

/// Move the keys priced below `pivot` to the front, without branches.
/// Returns how many there are and their units.
fn partition_below(keys: &mut [(f64, i64)], pivot: f64) -> (usize, i64) {
    let mut k = 0;
    let mut sum = 0;
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
fn partition_at_most(keys: &mut [(f64, i64)], pivot: f64) -> (usize, i64) {
    let mut k = 0;
    let mut sum = 0;
    for i in 0..keys.len() {
        let x = keys[i];
        keys.swap(i, k);
        let hit = x.0 <= pivot;
        sum += masked(x.1, hit);
        k += hit as usize;
    }
    (k, sum)
}

/// `x` where `keep` holds, else 0, without a branch (random data would make
/// a branch mispredict half the time).
#[inline(always)]
fn masked(x: i64, keep: bool) -> i64 {
    std::hint::select_unpredictable(keep, x, 0)
}

/// Histograms that consecutive offers are dealt over, so that runs of offers
/// in one bucket (e.g. sorted input) do not wait on each other's stores.
pub(super) const HISTS: usize = 4;

/// The marginal price, or `None` in a shortage. Offers fall into equal-width
/// price buckets over `[lo, hi]`; one pass adds up each bucket's units, a
/// scan finds the bucket where cumulative supply meets demand, and a second
/// pass gathers that bucket's offers for [`select_marginal`]. Bucket order
/// is merit order, so the bucket brackets the answer.
fn select_by_buckets(
    bids: &[f64],
    quantities: &[f64],
    units: &Units,
    summary: &Summary,
    ws: &mut Workspace,
) -> Option<f64> {
    let n = bids.len();
    let nb = bucket_count(n);
    let buckets = if n > 2 * SMALL {
        Buckets::new(summary.lo, summary.hi, nb)
    } else {
        None
    };
    let Some(buckets) = buckets else {
        // Few offers or one price: select over all offers.
        let keys = grow(&mut ws.keys, n);
        let mut total = 0;
        for (k, (&b, &q)) in keys.iter_mut().zip(bids.iter().zip(quantities)) {
            let u = units.of(q);
            *k = (b, u);
            total += u;
        }
        if !units.met(total) {
            return None;
        }
        return Some(select_marginal(keys, units, 0));
    };
    let slots = grow(&mut ws.slots, n);
    buckets.fill(bids, slots);
    // hist[bucket * HISTS + lane]: offer i adds to lane i % HISTS.
    ws.hist.clear();
    ws.hist.resize(HISTS * nb, 0);
    let hist = &mut ws.hist[..];
    let sc = slots.chunks_exact(HISTS);
    let qc = quantities.chunks_exact(HISTS);
    let (sr, qr) = (sc.remainder(), qc.remainder());
    for (s, q) in sc.zip(qc) {
        for lane in 0..HISTS {
            hist[s[lane] as usize * HISTS + lane] += units.of(q[lane]);
        }
    }
    for (lane, (&s, &q)) in sr.iter().zip(qr).enumerate() {
        hist[s as usize * HISTS + lane] += units.of(q);
    }
    let mut below = 0;
    let mut marginal = None;
    for (j, h) in hist.chunks_exact(HISTS).enumerate() {
        let t = (h[0] + h[1]) + (h[2] + h[3]);
        if units.met(below + t) {
            marginal = Some(j as u32);
            break;
        }
        below += t;
    }
    let k = marginal?;
    // The marginal bucket's offers: about one offer in `nb`, so test 8 slots
    // at once (SIMD compares) and look closer only at blocks with a hit.
    let keys = grow(&mut ws.keys, n);
    let mut len = 0;
    let mut take = |i: usize| {
        if let (Some(slot), Some(&b), Some(&q)) =
            (keys.get_mut(len), bids.get(i), quantities.get(i))
        {
            *slot = (b, units.of(q));
            len += 1;
        }
    };
    const BLOCK: usize = 8;
    let blocks = slots.chunks_exact(BLOCK);
    let rest = blocks.remainder();
    for (c, block) in blocks.enumerate() {
        if block.iter().fold(false, |hit, &s| hit | (s == k)) {
            for (j, &s) in block.iter().enumerate() {
                if s == k {
                    take(c * BLOCK + j);
                }
            }
        }
    }
    for (j, &s) in rest.iter().enumerate() {
        if s == k {
            take(n - rest.len() + j);
        }
    }
    Some(select_marginal(&mut keys[..len], units, below))
}

/// Weighted quickselect: the lowest price at which `below` plus the units of
/// the keys (price, units) priced at most that price meet the demand.
/// Requires that all keys together meet it; reorders `keys`.
///
/// Expected O(N): each round partitions the part of the keys that can still
/// hold the answer around a pivot and keeps one side. Every round must make
/// progress; should it not (which only a NaN price can cause, and validation
/// excludes), or should the round budget run out, the rest is sorted, so the
/// loop ends on any input.
fn select_marginal(keys: &mut [(f64, i64)], units: &Units, below: i64) -> f64 {
    let (mut lo, mut hi) = (0usize, keys.len());
    // Units of all keys left of `lo` (and of all offers below `keys`); all
    // of them are priced below keys[lo..hi].
    let mut acc = below;
    // A fixed-seed xorshift picks pivots: expected O(N) on any input, and the
    // result stays a pure function of the input.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rounds = 2 * usize::BITS as usize + keys.len();
    loop {
        let len = hi - lo;
        if len <= SMALL || rounds == 0 {
            return scan_sorted(&mut keys[lo..hi], units, acc);
        }
        rounds -= 1;
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
        if units.met(acc + sum_lt) && lt > lo {
            hi = lt;
            continue;
        }
        let (k2, sum_eq) = partition_at_most(&mut keys[lt..hi], pivot);
        let gt = lt + k2;
        if units.met(acc + sum_lt + sum_eq) || gt == hi {
            return pivot;
        }
        debug_assert!(gt > lo, "selection made no progress (NaN price?)");
        if gt == lo {
            return scan_sorted(&mut keys[lo..hi], units, acc);
        }
        acc += sum_lt + sum_eq;
        lo = gt;
    }
}

/// Sort a short segment and scan it in merit order. The last price is the
/// answer when none meets the demand (broken preconditions only).
fn scan_sorted(seg: &mut [(f64, i64)], units: &Units, mut below: i64) -> f64 {
    insertion_sort_by_price(seg);
    let mut i = 0;
    while i < seg.len() {
        let p = seg[i].0;
        let mut j = i;
        while j < seg.len() && seg[j].0 == p {
            below += seg[j].1;
            j += 1;
        }
        if units.met(below) || j == seg.len() {
            return p;
        }
        // A NaN never equals itself: step past it.
        i = j.max(i + 1);
    }
    f64::NAN
}

pub(super) fn median3(a: f64, b: f64, c: f64) -> f64 {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A NaN price cannot reach the selection through the API (validation),
    /// but the loop must end on it all the same: debug builds stop at the
    /// assertion, release builds terminate with some price.
    #[test]
    #[cfg_attr(debug_assertions, should_panic(expected = "no progress"))]
    fn selection_terminates_on_nan_prices() {
        let units = Units::new(1.0, 100, 1000.0);
        let mut keys: Vec<(f64, i64)> = (0..100).map(|_| (f64::NAN, units.of(1.0))).collect();
        let _ = select_marginal(&mut keys, &units, 0);
        let mut keys: Vec<(f64, i64)> = (0..100)
            .map(|i| (if i % 3 == 0 { f64::NAN } else { i as f64 }, units.of(1.0)))
            .collect();
        let _ = select_marginal(&mut keys, &units, 0);
    }

    #[test]
    fn sse2_and_portable_lanes_give_the_same_bits() {
        #[cfg(target_arch = "x86_64")]
        {
            let mut state = 7u64;
            let mut next = || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 11) as f64 / (1u64 << 53) as f64
            };
            for n in [4usize, 8, 12, 64, 400] {
                for _ in 0..50 {
                    let b: Vec<f64> = (0..n).map(|_| (next() * 8.0).floor()).collect();
                    let q: Vec<f64> = (0..n).map(|_| next() * 1e3).collect();
                    let p = b[n / 2];
                    // SAFETY: SSE2 is part of the x86_64 baseline.
                    let fast = unsafe { lanes_sse2(&b, &q, p) };
                    let plain = lanes_portable(&b, &q, p);
                    for lane in 0..4 {
                        assert_eq!(fast.0[lane].to_bits(), plain.0[lane].to_bits());
                        assert_eq!(fast.1[lane].to_bits(), plain.1[lane].to_bits());
                    }
                }
            }
        }
    }

    #[test]
    fn selection_matches_a_sort() {
        let units = Units::new(9.0, 300, 700.0);
        let mut keys: Vec<(f64, i64)> = (0..300)
            .map(|i| (((i * 7919) % 101) as f64, units.of((i % 10) as f64)))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
        let mut acc = 0;
        let want = sorted
            .iter()
            .find(|k| {
                acc += k.1;
                units.met(acc)
            })
            .unwrap()
            .0;
        assert_eq!(select_marginal(&mut keys, &units, 0), want);
    }
}
