//! Criterion benches of the environment core: one `MarketEnv::step` for N = 5, 50, 200
//! and one `VecMarketEnv::step` over M = 1024 markets of N = 5.
//!
//! Episodes are T = 24 hours: each bench iteration is one step, and the market is
//! reset after its last hour (the reset cost is amortised over the 24 steps, as in
//! training; the batch resets its finished markets itself).
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use powermarket::env::Market;
use powermarket::vec_env::VecOutputs;
use powermarket::{MarketEnv, Observer, Scenario, TieRule, VecMarketEnv};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::hint::black_box;
use std::sync::Arc;

/// `count` deterministic pseudo-random actions `[a0, a1]` inside the action box, flat.
fn actions(count: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut next = || rng.random::<f64>();
    (0..count)
        .flat_map(|_| {
            let a0 = 0.5 * next();
            let a1 = 6.0 * next() - 3.0;
            [a0 as f32, a1 as f32]
        })
        .collect()
}

fn bench_market_env(c: &mut Criterion) {
    let mut g = c.benchmark_group("MarketEnv::step");
    for n in [5usize, 50, 200] {
        let scenario = Scenario::default_preset(n, 24).unwrap();
        let mut env =
            MarketEnv::new(scenario, Observer::Simple, TieRule::ProRata, Some(1)).unwrap();
        let horizon = env.horizon();
        let acts = actions(horizon * n, n as u64);
        let mut obs = vec![0f32; n * env.obs_dim()];
        let mut rewards = vec![0f32; n];
        env.reset(None, &mut obs).unwrap();
        let mut h = 0usize;
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("N", n), &n, |b, _| {
            b.iter(|| {
                let a = &acts[h * 2 * n..(h + 1) * 2 * n];
                let info = env.step(black_box(a), &mut obs, &mut rewards).unwrap();
                h += 1;
                if info.terminated {
                    env.reset(None, &mut obs).unwrap();
                    h = 0;
                }
                black_box(info.price)
            })
        });
    }
    g.finish();
}

fn bench_vec_env(c: &mut Criterion) {
    let mut g = c.benchmark_group("VecMarketEnv::step");
    g.sample_size(30);
    let (m, n) = (1024usize, 5usize);
    for threads in [Some(1), None] {
        let scenario = Scenario::default_preset(n, 24).unwrap();
        let market = Arc::new(Market::new(scenario, Observer::Simple, TieRule::ProRata).unwrap());
        let mut env = VecMarketEnv::new(
            market,
            m,
            powermarket::vec_env::Seeds::Base(Some(1)),
            threads,
        )
        .unwrap();
        let acts = actions(m * n, 7);
        let mut out = VecOutputs::new(m, env.sizes(), true).unwrap();
        env.reset(
            powermarket::vec_env::Seeds::Base(None),
            None,
            Some(&mut out.obs),
        )
        .unwrap();
        let label = format!("M{m}/N{n}/threads{}", env.num_threads());
        g.throughput(Throughput::Elements(m as u64));
        g.bench_function(label, |b| {
            b.iter(|| {
                env.step(black_box(&acts), out.rows()).unwrap();
                black_box(out.rewards[0])
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_market_env, bench_vec_env);
criterion_main!(benches);
