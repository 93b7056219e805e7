//! Uniform-price, merit-order market clearing.
//!
//! Prices are in €/MWh, quantities and demand in MW (one hour, so MWh).
//! The marginal price `p*` is the lowest offer price at which the offers
//! priced at most `p*` meet the demand, as decided by the exact unit sums of
//! [`units`] (a relative tolerance of 2^-40). Offers below `p*` clear fully,
//! offers above clear nothing, and the offers at `p*` share what is left
//! according to the [`TieRule`]. When all offers together do not meet the
//! demand (a shortage) everything clears at the shortage price.
//!
//! Two algorithms sit behind one entry point, and give the same price:
//! - [`TieRule::ProRata`] (default, [`pro_rata`]) finds `p*` by a weighted
//!   quickselect in expected O(N), then makes two linear passes;
//! - [`TieRule::Index`] ([`index`]) reproduces the classic NumPy
//!   implementation (`argsort(kind="stable")`, `cumsum`,
//!   `searchsorted(side="left")`) outside the tolerance band.
//!
//! Neither allocates once its [`Workspace`] has grown to the problem size.

mod batch;
mod demand;
mod fast;
mod index;
pub mod mechanism;
mod pay_as_bid;
mod pro_rata;
mod select;
mod summary;
mod uniform;
pub mod units;

pub use batch::{clear_batch, clear_batch_with, BatchBids, BatchOut};
pub use demand::{
    clear_elastic_unchecked, group_bids, spread_served, validate_bids, validate_curve,
    validate_demand_total, DemandCurve,
};
pub use mechanism::{average_paid, Mechanism, Settlement};
use summary::{summarize, Summary};

use crate::error::{MarketError, Result};
use std::str::FromStr;

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
        name.parse()
    }

    pub fn name(self) -> &'static str {
        match self {
            TieRule::ProRata => "pro_rata",
            TieRule::Index => "index",
        }
    }
}

impl FromStr for TieRule {
    type Err = MarketError;

    fn from_str(name: &str) -> Result<Self> {
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
}

/// Market rules that shape the clearing.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Rules {
    pub tie_rule: TieRule,
    /// Price (€/MWh) in a shortage (supply < inelastic demand): a value of
    /// lost load. `None` means the highest offer price. A `price_cap`, when
    /// set, takes precedence.
    pub shortage_price: Option<f64>,
    /// Highest admissible price, €/MWh: offer and bid prices are clipped to
    /// it, and it is the price of a shortage.
    pub price_cap: Option<f64>,
    /// Lowest admissible price, €/MWh: offer and bid prices are clipped to it.
    pub price_floor: Option<f64>,
    /// What cleared offers are paid (dispatch does not depend on it).
    pub mechanism: Mechanism,
}

impl Rules {
    #[inline]
    pub fn validate(&self) -> Result<()> {
        let finite = |p: Option<f64>| p.is_none_or(f64::is_finite);
        let ordered = match (self.price_floor, self.price_cap) {
            (Some(lo), Some(hi)) => lo <= hi,
            _ => true,
        };
        if finite(self.shortage_price)
            && finite(self.price_cap)
            && finite(self.price_floor)
            && ordered
        {
            return Ok(());
        }
        for (arg, value) in [
            ("shortage_price", self.shortage_price),
            ("price_cap", self.price_cap),
            ("price_floor", self.price_floor),
        ] {
            if let Some(p) = value {
                if !p.is_finite() {
                    return Err(MarketError::BadScalar {
                        arg,
                        requirement: "must be finite (or None)",
                        value: p,
                    });
                }
            }
        }
        if let (Some(lo), Some(hi)) = (self.price_floor, self.price_cap) {
            if lo > hi {
                return Err(MarketError::Invalid {
                    arg: "price_floor",
                    message: format!("must be <= price_cap ({hi}), got {lo}"),
                });
            }
        }
        Ok(())
    }

    /// True when a cap or a floor is set.
    #[inline]
    pub fn has_limits(&self) -> bool {
        self.price_cap.is_some() || self.price_floor.is_some()
    }

    /// `price` clipped into `[price_floor, price_cap]` (a no-op without
    /// limits; -0.0 stays -0.0).
    #[inline(always)]
    pub fn clip(&self, price: f64) -> f64 {
        let p = match self.price_floor {
            Some(lo) if price < lo => lo,
            _ => price,
        };
        match self.price_cap {
            Some(hi) if p > hi => hi,
            _ => p,
        }
    }

    /// Clip every price in place (see [`Rules::clip`]).
    pub fn clip_all(&self, prices: &mut [f64]) {
        if self.has_limits() {
            for p in prices {
                *p = self.clip(*p);
            }
        }
    }

    /// The price of a shortage whose highest offer is `hi`: the cap, else the
    /// shortage price, else `hi`.
    #[inline]
    pub fn shortage_price_or(&self, hi: f64) -> f64 {
        self.price_cap.or(self.shortage_price).unwrap_or(hi)
    }
}

/// The outcome of one clearing; the per-offer quantities go to a caller's slice.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Clearing {
    /// Uniform clearing price, €/MWh.
    pub price: f64,
    /// Total cleared quantity, MW: `min(demand, total offered)` up to the
    /// tolerance of "demand is met" and rounding.
    pub total: f64,
    /// True when all offers together do not meet the demand.
    pub shortage: bool,
}

/// Reusable scratch memory, so that clearing does not allocate per call.
#[derive(Clone, Debug, Default)]
pub struct Workspace {
    /// (price, units) of the offers that can still set the price.
    keys: Vec<(f64, i64)>,
    /// Price bucket of each offer.
    slots: Vec<u32>,
    /// Units per price bucket and lane (pro_rata).
    hist: Vec<i64>,
    /// [first, end) of each bucket of the counting sort (index).
    bounds: Vec<[u32; 2]>,
    /// (price, offer index) grouped by bucket (index).
    sorted: Vec<(f64, u32)>,
    /// (price, quantity) keys of the float filter and of a few offers.
    small: Vec<(f64, f64)>,
    /// Float quantity per price bucket and lane (the float filter).
    hist_f: Vec<f64>,
    /// Demand levels per bid group (price-responsive demand).
    levels: Vec<f64>,
    /// Units of each offer (price-responsive demand).
    offer_units: Vec<i64>,
}

impl Workspace {
    /// An empty workspace (it grows on first use); `const`, so that it can
    /// initialise a thread-local without a lazy-init check.
    pub const fn new() -> Self {
        Workspace {
            keys: Vec::new(),
            slots: Vec::new(),
            hist: Vec::new(),
            bounds: Vec::new(),
            sorted: Vec::new(),
            small: Vec::new(),
            hist_f: Vec::new(),
            levels: Vec::new(),
            offer_units: Vec::new(),
        }
    }

    /// [`Workspace::with_capacity`], allocated fallibly: an error naming
    /// `what` instead of an abort when the memory cannot be had.
    pub fn try_with_capacity(n: usize, what: &'static str) -> crate::error::Result<Self> {
        fn reserve<T>(v: &mut Vec<T>, n: usize, what: &'static str) -> crate::error::Result<()> {
            v.try_reserve_exact(n)
                .map_err(|_| crate::error::MarketError::Memory {
                    what,
                    bytes: n.saturating_mul(std::mem::size_of::<T>()),
                })
        }
        let hist_len = select::HISTS.saturating_mul(bucket_count(n));
        let mut ws = Workspace::new();
        reserve(&mut ws.keys, n, what)?;
        reserve(&mut ws.slots, n, what)?;
        reserve(&mut ws.hist, hist_len, what)?;
        reserve(&mut ws.bounds, index_bucket_count(n), what)?;
        reserve(&mut ws.sorted, n, what)?;
        reserve(&mut ws.small, n, what)?;
        reserve(&mut ws.hist_f, hist_len, what)?;
        Ok(ws)
    }

    /// A workspace already sized for `n` offers.
    pub fn with_capacity(n: usize) -> Self {
        Workspace {
            keys: Vec::with_capacity(n),
            slots: Vec::with_capacity(n),
            hist: Vec::with_capacity(select::HISTS * bucket_count(n)),
            bounds: Vec::with_capacity(index_bucket_count(n)),
            sorted: Vec::with_capacity(n),
            small: Vec::with_capacity(n),
            hist_f: Vec::with_capacity(select::HISTS * bucket_count(n)),
            levels: Vec::new(),
            offer_units: Vec::new(),
        }
    }
}

/// Check one clearing problem; the first bad value is reported.
pub fn validate(bids: &[f64], quantities: &[f64], demand: f64, rules: &Rules) -> Result<()> {
    check(bids, quantities, demand, rules).map(|_| ())
}

#[inline(always)]
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
        if !(summary.qmax * bids.len() as f64).is_finite() {
            return Err(MarketError::Invalid {
                arg: "quantities",
                message: format!(
                    "N x the largest quantity ({} x {:e} MW) exceeds the float64 range; \
                     use quantities of ordinary magnitudes",
                    bids.len(),
                    summary.qmax
                ),
            });
        }
        return Ok(summary);
    }
    if let Some(index) = bids.iter().position(|b| !b.is_finite()) {
        return Err(MarketError::NotFinite {
            arg: "bids",
            index,
            value: bids[index],
        });
    }
    let index = quantities
        .iter()
        .position(|q| !(q.is_finite() && *q >= 0.0))
        .unwrap_or(0);
    let value = quantities[index];
    Err(if value.is_finite() {
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
    })
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
/// Inputs that break the preconditions give an unspecified (but memory-safe
/// and terminating) result; debug builds assert them.
#[inline]
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
    let mut c = match rules.tie_rule {
        TieRule::ProRata => pro_rata::clear(bids, quantities, demand, rules, ws, cleared, summary),
        TieRule::Index => index::clear(bids, quantities, demand, rules, ws, cleared, summary),
    };
    // -0.0 and 0.0 are one price; report it as 0.0 whichever offer set it.
    c.price += 0.0;
    c
}

/// Everything clears at the shortage price (or the highest offer `hi`).
fn shortage(quantities: &[f64], hi: f64, rules: &Rules, cleared: &mut [f64]) -> Clearing {
    cleared.copy_from_slice(quantities);
    Clearing {
        price: rules.shortage_price_or(hi),
        total: quantities.iter().sum(),
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

    fn count(&self) -> usize {
        self.top as usize + 1
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

pub(super) fn insertion_sort_by_price<T: Copy>(seg: &mut [(f64, T)]) {
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

#[cfg(test)]
mod tests;
