//! One fused pass over the offers: price range, largest and total quantity,
//! and whether every value is valid.

/// What the clearing needs to know about a book before it starts.
#[derive(Clone, Copy, Debug)]
pub struct Summary {
    /// Lowest and highest offer price, €/MWh.
    pub lo: f64,
    pub hi: f64,
    /// Largest quantity, MW.
    pub qmax: f64,
    /// Float sum of the quantities (order unspecified: never used to decide
    /// whether demand is met, see [`super::units`]).
    pub total: f64,
    /// Every price finite, every quantity finite and >= 0.
    pub valid: bool,
}

pub fn summarize(bids: &[f64], quantities: &[f64]) -> Summary {
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
        let mut s = EMPTY;
        summarize_tail(&mut s, bids, quantities);
        s
    }
}

#[cfg_attr(all(target_arch = "x86_64", not(test)), allow(dead_code))]
const EMPTY: Summary = Summary {
    lo: f64::INFINITY,
    hi: f64::NEG_INFINITY,
    qmax: 0.0,
    total: 0.0,
    valid: true,
};

/// Fold a few more offers into a summary, one at a time.
fn summarize_tail(s: &mut Summary, bids: &[f64], quantities: &[f64]) {
    for (&b, &q) in bids.iter().zip(quantities) {
        s.lo = if b < s.lo { b } else { s.lo };
        s.hi = if b > s.hi { b } else { s.hi };
        s.qmax = if q > s.qmax { q } else { s.qmax };
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
    let mut probe = zero;
    // All ones where some quantity was negative (kept to one register: the
    // loop must fit in the 16 xmm registers).
    let mut negative = zero;
    let (mut qmax0, mut qmax1) = (zero, zero);
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
        // NaN leaves the extremes alone (and poisons the probe).
        lo0 = _mm_min_pd(b0, lo0);
        lo1 = _mm_min_pd(b1, lo1);
        hi0 = _mm_max_pd(b0, hi0);
        hi1 = _mm_max_pd(b1, hi1);
        tot0 = _mm_add_pd(tot0, q0);
        tot1 = _mm_add_pd(tot1, q1);
        let p0 = _mm_add_pd(_mm_mul_pd(b0, zero), _mm_mul_pd(q0, zero));
        let p1 = _mm_add_pd(_mm_mul_pd(b1, zero), _mm_mul_pd(q1, zero));
        probe = _mm_add_pd(probe, _mm_add_pd(p0, p1));
        negative = _mm_or_pd(
            negative,
            _mm_or_pd(_mm_cmplt_pd(q0, zero), _mm_cmplt_pd(q1, zero)),
        );
        qmax0 = _mm_max_pd(q0, qmax0);
        qmax1 = _mm_max_pd(q1, qmax1);
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
    let [p0, p1] = lanes(probe);
    let neg = _mm_movemask_pd(negative) != 0;
    let [x0, x1] = lanes(_mm_max_pd(qmax0, qmax1));
    Summary {
        lo: l0.min(l1),
        hi: h0.max(h1),
        qmax: x0.max(x1),
        total: t0 + t1,
        valid: p0 + p1 == 0.0 && !neg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SSE2 pass and the portable one agree on everything but the float
    /// total (whose order differs and which never decides a price).
    #[test]
    fn sse2_and_portable_summaries_agree() {
        let mut state = 11u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for n in [1usize, 3, 4, 5, 17, 64, 301] {
            for case in 0..40 {
                let mut b: Vec<f64> = (0..n).map(|_| next() * 200.0 - 100.0).collect();
                let mut q: Vec<f64> = (0..n).map(|_| next() * 10.0).collect();
                let k = case % n;
                match case % 5 {
                    1 => b[k] = f64::NAN,
                    2 => q[k] = -0.5,
                    3 => q[k] = f64::INFINITY,
                    4 => q[k] = -0.0,
                    _ => {}
                }
                let fast = summarize(&b, &q);
                let mut plain = EMPTY;
                summarize_tail(&mut plain, &b, &q);
                assert_eq!(fast.valid, plain.valid, "n {n} case {case}");
                if plain.valid {
                    assert_eq!(fast.lo.to_bits(), plain.lo.to_bits());
                    assert_eq!(fast.hi.to_bits(), plain.hi.to_bits());
                    assert_eq!(fast.qmax.to_bits(), plain.qmax.to_bits());
                    assert!((fast.total - plain.total).abs() <= 1e-12 * plain.total.max(1.0));
                }
            }
        }
    }
}
