//! The best response of a storage unit against the others' play, for
//! [`super::exploitability`]: a dynamic program over a grid of states of
//! charge, each hour's move valued by re-clearing that hour.
//!
//! For unit `u` of one episode, the states are the `G` states of charge
//! `x_g = lo + g (hi - lo) / (G - 1)`, `lo = soc_min E`, `hi = soc_max E`,
//! plus the initial state `soc_0` when it is not one of them. A move from
//! `s` to `s'` in hour `t` is a block of `q` MW: a discharge offer of
//! `q = (s - s') eta_d` when `s' < s`, a charge bid of `|q| = (s' - s) / eta_c`
//! when `s' > s` (between grid points the change is `k (hi - lo) / (G - 1)`),
//! no block when `s' = s`; moves with `|q| > P` are not allowed. Its value is
//! the env's reward of the unit for hour `t` with that block in place of
//! its played one, everything else as played (generators' offers with
//! their limits, the other units' blocks cut by their played SoC), the
//! hour re-cleared at its realised demand; the block is priced at each of
//! `a1 = -10` (discharge) or `+10` (charge) and the grid's price actions, at
//! `clip(reference_price + tanh(a1) max_bid_delta)`, and only the prices at
//! which the whole block clears (within 1e-9 relative) count; the best of
//! them is the move's value (no price clears it whole: the move is not
//! allowed). The value of a path adds the terminal value
//! `terminal_value (s_T - soc_0) reward_scale`. The program is exact on
//! that graph of moves.

use super::exploit::{fresh_scratch, put_played, Candidates, HourState, PARALLEL_MIN_CLEARS};
use super::{checked_size, in_pool, try_vec};
use crate::env::{clear_copper, Market, Scratch};
use crate::error::Result;

/// Relative slack of the power limit and of "the whole block cleared".
const SLACK: f64 = 1e-9;

/// The played episodes, as [`super::exploitability`] sees them.
pub(super) struct Play<'a, 'h> {
    /// (E, T, A, 2) actions.
    pub actions: &'a [f32],
    /// (E, T) realised demand, MW.
    pub demand: &'a [f64],
    /// The played state of each (episode, hour) row.
    pub hour_state: &'a (dyn Fn(usize) -> HourState<'h> + Sync),
}

/// The best paths: `value` (E, S), reward units, and `path` (E, S, T, 2),
/// the actions of the best path.
pub(super) struct Responses {
    pub value: Vec<f64>,
    pub path: Vec<f32>,
}

/// The state graph of one unit.
struct States {
    /// State of charge of each state, MWh: the G grid points, then `soc_0`
    /// when it is not one of them.
    x: Vec<f64>,
    /// Grid points G.
    g: usize,
    /// Index of `soc_0`.
    start: usize,
    /// Grid step, MWh.
    delta: f64,
    /// Most grid steps down (discharge) and up (charge) one hour can move.
    down: usize,
    up: usize,
}

impl States {
    fn new(m: &Market, u: usize, g: usize) -> Result<Self> {
        let unit = &m.scenario.storage[u];
        let (lo, hi) = (unit.soc_min * unit.energy, unit.soc_max * unit.energy);
        let soc0 = unit.soc0();
        let mut x = try_vec("soc_grid", g.saturating_add(1), 0.0)?;
        x.truncate(g);
        let span = (g - 1) as f64;
        for (k, v) in x.iter_mut().enumerate() {
            *v = lo + (hi - lo) * (k as f64) / span;
        }
        let start = match x.iter().position(|&v| v == soc0) {
            Some(k) => k,
            None => {
                x.push(soc0);
                g
            }
        };
        let delta = (hi - lo) / span;
        let (down, up) = steps(
            unit.power,
            unit.efficiency_discharge,
            unit.efficiency_charge,
            delta,
            g,
        );
        Ok(States {
            x,
            g,
            start,
            delta,
            down,
            up,
        })
    }

    /// Number of flow ids.
    fn flows(&self) -> usize {
        if self.x.len() > self.g {
            4 * self.g - 1
        } else {
            2 * self.g - 1
        }
    }

    /// The flow id of the move `j -> k`.
    fn id(&self, j: usize, k: usize) -> usize {
        let g = self.g;
        match (j < g, k < g) {
            (true, true) => k + (g - 1) - j,
            (false, true) => 2 * g - 1 + k,
            (true, false) => 3 * g - 1 + j,
            (false, false) => g - 1,
        }
    }

    /// The change of the state of charge of flow `id`, MWh.
    fn energy(&self, id: usize) -> f64 {
        let g = self.g;
        let soc0 = self.x[self.start];
        if id < 2 * g - 1 {
            (id as f64 - (g - 1) as f64) * self.delta
        } else if id < 3 * g - 1 {
            self.x[id - (2 * g - 1)] - soc0
        } else {
            soc0 - self.x[id - (3 * g - 1)]
        }
    }
}

/// Most grid steps of `delta` MWh one hour can move down (discharging at
/// most `power` MW) and up (charging at most `power` MW), at most `g - 1`.
fn steps(power: f64, eta_d: f64, eta_c: f64, delta: f64, g: usize) -> (usize, usize) {
    let cap = (g - 1) as f64;
    let k = |e: f64| {
        if delta > 0.0 {
            (e * (1.0 + SLACK) / delta).floor().min(cap) as usize
        } else {
            g - 1
        }
    };
    (k(power / eta_d), k(power * eta_c))
}

/// The block of flow `energy` MWh of a unit: signed MW (> 0 discharge),
/// or `None` beyond its power.
fn block(m: &Market, u: usize, energy: f64) -> Option<f64> {
    let unit = &m.scenario.storage[u];
    let q = if energy > 0.0 {
        -energy / unit.efficiency_charge
    } else if energy < 0.0 {
        -energy * unit.efficiency_discharge
    } else {
        0.0
    };
    (q.abs() <= unit.power * (1.0 + SLACK)).then(|| q.clamp(-unit.power, unit.power))
}

/// Work of the search of every storage unit, in offer evaluations: per
/// (episode, unit, hour), each feasible move's clearings of A offers at
/// each candidate price, plus the dynamic program's moves.
pub(super) fn work(m: &Market, price_actions: usize, soc_grid: usize, episodes: usize) -> f64 {
    let (t, a) = (m.horizon() as f64, m.agents() as f64);
    let g = soc_grid as f64;
    let prices = (price_actions + 1) as f64;
    let mut total = 0.0;
    for unit in &m.scenario.storage {
        let span = (unit.soc_max - unit.soc_min) * unit.energy;
        let delta = span / (g - 1.0).max(1.0);
        let reach = |e: f64| {
            if delta > 0.0 {
                (e / delta).floor().min(g - 1.0)
            } else {
                g - 1.0
            }
        };
        let moves = reach(unit.power / unit.efficiency_discharge)
            + reach(unit.power * unit.efficiency_charge)
            + 2.0;
        let flows = moves.min(2.0 * g) + 2.0 * g;
        total += t * (flows * prices * a + (g + 1.0) * moves);
    }
    total * episodes as f64
}

/// The best path of every storage unit in every episode.
pub(super) fn best_responses(
    m: &Market,
    cand: &Candidates,
    play: &Play<'_, '_>,
    episodes: usize,
    soc_grid: usize,
) -> Result<Responses> {
    let (t, s) = (m.horizon(), m.s());
    let pairs = checked_size("episodes", &[episodes, s])?;
    let mut value = try_vec("episodes", pairs, 0.0)?;
    let mut path = try_vec("episodes", checked_size("episodes", &[pairs, t, 2])?, 0f32)?;
    let states: Vec<States> = (0..s)
        .map(|u| States::new(m, u, soc_grid))
        .collect::<Result<_>>()?;
    let one = |sc: &mut Scratch, (k, (v, p)): (usize, (&mut f64, &mut [f32]))| -> Result<()> {
        let (e, u) = (k / s, k % s);
        *v = best_path(m, cand, play, e, u, &states[u], sc, p)?;
        Ok(())
    };
    let clears = work(m, cand.price_action.len(), soc_grid, episodes);
    if clears >= PARALLEL_MIN_CLEARS as f64 && pairs > 1 {
        use rayon::prelude::*;
        in_pool(|| {
            value
                .par_iter_mut()
                .zip(path.par_chunks_mut(2 * t))
                .enumerate()
                .try_for_each_init(|| fresh_scratch(m), one)
        })?;
    } else {
        let mut sc = fresh_scratch(m);
        for item in value.iter_mut().zip(path.chunks_mut(2 * t)).enumerate() {
            one(&mut sc, item)?;
        }
    }
    Ok(Responses { value, path })
}

/// The dynamic program of unit `u` in episode `e`: returns the value of the
/// best path from `soc_0` (reward units, with the terminal value) and
/// writes its actions into `out` (T x 2).
#[allow(clippy::too_many_arguments)]
fn best_path(
    m: &Market,
    cand: &Candidates,
    play: &Play<'_, '_>,
    e: usize,
    u: usize,
    st: &States,
    sc: &mut Scratch,
    out: &mut [f32],
) -> Result<f64> {
    let (t, a, n) = (m.horizon(), m.agents(), m.n());
    let unit = &m.scenario.storage[u];
    let scale = m.reward_scale();
    let (nstates, flows) = (st.x.len(), st.flows());
    let soc0 = st.x[st.start];
    // Per hour: each flow's value and price action; per hour and state, the next state.
    let mut val = try_vec("soc_grid", flows, f64::NEG_INFINITY)?;
    let mut price_of = try_vec("soc_grid", checked_size("soc_grid", &[t, flows])?, 0f32)?;
    let mut choice = try_vec("soc_grid", checked_size("soc_grid", &[t, nstates])?, 0u32)?;
    let mut next: Vec<f64> = try_vec("soc_grid", nstates, 0.0)?;
    let mut now: Vec<f64> = try_vec("soc_grid", nstates, 0.0)?;
    let mut row_acts = vec![0f32; 2 * a];
    let terminal = m.storage_terminal(u);
    for (v, &x) in next.iter_mut().zip(&st.x) {
        *v = terminal * (x - soc0) * scale;
    }
    let i = n + u;
    for h in (0..t).rev() {
        let row = e * t + h;
        let hs = (play.hour_state)(row);
        row_acts.copy_from_slice(&play.actions[row * 2 * a..(row + 1) * 2 * a]);
        let prices = &mut price_of[h * flows..(h + 1) * flows];
        val.fill(f64::NEG_INFINITY);
        for side in [1.0f32, -1.0] {
            row_acts[2 * i] = side;
            row_acts[2 * i + 1] = 0.0;
            put_played(m, &row_acts, &hs, sc);
            let at = sc.sto.discharging.iter().position(|&b| b as usize == u);
            let pa = m.scenario.price_action;
            let extreme = -pa.high()[1] * side;
            for id in 0..flows {
                let q = match block(m, u, st.energy(id)) {
                    Some(q) => q,
                    None => continue,
                };
                if q == 0.0 {
                    val[id] = 0.0;
                    prices[id] = 0.0;
                    continue;
                }
                if (q > 0.0) != (side > 0.0) {
                    continue;
                }
                for a1 in std::iter::once(extreme).chain(cand.price_action.iter().copied()) {
                    let th = pa.share(a1);
                    let bid = m
                        .rules
                        .clip(m.storage_reference(u) + th * m.scenario.max_bid_delta);
                    sc.sto.bids[u] = bid;
                    sc.sto.quantities[u] = q;
                    if let Some(r) = at {
                        let j = m.offers() + r;
                        (sc.bids[j], sc.offered[j]) = (bid, q);
                    }
                    let (c, _) = clear_copper(m, play.demand[row], sc);
                    crate::env::storage::settle_blocks(m, sc, c.price);
                    let (x, paid) = (sc.sto.cleared[u], sc.sto.paid[u]);
                    if (x - q).abs() > SLACK * q.abs() {
                        continue;
                    }
                    let r = (paid * x - unit.cost * x.abs()) * scale;
                    if r > val[id] {
                        val[id] = r;
                        prices[id] = a1;
                    }
                }
            }
        }
        let choices = &mut choice[h * nstates..(h + 1) * nstates];
        for j in 0..nstates {
            let (mut top, mut arg) = (f64::NEG_INFINITY, j);
            let mut consider = |k: usize| {
                let v = val[st.id(j, k)] + next[k];
                if v > top {
                    top = v;
                    arg = k;
                }
            };
            if j < st.g {
                for k in j.saturating_sub(st.down)..(j + st.up + 1).min(st.g) {
                    consider(k);
                }
                if nstates > st.g {
                    consider(st.g);
                }
            } else {
                for k in 0..nstates {
                    consider(k);
                }
            }
            now[j] = top;
            choices[j] = arg as u32;
        }
        std::mem::swap(&mut now, &mut next);
    }
    let mut j = st.start;
    for h in 0..t {
        let k = choice[h * nstates + j] as usize;
        let id = st.id(j, k);
        let q = block(m, u, st.energy(id)).unwrap_or(0.0);
        out[2 * h] = ((q / unit.power) as f32).clamp(-1.0, 1.0);
        out[2 * h + 1] = if q == 0.0 {
            0.0
        } else {
            price_of[h * flows + id]
        };
        j = k;
    }
    Ok(next[st.start])
}
