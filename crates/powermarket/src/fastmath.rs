//! `tanh` for the price action, without a libm call.
//!
//! The action mapping evaluates one `tanh` per generator per hour; glibc's
//! `tanh` (through `expm1`) was close to half of a whole market step at
//! N = 5. This version uses `tanh(x) = e / (e + 2)` with `e = expm1(2|x|)`,
//! `expm1` from a Taylor polynomial (small arguments) or from `exp` with a
//! Cody–Waite range reduction. Plain IEEE arithmetic, no FMA: the result is
//! the same on every machine, within a few ulp of the correctly rounded value.

/// Taylor coefficients 1/k! for k = 2..=13.
const INV_FACT: [f64; 12] = [
    1.0 / 2.0,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5_040.0,
    1.0 / 40_320.0,
    1.0 / 362_880.0,
    1.0 / 3_628_800.0,
    1.0 / 39_916_800.0,
    1.0 / 479_001_600.0,
    1.0 / 6_227_020_800.0,
];

/// `sum_{k>=2} r^k / k!` up to k = 13, for |r| <= ln 2 / 2 (error < 2e-17 |r|).
#[inline(always)]
fn taylor_tail(r: f64) -> f64 {
    let mut p = INV_FACT[11];
    for &c in INV_FACT[..11].iter().rev() {
        p = p * r + c;
    }
    p * r * r
}

const HALF_LN2: f64 = 0.346_573_590_279_972_64;
// ln 2 split in a high part with trailing zero bits (k * LN2_HI is exact)
// and the rest; the values of fdlibm.
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
const INV_LN2: f64 = f64::from_bits(0x3ff7_1547_652b_82fe);

/// `v.round()` (half away from zero) for `0 <= v < 2^52`, inline: x86_64's
/// baseline has no rounding instruction, so `f64::round` is a libm call.
/// `v` minus its integer part is exact in this range, so the comparison
/// with 0.5 decides exactly as `round` does.
#[inline(always)]
fn round_nonneg(v: f64) -> i64 {
    let t = v as i64;
    t + ((v - t as f64) >= 0.5) as i64
}

/// `expm1(y)` for `0 <= y <= 60`.
#[inline(always)]
fn expm1_nonneg(y: f64) -> f64 {
    if y < HALF_LN2 {
        return y + taylor_tail(y);
    }
    let ki = round_nonneg(y * INV_LN2);
    let k = ki as f64;
    let r = (y - k * LN2_HI) - k * LN2_LO;
    let er = 1.0 + (r + taylor_tail(r));
    // 2^k for 0 <= k <= 87: exact, built from the exponent bits.
    let scale = f64::from_bits(((ki + 1023) as u64) << 52);
    er * scale - 1.0
}

/// Hyperbolic tangent, within a few ulp of `f64::tanh`.
#[inline]
pub fn tanh(x: f64) -> f64 {
    let a = x.abs();
    if a > 20.0 || a.is_nan() {
        // tanh(20) == 1 in f64; NaN stays NaN.
        return if a.is_nan() { x } else { 1.0f64.copysign(x) };
    }
    let e = expm1_nonneg(2.0 * a);
    (e / (e + 2.0)).copysign(x)
}

/// [`tanh`] of two values at once, the same bits as two calls: on x86_64
/// the two lanes of SSE2 registers run the same IEEE operations (SSE2 is
/// part of the x86_64 baseline; no FMA), with both branches of
/// `expm1_nonneg` computed and one selected per lane. Inputs with
/// |x| > 20 or NaN go through the scalar function.
#[inline]
pub fn tanh2(x0: f64, x1: f64) -> (f64, f64) {
    #[cfg(target_arch = "x86_64")]
    {
        if x0.abs() <= 20.0 && x1.abs() <= 20.0 {
            // SAFETY: SSE2 is part of the x86_64 baseline.
            return unsafe { tanh2_sse2(x0, x1) };
        }
    }
    (tanh(x0), tanh(x1))
}

/// [`tanh2`] for |x| <= 20 (finite).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
fn tanh2_sse2(x0: f64, x1: f64) -> (f64, f64) {
    use std::arch::x86_64::*;
    let x = _mm_set_pd(x1, x0);
    let sign = _mm_set1_pd(-0.0);
    let a = _mm_andnot_pd(sign, x);
    let y = _mm_mul_pd(_mm_set1_pd(2.0), a);
    let small = _mm_cmplt_pd(y, _mm_set1_pd(HALF_LN2));
    // k = round(y / ln 2) as round_nonneg does it: the integer part, plus
    // one when the rest is at least 0.5 (y <= 40, so k fits an i32).
    let v = _mm_mul_pd(y, _mm_set1_pd(INV_LN2));
    let t = _mm_cvtepi32_pd(_mm_cvttpd_epi32(v));
    let up = _mm_cmpge_pd(_mm_sub_pd(v, t), _mm_set1_pd(0.5));
    let k = _mm_add_pd(t, _mm_and_pd(up, _mm_set1_pd(1.0)));
    let r = _mm_sub_pd(
        _mm_sub_pd(y, _mm_mul_pd(k, _mm_set1_pd(LN2_HI))),
        _mm_mul_pd(k, _mm_set1_pd(LN2_LO)),
    );
    // The Taylor tail of y (small lanes) or of r (the others).
    let arg = _mm_or_pd(_mm_and_pd(small, y), _mm_andnot_pd(small, r));
    let mut p = _mm_set1_pd(INV_FACT[11]);
    for &c in INV_FACT[..11].iter().rev() {
        p = _mm_add_pd(_mm_mul_pd(p, arg), _mm_set1_pd(c));
    }
    let tail = _mm_mul_pd(_mm_mul_pd(p, arg), arg);
    let e_small = _mm_add_pd(y, tail);
    let er = _mm_add_pd(_mm_set1_pd(1.0), _mm_add_pd(r, tail));
    // 2^k from the exponent bits: k + 1023 (< 4096) sits in the low
    // mantissa bits of 2^52 + (k + 1023); shifting by 52 moves it to the
    // exponent field.
    let biased = _mm_add_pd(k, _mm_set1_pd(1023.0 + 4_503_599_627_370_496.0));
    let scale = _mm_castsi128_pd(_mm_slli_epi64(_mm_castpd_si128(biased), 52));
    let e_big = _mm_sub_pd(_mm_mul_pd(er, scale), _mm_set1_pd(1.0));
    let e = _mm_or_pd(_mm_and_pd(small, e_small), _mm_andnot_pd(small, e_big));
    let q = _mm_div_pd(e, _mm_add_pd(e, _mm_set1_pd(2.0)));
    let out = _mm_or_pd(_mm_andnot_pd(sign, q), _mm_and_pd(sign, x));
    let hi = _mm_unpackhi_pd(out, out);
    (_mm_cvtsd_f64(out), _mm_cvtsd_f64(hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f64, b: f64) -> u64 {
        if a == b {
            return 0;
        }
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

    #[test]
    fn inline_round_is_round() {
        let mut cases = vec![0.0, 0.5, 1.5, 2.5, 0.499_999_999_999_999_94, 86.5, 87.0];
        for i in 0..200_000 {
            let v = i as f64 * 0.000_437;
            cases.extend([v, v.next_up(), f64::from(i % 90) + 0.5]);
        }
        for v in cases {
            assert_eq!(round_nonneg(v) as f64, v.round(), "{v}");
        }
    }

    #[test]
    fn tanh2_is_two_tanh_calls() {
        let mut x = -25.0f64;
        let mut xs = vec![
            0.0,
            -0.0,
            1e-300,
            -1e-300,
            0.3465,
            0.34657359027997264,
            20.0,
            -20.0,
        ];
        while x <= 25.0 {
            xs.push(x);
            xs.push(x.next_up());
            x += 0.000_913;
        }
        for w in xs.windows(2) {
            let (a, b) = tanh2(w[0], w[1]);
            assert_eq!(a.to_bits(), tanh(w[0]).to_bits(), "{}", w[0]);
            assert_eq!(b.to_bits(), tanh(w[1]).to_bits(), "{}", w[1]);
        }
        let (a, b) = tanh2(f64::NAN, 1.0);
        assert!(a.is_nan() && b == tanh(1.0));
    }

    #[test]
    fn matches_libm_tanh_closely() {
        let mut worst = 0;
        let mut x = -25.0f64;
        while x <= 25.0 {
            worst = worst.max(ulps(tanh(x), x.tanh()));
            x += 0.000_731;
        }
        // Tiny, subnormal-adjacent and special values.
        for x in [
            0.0, -0.0, 1e-300, -1e-300, 1e-9, 0.3465, 0.3466, 0.34658, 10.0, -10.0,
        ] {
            worst = worst.max(ulps(tanh(x), x.tanh()));
        }
        assert!(worst <= 4, "worst error {worst} ulp");
        assert!(tanh(f64::NAN).is_nan());
        assert_eq!(tanh(f64::INFINITY), 1.0);
        assert_eq!(tanh(f64::NEG_INFINITY), -1.0);
        assert_eq!(tanh(-0.0).to_bits(), (-0.0f64).to_bits());
    }

    #[test]
    fn float32_actions_map_like_libm() {
        // Every price action is an f32; check a dense sample of them.
        let mut worst = 0;
        for i in -100_000..=100_000 {
            let a = (i as f32 * 1e-4) as f64;
            worst = worst.max(ulps(tanh(a), a.tanh()));
        }
        assert!(worst <= 4, "worst error {worst} ulp");
    }
}
