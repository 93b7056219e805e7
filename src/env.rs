//! `MarketEnv`: one day-ahead market, stepped hour by hour.
//!
//! Each step every generator submits an action `[a0, a1]` from the box
//! `[0, 1] x [-10, 10]` (values outside are clipped to it): it offers
//! `q_i = (1 - a0) K_i` MW at `b_i = c_i + tanh(a1) * max_bid_delta` €/MWh.
//! The market clears at a uniform price `P`, and generator `i` earns
//!
//! `((P - c_i) x_i - bid_penalty (b_i - c_i)^2 - lol_penalty * shortfall)
//!   * 20 / (demand_scale * cost_scale * max(1, T))`.
//!
//! With availability (load factors) or ramp limits in the scenario, the
//! offered quantity is limited as [`limits`] says, and the reward also
//! subtracts `ramp_cost_i |x_t - x_(t-1)|` (inside the scaled profit).
//!
//! The step kernel ([`step_market`], [`reset_market`]) works on borrowed
//! state so that [`crate::VecMarketEnv`] runs exactly the same code over its
//! struct-of-arrays state: a batched market is bit-identical to a single one.

use crate::clearing::{
    clear_elastic_unchecked, clear_unchecked, Clearing, DemandCurve, Mechanism, Rules, TieRule,
    Workspace,
};
pub mod limits;
use crate::error::{agent_name, checked_size, try_zeros, MarketError, Result};
use crate::observe::{ObsBuilder, ObsInput, Observer};
use crate::scenario::Scenario;
use limits::{draw_availability, limited_blocks, limited_quantity, Limits};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::sync::Arc;

/// Lower and upper bounds of the action box, per component.
pub const ACTION_LOW: [f32; 2] = [0.0, -10.0];
pub const ACTION_HIGH: [f32; 2] = [1.0, 10.0];

/// Largest observation (N x D values) of one market: 2^27 float32 (512 MiB).
pub const MAX_OBS_VALUES: usize = 1 << 27;

/// `t` of a market that has not been reset yet.
pub(crate) const NOT_STARTED: usize = usize::MAX;

/// Everything about a market that does not change while it runs; shared by
/// all markets of a batch.
#[derive(Clone, Debug)]
pub struct Market {
    pub scenario: Scenario,
    pub obs: ObsBuilder,
    pub rules: Rules,
    /// Availability and ramp limits; `None` when the scenario has neither.
    pub limits: Option<Limits>,
    reward_scale: f64,
    noise_sd: f64,
    noise_lo: f64,
    noise_hi: f64,
    /// Offer blocks per generator.
    segments: usize,
    /// Demand bids merged by (clipped) price, ascending: (price, share).
    bid_groups: Vec<(f64, f64)>,
    /// Share of each hour's demand that is inelastic.
    inelastic_share: f64,
}

impl Market {
    pub fn new(scenario: Scenario, observer: Observer, tie_rule: TieRule) -> Result<Self> {
        scenario.validate()?;
        let n = scenario.n();
        let values = n.saturating_mul(observer.dim(n));
        if values > MAX_OBS_VALUES {
            return Err(MarketError::Invalid {
                arg: "observer",
                message: format!(
                    "{:?} observes {} features for each of N={n} agents ({values} values \
                     per market), more than the limit of {MAX_OBS_VALUES}; use fewer \
                     generators or a per-agent observer such as \"simple\"",
                    observer.name(),
                    observer.dim(n)
                ),
            });
        }
        let ds = scenario.demand_scale();
        let cs = scenario.cost_scale();
        let t = scenario.t().max(1) as f64;
        let (noise_lo, noise_hi) = scenario.noise_bounds();
        let rules = scenario.rules(tie_rule);
        let mut bid_groups: Vec<(f64, f64)> = Vec::new();
        let mut bids: Vec<(f64, f64)> = scenario
            .demand_bids
            .iter()
            .map(|&(p, share)| (rules.clip(p) + 0.0, share))
            .collect();
        // Stable: bids of one price merge in the order given.
        bids.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (p, share) in bids {
            match bid_groups.last_mut() {
                Some(last) if last.0 == p => last.1 += share,
                _ => bid_groups.push((p, share)),
            }
        }
        Ok(Market {
            obs: ObsBuilder::new(observer, &scenario),
            rules,
            segments: scenario.segments,
            inelastic_share: scenario.inelastic_share(),
            bid_groups,
            limits: Limits::new(&scenario),
            reward_scale: 20.0 / (ds * cs * t),
            noise_sd: scenario.demand_noise * ds,
            noise_lo,
            noise_hi,
            scenario,
        })
    }

    pub fn n(&self) -> usize {
        self.scenario.n()
    }

    pub fn horizon(&self) -> usize {
        self.scenario.t()
    }

    pub fn obs_dim(&self) -> usize {
        self.obs.dim()
    }

    /// Offer blocks per generator, K.
    pub fn segments(&self) -> usize {
        self.segments
    }

    /// Offers per market, N x K.
    pub fn offers(&self) -> usize {
        self.n() * self.segments
    }

    /// Action values per market, N x K x 2.
    pub fn action_len(&self) -> usize {
        self.offers() * 2
    }

    /// The action shape of one market as text: "(N, 2)" or "(N, K, 2)".
    pub fn action_shape(&self) -> String {
        if self.segments == 1 {
            format!("({}, 2)", self.n())
        } else {
            format!("({}, {}, 2)", self.n(), self.segments)
        }
    }

    /// Length of a market's realised load-factor buffer: T x N when each
    /// episode draws its own (`availability_noise > 0`), else 0.
    pub fn availability_len(&self) -> usize {
        match &self.limits {
            Some(l) if l.draws_availability() => self.n() * self.horizon(),
            _ => 0,
        }
    }

    /// Load factors of hour `t` (N values): the episode's own draw when
    /// `realised` holds one, else the scenario's; `None` means all ones.
    #[inline]
    pub fn load_factors<'a>(&'a self, realised: &'a [f64], t: usize) -> Option<&'a [f64]> {
        let n = self.n();
        let t = t.min(self.horizon() - 1);
        if !realised.is_empty() {
            Some(&realised[t * n..(t + 1) * n])
        } else {
            self.scenario
                .availability
                .as_deref()
                .map(|a| &a[t * n..(t + 1) * n])
        }
    }

    /// Reward units per € of (penalised) profit:
    /// `20 / (demand_scale * cost_scale * max(1, T))`.
    pub fn reward_scale(&self) -> f64 {
        self.reward_scale
    }
}

/// Borrowed mutable state of one market.
pub struct StateMut<'a> {
    pub rng: &'a mut ChaCha8Rng,
    pub t: &'a mut usize,
    /// Realised (noisy) demand of each hour of the episode, MW.
    pub demand: &'a mut [f64],
    pub last_price: &'a mut f64,
    pub last_cleared: &'a mut [f64],
    /// The episode's load factors (T, N) when it draws its own
    /// ([`Market::availability_len`]), else empty.
    pub availability: &'a mut [f64],
}

/// Per-step scratch memory, allocated once.
#[derive(Clone, Debug, Default)]
pub struct Scratch {
    /// Offer prices (clipped to the cap and floor), €/MWh, (N x K).
    pub bids: Vec<f64>,
    /// Offered quantities, MW, (N x K).
    pub offered: Vec<f64>,
    /// Cleared quantities, MW, (N x K).
    pub cleared: Vec<f64>,
    /// Price paid per MWh of each offer, €/MWh, (N x K).
    pub paid: Vec<f64>,
    /// Demand bid groups of the hour: (price, MW).
    pub groups: Vec<(f64, f64)>,
    /// Served MW of each demand bid group.
    pub served: Vec<f64>,
    pub ws: Workspace,
}

impl Scratch {
    /// Empty scratch (grown by [`Scratch::ensure`]); `const` for thread-locals.
    pub const fn empty() -> Self {
        Scratch {
            bids: Vec::new(),
            offered: Vec::new(),
            cleared: Vec::new(),
            paid: Vec::new(),
            groups: Vec::new(),
            served: Vec::new(),
            ws: Workspace::new(),
        }
    }

    pub fn new(n: usize) -> Self {
        let mut s = Scratch::default();
        s.ensure(n);
        s
    }

    /// Grow to `n` offers (no-op once large enough).
    pub fn ensure(&mut self, n: usize) {
        if self.bids.len() != n {
            self.bids.resize(n, 0.0);
            self.offered.resize(n, 0.0);
            self.cleared.resize(n, 0.0);
            self.paid.resize(n, 0.0);
            self.ws = Workspace::with_capacity(n);
        }
    }
}

/// What one step produced besides observations and rewards.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepInfo {
    /// Clearing price, €/MWh.
    pub price: f64,
    /// Demand of the hour, MW.
    pub demand: f64,
    /// Unserved inelastic demand, MW (0 unless supply fell short).
    pub shortfall: f64,
    /// Volume-weighted average price paid to the offers, €/MWh (the
    /// clearing price when nothing cleared).
    pub average_paid: f64,
    /// True when this was the last hour of the episode.
    pub terminated: bool,
}

/// The offer of generator `i` for action `[a0, a1]` (clipped to the box):
/// `(bid, offered)` = `(c_i + tanh(a1) * max_bid_delta, (1 - a0) K_i)`,
/// €/MWh and MW, before the cap and floor. A block of a generator with K > 1
/// segments offers `offered / K` ([`block_offer`]).
#[inline(always)]
pub fn offer(s: &Scenario, i: usize, a0: f32, a1: f32) -> (f64, f64) {
    let withheld = (a0 as f64).clamp(0.0, 1.0);
    let price_action = (a1 as f64).clamp(-10.0, 10.0);
    (
        s.costs[i] + crate::fastmath::tanh(price_action) * s.max_bid_delta,
        (1.0 - withheld) * s.capacities[i],
    )
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
    if let Some(k) = actions.iter().position(|a| !a.is_finite()) {
        return Err(MarketError::BadAction {
            agent: agent_name(k / (2 * m.segments)),
            market: Default::default(),
            component: if k % 2 == 0 {
                "a0 (withheld share)"
            } else {
                "a1 (price action)"
            },
            value: actions[k] as f64,
        });
    }
    Ok(())
}

pub(crate) fn check_steppable(t: usize, horizon: usize) -> Result<()> {
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
    *st.last_price = f64::NAN;
    st.last_cleared.fill(0.0);
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
        *st.last_price,
        st.last_cleared,
        st.availability,
        obs,
    );
}

/// [`observe`] from the parts of a market's state: hour `t`, its demand
/// row, last price (NaN before the first step), last dispatch and realised
/// load factors (empty unless drawn per episode).
pub(crate) fn observe_parts(
    m: &Market,
    t: usize,
    demand: &[f64],
    last_price: f64,
    last_cleared: &[f64],
    availability: &[f64],
    obs: &mut [f32],
) {
    let horizon = m.horizon();
    let input = ObsInput {
        hour: t,
        demand: demand[t.min(horizon - 1)],
        last_price: (!last_price.is_nan()).then_some(last_price),
        last_cleared,
        load_factors: m.load_factors(availability, t),
    };
    m.obs.write(&input, obs);
}

/// Step one market that is running (`check_steppable`) with validated actions.
/// Leaves the bids, offers and dispatch of the hour in `sc` (and the
/// payments, except under uniform pricing with one block and no ramps, where
/// every offer is paid the price).
pub fn step_market(
    m: &Market,
    st: &mut StateMut<'_>,
    actions: &[f32],
    sc: &mut Scratch,
    obs: Option<&mut [f32]>,
    rewards: &mut [f32],
) -> StepInfo {
    let s = &m.scenario;
    let t = *st.t;
    let k = m.segments;
    if k == 1 {
        for (i, a) in actions.chunks_exact(2).enumerate() {
            (sc.bids[i], sc.offered[i]) = offer(s, i, a[0], a[1]);
        }
    } else {
        for (j, a) in actions.chunks_exact(2).enumerate() {
            (sc.bids[j], sc.offered[j]) = block_offer(s, j / k, a[0], a[1]);
        }
    }
    m.rules.clip_all(&mut sc.bids);
    if let Some(l) = &m.limits {
        let lf = m.load_factors(st.availability, t);
        if k == 1 {
            for (i, q) in sc.offered.iter_mut().enumerate() {
                let ramp = l.ramp(i, t, st.last_cleared[i]);
                *q = limited_quantity(*q, s.capacities[i], lf.map_or(1.0, |r| r[i]), ramp);
            }
        } else {
            for i in 0..m.n() {
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
    let demand = st.demand[t];
    let (c, shortfall) = clear_hour(m, demand, sc);
    let limits = m.limits.as_ref();
    if k == 1 && limits.is_none() && m.rules.mechanism == Mechanism::Uniform {
        // The common market: one block, no ramps, the clearing price paid.
        for (((r, &cost), &bid), &x) in rewards
            .iter_mut()
            .zip(&s.costs)
            .zip(&sc.bids)
            .zip(&sc.cleared)
        {
            *r = uniform_reward(m, cost, bid, x, c.price, shortfall) as f32;
        }
    } else {
        settle_hour(m, c.price, sc);
        for (i, r) in rewards.iter_mut().enumerate() {
            let js = i * k..(i + 1) * k;
            let ramp = limits.map_or(0.0, |l| {
                let x = if k == 1 {
                    sc.cleared[i]
                } else {
                    sc.cleared[js.clone()].iter().sum()
                };
                l.ramp_cost(i, t, st.last_cleared[i], x)
            });
            *r = block_reward(
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
    *st.last_price = c.price;
    if k == 1 {
        st.last_cleared.copy_from_slice(&sc.cleared);
    } else {
        for (x, blocks) in st.last_cleared.iter_mut().zip(sc.cleared.chunks_exact(k)) {
            *x = blocks.iter().sum();
        }
    }
    *st.t = t + 1;
    if let Some(obs) = obs {
        observe(m, st, obs);
    }
    StepInfo {
        price: c.price,
        demand,
        shortfall,
        average_paid: if m.rules.mechanism == Mechanism::Uniform {
            c.price
        } else {
            m.rules
                .mechanism
                .settlement()
                .average(c.price, &sc.paid, &sc.cleared)
        },
        terminated: t + 1 == m.horizon(),
    }
}

/// Clear the offers in `sc` (prices already clipped) against the hour's
/// `demand` (its inelastic part and its demand bids). Returns the clearing
/// and the unserved inelastic demand, MW. The one clearing of an hour, for
/// the env step and for the analysis; [`settle_hour`] then pays the offers.
#[inline]
pub fn clear_hour(m: &Market, demand: f64, sc: &mut Scratch) -> (Clearing, f64) {
    if m.bid_groups.is_empty() {
        let c = clear_unchecked(
            &sc.bids,
            &sc.offered,
            demand,
            &m.rules,
            &mut sc.ws,
            &mut sc.cleared,
        );
        let sf = shortfall(demand, &c);
        (c, sf)
    } else {
        let inelastic = demand * m.inelastic_share;
        sc.groups.clear();
        sc.groups
            .extend(m.bid_groups.iter().map(|&(p, share)| (p, share * demand)));
        sc.served.clear();
        sc.served.resize(sc.groups.len(), 0.0);
        let curve = DemandCurve {
            inelastic,
            groups: &sc.groups,
        };
        let c = clear_elastic_unchecked(
            &sc.bids,
            &sc.offered,
            &curve,
            &m.rules,
            &mut sc.ws,
            &mut sc.cleared,
            &mut sc.served,
        );
        let sf = shortfall(inelastic, &c);
        (c, sf)
    }
}

/// The price paid per MWh of each offer in `sc` under the market's
/// mechanism, into `sc.paid`.
#[inline]
pub fn settle_hour(m: &Market, price: f64, sc: &mut Scratch) {
    m.rules.mechanism.settle(price, &sc.bids, &mut sc.paid);
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
/// and the hour's ramp cost `ramp` (€, [`Limits::ramp_cost`]):
/// `(sum_k (p_k - c) x_k - bid_penalty * sum_k (b_k - c)^2 / K
///   - lol_penalty * shortfall - ramp) * reward_scale`.
/// The one place the reward formula lives (`step_market` and
/// `crate::analysis` both call it). With K = 1 and uniform pricing this is
/// `((P - c) x - bid_penalty (b - c)^2 - lol_penalty * shortfall) * scale`.
#[inline]
pub fn block_reward(
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

/// [`block_reward`] for one block paid the clearing price `price` and no
/// ramp cost, in the same operations (so the same bits):
/// `((P - c) x - bid_penalty (b - c)^2 - lol_penalty * shortfall) * reward_scale`.
#[inline]
pub fn uniform_reward(m: &Market, cost: f64, bid: f64, x: f64, price: f64, shortfall: f64) -> f64 {
    let s = &m.scenario;
    let markup = bid - cost;
    let profit = (price - cost) * x;
    let penalty = s.bid_penalty * markup * markup;
    let raw = profit - penalty - s.lol_penalty * shortfall;
    raw * m.reward_scale
}

/// Seed a market RNG: ChaCha8 from a 64-bit seed, or from OS entropy.
pub fn make_rng(seed: Option<u64>) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed.unwrap_or_else(rand::random))
}

/// The RNG of stream `stream` under the key of `seed`: ChaCha8 keyed by
/// `seed_from_u64(seed)`, with its stream (nonce) set. Stream 0 is
/// `make_rng(Some(seed))`; distinct streams never overlap.
pub fn stream_rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// The per-step history of one episode; row `h` is hour `h`. Per-offer
/// arrays are (T, N) with one block per generator, else (T, N, K).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record {
    /// Bid prices (clipped to the cap and floor), €/MWh, (T, N[, K]).
    pub bids: Vec<f64>,
    /// Offered quantities, MW, (T, N[, K]).
    pub offered: Vec<f64>,
    /// Cleared quantities, MW, (T, N[, K]).
    pub cleared: Vec<f64>,
    /// Price paid per MWh of each offer, €/MWh, (T, N[, K]); filled by
    /// [`MarketEnv::record`] from the prices, bids and dispatch (empty in the
    /// env's own running record and in snapshots).
    pub paid: Vec<f64>,
    /// Volume-weighted average paid price, €/MWh, (T,); as `paid`.
    pub average_paid: Vec<f64>,
    /// Rewards, (T, N), exactly as returned by `step`.
    pub rewards: Vec<f32>,
    /// Clearing prices, €/MWh, (T,).
    pub prices: Vec<f64>,
    /// Realised demand, MW, (T,).
    pub demand: Vec<f64>,
}

/// The full state of a [`MarketEnv`], for pickling.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub rng_seed: [u8; 32],
    pub rng_stream: u64,
    pub rng_word_pos: u128,
    /// `None` before the first reset.
    pub t: Option<usize>,
    pub demand: Vec<f64>,
    pub last_price: f64,
    pub last_cleared: Vec<f64>,
    /// The episode's own load factors (empty unless it draws them).
    pub availability: Vec<f64>,
    pub record: Record,
}

/// One market with its own RNG, state and episode record.
#[derive(Clone, Debug)]
pub struct MarketEnv {
    market: Arc<Market>,
    rng: ChaCha8Rng,
    t: usize,
    demand: Vec<f64>,
    last_price: f64,
    last_cleared: Vec<f64>,
    availability: Vec<f64>,
    scratch: Scratch,
    record: Record,
}

impl MarketEnv {
    /// A market that needs `reset` before its first step. With `seed = None`
    /// the RNG is seeded from OS entropy.
    pub fn new(
        scenario: Scenario,
        observer: Observer,
        tie_rule: TieRule,
        seed: Option<u64>,
    ) -> Result<Self> {
        let market = Arc::new(Market::new(scenario, observer, tie_rule)?);
        Self::from_market(market, seed)
    }

    /// A market of `market`'s kind; its memory (the episode record is T x N)
    /// is allocated fallibly: too large a scenario is an error, not an abort.
    pub fn from_market(market: Arc<Market>, seed: Option<u64>) -> Result<Self> {
        let (n, t) = (market.n(), market.horizon());
        let tn = checked_size(t, n, "scenario (T x N)")?;
        let tnk = checked_size(tn, market.segments(), "scenario (T x N x segments)")?;
        Ok(MarketEnv {
            rng: make_rng(seed),
            t: NOT_STARTED,
            demand: try_zeros(t, "scenario (T)")?,
            last_price: f64::NAN,
            last_cleared: try_zeros(n, "scenario (N)")?,
            availability: try_zeros(market.availability_len(), "scenario (T x N)")?,
            scratch: Scratch::new(market.offers()),
            record: Record {
                bids: try_zeros(tnk, "scenario (T x N x segments)")?,
                offered: try_zeros(tnk, "scenario (T x N x segments)")?,
                cleared: try_zeros(tnk, "scenario (T x N x segments)")?,
                // Derived from the prices, bids and dispatch in `record()`.
                paid: Vec::new(),
                average_paid: Vec::new(),
                rewards: try_zeros(tn, "scenario (T x N)")?,
                prices: try_zeros(t, "scenario (T)")?,
                demand: try_zeros(t, "scenario (T)")?,
            },
            market,
        })
    }

    pub fn market(&self) -> &Arc<Market> {
        &self.market
    }

    pub fn scenario(&self) -> &Scenario {
        &self.market.scenario
    }

    pub fn num_agents(&self) -> usize {
        self.market.n()
    }

    pub fn obs_dim(&self) -> usize {
        self.market.obs_dim()
    }

    pub fn horizon(&self) -> usize {
        self.market.horizon()
    }

    /// Hours stepped in this episode (`None` before the first reset).
    pub fn t(&self) -> Option<usize> {
        (self.t != NOT_STARTED).then_some(self.t)
    }

    /// Realised demand of the current episode, MW.
    pub fn demand(&self) -> &[f64] {
        &self.demand
    }

    /// Cleared quantities of the last step, MW.
    pub fn last_cleared(&self) -> &[f64] {
        &self.last_cleared
    }

    /// Load factors of the current episode, (T, N) row-major: its own draw
    /// when the scenario has `availability_noise`, else the scenario's
    /// (all ones without availability).
    pub fn load_factors(&self) -> Vec<f64> {
        let (n, t) = (self.num_agents(), self.horizon());
        if !self.availability.is_empty() {
            self.availability.clone()
        } else {
            self.scenario()
                .availability
                .clone()
                .unwrap_or_else(|| vec![1.0; n * t])
        }
    }

    fn state(&mut self) -> StateMut<'_> {
        StateMut {
            rng: &mut self.rng,
            t: &mut self.t,
            demand: &mut self.demand,
            last_price: &mut self.last_price,
            last_cleared: &mut self.last_cleared,
            availability: &mut self.availability,
        }
    }

    /// Start an episode; `Some(seed)` reseeds the RNG first. Writes the first
    /// observation, (N, D) row-major, into `obs`.
    pub fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]) -> Result<()> {
        self.check_obs(obs)?;
        if let Some(s) = seed {
            self.rng = ChaCha8Rng::seed_from_u64(s);
        }
        let market = Arc::clone(&self.market);
        reset_market(&market, &mut self.state(), Some(obs));
        Ok(())
    }

    fn check_obs(&self, obs: &[f32]) -> Result<()> {
        let want = self.num_agents() * self.obs_dim();
        if obs.len() != want {
            return Err(MarketError::Shape {
                arg: "obs",
                expected: format!("({}, {})", self.num_agents(), self.obs_dim()),
                got: format!("{} values", obs.len()),
            });
        }
        Ok(())
    }

    /// Step one hour. On error nothing changes.
    pub fn step(
        &mut self,
        actions: &[f32],
        obs: &mut [f32],
        rewards: &mut [f32],
    ) -> Result<StepInfo> {
        let n = self.num_agents();
        check_steppable(self.t, self.horizon())?;
        validate_actions(actions, &self.market)?;
        self.check_obs(obs)?;
        if rewards.len() != n {
            return Err(MarketError::Shape {
                arg: "rewards",
                expected: format!("({n},)"),
                got: format!("{} values", rewards.len()),
            });
        }
        let h = self.t;
        let market = Arc::clone(&self.market);
        let mut scratch = std::mem::take(&mut self.scratch);
        let info = step_market(
            &market,
            &mut self.state(),
            actions,
            &mut scratch,
            Some(obs),
            rewards,
        );
        let nk = market.offers();
        let offers = h * nk..(h + 1) * nk;
        self.record.bids[offers.clone()].copy_from_slice(&scratch.bids);
        self.record.offered[offers.clone()].copy_from_slice(&scratch.offered);
        self.record.cleared[offers.clone()].copy_from_slice(&scratch.cleared);
        self.record.rewards[h * n..(h + 1) * n].copy_from_slice(rewards);
        self.record.prices[h] = info.price;
        self.record.demand[h] = info.demand;
        self.scratch = scratch;
        Ok(info)
    }

    /// The record of the current episode: rows for the hours stepped so far.
    pub fn record(&self) -> Record {
        let n = self.num_agents();
        let nk = self.market.offers();
        let h = self.t().unwrap_or(0);
        // What each offer was paid, and the volume-weighted average, follow
        // from the price, the (clipped) bids and the dispatch of each hour.
        let settlement = self.market.rules.mechanism.settlement();
        let mut paid = vec![0.0; h * nk];
        let mut average_paid = vec![0.0; h];
        for (hour, (row, avg)) in paid
            .chunks_exact_mut(nk.max(1))
            .zip(&mut average_paid)
            .enumerate()
        {
            let offers = hour * nk..(hour + 1) * nk;
            let price = self.record.prices[hour];
            settlement.settle(price, &self.record.bids[offers.clone()], row);
            *avg = settlement.average(price, row, &self.record.cleared[offers]);
        }
        Record {
            bids: self.record.bids[..h * nk].to_vec(),
            offered: self.record.offered[..h * nk].to_vec(),
            cleared: self.record.cleared[..h * nk].to_vec(),
            paid,
            average_paid,
            rewards: self.record.rewards[..h * n].to_vec(),
            prices: self.record.prices[..h].to_vec(),
            demand: self.record.demand[..h].to_vec(),
        }
    }

    /// Everything needed to continue this market elsewhere, RNG included.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            rng_seed: self.rng.get_seed(),
            rng_stream: self.rng.get_stream(),
            rng_word_pos: self.rng.get_word_pos(),
            t: self.t(),
            demand: self.demand.clone(),
            last_price: self.last_price,
            last_cleared: self.last_cleared.clone(),
            availability: self.availability.clone(),
            record: self.record.clone(),
        }
    }

    /// Rebuild a market from [`MarketEnv::snapshot`].
    pub fn restore(market: Arc<Market>, snap: Snapshot) -> Result<Self> {
        let (n, horizon) = (market.n(), market.horizon());
        let nk = market.offers();
        let bad = |what: &str| {
            Err(MarketError::Shape {
                arg: "state",
                expected: format!("a snapshot of a market with N={n}, T={horizon}"),
                got: what.to_string(),
            })
        };
        let r = &snap.record;
        if snap.demand.len() != horizon
            || snap.last_cleared.len() != n
            || snap.availability.len() != market.availability_len()
            || r.bids.len() != nk * horizon
            || r.offered.len() != nk * horizon
            || r.cleared.len() != nk * horizon
            || r.rewards.len() != n * horizon
            || r.prices.len() != horizon
            || r.demand.len() != horizon
        {
            return bad("arrays of other sizes");
        }
        if snap.t.is_some_and(|t| t > horizon) {
            return bad("an hour beyond the horizon");
        }
        let mut rng = ChaCha8Rng::from_seed(snap.rng_seed);
        rng.set_stream(snap.rng_stream);
        rng.set_word_pos(snap.rng_word_pos);
        Ok(MarketEnv {
            rng,
            t: snap.t.unwrap_or(NOT_STARTED),
            demand: snap.demand,
            last_price: snap.last_price,
            last_cleared: snap.last_cleared,
            availability: snap.availability,
            scratch: Scratch::new(market.offers()),
            record: snap.record,
            market,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(seed: u64) -> MarketEnv {
        let s = Scenario::default_preset(5, 24).unwrap();
        MarketEnv::new(s, Observer::Simple, TieRule::ProRata, Some(seed)).unwrap()
    }

    #[test]
    fn truthful_episode_runs_and_terminates() {
        let mut e = env(1);
        let mut obs = vec![0f32; 20];
        let mut r = vec![0f32; 5];
        e.reset(None, &mut obs).unwrap();
        let a = vec![0f32; 10];
        for h in 0..24 {
            let info = e.step(&a, &mut obs, &mut r).unwrap();
            assert_eq!(info.terminated, h == 23);
            assert!(info.price >= 20.0 && info.price <= 40.0);
        }
        let err = e.step(&a, &mut obs, &mut r).unwrap_err();
        assert!(err.is_misuse());
        assert_eq!(e.record().prices.len(), 24);
    }

    #[test]
    fn same_seed_same_episode_and_snapshot_continues() {
        let mut a = env(7);
        let mut b = env(7);
        let mut oa = vec![0f32; 20];
        let mut ob = vec![0f32; 20];
        let mut r = vec![0f32; 5];
        a.reset(None, &mut oa).unwrap();
        b.reset(None, &mut ob).unwrap();
        assert_eq!(oa, ob);
        let act: Vec<f32> = (0..10).map(|k| (k as f32 * 0.37).sin()).collect();
        a.step(&act, &mut oa, &mut r).unwrap();
        let mut c = MarketEnv::restore(Arc::clone(a.market()), a.snapshot()).unwrap();
        let mut oc = oa.clone();
        for _ in 0..23 {
            a.step(&act, &mut oa, &mut r).unwrap();
            c.step(&act, &mut oc, &mut r).unwrap();
        }
        assert_eq!(a.record(), c.record());
        a.reset(None, &mut oa).unwrap();
        c.reset(None, &mut oc).unwrap();
        assert_eq!(a.demand(), c.demand());
    }

    #[test]
    fn bad_actions_change_nothing() {
        let mut e = env(3);
        let mut obs = vec![0f32; 20];
        let mut r = vec![0f32; 5];
        assert!(e
            .step(&[0.0; 10], &mut obs, &mut r)
            .unwrap_err()
            .is_misuse());
        e.reset(None, &mut obs).unwrap();
        let mut a = vec![0f32; 10];
        a[7] = f32::NAN;
        let err = e.step(&a, &mut obs, &mut r).unwrap_err().to_string();
        assert!(err.contains("gen_3") && err.contains("a1"), "{err}");
        assert_eq!(e.t(), Some(0));
        assert!(e.step(&[0.0; 8], &mut obs, &mut r).is_err());
    }
}
