//! The one summation that decides whether supply meets demand.
//!
//! Every quantity `q` (MW) becomes an integer number of units of `2^-k` MW,
//! truncated toward zero; `k` is chosen from the largest quantity and the
//! number of offers so that any sum of units fits in 62 bits. Integer sums
//! are exact, so a sum of units does not depend on the order of the terms:
//! the price is the same under every tie rule, algorithm and architecture.
//!
//! Demand `D > 0` becomes `D_u = max(1, ceil(D * 2^k))` units. Supply `S`
//! meets demand when `S_u >= max(1, D_u - max(N, floor(D_u / 2^40)))`: a
//! relative tolerance of 2^-40 (about 9.1e-13), but never less than N units
//! (what truncating N quantities can lose), so that a demand computed as a
//! float sum of the capacities counts as met by them.

/// log2 of the inverse relative tolerance of "supply meets demand".
pub const TOLERANCE_BITS: u32 = 40;

/// 2^63 as a float.
const TWO_63: f64 = 9_223_372_036_854_775_808.0;

/// Sums of units stay below 2^62.
const TOTAL_BITS: i32 = 62;

/// Fixed-point scale of one clearing problem.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Units {
    /// `2^k = s1 * s2` (two factors, since `2^k` alone may not be a finite f64).
    s1: f64,
    s2: f64,
    /// Supply (in units) that meets the demand.
    pub target: i64,
}

/// `2^e` for `e` in [-1022, 1023].
fn pow2(e: i32) -> f64 {
    debug_assert!((-1022..=1023).contains(&e));
    f64::from_bits(((e + 1023) as u64) << 52)
}

/// `floor(log2(x)) + 1` for finite `x > 0`: `x < 2^(result)`.
fn exponent_bound(x: f64) -> i32 {
    let biased = ((x.to_bits() >> 52) & 0x7ff) as i32;
    if biased == 0 {
        // Subnormal: below 2^-1022.
        -1022
    } else {
        biased - 1023 + 1
    }
}

impl Units {
    /// The scale for `n` offers whose largest quantity is `qmax`, and the
    /// target for `demand` (all finite, >= 0).
    pub fn new(qmax: f64, n: usize, demand: f64) -> Units {
        let k = if qmax > 0.0 && qmax.is_finite() {
            let log_n = usize::BITS - n.saturating_sub(1).leading_zeros();
            TOTAL_BITS - exponent_bound(qmax) - log_n as i32
        } else {
            0
        };
        let k1 = k.clamp(-1022, 1023);
        let (s1, s2) = (pow2(k1), pow2((k - k1).clamp(-1022, 1023)));
        let demand_units = if demand > 0.0 {
            let x = demand * s1 * s2;
            if x >= TWO_63 {
                // Beyond the range: beyond any supply.
                i64::MAX
            } else {
                // ceil without libm (x86_64's baseline has no round instruction).
                let t = x as i64;
                (t + ((t as f64) < x) as i64).max(1)
            }
        } else {
            0
        };
        // The tolerance: relative 2^-40, but never less than N units (what
        // truncating N quantities can lose), and some supply is always needed.
        let tolerance = (demand_units >> TOLERANCE_BITS).max(n as i64);
        let target = if demand_units > 0 {
            (demand_units - tolerance).max(1)
        } else {
            0
        };
        Units { s1, s2, target }
    }

    /// Units of a quantity (truncated toward zero). For a valid quantity
    /// (finite, 0 <= q <= qmax) the value is below 2^62, where the x86_64
    /// instruction and Rust's `as` agree; for anything else the result is
    /// unspecified but defined.
    #[inline(always)]
    pub fn of(&self, q: f64) -> i64 {
        let x = q * self.s1;
        // The second factor is 1 unless the largest quantity is below 2^-961.
        let x = if self.s2 == 1.0 { x } else { x * self.s2 };
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_cvttsd_si64, _mm_set_sd};
            // SAFETY: SSE2 is part of the x86_64 baseline.
            unsafe { _mm_cvttsd_si64(_mm_set_sd(x)) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            x as i64
        }
    }

    /// True when `supply` units meet the demand.
    #[inline(always)]
    pub fn met(&self, supply: i64) -> bool {
        supply >= self.target
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_fit_and_are_exact() {
        for (qmax, n) in [
            (1.0, 1),
            (150.0, 5),
            (1e308, 2),
            (f64::MIN_POSITIVE / 8.0, 3),
            (3e-300, 1000),
            (f64::MAX, 1),
        ] {
            let u = Units::new(qmax, n, qmax);
            let one = u.of(qmax);
            assert!(one > 0, "qmax {qmax}");
            assert!(
                (one as i128) * (n as i128) < 1i128 << 62,
                "qmax {qmax} n {n}"
            );
        }
    }

    #[test]
    fn tolerance_is_relative() {
        let u = Units::new(10.0, 2, 20.0);
        let target = u.target;
        let d = u.of(20.0);
        assert!(target < d && d - target == (d >> TOLERANCE_BITS).max(2));
        // Demand one ulp above a sum of capacities is met by them.
        let total = 0.1 + 0.2;
        let u = Units::new(0.2, 2, 0.30000000000000004);
        assert!(u.met(u.of(0.1) + u.of(0.2)), "{total}");
        // Tiny positive demand needs at least one unit of supply.
        let u = Units::new(1e30, 1, 1e-300);
        assert_eq!(u.target, 1);
        assert!(!u.met(0));
        assert_eq!(Units::new(5.0, 3, 0.0).target, 0);
    }
}
