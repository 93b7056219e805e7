//! Property tests of the clearing core against the invariants of docs/semantics.md and a
//! tiny classic (argsort / cumsum / searchsorted) reference written here.
//!
//! Quantities and demands are integers or multiples of 1/8 wherever a test
//! needs exact sums, so prices and shortage flags can be compared with `==`.

use powermarket::clearing::{
    clear, clear_batch, clear_into, validate, Clearing, Rules, TieRule, Workspace,
};
use proptest::prelude::*;

const PRICES: [f64; 8] = [-20.0, 0.0, 5.0, 5.5, 20.0, 20.25, 37.5, 100.0];
const RULES: [TieRule; 2] = [TieRule::ProRata, TieRule::Index];

/// One clearing problem: bids (€/MWh), quantities (MW), demand (MW).
#[derive(Clone, Debug)]
struct Problem {
    bids: Vec<f64>,
    quantities: Vec<f64>,
    demand: f64,
}

/// The classic rule: stable sort by price, cumulative sum, first index whose
/// cumulative quantity reaches the demand; shortage when there is none.
fn classic(bids: &[f64], quantities: &[f64], demand: f64, cap: Option<f64>) -> (f64, Vec<f64>) {
    let n = bids.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| bids[a].partial_cmp(&bids[b]).unwrap()); // stable
    let mut cum = Vec::with_capacity(n);
    let mut acc = 0.0;
    for &i in &order {
        acc += quantities[i];
        cum.push(acc);
    }
    let idx = cum.iter().position(|&c| c >= demand).unwrap_or(n);
    if idx == n {
        let top = bids.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        return (cap.unwrap_or(top), quantities.to_vec());
    }
    let mut cleared = vec![0.0; n];
    for &i in &order[..idx] {
        cleared[i] = quantities[i];
    }
    cleared[order[idx]] = demand - if idx > 0 { cum[idx - 1] } else { 0.0 };
    (bids[order[idx]], cleared)
}

fn sum(x: &[f64]) -> f64 {
    x.iter().sum()
}

/// Problems with many ties and boundary demands; `grid` 1 = integer
/// quantities, 8 = multiples of 1/8 (all sums exact either way).
fn exact_problem(max_n: usize, grid: u32) -> impl Strategy<Value = Problem> {
    (1..=max_n)
        .prop_flat_map(move |n| {
            (
                prop::collection::vec(prop::sample::select(PRICES.to_vec()), n),
                prop::collection::vec(0u32..=40 * grid, n),
                0u32..5,
                any::<prop::sample::Index>(),
                0.0f64..1.3,
            )
        })
        .prop_map(move |(bids, q, mode, pick, frac)| {
            let g = f64::from(grid);
            let quantities: Vec<f64> = q.iter().map(|&k| f64::from(k) / g).collect();
            let total = sum(&quantities);
            let demand = match mode {
                0 => 0.0,
                1 => total,
                2 => {
                    // a cumulative boundary of the merit order
                    let mut order: Vec<usize> = (0..bids.len()).collect();
                    order.sort_by(|&a, &b| bids[a].partial_cmp(&bids[b]).unwrap());
                    let k = pick.index(bids.len());
                    order[..=k].iter().map(|&i| quantities[i]).sum()
                }
                3 => total + 1.0,
                _ => (frac * total * g).floor() / g,
            };
            Problem {
                bids,
                quantities,
                demand,
            }
        })
}

/// General floats: any prices, quantities and demand (sums inexact).
fn float_problem(max_n: usize) -> impl Strategy<Value = Problem> {
    (1..=max_n)
        .prop_flat_map(|n| {
            (
                prop::collection::vec(
                    prop_oneof![prop::sample::select(PRICES.to_vec()), -500.0f64..500.0],
                    n,
                ),
                prop::collection::vec(prop_oneof![Just(0.0), 0.0f64..1e4], n),
                0.0f64..1.3,
            )
        })
        .prop_map(|(bids, quantities, frac)| {
            let demand = frac * sum(&quantities);
            Problem {
                bids,
                quantities,
                demand,
            }
        })
}

fn caps() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![Just(None), Just(Some(3000.0)), Just(Some(-5.0))]
}

/// The invariant list of docs/semantics.md; `tol` absorbs rounding in sums only.
fn check_invariants(p: &Problem, rules: &Rules, out: &Clearing, cleared: &[f64], exact: bool) {
    let (b, q, d) = (&p.bids, &p.quantities, p.demand);
    let total = sum(q);
    // Pro-rata shares round even when the sums are exact.
    let tol = 1e-12 * d.max(total).max(1.0);
    let tol = if exact { tol } else { 1000.0 * tol };
    let slack = if exact { 0.0 } else { tol }; // exact sums: p* is exactly marginal
    assert_eq!(cleared.len(), q.len());
    for i in 0..q.len() {
        assert!(cleared[i] >= 0.0, "cleared[{i}] = {} < 0", cleared[i]);
        assert!(
            cleared[i] <= q[i] + tol.max(4.0 * f64::EPSILON * total),
            "cleared[{i}] > q"
        );
    }
    let want = d.min(total);
    assert!(
        (sum(cleared) - want).abs() <= tol,
        "sum {} vs {want}",
        sum(cleared)
    );
    assert!(
        (out.total - want).abs() <= tol,
        "total {} vs {want}",
        out.total
    );
    if exact {
        assert_eq!(out.shortage, total < d);
    }
    if out.shortage {
        let top = b.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(out.price, rules.shortage_price.unwrap_or(top));
        assert_eq!(cleared, &q[..]);
        return;
    }
    assert!(b.contains(&out.price), "price {} is not a bid", out.price);
    if d == 0.0 {
        let low = b.iter().cloned().fold(f64::INFINITY, f64::min);
        assert_eq!(out.price, low);
        assert!(cleared.iter().all(|&c| c == 0.0));
        return;
    }
    let below: f64 = (0..b.len())
        .filter(|&i| b[i] < out.price)
        .map(|i| q[i])
        .sum();
    let at_or_below: f64 = (0..b.len())
        .filter(|&i| b[i] <= out.price)
        .map(|i| q[i])
        .sum();
    assert!(
        below < d + slack && at_or_below >= d - slack,
        "price is not the marginal one"
    );
    let at: Vec<usize> = (0..b.len()).filter(|&i| b[i] == out.price).collect();
    for i in 0..b.len() {
        if b[i] < out.price {
            assert_eq!(cleared[i], q[i], "below-price offer {i} not fully cleared");
        } else if b[i] > out.price {
            assert_eq!(cleared[i], 0.0, "above-price offer {i} cleared");
        }
    }
    let q_at: f64 = at.iter().map(|&i| q[i]).sum();
    let c_at: f64 = at.iter().map(|&i| cleared[i]).sum();
    match rules.tie_rule {
        TieRule::ProRata => {
            for &i in &at {
                let fair = q[i] * (c_at / q_at);
                assert!(
                    (cleared[i] - fair).abs() <= 1e-12 * fair.abs() + tol.max(1e-12),
                    "offer {i}: {} vs pro-rata {fair}",
                    cleared[i]
                );
            }
        }
        TieRule::Index => {
            let mut partial = false;
            for &i in &at {
                if partial {
                    assert_eq!(cleared[i], 0.0, "tied offer {i} after the marginal one");
                } else if cleared[i] != q[i] {
                    partial = true;
                }
            }
        }
    }
}

fn run(p: &Problem, rules: &Rules) -> (Clearing, Vec<f64>) {
    let mut ws = Workspace::new();
    clear(&p.bids, &p.quantities, p.demand, rules, &mut ws).expect("valid problem")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 768, ..ProptestConfig::default() })]

    #[test]
    fn index_rule_is_the_classic_rule(
        p in prop_oneof![exact_problem(12, 1), exact_problem(60, 8)], cap in caps()
    ) {
        let rules = Rules { tie_rule: TieRule::Index, shortage_price: cap, ..Rules::default() };
        let (out, cleared) = run(&p, &rules);
        let (price, want) = classic(&p.bids, &p.quantities, p.demand, cap);
        prop_assert_eq!(out.price, price);
        prop_assert_eq!(&cleared, &want);
        check_invariants(&p, &rules, &out, &cleared, true);
    }

    #[test]
    fn index_rule_matches_classic_on_floats(p in float_problem(40), cap in caps()) {
        let rules = Rules { tie_rule: TieRule::Index, shortage_price: cap, ..Rules::default() };
        let (out, cleared) = run(&p, &rules);
        let (price, want) = classic(&p.bids, &p.quantities, p.demand, cap);
        prop_assert_eq!(out.price, price);
        for (c, w) in cleared.iter().zip(&want) {
            prop_assert!((c - w).abs() <= 1e-12 * w.abs().max(1.0));
        }
        check_invariants(&p, &rules, &out, &cleared, false);
    }

    #[test]
    fn pro_rata_invariants_exact(
        p in prop_oneof![exact_problem(12, 1), exact_problem(12, 8), exact_problem(200, 1)],
        cap in caps(),
    ) {
        let rules = Rules { tie_rule: TieRule::ProRata, shortage_price: cap, ..Rules::default() };
        let (out, cleared) = run(&p, &rules);
        // Same p* as the classic rule: only the split of the tie differs.
        let (price, _) = classic(&p.bids, &p.quantities, p.demand, cap);
        prop_assert_eq!(out.price, price);
        check_invariants(&p, &rules, &out, &cleared, true);
    }

    #[test]
    fn pro_rata_invariants_floats(p in float_problem(40), cap in caps()) {
        let rules = Rules { tie_rule: TieRule::ProRata, shortage_price: cap, ..Rules::default() };
        let (out, cleared) = run(&p, &rules);
        check_invariants(&p, &rules, &out, &cleared, false);
    }

    #[test]
    fn pro_rata_is_permutation_invariant(
        p in exact_problem(30, 8), perm_seed in any::<u64>(), cap in caps()
    ) {
        let rules = Rules { tie_rule: TieRule::ProRata, shortage_price: cap, ..Rules::default() };
        let n = p.bids.len();
        let mut perm: Vec<usize> = (0..n).collect();
        let mut s = perm_seed | 1;
        for i in (1..n).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17; // xorshift
            perm.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let q = Problem {
            bids: perm.iter().map(|&i| p.bids[i]).collect(),
            quantities: perm.iter().map(|&i| p.quantities[i]).collect(),
            demand: p.demand,
        };
        let (a, ca) = run(&p, &rules);
        let (b, cb) = run(&q, &rules);
        prop_assert_eq!(a.price, b.price);
        prop_assert_eq!(a.shortage, b.shortage);
        for (k, &i) in perm.iter().enumerate() {
            prop_assert!((cb[k] - ca[i]).abs() <= 1e-12 * ca[i].max(1.0));
        }
    }

    #[test]
    fn equal_offers_at_the_price_get_equal_shares(
        n_tied in 2usize..8, qty in 1u32..30, frac in 0.01f64..0.99,
        others in prop::collection::vec((prop::sample::select(PRICES.to_vec()), 0u32..30), 0..8),
    ) {
        let p_star = 21.0;
        let mut bids = vec![p_star; n_tied];
        let mut quantities = vec![f64::from(qty); n_tied];
        for &(p, q) in &others { bids.push(p); quantities.push(f64::from(q)); }
        let below: f64 = others.iter().filter(|(p, _)| *p < p_star).map(|&(_, q)| f64::from(q)).sum();
        let demand = below + frac * n_tied as f64 * f64::from(qty);
        let p = Problem { bids, quantities, demand };
        let (out, cleared) = run(&p, &Rules::default());
        prop_assert_eq!(out.price, p_star);
        let first = cleared[0];
        for &c in &cleared[..n_tied] {
            prop_assert!((c - first).abs() <= 1e-12 * first);
        }
    }

    #[test]
    fn clear_into_and_reused_workspace_agree(
        ps in prop::collection::vec(prop_oneof![exact_problem(50, 8), float_problem(50)], 1..12),
        cap in caps(),
    ) {
        // One workspace across problems of different sizes, as the env uses it.
        let mut shared = Workspace::with_capacity(3);
        for rule in RULES {
            let rules = Rules { tie_rule: rule, shortage_price: cap, ..Rules::default() };
            for p in &ps {
                let (fresh, want) = run(p, &rules);
                let mut out = vec![f64::NAN; p.bids.len()];
                let got = clear_into(&p.bids, &p.quantities, p.demand, &rules, &mut shared, &mut out)
                    .expect("valid problem");
                prop_assert_eq!(got, fresh);
                prop_assert_eq!(&out, &want);
                prop_assert!(validate(&p.bids, &p.quantities, p.demand, &rules).is_ok());
            }
        }
    }

    #[test]
    fn batch_equals_row_by_row(
        n in 1usize..16, m in 1usize..40, seed in any::<u64>(), cap in caps(),
    ) {
        let (bids, quantities, demand) = batch(m, n, seed);
        for rule in RULES {
            let rules = Rules { tie_rule: rule, shortage_price: cap, ..Rules::default() };
            check_batch(&bids, &quantities, &demand, n, &rules);
        }
    }

    #[test]
    fn bad_values_are_errors_not_panics(
        p in exact_problem(20, 1),
        pick in any::<prop::sample::Index>(),
        bad in prop::sample::select(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0, -1e-300]),
        which in 0u8..3,
        rule in prop::sample::select(RULES.to_vec()),
    ) {
        let rules = Rules { tie_rule: rule, shortage_price: None, ..Rules::default() };
        let (mut b, mut q, mut d) = (p.bids.clone(), p.quantities.clone(), p.demand);
        let k = pick.index(b.len());
        let (arg, must_fail) = match which {
            0 => { b[k] = bad; ("bids", !bad.is_finite()) } // negative prices are fine
            1 => { q[k] = bad; ("quantities", true) }
            _ => { d = bad; ("demand", true) }
        };
        let mut ws = Workspace::new();
        let res = clear(&b, &q, d, &rules, &mut ws);
        prop_assert_eq!(res.is_err(), must_fail);
        prop_assert_eq!(validate(&b, &q, d, &rules).is_err(), must_fail);
        if must_fail {
            let msg = res.unwrap_err().to_string();
            prop_assert!(msg.starts_with(arg), "{}", msg);
            if which < 2 {
                let idx = format!("{arg}[{k}]");
                prop_assert!(msg.starts_with(&idx), "{}", msg);
            }
            let mut out = vec![0.0; b.len()];
            prop_assert!(clear_into(&b, &q, d, &rules, &mut ws, &mut out).is_err());
        }
    }
}

/// A deterministic batch with ties, zero quantities, zero demand and shortage.
fn batch(m: usize, n: usize, seed: u64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut s = seed | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut bids = Vec::with_capacity(m * n);
    let mut quantities = Vec::with_capacity(m * n);
    let mut demand = Vec::with_capacity(m);
    for _ in 0..m {
        let mut total = 0.0;
        for _ in 0..n {
            bids.push(PRICES[(next() % PRICES.len() as u64) as usize]);
            let q = (next() % 24) as f64 / 4.0;
            total += q;
            quantities.push(q);
        }
        demand.push(match next() % 4 {
            0 => 0.0,
            1 => total + 2.0,
            _ => (next() % (total as u64 * 4 + 1)) as f64 / 4.0,
        });
    }
    (bids, quantities, demand)
}

fn check_batch(bids: &[f64], quantities: &[f64], demand: &[f64], n: usize, rules: &Rules) {
    let m = demand.len();
    let mut prices = vec![f64::NAN; m];
    let mut cleared = vec![f64::NAN; m * n];
    clear_batch(
        bids,
        quantities,
        demand,
        n,
        rules,
        &mut prices,
        &mut cleared,
    )
    .expect("valid");
    let mut ws = Workspace::new();
    for i in 0..m {
        let row = i * n..(i + 1) * n;
        let (out, c) = clear(
            &bids[row.clone()],
            &quantities[row.clone()],
            demand[i],
            rules,
            &mut ws,
        )
        .expect("valid");
        assert_eq!(prices[i].to_bits(), out.price.to_bits(), "market {i}");
        assert_eq!(&cleared[row], &c[..], "market {i}");
    }
}

#[test]
fn large_batches_equal_row_by_row() {
    // Big enough for the parallel path.
    for (m, n) in [(5000, 8), (300, 257)] {
        let (bids, quantities, demand) = batch(m, n, 42 + n as u64);
        for rule in RULES {
            for cap in [None, Some(999.0)] {
                check_batch(
                    &bids,
                    &quantities,
                    &demand,
                    n,
                    &Rules {
                        tie_rule: rule,
                        shortage_price: cap,
                        ..Rules::default()
                    },
                );
            }
        }
    }
}

#[test]
fn large_problems_match_classic() {
    // Large N exercises the selection algorithm, with heavy ties.
    let mut ws = Workspace::new();
    for n in [1000usize, 4096, 10_000] {
        for seed in 0..20u64 {
            let (bids, quantities, demand) = batch(1, n, seed * 7919 + n as u64);
            let levels = 1 + (seed as usize * 37) % n.min(64);
            let bids: Vec<f64> = bids
                .iter()
                .enumerate()
                .map(|(i, b)| b + (i % levels) as f64)
                .collect();
            for d in [demand[0], 0.0, sum(&quantities) * 0.5, sum(&quantities)] {
                let (want_p, want_c) = classic(&bids, &quantities, d, None);
                let (out, c) = clear(
                    &bids,
                    &quantities,
                    d,
                    &Rules {
                        tie_rule: TieRule::Index,
                        shortage_price: None,
                        ..Rules::default()
                    },
                    &mut ws,
                )
                .unwrap();
                assert_eq!(out.price, want_p);
                assert_eq!(c, want_c);
                let rules = Rules::default();
                let (out, c) = clear(&bids, &quantities, d, &rules, &mut ws).unwrap();
                assert_eq!(out.price, want_p);
                let p = Problem {
                    bids: bids.clone(),
                    quantities: quantities.clone(),
                    demand: d,
                };
                check_invariants(&p, &rules, &out, &c, true);
            }
        }
    }
}

#[test]
fn structural_errors_are_errors_not_panics() {
    let mut ws = Workspace::new();
    let r = Rules::default();
    let msg = |e: powermarket::MarketError| e.to_string();
    assert!(msg(clear(&[], &[], 1.0, &r, &mut ws).unwrap_err()).contains("bids must not be empty"));
    assert!(
        msg(clear(&[1.0, 2.0], &[1.0], 1.0, &r, &mut ws).unwrap_err()).contains("length mismatch")
    );
    assert!(validate(&[1.0, 2.0], &[1.0, 1.0, 1.0], 1.0, &r).is_err());
    for cap in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let bad = Rules {
            tie_rule: TieRule::Index,
            shortage_price: Some(cap),
            ..Rules::default()
        };
        assert!(bad.validate().is_err());
        let e = clear(&[1.0], &[1.0], 2.0, &bad, &mut ws).unwrap_err();
        assert!(msg(e).contains("shortage_price"));
    }
    assert!(TieRule::parse("x").is_err());
    assert_eq!(TieRule::parse("index").unwrap(), TieRule::Index);
    assert_eq!(TieRule::parse("pro_rata").unwrap(), TieRule::ProRata);
    assert_eq!(TieRule::default(), TieRule::ProRata);
    // Output buffers of the wrong length are bad input too.
    let mut short = vec![0.0; 1];
    assert!(clear_into(&[1.0, 2.0], &[1.0, 1.0], 1.0, &r, &mut ws, &mut short).is_err());
    let (b, q, d) = ([1.0, 2.0, 3.0, 4.0], [1.0; 4], [1.0, 1.0]);
    let (mut p, mut c) = (vec![0.0; 2], vec![0.0; 4]);
    assert!(clear_batch(&b, &q, &d, 2, &r, &mut p, &mut c).is_ok());
    assert!(clear_batch(&b, &q, &d, 3, &r, &mut p, &mut c).is_err());
    assert!(clear_batch(&b, &q[..3], &d, 2, &r, &mut p, &mut c).is_err());
    assert!(clear_batch(&b, &q, &d, 2, &r, &mut p[..1], &mut c).is_err());
    assert!(clear_batch(&b, &q, &d, 2, &r, &mut p, &mut c[..3]).is_err());
    // A bad market is named, and the outputs stay untouched.
    let (mut p, mut c) = (vec![-7.0; 2], vec![-7.0; 4]);
    let qb = [1.0, 1.0, 1.0, f64::NAN];
    let e = clear_batch(&b, &qb, &d, 2, &r, &mut p, &mut c).unwrap_err();
    assert!(msg(e).starts_with("market 1: quantities[1]"));
    assert!(p.iter().chain(&c).all(|&x| x == -7.0));
}
