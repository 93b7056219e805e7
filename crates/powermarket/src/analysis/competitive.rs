//! The competitive benchmark: every generator offers its full available
//! capacity at its marginal cost (the env's outcome when every agent plays
//! `[0, 0]` on the noise-free profile). On a networked scenario each hour is
//! cleared on the network as the env clears it: node prices, flows.

use super::{check_non_negative, checked_size, try_vec};
use crate::clearing::{validate, Rules};
use crate::env::{clear_hour, settle_hour, Market, Scratch};
use crate::error::{MarketError, Result};
use crate::observe::Observer;
use crate::scenario::Scenario;
use crate::units::generator::limited_quantity;

/// The competitive outcome of each hour, row-major (T, N) for the per-agent fields.
#[derive(Clone, Debug, PartialEq)]
pub struct Competitive {
    /// Clearing price of each hour, €/MWh, (T,); on a networked scenario the
    /// demand-weighted mean of the node prices, as the env's `info["price"]`.
    pub price: Vec<f64>,
    /// Node prices, €/MWh, (T, Z) on a networked scenario; empty otherwise.
    pub node_prices: Vec<f64>,
    /// Line flows, MW, (T, L) on a networked scenario (zeros on a copper
    /// plate of several nodes); empty otherwise.
    pub flows: Vec<f64>,
    /// Congestion rent, €/h, (T,) on a networked scenario; empty otherwise.
    pub congestion_rent: Vec<f64>,
    /// Cleared quantity, MW, (T, N).
    pub cleared: Vec<f64>,
    /// Profit `(p_ti - c_i) x_ti` minus the hour's ramp cost, € (one hour),
    /// (T, N), at the paid price (the clearing price under uniform pricing;
    /// cost, so 0 before ramp costs, under pay-as-bid).
    pub profit: Vec<f64>,
}

/// Clear every hour with all offers at cost and full capacity, on `demand`
/// (MW per hour) or, when `None`, on the scenario's base (noise-free)
/// profile. Ties follow `rules`; the scenario's market design (demand bids,
/// cap and floor, mechanism) applies as in the env. With several segments
/// the blocks of a generator all offer at cost, which dispatches as one
/// offer of its whole capacity. With availability, hour `h` offers
/// `K_i LF[h mod T, i]`; with ramp limits, that offer is clipped into the
/// ramp window around the previous hour's cleared quantity, exactly as the
/// env does ([`limited_quantity`]).
///
/// On a networked scenario hour `h` is cleared on the network exactly as
/// the env clears it ([`clear_hour`]): the demand `demand[h]` split over the
/// nodes by the scenario's shares of hour `h mod T`, each offer paid its
/// node's price; `price` is then the demand-weighted mean of the node
/// prices and `node_prices`, `flows` and `congestion_rent` are filled. An
/// LP failure is an error.
pub fn competitive(s: &Scenario, rules: &Rules, demand: Option<&[f64]>) -> Result<Competitive> {
    s.validate()?;
    rules.validate()?;
    let demand = demand.unwrap_or(&s.demand);
    if demand.is_empty() {
        return Err(MarketError::Empty { arg: "demand" });
    }
    check_non_negative("demand", demand)?;
    let (t, n) = (demand.len(), s.n());
    let size = checked_size("demand", &[t, n])?;
    let (z, l) = if s.networked() {
        (s.z(), s.lines.len())
    } else {
        (0, 0)
    };
    let mut out = Competitive {
        price: try_vec("demand", t, 0.0)?,
        node_prices: try_vec("demand", checked_size("demand", &[t, z])?, 0.0)?,
        flows: try_vec("demand", checked_size("demand", &[t, l])?, 0.0)?,
        congestion_rent: try_vec("demand", if z > 0 { t } else { 0 }, 0.0)?,
        cleared: try_vec("demand", size, 0.0)?,
        profit: try_vec("demand", size, 0.0)?,
    };
    let one_block = Scenario {
        segments: 1,
        ..s.clone()
    };
    let mut m = Market::new(one_block, Observer::Simple, rules.tie_rule)?;
    m.rules = Rules {
        tie_rule: rules.tie_rule,
        shortage_price: rules.shortage_price,
        ..m.rules
    };
    // Room for the storage units' blocks too, which stay idle (no block
    // in the book).
    let mut sc = Scratch::try_for(&m, "scenario")?;
    sc.sto.discharging.clear();
    sc.sto.charging.clear();
    for i in 0..n {
        (sc.bids[i], sc.offered[i]) = (m.rules.clip(s.costs[i]), s.capacities[i]);
    }
    for (h, &d) in demand.iter().enumerate() {
        let row = h * n..(h + 1) * n;
        let prev = |i: usize| {
            if h > 0 {
                out.cleared[row.start - n + i]
            } else {
                0.0
            }
        };
        if let Some(l) = &m.limits {
            for (i, q) in sc.offered[..n].iter_mut().enumerate() {
                let k = s.capacities[i];
                *q = limited_quantity(k, k, s.load_factor(h % s.t(), i), l.ramp(i, h, prev(i)));
            }
        }
        validate(&sc.bids[..n], &sc.offered[..n], d, &m.rules).map_err(|e| e.in_market(h))?;
        let (c, _) = clear_hour(&m, h % s.t(), d, &mut sc)?;
        settle_hour(&m, c.price, &mut sc);
        out.price[h] = c.price;
        if z > 0 {
            out.node_prices[h * z..(h + 1) * z].copy_from_slice(&sc.grid.prices);
            out.flows[h * l..(h + 1) * l].copy_from_slice(&sc.grid.flows);
            out.congestion_rent[h] = sc.grid.congestion_rent;
        }
        for i in 0..n {
            let x = sc.cleared[i];
            let ramp = m
                .limits
                .as_ref()
                .map_or(0.0, |l| l.ramp_cost(i, h, prev(i), x));
            out.profit[row.start + i] = (sc.paid[i] - s.costs[i]) * x - ramp;
        }
        out.cleared[row].copy_from_slice(&sc.cleared[..n]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merit_order_by_hand() {
        // Costs 10, 20, 30 with 10 MW each; demand 15 MW: unit 1 is marginal.
        let s = Scenario::with_fleet(vec![10.0; 3], vec![30.0, 10.0, 20.0], vec![15.0, 30.0, 5.0]);
        let c = competitive(&s, &Rules::default(), None).unwrap();
        assert_eq!(c.price, vec![20.0, 30.0, 10.0]);
        assert_eq!(&c.cleared[..3], &[0.0, 10.0, 5.0]);
        assert_eq!(&c.profit[..3], &[0.0, 100.0, 0.0]);
        // Hour 1: all three run; the price is the dearest cost.
        assert_eq!(&c.profit[3..6], &[0.0, 200.0, 100.0]);
        let given = competitive(&s, &Rules::default(), Some(&[25.0])).unwrap();
        assert_eq!(given.price, vec![30.0]);
        assert!(competitive(&s, &Rules::default(), Some(&[1.0, f64::NAN])).is_err());
        assert!(competitive(&s, &Rules::default(), Some(&[])).is_err());
    }
}
