//! Pure-strategy Nash equilibria of a one-hour uniform-price auction in which
//! each generator offers its full capacity at a price from a grid, by
//! enumerating every price profile.

use super::{check_finite, check_non_negative, in_pool, too_large, try_vec};
use crate::clearing::{clear_unchecked, Rules, TieRule, Workspace};
use crate::error::{MarketError, Result};

/// Largest number of price profiles (`G^N`) that [`pure_nash`] enumerates.
pub const MAX_PROFILES: usize = 1 << 20;

/// Relative tolerance of the equilibrium test: a deviation must gain more
/// than `1e-9 * max(1, |best profit|)` € to break an equilibrium.
const REL_TOL: f64 = 1e-9;

/// The equilibria found, row-major (E, N) for per-generator fields, in
/// profile order (generator 0's price varies fastest).
#[derive(Clone, Debug, PartialEq)]
pub struct PureNash {
    pub n: usize,
    /// Offer price of each generator, €/MWh, (E, N).
    pub bids: Vec<f64>,
    /// Clearing price, €/MWh, (E,).
    pub price: Vec<f64>,
    /// Cleared quantity, MW, (E, N).
    pub cleared: Vec<f64>,
    /// Profit `(P - c_i) x_i`, €, (E, N).
    pub profit: Vec<f64>,
    /// Number of profiles enumerated, `G^N`.
    pub profiles: usize,
}

impl PureNash {
    pub fn len(&self) -> usize {
        self.price.len()
    }

    pub fn is_empty(&self) -> bool {
        self.price.is_empty()
    }
}

/// One profile's outputs: index, (profits, dispatch), price.
type Profile<'a> = (usize, ((&'a mut [f64], &'a mut [f64]), &'a mut f64));

/// Enumerate every profile of grid prices (each generator offers all of its
/// capacity), clear it (ties pro rata; in a shortage at `price_cap`, or the
/// highest offer without a cap) and keep the profiles where no generator
/// gains by moving to another grid price. Refuses more than
/// [`MAX_PROFILES`] profiles.
pub fn pure_nash(
    prices_grid: &[f64],
    capacities: &[f64],
    costs: &[f64],
    demand: f64,
    price_cap: Option<f64>,
) -> Result<PureNash> {
    let n = capacities.len();
    if n == 0 {
        return Err(MarketError::Empty { arg: "capacities" });
    }
    if costs.len() != n {
        return Err(MarketError::LengthMismatch {
            arg: "costs",
            other: "capacities",
            got: costs.len(),
            expected: n,
        });
    }
    if prices_grid.is_empty() {
        return Err(MarketError::Empty { arg: "prices_grid" });
    }
    check_finite("prices_grid", prices_grid)?;
    if let Some(k) = prices_grid.windows(2).position(|w| w[1] <= w[0]) {
        return Err(MarketError::BadScalar {
            arg: "prices_grid",
            requirement: "must be strictly increasing",
            value: prices_grid[k + 1],
        });
    }
    check_non_negative("capacities", capacities)?;
    check_finite("costs", costs)?;
    if !(demand.is_finite() && demand >= 0.0) {
        return Err(MarketError::BadScalar {
            arg: "demand",
            requirement: "must be finite and >= 0",
            value: demand,
        });
    }
    if let Some(cap) = price_cap {
        let top = prices_grid[prices_grid.len() - 1];
        if !cap.is_finite() || top > cap {
            return Err(MarketError::BadScalar {
                arg: "price_cap",
                requirement: "must be finite and >= every grid price",
                value: cap,
            });
        }
    }
    // Sums of capacities (the supply) and profits (P - c_i) x_i must stay
    // finite, or a profile would clear nothing or score inf/NaN.
    let kmax = capacities.iter().fold(0.0, |m: f64, &k| m.max(k));
    if !(kmax * n as f64).is_finite() || !(kmax * n as f64 + demand).is_finite() {
        return Err(MarketError::Invalid {
            arg: "capacities",
            message: format!(
                "N x the largest capacity ({n} x {kmax:e} MW) exceeds the float64 range; \
                 use capacities of ordinary magnitudes"
            ),
        });
    }
    let (cmin, cmax) = costs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &c| {
            (lo.min(c), hi.max(c))
        });
    let (plo, phi) = (prices_grid[0], prices_grid[prices_grid.len() - 1]);
    let phi = price_cap.map_or(phi, |cap| cap.max(phi));
    let span = (phi - cmin).abs().max((cmax - plo).abs());
    if !(span * kmax).is_finite() {
        return Err(MarketError::Invalid {
            arg: "prices_grid",
            message: format!(
                "profits (P - c_i) x_i can exceed the float64 range: prices from {plo:e} to \
                 {phi:e} EUR/MWh, costs from {cmin:e} to {cmax:e}, capacities up to {kmax:e} MW"
            ),
        });
    }
    let g = prices_grid.len();
    let profiles = u32::try_from(n)
        .ok()
        .and_then(|e| g.checked_pow(e))
        .filter(|&p| p <= MAX_PROFILES)
        .ok_or_else(|| MarketError::BadScalar {
            arg: "prices_grid",
            requirement: "gives too many price profiles: len(prices_grid) ** N must be <= 1048576",
            value: (g as f64).powf(n as f64),
        })?;
    let size = profiles
        .checked_mul(n)
        .ok_or_else(|| too_large("capacities", profiles as f64 * n as f64))?;
    let rules = Rules {
        tie_rule: TieRule::ProRata,
        shortage_price: price_cap,
        ..Rules::default()
    };
    // Profit and dispatch of every generator in every profile.
    let mut profit = try_vec("prices_grid", size, 0.0)?;
    let mut cleared = try_vec("prices_grid", size, 0.0)?;
    let mut price = try_vec("prices_grid", profiles, 0.0)?;
    let work = |(ws, bids): &mut (Workspace, Vec<f64>), (p, ((pr, x), c)): Profile<'_>| {
        let mut code = p;
        for b in bids.iter_mut() {
            *b = prices_grid[code % g];
            code /= g;
        }
        let out = clear_unchecked(bids, capacities, demand, &rules, ws, x);
        *c = out.price;
        for ((v, &xi), &ci) in pr.iter_mut().zip(x.iter()).zip(costs) {
            *v = (out.price - ci) * xi;
        }
    };
    let init = || (Workspace::with_capacity(n), vec![0.0; n]);
    if profiles >= 4096 {
        use rayon::prelude::*;
        in_pool(|| {
            profit
                .par_chunks_mut(n)
                .zip(cleared.par_chunks_mut(n))
                .zip(price.par_iter_mut())
                .enumerate()
                .for_each_init(init, work)
        });
    } else {
        let mut st = init();
        profit
            .chunks_mut(n)
            .zip(cleared.chunks_mut(n))
            .zip(price.iter_mut())
            .enumerate()
            .for_each(|item| work(&mut st, item));
    }
    // A profile is an equilibrium when, for every generator, its profit is
    // the best over the G profiles that differ only in its own price.
    let mut stable = try_vec("prices_grid", profiles, true)?;
    let mut stride = 1;
    for i in 0..n {
        for base in 0..profiles {
            if (base / stride) % g != 0 {
                continue;
            }
            let best = (0..g)
                .map(|k| profit[(base + k * stride) * n + i])
                .fold(f64::NEG_INFINITY, f64::max);
            let floor = best - REL_TOL * best.abs().max(1.0);
            for k in 0..g {
                let p = base + k * stride;
                if profit[p * n + i] < floor {
                    stable[p] = false;
                }
            }
        }
        stride *= g;
    }
    let mut out = PureNash {
        n,
        bids: Vec::new(),
        price: Vec::new(),
        cleared: Vec::new(),
        profit: Vec::new(),
        profiles,
    };
    for p in (0..profiles).filter(|&p| stable[p]) {
        let mut code = p;
        for _ in 0..n {
            out.bids.push(prices_grid[code % g]);
            code /= g;
        }
        out.price.push(price[p]);
        out.cleared.extend_from_slice(&cleared[p * n..(p + 1) * n]);
        out.profit.extend_from_slice(&profit[p * n..(p + 1) * n]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monopoly_bids_the_top_of_the_grid() {
        // One generator, inelastic demand 10 MW: it sets the price alone.
        let eq = pure_nash(&[0.0, 10.0, 50.0], &[20.0], &[5.0], 10.0, None).unwrap();
        assert_eq!(eq.bids, vec![50.0]);
        assert_eq!(eq.profit, vec![450.0]);
    }

    #[test]
    fn spare_capacity_prices_near_cost() {
        // k units of cost 10, each able to serve demand alone. Undercutting a
        // shared price p by one step s pays when (p - s - c) D > (p - c) D / k,
        // so equilibrium prices satisfy p - c <= k s / (k - 1): two steps for
        // k = 2 (where p = c + 2s is a weak equilibrium), one for k = 3.
        let grid: Vec<f64> = (0..=10).map(|k| 5.0 * k as f64).collect();
        let eq = pure_nash(&grid, &[50.0, 50.0], &[10.0, 10.0], 40.0, None).unwrap();
        assert_eq!(eq.price, vec![10.0, 15.0, 20.0]);
        let eq = pure_nash(&grid, &[50.0; 3], &[10.0; 3], 40.0, None).unwrap();
        assert!(eq.price.contains(&10.0));
        assert!(eq.price.iter().all(|&p| p <= 15.0), "{:?}", eq.price);
    }

    #[test]
    fn size_limit_and_bad_inputs() {
        let grid: Vec<f64> = (0..20).map(|k| k as f64).collect();
        let e = pure_nash(&grid, &[1.0; 5], &[0.0; 5], 1.0, None).unwrap_err();
        assert!(e.to_string().contains("1048576"), "{e}");
        assert!(pure_nash(&[2.0, 1.0], &[1.0], &[0.0], 1.0, None).is_err());
        assert!(pure_nash(&[1.0, 2.0], &[1.0], &[0.0], 1.0, Some(1.5)).is_err());
        assert!(pure_nash(&[1.0], &[1.0, 2.0], &[0.0], 1.0, None).is_err());
    }
}
