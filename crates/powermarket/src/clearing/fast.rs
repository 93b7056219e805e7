//! The float filter in front of the exact decision of [`super::units`].
//!
//! The price is decided by exact unit sums. Most problems are far from any
//! boundary, though, and there plain float sums give the same answer: this
//! module's bounds let the caller take the candidate price found with float
//! weights ([`super::select`], as fast as a float clearing can be): [`certain`] proves,
//! with a bound on every rounding involved, that the exact rule picks the
//! same price. Only when it cannot (demand within about 1e-12 of a
//! cumulative step, or extreme magnitudes) does the exact path run.

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
    let upto = below + at;
    // The margin grows with the sum, and `upto >= below`: the margin of
    // `upto` covers both sides.
    let m = margin(n as f64, qmax, upto, demand);
    upto - m >= d && below + m < d
}

/// True when the float total is certainly short of the exact target.
pub(super) fn certainly_short(n: usize, qmax: f64, demand: f64, total: f64) -> bool {
    qmax >= f64::MIN_POSITIVE && total + margin(n as f64, qmax, total, demand) < threshold(demand)
}
