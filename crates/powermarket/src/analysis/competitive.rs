//! The competitive benchmark: every generator offers its full available
//! capacity at its marginal cost (the env's outcome when every agent plays
//! `[0, 0]` on the noise-free profile).

use super::{check_non_negative, checked_size, try_vec};
use crate::clearing::{validate, Rules};
use crate::env::{clear_copper, settle_hour, Market, Scratch};
use crate::error::{MarketError, Result};
use crate::observe::Observer;
use crate::scenario::Scenario;
use crate::units::generator::limited_quantity;

/// The competitive outcome of each hour, row-major (T, N) for the per-agent fields.
#[derive(Clone, Debug, PartialEq)]
pub struct Competitive {
    /// Clearing price of each hour, €/MWh, (T,).
    pub price: Vec<f64>,
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
pub fn competitive(s: &Scenario, rules: &Rules, demand: Option<&[f64]>) -> Result<Competitive> {
    s.validate()?;
    rules.validate()?;
    if s.networked() {
        return Err(MarketError::Invalid {
            arg: "scenario",
            message: "competitive does not support networked scenarios yet".into(),
        });
    }
    let demand = demand.unwrap_or(&s.demand);
    if demand.is_empty() {
        return Err(MarketError::Empty { arg: "demand" });
    }
    check_non_negative("demand", demand)?;
    let (t, n) = (demand.len(), s.n());
    let size = checked_size("demand", &[t, n])?;
    let mut out = Competitive {
        price: try_vec("demand", t, 0.0)?,
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
    let mut sc = Scratch::new(n);
    for (i, (b, q)) in sc.bids.iter_mut().zip(sc.offered.iter_mut()).enumerate() {
        (*b, *q) = (m.rules.clip(s.costs[i]), s.capacities[i]);
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
            for (i, q) in sc.offered.iter_mut().enumerate() {
                let k = s.capacities[i];
                *q = limited_quantity(k, k, s.load_factor(h % s.t(), i), l.ramp(i, h, prev(i)));
            }
        }
        validate(&sc.bids, &sc.offered, d, &m.rules).map_err(|e| e.in_market(h))?;
        let (c, _) = clear_copper(&m, d, &mut sc);
        settle_hour(&m, c.price, &mut sc);
        out.price[h] = c.price;
        for i in 0..n {
            let x = sc.cleared[i];
            let ramp = m
                .limits
                .as_ref()
                .map_or(0.0, |l| l.ramp_cost(i, h, prev(i), x));
            out.profit[row.start + i] = (sc.paid[i] - s.costs[i]) * x - ramp;
        }
        out.cleared[row].copy_from_slice(&sc.cleared);
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
