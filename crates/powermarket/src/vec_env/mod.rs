//! `VecMarketEnv`: M independent markets on one scenario, stepped in one call.
//!
//! State is kept as struct-of-arrays (one RNG, hour, demand row, last price
//! and last dispatch row per market). A step writes into caller-owned flat
//! buffers (in Python: preallocated NumPy arrays) and spreads the markets over
//! the shared rayon pool ([`crate::pool`]). Every market runs the kernel of
//! [`crate::env`] on its own ChaCha stream: market `i` of a batch seeded `s`
//! uses key `s`, stream `i` (so market 0 is bit-identical to a `MarketEnv`
//! seeded `s`), and with a seed list market `i` uses key `seeds[i]`, stream
//! 0 (bit-identical to a `MarketEnv` seeded `seeds[i]`), reset without a
//! seed whenever its episode ends.

use crate::env::{
    check_steppable, observe, observe_parts, reset_market, step_market, validate_actions, Market,
    Scratch, StateMut, NOT_STARTED,
};
use crate::error::{checked_size, try_zeros, MarketError, Result};
use crate::rng::{stream_rng, RngState};
use rand_chacha::ChaCha8Rng;
use std::cell::RefCell;
use std::sync::Arc;

mod outputs;

pub use outputs::{
    Column, ColumnMut, Dtype, OutRows, OutputSpec, Place, Rows, Sizes, VecOutputs, Width, OUTPUTS,
};

/// The state of a range of markets, one row per market in each field.
struct StateRows<'a> {
    rngs: &'a mut [ChaCha8Rng],
    ts: &'a mut [usize],
    /// (T,) realised demand per market.
    demand_rows: &'a mut [f64],
    /// (P,) per market ([`Market::prices_len`]).
    last_price: &'a mut [f64],
    /// (A,) per market.
    last_cleared: &'a mut [f64],
    /// (S,) per market.
    soc: &'a mut [f64],
    /// (T, N) load factors per market that draws its own, else empty.
    availability: &'a mut [f64],
}

/// Per-market lengths of the state rows.
#[derive(Clone, Copy)]
struct StateSizes {
    /// Agents A.
    n: usize,
    /// Storage units S.
    s: usize,
    horizon: usize,
    avail: usize,
    /// Prices kept per market.
    p: usize,
}

impl<'a> StateRows<'a> {
    /// The state of market `k` of this range.
    fn market(&mut self, k: usize, z: StateSizes) -> StateMut<'_> {
        StateMut {
            rng: &mut self.rngs[k],
            t: &mut self.ts[k],
            demand: &mut self.demand_rows[k * z.horizon..(k + 1) * z.horizon],
            last_price: &mut self.last_price[k * z.p..(k + 1) * z.p],
            last_cleared: &mut self.last_cleared[k * z.n..(k + 1) * z.n],
            soc: &mut self.soc[k * z.s..(k + 1) * z.s],
            availability: &mut self.availability[k * z.avail..(k + 1) * z.avail],
        }
    }

    /// Pieces of `grain` markets each, for threads.
    fn chunks(self, grain: usize, z: StateSizes) -> impl Iterator<Item = StateRows<'a>> {
        let cut = |per: usize| (per * grain).max(1);
        let mut rngs = self.rngs.chunks_mut(grain);
        let mut ts = self.ts.chunks_mut(grain);
        let mut demand = self.demand_rows.chunks_mut(cut(z.horizon));
        let mut price = self.last_price.chunks_mut(cut(z.p));
        let mut cleared = self.last_cleared.chunks_mut(cut(z.n));
        let mut soc = self.soc.chunks_mut(cut(z.s));
        let mut avail = self.availability.chunks_mut(cut(z.avail));
        std::iter::from_fn(move || {
            Some(StateRows {
                rngs: rngs.next()?,
                ts: ts.next().unwrap_or_default(),
                demand_rows: demand.next().unwrap_or_default(),
                last_price: price.next().unwrap_or_default(),
                last_cleared: cleared.next().unwrap_or_default(),
                soc: soc.next().unwrap_or_default(),
                availability: avail.next().unwrap_or_default(),
            })
        })
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::empty());
}

/// Step every market of a range (the first being market `first` of the
/// batch), one after another, on this thread. Errors only when a network
/// clearing fails (see [`step_market`]).
fn run_markets(
    m: &Market,
    first: usize,
    actions: &[f32],
    mut state: StateRows<'_>,
    o: OutRows<'_>,
) -> Result<()> {
    let (n, d, na) = (m.agents(), m.obs_dim(), m.action_len());
    let nd = n * d;
    let z = state_sizes(m);
    SCRATCH.with(|cell| {
        let mut sc = cell.borrow_mut();
        sc.ensure_for(m);
        for k in 0..state.ts.len() {
            let mut st = state.market(k, z);
            let mut obs = (!o.obs.is_empty()).then(|| &mut o.obs[k * nd..(k + 1) * nd]);
            let info = step_market(
                m,
                &mut st,
                &actions[k * na..(k + 1) * na],
                &mut sc,
                obs.as_deref_mut(),
                &mut o.rewards[k * n..(k + 1) * n],
            )
            .map_err(|e| e.in_market(first + k))?;
            o.price[k] = info.price;
            o.demand[k] = info.demand;
            o.shortfall[k] = info.shortfall;
            o.average_paid[k] = info.average_paid;
            o.cleared[k * n..(k + 1) * n].copy_from_slice(st.last_cleared);
            let s = st.soc.len();
            o.soc[k * s..(k + 1) * s].copy_from_slice(st.soc);
            if m.grid.is_some() {
                let (z, l) = (sc.grid.prices.len(), sc.grid.flows.len());
                o.node_prices[k * z..(k + 1) * z].copy_from_slice(&sc.grid.prices);
                o.flows[k * l..(k + 1) * l].copy_from_slice(&sc.grid.flows);
                o.congestion_rent[k] = info.congestion_rent;
            }
            o.terminated[k] = info.terminated;
            o.truncated[k] = false;
            o.final_mask[k] = info.terminated;
            if info.terminated {
                let last = &mut o.final_obs[k * nd..(k + 1) * nd];
                match obs {
                    Some(obs) => {
                        last.copy_from_slice(obs);
                        reset_market(m, &mut st, Some(obs));
                    }
                    None => {
                        observe(m, &st, last);
                        reset_market(m, &mut st, None);
                    }
                }
            }
        }
        Ok(())
    })
}

fn state_sizes(m: &Market) -> StateSizes {
    StateSizes {
        n: m.agents(),
        s: m.s(),
        horizon: m.horizon(),
        avail: m.availability_len(),
        p: m.prices_len(),
    }
}

/// How the markets of a batch are seeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seeds {
    /// Market `i` uses key `seed`, stream `i` (key from OS entropy for `None`).
    Base(Option<u64>),
    /// Market `i` uses key `seeds[i]`, stream 0.
    PerMarket(Vec<u64>),
}

impl Seeds {
    /// The RNG of market `i`, given that `self` was checked for `m` markets.
    fn rng(&self, i: usize, base: u64) -> ChaCha8Rng {
        match self {
            Seeds::Base(_) => stream_rng(base, i as u64),
            Seeds::PerMarket(list) => stream_rng(list[i], 0),
        }
    }

    fn check(&self, m: usize) -> Result<()> {
        match self {
            Seeds::PerMarket(list) if list.len() != m => Err(MarketError::Shape {
                arg: "seed",
                expected: format!("an int or a list of {m} ints (one per market)"),
                got: format!("a list of {}", list.len()),
            }),
            _ => Ok(()),
        }
    }
}

/// The state of a [`VecMarketEnv`], for pickling: one entry per market.
#[derive(Clone, Debug, PartialEq)]
pub struct VecSnapshot {
    pub rngs: Vec<RngState>,
    pub ts: Vec<Option<usize>>,
    pub demand: Vec<f64>,
    pub last_price: Vec<f64>,
    pub last_cleared: Vec<f64>,
    /// (M, S) storage states of charge, MWh.
    pub soc: Vec<f64>,
    /// (M, T, N) load factors of markets that draw their own, else empty.
    pub availability: Vec<f64>,
}

/// Many markets of one scenario, stepped together.
pub struct VecMarketEnv {
    market: Arc<Market>,
    rngs: Vec<ChaCha8Rng>,
    ts: Vec<usize>,
    demand: Vec<f64>,
    last_price: Vec<f64>,
    last_cleared: Vec<f64>,
    soc: Vec<f64>,
    availability: Vec<f64>,
    num_threads: usize,
    /// Whether the pool's threads have sized their scratch memory for this
    /// market once (fallibly); see [`VecMarketEnv::step`].
    pool_ready: bool,
}

/// Fewer agent-steps than this per call are run on the calling thread: the
/// hand-off to a pool would cost more than it saves.
const PARALLEL_MIN_AGENTS: usize = 1024;

/// Fewer observation values than this are written on the calling thread.
pub const PARALLEL_MIN_OBS_VALUES: usize = 1 << 17;

impl VecMarketEnv {
    /// `num_envs` markets seeded by `seeds`. `num_threads` (1 to
    /// [`crate::pool::MAX_THREADS`], `None` for the pool size) is how many
    /// pieces of work a step is cut into for the shared pool.
    pub fn new(
        market: Arc<Market>,
        num_envs: usize,
        seeds: Seeds,
        num_threads: Option<usize>,
    ) -> Result<Self> {
        if num_envs == 0 {
            return Err(MarketError::Invalid {
                arg: "num_envs",
                message: "must be >= 1, got 0".into(),
            });
        }
        let num_threads = crate::pool::threads_arg(num_threads)?;
        seeds.check(num_envs)?;
        let base = match seeds {
            Seeds::Base(Some(s)) => s,
            _ => rand::random(),
        };
        let (n, t) = (market.agents(), market.horizon());
        let mut rngs = Vec::new();
        rngs.try_reserve_exact(num_envs)
            .map_err(|_| MarketError::Memory {
                what: "num_envs",
                bytes: num_envs.saturating_mul(std::mem::size_of::<ChaCha8Rng>()),
            })?;
        rngs.extend((0..num_envs).map(|i| seeds.rng(i, base)));
        let mut ts = try_zeros::<usize>(num_envs, "num_envs")?;
        ts.fill(NOT_STARTED);
        let mut last_price = try_zeros::<f64>(
            checked_size(num_envs, market.prices_len(), "num_envs")?,
            "num_envs",
        )?;
        last_price.fill(f64::NAN);
        Ok(VecMarketEnv {
            rngs,
            ts,
            demand: try_zeros(checked_size(num_envs, t, "num_envs")?, "num_envs")?,
            last_price,
            last_cleared: try_zeros(checked_size(num_envs, n, "num_envs")?, "num_envs")?,
            soc: try_zeros(checked_size(num_envs, market.s(), "num_envs")?, "num_envs")?,
            availability: try_zeros(
                checked_size(num_envs, market.availability_len(), "num_envs")?,
                "num_envs",
            )?,
            num_threads,
            pool_ready: false,
            market,
        })
    }

    pub fn market(&self) -> &Arc<Market> {
        &self.market
    }

    pub fn num_envs(&self) -> usize {
        self.ts.len()
    }

    pub fn num_threads(&self) -> usize {
        self.num_threads
    }

    /// Hour of each market's episode (`None` before its first reset).
    pub fn hours(&self) -> Vec<Option<usize>> {
        self.ts
            .iter()
            .map(|&t| (t != NOT_STARTED).then_some(t))
            .collect()
    }

    /// Realised demand of market `i`'s current episode, MW.
    pub fn demand_of(&self, i: usize) -> &[f64] {
        let t = self.market.horizon();
        &self.demand[i * t..(i + 1) * t]
    }

    /// Load factors of market `i`'s current episode, (T, N) row-major (see
    /// [`crate::env::MarketEnv::load_factors`]).
    pub fn load_factors_of(&self, i: usize) -> Vec<f64> {
        let av = self.market.availability_len();
        if av > 0 {
            self.availability[i * av..(i + 1) * av].to_vec()
        } else {
            let s = &self.market.scenario;
            s.availability
                .clone()
                .unwrap_or_else(|| vec![1.0; s.n() * s.t()])
        }
    }

    /// Reset all markets, or those where `mask` is true. With a seed the
    /// reset markets are reseeded first (see [`Seeds`]). Writes their first
    /// observations into `obs` (M, N, D); other rows are untouched. Every
    /// argument is checked before anything changes.
    pub fn reset(
        &mut self,
        seeds: Seeds,
        mask: Option<&[bool]>,
        mut obs: Option<&mut [f32]>,
    ) -> Result<()> {
        let (m_count, n, d) = (self.num_envs(), self.market.agents(), self.market.obs_dim());
        if let Some(mask) = mask {
            if mask.len() != m_count {
                return Err(MarketError::Shape {
                    arg: "mask",
                    expected: format!("({m_count},)"),
                    got: format!("{} values", mask.len()),
                });
            }
        }
        seeds.check(m_count)?;
        if let Some(obs) = &obs {
            self.check_obs_len(obs.len())?;
        }
        let reseed = !matches!(seeds, Seeds::Base(None));
        let base = match seeds {
            Seeds::Base(Some(s)) => s,
            _ => 0,
        };
        let market = Arc::clone(&self.market);
        let z = state_sizes(&market);
        let mut state = self.state_rows();
        for i in 0..m_count {
            if mask.is_some_and(|mk| !mk[i]) {
                continue;
            }
            if reseed {
                state.rngs[i] = seeds.rng(i, base);
            }
            let mut st = state.market(i, z);
            let rows = obs
                .as_deref_mut()
                .map(|o| &mut o[i * n * d..(i + 1) * n * d]);
            reset_market(&market, &mut st, rows);
        }
        Ok(())
    }

    fn state_rows(&mut self) -> StateRows<'_> {
        StateRows {
            rngs: &mut self.rngs,
            ts: &mut self.ts,
            demand_rows: &mut self.demand,
            last_price: &mut self.last_price,
            last_cleared: &mut self.last_cleared,
            soc: &mut self.soc,
            availability: &mut self.availability,
        }
    }

    /// Everything needed to continue these markets elsewhere, RNGs included.
    pub fn snapshot(&self) -> VecSnapshot {
        VecSnapshot {
            rngs: self.rngs.iter().map(RngState::capture).collect(),
            ts: self.hours(),
            demand: self.demand.clone(),
            last_price: self.last_price.clone(),
            last_cleared: self.last_cleared.clone(),
            soc: self.soc.clone(),
            availability: self.availability.clone(),
        }
    }

    /// Rebuild from [`VecMarketEnv::snapshot`].
    pub fn restore(market: Arc<Market>, snap: VecSnapshot, num_threads: usize) -> Result<Self> {
        let m = snap.rngs.len();
        let (n, t) = (market.agents(), market.horizon());
        if m == 0
            || snap.ts.len() != m
            || snap.demand.len() != m * t
            || snap.last_price.len() != m * market.prices_len()
            || snap.last_cleared.len() != m * n
            || snap.soc.len() != m * market.s()
            || snap.availability.len() != m * market.availability_len()
            || snap.ts.iter().any(|h| h.is_some_and(|h| h > t))
        {
            return Err(MarketError::Shape {
                arg: "state",
                expected: format!("a snapshot of markets with {n} agents, T={t}"),
                got: "arrays of other sizes".into(),
            });
        }
        let rngs = snap.rngs.iter().map(|s| s.restore()).collect();
        Ok(VecMarketEnv {
            rngs,
            ts: snap.ts.iter().map(|h| h.unwrap_or(NOT_STARTED)).collect(),
            demand: snap.demand,
            last_price: snap.last_price,
            last_cleared: snap.last_cleared,
            soc: snap.soc,
            availability: snap.availability,
            num_threads: crate::pool::threads_arg(Some(num_threads))?,
            pool_ready: false,
            market,
        })
    }

    /// Write every market's current observation into `obs` (M, N, D): the
    /// observation of its state (after a step, the first observation of the
    /// next episode for a market that just ended); zeros for a market that
    /// was never reset. Large batches are spread over the shared pool.
    pub fn observe(&self, obs: &mut [f32]) -> Result<()> {
        let (m_count, n, d) = (self.num_envs(), self.market.agents(), self.market.obs_dim());
        let (nd, t, av) = (n * d, self.market.horizon(), self.market.availability_len());
        let (s, p) = (self.market.s(), self.market.prices_len());
        self.check_obs_len(obs.len())?;
        if nd == 0 {
            return Ok(());
        }
        let m = &*self.market;
        let row = |i: usize, out: &mut [f32]| {
            if self.ts[i] == NOT_STARTED {
                out.fill(0.0);
            } else {
                observe_parts(
                    m,
                    self.ts[i],
                    &self.demand[i * t..(i + 1) * t],
                    &self.last_price[i * p..(i + 1) * p],
                    &self.last_cleared[i * n..(i + 1) * n],
                    &self.soc[i * s..(i + 1) * s],
                    &self.availability[i * av..(i + 1) * av],
                    out,
                );
            }
        };
        // Writing observations is light work: a hand-off to the pool pays
        // only for large batches (as for the output copies).
        if self.num_threads > 1 && m_count * nd >= PARALLEL_MIN_OBS_VALUES && m_count > 1 {
            use rayon::prelude::*;
            let grain = m_count.div_ceil(self.num_threads * 4).max(1);
            crate::pool::shared()?.install(|| {
                obs.par_chunks_mut(nd)
                    .with_min_len(grain)
                    .enumerate()
                    .for_each(|(i, out)| row(i, out))
            });
        } else {
            for (i, out) in obs.chunks_exact_mut(nd).enumerate() {
                row(i, out);
            }
        }
        Ok(())
    }

    /// `obs` must hold (M, N, D) values.
    fn check_obs_len(&self, got: usize) -> Result<()> {
        let (m, n, d) = (self.num_envs(), self.market.agents(), self.market.obs_dim());
        self.check_len("obs", got, m * n * d, format!("({m}, {n}, {d})"))
    }

    fn check_len(&self, arg: &'static str, got: usize, want: usize, shape: String) -> Result<()> {
        if got != want {
            return Err(MarketError::Shape {
                arg,
                expected: shape,
                got: format!("{got} values"),
            });
        }
        Ok(())
    }

    /// Step every market. Everything is validated first: on error no market
    /// is stepped and no output is written. An empty `out.obs` skips the
    /// observations (see [`VecMarketEnv::observe`]).
    pub fn step(&mut self, actions: &[f32], out: OutRows<'_>) -> Result<()> {
        let m_count = self.num_envs();
        let market = Arc::clone(&self.market);
        let na = market.action_len();
        self.check_len(
            "actions",
            actions.len(),
            m_count * na,
            format!("({m_count}, {}", &market.action_shape()[1..]),
        )?;
        out.check(m_count, self.sizes())?;
        let horizon = market.horizon();
        for (i, (&t, a)) in self.ts.iter().zip(actions.chunks_exact(na)).enumerate() {
            check_steppable(t, horizon).map_err(|e| e.in_market(i))?;
            validate_actions(a, &market).map_err(|e| e.in_market(i))?;
        }
        let parallel =
            self.num_threads > 1 && m_count * market.agents() >= PARALLEL_MIN_AGENTS && m_count > 1;
        let (sizes, z) = (self.sizes(), state_sizes(&market));
        // A few pieces per thread, so that a slow piece can be balanced.
        let grain = m_count.div_ceil(self.num_threads * 4).max(1);
        // Every thread that steps markets sizes its scratch memory first,
        // fallibly: a failure is an error before any market has moved.
        let ready = || {
            SCRATCH.with(|c| {
                c.borrow_mut()
                    .try_ensure_for(&market, "scenario (agents x segments)")
            })
        };
        if !parallel {
            ready()?;
            return run_markets(&market, 0, actions, self.state_rows(), out);
        }
        let pool = crate::pool::shared()?;
        if !self.pool_ready {
            // Once per env: later steps find the memory in place (or regrow
            // it to a size that was had before).
            pool.broadcast(|_| ready())
                .into_iter()
                .collect::<Result<Vec<()>>>()?;
            self.pool_ready = true;
        }
        let state = self.state_rows();
        pool.install(|| {
            use rayon::prelude::*;
            actions
                .par_chunks(grain * na)
                .zip(state.chunks(grain, z).collect::<Vec<_>>())
                .zip(out.chunks(grain, sizes).collect::<Vec<_>>())
                .enumerate()
                .try_for_each(|(c, ((a, st), o))| run_markets(&market, c * grain, a, st, o))
        })?;
        Ok(())
    }

    /// The sizes of this env's outputs.
    pub fn sizes(&self) -> Sizes {
        Sizes {
            n: self.market.agents(),
            s: self.market.s(),
            d: self.market.obs_dim(),
            z: self.market.nodes_len(),
            l: self.market.lines_len(),
            networked: self.market.grid.is_some(),
        }
    }
}
