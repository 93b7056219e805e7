//! `VecMarketEnv`: M independent markets on one scenario, stepped in one call.
//!
//! State is kept as struct-of-arrays (one RNG, hour, demand row, last price
//! and last dispatch row per market). A step writes into caller-owned flat
//! buffers (in Python: preallocated NumPy arrays) and spreads the markets over
//! a rayon pool. Every market runs the kernel of [`crate::env`], so market `i`
//! of a batch seeded `s` is bit-identical to a `MarketEnv` seeded `s + i`
//! that is reset (without a seed) whenever its episode ends.

use crate::env::{
    check_steppable, make_rng, reset_market, step_market, validate_actions, Market, Scratch,
    StateMut, NOT_STARTED,
};
use crate::error::{MarketError, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::cell::RefCell;
use std::sync::Arc;

/// Output buffers of one batched step, each row-major over markets.
pub struct VecBuffers<'a> {
    /// (M, N, D) observations; for markets that just ended, the first
    /// observation of their next episode (same-step autoreset).
    pub obs: &'a mut [f32],
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
    /// (M,) unserved demand, MW.
    pub shortfall: &'a mut [f64],
    /// (M, N) cleared quantity, MW.
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
}

fn cut<T>(s: &mut [T], k: usize, per: usize) -> (&mut [T], &mut [T]) {
    s.split_at_mut(k * per)
}

impl<'a> Lanes<'a> {
    fn len(&self) -> usize {
        self.ts.len()
    }

    fn split(self, k: usize, n: usize, d: usize, horizon: usize) -> (Lanes<'a>, Lanes<'a>) {
        let nd = n * d;
        let (a0, a1) = self.actions.split_at(k * n * 2);
        let o = self.out;
        let (obs0, obs1) = cut(o.obs, k, nd);
        let (r0, r1) = cut(o.rewards, k, n);
        let (te0, te1) = cut(o.terminated, k, 1);
        let (tr0, tr1) = cut(o.truncated, k, 1);
        let (f0, f1) = cut(o.final_obs, k, nd);
        let (fm0, fm1) = cut(o.final_mask, k, 1);
        let (p0, p1) = cut(o.price, k, 1);
        let (d0, d1) = cut(o.demand, k, 1);
        let (s0, s1) = cut(o.shortfall, k, 1);
        let (c0, c1) = cut(o.cleared, k, n);
        let (g0, g1) = cut(self.rngs, k, 1);
        let (t0, t1) = cut(self.ts, k, 1);
        let (dr0, dr1) = cut(self.demand_rows, k, horizon);
        let (lp0, lp1) = cut(self.last_price, k, 1);
        let (lc0, lc1) = cut(self.last_cleared, k, n);
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
                cleared: c0,
            },
            rngs: g0,
            ts: t0,
            demand_rows: dr0,
            last_price: lp0,
            last_cleared: lc0,
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
                cleared: c1,
            },
            rngs: g1,
            ts: t1,
            demand_rows: dr1,
            last_price: lp1,
            last_cleared: lc1,
        };
        (left, right)
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Step every market of `lanes`, one after another, on this thread.
fn run_lanes(m: &Market, lanes: Lanes<'_>) {
    let (n, d, horizon) = (m.n(), m.obs_dim(), m.horizon());
    let nd = n * d;
    SCRATCH.with(|cell| {
        let mut sc = cell.borrow_mut();
        sc.ensure(n);
        let o = lanes.out;
        for k in 0..lanes.ts.len() {
            let mut st = StateMut {
                rng: &mut lanes.rngs[k],
                t: &mut lanes.ts[k],
                demand: &mut lanes.demand_rows[k * horizon..(k + 1) * horizon],
                last_price: &mut lanes.last_price[k],
                last_cleared: &mut lanes.last_cleared[k * n..(k + 1) * n],
            };
            let obs = &mut o.obs[k * nd..(k + 1) * nd];
            let info = step_market(
                m,
                &mut st,
                &lanes.actions[k * 2 * n..(k + 1) * 2 * n],
                &mut sc,
                obs,
                &mut o.rewards[k * n..(k + 1) * n],
            );
            o.price[k] = info.price;
            o.demand[k] = info.demand;
            o.shortfall[k] = info.shortfall;
            o.cleared[k * n..(k + 1) * n].copy_from_slice(&sc.cleared);
            o.terminated[k] = info.terminated;
            o.truncated[k] = false;
            o.final_mask[k] = info.terminated;
            if info.terminated {
                o.final_obs[k * nd..(k + 1) * nd].copy_from_slice(obs);
                reset_market(m, &mut st, obs);
            }
        }
    });
}

/// Many markets of one scenario, stepped together.
pub struct VecMarketEnv {
    market: Arc<Market>,
    rngs: Vec<ChaCha8Rng>,
    ts: Vec<usize>,
    demand: Vec<f64>,
    last_price: Vec<f64>,
    last_cleared: Vec<f64>,
    pool: Option<rayon::ThreadPool>,
    num_threads: usize,
}

/// Fewer agent-steps than this per call are run on the calling thread: the
/// hand-off to a pool would cost more than it saves.
const PARALLEL_MIN_AGENTS: usize = 1024;

impl VecMarketEnv {
    /// `num_envs` markets; market `i` is seeded `seed + i` (base seed from OS
    /// entropy when `None`). `num_threads = None` uses every core.
    pub fn new(
        market: Arc<Market>,
        num_envs: usize,
        seed: Option<u64>,
        num_threads: Option<usize>,
    ) -> Result<Self> {
        if num_envs == 0 {
            return Err(MarketError::BadScalar {
                arg: "num_envs",
                requirement: "must be >= 1",
                value: 0.0,
            });
        }
        let num_threads = match num_threads {
            Some(0) => {
                return Err(MarketError::BadScalar {
                    arg: "num_threads",
                    requirement: "must be >= 1 (or None for all cores)",
                    value: 0.0,
                })
            }
            Some(t) => t,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let pool = if num_threads > 1 {
            Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(num_threads)
                    .thread_name(|i| format!("powermarket-{i}"))
                    .build()
                    .map_err(|e| MarketError::Misuse(format!("could not start threads: {e}")))?,
            )
        } else {
            None
        };
        let base = seed.unwrap_or_else(rand::random);
        let (n, t, d) = (market.n(), market.horizon(), market.obs_dim());
        // Refuse sizes that cannot be allocated with an error, not an abort:
        // the state below plus the caller's (M, N, D) buffers.
        let per_market = 8 * (t + 2 * n + 2) + 8 * n * d + 512;
        let too_big = || MarketError::BadScalar {
            arg: "num_envs",
            requirement: "is too large for this machine's memory",
            value: num_envs as f64,
        };
        let bytes = num_envs.checked_mul(per_market).ok_or_else(too_big)?;
        let mut probe: Vec<u8> = Vec::new();
        probe.try_reserve_exact(bytes).map_err(|_| too_big())?;
        drop(probe);
        let mut rngs = Vec::new();
        rngs.try_reserve_exact(num_envs).map_err(|_| too_big())?;
        rngs.extend((0..num_envs).map(|i| make_rng(Some(base.wrapping_add(i as u64)))));
        Ok(VecMarketEnv {
            rngs,
            ts: vec![NOT_STARTED; num_envs],
            demand: vec![0.0; num_envs * t],
            last_price: vec![f64::NAN; num_envs],
            last_cleared: vec![0.0; num_envs * n],
            pool,
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

    /// Reset all markets, or those where `mask` is true. With `Some(seed)`
    /// the reset markets are reseeded, market `i` with `seed + i`. Writes
    /// their first observations into `obs` (M, N, D); other rows are untouched.
    pub fn reset(
        &mut self,
        seed: Option<u64>,
        mask: Option<&[bool]>,
        obs: &mut [f32],
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
        self.check_len(
            "obs",
            obs.len(),
            m_count * n * d,
            format!("({m_count}, {n}, {d})"),
        )?;
        let market = Arc::clone(&self.market);
        for i in 0..m_count {
            if mask.is_some_and(|mk| !mk[i]) {
                continue;
            }
            if let Some(s) = seed {
                self.rngs[i] = ChaCha8Rng::seed_from_u64(s.wrapping_add(i as u64));
            }
            let mut st = StateMut {
                rng: &mut self.rngs[i],
                t: &mut self.ts[i],
                demand: &mut self.demand[i * horizon..(i + 1) * horizon],
                last_price: &mut self.last_price[i],
                last_cleared: &mut self.last_cleared[i * n..(i + 1) * n],
            };
            reset_market(&market, &mut st, &mut obs[i * n * d..(i + 1) * n * d]);
        }
        Ok(())
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
        let shape_m = format!("({m_count},)");
        self.check_len(
            "actions",
            actions.len(),
            m_count * n * 2,
            format!("({m_count}, {n}, 2)"),
        )?;
        self.check_len(
            "obs",
            out.obs.len(),
            m_count * n * d,
            format!("({m_count}, {n}, {d})"),
        )?;
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
        ] {
            self.check_len(arg, len, m_count, shape_m.clone())?;
        }
        let horizon = self.market.horizon();
        for (i, (&t, a)) in self.ts.iter().zip(actions.chunks_exact(2 * n)).enumerate() {
            check_steppable(t, horizon).map_err(|e| e.in_market(i))?;
            validate_actions(a, n).map_err(|e| e.in_market(i))?;
        }
        let lanes = Lanes {
            actions,
            out,
            rngs: &mut self.rngs,
            ts: &mut self.ts,
            demand_rows: &mut self.demand,
            last_price: &mut self.last_price,
            last_cleared: &mut self.last_cleared,
        };
        let market = &*self.market;
        match &self.pool {
            Some(pool) if m_count * n >= PARALLEL_MIN_AGENTS && m_count > 1 => {
                // A few pieces per thread, so that a slow piece can be balanced.
                let pieces = self.num_threads * 4;
                let grain = m_count.div_ceil(pieces).max(1);
                pool.install(|| split_run(market, lanes, grain, n, d, horizon));
            }
            _ => run_lanes(market, lanes),
        }
        Ok(())
    }
}

fn split_run(m: &Market, lanes: Lanes<'_>, grain: usize, n: usize, d: usize, horizon: usize) {
    if lanes.len() <= grain {
        run_lanes(m, lanes);
    } else {
        let k = lanes.len() / 2;
        let (l, r) = lanes.split(k, n, d, horizon);
        rayon::join(
            || split_run(m, l, grain, n, d, horizon),
            || split_run(m, r, grain, n, d, horizon),
        );
    }
}
