"""Market design in the clearing functions: demand bids, price cap and floor,
settlement mechanisms (docs/semantics.md section 2), against the independent
NumPy reference in tests/reference.py."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import clip_prices, market_clear, settle

import powermarket as pm

PRICES = [-20.0, -0.0, 0.0, 5.0, 10.0, 20.0, 37.5, 100.0]


@st.composite
def books(draw, integer=True, max_n=10, max_b=6):
    n = draw(st.integers(1, max_n))
    nb = draw(st.integers(0, max_b))
    if integer:
        q = draw(st.lists(st.integers(0, 30), min_size=n, max_size=n))
        bq = draw(st.lists(st.integers(0, 20), min_size=nb, max_size=nb))
        d0 = float(draw(st.integers(0, 80)))
        price = st.sampled_from(PRICES)
    else:
        q = draw(st.lists(st.floats(0, 50), min_size=n, max_size=n))
        bq = draw(st.lists(st.floats(0, 20), min_size=nb, max_size=nb))
        d0 = draw(st.floats(0, 120))
        price = st.one_of(st.sampled_from(PRICES), st.floats(-50, 150))
    bids = draw(st.lists(price, min_size=n, max_size=n))
    bid_p = draw(st.lists(price, min_size=nb, max_size=nb))
    cap = draw(st.one_of(st.none(), st.sampled_from([20.0, 37.5, 60.0])))
    floor = draw(st.one_of(st.none(), st.sampled_from([-5.0, 0.0, 10.0])))
    return (
        np.array(bids, dtype=float),
        np.array(q, dtype=float),
        d0,
        (np.array(bid_p, dtype=float), np.array(bq, dtype=float)),
        cap,
        floor,
    )


def _check(book, tie_rule, mechanism):
    b, q, d0, bids, cap, floor = book
    price, cleared, served, paid = pm.clear(
        b,
        q,
        d0,
        demand_bids=bids,
        price_cap=cap,
        price_floor=floor,
        tie_rule=tie_rule,
        mechanism=mechanism,
    )
    want_p, want_x, want_s, shortage = market_clear(
        b, q, d0, bids, tie_rule=tie_rule, price_cap=cap, price_floor=floor
    )
    assert price == want_p
    np.testing.assert_allclose(cleared, want_x, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(served, want_s, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(paid, settle(mechanism, price, clip_prices(b, cap, floor)))
    if not shortage:
        assert abs(cleared.sum() - d0 - served.sum()) <= 1e-9 * (1 + cleared.sum())
    return price, cleared, served


@settings(max_examples=600, deadline=None)
@given(books(integer=True), st.sampled_from(["pro_rata", "index"]))
def test_clear_matches_the_reference_on_exact_books(book, tie_rule):
    _check(book, tie_rule, "uniform")


@settings(max_examples=400, deadline=None)
@given(books(integer=False), st.sampled_from(["uniform", "pay_as_bid"]))
def test_clear_matches_the_reference_on_float_books(book, mechanism):
    _check(book, "pro_rata", mechanism)


@settings(max_examples=200, deadline=None)
@given(books(integer=False, max_b=0))
def test_without_the_new_arguments_nothing_changes(book):
    b, q, d0, _, _, _ = book
    old = pm.clear(b, q, d0)
    assert len(old) == 2
    new = pm.clear(b, q, d0, demand_bids=(np.zeros(0), np.zeros(0)), mechanism="uniform")
    assert len(new) == 4
    assert new[0] == old[0]
    np.testing.assert_array_equal(new[1], old[1])
    assert new[2].shape == (0,)


def test_clear_batch_equals_clear_row_by_row():
    rng = np.random.default_rng(5)
    m, n, nb = 300, 7, 4
    bids = rng.choice([5.0, 10.0, 20.0, 30.0, 45.0], size=(m, n))
    q = rng.integers(0, 20, size=(m, n)).astype(float)
    d = rng.integers(0, 60, size=m).astype(float)
    bp = rng.choice([0.0, 10.0, 25.0, 45.0, 80.0], size=(m, nb))
    bq = rng.integers(0, 10, size=(m, nb)).astype(float)
    for mech in ("uniform", "pay_as_bid"):
        prices, cleared, served, paid = pm.clear_batch(
            bids, q, d, demand_bids=(bp, bq), price_cap=40.0, mechanism=mech
        )
        assert cleared.shape == (m, n) and served.shape == (m, nb) and paid.shape == (m, n)
        for k in range(m):
            p, x, s, pd = pm.clear(
                bids[k], q[k], d[k], demand_bids=(bp[k], bq[k]), price_cap=40.0, mechanism=mech
            )
            assert prices[k] == p
            np.testing.assert_array_equal(cleared[k], x)
            np.testing.assert_array_equal(served[k], s)
            np.testing.assert_array_equal(paid[k], pd)
    # Large enough for the thread pool: still row by row.
    big = np.tile(bids, (60, 1)), np.tile(q, (60, 1)), np.tile(d, 60)
    prices, cleared, served = pm.clear_batch(
        *big, demand_bids=(np.tile(bp, (60, 1)), np.tile(bq, (60, 1)))
    )
    np.testing.assert_array_equal(prices, np.tile(prices[:m], 60))
    np.testing.assert_array_equal(served, np.tile(served[:m], (60, 1)))


def test_worked_examples():
    # 10 MW at 5 and 100 MW at 50; 20 MW inelastic and 15 MW bid at 60 €/MWh.
    p, x, s = pm.clear([5.0, 50.0], [10.0, 100.0], 20.0, demand_bids=([60.0], [15.0]))
    assert p == 50.0 and list(x) == [10.0, 25.0] and list(s) == [15.0]
    # The bid at 30 is below the price: not served.
    p, x, s = pm.clear([5.0, 50.0], [10.0, 100.0], 20.0, demand_bids=([30.0], [15.0]))
    assert p == 50.0 and list(x) == [10.0, 10.0] and list(s) == [0.0]
    # A bid sets the price: 10 MW at 5, 5 MW inelastic, 10 MW bid at 30 and
    # the next offer at 50: 5 + 10 = 15 > 10 at 5, and at 30 S = 10 meets Dmin = 5.
    p, x, s = pm.clear([5.0, 50.0], [10.0, 100.0], 5.0, demand_bids=([30.0], [10.0]))
    assert p == 30.0 and list(x) == [10.0, 0.0] and list(s) == [5.0]
    # Pay-as-bid pays each offer its own (clipped) price.
    _, x, paid = pm.clear(
        [5.0, 5000.0], [10.0, 10.0], 15.0, price_cap=4000.0, mechanism="pay_as_bid"
    )
    assert list(paid) == [5.0, 4000.0]
    # A shortage under a cap is priced at the cap, not the shortage price.
    p, x = pm.clear([5.0, 50.0], [10.0, 10.0], 30.0, price_cap=300.0, shortage_price=9000.0)
    assert p == 300.0 and list(x) == [10.0, 10.0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mechanism": "vickrey"}, "mechanism.*vickrey.*uniform, pay_as_bid"),
        ({"price_cap": float("nan")}, "price_cap"),
        ({"price_floor": float("inf")}, "price_floor"),
        ({"price_floor": 50.0, "price_cap": 10.0}, "price_floor.*price_cap"),
        ({"demand_bids": ([1.0, np.nan], [1.0, 1.0])}, r"demand_bids prices\[1\].*NaN"),
        ({"demand_bids": ([1.0, 2.0], [1.0, -3.0])}, "demand_bids quantities.*1.*-3"),
        ({"demand_bids": ([1.0, 2.0], [1.0])}, "demand_bids quantities.*shape"),
    ],
)
def test_bad_market_design_arguments_name_themselves(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pm.clear([1.0, 2.0], [1.0, 1.0], 1.0, **kwargs)


def test_demand_bids_must_be_a_pair():
    with pytest.raises(TypeError, match="demand_bids must be a pair"):
        pm.clear([1.0], [1.0], 1.0, demand_bids=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"demand_bids prices must have shape \(2, B\)"):
        pm.clear_batch(
            np.ones((2, 1)),
            np.ones((2, 1)),
            np.ones(2),
            demand_bids=(np.ones((3, 1)), np.ones((3, 1))),
        )
