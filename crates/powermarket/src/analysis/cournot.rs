//! The Cournot–Nash equilibrium with linear inverse demand `P = a - b Q`,
//! constant marginal costs and capacities.

use super::try_vec;
use crate::error::{MarketError, Result};

/// Price and quantities of the Cournot equilibrium. Each firm's first-order
/// condition gives `q_i = clip((P - c_i) / b, 0, K_i)`, and `P` solves
/// `P + b * sum_i q_i(P) = a`. The left side is piecewise linear and strictly
/// increasing in `P` (slope >= 1), so the root is found exactly, segment by
/// segment between the kinks `c_i` and `c_i + b K_i`. Capacities may be
/// `+inf` (no limit).
pub fn cournot(a: f64, b: f64, costs: &[f64], capacities: &[f64]) -> Result<(f64, Vec<f64>)> {
    let n = costs.len();
    if n == 0 {
        return Err(MarketError::Empty { arg: "costs" });
    }
    if capacities.len() != n {
        return Err(MarketError::LengthMismatch {
            arg: "capacities",
            other: "costs",
            got: capacities.len(),
            expected: n,
        });
    }
    if !a.is_finite() {
        return Err(MarketError::BadScalar {
            arg: "a",
            requirement: "(demand intercept, €/MWh) must be finite",
            value: a,
        });
    }
    if !(b.is_finite() && b > 0.0) {
        return Err(MarketError::BadScalar {
            arg: "b",
            requirement: "(demand slope, €/MWh per MW) must be finite and > 0",
            value: b,
        });
    }
    super::check_finite("costs", costs)?;
    for (index, &k) in capacities.iter().enumerate() {
        if k.is_nan() || k < 0.0 {
            return Err(MarketError::Negative {
                arg: "capacities",
                index,
                value: k,
            });
        }
    }
    let quantity = |p: f64, i: usize| ((p - costs[i]) / b).max(0.0).min(capacities[i]);
    let excess = |p: f64| p + b * (0..n).map(|i| quantity(p, i)).sum::<f64>() - a;
    let mut kinks = try_vec("costs", 0, 0.0)?;
    kinks
        .try_reserve_exact(2 * n)
        .map_err(|_| super::too_large("costs", 2.0 * n as f64))?;
    for i in 0..n {
        kinks.push(costs[i]);
        let top = costs[i] + b * capacities[i];
        if top.is_finite() {
            kinks.push(top);
        }
    }
    kinks.sort_by(f64::total_cmp);
    kinks.dedup();
    let values: Vec<f64> = kinks.iter().map(|&p| excess(p)).collect();
    let price = match values.iter().position(|&v| v >= 0.0) {
        // Below the lowest cost nobody produces: slope 1.
        Some(0) => kinks[0] - values[0],
        Some(k) if values[k] == 0.0 => kinks[k],
        Some(k) => {
            let (lo, hi) = (kinks[k - 1], kinks[k]);
            let (f_lo, f_hi) = (values[k - 1], values[k]);
            lo - f_lo * (hi - lo) / (f_hi - f_lo)
        }
        None => {
            // Beyond the last kink only firms without a capacity limit grow.
            let last = kinks.len() - 1;
            let slope = 1.0 + capacities.iter().filter(|k| k.is_infinite()).count() as f64;
            kinks[last] - values[last] / slope
        }
    };
    let q: Vec<f64> = (0..n).map(|i| quantity(price, i)).collect();
    // Quantities (P - c_i) / b beyond the float64 range make the excess
    // function inf or NaN and the root meaningless: refuse instead.
    if !price.is_finite() || values.iter().any(|v| v.is_nan()) || q.iter().any(|x| !x.is_finite()) {
        return Err(MarketError::Invalid {
            arg: "b",
            message: format!(
                "the equilibrium is beyond the float64 range: quantities (P - c_i) / b with \
                 a = {a:e}, b = {b:e} and costs from {:e} overflow; use ordinary magnitudes",
                costs.iter().fold(f64::INFINITY, |m, &c| m.min(c))
            ),
        });
    }
    Ok((price, q))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_unconstrained_closed_form() {
        for n in 1..6 {
            let (p, q) = cournot(100.0, 2.0, &vec![10.0; n], &vec![f64::INFINITY; n]).unwrap();
            let want = (100.0 + n as f64 * 10.0) / (n as f64 + 1.0);
            assert!((p - want).abs() < 1e-12, "{n}: {p} vs {want}");
            assert!(q.iter().all(|&x| (x - (want - 10.0) / 2.0).abs() < 1e-12));
        }
    }

    #[test]
    fn binding_capacity_by_hand() {
        // a=100, b=1, costs 10 and 10, K0 = 10: unconstrained q = 30 each,
        // so firm 0 is capped; firm 1 best-responds to q0 = 10:
        // max (100 - 10 - q1 - 10) q1 gives q1 = 40, P = 100 - 50 = 50.
        let (p, q) = cournot(100.0, 1.0, &[10.0, 10.0], &[10.0, f64::INFINITY]).unwrap();
        assert!(
            (q[0] - 10.0).abs() < 1e-12 && (q[1] - 40.0).abs() < 1e-12,
            "{q:?}"
        );
        assert!((p - 50.0).abs() < 1e-12);
        // Demand below every cost: nothing is produced, P = a.
        let (p, q) = cournot(5.0, 1.0, &[10.0], &[1.0]).unwrap();
        assert_eq!((p, q), (5.0, vec![0.0]));
        assert!(cournot(1.0, 0.0, &[1.0], &[1.0]).is_err());
        assert!(cournot(1.0, 1.0, &[1.0], &[f64::NAN]).is_err());
    }
}
