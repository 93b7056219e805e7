//! `index`: the classic algorithm (stable argsort by price, cumulative sum,
//! first offer whose cumulative quantity reaches the demand) with the offers
//! at the marginal price served in index order. Whether demand is reached is
//! decided with the exact unit sums of [`super::units`], so the price equals
//! the `pro_rata` price; the quantities are the classic float ones.

use super::units::Units;
use super::{
    grow, index_bucket_count, insertion_sort_within, shortage, Buckets, Clearing, Rules, Summary,
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
    let sorted = grow(&mut ws.sorted, n);
    let buckets = if n > SMALL {
        Buckets::new(summary.lo, summary.hi, index_bucket_count(n))
    } else {
        None
    };
    match buckets {
        None => {
            for (i, (s, &b)) in sorted.iter_mut().zip(bids).enumerate() {
                *s = (b, i as u32);
            }
            sort_grouped(sorted);
        }
        Some(buckets) => {
            counting_sort(bids, &buckets, &mut ws.slots, &mut ws.bounds, sorted);
        }
    }
    // The float filter: the classic loop, whose answer is used only where it
    // provably equals the exact rule's (see `fast`).
    let threshold = super::fast::threshold(demand);
    let mut cum = 0.0;
    for (k, &(price, i)) in sorted.iter().enumerate() {
        let before = cum;
        let q = quantities.get(i as usize).copied().unwrap_or(0.0);
        cum += q;
        if cum >= threshold {
            if demand == 0.0 || super::fast::certain(n, summary.qmax, demand, before, q) {
                return served(quantities, cleared, sorted, k, demand, before, price);
            }
            break;
        }
    }
    if cum < threshold && super::fast::certainly_short(n, summary.qmax, demand, cum) {
        return shortage(quantities, summary.hi, rules, cleared);
    }
    let units = Units::new(summary.qmax, n, demand);
    let mut cum = 0.0;
    let mut cum_units = 0;
    for (k, &(price, i)) in sorted.iter().enumerate() {
        let i = i as usize;
        let before = cum;
        let q = quantities.get(i).copied().unwrap_or(0.0);
        cum += q;
        cum_units += units.of(q);
        if units.met(cum_units) {
            return served(quantities, cleared, sorted, k, demand, before, price);
        }
    }
    shortage(quantities, summary.hi, rules, cleared)
}

/// The offers sorted before position `k` clear fully, offer `k` serves the
/// rest of the demand (`before`: the float sum of those before it).
fn served(
    quantities: &[f64],
    cleared: &mut [f64],
    sorted: &[(f64, u32)],
    k: usize,
    demand: f64,
    before: f64,
    price: f64,
) -> Clearing {
    cleared.fill(0.0);
    for &(_, j) in &sorted[..k] {
        let j = j as usize;
        if let (Some(c), Some(&q)) = (cleared.get_mut(j), quantities.get(j)) {
            *c = q;
        }
    }
    let i = sorted[k].1 as usize;
    let q = quantities.get(i).copied().unwrap_or(0.0);
    // 0 <= cleared <= offered whatever the rounding.
    let marginal = (demand - before).max(0.0).min(q);
    if let Some(c) = cleared.get_mut(i) {
        *c = marginal;
    }
    Clearing {
        price,
        total: before + marginal,
        shortage: false,
    }
}

/// Stable sort of (price, index) into `sorted`: a counting sort into
/// merit-order price buckets (index order within a bucket), each offer
/// placed by insertion within its bucket. Prices bunched into few buckets
/// would make the insertions quadratic: past a linear budget of moves, the
/// rest is appended and everything sorted at the end.
fn counting_sort(
    bids: &[f64],
    buckets: &Buckets,
    slots: &mut Vec<u32>,
    bounds: &mut Vec<[u32; 2]>,
    sorted: &mut [(f64, u32)],
) {
    let n = bids.len();
    let nb = buckets.count();
    let slots = grow(slots, n);
    buckets.fill(bids, slots);
    // bounds[k] = [first, end) of bucket k in `sorted`.
    bounds.clear();
    bounds.resize(nb, [0; 2]);
    let bounds = &mut bounds[..];
    for &s in slots.iter() {
        bounds[s as usize][1] += 1;
    }
    let mut run = 0;
    for b in bounds.iter_mut() {
        let count = b[1];
        *b = [run, run];
        run += count;
    }
    let mut budget = 8 * n + 64;
    let mut ordered = true;
    for (i, (&s, &b)) in slots.iter().zip(bids).enumerate() {
        let [first, end] = bounds[s as usize];
        bounds[s as usize][1] = end + 1;
        let (first, mut j) = (first as usize, end as usize);
        if ordered {
            while j > first && sorted[j - 1].0 > b {
                sorted[j] = sorted[j - 1];
                j -= 1;
            }
            budget = budget.saturating_sub(end as usize - j);
            ordered = budget > 0;
        }
        sorted[j] = (b, i as u32);
    }
    if !ordered {
        sort_by_price_then_index(sorted);
    }
}

/// Stable sort of (price, offer index) pairs by price, for short input: an
/// insertion sort, or past a linear budget of moves an O(N log N) sort on
/// (price, index); either way -0.0 and 0.0 tie, as in NumPy.
fn sort_grouped(sorted: &mut [(f64, u32)]) {
    if !insertion_sort_within(sorted, 8 * sorted.len() + 64) {
        sort_by_price_then_index(sorted);
    }
}

/// O(N log N) sort on (price, index), which orders like a stable sort by price.
fn sort_by_price_then_index(sorted: &mut [(f64, u32)]) {
    sorted.sort_unstable_by(|a, b| {
        a.0.partial_cmp(&b.0)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.1.cmp(&b.1))
    });
}
