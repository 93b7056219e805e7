//! The step kernel: the offer mapping, one market's reset and step, the
//! clearing of an hour and the reward. It works on borrowed state
//! ([`StateMut`]), so that [`crate::VecMarketEnv`] runs exactly the same code
//! over its struct-of-arrays state.

use super::action::{ACTION_HIGH, ACTION_LOW};
use super::PriceAction;
use super::{Market, Scratch, StateMut, StepInfo, NOT_STARTED};
use crate::clearing::{clear_elastic_unchecked, clear_unchecked, Clearing, DemandCurve, Mechanism};
use crate::error::{MarketError, Result};
use crate::observe::ObsInput;
use crate::scenario::Scenario;
use crate::units::generator::{draw_availability, limited_blocks, limited_quantity};
use rand_distr::{Distribution, StandardNormal};

/// The offer of generator `i` for action `[a0, a1]` (clipped to the box):
/// `(bid, offered)` = `(c_i + share(a1) * max_bid_delta, (1 - a0) K_i)`,
/// €/MWh and MW, before the cap and floor, where `share` is the scenario's
/// price action ([`PriceAction::share`]: `tanh(a1)` or `a1`). A block of a
/// generator with K > 1 segments offers `offered / K` ([`block_offer`]).
#[inline(always)]
pub fn offer(s: &Scenario, i: usize, a0: f32, a1: f32) -> (f64, f64) {
    offer_from(s, i, a0, s.price_action.share(a1))
}

/// [`offer`] given `th = share(a1)`.
#[inline(always)]
fn offer_from(s: &Scenario, i: usize, a0: f32, th: f64) -> (f64, f64) {
    let withheld = (a0 as f64).clamp(ACTION_LOW[0] as f64, ACTION_HIGH[0] as f64);
    (
        s.costs[i] + th * s.max_bid_delta,
        (1.0 - withheld) * s.capacities[i],
    )
}

/// Every offer of a market into `bids` and `offered`: [`offer`] with one
/// block per generator (`k` = 1), else [`block_offer`] (offer `j` is a block
/// of generator `j / k`). Two offers at a time
/// ([`PriceAction::share2`]: the same bits as one at a time).
#[inline]
fn offers_into(s: &Scenario, k: usize, actions: &[f32], bids: &mut [f64], offered: &mut [f64]) {
    let pa = s.price_action;
    if k == 1 {
        offer_pairs(pa, actions, bids, offered, |j, a0, th| {
            offer_from(s, j, a0, th)
        });
    } else {
        offer_pairs(pa, actions, bids, offered, |j, a0, th| {
            let (b, q) = offer_from(s, j / k, a0, th);
            (b, q / s.segments as f64)
        });
    }
}

/// `one(j, a0, pa.share(a1))` for every offer `j`, two at a time.
#[inline(always)]
fn offer_pairs(
    pa: PriceAction,
    actions: &[f32],
    bids: &mut [f64],
    offered: &mut [f64],
    one: impl Fn(usize, f32, f64) -> (f64, f64),
) {
    let pairs = actions.chunks_exact(4);
    let rest = pairs.remainder();
    let mut j = 0;
    for a in pairs {
        let (t0, t1) = pa.share2(a[1], a[3]);
        (bids[j], offered[j]) = one(j, a[0], t0);
        (bids[j + 1], offered[j + 1]) = one(j + 1, a[2], t1);
        j += 2;
    }
    if let [a0, a1] = *rest {
        (bids[j], offered[j]) = one(j, a0, pa.share(a1));
    }
}

/// One block of generator `i` with `segments` K blocks: [`offer`] with the
/// quantity divided by K, `((1 - a0) K_i) / K`.
#[inline(always)]
pub fn block_offer(s: &Scenario, i: usize, a0: f32, a1: f32) -> (f64, f64) {
    let (b, q) = offer(s, i, a0, a1);
    (b, q / s.segments as f64)
}

/// Check a flat (N, 2) or (N, K, 2) action array; the error names the agent.
pub fn validate_actions(actions: &[f32], m: &Market) -> Result<()> {
    if actions.len() != m.action_len() {
        return Err(MarketError::Shape {
            arg: "actions",
            expected: m.action_shape(),
            got: format!("{} values", actions.len()),
        });
    }
    super::action::check_finite(actions, m.segments, m.n())
}

/// The error for stepping a market at hour `t` (NOT_STARTED: never reset)
/// of `horizon` hours, if it cannot be stepped.
pub fn check_steppable(t: usize, horizon: usize) -> Result<()> {
    if t == NOT_STARTED {
        Err(MarketError::Misuse(
            "step() called before reset(): call reset() first".into(),
        ))
    } else if t >= horizon {
        Err(MarketError::Misuse(format!(
            "step() called after the episode ended (all {horizon} hours stepped): call reset()"
        )))
    } else {
        Ok(())
    }
}

/// Start a new episode: fresh demand noise from the market's RNG, then the
/// first observation into `obs`.
pub fn reset_market(m: &Market, st: &mut StateMut<'_>, obs: Option<&mut [f32]>) {
    let base = &m.scenario.demand;
    if m.noise_sd > 0.0 {
        for (d, &b) in st.demand.iter_mut().zip(base) {
            let z: f64 = StandardNormal.sample(&mut *st.rng);
            *d = b + (z * m.noise_sd).clamp(m.noise_lo, m.noise_hi);
        }
    } else {
        st.demand.copy_from_slice(base);
    }
    if let Some(l) = &m.limits {
        if l.draws_availability() {
            draw_availability(&m.scenario, l, st.rng, st.availability);
        }
    }
    *st.t = 0;
    st.last_price.fill(f64::NAN);
    st.last_cleared.fill(0.0);
    for (soc, unit) in st.soc.iter_mut().zip(&m.scenario.storage) {
        *soc = unit.soc0();
    }
    if let Some(obs) = obs {
        observe(m, st, obs);
    }
}

/// The observation of a market in state `st`, (N, D) row-major, into `obs`.
pub(crate) fn observe(m: &Market, st: &StateMut<'_>, obs: &mut [f32]) {
    observe_parts(
        m,
        *st.t,
        st.demand,
        st.last_price,
        st.last_cleared,
        st.soc,
        st.availability,
        obs,
    );
}

/// [`observe`] from the parts of a market's state: hour `t`, its demand
/// row, last price (NaN before the first step; Z node prices on a
/// networked market), last dispatch (A values),
/// storage states of charge (S values) and realised load factors (empty
/// unless drawn per episode).
#[allow(clippy::too_many_arguments)]
pub(crate) fn observe_parts(
    m: &Market,
    t: usize,
    demand: &[f64],
    last_price: &[f64],
    last_cleared: &[f64],
    soc: &[f64],
    availability: &[f64],
    obs: &mut [f32],
) {
    let horizon = m.horizon();
    let input = ObsInput {
        hour: t,
        demand: demand[t.min(horizon - 1)],
        last_price: (!last_price[0].is_nan()).then_some(last_price[0]),
        node_prices: last_price,
        last_cleared,
        soc,
        load_factors: m.load_factors(availability, t),
    };
    m.obs.write(&input, obs);
}

/// Step one market that is running (`check_steppable`) with validated actions.
/// Leaves the bids, offers and dispatch of the hour in `sc` (and the
/// payments, except under uniform pricing with one block and no ramps, where
/// every offer is paid the price).
///
/// Errors only when a network clearing's LP fails (never seen in the
/// tests; the market is then left mid-step).
pub fn step_market(
    m: &Market,
    st: &mut StateMut<'_>,
    actions: &[f32],
    sc: &mut Scratch,
    obs: Option<&mut [f32]>,
    rewards: &mut [f32],
) -> Result<StepInfo> {
    let s = &m.scenario;
    let t = *st.t;
    let k = m.segments;
    let (n, nk) = (m.n(), m.offers());
    offers_into(
        s,
        k,
        &actions[..2 * nk],
        &mut sc.bids[..nk],
        &mut sc.offered[..nk],
    );
    m.rules.clip_all(&mut sc.bids[..nk]);
    if let Some(l) = &m.limits {
        let lf = m.load_factors(st.availability, t);
        if k == 1 {
            for (i, q) in sc.offered[..n].iter_mut().enumerate() {
                let ramp = l.ramp(i, t, st.last_cleared[i]);
                *q = limited_quantity(*q, s.capacities[i], lf.map_or(1.0, |r| r[i]), ramp);
            }
        } else {
            for i in 0..n {
                let js = i * k..(i + 1) * k;
                limited_blocks(
                    &sc.bids[js.clone()],
                    &mut sc.offered[js],
                    s.capacities[i],
                    lf.map_or(1.0, |r| r[i]),
                    l.ramp(i, t, st.last_cleared[i]),
                );
            }
        }
    }
    if m.s() > 0 {
        super::storage::into_book(m, st.soc, &actions[2 * nk..], sc);
    }
    let demand = st.demand[t];
    let (c, shortfall) = match &m.grid {
        None => clear_copper(m, demand, sc),
        Some(grid) => super::network::clear_hour(m, grid, t, demand, sc)?,
    };
    let limits = m.limits.as_ref();
    if k == 1 && limits.is_none() && m.rules.mechanism == Mechanism::Uniform && m.grid.is_none() {
        // The common market: one block, no ramps, the clearing price paid.
        for (((r, &cost), &bid), &x) in rewards
            .iter_mut()
            .zip(&s.costs)
            .zip(&sc.bids)
            .zip(&sc.cleared)
        {
            *r = hour_reward(m, cost, &[bid], &[x], &[c.price], shortfall, 0.0) as f32;
        }
    } else {
        settle_hour(m, c.price, sc);
        for (i, r) in rewards[..n].iter_mut().enumerate() {
            let js = i * k..(i + 1) * k;
            let ramp = limits.map_or(0.0, |l| {
                let x = if k == 1 {
                    sc.cleared[i]
                } else {
                    sc.cleared[js.clone()].iter().sum()
                };
                l.ramp_cost(i, t, st.last_cleared[i], x)
            });
            *r = hour_reward(
                m,
                s.costs[i],
                &sc.bids[js.clone()],
                &sc.cleared[js.clone()],
                &sc.paid[js],
                shortfall,
                ramp,
            ) as f32;
        }
    }
    match &m.grid {
        Some(_) => st.last_price.copy_from_slice(&sc.grid.prices),
        None => st.last_price[0] = c.price,
    }
    if k == 1 {
        st.last_cleared[..n].copy_from_slice(&sc.cleared[..n]);
    } else {
        for (x, blocks) in st.last_cleared[..n]
            .iter_mut()
            .zip(sc.cleared[..nk].chunks_exact(k))
        {
            *x = blocks.iter().sum();
        }
    }
    let book = nk + sc.sto.discharging.len();
    if m.s() > 0 {
        let last = t + 1 == m.horizon();
        super::storage::settle(m, st, sc, c.price, &mut rewards[n..], last);
    }
    *st.t = t + 1;
    if let Some(obs) = obs {
        observe(m, st, obs);
    }
    Ok(StepInfo {
        price: c.price,
        demand,
        shortfall,
        average_paid: if m.rules.mechanism == Mechanism::Uniform && m.grid.is_none() {
            c.price
        } else if m.grid.is_some() {
            super::network::average_paid(
                m,
                &sc.grid.prices,
                &sc.paid[..book],
                &sc.cleared[..book],
                c.price,
            )
        } else {
            m.rules
                .mechanism
                .settlement()
                .average(c.price, &sc.paid[..book], &sc.cleared[..book])
        },
        terminated: t + 1 == m.horizon(),
        congestion_rent: sc.grid.congestion_rent,
    })
}

/// Clear the offers in `sc` (prices already clipped) against the hour's
/// `demand` (its inelastic part and its demand bids). The book is the N x K
/// generator offers, then the storage discharge blocks listed in
/// `sc.sto.discharging`; the storage charge blocks in `sc.sto.charging` join
/// the demand bids (their bid groups are written there). Returns the
/// clearing and the unserved inelastic demand, MW. The one clearing of an
/// hour, for the env step and for the analysis; [`settle_hour`] then pays
/// the offers.
///
/// On a networked market the clearing is [`super::network::clear_hour`]'s
/// (node prices in `sc.grid`); it errors only when the LP fails.
#[inline]
pub fn clear_hour(m: &Market, t: usize, demand: f64, sc: &mut Scratch) -> Result<(Clearing, f64)> {
    match &m.grid {
        Some(grid) => super::network::clear_hour(m, grid, t, demand, sc),
        None => Ok(clear_copper(m, demand, sc)),
    }
}

/// [`clear_hour`] of a market without a network (one price).
#[inline]
pub fn clear_copper(m: &Market, demand: f64, sc: &mut Scratch) -> (Clearing, f64) {
    debug_assert!(m.grid.is_none());
    let len = m.offers() + sc.sto.discharging.len();
    if m.bid_groups.is_empty() && sc.sto.charging.is_empty() {
        let c = clear_unchecked(
            &sc.bids[..len],
            &sc.offered[..len],
            demand,
            &m.rules,
            &mut sc.ws,
            &mut sc.cleared[..len],
        );
        let sf = shortfall(demand, &c);
        (c, sf)
    } else {
        let inelastic = demand * m.inelastic_share;
        sc.groups.clear();
        sc.groups
            .extend(m.bid_groups.iter().map(|&(p, share)| (p, share * demand)));
        merge_charge_bids(sc);
        sc.served.clear();
        sc.served.resize(sc.groups.len(), 0.0);
        let curve = DemandCurve {
            inelastic,
            groups: &sc.groups,
        };
        let c = clear_elastic_unchecked(
            &sc.bids[..len],
            &sc.offered[..len],
            &curve,
            &m.rules,
            &mut sc.ws,
            &mut sc.cleared[..len],
            &mut sc.served,
        );
        let sf = shortfall(inelastic, &c);
        (c, sf)
    }
}

/// Add the storage charge blocks of `sc` to its bid groups (ascending by
/// price; a block of a group's price adds its MW to the group, after the
/// scenario's bids, in block order) and note each block's group.
fn merge_charge_bids(sc: &mut Scratch) {
    if sc.sto.charging.is_empty() {
        return;
    }
    let (groups, sto) = (&mut sc.groups, &mut sc.sto);
    for &(b, _) in sto.charging.iter() {
        let p = sto.bids[b as usize] + 0.0;
        let q = -sto.quantities[b as usize];
        let at = groups.partition_point(|g| g.0 < p);
        match groups.get_mut(at) {
            Some(g) if g.0 == p => g.1 += q,
            _ => groups.insert(at, (p, q)),
        }
    }
    for (b, g) in sto.charging.iter_mut() {
        let p = sto.bids[*b as usize] + 0.0;
        *g = groups.partition_point(|x| x.0 < p) as u32;
    }
}

/// The price paid per MWh of each offer in `sc` under the market's
/// mechanism, into `sc.paid`: the clearing price `price`, or on a networked
/// market the price of the offer's node from the last [`clear_hour`].
#[inline]
pub fn settle_hour(m: &Market, price: f64, sc: &mut Scratch) {
    let len = m.offers() + sc.sto.discharging.len();
    let mech = m.rules.mechanism;
    let Some(grid) = &m.grid else {
        mech.settle(price, &sc.bids[..len], &mut sc.paid[..len]);
        return;
    };
    let (n, k) = (m.n(), m.segments());
    let prices = &sc.grid.prices;
    for i in 0..n {
        let js = i * k..(i + 1) * k;
        mech.settle(
            prices[grid.node_of[i]],
            &sc.bids[js.clone()],
            &mut sc.paid[js],
        );
    }
    for (r, &b) in sc.sto.discharging.iter().enumerate() {
        let j = m.offers() + r;
        let p = prices[grid.node_of[n + b as usize / k]];
        mech.settle(p, &sc.bids[j..j + 1], &mut sc.paid[j..j + 1]);
    }
}

/// Unserved demand of a clearing, MW: `demand - total cleared` in a
/// shortage, else 0.
#[inline]
pub fn shortfall(demand: f64, c: &Clearing) -> f64 {
    if c.shortage {
        (demand - c.total).max(0.0)
    } else {
        0.0
    }
}

/// The reward of one generator for one hour, before `step`'s cast to f32,
/// from its K blocks' bids `b_k`, cleared MW `x_k` and paid prices `p_k`,
/// and the hour's ramp cost `ramp` (€, [`crate::units::generator::Limits::ramp_cost`]):
/// `(sum_k (p_k - c) x_k - bid_penalty * sum_k (b_k - c)^2 / K
///   - lol_penalty * shortfall - ramp) * reward_scale`.
/// The one place the reward formula lives (`step_market`, its fast path of
/// one block and `crate::analysis` all call it). With K = 1 and uniform pricing this is
/// `((P - c) x - bid_penalty (b - c)^2 - lol_penalty * shortfall) * scale`.
#[inline]
pub fn hour_reward(
    m: &Market,
    cost: f64,
    bids: &[f64],
    cleared: &[f64],
    paid: &[f64],
    shortfall: f64,
    ramp: f64,
) -> f64 {
    let s = &m.scenario;
    let markup = bids[0] - cost;
    let mut profit = (paid[0] - cost) * cleared[0];
    let mut penalty = s.bid_penalty * markup * markup;
    for ((&b, &x), &p) in bids.iter().zip(cleared).zip(paid).skip(1) {
        let markup = b - cost;
        profit += (p - cost) * x;
        penalty += s.bid_penalty * markup * markup;
    }
    let raw = profit - penalty / bids.len() as f64 - s.lol_penalty * shortfall;
    (raw - ramp) * m.reward_scale
}
