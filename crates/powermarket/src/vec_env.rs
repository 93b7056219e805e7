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
    check_steppable, observe, observe_parts, reset_market, step_market, stream_rng,
    validate_actions, Market, Scratch, StateMut, NOT_STARTED,
};
use crate::error::{checked_size, try_zeros, MarketError, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::cell::RefCell;
use std::sync::Arc;

/// Output buffers of one batched step, each row-major over markets.
pub struct VecBuffers<'a> {
    /// (M, N, D) observations (for markets that just ended, the first
    /// observation of their next episode), or `None` to skip them: they are a
    /// function of the state, which [`VecMarketEnv::observe`] writes at any
    /// time (the Python layer does so straight into NumPy memory, with the
    /// GIL held, for large batches).
    pub obs: Option<&'a mut [f32]>,
    /// (M, N) rewards.
    pub rewards: &'a mut [f32],
    /// (M,) episode ended this step.
    pub terminated: &'a mut [bool],
    /// (M,) always false: episodes end by termination only.
    pub truncated: &'a mut [bool],
    /// (M, N, D) the last observation of markets that ended this step;
    /// rows of other markets are left as they were.
    pub final_obs: &'a mut [f32],
    /// (M,) which rows of `final_obs` were written this step.
    pub final_mask: &'a mut [bool],
    /// (M,) clearing price, €/MWh.
    pub price: &'a mut [f64],
    /// (M,) demand of the hour, MW.
    pub demand: &'a mut [f64],
    /// (M,) unserved inelastic demand, MW.
    pub shortfall: &'a mut [f64],
    /// (M,) volume-weighted average paid price, €/MWh.
    pub average_paid: &'a mut [f64],
    /// (M, N) cleared quantity (all blocks of a generator), MW.
    pub cleared: &'a mut [f64],
}

/// Every slice a range of markets needs, so that ranges can be split for threads.
struct Lanes<'a> {
    actions: &'a [f32],
    out: VecBuffers<'a>,
    rngs: &'a mut [ChaCha8Rng],
    ts: &'a mut [usize],
    demand_rows: &'a mut [f64],
    last_price: &'a mut [f64],
    last_cleared: &'a mut [f64],
    /// (M, T, N) load factors of markets that draw their own, else empty.
    availability: &'a mut [f64],
}

fn cut<T>(s: &mut [T], k: usize, per: usize) -> (&mut [T], &mut [T]) {
    s.split_at_mut(k * per)
}

impl<'a> Lanes<'a> {
    fn len(&self) -> usize {
        self.ts.len()
    }

    fn split(self, k: usize, sizes: Sizes) -> (Lanes<'a>, Lanes<'a>) {
        let Sizes {
            n,
            d,
            horizon,
            na,
            avail,
        } = sizes;
        let nd = n * d;
        let (a0, a1) = self.actions.split_at(k * na);
        let o = self.out;
        let (obs0, obs1) = match o.obs {
            Some(obs) => {
                let (a, b) = cut(obs, k, nd);
                (Some(a), Some(b))
            }
            None => (None, None),
        };
        let (r0, r1) = cut(o.rewards, k, n);
        let (te0, te1) = cut(o.terminated, k, 1);
        let (tr0, tr1) = cut(o.truncated, k, 1);
        let (f0, f1) = cut(o.final_obs, k, nd);
        let (fm0, fm1) = cut(o.final_mask, k, 1);
        let (p0, p1) = cut(o.price, k, 1);
        let (d0, d1) = cut(o.demand, k, 1);
        let (s0, s1) = cut(o.shortfall, k, 1);
        let (ap0, ap1) = cut(o.average_paid, k, 1);
        let (c0, c1) = cut(o.cleared, k, n);
        let (g0, g1) = cut(self.rngs, k, 1);
        let (t0, t1) = cut(self.ts, k, 1);
        let (dr0, dr1) = cut(self.demand_rows, k, horizon);
        let (lp0, lp1) = cut(self.last_price, k, 1);
        let (lc0, lc1) = cut(self.last_cleared, k, n);
        let (av0, av1) = cut(self.availability, k, avail);
        let left = Lanes {
            actions: a0,
            out: VecBuffers {
                obs: obs0,
                rewards: r0,
                terminated: te0,
                truncated: tr0,
                final_obs: f0,
                final_mask: fm0,
                price: p0,
                demand: d0,
                shortfall: s0,
                average_paid: ap0,
                cleared: c0,
            },
            rngs: g0,
            ts: t0,
            demand_rows: dr0,
            last_price: lp0,
            last_cleared: lc0,
            availability: av0,
        };
        let right = Lanes {
            actions: a1,
            out: VecBuffers {
                obs: obs1,
                rewards: r1,
                terminated: te1,
                truncated: tr1,
                final_obs: f1,
                final_mask: fm1,
                price: p1,
                demand: d1,
                shortfall: s1,
                average_paid: ap1,
                cleared: c1,
            },
            rngs: g1,
            ts: t1,
            demand_rows: dr1,
            last_price: lp1,
            last_cleared: lc1,
            availability: av1,
        };
        (left, right)
    }
}

/// Per-market sizes: agents, observation width, hours, action values and
/// realised load factors.
#[derive(Clone, Copy)]
struct Sizes {
    n: usize,
    d: usize,
    horizon: usize,
    na: usize,
    avail: usize,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = const { RefCell::new(Scratch::empty()) };
}

/// Step every market of `lanes`, one after another, on this thread.
fn run_lanes(m: &Market, lanes: Lanes<'_>) {
    let (n, d, horizon, na) = (m.n(), m.obs_dim(), m.horizon(), m.action_len());
    let nd = n * d;
    let av = m.availability_len();
    SCRATCH.with(|cell| {
        let mut sc = cell.borrow_mut();
        sc.ensure(m.offers());
        let mut o = lanes.out;
        for k in 0..lanes.ts.len() {
            let mut st = StateMut {
                rng: &mut lanes.rngs[k],
                t: &mut lanes.ts[k],
                demand: &mut lanes.demand_rows[k * horizon..(k + 1) * horizon],
                last_price: &mut lanes.last_price[k],
                last_cleared: &mut lanes.last_cleared[k * n..(k + 1) * n],
                availability: &mut lanes.availability[k * av..(k + 1) * av],
            };
            let mut obs = o.obs.as_deref_mut().map(|b| &mut b[k * nd..(k + 1) * nd]);
            let info = step_market(
                m,
                &mut st,
                &lanes.actions[k * na..(k + 1) * na],
                &mut sc,
                obs.as_deref_mut(),
                &mut o.rewards[k * n..(k + 1) * n],
            );
            o.price[k] = info.price;
            o.demand[k] = info.demand;
            o.shortfall[k] = info.shortfall;
            o.average_paid[k] = info.average_paid;
            o.cleared[k * n..(k + 1) * n].copy_from_slice(st.last_cleared);
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
    });
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
    pub rngs: Vec<crate::opponents::RngState>,
    pub ts: Vec<Option<usize>>,
    pub demand: Vec<f64>,
    pub last_price: Vec<f64>,
    pub last_cleared: Vec<f64>,
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
    availability: Vec<f64>,
    num_threads: usize,
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
        let (n, t) = (market.n(), market.horizon());
        let mut rngs = Vec::new();
        rngs.try_reserve_exact(num_envs)
            .map_err(|_| MarketError::Memory {
                what: "num_envs",
                bytes: num_envs.saturating_mul(std::mem::size_of::<ChaCha8Rng>()),
            })?;
        rngs.extend((0..num_envs).map(|i| seeds.rng(i, base)));
        let mut ts = try_zeros::<usize>(num_envs, "num_envs")?;
        ts.fill(NOT_STARTED);
        let mut last_price = try_zeros::<f64>(num_envs, "num_envs")?;
        last_price.fill(f64::NAN);
        Ok(VecMarketEnv {
            rngs,
            ts,
            demand: try_zeros(checked_size(num_envs, t, "num_envs")?, "num_envs")?,
            last_price,
            last_cleared: try_zeros(checked_size(num_envs, n, "num_envs")?, "num_envs")?,
            availability: try_zeros(
                checked_size(num_envs, market.availability_len(), "num_envs")?,
                "num_envs",
            )?,
            num_threads,
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
        let (m_count, n, d, horizon) = (
            self.num_envs(),
            self.market.n(),
            self.market.obs_dim(),
            self.market.horizon(),
        );
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
        let av = market.availability_len();
        for i in 0..m_count {
            if mask.is_some_and(|mk| !mk[i]) {
                continue;
            }
            if reseed {
                self.rngs[i] = seeds.rng(i, base);
            }
            let mut st = StateMut {
                rng: &mut self.rngs[i],
                t: &mut self.ts[i],
                demand: &mut self.demand[i * horizon..(i + 1) * horizon],
                last_price: &mut self.last_price[i],
                last_cleared: &mut self.last_cleared[i * n..(i + 1) * n],
                availability: &mut self.availability[i * av..(i + 1) * av],
            };
            let rows = obs
                .as_deref_mut()
                .map(|o| &mut o[i * n * d..(i + 1) * n * d]);
            reset_market(&market, &mut st, rows);
        }
        Ok(())
    }

    /// Everything needed to continue these markets elsewhere, RNGs included.
    pub fn snapshot(&self) -> VecSnapshot {
        VecSnapshot {
            rngs: self
                .rngs
                .iter()
                .map(|r| (r.get_seed(), r.get_stream(), r.get_word_pos()))
                .collect(),
            ts: self.hours(),
            demand: self.demand.clone(),
            last_price: self.last_price.clone(),
            last_cleared: self.last_cleared.clone(),
            availability: self.availability.clone(),
        }
    }

    /// Rebuild from [`VecMarketEnv::snapshot`].
    pub fn restore(market: Arc<Market>, snap: VecSnapshot, num_threads: usize) -> Result<Self> {
        let m = snap.rngs.len();
        let (n, t) = (market.n(), market.horizon());
        if m == 0
            || snap.ts.len() != m
            || snap.demand.len() != m * t
            || snap.last_price.len() != m
            || snap.last_cleared.len() != m * n
            || snap.availability.len() != m * market.availability_len()
            || snap.ts.iter().any(|h| h.is_some_and(|h| h > t))
        {
            return Err(MarketError::Shape {
                arg: "state",
                expected: format!("a snapshot of markets with N={n}, T={t}"),
                got: "arrays of other sizes".into(),
            });
        }
        let rngs = snap
            .rngs
            .iter()
            .map(|&(seed, stream, pos)| {
                let mut r = ChaCha8Rng::from_seed(seed);
                r.set_stream(stream);
                r.set_word_pos(pos);
                r
            })
            .collect();
        Ok(VecMarketEnv {
            rngs,
            ts: snap.ts.iter().map(|h| h.unwrap_or(NOT_STARTED)).collect(),
            demand: snap.demand,
            last_price: snap.last_price,
            last_cleared: snap.last_cleared,
            availability: snap.availability,
            num_threads: crate::pool::threads_arg(Some(num_threads))?,
            market,
        })
    }

    /// Write every market's current observation into `obs` (M, N, D): the
    /// observation of its state (after a step, the first observation of the
    /// next episode for a market that just ended); zeros for a market that
    /// was never reset. Large batches are spread over the shared pool.
    pub fn observe(&self, obs: &mut [f32]) -> Result<()> {
        let (m_count, n, d) = (self.num_envs(), self.market.n(), self.market.obs_dim());
        let (nd, t, av) = (n * d, self.market.horizon(), self.market.availability_len());
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
                    self.last_price[i],
                    &self.last_cleared[i * n..(i + 1) * n],
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
        let (m, n, d) = (self.num_envs(), self.market.n(), self.market.obs_dim());
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
    /// is stepped and no buffer is written.
    pub fn step(&mut self, actions: &[f32], out: VecBuffers<'_>) -> Result<()> {
        let (m_count, n, d) = (self.num_envs(), self.market.n(), self.market.obs_dim());
        let na = self.market.action_len();
        let shape_m = format!("({m_count},)");
        self.check_len(
            "actions",
            actions.len(),
            m_count * na,
            format!("({m_count}, {}", &self.market.action_shape()[1..]),
        )?;
        if let Some(obs) = &out.obs {
            self.check_obs_len(obs.len())?;
        }
        self.check_len(
            "final_obs",
            out.final_obs.len(),
            m_count * n * d,
            format!("({m_count}, {n}, {d})"),
        )?;
        self.check_len(
            "rewards",
            out.rewards.len(),
            m_count * n,
            format!("({m_count}, {n})"),
        )?;
        self.check_len(
            "cleared",
            out.cleared.len(),
            m_count * n,
            format!("({m_count}, {n})"),
        )?;
        for (arg, len) in [
            ("terminated", out.terminated.len()),
            ("truncated", out.truncated.len()),
            ("final_mask", out.final_mask.len()),
        ] {
            self.check_len(arg, len, m_count, shape_m.clone())?;
        }
        for (arg, len) in [
            ("price", out.price.len()),
            ("demand", out.demand.len()),
            ("shortfall", out.shortfall.len()),
            ("average_paid", out.average_paid.len()),
        ] {
            self.check_len(arg, len, m_count, shape_m.clone())?;
        }
        let horizon = self.market.horizon();
        for (i, (&t, a)) in self.ts.iter().zip(actions.chunks_exact(na)).enumerate() {
            check_steppable(t, horizon).map_err(|e| e.in_market(i))?;
            validate_actions(a, &self.market).map_err(|e| e.in_market(i))?;
        }
        let lanes = Lanes {
            actions,
            out,
            rngs: &mut self.rngs,
            ts: &mut self.ts,
            demand_rows: &mut self.demand,
            last_price: &mut self.last_price,
            last_cleared: &mut self.last_cleared,
            availability: &mut self.availability,
        };
        let market = &*self.market;
        if self.num_threads > 1 && m_count * n >= PARALLEL_MIN_AGENTS && m_count > 1 {
            let pool = crate::pool::shared()?;
            // A few pieces per thread, so that a slow piece can be balanced.
            let pieces = self.num_threads * 4;
            let grain = m_count.div_ceil(pieces).max(1);
            let sizes = Sizes {
                n,
                d,
                horizon,
                na,
                avail: market.availability_len(),
            };
            pool.install(|| split_run(market, lanes, grain, sizes));
        } else {
            run_lanes(market, lanes);
        }
        Ok(())
    }
}

fn split_run(m: &Market, lanes: Lanes<'_>, grain: usize, sizes: Sizes) {
    if lanes.len() <= grain {
        run_lanes(m, lanes);
    } else {
        let k = lanes.len() / 2;
        let (l, r) = lanes.split(k, sizes);
        rayon::join(
            || split_run(m, l, grain, sizes),
            || split_run(m, r, grain, sizes),
        );
    }
}
