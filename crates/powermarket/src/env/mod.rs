//! `MarketEnv`: one day-ahead market, stepped hour by hour.
//!
//! Each step every generator submits an action `[a0, a1]` from the box
//! `[0, 1] x [-10, 10]` (values outside are clipped to it): it offers
//! `q_i = (1 - a0) K_i` MW at `b_i = c_i + tanh(a1) * max_bid_delta` €/MWh
//! (with the scenario's `price_action = "linear"`: `a1` in [-1, 1] and
//! `b_i = c_i + a1 * max_bid_delta`; [`price_action`]).
//! The market clears at a uniform price `P`, and generator `i` earns
//!
//! `((P - c_i) x_i - bid_penalty (b_i - c_i)^2 - lol_penalty * shortfall)
//!   * 20 / (demand_scale * cost_scale * max(1, T))`.
//!
//! With availability (load factors) or ramp limits in the scenario, the
//! offered quantity is limited as [`crate::units::generator`] says, and the reward also
//! subtracts `ramp_cost_i |x_t - x_(t-1)|` (inside the scaled profit).
//!
//! The step kernel ([`step_market`], [`reset_market`]) works on borrowed
//! state so that [`crate::VecMarketEnv`] runs exactly the same code over its
//! struct-of-arrays state: a batched market is bit-identical to a single one.

use crate::clearing::{Rules, TieRule, Workspace};
pub mod action;
pub mod fronts;
mod market_env;
pub mod network;
pub mod price_action;
mod step;
pub(crate) mod storage;

use crate::error::{try_zeros, MarketError, Result};
use crate::observe::{ObsBuilder, Observer};
use crate::scenario::Scenario;
use crate::units::generator::Limits;
pub use market_env::{MarketEnv, Record, Snapshot};
use rand_chacha::ChaCha8Rng;
pub use step::check_steppable;
pub use step::{
    block_offer, clear_copper, clear_hour, hour_reward, offer, reset_market, settle_hour,
    shortfall, step_market, validate_actions,
};
pub(crate) use step::{observe, observe_parts};

pub use action::{ACTION_HIGH, ACTION_LOW};
pub use price_action::PriceAction;

/// Largest observation (N x D values) of one market: 2^27 float32 (512 MiB).
pub const MAX_OBS_VALUES: usize = 1 << 27;

/// `t` of a market that has not been reset yet.
pub const NOT_STARTED: usize = usize::MAX;

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
    /// Reference price of each storage unit, €/MWh.
    pub(crate) sto_reference: Vec<f64>,
    /// Terminal value of each storage unit, €/MWh.
    pub(crate) sto_terminal: Vec<f64>,
    /// The network of a networked scenario ([`Scenario::networked`]).
    pub grid: Option<network::Grid>,
}

impl Market {
    pub fn new(scenario: Scenario, observer: Observer, tie_rule: TieRule) -> Result<Self> {
        scenario.validate()?;
        let (n, a) = (scenario.n(), scenario.agents());
        let values = a.saturating_mul(observer.dim(n));
        if values > MAX_OBS_VALUES {
            return Err(MarketError::Invalid {
                arg: "observer",
                message: format!(
                    "{:?} observes {} features for each of {a} agents ({values} values \
                     per market), more than the limit of {MAX_OBS_VALUES}; use fewer \
                     generators or a per-agent observer such as \"simple\"",
                    observer.name(),
                    observer.dim(n)
                ),
            });
        }
        let ds = scenario.demand_scale();
        let (noise_lo, noise_hi) = scenario.noise_bounds();
        let rules = scenario.rules(tie_rule);
        // Demand bids merged by (clipped) price, shares summed in the order
        // given: the grouping of `pm.clear`, on shares instead of MW.
        let (prices, shares): (Vec<f64>, Vec<f64>) = scenario
            .demand_bids
            .iter()
            .map(|&(p, share)| (rules.clip(p), share))
            .unzip();
        let mut bid_groups = Vec::new();
        crate::clearing::group_bids(&prices, &shares, &mut bid_groups, &mut Vec::new())?;
        let mean_cost = scenario.mean_cost();
        Ok(Market {
            grid: network::Grid::new(&scenario, &rules)?,
            sto_reference: scenario
                .storage
                .iter()
                .map(|u| u.reference(mean_cost))
                .collect(),
            sto_terminal: scenario
                .storage
                .iter()
                .map(|u| u.terminal(mean_cost))
                .collect(),
            obs: ObsBuilder::new(observer, &scenario),
            rules,
            segments: scenario.segments,
            inelastic_share: scenario.inelastic_share(),
            bid_groups,
            limits: Limits::new(&scenario),
            reward_scale: scenario.reward_scale(),
            noise_sd: scenario.demand_noise * ds,
            noise_lo,
            noise_hi,
            scenario,
        })
    }

    /// Generators N.
    pub fn n(&self) -> usize {
        self.scenario.n()
    }

    /// Storage units S.
    pub fn s(&self) -> usize {
        self.scenario.s()
    }

    /// Agents A = N + S: the agent axis of actions, observations and rewards.
    pub fn agents(&self) -> usize {
        self.scenario.agents()
    }

    /// Reference price of storage unit `u`, €/MWh.
    pub fn storage_reference(&self, u: usize) -> f64 {
        self.sto_reference[u]
    }

    /// Terminal value of storage unit `u`, €/MWh.
    pub fn storage_terminal(&self, u: usize) -> f64 {
        self.sto_terminal[u]
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

    /// Generator offers per market, N x K.
    pub fn offers(&self) -> usize {
        self.n() * self.segments
    }

    /// Storage blocks per market, S x K.
    pub fn storage_blocks(&self) -> usize {
        self.s() * self.segments
    }

    /// Action values per market, A x K x 2.
    pub fn action_len(&self) -> usize {
        (self.offers() + self.storage_blocks()) * 2
    }

    /// The action shape of one market as text: "(A, 2)" or "(A, K, 2)".
    pub fn action_shape(&self) -> String {
        if self.segments == 1 {
            format!("({}, 2)", self.agents())
        } else {
            format!("({}, {}, 2)", self.agents(), self.segments)
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

    /// Prices a market keeps per hour: Z node prices on a networked market,
    /// else 1.
    pub fn prices_len(&self) -> usize {
        self.grid.as_ref().map_or(1, |g| g.z)
    }

    /// Node prices reported per hour: Z on a networked market, else 0.
    pub fn nodes_len(&self) -> usize {
        self.grid.as_ref().map_or(0, |g| g.z)
    }

    /// Line flows reported per hour: L on a networked market, else 0.
    pub fn lines_len(&self) -> usize {
        self.grid.as_ref().map_or(0, |g| g.lines)
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
    /// Last clearing price (NaN before the first step): one value, or the
    /// Z node prices of a networked market ([`Market::prices_len`]).
    pub last_price: &'a mut [f64],
    /// Last cleared quantity of each agent, MW (A values; a storage unit's
    /// is its net sale, discharge minus charge).
    pub last_cleared: &'a mut [f64],
    /// State of charge of each storage unit, MWh (S values).
    pub soc: &'a mut [f64],
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
    /// The storage blocks of the hour ([`StorageScratch`]).
    pub sto: StorageScratch,
    /// The network clearing's memory and results (empty without a grid).
    pub grid: network::GridScratch,
}

/// Per-step memory of the storage blocks of a market (S x K each).
#[derive(Clone, Debug, Default)]
pub struct StorageScratch {
    /// Block prices (clipped to the cap and floor), €/MWh.
    pub bids: Vec<f64>,
    /// Signed block quantities after the state-of-charge cut, MW: > 0 a
    /// discharge offer, < 0 a charge bid.
    pub quantities: Vec<f64>,
    /// Signed cleared quantities, MW: > 0 sold, < 0 bought.
    pub cleared: Vec<f64>,
    /// Price paid per MWh of each block (received when selling), €/MWh.
    pub paid: Vec<f64>,
    /// The discharge blocks in the offer book, in order: offer
    /// `offers() + r` of the hour is block `discharging[r]`.
    pub discharging: Vec<u32>,
    /// The charge blocks among the demand bids, and their bid group.
    pub charging: Vec<(u32, u32)>,
}

impl StorageScratch {
    /// Memory for `blocks` storage blocks, allocated fallibly.
    pub fn try_new(blocks: usize, what: &'static str) -> Result<Self> {
        let mut discharging = Vec::new();
        let mut charging = Vec::new();
        let fail = |_| MarketError::Memory {
            what,
            bytes: blocks.saturating_mul(8),
        };
        discharging.try_reserve_exact(blocks).map_err(fail)?;
        charging.try_reserve_exact(blocks).map_err(fail)?;
        Ok(StorageScratch {
            bids: try_zeros(blocks, what)?,
            quantities: try_zeros(blocks, what)?,
            cleared: try_zeros(blocks, what)?,
            paid: try_zeros(blocks, what)?,
            discharging,
            charging,
        })
    }
}

impl Scratch {
    /// Empty scratch (grown by [`Scratch::ensure`]).
    pub fn empty() -> Self {
        Scratch {
            bids: Vec::new(),
            offered: Vec::new(),
            cleared: Vec::new(),
            paid: Vec::new(),
            groups: Vec::new(),
            served: Vec::new(),
            ws: Workspace::new(),
            sto: StorageScratch {
                bids: Vec::new(),
                quantities: Vec::new(),
                cleared: Vec::new(),
                paid: Vec::new(),
                discharging: Vec::new(),
                charging: Vec::new(),
            },
            grid: network::GridScratch::default(),
        }
    }

    /// Scratch for a step of market `m`: its N x K generator offers, room
    /// for its S x K storage blocks in the offer book, and their own
    /// memory; allocated fallibly.
    pub fn try_for(m: &Market, what: &'static str) -> Result<Self> {
        let mut sc = Scratch::try_new(m.offers() + m.storage_blocks(), what)?;
        sc.try_ensure_for(m, what)?;
        Ok(sc)
    }

    /// [`Scratch::try_for`] in place: no-op when already sized for `m`;
    /// `self` unchanged on error.
    pub fn try_ensure_for(&mut self, m: &Market, what: &'static str) -> Result<()> {
        let blocks = m.storage_blocks();
        if self.sto.bids.len() != blocks {
            self.sto = StorageScratch::try_new(blocks, what)?;
        }
        if !self.grid.fits(m) {
            self.grid = network::GridScratch::try_for(m, what)?;
        }
        // The bid groups of an hour: the scenario's and every charge block.
        let groups = m.scenario.demand_bids.len().saturating_add(blocks);
        self.groups
            .try_reserve(groups.saturating_sub(self.groups.len()))
            .map_err(|_| MarketError::Memory {
                what,
                bytes: groups.saturating_mul(16),
            })?;
        self.served
            .try_reserve(groups.saturating_sub(self.served.len()))
            .map_err(|_| MarketError::Memory {
                what,
                bytes: groups.saturating_mul(8),
            })?;
        self.try_ensure(m.offers() + blocks, what)
    }

    pub fn new(n: usize) -> Self {
        let mut s = Scratch::default();
        s.ensure(n);
        s
    }

    /// [`Scratch::new`], allocated fallibly: too many offers is an error
    /// naming `what`, not an abort. The same zeros as `new`.
    pub fn try_new(n: usize, what: &'static str) -> Result<Self> {
        Ok(Scratch {
            bids: try_zeros(n, what)?,
            offered: try_zeros(n, what)?,
            cleared: try_zeros(n, what)?,
            paid: try_zeros(n, what)?,
            groups: Vec::new(),
            served: Vec::new(),
            ws: Workspace::try_with_capacity(n, what)?,
            sto: StorageScratch::default(),
            grid: network::GridScratch::default(),
        })
    }

    /// [`Scratch::ensure`], allocated fallibly: an error naming `what`
    /// instead of an abort, with `self` unchanged.
    pub fn try_ensure(&mut self, n: usize, what: &'static str) -> Result<()> {
        if self.bids.len() != n {
            let fresh = Scratch::try_new(n, what)?;
            (self.bids, self.offered, self.cleared, self.paid, self.ws) = (
                fresh.bids,
                fresh.offered,
                fresh.cleared,
                fresh.paid,
                fresh.ws,
            );
        }
        Ok(())
    }

    /// [`Scratch::try_ensure_for`], growing infallibly (for memory that
    /// was had before).
    pub fn ensure_for(&mut self, m: &Market) {
        if !self.grid.fits(m) {
            self.grid = network::GridScratch::try_for(m, "scenario (network)")
                .expect("memory for the network clearing was had before");
        }
        let blocks = m.storage_blocks();
        if self.sto.bids.len() != blocks {
            self.sto = StorageScratch {
                bids: vec![0.0; blocks],
                quantities: vec![0.0; blocks],
                cleared: vec![0.0; blocks],
                paid: vec![0.0; blocks],
                discharging: Vec::with_capacity(blocks),
                charging: Vec::with_capacity(blocks),
            };
        }
        self.ensure(m.offers() + blocks);
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
    /// Congestion rent of the hour, €/h (0 without a network).
    pub congestion_rent: f64,
}
