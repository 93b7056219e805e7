//! Criterion benches of the network clearing: one hour on an RTS-24-sized
//! grid (24 nodes, 38 lines, 33 offers) at three demand levels (the copper
//! plate fits; some lines bind; many bind), under both models.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use powermarket::clearing::Rules;
use powermarket::network::{clear_network, Model, NetWorkspace, Network, NetworkOut};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::hint::black_box;

struct Case {
    rows: Vec<[f64; 4]>,
    nodes: Vec<usize>,
    bids: Vec<f64>,
    quantities: Vec<f64>,
    shares: Vec<f64>,
}

/// A random spanning tree of 24 nodes plus 15 meshing lines.
fn rts24_like(seed: u64) -> Case {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut next = || rng.random::<f64>();
    let z = 24;
    let mut pairs: Vec<(usize, usize)> = (1..z)
        .map(|k| (((next() * k as f64) as usize).min(k - 1), k))
        .collect();
    while pairs.len() < 38 {
        let (a, b) = (
            (next() * z as f64) as usize % z,
            (next() * z as f64) as usize % z,
        );
        if a != b
            && !pairs
                .iter()
                .any(|&(x, y)| (x, y) == (a, b) || (x, y) == (b, a))
        {
            pairs.push((a, b));
        }
    }
    let rows = pairs
        .iter()
        .map(|&(a, b)| {
            [
                a as f64,
                b as f64,
                80.0 + 320.0 * next(),
                0.02 + 0.18 * next(),
            ]
        })
        .collect();
    let nodes = (0..33).map(|_| (next() * z as f64) as usize % z).collect();
    let bids = (0..33).map(|_| 5.0 + 115.0 * next()).collect();
    let quantities = (0..33).map(|_| 50.0 + 350.0 * next()).collect();
    let w: Vec<f64> = (0..z).map(|_| next()).collect();
    let total: f64 = w.iter().sum();
    let shares = w.iter().map(|x| x / total).collect();
    Case {
        rows,
        nodes,
        bids,
        quantities,
        shares,
    }
}

fn bench_network(c: &mut Criterion) {
    let case = rts24_like(24);
    let supply: f64 = case.quantities.iter().sum();
    let rules = Rules {
        price_cap: Some(300.0),
        ..Rules::default()
    };
    let mut g = c.benchmark_group("clear_network");
    for model in [Model::Transport, Model::Dc] {
        let net = Network::new(24, &case.rows, model).unwrap();
        for level in [0.2, 0.5, 0.75] {
            let demand: Vec<f64> = case.shares.iter().map(|s| level * supply * s).collect();
            let mut ws = NetWorkspace::default();
            let (mut p, mut x, mut f, mut sh) =
                (vec![0.0; 24], vec![0.0; 33], vec![0.0; 38], vec![0.0; 24]);
            let id = BenchmarkId::new(model.name(), format!("demand {:.0}%", level * 100.0));
            g.bench_with_input(id, &level, |bench, _| {
                bench.iter(|| {
                    clear_network(
                        black_box(&case.bids),
                        black_box(&case.quantities),
                        &case.nodes,
                        black_box(&demand),
                        &net,
                        None,
                        &rules,
                        &mut ws,
                        NetworkOut {
                            prices: &mut p,
                            cleared: &mut x,
                            flows: &mut f,
                            served: &mut [],
                            shed: &mut sh,
                        },
                    )
                    .unwrap()
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench_network);
criterion_main!(benches);
