//! `pro_rata`: the marginal price by a weighted selection in expected O(N),
//! then the offers at that price share the residual demand in proportion to
//! their quantities.

use super::fast;
use super::select::select_by_buckets;
use super::units::Units;
use super::{grow, insertion_sort_by_price, shortage, Clearing, Rules, Summary, Workspace, SMALL};

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
        let d = fast::threshold(demand);
        if summary.total >= d {
            let m = select_by_buckets(
                bids,
                quantities,
                summary,
                &mut ws.slots,
                &mut ws.hist_f,
                &mut ws.small,
                |q| q,
                |s| s >= d,
                // Checked above (on the float total); a sum short of it
                // fails the proof below.
                false,
            );
            if let Some(m) = m.filter(|m| fast::certain(n, summary.qmax, demand, m.below, m.at)) {
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
        select_by_buckets(
            bids,
            quantities,
            summary,
            &mut ws.slots,
            &mut ws.hist,
            &mut ws.keys,
            |q| units.of(q),
            |s| units.met(s),
            true,
        )
        .map(|m| (m.price, sums_below_and_at(bids, quantities, m.price)))
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
