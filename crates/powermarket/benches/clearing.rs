//! Criterion benches of the clearing core: one market for N = 5 ... 200 (the
//! same problem every call, and 64 problems in turn) and a batch.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use powermarket::clearing::{clear_batch, clear_into, Rules, TieRule, Workspace};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::hint::black_box;

/// Deterministic pseudo-random offers.
fn offers(n: usize, seed: u64) -> (Vec<f64>, Vec<f64>, f64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut next = || rng.random::<f64>();
    let bids: Vec<f64> = (0..n).map(|_| 100.0 * next()).collect();
    let qty: Vec<f64> = (0..n).map(|_| 10.0 * next()).collect();
    let d = 0.6 * qty.iter().sum::<f64>();
    (bids, qty, d)
}

fn bench_single(c: &mut Criterion) {
    let mut g = c.benchmark_group("clear");
    for rule in [TieRule::ProRata, TieRule::Index] {
        let rules = Rules {
            tie_rule: rule,
            shortage_price: None,
            ..Rules::default()
        };
        for n in [5usize, 10, 20, 50, 100, 200] {
            let (b, q, d) = offers(n, n as u64);
            let mut ws = Workspace::with_capacity(n);
            let mut out = vec![0.0; n];
            g.bench_with_input(BenchmarkId::new(rule.name(), n), &n, |bench, _| {
                bench.iter(|| {
                    clear_into(
                        black_box(&b),
                        black_box(&q),
                        black_box(d),
                        &rules,
                        &mut ws,
                        &mut out,
                    )
                    .unwrap()
                })
            });
        }
    }
    g.finish();
}

/// The same markets, but each iteration clears the next of 64 random
/// problems: the branch predictor cannot learn one input by heart.
fn bench_varied(c: &mut Criterion) {
    let mut g = c.benchmark_group("clear_varied");
    for rule in [TieRule::ProRata, TieRule::Index] {
        let rules = Rules {
            tie_rule: rule,
            shortage_price: None,
            ..Rules::default()
        };
        for n in [5usize, 10, 20, 50, 100, 200] {
            let sets: Vec<_> = (0..64).map(|k| offers(n, 1000 + k)).collect();
            let mut ws = Workspace::with_capacity(n);
            let mut out = vec![0.0; n];
            let mut k = 0;
            g.bench_with_input(BenchmarkId::new(rule.name(), n), &n, |bench, _| {
                bench.iter(|| {
                    let (b, q, d) = &sets[k % sets.len()];
                    k += 1;
                    clear_into(
                        black_box(b),
                        black_box(q),
                        black_box(*d),
                        &rules,
                        &mut ws,
                        &mut out,
                    )
                    .unwrap()
                })
            });
        }
    }
    g.finish();
}

fn bench_batch(c: &mut Criterion) {
    let mut g = c.benchmark_group("clear_batch");
    g.sample_size(20);
    for (m, n) in [(1024usize, 5usize), (1024, 50), (256, 200)] {
        let mut b = Vec::new();
        let mut q = Vec::new();
        let mut d = Vec::new();
        for k in 0..m {
            let (bk, qk, dk) = offers(n, k as u64 + 1);
            b.extend(bk);
            q.extend(qk);
            d.push(dk);
        }
        let mut p = vec![0.0; m];
        let mut x = vec![0.0; m * n];
        let rules = Rules::default();
        g.bench_with_input(BenchmarkId::new(format!("M{m}"), n), &n, |bench, _| {
            bench.iter(|| clear_batch(&b, &q, &d, n, &rules, &mut p, &mut x).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench_single, bench_varied, bench_batch);
criterion_main!(benches);
