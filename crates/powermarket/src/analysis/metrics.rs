//! Market-power metrics of one episode record.

use super::nodal::{Hour, Nodal, NodePower};
use super::{check_finite, check_non_negative, checked_size, try_vec};
use crate::error::{MarketError, Result};
use crate::scenario::Scenario;

/// Metrics per hour (T,) or per hour and generator (T, N), row-major. With
/// a [`StorageRecord`] the suppliers are the N generators and then the S
/// storage units (A = N + S), for `rsi`, `pivotal` and `hhi`.
#[derive(Clone, Debug, PartialEq)]
pub struct MarketPower {
    /// Residual supply index `(sum_j A_tj - A_ti) / D_t` with available
    /// capacity `A_ti = K_i LF[t, i]` of a generator and
    /// `min(P_u, max(0, (soc_tu - soc_min E_u) eta_d))` of a storage unit
    /// (what its state of charge at the start of hour `t` lets it sell),
    /// (T, N) or (T, A); `+inf` when `D_t = 0`.
    pub rsi: Vec<f64>,
    /// `rsi < 1`: demand cannot be met without supplier `i`, (T, N) or (T, A).
    pub pivotal: Vec<bool>,
    /// Herfindahl–Hirschman index of sold quantities in percent shares,
    /// `sum_i (100 x_i / sum_j x_j)^2` in [0, 10000], (T,), over the
    /// generators' cleared quantities and the storage units' discharge; NaN
    /// when nothing cleared.
    pub hhi: Vec<f64>,
    /// Lerner index `(P_t - c_i) / P_t` of dispatched generators, (T, N);
    /// NaN where `x_ti = 0` or `P_t <= 0`.
    pub lerner: Vec<f64>,
    /// Bid minus marginal cost, €/MWh, (T, N).
    pub markup: Vec<f64>,
    /// The per-node metrics of a networked scenario
    /// ([`super::nodal`]); `None` otherwise.
    pub nodes: Option<NodePower>,
}

/// The storage units' part of an episode record of T hours.
#[derive(Clone, Copy, Debug)]
pub struct StorageRecord<'a> {
    /// State of charge at the start of each hour, MWh, (T, S) (the first T
    /// rows of the record's `soc`).
    pub soc: &'a [f64],
    /// MW sold by each unit in each hour, (T, S) (the record's `discharge`).
    pub discharge: &'a [f64],
}

/// The metrics of an episode of `prices.len()` hours: `bids` and `cleared`
/// are (T, N) row-major (€/MWh and MW), `prices` and `demand` (T,), and
/// `availability` the (T, N) load factors of the episode (`None`: the
/// scenario's, hour `t mod T`). The suppliers are the generators only
/// ([`market_power_with_storage`] counts storage discharge too).
pub fn market_power(
    s: &Scenario,
    bids: &[f64],
    cleared: &[f64],
    prices: &[f64],
    demand: &[f64],
    availability: Option<&[f64]>,
) -> Result<MarketPower> {
    market_power_with_storage(s, bids, cleared, prices, demand, availability, None)
}

/// [`market_power`] with the scenario's storage units as suppliers: their
/// discharge counts as supply (`rsi`, `pivotal` and `hhi` over A = N + S
/// suppliers; `lerner` and `markup` stay the generators').
pub fn market_power_with_storage(
    s: &Scenario,
    bids: &[f64],
    cleared: &[f64],
    prices: &[f64],
    demand: &[f64],
    availability: Option<&[f64]>,
    storage: Option<StorageRecord<'_>>,
) -> Result<MarketPower> {
    market_power_at_nodes(
        s,
        bids,
        cleared,
        prices,
        demand,
        availability,
        storage,
        None,
    )
}

/// [`market_power_with_storage`] with the episode's node prices
/// `node_prices` (T, Z) of a networked scenario (the record's
/// `node_prices`), for the per-node Lerner index. On a networked scenario
/// the result's `nodes` holds the per-node metrics ([`NodePower`]; its
/// `lerner` only with `node_prices`); `prices` stays the scalar price of
/// each hour (the demand-weighted mean of the node prices), used by the
/// system-wide `lerner`. `node_prices` on a scenario that is not networked
/// is an error.
#[allow(clippy::too_many_arguments)]
pub fn market_power_at_nodes(
    s: &Scenario,
    bids: &[f64],
    cleared: &[f64],
    prices: &[f64],
    demand: &[f64],
    availability: Option<&[f64]>,
    storage: Option<StorageRecord<'_>>,
    node_prices: Option<&[f64]>,
) -> Result<MarketPower> {
    s.validate()?;
    let (t, n) = (prices.len(), s.n());
    let su = if storage.is_some() { s.s() } else { 0 };
    let a = n + su;
    let sto_size = checked_size("prices", &[t, su])?;
    if let Some(r) = storage {
        for (arg, got) in [("soc", r.soc.len()), ("discharge", r.discharge.len())] {
            if got != sto_size {
                return Err(MarketError::Shape {
                    arg,
                    expected: format!("({t}, {su})"),
                    got: format!("{got} values"),
                });
            }
        }
        check_finite("soc", r.soc)?;
        check_non_negative("discharge", r.discharge)?;
    }
    let wide = checked_size("prices", &[t, a])?;
    let size = checked_size("prices", &[t, n])?;
    for (arg, got, expected) in [
        ("bids", bids.len(), size),
        ("cleared", cleared.len(), size),
        ("demand", demand.len(), t),
        (
            "availability",
            availability.map_or(size, <[f64]>::len),
            size,
        ),
    ] {
        if got != expected {
            return Err(MarketError::Shape {
                arg,
                expected: if arg == "demand" {
                    format!("({t},)")
                } else {
                    format!("({t}, {n})")
                },
                got: format!("{got} values"),
            });
        }
    }
    check_finite("bids", bids)?;
    check_non_negative("cleared", cleared)?;
    check_finite("prices", prices)?;
    check_non_negative("demand", demand)?;
    if let Some(a) = availability {
        if let Some(k) = a.iter().position(|x| !(0.0..=1.0).contains(x)) {
            return Err(MarketError::BadScalar {
                arg: "availability",
                requirement: "values (load factors) must be in [0, 1]",
                value: a[k],
            });
        }
    }
    if let Some(np) = node_prices {
        if !s.networked() {
            return Err(MarketError::Invalid {
                arg: "node_prices",
                message: "given for a scenario that is not networked (one node on the \
                          copper plate); leave it out"
                    .into(),
            });
        }
        let z = s.z();
        if np.len() != checked_size("node_prices", &[t, z])? {
            return Err(MarketError::Shape {
                arg: "node_prices",
                expected: format!("({t}, {z})"),
                got: format!("{} values", np.len()),
            });
        }
        check_finite("node_prices", np)?;
    }
    let mut nodal = if s.networked() {
        Some(Nodal::new(s, t, a, node_prices.is_some())?)
    } else {
        None
    };
    let mut out = MarketPower {
        rsi: try_vec("prices", wide, 0.0)?,
        pivotal: try_vec("prices", wide, false)?,
        hhi: try_vec("prices", t, 0.0)?,
        lerner: try_vec("prices", size, f64::NAN)?,
        markup: try_vec("prices", size, 0.0)?,
        nodes: None,
    };
    let mut avail = try_vec("scenario", a, 0.0)?;
    let mut x = try_vec("scenario", a, 0.0)?;
    for h in 0..t {
        let row = h * n..(h + 1) * n;
        for (i, a) in avail[..n].iter_mut().enumerate() {
            let lf = availability.map_or_else(|| s.load_factor(h % s.t(), i), |a| a[h * n + i]);
            *a = s.capacities[i] * lf;
        }
        x[..n].copy_from_slice(&cleared[row.clone()]);
        if let Some(r) = storage {
            for (u, unit) in s.storage.iter().enumerate() {
                avail[n + u] = unit.max_discharge(r.soc[h * su + u]);
                x[n + u] = r.discharge[h * su + u];
            }
        }
        let total_k: f64 = avail.iter().sum();
        let (d, p) = (demand[h], prices[h]);
        let total_x: f64 = x.iter().sum();
        out.hhi[h] = if total_x > 0.0 {
            x.iter().map(|&xi| (100.0 * xi / total_x).powi(2)).sum()
        } else {
            f64::NAN
        };
        for (i, &own) in avail.iter().enumerate() {
            let rsi = if d > 0.0 {
                (total_k - own) / d
            } else {
                f64::INFINITY
            };
            out.rsi[h * a + i] = rsi;
            out.pivotal[h * a + i] = rsi < 1.0;
        }
        for (i, k) in row.clone().enumerate() {
            out.markup[k] = bids[k] - s.costs[i];
            if cleared[k] > 0.0 && p > 0.0 {
                out.lerner[k] = (p - s.costs[i]) / p;
            }
        }
        if let Some(nd) = &mut nodal {
            nd.hour(
                s,
                &Hour {
                    h,
                    demand: d,
                    avail: &avail,
                },
            );
            if let Some(np) = node_prices {
                let z = s.z();
                nd.lerner(s, h, &cleared[row], &np[h * z..(h + 1) * z]);
            }
        }
    }
    out.nodes = nodal.map(Nodal::finish);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_hour() {
        // K = 50, 30, 20 (total 100); demand 60; price 40; costs 10, 20, 30.
        let s = Scenario::with_fleet(vec![50.0, 30.0, 20.0], vec![10.0, 20.0, 30.0], vec![60.0]);
        let m = market_power(
            &s,
            &[12.0, 25.0, 45.0],
            &[50.0, 10.0, 0.0],
            &[40.0],
            &[60.0],
            None,
        )
        .unwrap();
        assert_eq!(m.rsi, vec![50.0 / 60.0, 70.0 / 60.0, 80.0 / 60.0]);
        assert_eq!(m.pivotal, vec![true, false, false]);
        // Shares 5/6 and 1/6 of 60 MW.
        let want = (100.0f64 * 50.0 / 60.0).powi(2) + (100.0f64 * 10.0 / 60.0).powi(2);
        assert!((m.hhi[0] - want).abs() < 1e-9);
        assert_eq!(m.lerner[0], 0.75);
        assert_eq!(m.lerner[1], 0.5);
        assert!(m.lerner[2].is_nan());
        assert_eq!(m.markup, vec![2.0, 5.0, 15.0]);
        let err = market_power(&s, &[1.0; 2], &[0.0; 3], &[40.0], &[60.0], None).unwrap_err();
        assert!(err.to_string().contains("bids"), "{err}");
    }
}
