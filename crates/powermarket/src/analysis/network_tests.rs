//! The analysis on networked scenarios, checked by hand and against the env.

use super::*;
use crate::clearing::{Rules, TieRule};
use crate::env::{Market, MarketEnv};
use crate::network::NetworkKind;
use crate::observe::Observer;
use crate::scenario::{linspace, Scenario};
use crate::units::storage::Storage;
use std::sync::Arc;

/// North (node 0): 100 MW at 10 €/MWh. South (node 1): 60 MW at 30 and
/// 20 MW at 50. One line north -> south of 30 MW; 20 % of the demand in
/// the north. At 100 MW the line is full: north 10, south 30 €/MWh.
fn two_nodes(kind: NetworkKind, demand: Vec<f64>) -> Scenario {
    let mut s = Scenario::with_fleet(vec![100.0, 60.0, 20.0], vec![10.0, 30.0, 50.0], demand);
    s.network = kind;
    s.node_names = vec!["north".into(), "south".into()];
    s.nodes = vec![0, 1, 1];
    s.lines = vec![[0.0, 1.0, 30.0, 1.0]];
    s.demand_shares = Some(vec![0.2, 0.8]);
    s.demand_noise = 0.0;
    s.bid_penalty = 0.0;
    s
}

#[test]
fn competitive_on_two_nodes_by_hand() {
    let s = two_nodes(NetworkKind::Transport, vec![100.0, 40.0]);
    let c = competitive(&s, &Rules::default(), None).unwrap();
    // Hour 0: the north serves its 20 MW and exports 30; the south's 30
    // €/MWh unit serves the other 50 MW.
    assert_eq!(&c.node_prices[..2], &[10.0, 30.0]);
    assert_eq!(&c.cleared[..3], &[50.0, 50.0, 0.0]);
    assert_eq!(c.flows[0], 30.0);
    assert!((c.price[0] - (10.0 * 20.0 + 30.0 * 80.0) / 100.0).abs() < 1e-12);
    assert!((c.congestion_rent[0] - 30.0 * 20.0).abs() < 1e-9);
    // Each offer is paid its node's price.
    assert_eq!(&c.profit[..3], &[0.0, 0.0, 0.0]);
    // Hour 1: 40 MW, 32 of it south; the line carries 32 > 30: congested
    // again (north 10, south 30, the south unit sells 2 MW).
    assert_eq!(&c.node_prices[2..4], &[10.0, 30.0]);
    assert_eq!(&c.cleared[3..6], &[38.0, 2.0, 0.0]);
    assert_eq!(&c.profit[3..6], &[0.0, 0.0, 0.0]);
    // The copper plate of the same nodes: one price, no flow.
    let cu = competitive(
        &two_nodes(NetworkKind::Copper, vec![100.0]),
        &Rules::default(),
        None,
    )
    .unwrap();
    assert_eq!(cu.node_prices, vec![10.0, 10.0]);
    assert_eq!(cu.flows, vec![0.0]);
    assert_eq!(cu.price, vec![10.0]);
    // Not networked: no node outputs.
    let plain = Scenario::with_fleet(vec![10.0], vec![1.0], vec![5.0]);
    let c = competitive(&plain, &Rules::default(), None).unwrap();
    assert!(c.node_prices.is_empty() && c.flows.is_empty() && c.congestion_rent.is_empty());
}

#[test]
fn competitive_matches_the_env_playing_at_cost() {
    let mut s = two_nodes(NetworkKind::Dc, vec![60.0, 100.0, 140.0, 90.0]);
    s.lines = vec![[0.0, 1.0, 30.0, 1.0], [0.0, 1.0, 20.0, 2.0]];
    // A price-responsive share of the southern demand.
    s.demand_bids = vec![(40.0, 0.2)];
    s.demand_bid_nodes = vec![1];
    let c = competitive(&s, &Rules::default(), None).unwrap();
    let mut env = MarketEnv::new(s, Observer::Simple, TieRule::ProRata, Some(0)).unwrap();
    let (mut obs, mut r) = (vec![0f32; 3 * env.obs_dim()], vec![0f32; 3]);
    env.reset(Some(0), &mut obs).unwrap();
    for _ in 0..4 {
        env.step(&[0.0; 6], &mut obs, &mut r).unwrap();
    }
    let rec = env.record();
    assert_eq!(rec.node_prices, c.node_prices);
    assert_eq!(rec.prices, c.price);
    assert_eq!(rec.cleared, c.cleared);
    assert_eq!(rec.flows, c.flows);
    assert!(c.node_prices.chunks(2).any(|p| p[0] != p[1]));
}

#[test]
fn market_power_per_node_by_hand() {
    let s = two_nodes(NetworkKind::Transport, vec![100.0]);
    let bids = [10.0, 30.0, 50.0];
    let cleared = [50.0, 50.0, 0.0];
    let m = market_power_at_nodes(
        &s,
        &bids,
        &cleared,
        &[26.0],
        &[100.0],
        None,
        None,
        Some(&[10.0, 30.0]),
    )
    .unwrap();
    // System-wide: 180 MW for 100; the northern unit is pivotal, not the southern.
    assert_eq!(m.rsi, vec![0.8, 1.2, 1.6]);
    assert_eq!(m.pivotal, vec![true, false, false]);
    let nd = m.nodes.unwrap();
    assert_eq!(nd.node_demand, vec![20.0, 80.0]);
    // North: its 100 MW and 30 imported; south: its 80 and 30 imported.
    assert_eq!(nd.reachable, vec![130.0, 110.0]);
    // Without the northern unit the north imports 30 for its 20 MW; without
    // the 30 €/MWh unit the south has 20 + 30 = 50 for 80 MW: pivotal
    // there, and not system-wide.
    assert_eq!(nd.local_rsi, vec![1.5, 50.0 / 80.0, 90.0 / 80.0]);
    assert_eq!(nd.local_pivotal, vec![false, true, false]);
    assert_eq!(nd.node_rsi, vec![1.5, 50.0 / 80.0]);
    assert_eq!(nd.node_pivotal, vec![false, true]);
    let lerner = nd.lerner.unwrap();
    assert_eq!(lerner[0], 0.0);
    assert_eq!(lerner[1], 0.0);
    assert!(lerner[2].is_nan());
    // A copper plate of the same nodes: the lines do not limit anything.
    let cu = two_nodes(NetworkKind::Copper, vec![100.0]);
    let m = market_power(&cu, &bids, &cleared, &[10.0], &[100.0], None).unwrap();
    let nd = m.nodes.unwrap();
    assert_eq!(nd.reachable, vec![180.0, 180.0]);
    assert_eq!(nd.local_rsi, vec![80.0 / 20.0, 120.0 / 80.0, 160.0 / 80.0]);
    assert!(nd.lerner.is_none());
    // Bad node prices.
    let e = market_power_at_nodes(
        &s,
        &bids,
        &cleared,
        &[26.0],
        &[100.0],
        None,
        None,
        Some(&[1.0]),
    )
    .unwrap_err();
    assert!(e.to_string().contains("node_prices"), "{e}");
    let plain = Scenario::with_fleet(vec![10.0], vec![1.0], vec![5.0]);
    let e = market_power_at_nodes(
        &plain,
        &[1.0],
        &[1.0],
        &[1.0],
        &[5.0],
        None,
        None,
        Some(&[1.0]),
    )
    .unwrap_err();
    assert!(e.to_string().contains("node_prices"), "{e}");
    assert!(market_power(&plain, &[1.0], &[1.0], &[1.0], &[5.0], None)
        .unwrap()
        .nodes
        .is_none());
}

/// Play an episode with fixed pseudo-random actions; return actions,
/// demand and the env's rewards.
fn play(env: &mut MarketEnv, seed: u64) -> (Vec<f32>, Vec<f64>, Vec<f32>) {
    let (a, t, d) = (env.num_agents(), env.horizon(), env.obs_dim());
    let n = env.market().n();
    let mut obs = vec![0f32; a * d];
    let mut r = vec![0f32; a];
    env.reset(Some(seed), &mut obs).unwrap();
    let mut acts = Vec::new();
    for h in 0..t {
        let x: Vec<f32> = (0..2 * a)
            .map(|k| {
                let x = ((h * 2 * a + k) as f32 * 0.618_034 + seed as f32).fract();
                match (k / 2 < n, k % 2) {
                    (true, 0) => 0.3 * x,
                    (false, 0) => 2.0 * x - 1.0,
                    _ => 4.0 * x - 2.0,
                }
            })
            .collect();
        env.step(&x, &mut obs, &mut r).unwrap();
        acts.extend_from_slice(&x);
    }
    let rec = env.record();
    (acts, rec.demand, rec.rewards)
}

#[test]
fn exploitability_on_a_network_matches_the_env() {
    for (kind, ramps) in [
        (NetworkKind::Transport, false),
        (NetworkKind::Dc, false),
        (NetworkKind::Copper, false),
        (NetworkKind::Transport, true),
    ] {
        let mut s = two_nodes(kind, vec![60.0, 100.0, 140.0, 90.0, 120.0]);
        s.demand_noise = 0.05;
        s.bid_penalty = 0.1;
        if ramps {
            // Ramps: the played path is replayed on the network.
            s.ramp_limits = Some(vec![0.5, 0.6, 1.0]);
            s.ramp_costs = Some(vec![1.0, 0.5, 0.0]);
        }
        let mut env = MarketEnv::new(s, Observer::Simple, TieRule::ProRata, Some(1)).unwrap();
        let (acts, demand, rewards) = play(&mut env, 2);
        let m = Arc::clone(env.market());
        let (w, p) = (linspace(0.0, 1.0, 5), linspace(-3.0, 3.0, 9));
        let grid = Grid {
            withheld: &w,
            price_action: &p,
        };
        let x = exploitability(&m, &acts, &demand, None, 1, &grid).unwrap();
        for i in 0..3 {
            let env_total: f64 = (0..5).map(|h| rewards[h * 3 + i] as f64).sum();
            assert!(
                (x.played_reward[i] - env_total).abs() < 1e-5,
                "{kind:?} {i}"
            );
            assert!(x.regret[i] >= 0.0);
        }
        assert!(x.nash_conv() > 0.0, "{kind:?}");
        if ramps {
            // A replayed best response moves the ramp windows of later
            // hours (the regret is a lower bound): no identity to check.
            continue;
        }
        // Each agent's best responses, replayed in the env with the others
        // as played, earn the played reward plus the regret.
        for i in 0..3 {
            let mut a2 = acts.clone();
            for h in 0..5 {
                let k = (h * 3 + i) * 2;
                a2[k..k + 2].copy_from_slice(&x.best_response[k..k + 2]);
            }
            let y = exploitability(&m, &a2, &demand, None, 1, &grid).unwrap();
            assert_eq!(y.regret[i], 0.0, "{kind:?} {i}");
            assert!((y.played_reward[i] - (x.played_reward[i] + x.regret[i])).abs() < 1e-9);
        }
    }
}

#[test]
fn storage_on_a_network_is_paid_its_node_price() {
    // The two-node market of 100 MW in hour 0 (south 30 €/MWh) and 40 MW
    // in hour 1; a 10 MW / 10 MWh battery in the north, full, no terminal
    // value. Selling in the north fetches only 10 €/MWh: its best path sells
    // 10 MW at 10 €/MWh in hour 0 (the line is full, so the north price
    // stays 10 with the battery's offer at or below it), or less than in the
    // south. The same battery in the south sells at 30.
    let best = |node: usize| {
        let mut s = two_nodes(NetworkKind::Transport, vec![100.0, 100.0]);
        let mut b = Storage::new(10.0, 10.0);
        b.soc_initial = 1.0;
        b.efficiency_charge = 1.0;
        b.efficiency_discharge = 1.0;
        b.reference_price = Some(0.0);
        b.terminal_value = Some(0.0);
        s.storage = vec![b];
        s.nodes = vec![0, 1, 1, node];
        s.max_bid_delta = 5.0;
        let m = Market::new(s, Observer::Simple, TieRule::ProRata).unwrap();
        let (w, p) = (vec![0.0], vec![0.0]);
        let grid = Grid {
            withheld: &w,
            price_action: &p,
        };
        let x = exploitability_with(&m, &[0.0; 16], &[100.0, 100.0], None, 1, &grid, 11).unwrap();
        (x.regret[3] / m.reward_scale(), x)
    };
    let (north, _) = best(0);
    let (south, x) = best(1);
    // North: 10 MWh at 10 €/MWh. South: 10 MWh at 30 €/MWh.
    assert!((north - 100.0).abs() < 1e-9, "{north}");
    assert!((south - 300.0).abs() < 1e-9, "{south}");
    assert_eq!(x.n, 4);
}

#[test]
fn equilibrium_on_a_network_has_no_regret() {
    let s = two_nodes(NetworkKind::Transport, vec![100.0, 60.0]);
    let m = Market::new(s, Observer::Simple, TieRule::ProRata).unwrap();
    let (w, p) = (linspace(0.0, 1.0, 3), linspace(-2.0, 2.0, 5));
    let grid = Grid {
        withheld: &w,
        price_action: &p,
    };
    let opts = EquilibriumOptions {
        max_moves: 50,
        tol: 0.0,
        seed: 0,
        starts: 1,
    };
    let eq = equilibrium(&m, &[100.0, 60.0], 1, &grid, &opts).unwrap();
    let pr = &eq.profiles[0];
    assert_eq!(pr.exact, 2);
    let x = exploitability(&m, &pr.actions, &[100.0, 60.0], None, 1, &grid).unwrap();
    assert_eq!(x.nash_conv(), 0.0);
    for i in 0..3 {
        assert!((x.played_reward[i] - pr.reward[i]).abs() < 1e-12);
    }
}
