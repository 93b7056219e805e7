//! Unit tests of the clearing: both rules against the classic algorithm and
//! an exact reference written apart from the code, boundaries and extremes.

use super::*;

fn run(b: &[f64], q: &[f64], d: f64, rule: TieRule) -> (Clearing, Vec<f64>) {
    let rules = Rules {
        tie_rule: rule,
        shortage_price: None,
        ..Rules::default()
    };
    clear(b, q, d, &rules, &mut Workspace::new()).unwrap()
}

#[test]
fn demand_equal_to_supply_clears_everything() {
    // Rounding of the supply total differs between summation orders; the
    // last bucket must still be selected, not counted twice.
    let mut ws = Workspace::new();
    for n in [33usize, 40, 64, 100, 257] {
        for seed in 0..200u64 {
            let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(seed);
            let mut next = || rand::RngExt::random::<f64>(&mut rng);
            let b: Vec<f64> = (0..n).map(|_| 20.0 + 20.0 * next()).collect();
            let q: Vec<f64> = (0..n).map(|_| 0.1 + 3.7 * next()).collect();
            let d: f64 = q.iter().sum();
            let (c, x) = clear(&b, &q, d, &Rules::default(), &mut ws).unwrap();
            let total: f64 = x.iter().sum();
            assert!(
                (total - d).abs() <= 1e-9 * d,
                "n={n} seed={seed}: {total} vs {d}"
            );
            if !c.shortage {
                let top = b.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                assert_eq!(c.price, top, "n={n} seed={seed}");
            }
        }
    }
}

#[test]
fn simple_merit_order() {
    for rule in [TieRule::ProRata, TieRule::Index] {
        let (c, x) = run(&[30.0, 10.0, 20.0], &[10.0, 10.0, 10.0], 15.0, rule);
        assert_eq!(c.price, 20.0);
        assert_eq!(x, vec![0.0, 10.0, 5.0]);
        assert!(!c.shortage);
    }
}

#[test]
fn exact_boundary_takes_lower_price() {
    // Cumulative supply reaches demand exactly at 10: side="left".
    for rule in [TieRule::ProRata, TieRule::Index] {
        let (c, x) = run(&[10.0, 20.0], &[5.0, 5.0], 5.0, rule);
        assert_eq!(c.price, 10.0);
        assert_eq!(x, vec![5.0, 0.0]);
    }
}

#[test]
fn ties_pro_rata_and_index() {
    let b = [10.0, 20.0, 20.0, 20.0];
    let q = [4.0, 2.0, 4.0, 2.0];
    let (c, x) = run(&b, &q, 8.0, TieRule::ProRata);
    assert_eq!(c.price, 20.0);
    assert_eq!(x, vec![4.0, 1.0, 2.0, 1.0]);
    let (c, x) = run(&b, &q, 8.0, TieRule::Index);
    assert_eq!(c.price, 20.0);
    assert_eq!(x, vec![4.0, 2.0, 2.0, 0.0]);
}

#[test]
fn shortage_prices() {
    let (c, x) = run(&[10.0, 50.0], &[1.0, 2.0], 10.0, TieRule::ProRata);
    assert!(c.shortage);
    assert_eq!(c.price, 50.0);
    assert_eq!(x, vec![1.0, 2.0]);
    let rules = Rules {
        tie_rule: TieRule::Index,
        shortage_price: Some(3000.0),
        ..Rules::default()
    };
    let (c, _) = clear(
        &[10.0, 50.0],
        &[1.0, 2.0],
        10.0,
        &rules,
        &mut Workspace::new(),
    )
    .unwrap();
    assert_eq!(c.price, 3000.0);
    // No shortage: the cap plays no part.
    let (c, _) = clear(
        &[10.0, 50.0],
        &[1.0, 2.0],
        2.0,
        &rules,
        &mut Workspace::new(),
    )
    .unwrap();
    assert_eq!(c.price, 50.0);
}

#[test]
fn zero_demand_is_lowest_price_nothing_cleared() {
    for rule in [TieRule::ProRata, TieRule::Index] {
        let (c, x) = run(&[7.0, -3.0, 9.0], &[1.0, 0.0, 2.0], 0.0, rule);
        assert_eq!(c.price, -3.0);
        assert_eq!(x, vec![0.0; 3]);
    }
}

#[test]
fn zero_quantity_offer_sets_price_when_reached() {
    // Supply reaches demand at 10; the zero offer at 5 does not matter.
    for rule in [TieRule::ProRata, TieRule::Index] {
        let (c, _) = run(&[5.0, 10.0], &[0.0, 3.0], 3.0, rule);
        assert_eq!(c.price, 10.0);
    }
}

#[test]
fn large_inputs_agree_between_rules_without_ties() {
    let n = 500;
    let b: Vec<f64> = (0..n)
        .map(|i| ((i * 7919) % 1013) as f64 + 0.5 * (i % 2) as f64)
        .collect();
    let q: Vec<f64> = (0..n).map(|i| (i % 13) as f64).collect();
    let total: f64 = q.iter().sum();
    for frac in [0.0, 0.1, 0.5, 0.77, 1.0] {
        let d = total * frac;
        let (c1, x1) = run(&b, &q, d, TieRule::ProRata);
        let (c2, _) = run(&b, &q, d, TieRule::Index);
        assert_eq!(c1.price, c2.price, "demand {d}");
        let s: f64 = x1.iter().sum();
        assert!((s - d).abs() < 1e-9);
    }
}

#[test]
fn bad_inputs_are_errors() {
    let r = Rules::default();
    let mut ws = Workspace::new();
    let e = clear(&[1.0, f64::NAN], &[1.0, 1.0], 1.0, &r, &mut ws).unwrap_err();
    assert_eq!(e.to_string(), "bids[1] must be finite, got NaN");
    let e = clear(&[1.0, 2.0], &[1.0, -1.0], 1.0, &r, &mut ws).unwrap_err();
    assert_eq!(e.to_string(), "quantities[1] must be >= 0, got -1");
    let e = clear(&[1.0], &[f64::INFINITY], 1.0, &r, &mut ws).unwrap_err();
    assert!(e.to_string().contains("quantities[0] must be finite"));
    assert!(clear(&[1.0], &[1.0], -1.0, &r, &mut ws).is_err());
    assert!(clear(&[1.0], &[1.0], f64::NAN, &r, &mut ws).is_err());
    assert!(clear(&[1.0], &[1.0, 2.0], 1.0, &r, &mut ws).is_err());
    assert!(clear(&[], &[], 1.0, &r, &mut ws).is_err());
    let bad = Rules {
        shortage_price: Some(f64::NAN),
        ..Rules::default()
    };
    assert!(clear(&[1.0], &[1.0], 1.0, &bad, &mut ws).is_err());
    assert!(TieRule::parse("fifo").is_err());
}

/// The classic algorithm written plainly: stable sort by price,
/// sequential cumulative sum, first index whose sum reaches the demand.
/// `exact` decides "reaches" as the spec does (written here apart from
/// `units.rs`: multiples of 2^-k MW, k = 62 - (floor(log2 qmax) + 1) -
/// ceil(log2 n), demand rounded up, tolerance max(2^-40 relative, N
/// units)); otherwise `>=` on
/// the float cumulative sum.
fn classic_with(b: &[f64], q: &[f64], d: f64, exact: bool) -> (f64, Vec<f64>) {
    let n = b.len();
    let qmax = q.iter().copied().fold(0.0, f64::max);
    let k = if qmax > 0.0 {
        62 - (qmax.log2().floor() as i32 + 1) - (n as f64).log2().ceil() as i32
    } else {
        0
    };
    let scale = 2f64.powi(k);
    let d_units = if d > 0.0 {
        ((d * scale).ceil() as i128).max(1)
    } else {
        0
    };
    let target = if d_units > 0 {
        (d_units - (d_units / (1i128 << 40)).max(n as i128)).max(1)
    } else {
        0
    };
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| b[i].partial_cmp(&b[j]).unwrap());
    let (mut cum, mut cum_units) = (0.0, 0i128);
    let mut x = vec![0.0; n];
    for &i in &order {
        let before = cum;
        cum += q[i];
        cum_units += (q[i] * scale).trunc() as i128;
        let reached = if exact { cum_units >= target } else { cum >= d };
        if reached {
            x[i] = (d - before).max(0.0).min(q[i]);
            return (b[i] + 0.0, x);
        }
        x[i] = q[i];
    }
    (b[*order.last().unwrap()] + 0.0, q.to_vec())
}

fn classic(b: &[f64], q: &[f64], d: f64) -> (f64, Vec<f64>) {
    classic_with(b, q, d, true)
}

struct Rng(u64);
impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Random problems of many shapes: distinct, tied, clustered, sorted,
/// signed-zero and zero-quantity prices, demand from 0 past the supply.
fn problems() -> Vec<(Vec<f64>, Vec<f64>, f64)> {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut out = Vec::new();
    for case in 0..1200 {
        let n = [1, 2, 3, 5, 16, 17, 33, 50, 200, 1000][case % 10];
        let kind = (case / 10) % 6;
        let mut b: Vec<f64> = (0..n)
            .map(|_| match kind {
                0 => 100.0 * rng.unit(),
                1 => (rng.unit() * 8.0).floor() * 5.0,
                2 => {
                    if rng.unit() < 0.95 {
                        rng.unit() * 1e-9
                    } else {
                        1e6 * rng.unit()
                    }
                }
                3 => [0.0, -0.0, 1.0, -1.0][(rng.unit() * 4.0) as usize],
                _ => 200.0 * rng.unit() - 100.0,
            })
            .collect();
        if kind == 4 {
            b.sort_by(|x, y| x.partial_cmp(y).unwrap());
        }
        let q: Vec<f64> = (0..n)
            .map(|_| {
                let u = rng.unit();
                if u < 0.1 {
                    0.0
                } else {
                    10.0 * rng.unit()
                }
            })
            .collect();
        let total: f64 = q.iter().sum();
        let frac = [0.0, 0.1, 0.5, 0.6, 0.999, 1.0, 1.2][case % 7];
        out.push((b, q, total * frac));
    }
    out
}

#[test]
fn index_rule_matches_the_classic_algorithm_bit_for_bit() {
    let mut ws = Workspace::new();
    let rules = Rules {
        tie_rule: TieRule::Index,
        shortage_price: None,
        ..Rules::default()
    };
    let mut outside_band = 0;
    for (b, q, d) in problems() {
        let (p_ref, x_ref) = classic(&b, &q, d);
        let (c, x) = clear(&b, &q, d, &rules, &mut ws).unwrap();
        assert_eq!(c.price.to_bits(), p_ref.to_bits(), "n {} d {d}", b.len());
        // Away from the tolerance band the plain float rule agrees too.
        let mut order: Vec<usize> = (0..b.len()).collect();
        order.sort_by(|&i, &j| b[i].partial_cmp(&b[j]).unwrap());
        let mut cum = 0.0;
        let near = order.iter().any(|&i| {
            cum += q[i];
            (cum - d).abs() <= 1e-9 * d
        });
        if !near {
            outside_band += 1;
            let (p_float, _) = classic_with(&b, &q, d, false);
            assert_eq!(c.price.to_bits(), p_float.to_bits(), "n {} d {d}", b.len());
        }
        for (got, want) in x.iter().zip(&x_ref) {
            assert!(
                (got - want).abs() <= 1e-12 * want.abs().max(1.0),
                "{got} {want}"
            );
        }
    }
    assert!(outside_band > 600, "{outside_band}");
}

#[test]
fn pro_rata_prices_match_and_ties_share_in_proportion() {
    let mut ws = Workspace::new();
    let rules = Rules::default();
    for (b, q, d) in problems() {
        // Whole quantities make every sum exact, so rounding cannot move
        // the marginal offer and both rules must agree on the price.
        let q: Vec<f64> = q.iter().map(|x| x.round()).collect();
        let total: f64 = q.iter().sum();
        let d = d.round();
        let (p_ref, _) = classic(&b, &q, d);
        let (c, x) = clear(&b, &q, d, &rules, &mut ws).unwrap();
        assert_eq!(c.price, p_ref, "n {} d {d}", b.len());
        let cleared: f64 = x.iter().sum();
        assert!((cleared - d.min(total)).abs() <= 1e-9 * total.max(1.0));
        let at: f64 = (0..b.len())
            .filter(|&i| b[i] == c.price)
            .map(|i| q[i])
            .sum();
        let below: f64 = (0..b.len()).filter(|&i| b[i] < c.price).map(|i| q[i]).sum();
        for i in 0..b.len() {
            let want = if c.shortage || b[i] < c.price {
                q[i]
            } else if b[i] > c.price || at == 0.0 {
                0.0
            } else {
                q[i] * ((d - below).max(0.0) / at)
            };
            assert!(
                (x[i] - want).abs() <= 1e-9 * q[i].max(1.0),
                "{} {want}",
                x[i]
            );
        }
    }
}

#[test]
fn tie_rules_agree_on_every_cumulative_step_and_at_total_supply() {
    let mut ws = Workspace::new();
    let mut checked = 0;
    for (b, q, _) in problems() {
        // Demands exactly on each float cumulative step (merit order, as
        // the classic code sums) and at the total in two other orders.
        let mut order: Vec<usize> = (0..b.len()).collect();
        order.sort_by(|&i, &j| b[i].partial_cmp(&b[j]).unwrap());
        let mut demands = Vec::new();
        let mut cum = 0.0;
        let stride = (b.len() / 40).max(1);
        for (j, &i) in order.iter().enumerate() {
            cum += q[i];
            if j % stride == 0 || j + 1 == b.len() {
                demands.push(cum);
            }
        }
        demands.push(q.iter().sum());
        demands.push(q.iter().rev().sum());
        for d in demands {
            for cap in [None, Some(3000.0)] {
                let rules = |tie_rule| Rules {
                    tie_rule,
                    shortage_price: cap,
                    ..Rules::default()
                };
                let (a, xa) = clear(&b, &q, d, &rules(TieRule::ProRata), &mut ws).unwrap();
                let (c, xc) = clear(&b, &q, d, &rules(TieRule::Index), &mut ws).unwrap();
                assert_eq!(a.price.to_bits(), c.price.to_bits(), "n {} d {d}", b.len());
                assert_eq!(a.shortage, c.shortage);
                let (sa, sc): (f64, f64) = (xa.iter().sum(), xc.iter().sum());
                assert!((sa - sc).abs() <= 1e-9 * d.max(1.0), "{sa} {sc}");
                checked += 1;
            }
        }
    }
    assert!(checked > 50_000, "{checked}");
}

#[test]
fn both_rules_match_the_exact_reference_on_and_off_the_boundaries() {
    // Float filter or exact path, the price is the exact rule's.
    let mut ws = Workspace::new();
    let mut n_checked = 0;
    for (b, q, d) in problems() {
        let mut order: Vec<usize> = (0..b.len()).collect();
        order.sort_by(|&i, &j| b[i].partial_cmp(&b[j]).unwrap());
        let mut cum = 0.0;
        let mut demands = vec![d, d * (1.0 + 1e-13), d * (1.0 - 1e-13)];
        for &i in order.iter().take(8) {
            cum += q[i];
            demands.extend([cum, cum * (1.0 + 2e-12), cum * (1.0 - 2e-12)]);
        }
        for d in demands {
            let (p_ref, _) = classic(&b, &q, d);
            for rule in [TieRule::ProRata, TieRule::Index] {
                let rules = Rules {
                    tie_rule: rule,
                    shortage_price: None,
                    ..Rules::default()
                };
                let (c, _) = clear(&b, &q, d, &rules, &mut ws).unwrap();
                assert_eq!(
                    c.price.to_bits(),
                    p_ref.to_bits(),
                    "{rule:?} n {} d {d}",
                    b.len()
                );
                n_checked += 1;
            }
        }
    }
    assert!(n_checked > 40_000, "{n_checked}");
}

#[test]
fn demand_at_total_supply_is_met_not_a_shortage() {
    // Capacities that sum to the demand only up to float rounding.
    let q = [0.1, 0.2, 0.3, 0.4, 1.0 / 3.0, 2.0 / 3.0];
    let b = [20.0, 24.0, 28.0, 32.0, 36.0, 40.0];
    for d in [q.iter().sum::<f64>(), q.iter().rev().sum::<f64>(), 2.0] {
        for rule in [TieRule::ProRata, TieRule::Index] {
            let rules = Rules {
                tie_rule: rule,
                shortage_price: Some(3000.0),
                ..Rules::default()
            };
            let (c, x) = clear(&b, &q, d, &rules, &mut Workspace::new()).unwrap();
            assert!(!c.shortage, "{rule:?} d {d}");
            assert_eq!(c.price, 40.0);
            for (xi, qi) in x.iter().zip(&q) {
                assert!((xi - qi).abs() <= 1e-15, "{xi} {qi}");
            }
        }
    }
    // Short by more than the tolerance: a shortage at the cap.
    let d = 2.0 * (1.0 + 1e-9);
    let rules = Rules {
        tie_rule: TieRule::Index,
        shortage_price: Some(3000.0),
        ..Rules::default()
    };
    let (c, _) = clear(&b, &q, d, &rules, &mut Workspace::new()).unwrap();
    assert!(c.shortage);
    assert_eq!(c.price, 3000.0);
}

#[test]
fn a_huge_backstop_offer_does_not_hide_the_cheap_capacity() {
    // Demand equal to the float sum of the cheap capacities is met by
    // them, however large the expensive offer (found in review).
    let caps = [300.1, 250.3, 180.7, 120.9];
    let d: f64 = caps.iter().sum();
    for backstop in [1e6, 1e9, 1e15] {
        let mut q = caps.to_vec();
        q.push(backstop);
        let b = [10.0, 20.0, 30.0, 40.0, 3000.0];
        for rule in [TieRule::ProRata, TieRule::Index] {
            let rules = Rules {
                tie_rule: rule,
                shortage_price: None,
                ..Rules::default()
            };
            let (c, x) = clear(&b, &q, d, &rules, &mut Workspace::new()).unwrap();
            assert_eq!(c.price, 40.0, "{rule:?} backstop {backstop}");
            assert_eq!(x[4], 0.0);
        }
    }
    let b = [10.0, 10.0, 10.0, 10.0, 10.0, 1000.0];
    let q = [0.2, 0.2, 0.2, 0.2, 0.2, 1e6];
    let d = 0.2 + 0.2 + 0.2 + 0.2 + 0.2;
    let (c, _) = clear(&b, &q, d, &Rules::default(), &mut Workspace::new()).unwrap();
    assert_eq!(c.price, 10.0);
}

#[test]
fn extreme_magnitudes() {
    let mut ws = Workspace::new();
    for rule in [TieRule::ProRata, TieRule::Index] {
        let r = Rules {
            tie_rule: rule,
            shortage_price: None,
            ..Rules::default()
        };
        // Totals beyond the float range are refused, naming the argument.
        let e = clear(&[10.0, 10.0], &[1e308, 1e308], 5.0, &r, &mut ws).unwrap_err();
        assert!(e.to_string().starts_with("quantities:"), "{e}");
        // A tiny demand against a huge offer is served, not rounded away.
        let (c, x) = clear(&[5.0], &[1e30], 1e-300, &r, &mut ws).unwrap();
        assert_eq!((c.price, x[0], c.shortage), (5.0, 1e-300, false));
        // Huge but finite totals clear normally.
        let (c, x) = clear(&[10.0, 10.0], &[1e300, 1e300], 5.0, &r, &mut ws).unwrap();
        assert_eq!(c.price, 10.0);
        assert!((x[0] + x[1] - 5.0).abs() < 1e-12, "{x:?}");
        // Tiny quantities: the scale follows them.
        let (c, x) = clear(&[1.0, 2.0], &[3e-310, 3e-310], 4e-310, &r, &mut ws).unwrap();
        assert_eq!(c.price, 2.0);
        assert_eq!(x[0], 3e-310);
        assert!(!c.shortage);
    }
    // pro_rata shares a tiny residual among many equal offers.
    let b = vec![7.0; 40];
    let q = vec![1e30; 40];
    let (c, x) = clear(&b, &q, 4e-300, &Rules::default(), &mut ws).unwrap();
    assert_eq!(c.price, 7.0);
    assert!(x.iter().all(|&v| (v - 1e-301).abs() <= 1e-315), "{}", x[0]);
}

#[test]
fn batch_matches_single_and_reports_market() {
    let n = 3;
    let b = [30.0, 10.0, 20.0, 1.0, 2.0, 3.0];
    let q = [10.0, 10.0, 10.0, 1.0, 1.0, 1.0];
    let d = [15.0, 2.5];
    let mut p = [0.0; 2];
    let mut x = [0.0; 6];
    clear_batch(&b, &q, &d, n, &Rules::default(), &mut p, &mut x).unwrap();
    assert_eq!(p, [20.0, 3.0]);
    assert_eq!(x, [0.0, 10.0, 5.0, 1.0, 1.0, 0.5]);
    let d = [15.0, -1.0];
    let e = clear_batch(&b, &q, &d, n, &Rules::default(), &mut p, &mut x).unwrap_err();
    assert!(e.to_string().starts_with("market 1: demand"), "{e}");
}
