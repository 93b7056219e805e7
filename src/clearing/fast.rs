//! The float filter in front of the exact decision of [`super::units`].
//!
//! The price is decided by exact unit sums. Most problems are far from any
//! boundary, though, and there plain float sums give the same answer: this
//! module finds the candidate price with float sums (buckets and a weighted
//! quickselect, as fast as a float clearing can be) and [`certain`] proves,
//! with a bound on every rounding involved, that the exact rule picks the
//! same price. Only when it cannot (demand within about 1e-12 of a
//! cumulative step, or extreme magnitudes) does the exact path run.

use super::pro_rata::{median3, HISTS};
use super::{bucket_count, grow, insertion_sort_by_price, Buckets, Summary, Workspace, SMALL};

/// Float margin that covers every rounding between float sums and the exact
/// rule: the float sum of N non-negative terms (relative error below
/// N 2^-53), the truncation of N quantities to units of at most
/// N qmax 2^-60 MW, and the rounding of the demand target. Generous by a
/// factor of 4 or more, so the rounding of this formula itself is covered.
fn margin(n: f64, qmax: f64, supply: f64, demand: f64) -> f64 {
    n * (supply + demand) * (1.0 / (1u64 << 50) as f64)
        + (n + 2.0) * n * qmax * (1.0 / (1u64 << 58) as f64)
}

/// The demand that the exact rule's target corresponds to: D (1 - 2^-40).
pub(super) fn threshold(demand: f64) -> f64 {
    demand - demand * (1.0 / (1u64 << super::units::TOLERANCE_BITS) as f64)
}

/// True when float sums `below` (offers priced under the candidate) and
/// `below + at` (at most the candidate) are far enough on either side of the
/// threshold that the exact rule must agree: the supply at the candidate
/// meets the demand and the supply below it does not.
pub(super) fn certain(n: usize, qmax: f64, demand: f64, below: f64, at: f64) -> bool {
    if qmax.is_nan() || qmax < f64::MIN_POSITIVE {
        return false;
    }
    let d = threshold(demand);
    let n = n as f64;
    let upto = below + at;
    upto - margin(n, qmax, upto, demand) >= d && below + margin(n, qmax, below, demand) < d
}

/// True when the float total is certainly short of the exact target.
pub(super) fn certainly_short(n: usize, qmax: f64, demand: f64, total: f64) -> bool {
    qmax >= f64::MIN_POSITIVE && total + margin(n as f64, qmax, total, demand) < threshold(demand)
}

/// The marginal price with the quantity offered below it and at it.
pub(super) struct Marginal {
    pub price: f64,
    pub below: f64,
    pub at: f64,
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

/// Histograms that the pro_rata pass deals consecutive offers over, so that
/// runs of offers in one bucket (e.g. sorted input) do not wait on each
/// other's store-to-load forwarding.
/// quantity, a scan finds the bucket where cumulative supply reaches
/// `demand`, and a second pass gathers that bucket's offers for
/// [`select_marginal`]. Bucket order is merit order, so the bucket brackets
/// the answer.
pub(super) fn select_by_buckets(
    bids: &[f64],
    quantities: &[f64],
    demand: f64,
    summary: &Summary,
    ws: &mut Workspace,
) -> Marginal {
    let n = bids.len();
    let nb = bucket_count(n);
    let buckets = if n > 2 * SMALL {
        Buckets::new(summary.lo, summary.hi, nb)
    } else {
        None
    };
    let Some(buckets) = buckets else {
        // Few offers or one price: quickselect over all offers.
        let keys = grow(&mut ws.small, n);
        for (k, (&b, &q)) in keys.iter_mut().zip(bids.iter().zip(quantities)) {
            *k = (b, q);
        }
        return select_marginal(keys, demand, 0.0);
    };
    let slots = grow(&mut ws.slots, n);
    buckets.fill(bids, slots);
    // hist[bucket * HISTS + lane]: offer i adds to lane i % HISTS.
    ws.hist_f.clear();
    ws.hist_f.resize(HISTS * nb, 0.0);
    let hist = &mut ws.hist_f[..];
    let sc = slots.chunks_exact(HISTS);
    let qc = quantities.chunks_exact(HISTS);
    let (sr, qr) = (sc.remainder(), qc.remainder());
    for (s, q) in sc.zip(qc) {
        for lane in 0..HISTS {
            hist[s[lane] as usize * HISTS + lane] += q[lane];
        }
    }
    for (lane, (&s, &q)) in sr.iter().zip(qr).enumerate() {
        hist[s as usize * HISTS + lane] += q;
    }
    let mut below = 0.0;
    let mut k = 0;
    for (j, h) in hist.chunks_exact(HISTS).enumerate() {
        let t = (h[0] + h[1]) + (h[2] + h[3]);
        k = j;
        // The top bucket is the marginal one whatever the rounding: the
        // caller checked supply >= demand with a differently ordered sum, and
        // `below` must not include the bucket that goes on to the selection.
        if below + t >= demand || j + 1 == nb {
            break;
        }
        below += t;
    }
    // The marginal bucket's offers (the top bucket's if rounding ran past
    // it): about one offer in `nb`, so test 8 slots at once (SIMD compares)
    // and look closer only at blocks with a hit.
    let k = k as u32;
    let keys = grow(&mut ws.small, n);
    let mut len = 0;
    let mut take = |i: usize| {
        if let (Some(slot), Some(&b), Some(&q)) =
            (keys.get_mut(len), bids.get(i), quantities.get(i))
        {
            *slot = (b, q);
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
    select_marginal(&mut keys[..len], demand, below)
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
    let mut rounds = 2 * usize::BITS as usize + keys.len();
    loop {
        let len = hi - lo;
        if len <= SMALL || rounds == 0 {
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
                i = j.max(i + 1);
            }
            // Only an empty input (broken preconditions) gets here.
            return Marginal {
                price: f64::NAN,
                below,
                at: 0.0,
            };
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
        if gt == lo {
            // No progress (a NaN price): sort the rest.
            rounds = 0;
            continue;
        }
        acc += sum_lt + sum_eq;
        lo = gt;
    }
}
