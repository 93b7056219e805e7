//! A periodic cubic spline (C2, period `x[last] - x[0]`), the interpolant
//! `scipy.interpolate.CubicSpline(x, y, bc_type="periodic")` builds, written
//! out so that the presets need no SciPy.

use crate::error::{MarketError, Result};

/// The periodic cubic spline through `(xs[k], ys[k])` evaluated at each of
/// `at` (reduced into `[xs[0], xs[last])` by the period). `xs` strictly
/// increasing, at least 3 points, `ys[0] == ys[last]`.
pub fn periodic_cubic_spline(xs: &[f64], ys: &[f64], at: &[f64]) -> Result<Vec<f64>> {
    let bad = |message: String| {
        Err(MarketError::Invalid {
            arg: "spline",
            message,
        })
    };
    let m = xs.len();
    if m < 3 || ys.len() != m {
        return bad(format!(
            "needs at least 3 points and as many y as x, got {m} x and {} y",
            ys.len()
        ));
    }
    let increasing = xs.windows(2).all(|w| w[1] > w[0]);
    if !increasing || xs.iter().chain(ys).any(|v| !v.is_finite()) {
        return bad("x must be finite and strictly increasing, y finite".into());
    }
    if ys[0] != ys[m - 1] {
        return bad(format!(
            "a periodic spline needs y[0] == y[-1], got {} and {}",
            ys[0],
            ys[m - 1]
        ));
    }
    // Unknowns: the second derivatives M_0 .. M_{n-1} at the knots (M_n = M_0).
    let n = m - 1;
    let h: Vec<f64> = xs.windows(2).map(|w| w[1] - w[0]).collect();
    let slope: Vec<f64> = (0..n).map(|k| (ys[k + 1] - ys[k]) / h[k]).collect();
    let mut a = vec![vec![0.0; n + 1]; n]; // augmented matrix
    for i in 0..n {
        let prev = (i + n - 1) % n;
        a[i][prev] += h[prev];
        a[i][i] += 2.0 * (h[prev] + h[i]);
        a[i][(i + 1) % n] += h[i];
        a[i][n] = 6.0 * (slope[i] - slope[prev]);
    }
    let second = solve(a);
    let period = xs[n] - xs[0];
    Ok(at
        .iter()
        .map(|&x| {
            let u = xs[0] + (x - xs[0]).rem_euclid(period);
            let k = (0..n).rfind(|&k| xs[k] <= u).unwrap_or(0);
            let (m0, m1) = (second[k], second[(k + 1) % n]);
            let (l, r) = (u - xs[k], xs[k + 1] - u);
            let hk = h[k];
            m0 * r * r * r / (6.0 * hk)
                + m1 * l * l * l / (6.0 * hk)
                + (ys[k] / hk - m0 * hk / 6.0) * r
                + (ys[k + 1] / hk - m1 * hk / 6.0) * l
        })
        .collect())
}

/// Gaussian elimination with partial pivoting on an (n, n + 1) augmented
/// matrix (the small, well-conditioned periodic spline system).
fn solve(mut a: Vec<Vec<f64>>) -> Vec<f64> {
    let n = a.len();
    for col in 0..n {
        let piv = (col..n)
            .max_by(|&p, &q| a[p][col].abs().total_cmp(&a[q][col].abs()))
            .unwrap_or(col);
        a.swap(col, piv);
        let (top, rest) = a.split_at_mut(col + 1);
        let pivot = &top[col];
        for row in rest.iter_mut() {
            let f = row[col] / pivot[col];
            for (x, p) in row[col..].iter_mut().zip(&pivot[col..]) {
                *x -= f * p;
            }
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = (a[row][n] - s) / a[row][row];
    }
    x
}
