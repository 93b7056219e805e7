//! Property tests of price-responsive demand, price limits and settlement
//! against a brute-force reference written here from the rules of
//! docs/semantics.md (candidate prices, S(p), Dmin(p), Dmax(p)).
//!
//! Quantities are integers, so every sum is exact and the tolerance of
//! "demand is met" (a few units of 2^-k MW) cannot change a decision.

use powermarket::clearing::{
    average_paid, clear_elastic_unchecked, clear_into, group_bids, spread_served, DemandCurve,
    Mechanism, Rules, TieRule, Workspace,
};
use proptest::prelude::*;

const PRICES: [f64; 7] = [-20.0, 0.0, 5.0, 10.0, 20.0, 37.5, 100.0];

#[derive(Clone, Debug)]
struct Book {
    offer_p: Vec<f64>,
    offer_q: Vec<f64>,
    d0: f64,
    bid_p: Vec<f64>,
    bid_q: Vec<f64>,
}

struct Expected {
    price: f64,
    volume: f64,
    shortage: bool,
    cleared: Vec<f64>,
    served: Vec<f64>,
}

fn sum_where(p: &[f64], q: &[f64], keep: impl Fn(f64) -> bool) -> f64 {
    p.iter()
        .zip(q)
        .filter(|(&x, _)| keep(x))
        .map(|(_, &y)| y)
        .sum()
}

/// The rules as written: the lowest candidate p with S(p) >= Dmin(p);
/// Q = min(S(p), Dmax(p)); ties at p shared pro rata on both sides.
fn reference(b: &Book, rules: &Rules) -> Expected {
    let op: Vec<f64> = b.offer_p.iter().map(|&p| rules.clip(p)).collect();
    let bp: Vec<f64> = b.bid_p.iter().map(|&p| rules.clip(p)).collect();
    let total: f64 = b.offer_q.iter().sum();
    if total < b.d0 {
        let hi = op.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        return Expected {
            price: rules.shortage_price_or(hi),
            volume: total,
            shortage: true,
            cleared: b.offer_q.clone(),
            served: vec![0.0; bp.len()],
        };
    }
    let mut cands: Vec<f64> = op.iter().chain(&bp).cloned().collect();
    cands.sort_by(|a, c| a.partial_cmp(c).unwrap());
    cands.dedup();
    for &p in &cands {
        let s = sum_where(&op, &b.offer_q, |x| x <= p);
        let dmin = b.d0 + sum_where(&bp, &b.bid_q, |v| v > p);
        if s < dmin || (dmin > 0.0 && s == 0.0) {
            continue;
        }
        let dmax = b.d0 + sum_where(&bp, &b.bid_q, |v| v >= p);
        let below = sum_where(&op, &b.offer_q, |x| x < p);
        let at = s - below;
        let q = s.min(dmax);
        let cleared = op
            .iter()
            .zip(&b.offer_q)
            .map(|(&x, &y)| {
                if x < p {
                    y
                } else if x == p && at > 0.0 {
                    (q - below) * y / at
                } else {
                    0.0
                }
            })
            .collect();
        let bids_at = dmax - dmin;
        let served = bp
            .iter()
            .zip(&b.bid_q)
            .map(|(&v, &d)| {
                if v > p {
                    d
                } else if v == p && bids_at > 0.0 {
                    (q - dmin) * d / bids_at
                } else {
                    0.0
                }
            })
            .collect();
        return Expected {
            price: p + 0.0,
            volume: q,
            shortage: false,
            cleared,
            served,
        };
    }
    unreachable!("the highest candidate meets D0 when total >= D0")
}

struct Got {
    price: f64,
    volume: f64,
    shortage: bool,
    cleared: Vec<f64>,
    served: Vec<f64>,
}

fn run(b: &Book, rules: &Rules) -> Got {
    let mut op = b.offer_p.clone();
    rules.clip_all(&mut op);
    let mut bp = b.bid_p.clone();
    rules.clip_all(&mut bp);
    let (mut groups, mut group_of) = (Vec::new(), Vec::new());
    group_bids(&bp, &b.bid_q, &mut groups, &mut group_of).unwrap();
    let mut ws = Workspace::new();
    let mut cleared = vec![f64::NAN; op.len()];
    let mut served_g = vec![f64::NAN; groups.len()];
    let curve = DemandCurve {
        inelastic: b.d0,
        groups: &groups,
    };
    let c = clear_elastic_unchecked(
        &op,
        &b.offer_q,
        &curve,
        rules,
        &mut ws,
        &mut cleared,
        &mut served_g,
    );
    let mut served = vec![f64::NAN; bp.len()];
    spread_served(&b.bid_q, &group_of, &groups, &served_g, &mut served);
    Got {
        price: c.price,
        volume: c.total,
        shortage: c.shortage,
        cleared,
        served,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
}

fn book(max_n: usize, max_b: usize) -> impl Strategy<Value = Book> {
    (1..=max_n, 0..=max_b)
        .prop_flat_map(|(n, nb)| {
            (
                prop::collection::vec(prop::sample::select(PRICES.to_vec()), n),
                prop::collection::vec(0u32..=30, n),
                0u32..=80,
                prop::collection::vec(prop::sample::select(PRICES.to_vec()), nb),
                prop::collection::vec(0u32..=20, nb),
            )
        })
        .prop_map(|(op, oq, d0, bp, bq)| Book {
            offer_p: op,
            offer_q: oq.into_iter().map(f64::from).collect(),
            d0: f64::from(d0),
            bid_p: bp,
            bid_q: bq.into_iter().map(f64::from).collect(),
        })
}

fn limits() -> impl Strategy<Value = (Option<f64>, Option<f64>)> {
    (
        prop::option::of(prop::sample::select(vec![0.0, 5.0, 20.0])),
        prop::option::of(prop::sample::select(vec![20.0, 37.5, 60.0])),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn elastic_clearing_matches_the_reference(
        b in book(12, 6),
        (floor, cap) in limits(),
        shortage_price in prop::option::of(Just(500.0)),
    ) {
        let rules = Rules { price_cap: cap, price_floor: floor, shortage_price, ..Rules::default() };
        let want = reference(&b, &rules);
        let got = run(&b, &rules);
        prop_assert_eq!(got.price, want.price);
        prop_assert_eq!(got.shortage, want.shortage);
        prop_assert!(close(got.volume, want.volume), "{} vs {}", got.volume, want.volume);
        for (g, w) in got.cleared.iter().zip(&want.cleared) {
            prop_assert!(close(*g, *w), "cleared {:?} vs {:?}", got.cleared, want.cleared);
        }
        for (g, w) in got.served.iter().zip(&want.served) {
            prop_assert!(close(*g, *w), "served {:?} vs {:?}", got.served, want.served);
        }
    }

    #[test]
    fn volume_balances_and_prices_are_respected(b in book(12, 6), index in any::<bool>()) {
        let tie_rule = if index { TieRule::Index } else { TieRule::ProRata };
        let rules = Rules { tie_rule, ..Rules::default() };
        let got = run(&b, &rules);
        let cleared: f64 = got.cleared.iter().sum();
        let served: f64 = got.served.iter().sum();
        prop_assert!(close(cleared, got.volume));
        if got.shortage {
            prop_assert!(served == 0.0);
            prop_assert!(close(cleared, b.offer_q.iter().sum()));
        } else {
            prop_assert!(close(cleared, b.d0 + served), "{cleared} vs {} + {served}", b.d0);
            for ((&p, &q), &x) in b.offer_p.iter().zip(&b.offer_q).zip(&got.cleared) {
                prop_assert!(p <= got.price || x == 0.0, "offer at {p} clears above {}", got.price);
                prop_assert!(x >= 0.0 && x <= q * (1.0 + 1e-12));
            }
            for ((&v, &d), &s) in b.bid_p.iter().zip(&b.bid_q).zip(&got.served) {
                prop_assert!(v >= got.price || s == 0.0, "bid at {v} served below {}", got.price);
                prop_assert!(s >= 0.0 && s <= d);
            }
        }
        // The price does not depend on the tie rule.
        let other = Rules { tie_rule: if index { TieRule::ProRata } else { TieRule::Index }, ..rules };
        prop_assert_eq!(run(&b, &other).price, got.price);
    }

    #[test]
    fn without_bids_elastic_equals_inelastic_bit_for_bit(
        b in book(40, 0),
        index in any::<bool>(),
        cap in prop::option::of(Just(37.5)),
    ) {
        let tie_rule = if index { TieRule::Index } else { TieRule::ProRata };
        let rules = Rules { tie_rule, price_cap: cap, ..Rules::default() };
        let got = run(&b, &rules);
        let mut op = b.offer_p.clone();
        rules.clip_all(&mut op);
        let mut cleared = vec![0.0; op.len()];
        let c = clear_into(&op, &b.offer_q, b.d0, &rules, &mut Workspace::new(), &mut cleared)
            .unwrap();
        prop_assert_eq!(got.price.to_bits(), c.price.to_bits());
        prop_assert_eq!(got.volume.to_bits(), c.total.to_bits());
        for (g, w) in got.cleared.iter().zip(&cleared) {
            prop_assert_eq!(g.to_bits(), w.to_bits());
        }
    }

    #[test]
    fn pay_as_bid_pays_own_prices_and_uniform_the_price(b in book(12, 3)) {
        let rules = Rules::default();
        let got = run(&b, &rules);
        let mut paid = vec![0.0; b.offer_p.len()];
        Mechanism::Uniform.settle(got.price, &b.offer_p, &mut paid);
        prop_assert!(paid.iter().all(|&p| p == got.price));
        Mechanism::PayAsBid.settle(got.price, &b.offer_p, &mut paid);
        prop_assert_eq!(&paid, &b.offer_p);
        // Cleared offers are priced at most the clearing price (outside a
        // shortage), so pay-as-bid never pays more on average.
        if !got.shortage {
            let avg = average_paid(&paid, &got.cleared, got.price);
            prop_assert!(avg <= got.price + 1e-9);
        }
    }
}

#[test]
fn a_bid_sets_the_price_when_it_is_marginal() {
    // Offers 10 MW at 5 and 100 MW at 50; 20 MW inelastic, 15 MW bid at 30.
    let b = Book {
        offer_p: vec![5.0, 50.0],
        offer_q: vec![10.0, 100.0],
        d0: 20.0,
        bid_p: vec![30.0],
        bid_q: vec![15.0],
    };
    let got = run(&b, &Rules::default());
    // At 30: S = 10 < Dmin = 20; at 50: S = 110 >= Dmin = 20, Q = min(110, 20).
    assert_eq!(got.price, 50.0);
    assert_eq!(got.cleared, vec![10.0, 10.0]);
    assert_eq!(got.served, vec![0.0]);
    // A bid at 60 is above 50: served fully, Q = 35.
    let b = Book {
        bid_p: vec![60.0],
        ..b
    };
    let got = run(&b, &Rules::default());
    assert_eq!((got.price, got.volume), (50.0, 35.0));
    assert_eq!(got.served, vec![15.0]);
    // Zero inelastic demand, bid below every offer: the bid's price, nothing traded.
    let b = Book {
        offer_p: vec![50.0],
        offer_q: vec![10.0],
        d0: 0.0,
        bid_p: vec![30.0],
        bid_q: vec![5.0],
    };
    let got = run(&b, &Rules::default());
    assert_eq!((got.price, got.volume), (30.0, 0.0));
    assert_eq!(got.cleared, vec![0.0]);
}

#[test]
fn cap_is_the_shortage_price_and_clips_offers() {
    let b = Book {
        offer_p: vec![5.0, 5000.0],
        offer_q: vec![10.0, 10.0],
        d0: 30.0,
        bid_p: vec![],
        bid_q: vec![],
    };
    let rules = Rules {
        price_cap: Some(4000.0),
        shortage_price: Some(9000.0),
        ..Rules::default()
    };
    let got = run(&b, &rules);
    assert!(got.shortage);
    assert_eq!(got.price, 4000.0);
    let b = Book { d0: 15.0, ..b };
    let got = run(&b, &rules);
    assert!(!got.shortage);
    assert_eq!(got.price, 4000.0, "the 5000 offer is clipped to the cap");
    let rules = Rules {
        price_floor: Some(10.0),
        ..Rules::default()
    };
    assert_eq!(run(&Book { d0: 5.0, ..b }, &rules).price, 10.0);
}
