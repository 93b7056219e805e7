//! Weighted selection of the marginal price, shared by the exact decision
//! (weights in integer units, [`super::units`]) and the float filter
//! (weights in MW, [`super::fast`]): the lowest price at which the weights
//! of the offers priced at most that price meet the demand, found without a
//! full sort in expected O(N).

use super::{bucket_count, grow, insertion_sort_by_price, Buckets, Summary, SMALL};
use std::ops::{Add, AddAssign};

/// What an offer weighs in the selection: exact units (`i64`) or MW (`f64`).
pub(super) trait Weight: Copy + Default + Add<Output = Self> + AddAssign {}
impl Weight for f64 {}
impl Weight for i64 {}

/// The marginal price with the weight offered below it and at it.
pub(super) struct Marginal<W> {
    pub price: f64,
    pub below: W,
    pub at: W,
}

/// Histograms that consecutive offers are dealt over, so that runs of offers
/// in one bucket (e.g. sorted input) do not wait on each other's stores.
pub(super) const HISTS: usize = 4;

/// The marginal price, or `None` when all offers together do not meet the
/// demand (`met` on their total weight). Offers weigh `weigh(quantity)`.
/// With `check_total` false the caller vouches that the total meets the
/// demand, and the few-offers path skips adding it up (a float total is a
/// chain of dependent adds); should it fall short after all, the last price
/// comes back with weights that do not meet the demand.
///
/// Offers fall into equal-width price buckets over `[lo, hi]`; one pass adds
/// up each bucket's weight, a scan finds the bucket where the cumulative
/// weight meets the demand, and a second pass gathers that bucket's offers
/// for [`select_marginal`]. Bucket order is merit order, so the bucket
/// brackets the answer. Few offers, or a single price, go to the selection
/// directly.
#[allow(clippy::too_many_arguments)]
#[inline]
pub(super) fn select_by_buckets<W: Weight>(
    bids: &[f64],
    quantities: &[f64],
    summary: &Summary,
    slots: &mut Vec<u32>,
    hist: &mut Vec<W>,
    keys: &mut Vec<(f64, W)>,
    weigh: impl Fn(f64) -> W,
    met: impl Fn(W) -> bool + Copy,
    check_total: bool,
) -> Option<Marginal<W>> {
    let n = bids.len();
    let nb = bucket_count(n);
    let buckets = if n > 2 * SMALL {
        Buckets::new(summary.lo, summary.hi, nb)
    } else {
        None
    };
    let Some(buckets) = buckets else {
        let keys = grow(keys, n);
        for (k, (&b, &q)) in keys.iter_mut().zip(bids.iter().zip(quantities)) {
            *k = (b, weigh(q));
        }
        if check_total && !met(keys.iter().fold(W::default(), |t, k| t + k.1)) {
            return None;
        }
        return Some(select_marginal(keys, W::default(), met));
    };
    let slots = grow(slots, n);
    buckets.fill(bids, slots);
    // hist[bucket * HISTS + lane]: offer i adds to lane i % HISTS.
    hist.clear();
    hist.resize(HISTS * nb, W::default());
    let sc = slots.chunks_exact(HISTS);
    let qc = quantities.chunks_exact(HISTS);
    let (sr, qr) = (sc.remainder(), qc.remainder());
    for (s, q) in sc.zip(qc) {
        for lane in 0..HISTS {
            hist[s[lane] as usize * HISTS + lane] += weigh(q[lane]);
        }
    }
    for (lane, (&s, &q)) in sr.iter().zip(qr).enumerate() {
        hist[s as usize * HISTS + lane] += weigh(q);
    }
    let mut below = W::default();
    let mut marginal = None;
    for (j, h) in hist.chunks_exact(HISTS).enumerate() {
        let t = (h[0] + h[1]) + (h[2] + h[3]);
        if met(below + t) {
            marginal = Some(j as u32);
            break;
        }
        below += t;
    }
    let k = marginal?;
    // The marginal bucket's offers: about one offer in `nb`, so test 8 slots
    // at once (SIMD compares) and look closer only at blocks with a hit.
    let keys = grow(keys, n);
    let mut len = 0;
    let mut take = |i: usize| {
        if let (Some(slot), Some(&b), Some(&q)) =
            (keys.get_mut(len), bids.get(i), quantities.get(i))
        {
            *slot = (b, weigh(q));
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
    Some(select_marginal(&mut keys[..len], below, met))
}

/// Weighted quickselect: the lowest price at which `below` plus the weights
/// of the keys (price, weight) priced at most that price meet the demand,
/// with the weight below that price and at it. Requires that all keys
/// together meet it (otherwise the last price is returned); reorders `keys`.
///
/// Expected O(N): each round partitions the part of the keys that can still
/// hold the answer around a pivot and keeps one side. Every round must make
/// progress; should it not (which only a NaN price can cause, and validation
/// excludes), or should the round budget run out, the rest is sorted, so the
/// loop ends on any input.
#[inline]
pub(super) fn select_marginal<W: Weight>(
    keys: &mut [(f64, W)],
    below: W,
    met: impl Fn(W) -> bool + Copy,
) -> Marginal<W> {
    let (mut lo, mut hi) = (0usize, keys.len());
    // Weight of all keys left of `lo` (and of all offers below `keys`); all
    // of them are priced below keys[lo..hi].
    let mut acc = below;
    // A fixed-seed xorshift picks pivots: expected O(N) on any input, and the
    // result stays a pure function of the input.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rounds = 2 * usize::BITS as usize + keys.len();
    loop {
        let len = hi - lo;
        if len <= SMALL || rounds == 0 {
            return scan_sorted(&mut keys[lo..hi], acc, met);
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
        let (k, sum_lt) = partition(&mut keys[lo..hi], |p| p < pivot);
        let lt = lo + k;
        if met(acc + sum_lt) && lt > lo {
            hi = lt;
            continue;
        }
        let (k2, sum_eq) = partition(&mut keys[lt..hi], |p| p <= pivot);
        let gt = lt + k2;
        if met(acc + sum_lt + sum_eq) || gt == hi {
            return Marginal {
                price: pivot,
                below: acc + sum_lt,
                at: sum_eq,
            };
        }
        debug_assert!(gt > lo, "selection made no progress (NaN price?)");
        if gt == lo {
            return scan_sorted(&mut keys[lo..hi], acc, met);
        }
        acc += sum_lt + sum_eq;
        lo = gt;
    }
}

/// Sort a short segment and scan it in merit order. The last price is the
/// answer when none meets the demand (broken preconditions only).
fn scan_sorted<W: Weight>(
    seg: &mut [(f64, W)],
    mut below: W,
    met: impl Fn(W) -> bool,
) -> Marginal<W> {
    insertion_sort_by_price(seg);
    let mut i = 0;
    while i < seg.len() {
        let p = seg[i].0;
        let mut at = W::default();
        let mut j = i;
        while j < seg.len() && seg[j].0 == p {
            at += seg[j].1;
            j += 1;
        }
        if met(below + at) || j == seg.len() {
            return Marginal {
                price: p,
                below,
                at,
            };
        }
        below += at;
        // A NaN never equals itself: step past it.
        i = j.max(i + 1);
    }
    Marginal {
        price: f64::NAN,
        below,
        at: W::default(),
    }
}

/// Move the keys whose price passes `hit` to the front, without branches.
/// Returns how many there are and their weight.
#[inline(always)]
fn partition<W: Weight>(keys: &mut [(f64, W)], hit: impl Fn(f64) -> bool) -> (usize, W) {
    let mut k = 0;
    let mut sum = W::default();
    for i in 0..keys.len() {
        let x = keys[i];
        keys.swap(i, k);
        let h = hit(x.0);
        // A select, not a branch: random data would mispredict half the time.
        sum += std::hint::select_unpredictable(h, x.1, W::default());
        k += h as usize;
    }
    (k, sum)
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

#[cfg(test)]
mod tests {
    use super::super::units::Units;
    use super::*;

    /// A NaN price cannot reach the selection through the API (validation),
    /// but the loop must end on it all the same: debug builds stop at the
    /// assertion, release builds terminate with some price.
    #[test]
    #[cfg_attr(debug_assertions, should_panic(expected = "no progress"))]
    fn selection_terminates_on_nan_prices() {
        let units = Units::new(1.0, 100, 1000.0);
        let met = |s| units.met(s);
        let mut keys: Vec<(f64, i64)> = (0..100).map(|_| (f64::NAN, units.of(1.0))).collect();
        let _ = select_marginal(&mut keys, 0, met);
        let mut keys: Vec<(f64, i64)> = (0..100)
            .map(|i| (if i % 3 == 0 { f64::NAN } else { i as f64 }, units.of(1.0)))
            .collect();
        let _ = select_marginal(&mut keys, 0, met);
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
        assert_eq!(select_marginal(&mut keys, 0, |s| units.met(s)).price, want);
    }
}
