//! [`MarketEnv`]: one market with its own RNG, state and episode record.

use super::{check_steppable, reset_market, step_market, validate_actions};
use super::{Market, Scratch, StateMut, StepInfo, NOT_STARTED};
use crate::clearing::TieRule;
use crate::error::{checked_size, try_zeros, MarketError, Result};
use crate::observe::Observer;
use crate::rng::{make_rng, RngState};
use crate::scenario::Scenario;
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;

/// The per-step history of one episode; row `h` is hour `h`. Per-offer
/// arrays are (T, N) with one block per generator, else (T, N, K); the
/// storage units' per-block arrays are (T, S[, K]) alike.
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
    /// Rewards, (T, A), exactly as returned by `step`.
    pub rewards: Vec<f32>,
    /// Clearing prices, €/MWh, (T,).
    pub prices: Vec<f64>,
    /// Realised demand, MW, (T,).
    pub demand: Vec<f64>,
    /// Storage block prices (clipped), €/MWh, (T, S[, K]).
    pub storage_bids: Vec<f64>,
    /// Storage block quantities after the state-of-charge cut, signed
    /// (> 0 offered for sale, < 0 bid to buy), MW, (T, S[, K]).
    pub storage_offered: Vec<f64>,
    /// Storage blocks cleared, signed (> 0 sold, < 0 bought), MW, (T, S[, K]).
    pub storage_cleared: Vec<f64>,
    /// State of charge at the start of each hour and after the last, MWh,
    /// (T + 1, S).
    pub soc: Vec<f64>,
    /// Node prices of a networked market, €/MWh, (T, Z); empty otherwise.
    pub node_prices: Vec<f64>,
    /// Line flows of a networked market, MW, (T, L); empty otherwise.
    pub flows: Vec<f64>,
    /// Congestion rent of a networked market, €/h, (T,); empty otherwise.
    pub congestion_rent: Vec<f64>,
}

/// The full state of a [`MarketEnv`], for pickling.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub rng: RngState,
    /// `None` before the first reset.
    pub t: Option<usize>,
    pub demand: Vec<f64>,
    pub last_price: Vec<f64>,
    pub last_cleared: Vec<f64>,
    /// State of charge of each storage unit, MWh.
    pub soc: Vec<f64>,
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
    last_price: Vec<f64>,
    last_cleared: Vec<f64>,
    soc: Vec<f64>,
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
        let (t, a, s) = (market.horizon(), market.agents(), market.s());
        let ta = checked_size(t, a, "scenario (T x agents)")?;
        let tnk = checked_size(t, market.offers(), "scenario (T x N x segments)")?;
        let tsk = checked_size(t, market.storage_blocks(), "scenario (T x S x segments)")?;
        let socs = checked_size(t + 1, s, "scenario (T x S)")?;
        Ok(MarketEnv {
            rng: make_rng(seed),
            t: NOT_STARTED,
            demand: try_zeros(t, "scenario (T)")?,
            last_price: vec![f64::NAN; market.prices_len()],
            last_cleared: try_zeros(a, "scenario (agents)")?,
            soc: try_zeros(s, "scenario (S)")?,
            availability: try_zeros(market.availability_len(), "scenario (T x N)")?,
            scratch: Scratch::try_for(&market, "scenario (agents x segments)")?,
            record: Record {
                bids: try_zeros(tnk, "scenario (T x N x segments)")?,
                offered: try_zeros(tnk, "scenario (T x N x segments)")?,
                cleared: try_zeros(tnk, "scenario (T x N x segments)")?,
                // Derived from the prices, bids and dispatch in `record()`.
                paid: Vec::new(),
                average_paid: Vec::new(),
                rewards: try_zeros(ta, "scenario (T x agents)")?,
                prices: try_zeros(t, "scenario (T)")?,
                demand: try_zeros(t, "scenario (T)")?,
                storage_bids: try_zeros(tsk, "scenario (T x S x segments)")?,
                storage_offered: try_zeros(tsk, "scenario (T x S x segments)")?,
                storage_cleared: try_zeros(tsk, "scenario (T x S x segments)")?,
                soc: try_zeros(socs, "scenario (T x S)")?,
                node_prices: try_zeros(
                    checked_size(t, market.nodes_len(), "scenario (T x nodes)")?,
                    "scenario (T x nodes)",
                )?,
                flows: try_zeros(
                    checked_size(t, market.lines_len(), "scenario (T x lines)")?,
                    "scenario (T x lines)",
                )?,
                congestion_rent: try_zeros(
                    if market.grid.is_some() { t } else { 0 },
                    "scenario (T)",
                )?,
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

    /// Agents A = N + S.
    pub fn num_agents(&self) -> usize {
        self.market.agents()
    }

    /// State of charge of each storage unit, MWh.
    pub fn soc(&self) -> &[f64] {
        &self.soc
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

    /// The last clearing price (`None` before the first step of an episode).
    /// The line flows of the last hour of a networked market, MW (L
    /// values; empty otherwise).
    pub fn last_flows(&self) -> &[f64] {
        &self.scratch.grid.flows
    }

    /// The last clearing price (NaN before the first step), or the Z node
    /// prices of a networked market.
    pub fn last_prices(&self) -> &[f64] {
        &self.last_price
    }

    pub fn last_price(&self) -> Option<f64> {
        (!self.last_price[0].is_nan()).then_some(self.last_price[0])
    }

    /// Cleared quantities of the last step, MW.
    pub fn last_cleared(&self) -> &[f64] {
        &self.last_cleared
    }

    /// Load factors of the current episode, (T, N) row-major: its own draw
    /// when the scenario has `availability_noise`, else the scenario's
    /// (all ones without availability).
    pub fn load_factors(&self) -> Vec<f64> {
        let (n, t) = (self.market.n(), self.horizon());
        if !self.availability.is_empty() {
            self.availability.clone()
        } else {
            self.scenario()
                .availability
                .clone()
                .unwrap_or_else(|| vec![1.0; n * t])
        }
    }

    /// The market, its state and the step scratch, borrowed apart (no
    /// reference count or move of the scratch on the hot path).
    fn parts(&mut self) -> (&Market, StateMut<'_>, &mut Scratch) {
        (
            &self.market,
            StateMut {
                rng: &mut self.rng,
                t: &mut self.t,
                demand: &mut self.demand,
                last_price: &mut self.last_price,
                last_cleared: &mut self.last_cleared,
                soc: &mut self.soc,
                availability: &mut self.availability,
            },
            &mut self.scratch,
        )
    }

    /// Start an episode; `Some(seed)` reseeds the RNG first. Writes the first
    /// observation, (N, D) row-major, into `obs`.
    pub fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]) -> Result<()> {
        self.check_obs(obs)?;
        if let Some(s) = seed {
            self.rng = make_rng(Some(s));
        }
        let (market, mut state, _) = self.parts();
        reset_market(market, &mut state, Some(obs));
        let s = self.soc.len();
        self.record.soc[..s].copy_from_slice(&self.soc);
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

    /// Write the current observation (N, D) into `obs`: the one the last
    /// `reset` or `step` returned. A RuntimeError-kind error before the
    /// first reset.
    pub fn observe(&self, obs: &mut [f32]) -> Result<()> {
        self.check_obs(obs)?;
        if self.t == NOT_STARTED {
            return Err(MarketError::Misuse(
                "observe() called before reset(): call reset() first".into(),
            ));
        }
        super::observe_parts(
            &self.market,
            self.t,
            &self.demand,
            &self.last_price,
            &self.last_cleared,
            &self.soc,
            &self.availability,
            obs,
        );
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
        let (market, mut state, scratch) = self.parts();
        let info = step_market(market, &mut state, actions, scratch, Some(obs), rewards)?;
        let nk = market.offers();
        let offers = h * nk..(h + 1) * nk;
        let (record, scratch) = (&mut self.record, &self.scratch);
        record.bids[offers.clone()].copy_from_slice(&scratch.bids[..nk]);
        record.offered[offers.clone()].copy_from_slice(&scratch.offered[..nk]);
        record.cleared[offers.clone()].copy_from_slice(&scratch.cleared[..nk]);
        record.rewards[h * n..(h + 1) * n].copy_from_slice(rewards);
        record.prices[h] = info.price;
        record.demand[h] = info.demand;
        let sk = scratch.sto.bids.len();
        if sk > 0 {
            let blocks = h * sk..(h + 1) * sk;
            record.storage_bids[blocks.clone()].copy_from_slice(&scratch.sto.bids);
            record.storage_offered[blocks.clone()].copy_from_slice(&scratch.sto.quantities);
            record.storage_cleared[blocks].copy_from_slice(&scratch.sto.cleared);
            let s = self.soc.len();
            record.soc[(h + 1) * s..(h + 2) * s].copy_from_slice(&self.soc);
        }
        if self.market.grid.is_some() {
            let (z, l) = (self.market.nodes_len(), self.market.lines_len());
            record.node_prices[h * z..(h + 1) * z].copy_from_slice(&scratch.grid.prices);
            record.flows[h * l..(h + 1) * l].copy_from_slice(&scratch.grid.flows);
            record.congestion_rent[h] = info.congestion_rent;
        }
        Ok(info)
    }

    /// The record of the current episode: rows for the hours stepped so far.
    pub fn record(&self) -> Record {
        let n = self.num_agents();
        let nk = self.market.offers();
        let (sk, s) = (self.market.storage_blocks(), self.market.s());
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
            let z = self.market.nodes_len();
            let node_prices = &self.record.node_prices[hour * z..(hour + 1) * z];
            // The price an offer of agent `a` is settled at.
            let price_of = |a: usize| match &self.market.grid {
                Some(g) => node_prices[g.node_of[a]],
                None => price,
            };
            let k = self.market.segments();
            for (j, (p, &b)) in row
                .iter_mut()
                .zip(&self.record.bids[offers.clone()])
                .enumerate()
            {
                settlement.settle(price_of(j / k), &[b], std::slice::from_mut(p));
            }
            // The average over every offer cleared: the generators' and
            // the storage units' sales.
            let blocks = hour * sk..(hour + 1) * sk;
            let (mut bids, mut cleared) = (
                self.record.bids[offers.clone()].to_vec(),
                self.record.cleared[offers].to_vec(),
            );
            let mut paid_all = row.to_vec();
            for (b, (&bid, &x)) in self.record.storage_bids[blocks.clone()]
                .iter()
                .zip(&self.record.storage_cleared[blocks])
                .enumerate()
            {
                if x > 0.0 {
                    bids.push(bid);
                    cleared.push(x);
                    let mut p = 0.0;
                    settlement.settle(
                        price_of(self.market.n() + b / k),
                        &[bid],
                        std::slice::from_mut(&mut p),
                    );
                    paid_all.push(p);
                }
            }
            *avg = match self.market.grid {
                Some(_) => super::network::average_paid(
                    &self.market,
                    node_prices,
                    &paid_all,
                    &cleared,
                    price,
                ),
                None => settlement.average(price, &paid_all, &cleared),
            };
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
            storage_bids: self.record.storage_bids[..h * sk].to_vec(),
            storage_offered: self.record.storage_offered[..h * sk].to_vec(),
            storage_cleared: self.record.storage_cleared[..h * sk].to_vec(),
            soc: self.record.soc[..(h + 1) * s].to_vec(),
            node_prices: self.record.node_prices[..h * self.market.nodes_len()].to_vec(),
            flows: self.record.flows[..h * self.market.lines_len()].to_vec(),
            congestion_rent: self.record.congestion_rent
                [..h.min(self.record.congestion_rent.len())]
                .to_vec(),
        }
    }

    /// Everything needed to continue this market elsewhere, RNG included.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            rng: RngState::capture(&self.rng),
            t: self.t(),
            demand: self.demand.clone(),
            last_price: self.last_price.clone(),
            last_cleared: self.last_cleared.clone(),
            soc: self.soc.clone(),
            availability: self.availability.clone(),
            record: self.record.clone(),
        }
    }

    /// Rebuild a market from [`MarketEnv::snapshot`].
    pub fn restore(market: Arc<Market>, snap: Snapshot) -> Result<Self> {
        let (n, horizon) = (market.agents(), market.horizon());
        let nk = market.offers();
        let (s, sk) = (market.s(), market.storage_blocks());
        let bad = |what: &str| {
            Err(MarketError::Shape {
                arg: "state",
                expected: format!("a snapshot of a market with {n} agents, T={horizon}"),
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
            || snap.soc.len() != s
            || r.storage_bids.len() != sk * horizon
            || r.storage_offered.len() != sk * horizon
            || r.storage_cleared.len() != sk * horizon
            || r.soc.len() != s * (horizon + 1)
            || snap.last_price.len() != market.prices_len()
            || r.node_prices.len() != market.nodes_len() * horizon
            || r.flows.len() != market.lines_len() * horizon
            || r.congestion_rent.len() != market.grid.as_ref().map_or(0, |_| horizon)
        {
            return bad("arrays of other sizes");
        }
        if snap.t.is_some_and(|t| t > horizon) {
            return bad("an hour beyond the horizon");
        }
        Ok(MarketEnv {
            rng: snap.rng.restore(),
            t: snap.t.unwrap_or(NOT_STARTED),
            demand: snap.demand,
            last_price: snap.last_price,
            last_cleared: snap.last_cleared,
            soc: snap.soc,
            availability: snap.availability,
            scratch: Scratch::try_for(&market, "scenario (agents x segments)")?,
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
    fn offer_workspace_too_large_is_an_error_not_an_abort() {
        // usize::MAX / 8 offers: the byte size overflows, so nothing is
        // allocated and the error names what sized it.
        let e = Scratch::try_new(usize::MAX / 8, "scenario (N x segments)").unwrap_err();
        assert!(e.is_memory(), "{e}");
        assert!(e.to_string().contains("scenario (N x segments)"), "{e}");
        let sc = Scratch::try_new(6, "scenario (N x segments)").unwrap();
        assert_eq!(sc.bids, vec![0.0; 6]);
        assert_eq!(sc.paid.len(), 6);
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
