//! An approximate pure Nash equilibrium of the per-hour bidding game on a
//! grid of actions, for known demand, by best-response dynamics.
//!
//! Without ramps the hours of an episode are independent games: agent `i`'s
//! reward in hour `t` depends only on the actions of hour `t`. Each (episode,
//! hour) game is solved on its own:
//!
//! 1. Start from a profile: every agent truthful (`[0, 0]`) for start 0, a
//!    uniformly random grid pair per agent for starts 1, 2, ...
//! 2. Score the profile with the exploitability machinery
//!    ([`super::exploit::score_hour`]): each agent's best grid deviation,
//!    the others held.
//! 3. If no agent gains more than `1e-9 * max(|its reward|, reward_scale)`
//!    (so at least 1e-9 € of profit), the profile is a grid equilibrium: stop.
//! 4. Otherwise move one agent to its best response: the agent with the
//!    largest gain (the lowest index on ties). If the current profile has
//!    been visited before in this game (a cycle: the move order above would
//!    repeat it), the mover is instead drawn uniformly among the agents that
//!    gain, from a generator seeded by `(seed, start, episode, hour)`.
//! 5. Stop after `max_moves` moves; the result is the profile of smallest
//!    NashConv seen (the first on ties), or the grid equilibrium found.
//!
//! Every game is deterministic from the seed, whatever the thread count.

use super::exploit::{clear_played, one_block, reward, score_hour, Candidates, HourState};
use super::exploit::{Grid, PARALLEL_MIN_CLEARS};
use super::{check_non_negative, checked_size, in_pool, try_vec};
use crate::env::{Market, Scratch};
use crate::error::{MarketError, Result};
use std::collections::HashSet;

/// Largest number of clearings one [`equilibrium`] call may need:
/// `starts * E * T * (max_moves + 2) * N * G0 * G1` must not exceed it
/// (2^32, about 4.3e9: several minutes on one core).
pub const EQUILIBRIUM_MAX_CLEARINGS: u64 = 1 << 32;

/// A gain counts as an improvement when it exceeds this share of
/// `max(|reward|, reward_scale)`.
const REL_TOL: f64 = 1e-9;

/// Options of [`equilibrium`].
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Moves per (start, episode, hour) game at most.
    pub max_moves: usize,
    /// `converged` when NashConv <= `tol` times the total reward.
    pub tol: f64,
    pub seed: u64,
    /// Starting profiles: 0 truthful, the others random grid pairs.
    pub starts: usize,
}

/// The profile one start ends in, and its scores.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    pub start: usize,
    /// Actions (E, T, N, 2) on the grid (or truthful where nobody moved).
    pub actions: Vec<f32>,
    /// Each agent's gain from its best grid deviation, summed over hours,
    /// mean over episodes, reward units, (N,).
    pub regret: Vec<f64>,
    /// `sum_t` reward, mean over episodes, (N,).
    pub reward: Vec<f64>,
    /// `sum_t (paid_ti - c_i) x_ti`, €, mean over episodes, (N,).
    pub profit: Vec<f64>,
    /// Clearing price, €/MWh, (E, T).
    pub price: Vec<f64>,
    /// Cleared MW, (E, T, N).
    pub cleared: Vec<f64>,
    /// Moves made in every (episode, hour) game, (E, T).
    pub moves: Vec<u32>,
    /// Games that ended in a grid equilibrium (no agent gains).
    pub exact: usize,
    /// NashConv <= tol * total reward, or every game ended exact.
    pub converged: bool,
}

impl Profile {
    /// NashConv: the sum of the agents' regrets.
    pub fn nash_conv(&self) -> f64 {
        self.regret.iter().sum()
    }

    /// The total reward, `sum_i reward_i`.
    pub fn total_reward(&self) -> f64 {
        self.reward.iter().sum()
    }
}

/// The profiles of every start.
#[derive(Clone, Debug, PartialEq)]
pub struct Equilibrium {
    pub episodes: usize,
    pub hours: usize,
    pub n: usize,
    /// One profile per start, in start order.
    pub profiles: Vec<Profile>,
    /// The start whose profile has the smallest NashConv (the first on ties).
    pub best: usize,
    /// The starts whose profiles converged and differ from every earlier
    /// converged start's actions (the distinct equilibria found).
    pub distinct: Vec<usize>,
}

/// A small deterministic generator (SplitMix64) for starts and cycle breaks.
struct SplitMix(u64);

impl SplitMix {
    fn new(seed: u64, start: usize, row: usize) -> Self {
        let mut s = SplitMix(seed);
        let a = s.next() ^ (start as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut s = SplitMix(a);
        SplitMix(s.next() ^ (row as u64).wrapping_mul(0xD1B5_4A32_D192_ED03))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..k` (`k >= 1`).
    fn below(&mut self, k: usize) -> usize {
        ((self.next() as u128 * k as u128) >> 64) as usize
    }
}

/// Per-game scratch: scores of the current profile and the best one seen.
struct Game {
    sc: Scratch,
    gain: Vec<f64>,
    played: Vec<f64>,
    best_action: Vec<f32>,
    kept: Vec<f32>,
    seen: HashSet<Vec<u32>>,
}

impl Game {
    fn new(m: &Market) -> Self {
        let n = m.n();
        Game {
            sc: super::exploit::fresh_scratch(m),
            gain: vec![0.0; n],
            played: vec![0.0; n],
            best_action: vec![0.0; 2 * n],
            kept: vec![0.0; 2 * n],
            seen: HashSet::new(),
        }
    }
}

/// Width of a game's f64 output row: gain, reward, cleared and profit per
/// agent, then price, moves and exact.
fn row_width(n: usize) -> usize {
    4 * n + 3
}

/// Best-response dynamics in one (episode, hour) game; `acts` (N x 2) holds
/// the start and receives the result; `out` the row of [`row_width`].
#[allow(clippy::too_many_arguments)]
fn solve_game(
    m: &Market,
    cand: &Candidates,
    demand: f64,
    hs: &HourState<'_>,
    max_moves: usize,
    rng: &mut SplitMix,
    g: &mut Game,
    acts: &mut [f32],
    out: &mut [f64],
) -> Result<()> {
    let n = m.n();
    let floor = m.reward_scale();
    g.seen.clear();
    let mut kept_nc = f64::INFINITY;
    let mut moves = 0usize;
    let mut exact = false;
    let mut movers = Vec::with_capacity(n);
    loop {
        score_hour(
            m,
            cand,
            acts,
            demand,
            hs,
            &mut g.sc,
            (&mut g.gain, &mut g.played, &mut g.best_action),
        )?;
        let nc: f64 = g.gain.iter().sum();
        movers.clear();
        movers.extend((0..n).filter(|&i| g.gain[i] > REL_TOL * g.played[i].abs().max(floor)));
        if movers.is_empty() {
            exact = true;
            break;
        }
        if nc < kept_nc {
            kept_nc = nc;
            g.kept.copy_from_slice(acts);
        }
        if moves == max_moves {
            break;
        }
        let key: Vec<u32> = acts.iter().map(|a| a.to_bits()).collect();
        let i = if g.seen.insert(key) {
            // Largest gain, the lowest index on ties.
            movers
                .iter()
                .copied()
                .fold(movers[0], |b, j| if g.gain[j] > g.gain[b] { j } else { b })
        } else {
            movers[rng.below(movers.len())]
        };
        acts[2 * i..2 * i + 2].copy_from_slice(&g.best_action[2 * i..2 * i + 2]);
        moves += 1;
    }
    if !exact {
        acts.copy_from_slice(&g.kept);
        score_hour(
            m,
            cand,
            acts,
            demand,
            hs,
            &mut g.sc,
            (&mut g.gain, &mut g.played, &mut g.best_action),
        )?;
    }
    // The outcome of the kept profile, as the env clears and settles it.
    let (c, sf) = clear_played(m, acts, demand, hs, &mut g.sc)?;
    let (gain, rest) = out.split_at_mut(n);
    let (rew, rest) = rest.split_at_mut(n);
    let (cleared, rest) = rest.split_at_mut(n);
    let (profit, rest) = rest.split_at_mut(n);
    gain.copy_from_slice(&g.gain);
    for i in 0..n {
        rew[i] = reward(m, &g.sc, hs, i, sf);
        cleared[i] = g.sc.cleared[i];
        profit[i] = (g.sc.paid[i] - m.scenario.costs[i]) * g.sc.cleared[i];
    }
    rest[0] = c.price;
    rest[1] = moves as f64;
    rest[2] = if exact { 1.0 } else { 0.0 };
    Ok(())
}

/// An approximate pure Nash equilibrium of every (episode, hour) game of
/// `m` on `grid`, for `demand` (E, T) MW, with the scenario's load factors,
/// by best-response dynamics from `opts.starts` starting profiles (see the
/// module docs). Refuses scenarios with ramp limits or ramp costs (they
/// couple the hours), several segments, and more than
/// [`EQUILIBRIUM_MAX_CLEARINGS`] clearings of work.
pub fn equilibrium(
    m: &Market,
    demand: &[f64],
    episodes: usize,
    grid: &Grid<'_>,
    opts: &Options,
) -> Result<Equilibrium> {
    let (t, n) = (m.horizon(), m.n());
    one_block(m, "equilibrium")?;
    let s = &m.scenario;
    if s.ramp_limits.is_some() || s.ramp_costs.is_some() {
        return Err(MarketError::Invalid {
            arg: "scenario",
            message: "equilibrium solves each hour as its own game; ramp limits and ramp \
                      costs couple the hours, so scenarios with ramp_limits or ramp_costs \
                      are not supported yet"
                .into(),
        });
    }
    if s.s() > 0 {
        return Err(MarketError::Invalid {
            arg: "scenario",
            message: format!(
                "equilibrium solves each hour as its own game among the generators; the \
                 scenario's {} storage unit(s) couple the hours through their state of \
                 charge, so scenarios with storage are not supported yet (score play with storage with exploitability)",
                s.s()
            ),
        });
    }
    if episodes == 0 {
        return Err(MarketError::BadScalar {
            arg: "demand",
            requirement: "must hold at least one episode",
            value: 0.0,
        });
    }
    if opts.starts == 0 {
        return Err(MarketError::BadScalar {
            arg: "starts",
            requirement: "must be >= 1",
            value: 0.0,
        });
    }
    if !(opts.tol.is_finite() && opts.tol >= 0.0) {
        return Err(MarketError::BadScalar {
            arg: "tol",
            requirement: "must be finite and >= 0",
            value: opts.tol,
        });
    }
    let rows = checked_size("demand", &[episodes, t])?;
    if demand.len() != rows {
        return Err(MarketError::Shape {
            arg: "demand",
            expected: format!("({episodes}, {t})"),
            got: format!("{} values", demand.len()),
        });
    }
    check_non_negative("demand", demand)?;
    let cand = Candidates::new(m, grid)?;
    let (g0, g1) = (cand.withheld.len(), cand.price_action.len());
    let clears = [
        opts.starts as f64,
        rows as f64,
        opts.max_moves as f64 + 2.0,
        n as f64,
        g0 as f64,
        g1 as f64,
    ]
    .iter()
    .product::<f64>()
        // A network clearing counts as the copper-plate clearings it costs.
        * (super::exploit::clearing_work(m) / m.agents() as f64);
    if clears > EQUILIBRIUM_MAX_CLEARINGS as f64 {
        return Err(MarketError::Invalid {
            arg: "max_moves",
            message: format!(
                "starts x episodes x hours x (max_moves + 2) x N x grid size = {} x {} x {} x {} \
                 x {} x {} = {clears:.3e} clearings{} exceeds the work bound of {} \
                 (EQUILIBRIUM_MAX_CLEARINGS); lower max_moves, starts, the grid or the \
                 number of demand draws",
                opts.starts,
                episodes,
                t,
                opts.max_moves as u64 + 2,
                n,
                g0 * g1,
                match &m.grid {
                    None => String::new(),
                    Some(g) => format!(
                        " (a clearing on a network of Z={} nodes and L={} lines counted as \
                         (A + (Z + L)^2) / A copper-plate clearings)",
                        g.z, g.lines
                    ),
                },
                EQUILIBRIUM_MAX_CLEARINGS
            ),
        });
    }
    let games = checked_size("starts", &[opts.starts, rows])?;
    let width = row_width(n);
    let mut table = try_vec("starts", checked_size("starts", &[games, width])?, 0.0)?;
    let mut actions = try_vec("starts", checked_size("starts", &[games, n, 2])?, 0f32)?;
    let zeros = vec![0.0; n];
    let work = |g: &mut Game, (k, (out, acts)): (usize, (&mut [f64], &mut [f32]))| {
        let (start, row) = (k / rows, k % rows);
        let mut rng = SplitMix::new(opts.seed, start, row);
        if start > 0 {
            for a in acts.chunks_exact_mut(2) {
                a[0] = cand.withheld[rng.below(g0)];
                a[1] = cand.price_action[rng.below(g1)];
            }
        }
        let hs = HourState {
            hour: row % t,
            lf: m.load_factors(&[], row % t),
            prev: &zeros,
            soc: &[],
        };
        solve_game(
            m,
            &cand,
            demand[row],
            &hs,
            opts.max_moves,
            &mut rng,
            g,
            acts,
            out,
        )
    };
    if clears >= PARALLEL_MIN_CLEARS as f64 && games > 1 {
        use rayon::prelude::*;
        in_pool(|| {
            table
                .par_chunks_mut(width)
                .zip(actions.par_chunks_mut(2 * n))
                .enumerate()
                .try_for_each_init(|| Game::new(m), work)
        })?;
    } else {
        let mut g = Game::new(m);
        table
            .chunks_mut(width)
            .zip(actions.chunks_mut(2 * n))
            .enumerate()
            .try_for_each(|item| work(&mut g, item))?;
    }
    // Sums in a fixed order: the result does not depend on the threads.
    let mut profiles = Vec::with_capacity(opts.starts);
    let k = episodes as f64;
    for start in 0..opts.starts {
        let base = start * rows;
        let mut p = Profile {
            start,
            actions: try_vec("starts", rows * 2 * n, 0f32)?,
            regret: vec![0.0; n],
            reward: vec![0.0; n],
            profit: vec![0.0; n],
            price: try_vec("starts", rows, 0.0)?,
            cleared: try_vec("starts", rows * n, 0.0)?,
            moves: try_vec("starts", rows, 0u32)?,
            exact: 0,
            converged: false,
        };
        p.actions
            .copy_from_slice(&actions[base * 2 * n..(base + rows) * 2 * n]);
        for r in 0..rows {
            let row = &table[(base + r) * width..(base + r + 1) * width];
            for i in 0..n {
                p.regret[i] += row[i];
                p.reward[i] += row[n + i];
                p.cleared[r * n + i] = row[2 * n + i];
                p.profit[i] += row[3 * n + i];
            }
            p.price[r] = row[4 * n];
            p.moves[r] = row[4 * n + 1] as u32;
            p.exact += (row[4 * n + 2] > 0.0) as usize;
        }
        for v in p
            .regret
            .iter_mut()
            .chain(&mut p.reward)
            .chain(&mut p.profit)
        {
            *v /= k;
        }
        if let Some(x) = p
            .regret
            .iter()
            .chain(&p.reward)
            .chain(&p.profit)
            .find(|x| !x.is_finite())
        {
            return Err(MarketError::BadScalar {
                arg: "demand",
                requirement: "gives reward sums that overflow float64",
                value: *x,
            });
        }
        p.converged = p.exact == rows || p.nash_conv() <= opts.tol * p.total_reward().max(0.0);
        profiles.push(p);
    }
    let best = (0..profiles.len()).fold(0, |b, j| {
        if profiles[j].nash_conv() < profiles[b].nash_conv() {
            j
        } else {
            b
        }
    });
    let mut distinct: Vec<usize> = Vec::new();
    for j in 0..profiles.len() {
        if profiles[j].converged
            && distinct
                .iter()
                .all(|&d| profiles[d].actions != profiles[j].actions)
        {
            distinct.push(j);
        }
    }
    Ok(Equilibrium {
        episodes,
        hours: t,
        n,
        profiles,
        best,
        distinct,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::exploitability;
    use crate::clearing::TieRule;
    use crate::observe::Observer;
    use crate::scenario::{linspace, Scenario};

    fn opts(starts: usize) -> Options {
        Options {
            max_moves: 100,
            tol: 0.01,
            seed: 7,
            starts,
        }
    }

    #[test]
    fn default_market_profile_has_no_regret_by_exploitability() {
        let s = Scenario::default_preset(4, 6).unwrap();
        let demand = s.demand.clone();
        let m = Market::new(s, Observer::Simple, TieRule::ProRata).unwrap();
        let (w, p) = (linspace(0.0, 1.0, 5), linspace(-2.0, 2.0, 9));
        let grid = Grid {
            withheld: &w,
            price_action: &p,
        };
        let eq = equilibrium(&m, &demand, 1, &grid, &opts(3)).unwrap();
        assert_eq!(eq.profiles.len(), 3);
        for p in &eq.profiles {
            // Scored again, independently of the solver's bookkeeping.
            let x = exploitability(&m, &p.actions, &demand, None, 1, &grid).unwrap();
            assert!((x.nash_conv() - p.nash_conv()).abs() < 1e-12);
            for i in 0..4 {
                assert!((x.played_reward[i] - p.reward[i]).abs() < 1e-9);
            }
            if p.exact == 6 {
                assert!(x.nash_conv() <= 1e-6 * p.total_reward().abs().max(1.0));
            }
        }
        // Deterministic from the seed.
        assert_eq!(eq, equilibrium(&m, &demand, 1, &grid, &opts(3)).unwrap());
    }

    #[test]
    fn refusals() {
        let mut s = Scenario::default_preset(2, 3).unwrap();
        let demand = s.demand.clone();
        let (w, p) = (vec![0.0], vec![0.0]);
        let grid = Grid {
            withheld: &w,
            price_action: &p,
        };
        let m = Market::new(s.clone(), Observer::Simple, TieRule::ProRata).unwrap();
        assert!(equilibrium(&m, &demand, 1, &grid, &opts(1)).is_ok());
        let e = equilibrium(&m, &demand[..2], 1, &grid, &opts(1)).unwrap_err();
        assert!(e.to_string().contains("demand"), "{e}");
        let big = Options {
            max_moves: 1 << 40,
            ..opts(1)
        };
        let e = equilibrium(&m, &demand, 1, &grid, &big).unwrap_err();
        assert!(e.to_string().contains("work bound"), "{e}");
        s.ramp_limits = Some(vec![0.5, 0.5]);
        let m = Market::new(s, Observer::Simple, TieRule::ProRata).unwrap();
        let e = equilibrium(&m, &demand, 1, &grid, &opts(1)).unwrap_err();
        assert!(e.to_string().contains("ramp"), "{e}");
    }
}
