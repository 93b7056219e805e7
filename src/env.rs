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

pub mod limits;

use crate::clearing::{clear_unchecked, Clearing, Rules, TieRule, Workspace};
use crate::error::{agent_name, checked_size, try_zeros, MarketError, Result};
use crate::observe::{ObsBuilder, ObsInput, Observer};
use crate::scenario::Scenario;
use limits::{draw_availability, limited_quantity, Limits};
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
        Ok(Market {
            obs: ObsBuilder::new(observer, &scenario),
            rules: scenario.rules(tie_rule),
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
    pub bids: Vec<f64>,
    pub offered: Vec<f64>,
    pub cleared: Vec<f64>,
    pub ws: Workspace,
}

impl Scratch {
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
    /// Unserved demand, MW (0 unless supply fell short).
    pub shortfall: f64,
    /// True when this was the last hour of the episode.
    pub terminated: bool,
}

/// The offer of generator `i` for action `[a0, a1]` (clipped to the box):
/// `(bid, offered)` = `(c_i + tanh(a1) * max_bid_delta, (1 - a0) K_i)`,
/// €/MWh and MW.
#[inline(always)]
pub fn offer(s: &Scenario, i: usize, a0: f32, a1: f32) -> (f64, f64) {
    let withheld = (a0 as f64).clamp(0.0, 1.0);
    let price_action = (a1 as f64).clamp(-10.0, 10.0);
    (
        s.costs[i] + crate::fastmath::tanh(price_action) * s.max_bid_delta,
        (1.0 - withheld) * s.capacities[i],
    )
}

/// Check a flat (N, 2) action array; the error names the agent.
pub fn validate_actions(actions: &[f32], n: usize) -> Result<()> {
    if actions.len() != 2 * n {
        return Err(MarketError::Shape {
            arg: "actions",
            expected: format!("({n}, 2)"),
            got: format!("{} values", actions.len()),
        });
    }
    if let Some(k) = actions.iter().position(|a| !a.is_finite()) {
        return Err(MarketError::BadAction {
            agent: agent_name(k / 2),
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
pub fn reset_market(m: &Market, st: &mut StateMut<'_>, obs: &mut [f32]) {
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
    observe(m, st, obs);
}

fn observe(m: &Market, st: &StateMut<'_>, obs: &mut [f32]) {
    let horizon = m.horizon();
    let t = *st.t;
    let input = ObsInput {
        hour: t,
        demand: st.demand[t.min(horizon - 1)],
        last_price: (!st.last_price.is_nan()).then_some(*st.last_price),
        last_cleared: st.last_cleared,
        load_factors: m.load_factors(st.availability, t),
    };
    m.obs.write(&input, obs);
}

/// Step one market that is running (`check_steppable`) with validated actions.
/// Leaves the bids, offers and dispatch of the hour in `sc`.
pub fn step_market(
    m: &Market,
    st: &mut StateMut<'_>,
    actions: &[f32],
    sc: &mut Scratch,
    obs: &mut [f32],
    rewards: &mut [f32],
) -> StepInfo {
    let s = &m.scenario;
    let t = *st.t;
    for (i, a) in actions.chunks_exact(2).enumerate() {
        (sc.bids[i], sc.offered[i]) = offer(s, i, a[0], a[1]);
    }
    if let Some(l) = &m.limits {
        let lf = m.load_factors(st.availability, t);
        for (i, q) in sc.offered.iter_mut().enumerate() {
            let ramp = l.ramp(i, t, st.last_cleared[i]);
            *q = limited_quantity(*q, s.capacities[i], lf.map_or(1.0, |r| r[i]), ramp);
        }
    }
    let demand = st.demand[t];
    let c = clear_unchecked(
        &sc.bids,
        &sc.offered,
        demand,
        &m.rules,
        &mut sc.ws,
        &mut sc.cleared,
    );
    let shortfall = shortfall(demand, &c);
    let limits = m.limits.as_ref();
    for (i, (((r, &cost), &bid), &x)) in rewards
        .iter_mut()
        .zip(&s.costs)
        .zip(&sc.bids)
        .zip(&sc.cleared)
        .enumerate()
    {
        let ramp = limits.map_or(0.0, |l| l.ramp_cost(i, t, st.last_cleared[i], x));
        *r = hour_reward(m, cost, bid, x, c.price, shortfall, ramp) as f32;
    }
    *st.last_price = c.price;
    st.last_cleared.copy_from_slice(&sc.cleared);
    *st.t = t + 1;
    observe(m, st, obs);
    StepInfo {
        price: c.price,
        demand,
        shortfall,
        terminated: t + 1 == m.horizon(),
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

/// The reward of one generator for one hour, before `step`'s cast to f32:
/// `((P - c) x - bid_penalty (b - c)^2 - lol_penalty * shortfall - ramp) * reward_scale`
/// for cost `c` and bid `b` (€/MWh), cleared `x` (MW) at price `P` (€/MWh)
/// and the hour's ramp cost `ramp` (€, [`Limits::ramp_cost`]).
/// The one place the reward formula lives (`step_market` and
/// `crate::analysis` both call it).
#[inline]
pub fn hour_reward(
    m: &Market,
    cost: f64,
    bid: f64,
    x: f64,
    price: f64,
    shortfall: f64,
    ramp: f64,
) -> f64 {
    let s = &m.scenario;
    let markup = bid - cost;
    let profit = (price - cost) * x - s.bid_penalty * markup * markup - s.lol_penalty * shortfall;
    (profit - ramp) * m.reward_scale
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

/// The per-step history of one episode; row `h` is hour `h`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record {
    /// Bid prices, €/MWh, (T, N).
    pub bids: Vec<f64>,
    /// Offered quantities, MW, (T, N).
    pub offered: Vec<f64>,
    /// Cleared quantities, MW, (T, N).
    pub cleared: Vec<f64>,
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
        Ok(MarketEnv {
            rng: make_rng(seed),
            t: NOT_STARTED,
            demand: try_zeros(t, "scenario (T)")?,
            last_price: f64::NAN,
            last_cleared: try_zeros(n, "scenario (N)")?,
            availability: try_zeros(market.availability_len(), "scenario (T x N)")?,
            scratch: Scratch::new(n),
            record: Record {
                bids: try_zeros(tn, "scenario (T x N)")?,
                offered: try_zeros(tn, "scenario (T x N)")?,
                cleared: try_zeros(tn, "scenario (T x N)")?,
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
        reset_market(&market, &mut self.state(), obs);
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
        validate_actions(actions, n)?;
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
            obs,
            rewards,
        );
        let row = h * n..(h + 1) * n;
        self.record.bids[row.clone()].copy_from_slice(&scratch.bids);
        self.record.offered[row.clone()].copy_from_slice(&scratch.offered);
        self.record.cleared[row.clone()].copy_from_slice(&scratch.cleared);
        self.record.rewards[row].copy_from_slice(rewards);
        self.record.prices[h] = info.price;
        self.record.demand[h] = info.demand;
        self.scratch = scratch;
        Ok(info)
    }

    /// The record of the current episode: rows for the hours stepped so far.
    pub fn record(&self) -> Record {
        let n = self.num_agents();
        let h = self.t().unwrap_or(0);
        Record {
            bids: self.record.bids[..h * n].to_vec(),
            offered: self.record.offered[..h * n].to_vec(),
            cleared: self.record.cleared[..h * n].to_vec(),
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
            || r.bids.len() != n * horizon
            || r.offered.len() != n * horizon
            || r.cleared.len() != n * horizon
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
            scratch: Scratch::new(n),
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
