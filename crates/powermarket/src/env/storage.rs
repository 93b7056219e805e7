//! The storage units' part of a step: their blocks into the offer book and
//! the demand bids, and, after the clearing, what they sold and bought, their
//! state of charge and their reward. The physics (limits, SoC update) is
//! [`crate::units::storage`]'s; the rules are in `docs/semantics.md`
//! ("Storage units").

use super::action::clamp_to;
use super::{Market, Scratch, StateMut};
use crate::units::storage::limit_blocks;
use crate::units::KINDS;

/// Put the storage blocks of `actions` (S x K x 2 values) into the hour:
/// prices and SoC-limited signed quantities into `sc.sto`, the discharge
/// blocks after the generators' offers in the book (`sc.bids`,
/// `sc.offered`), the charge blocks in `sc.sto.charging`. Returns the
/// length of the offer book.
pub(crate) fn into_book(m: &Market, soc: &[f64], actions: &[f32], sc: &mut Scratch) -> usize {
    let s = &m.scenario;
    let k = m.segments();
    let kind = &KINDS[1];
    let sto = &mut sc.sto;
    let delta = s.max_bid_delta;
    for (u, unit) in s.storage.iter().enumerate() {
        let blocks = u * k..(u + 1) * k;
        for b in blocks.clone() {
            let a0 = clamp_to(kind, 0, actions[2 * b]);
            let th = s.price_action.share(actions[2 * b + 1]);
            sto.bids[b] = m.rules.clip(m.sto_reference[u] + th * delta);
            sto.quantities[b] = a0 * unit.power / k as f64;
        }
        limit_blocks(
            &sto.bids[blocks.clone()],
            &mut sto.quantities[blocks],
            unit.max_discharge(soc[u]),
            unit.max_charge(soc[u]),
        );
    }
    sto.discharging.clear();
    sto.charging.clear();
    let mut len = m.offers();
    for (b, a) in actions.chunks_exact(2).enumerate() {
        let a0 = clamp_to(kind, 0, a[0]);
        if a0 > 0.0 {
            sc.bids[len] = sto.bids[b];
            sc.offered[len] = sto.quantities[b];
            sto.discharging.push(b as u32);
            len += 1;
        } else if a0 < 0.0 {
            sto.charging.push((b as u32, 0));
        }
    }
    len
}

/// After the clearing at `price`: each block's signed cleared quantity and
/// paid price, each unit's reward (into `rewards`, S values), its state of
/// charge and its net sale (into `st.last_cleared[N..]`). `last` is true in
/// the last hour of the episode (the terminal value is added).
pub(super) fn settle(
    m: &Market,
    st: &mut StateMut<'_>,
    sc: &mut Scratch,
    price: f64,
    rewards: &mut [f32],
    last: bool,
) {
    let (n, k) = (m.n(), m.segments());
    settle_blocks(m, sc, price);
    let sto = &sc.sto;
    let scale = m.reward_scale();
    for (u, unit) in m.scenario.storage.iter().enumerate() {
        let (revenue, d, c) = unit_flows(sto, u * k..(u + 1) * k);
        let soc = unit.next_soc(st.soc[u], d, c);
        st.soc[u] = soc;
        st.last_cleared[n + u] = d - c;
        let mut raw = revenue - unit.cost * (d + c);
        if last {
            raw += m.sto_terminal[u] * (soc - unit.soc0());
        }
        rewards[u] = (raw * scale) as f32;
    }
}

/// After the clearing at `price` (on a networked market: at the node
/// prices of the last clearing): each storage block's signed cleared
/// quantity (`sc.sto.cleared`) and the price paid per MWh of it
/// (`sc.sto.paid`). Also used by `crate::analysis`.
pub(crate) fn settle_blocks(m: &Market, sc: &mut Scratch, price: f64) {
    let nk = m.offers();
    let sto = &mut sc.sto;
    sto.cleared.fill(0.0);
    for (r, &b) in sto.discharging.iter().enumerate() {
        sto.cleared[b as usize] = sc.cleared[nk + r];
    }
    for &(b, g) in &sto.charging {
        let q = -sto.quantities[b as usize];
        let (total, served) = (sc.groups[g as usize].1, sc.served[g as usize]);
        let x = if served >= total {
            q
        } else if total > 0.0 {
            served * (q / total)
        } else {
            0.0
        };
        sto.cleared[b as usize] = -x;
    }
    let k = m.segments();
    for u in 0..m.s() {
        let blocks = u * k..(u + 1) * k;
        let p = super::network::price_of(m, &sc.grid, price, m.n() + u);
        m.rules
            .mechanism
            .settle(p, &sto.bids[blocks.clone()], &mut sto.paid[blocks]);
    }
}

/// A unit's money and energy over its settled `blocks`: `(sum_k paid_k x_k,
/// d, c)`, the signed revenue in €, the MW sold and the MW bought.
pub(crate) fn unit_flows(
    sto: &super::StorageScratch,
    blocks: std::ops::Range<usize>,
) -> (f64, f64, f64) {
    let (mut revenue, mut d, mut c) = (0.0, 0.0, 0.0);
    for (&x, &p) in sto.cleared[blocks.clone()].iter().zip(&sto.paid[blocks]) {
        revenue += p * x;
        if x > 0.0 {
            d += x;
        } else {
            c -= x;
        }
    }
    (revenue, d, c)
}

#[cfg(test)]
mod tests {
    use crate::clearing::TieRule;
    use crate::env::MarketEnv;
    use crate::observe::Observer;
    use crate::scenario::Scenario;
    use crate::units::storage::Storage;

    /// Two generators (10 MW at 10, 10 MW at 50 €/MWh), demand 12 MW for 5
    /// hours, and a 5 MW / 10 MWh battery at 90 % (room for 1 MWh / 0.9 of
    /// charge), reference price the mean cost, 30 €/MWh.
    fn market() -> MarketEnv {
        let mut s = Scenario::with_fleet(vec![10.0, 10.0], vec![10.0, 50.0], vec![12.0; 5]);
        s.demand_noise = 0.0;
        s.bid_penalty = 0.0;
        let mut unit = Storage::new(5.0, 10.0);
        unit.soc_initial = 0.9;
        unit.efficiency_charge = 0.9;
        unit.efficiency_discharge = 1.0;
        s.storage = vec![unit];
        MarketEnv::new(s, Observer::Simple, TieRule::ProRata, Some(0)).unwrap()
    }

    #[test]
    fn a_charge_bid_is_cut_to_the_room_left_and_pays_the_price() {
        let mut e = market();
        let (mut obs, mut r) = (vec![0f32; 3 * 4], vec![0f32; 3]);
        e.reset(None, &mut obs).unwrap();
        // Generators at cost; the battery bids 5 MW at the reference + 50 tanh(10).
        let a = [0.0, 0.0, 0.0, 0.0, -1.0, 10.0];
        let info = e.step(&a, &mut obs, &mut r).unwrap();
        // Room: (10 - 9) / 0.9 MW; demand 12 + 1.11 MW: the 50 €/MWh plant is marginal.
        let c = 1.0 / 0.9;
        assert_eq!(info.price, 50.0);
        let rec = e.record();
        assert!((rec.storage_offered[0] + c).abs() < 1e-12);
        assert!((rec.storage_cleared[0] + c).abs() < 1e-12);
        assert!((e.soc()[0] - 10.0).abs() < 1e-12);
        let scale = e.market().reward_scale();
        assert!((r[2] as f64 - (-50.0 * c * scale) as f32 as f64).abs() < 1e-12);
        // Balance: generator supply = demand + charge.
        let supply: f64 = rec.cleared.iter().sum();
        assert!((supply - (12.0 + c)).abs() < 1e-9);
    }

    #[test]
    fn a_discharge_offer_sets_the_price_and_the_terminal_value_is_paid_at_the_end() {
        let mut e = market();
        let (mut obs, mut r) = (vec![0f32; 3 * 4], vec![0f32; 3]);
        e.reset(None, &mut obs).unwrap();
        // The battery offers 5 MW at the reference (30 €/MWh) five hours running.
        let a = [0.0, 0.0, 0.0, 0.0, 1.0, 0.0];
        let mut total = 0.0;
        for h in 0..5 {
            let info = e.step(&a, &mut obs, &mut r).unwrap();
            // The 10 MW plant and 2 MW of the battery meet 12 MW at 30 €/MWh
            // while it holds 2 MWh; in the last hour 1 MWh is left and the
            // 50 €/MWh plant is marginal.
            let expected = if h < 4 { 30.0 } else { 50.0 };
            assert_eq!(info.price, expected, "hour {h}");
            total += r[2] as f64;
        }
        let rec = e.record();
        let sold: f64 = rec.storage_cleared.iter().sum();
        assert!((sold - 9.0).abs() < 1e-12, "{sold}");
        assert!(e.soc()[0].abs() < 1e-12);
        assert_eq!(rec.soc, [9.0, 7.0, 5.0, 3.0, 1.0, 0.0]);
        let scale = e.market().reward_scale();
        // 8 MWh at 30, 1 at 50, and the 9 MWh that left valued at 30.
        let raw = 30.0 * 8.0 + 50.0 * 1.0 + 30.0 * (0.0 - 9.0);
        assert!(
            (total - raw * scale).abs() < 1e-5,
            "{total} vs {}",
            raw * scale
        );
    }
}
