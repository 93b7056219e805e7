use super::*;
use crate::clearing::{Mechanism, TieRule};
use proptest::prelude::*;

struct Out {
    prices: Vec<f64>,
    cleared: Vec<f64>,
    flows: Vec<f64>,
    served: Vec<f64>,
    shed: Vec<f64>,
    summary: NetworkClearing,
}

#[allow(clippy::too_many_arguments)]
fn run(
    bids: &[f64],
    quantities: &[f64],
    nodes: &[usize],
    demand: &[f64],
    net: &Network,
    demand_bids: Option<NodalBids<'_>>,
    rules: &Rules,
) -> Result<Out> {
    let nb = demand_bids.map_or(0, |d| d.prices.len());
    let mut o = Out {
        prices: vec![0.0; net.nodes()],
        cleared: vec![0.0; bids.len()],
        flows: vec![0.0; net.lines().len()],
        served: vec![0.0; nb],
        shed: vec![0.0; net.nodes()],
        summary: NetworkClearing {
            congestion_rent: 0.0,
            shortfall: 0.0,
            congested: false,
        },
    };
    let mut ws = NetWorkspace::default();
    o.summary = clear_network(
        bids,
        quantities,
        nodes,
        demand,
        net,
        demand_bids,
        rules,
        &mut ws,
        NetworkOut {
            prices: &mut o.prices,
            cleared: &mut o.cleared,
            flows: &mut o.flows,
            served: &mut o.served,
            shed: &mut o.shed,
        },
    )?;
    Ok(o)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
}

/// Two nodes, one line of 60 MW: the cheap side exports at the limit and
/// each side is priced at its own marginal offer.
#[test]
fn two_nodes_export_limited_by_hand() {
    for model in [Model::Transport, Model::Dc] {
        let net = Network::new(2, &[[0.0, 1.0, 60.0, 0.1]], model).unwrap();
        let o = run(
            &[10.0, 30.0, 50.0],
            &[100.0, 100.0, 100.0],
            &[0, 0, 1],
            &[20.0, 120.0],
            &net,
            None,
            &Rules::default(),
        )
        .unwrap();
        assert_eq!(o.prices, vec![10.0, 50.0], "{model:?}");
        assert_eq!(o.flows, vec![60.0]);
        assert_eq!(o.cleared, vec![80.0, 0.0, 60.0]);
        assert!(o.summary.congested);
        assert_eq!(o.summary.congestion_rent, 60.0 * 40.0);
        assert_eq!(o.summary.shortfall, 0.0);
    }
}

/// A triangle with one limited line: DC flows split 2/3 : 1/3 (loop flow)
/// and price the middle node between the ends; transport routes around.
#[test]
fn three_node_loop_flow_dc_differs_from_transport() {
    let lines = [
        [0.0, 1.0, f64::INFINITY, 1.0],
        [1.0, 2.0, f64::INFINITY, 1.0],
        [0.0, 2.0, 50.0, 1.0],
    ];
    let (bids, qs, nodes, demand) = ([10.0, 50.0], [200.0, 200.0], [0, 2], [0.0, 0.0, 120.0]);
    let dc = Network::new(3, &lines, Model::Dc).unwrap();
    let o = run(&bids, &qs, &nodes, &demand, &dc, None, &Rules::default()).unwrap();
    assert!(
        close(o.cleared[0], 75.0) && close(o.cleared[1], 45.0),
        "{:?}",
        o.cleared
    );
    assert!(close(o.flows[0], 25.0) && close(o.flows[1], 25.0) && close(o.flows[2], 50.0));
    assert_eq!(o.prices[0], 10.0);
    assert_eq!(o.prices[2], 50.0);
    assert!(close(o.prices[1], 30.0), "{:?}", o.prices);
    let tr = Network::new(3, &lines, Model::Transport).unwrap();
    let t = run(&bids, &qs, &nodes, &demand, &tr, None, &Rules::default()).unwrap();
    assert_eq!(t.prices, vec![10.0; 3]);
    assert_eq!(t.cleared, vec![120.0, 0.0]);
    assert!(!t.summary.congested);
    assert!(t.flows[2] <= 50.0);
    // Node balance of the transport flows.
    assert!(close(t.flows[0] + t.flows[2], 120.0));
    assert!(close(t.flows[0], t.flows[1]));
}

fn random_case(seed: u64, z: usize, n: usize) -> (Vec<f64>, Vec<f64>, Vec<usize>, Vec<f64>) {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let bids = (0..n).map(|_| (next() * 10.0).floor() * 10.0).collect();
    let qs = (0..n).map(|_| (next() * 5.0).floor() * 20.0).collect();
    let nodes = (0..n).map(|_| (next() * z as f64) as usize % z).collect();
    let demand = (0..z).map(|_| (next() * 8.0).floor() * 15.0).collect();
    (bids, qs, nodes, demand)
}

/// Unlimited lines: the copper plate, bit for bit, under both tie rules,
/// with bids, cap and floor, and shortages.
#[test]
fn unlimited_lines_are_the_copper_plate_bit_for_bit() {
    for seed in 0..300u64 {
        let z = 2 + (seed as usize % 5);
        let n = 3 + (seed as usize % 7);
        let (bids, qs, nodes, demand) = random_case(seed, z, n);
        let mut rows: Vec<[f64; 4]> = (1..z)
            .map(|k| [(k - 1) as f64, k as f64, f64::INFINITY, 0.5 + k as f64])
            .collect();
        if z > 2 {
            rows.push([0.0, (z - 1) as f64, f64::INFINITY, 0.3]);
        }
        for model in [Model::Transport, Model::Dc] {
            let net = Network::new(z, &rows, model).unwrap();
            for tie_rule in [TieRule::ProRata, TieRule::Index] {
                let rules = Rules {
                    tie_rule,
                    price_cap: (seed % 3 == 0).then_some(85.0),
                    price_floor: (seed % 4 == 0).then_some(15.0),
                    shortage_price: (seed % 5 == 0).then_some(500.0),
                    mechanism: Mechanism::Uniform,
                };
                let bp = [95.0, 40.0];
                let bq = [30.0, 25.0];
                let bn = [z - 1, 0];
                let with_bids = seed % 2 == 0;
                let db = with_bids.then_some(NodalBids {
                    prices: &bp,
                    quantities: &bq,
                    nodes: &bn,
                });
                let o = run(&bids, &qs, &nodes, &demand, &net, db, &rules).unwrap();
                // The copper plate.
                let total = total_demand(&demand);
                let mut clipped = bids.clone();
                rules.clip_all(&mut clipped);
                let mut bpc = bp.to_vec();
                rules.clip_all(&mut bpc);
                let (mut groups, mut group_of) = (Vec::new(), Vec::new());
                let (p, q) = if with_bids {
                    (&bpc[..], &bq[..])
                } else {
                    (&[][..], &[][..])
                };
                group_bids(p, q, &mut groups, &mut group_of).unwrap();
                let mut sg = vec![0.0; groups.len()];
                let mut cleared = vec![0.0; n];
                let c = clear_elastic_unchecked(
                    &clipped,
                    &qs,
                    &DemandCurve {
                        inelastic: total,
                        groups: &groups,
                    },
                    &rules,
                    &mut Workspace::new(),
                    &mut cleared,
                    &mut sg,
                );
                assert!(!o.summary.congested, "seed {seed}");
                // A shortage is priced at the shedding price V, which is the
                // copper plate's unless its shortage price lies below an
                // offer or bid price.
                let v = shed_price(&clipped, p, &rules, &net);
                let expect = if c.shortage { v } else { c.price };
                if c.shortage && rules.price_cap.is_some() {
                    assert_eq!(v, c.price, "seed {seed}");
                }
                for &pz in &o.prices {
                    assert_eq!(pz.to_bits(), expect.to_bits(), "seed {seed}");
                }
                for (a, b) in o.cleared.iter().zip(&cleared) {
                    assert_eq!(a.to_bits(), b.to_bits(), "seed {seed}");
                }
            }
        }
    }
}

/// Offers of one price at one node split by the tie rule when a line binds.
#[test]
fn tie_rules_apply_at_each_node() {
    let net = Network::new(2, &[[0.0, 1.0, 30.0, 1.0]], Model::Dc).unwrap();
    // Node 1: two offers at 40 (10 and 30 MW) share 20 MW.
    let bids = [10.0, 40.0, 40.0];
    let qs = [100.0, 10.0, 30.0];
    let nodes = [0, 1, 1];
    let demand = [0.0, 50.0];
    let pr = run(&bids, &qs, &nodes, &demand, &net, None, &Rules::default()).unwrap();
    assert_eq!(pr.prices, vec![10.0, 40.0]);
    assert_eq!(pr.cleared, vec![30.0, 5.0, 15.0]);
    let ix = Rules {
        tie_rule: TieRule::Index,
        ..Rules::default()
    };
    let io = run(&bids, &qs, &nodes, &demand, &net, None, &ix).unwrap();
    assert_eq!(io.cleared, vec![30.0, 10.0, 10.0]);
}

/// A node cut off by a zero-capacity line sheds load at the shortage price.
#[test]
fn shortage_behind_a_limit_is_priced_at_the_shortage_price() {
    let net = Network::new(2, &[[0.0, 1.0, 10.0, 1.0]], Model::Transport).unwrap();
    let rules = Rules {
        price_cap: Some(300.0),
        ..Rules::default()
    };
    let o = run(
        &[10.0, 60.0],
        &[100.0, 20.0],
        &[0, 1],
        &[0.0, 50.0],
        &net,
        None,
        &rules,
    )
    .unwrap();
    assert_eq!(o.cleared, vec![10.0, 20.0]);
    assert_eq!(o.prices, vec![10.0, 300.0]);
    assert_eq!(o.shed, vec![0.0, 20.0]);
    assert_eq!(o.summary.shortfall, 20.0);
}

/// Demand bids at an importing node: served from the highest price down.
#[test]
fn demand_bids_at_a_node() {
    let net = Network::new(2, &[[0.0, 1.0, 40.0, 1.0]], Model::Dc).unwrap();
    let o = run(
        &[10.0, 70.0],
        &[100.0, 100.0],
        &[0, 1],
        &[0.0, 20.0],
        &net,
        Some(NodalBids {
            prices: &[90.0, 60.0, 50.0],
            quantities: &[20.0, 30.0, 30.0],
            nodes: &[1, 1, 0],
        }),
        &Rules::default(),
    )
    .unwrap();
    // Node 1: 20 inelastic + bid 90 (20 MW) served by 40 import: bid at 60
    // gets nothing from imports... 40 = 20 + 20; node 1 price is the bid at
    // 60 (marginal, served 0) or the import limit: the 60 bid is not worth
    // the 70 offer, so node 1 clears at 60 with that bid unserved.
    assert_eq!(o.served[0], 20.0);
    assert_eq!(o.served[2], 30.0);
    assert_eq!(o.flows, vec![40.0]);
    assert_eq!(o.prices[0], 10.0);
    assert!(o.prices[1] >= 60.0 && o.prices[1] <= 70.0, "{:?}", o.prices);
}

#[test]
fn bad_networks_are_refused_with_their_place() {
    let e = Network::new(3, &[[0.0, 1.0, 1.0, 1.0]], Model::Dc).unwrap_err();
    assert!(e.to_string().contains("node 2 is not reachable"), "{e}");
    let e = Network::new(2, &[[0.0, 2.0, 1.0, 1.0]], Model::Dc).unwrap_err();
    assert!(e.to_string().contains("lines[0] to"), "{e}");
    let e = Network::new(2, &[[0.0, 1.0, 1.0, 0.0]], Model::Dc).unwrap_err();
    assert!(e.to_string().contains("lines[0] reactance"), "{e}");
    assert!(Network::new(2, &[[0.0, 1.0, 1.0, 0.0]], Model::Transport).is_ok());
    let e = Network::new(2, &[[0.0, 1.0, f64::NAN, 1.0]], Model::Dc).unwrap_err();
    assert!(e.to_string().contains("lines[0] capacity"), "{e}");
    let e = Network::new(2, &[[0.0, 0.0, 1.0, 1.0]], Model::Dc).unwrap_err();
    assert!(e.to_string().contains("two different nodes"), "{e}");
    let e = Network::new(2, &[[0.5, 1.0, 1.0, 1.0]], Model::Dc).unwrap_err();
    assert!(e.to_string().contains("lines[0] from"), "{e}");
    let net = Network::new(2, &[[0.0, 1.0, 1.0, 1.0]], Model::Dc).unwrap();
    let e = run(
        &[1.0],
        &[1.0],
        &[2],
        &[0.0, 1.0],
        &net,
        None,
        &Rules::default(),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("nodes[0]"), "{e}");
    let e = run(
        &[1.0],
        &[1.0],
        &[0],
        &[0.0, -1.0],
        &net,
        None,
        &Rules::default(),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("demand[1]"), "{e}");
}

/// Degenerate, tied problems give the same bits on every run and thread.
#[test]
fn degenerate_cases_are_deterministic() {
    let rows = [
        [0.0, 1.0, 20.0, 1.0],
        [1.0, 2.0, 20.0, 1.0],
        [0.0, 2.0, 20.0, 1.0],
        [2.0, 3.0, 20.0, 1.0],
    ];
    for model in [Model::Transport, Model::Dc] {
        let net = Network::new(4, &rows, model).unwrap();
        let bids = [10.0, 10.0, 20.0, 20.0, 30.0, 30.0];
        let qs = [40.0, 40.0, 40.0, 40.0, 40.0, 40.0];
        let nodes = [0, 1, 1, 2, 3, 3];
        let demand = [0.0, 20.0, 20.0, 60.0];
        let first = run(&bids, &qs, &nodes, &demand, &net, None, &Rules::default()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let net = net.clone();
                std::thread::spawn(move || {
                    run(&bids, &qs, &nodes, &demand, &net, None, &Rules::default()).unwrap()
                })
            })
            .collect();
        for t in threads {
            let o = t.join().unwrap();
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&o.prices), bits(&first.prices));
            assert_eq!(bits(&o.cleared), bits(&first.cleared));
            assert_eq!(bits(&o.flows), bits(&first.flows));
        }
    }
}

fn meshed_rows(z: usize, caps: &[f64], extra: &[(usize, usize)]) -> Vec<[f64; 4]> {
    let mut rows: Vec<[f64; 4]> = (1..z)
        .map(|k| {
            [
                (k / 2) as f64,
                k as f64,
                caps[k % caps.len()],
                1.0 + (k % 3) as f64,
            ]
        })
        .collect();
    for (i, &(a, b)) in extra.iter().enumerate() {
        let (a, b) = (a % z, b % z);
        if a != b {
            rows.push([a as f64, b as f64, caps[i % caps.len()], 0.5 + i as f64]);
        }
    }
    rows
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The invariants of any network clearing: node balance, flows within
    /// limits, offers below their node's price clear fully and above it
    /// not at all, rent >= 0, and the copper plate never costs more.
    #[test]
    fn clearing_invariants(
        z in 2usize..7,
        offers in proptest::collection::vec((0.0f64..100.0, 0.0f64..80.0, 0usize..7), 1..14),
        demand in proptest::collection::vec(0.0f64..90.0, 7),
        caps in proptest::collection::vec(0.0f64..60.0, 1..4),
        extra in proptest::collection::vec((0usize..7, 0usize..7), 0..4),
        dc in any::<bool>(),
        index in any::<bool>(),
    ) {
        let model = if dc { Model::Dc } else { Model::Transport };
        let rows = meshed_rows(z, &caps, &extra);
        let net = Network::new(z, &rows, model).unwrap();
        let bids: Vec<f64> = offers.iter().map(|o| o.0).collect();
        let qs: Vec<f64> = offers.iter().map(|o| o.1).collect();
        let nodes: Vec<usize> = offers.iter().map(|o| o.2 % z).collect();
        let demand = &demand[..z];
        let rules = Rules {
            tie_rule: if index { TieRule::Index } else { TieRule::ProRata },
            price_cap: Some(200.0),
            ..Rules::default()
        };
        let o = run(&bids, &qs, &nodes, demand, &net, None, &rules).unwrap();
        let scale = 1e-7 * (1.0 + qs.iter().sum::<f64>() + demand.iter().sum::<f64>());
        // Flows within limits.
        for (f, r) in o.flows.iter().zip(&rows) {
            prop_assert!(f.abs() <= r[2] + scale, "flow {} cap {}", f, r[2]);
        }
        // Node balance.
        let mut inj: Vec<f64> = demand.iter().zip(&o.shed).map(|(d, s)| s - d).collect();
        for (&k, &x) in nodes.iter().zip(&o.cleared) {
            inj[k] += x;
        }
        for (f, r) in o.flows.iter().zip(&rows) {
            inj[r[0] as usize] -= f;
            inj[r[1] as usize] += f;
        }
        for v in &inj {
            prop_assert!(v.abs() <= scale, "imbalance {:?}", inj);
        }
        if dc {
            let mut inj2: Vec<f64> = demand.iter().zip(&o.shed).map(|(d, s)| s - d).collect();
            for (&k, &x) in nodes.iter().zip(&o.cleared) {
                inj2[k] += x;
            }
            let mut f2 = vec![0.0; rows.len()];
            net.flows_of(&inj2, &mut f2);
            for (a, b) in f2.iter().zip(&o.flows) {
                prop_assert!((a - b).abs() <= scale, "dc flows {:?} vs {:?}", f2, o.flows);
            }
        }
        // Price rule per node.
        let ptol = 1e-7 * 200.0;
        for i in 0..bids.len() {
            let p = o.prices[nodes[i]];
            if bids[i] < p - ptol {
                prop_assert!((o.cleared[i] - qs[i]).abs() <= scale, "offer {} below price", i);
            }
            if bids[i] > p + ptol {
                prop_assert!(o.cleared[i] <= scale, "offer {} above price", i);
            }
        }
        prop_assert!(o.summary.congestion_rent >= 0.0);
        for (s, d) in o.shed.iter().zip(demand) {
            prop_assert!(*s >= 0.0 && *s <= d + scale);
        }
    }
}
