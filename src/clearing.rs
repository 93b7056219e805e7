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
    /// (price, quantity) of the offers that can still set the price.
    keys: Vec<(f64, f64)>,
    /// Price bucket of each offer.
    slots: Vec<u32>,
    /// Quantity per price bucket (pro_rata).
    hist: Vec<f64>,
    /// [first, end) of each bucket of the counting sort (index).
    bounds: Vec<[u32; 2]>,
    /// (price, offer index) grouped by bucket (index).
    sorted: Vec<(f64, u32)>,
}

impl Workspace {
    pub fn new() -> Self {
        Self::default()
    }

    /// A workspace already sized for `n` offers.
    pub fn with_capacity(n: usize) -> Self {
        Workspace {
            keys: Vec::with_capacity(n),
            slots: Vec::with_capacity(n),
            hist: Vec::with_capacity(HISTS * bucket_count(n)),
            bounds: Vec::with_capacity(index_bucket_count(n)),
            sorted: Vec::with_capacity(n),
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
    let n = bids.len().min(quantities.len());
    let (bids, quantities) = (&bids[..n], &quantities[..n]);
    #[cfg(target_arch = "x86_64")]
    {
        let head = n - n % 4;
        // SAFETY: SSE2 is part of the x86_64 baseline.
        let mut s = unsafe { summarize_sse2(&bids[..head], &quantities[..head]) };
        summarize_tail(&mut s, &bids[head..], &quantities[head..]);
        s
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let mut s = Summary {
            lo: f64::INFINITY,
            hi: f64::NEG_INFINITY,
            total: 0.0,
            valid: true,
        };
        summarize_tail(&mut s, bids, quantities);
        s
    }
}

/// Fold a few more offers into a summary, one at a time.
fn summarize_tail(s: &mut Summary, bids: &[f64], quantities: &[f64]) {
    for (&b, &q) in bids.iter().zip(quantities) {
        s.lo = if b < s.lo { b } else { s.lo };
        s.hi = if b > s.hi { b } else { s.hi };
        s.total += q;
        s.valid &= b.is_finite() && q.is_finite() && q >= 0.0;
    }
}

/// [`summarize`] four offers at a time with SSE2 (part of the x86_64
/// baseline): LLVM does not vectorise this loop well by itself. The length
/// must be a multiple of 4.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
fn summarize_sse2(bids: &[f64], quantities: &[f64]) -> Summary {
    use std::arch::x86_64::*;
    let n = bids.len().min(quantities.len()) / 4 * 4;
    let (bp, qp) = (bids.as_ptr(), quantities.as_ptr());
    let zero = _mm_setzero_pd();
    let (mut lo0, mut lo1) = (_mm_set1_pd(f64::INFINITY), _mm_set1_pd(f64::INFINITY));
    let (mut hi0, mut hi1) = (
        _mm_set1_pd(f64::NEG_INFINITY),
        _mm_set1_pd(f64::NEG_INFINITY),
    );
    let (mut tot0, mut tot1) = (zero, zero);
    // x * 0 is 0 for finite x and NaN for NaN or infinity.
    let (mut probe0, mut probe1) = (zero, zero);
    let (mut qmin0, mut qmin1) = (zero, zero);
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
        // minpd/maxpd return the second operand when either is NaN, so a
        // NaN price leaves lo/hi alone (and poisons the probe).
        lo0 = _mm_min_pd(b0, lo0);
        lo1 = _mm_min_pd(b1, lo1);
        hi0 = _mm_max_pd(b0, hi0);
        hi1 = _mm_max_pd(b1, hi1);
        tot0 = _mm_add_pd(tot0, q0);
        tot1 = _mm_add_pd(tot1, q1);
        probe0 = _mm_add_pd(
            probe0,
            _mm_add_pd(_mm_mul_pd(b0, zero), _mm_mul_pd(q0, zero)),
        );
        probe1 = _mm_add_pd(
            probe1,
            _mm_add_pd(_mm_mul_pd(b1, zero), _mm_mul_pd(q1, zero)),
        );
        qmin0 = _mm_min_pd(q0, qmin0);
        qmin1 = _mm_min_pd(q1, qmin1);
        i += 4;
    }
    let lanes = |v: __m128d| {
        let mut out = [0.0f64; 2];
        // SAFETY: `out` has room for two f64.
        unsafe { _mm_storeu_pd(out.as_mut_ptr(), v) };
        out
    };
    let [l0, l1] = lanes(_mm_min_pd(lo0, lo1));
    let [h0, h1] = lanes(_mm_max_pd(hi0, hi1));
    let [t0, t1] = lanes(_mm_add_pd(tot0, tot1));
    let [p0, p1] = lanes(_mm_add_pd(probe0, probe1));
    let [m0, m1] = lanes(_mm_min_pd(qmin0, qmin1));
    Summary {
        lo: l0.min(l1),
        hi: h0.max(h1),
        total: t0 + t1,
        valid: p0 + p1 == 0.0 && m0.min(m1) >= 0.0,
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
        TieRule::Index => clear_index(bids, quantities, demand, rules, ws, cleared, summary),
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

/// The first `n` elements of a scratch vector, growing it if needed (no
/// per-call fill once it is large enough).
fn grow<T: Copy + Default>(v: &mut Vec<T>, n: usize) -> &mut [T] {
    if v.len() < n {
        v.resize(n, T::default());
    }
    &mut v[..n]
}

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
    // max/min rather than clamp, which panics on a NaN bound (unchecked input).
    let residual = (demand - m.below).max(0.0).min(m.at);
    let share = if m.at > 0.0 { residual / m.at } else { 0.0 };
    let price = m.price;
    // Offers below clear fully, at the price take `share`; plain selects,
    // which the compiler turns into SIMD masks.
    for ((c, &b), &q) in cleared.iter_mut().zip(bids).zip(quantities) {
        let full = if b < price { q } else { 0.0 };
        let part = if b == price { q * share } else { 0.0 };
        *c = full + part;
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

/// Histograms that the pro_rata pass deals consecutive offers over, so that
/// runs of offers in one bucket (e.g. sorted input) do not wait on each
/// other's store-to-load forwarding.
const HISTS: usize = 4;

/// Number of price buckets for `n` offers (pro_rata: about 4 offers each).
fn bucket_count(n: usize) -> usize {
    (n / 4).clamp(8, 1024)
}

/// Number of price buckets of the index rule's counting sort (about one
/// offer each, so that few buckets need sorting).
fn index_bucket_count(n: usize) -> usize {
    n.clamp(8, 1 << 16)
}

/// Equal-width price buckets over `[lo, hi]`. The bucket of a price is
/// monotone in the price (equal prices, -0.0 and 0.0 included, share one), so
/// buckets in order hold the offers in merit order.
#[derive(Clone, Copy, Debug)]
struct Buckets {
    lo: f64,
    scale: f64,
    top: f64,
}

impl Buckets {
    /// `None` for a single price or a range too wide or narrow for finite
    /// bucket arithmetic.
    fn new(lo: f64, hi: f64, count: usize) -> Option<Self> {
        let width = hi - lo;
        let scale = count as f64 / width;
        (width > 0.0 && width.is_finite() && scale.is_finite()).then_some(Buckets {
            lo,
            scale,
            top: count.saturating_sub(1) as f64,
        })
    }

    /// The bucket of every price, in one SIMD-friendly pass.
    fn fill(&self, bids: &[f64], slots: &mut [u32]) {
        let (lo, scale, top) = (self.lo, self.scale, self.top);
        for (s, &b) in slots.iter_mut().zip(bids) {
            let x = (b - lo) * scale;
            // Selects, not clamp: a NaN (unvalidated input) lands in 0.
            let x = if x > 0.0 { x } else { 0.0 };
            let x = if x < top { x } else { top };
            // SAFETY: x is in [0, top] and top < 2^31 (bucket counts are small).
            *s = unsafe { x.to_int_unchecked::<i32>() } as u32;
        }
    }
}

/// Find the marginal price before any data moves. Offers fall into
/// equal-width price buckets over `[lo, hi]`; one pass adds up each bucket's
/// quantity, a scan finds the bucket where cumulative supply reaches
/// `demand`, and a second pass gathers that bucket's offers for
/// [`select_marginal`]. Bucket order is merit order, so the bucket brackets
/// the answer.
fn select_by_buckets(
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
        let keys = grow(&mut ws.keys, n);
        for (k, (&b, &q)) in keys.iter_mut().zip(bids.iter().zip(quantities)) {
            *k = (b, q);
        }
        return select_marginal(keys, demand, 0.0);
    };
    let slots = grow(&mut ws.slots, n);
    buckets.fill(bids, slots);
    // hist[bucket * HISTS + lane]: offer i adds to lane i % HISTS.
    ws.hist.clear();
    ws.hist.resize(HISTS * nb, 0.0);
    let hist = &mut ws.hist[..];
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
    let keys = grow(&mut ws.keys, n);
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
            // Only an empty input (broken preconditions) gets here.
            return Marginal {
                price: f64::NAN,
                below,
                at: 0.0,
            };
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
    insertion_sort_within(seg, usize::MAX);
}

/// Stable insertion sort of (price, payload) pairs by price. Gives up (and
/// returns false) once more than `budget` moves were made.
fn insertion_sort_within<T: Copy>(seg: &mut [(f64, T)], mut budget: usize) -> bool {
    for i in 1..seg.len() {
        let x = seg[i];
        let mut j = i;
        while j > 0 && seg[j - 1].0 > x.0 {
            seg[j] = seg[j - 1];
            j -= 1;
        }
        seg[j] = x;
        budget = budget.saturating_sub(i - j);
        if budget == 0 {
            return false;
        }
    }
    true
}

/// Stable sort of (price, offer index) pairs by price, for input that is
/// already grouped into merit-order buckets (or short): an insertion sort,
/// which moves each pair only within its bucket. Should the moves exceed a
/// linear budget (prices bunched in few buckets), an O(N log N) sort on
/// (price, index) finishes the job; either way -0.0 and 0.0 tie, as in NumPy.
fn sort_grouped(sorted: &mut [(f64, u32)]) {
    if !insertion_sort_within(sorted, 8 * sorted.len() + 64) {
        sort_by_price_then_index(sorted);
    }
}

/// O(N log N) sort on (price, index), which orders like a stable sort by
/// price; -0.0 and 0.0 tie, as in NumPy.
fn sort_by_price_then_index(sorted: &mut [(f64, u32)]) {
    sorted.sort_unstable_by(|a, b| {
        a.0.partial_cmp(&b.0)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.1.cmp(&b.1))
    });
}

/// The classic algorithm, with the same result bit for bit: stable argsort
/// by price, sequential cumulative sum, first index whose cumulative sum
/// reaches the demand. The argsort is a counting sort into merit-order price
/// buckets (stable, so index order within a bucket) and an insertion sort
/// that fixes the order within buckets; the cumulative sum then runs in the
/// classic order until it reaches the demand.
fn clear_index(
    bids: &[f64],
    quantities: &[f64],
    demand: f64,
    rules: &Rules,
    ws: &mut Workspace,
    cleared: &mut [f64],
    summary: &Summary,
) -> Clearing {
    let n = bids.len();
    let nb = index_bucket_count(n);
    let buckets = if n > SMALL {
        Buckets::new(summary.lo, summary.hi, nb)
    } else {
        None
    };
    let sorted = grow(&mut ws.sorted, n);
    match buckets {
        None => {
            for (i, (s, &b)) in sorted.iter_mut().zip(bids).enumerate() {
                *s = (b, i as u32);
            }
            sort_grouped(sorted);
        }
        Some(buckets) => {
            let slots = grow(&mut ws.slots, n);
            buckets.fill(bids, slots);
            // bounds[k] = [first, end) of bucket k in `sorted`: count, then
            // prefix sums, then place each offer by insertion into its
            // bucket. Offers come in index order and move only past higher
            // prices, so equal prices keep index order (a stable sort).
            ws.bounds.clear();
            ws.bounds.resize(nb, [0; 2]);
            let bounds = &mut ws.bounds[..];
            for &s in slots.iter() {
                bounds[s as usize][1] += 1;
            }
            let mut run = 0;
            for b in bounds.iter_mut() {
                let count = b[1];
                *b = [run, run];
                run += count;
            }
            // Prices bunched into few buckets would make the insertions
            // quadratic: past a linear budget of moves, just append and
            // sort everything at the end.
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
    }
    let mut cum = 0.0;
    for (k, &(price, i)) in sorted.iter().enumerate() {
        let i = i as usize;
        let before = cum;
        let q = quantities.get(i).copied().unwrap_or(0.0);
        cum += q;
        if cum >= demand {
            cleared.fill(0.0);
            for &(_, j) in &sorted[..k] {
                let j = j as usize;
                if let (Some(c), Some(&q)) = (cleared.get_mut(j), quantities.get(j)) {
                    *c = q;
                }
            }
            // The clamp only guards the last ulp: 0 <= cleared <= offered.
            let marginal = (demand - before).max(0.0).min(q);
            if let Some(c) = cleared.get_mut(i) {
                *c = marginal;
            }
            return Clearing {
                price,
                total: before + marginal,
                shortage: false,
            };
        }
    }
    let hi = sorted.last().map_or(f64::NAN, |&(b, _)| b);
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
    fn demand_equal_to_supply_clears_everything() {
        // Rounding of the supply total differs between summation orders; the
        // last bucket must still be selected, not counted twice.
        let mut ws = Workspace::new();
        for n in [33usize, 40, 64, 100, 257] {
            for seed in 0..200u64 {
                let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(seed);
                let mut next = || rand::RngExt::random::<f64>(&mut rng);
                let b: Vec<f64> = (0..n).map(|_| 20.0 + 20.0 * next()).collect();
                let q: Vec<f64> = (0..n).map(|_| 0.1 + 3.7 * next()).collect();
                let d: f64 = q.iter().sum();
                let (c, x) = clear(&b, &q, d, &Rules::default(), &mut ws).unwrap();
                let total: f64 = x.iter().sum();
                assert!(
                    (total - d).abs() <= 1e-9 * d,
                    "n={n} seed={seed}: {total} vs {d}"
                );
                if !c.shortage {
                    let top = b.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    assert_eq!(c.price, top, "n={n} seed={seed}");
                }
            }
        }
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

    /// The classic algorithm written plainly: stable sort by price,
    /// sequential cumulative sum, first index whose sum reaches the demand.
    fn classic(b: &[f64], q: &[f64], d: f64) -> (f64, Vec<f64>) {
        let mut order: Vec<usize> = (0..b.len()).collect();
        order.sort_by(|&i, &j| b[i].partial_cmp(&b[j]).unwrap());
        let mut cum = 0.0;
        let mut x = vec![0.0; b.len()];
        for &i in &order {
            let before = cum;
            cum += q[i];
            if cum >= d {
                x[i] = d - before;
                return (b[i], x);
            }
            x[i] = q[i];
        }
        (b[*order.last().unwrap()], q.to_vec())
    }

    struct Rng(u64);
    impl Rng {
        fn unit(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// Random problems of many shapes: distinct, tied, clustered, sorted,
    /// signed-zero and zero-quantity prices, demand from 0 past the supply.
    fn problems() -> Vec<(Vec<f64>, Vec<f64>, f64)> {
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let mut out = Vec::new();
        for case in 0..1200 {
            let n = [1, 2, 3, 5, 16, 17, 33, 50, 200, 1000][case % 10];
            let kind = (case / 10) % 6;
            let mut b: Vec<f64> = (0..n)
                .map(|_| match kind {
                    0 => 100.0 * rng.unit(),
                    1 => (rng.unit() * 8.0).floor() * 5.0,
                    2 => {
                        if rng.unit() < 0.95 {
                            rng.unit() * 1e-9
                        } else {
                            1e6 * rng.unit()
                        }
                    }
                    3 => [0.0, -0.0, 1.0, -1.0][(rng.unit() * 4.0) as usize],
                    _ => 200.0 * rng.unit() - 100.0,
                })
                .collect();
            if kind == 4 {
                b.sort_by(|x, y| x.partial_cmp(y).unwrap());
            }
            let q: Vec<f64> = (0..n)
                .map(|_| {
                    let u = rng.unit();
                    if u < 0.1 {
                        0.0
                    } else {
                        10.0 * rng.unit()
                    }
                })
                .collect();
            let total: f64 = q.iter().sum();
            let frac = [0.0, 0.1, 0.5, 0.6, 0.999, 1.0, 1.2][case % 7];
            out.push((b, q, total * frac));
        }
        out
    }

    #[test]
    fn index_rule_matches_the_classic_algorithm_bit_for_bit() {
        let mut ws = Workspace::new();
        let rules = Rules {
            tie_rule: TieRule::Index,
            shortage_price: None,
        };
        for (b, q, d) in problems() {
            let (p_ref, x_ref) = classic(&b, &q, d);
            let (c, x) = clear(&b, &q, d, &rules, &mut ws).unwrap();
            assert_eq!(c.price.to_bits(), p_ref.to_bits(), "n {} d {d}", b.len());
            for (got, want) in x.iter().zip(&x_ref) {
                assert!(
                    (got - want).abs() <= 1e-12 * want.abs().max(1.0),
                    "{got} {want}"
                );
            }
        }
    }

    #[test]
    fn pro_rata_prices_match_and_ties_share_in_proportion() {
        let mut ws = Workspace::new();
        let rules = Rules::default();
        for (b, q, d) in problems() {
            // Whole quantities make every sum exact, so rounding cannot move
            // the marginal offer and both rules must agree on the price.
            let q: Vec<f64> = q.iter().map(|x| x.round()).collect();
            let total: f64 = q.iter().sum();
            let d = d.round();
            let (p_ref, _) = classic(&b, &q, d);
            let (c, x) = clear(&b, &q, d, &rules, &mut ws).unwrap();
            assert_eq!(c.price, p_ref, "n {} d {d}", b.len());
            let cleared: f64 = x.iter().sum();
            assert!((cleared - d.min(total)).abs() <= 1e-9 * total.max(1.0));
            let at: f64 = (0..b.len())
                .filter(|&i| b[i] == c.price)
                .map(|i| q[i])
                .sum();
            let below: f64 = (0..b.len()).filter(|&i| b[i] < c.price).map(|i| q[i]).sum();
            for i in 0..b.len() {
                let want = if c.shortage || b[i] < c.price {
                    q[i]
                } else if b[i] > c.price || at == 0.0 {
                    0.0
                } else {
                    q[i] * ((d - below).max(0.0) / at)
                };
                assert!(
                    (x[i] - want).abs() <= 1e-9 * q[i].max(1.0),
                    "{} {want}",
                    x[i]
                );
            }
        }
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
