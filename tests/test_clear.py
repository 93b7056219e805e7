"""Differential and property tests of ``pm.clear`` / ``pm.clear_batch``.

The package is compared with the independent NumPy reference in
``tests/reference.py`` over many random problems with ties, shortage, zero
demand and zero quantities, and checked against the docs/semantics.md invariants.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

import numpy as np
import pytest
import reference as ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import powermarket as pm

TIE_RULES = ("pro_rata", "index")
PRICE_SET = (-20.0, 0.0, 5.0, 5.5, 20.0, 20.25, 37.5, 100.0)

PROPS = settings(
    max_examples=250,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# --------------------------------------------------------------------------- helpers


def exact_sum(x) -> float:
    """Correctly rounded sum, so tolerance checks do not depend on summation order."""
    return math.fsum(float(v) for v in np.asarray(x, dtype=np.float64))


def tol_for(q, d) -> float:
    """Absolute tolerance for sums of the problem's magnitude."""
    return 1e-12 * max(1.0, float(d), exact_sum(q))


def is_exact_problem(b, q, d) -> bool:
    """True if every partial sum of the quantities is exact in float64 (dyadic, small)."""
    vals = [Fraction(float(v)) for v in np.asarray(q)] + [Fraction(float(d))]
    return all(v.denominator <= 1024 and v <= 2**40 for v in vals)


def level_ambiguous(b, q, d) -> bool:
    """True if the demand lies within rounding of a cumulative-supply boundary.

    There, summing in another order may legitimately move p* by one level.
    """
    b, q = np.asarray(b, dtype=np.float64), np.asarray(q, dtype=np.float64)
    levels, inverse = np.unique(b, return_inverse=True)
    per_level = np.zeros(len(levels))
    np.add.at(per_level, inverse, q)
    tol = 1e-9 * max(1.0, float(d), exact_sum(q))
    return bool(np.any(np.abs(np.cumsum(per_level) - d) <= tol))


def check_invariants(b, q, d, price, cleared, tie_rule, shortage_price=None) -> None:
    """The docs/semantics.md clearing invariants, with float tolerance only on sums."""
    b, q = np.asarray(b, dtype=np.float64), np.asarray(q, dtype=np.float64)
    d = float(d)
    cleared = np.asarray(cleared)
    assert isinstance(price, float)
    assert cleared.dtype == np.float64 and cleared.shape == q.shape
    total = exact_sum(q)
    tol = tol_for(q, d)
    ulp = 4 * np.spacing(max(1.0, d, total))
    # 0 <= cleared_i <= q_i
    assert np.all(cleared >= 0.0), cleared
    assert np.all(cleared <= q + ulp), (cleared, q)
    # total cleared = min(D, total offered)
    assert abs(exact_sum(cleared) - min(d, total)) <= tol, (exact_sum(cleared), d, total)

    near_boundary = abs(total - d) <= tol
    shortage_prices = {float(np.max(b))} if shortage_price is None else {float(shortage_price)}
    if total < d and not near_boundary:
        assert price in shortage_prices
        np.testing.assert_array_equal(cleared, q)
        return
    if near_boundary and price in shortage_prices and np.array_equal(cleared, q):
        return  # rounding may call this a shortage: everything clears at the cap
    # The price is an offer price ...
    assert price in set(b.tolist()), (price, b)
    if d == 0.0:
        assert price == float(np.min(b))
        np.testing.assert_array_equal(cleared, np.zeros_like(q))
        return
    # ... and the lowest one at which cumulative supply reaches D.
    assert math.fsum(q[b < price]) < d + tol
    assert math.fsum(q[b <= price]) >= d - tol
    below, above, at = b < price, b > price, b == price
    np.testing.assert_array_equal(cleared[below], q[below])
    np.testing.assert_array_equal(cleared[above], np.zeros(int(above.sum())))
    at_idx = np.flatnonzero(at)
    if tie_rule == "pro_rata":
        qa, ca = q[at_idx], cleared[at_idx]
        pos = qa > 0
        if pos.sum() > 1:
            share = exact_sum(ca) / exact_sum(qa)  # one common fraction of each offer
            np.testing.assert_allclose(ca, qa * share, rtol=1e-12, atol=tol)
        np.testing.assert_array_equal(ca[~pos], np.zeros(int((~pos).sum())))
    else:
        # Index order: full, full, ..., partial, nothing, ... among the tied offers.
        partial_seen = False
        for i in at_idx:
            if partial_seen:
                assert cleared[i] == 0.0, (i, cleared)
            elif cleared[i] != q[i]:
                partial_seen = True


def assert_matches(b, q, d, tie_rule, shortage_price=None, *, exact_price=True) -> None:
    """Package == reference: price identical, cleared within 1e-12 relative."""
    price, cleared = pm.clear(b, q, d, tie_rule=tie_rule, shortage_price=shortage_price)
    rprice, rcleared = ref.clear(b, q, d, tie_rule, shortage_price)
    if exact_price:
        assert price == rprice, (price, rprice)
    np.testing.assert_allclose(cleared, rcleared, rtol=1e-12, atol=tol_for(q, d))
    check_invariants(b, q, d, price, cleared, tie_rule, shortage_price)


# --------------------------------------------------------------------------- strategies


@st.composite
def problems(draw, kind: str = "int", max_n: int = 12):
    """(bids, quantities, demand) with many ties and boundary demands.

    kind: "int" (integer quantities), "dyadic" (multiples of 1/8) — both with
    exact float sums — or "float" (general non-negative floats).
    """
    n = draw(st.integers(1, max_n))
    price = st.sampled_from(PRICE_SET)
    if kind == "float":
        price = st.one_of(price, st.floats(-500, 500, allow_nan=False, allow_infinity=False))
    bids = draw(st.lists(price, min_size=n, max_size=n))
    if kind == "int":
        qty = st.integers(0, 40).map(float)
    elif kind == "dyadic":
        qty = st.integers(0, 400).map(lambda k: k / 8)
    else:
        qty = st.one_of(st.just(0.0), st.floats(0, 1e4, allow_nan=False, allow_infinity=False))
    quantities = draw(st.lists(qty, min_size=n, max_size=n))
    total = sum(quantities)
    order = np.argsort(np.asarray(bids), kind="stable")
    prefix = np.concatenate(([0.0], np.cumsum(np.asarray(quantities)[order])))
    grid = 8 if kind == "dyadic" else 1
    demand = draw(
        st.one_of(
            st.just(0.0),
            st.just(float(total)),
            st.sampled_from(prefix.tolist()),
            st.integers(0, int(total * 1.3 * grid) + 2).map(lambda k: k / grid),
            st.just(float(total) + 1.0),
        )
        if kind != "float"
        else st.one_of(
            st.just(0.0),
            st.just(float(total)),
            st.sampled_from(prefix.tolist()),
            st.floats(0, total * 1.3 + 1, allow_nan=False, allow_infinity=False),
        )
    )
    return np.asarray(bids, dtype=np.float64), np.asarray(quantities, dtype=np.float64), demand


shortage_prices = st.one_of(st.none(), st.sampled_from([-5.0, 0.0, 150.0, 3000.0]))


# --------------------------------------------------------------------------- differential


@PROPS
@given(prob=st.one_of(problems("int"), problems("dyadic"), problems("float")), sp=shortage_prices)
def test_index_rule_matches_classic(prob, sp):
    b, q, d = prob
    assert_matches(b, q, d, "index", sp)


@PROPS
@given(
    prob=st.one_of(problems("int"), problems("dyadic"), problems("int", max_n=60)),
    sp=shortage_prices,
)
def test_pro_rata_exact_sums_match_reference(prob, sp):
    b, q, d = prob
    assert is_exact_problem(b, q, d)
    assert_matches(b, q, d, "pro_rata", sp)


@PROPS
@given(prob=problems("float"), sp=shortage_prices)
def test_pro_rata_general_floats_match_reference(prob, sp):
    b, q, d = prob
    price, cleared = pm.clear(b, q, d, tie_rule="pro_rata", shortage_price=sp)
    check_invariants(b, q, d, price, cleared, "pro_rata", sp)
    if not level_ambiguous(b, q, d):
        rprice, rcleared = ref.pro_rata_clear(b, q, d, sp)
        assert price == rprice
        np.testing.assert_allclose(cleared, rcleared, rtol=1e-12, atol=tol_for(q, d))


def _random_problem(rng: np.random.Generator, n: int, exact: bool):
    """A random problem with ties (few distinct prices) and zero quantities."""
    n_levels = int(rng.integers(1, max(2, n // 2) + 1))
    levels = np.round(rng.uniform(-100, 400, n_levels), 2)
    b = rng.choice(levels, n)
    if exact:
        q = rng.integers(0, 50, n).astype(np.float64)
    else:
        q = rng.exponential(20.0, n)
    q[rng.random(n) < 0.15] = 0.0
    total = q.sum()
    mode = rng.integers(0, 6)
    if mode == 0:
        d = 0.0
    elif mode == 1:
        d = float(total) + (1.0 if exact else rng.uniform(0.1, 10))
    elif mode == 2:
        order = np.argsort(b, kind="stable")
        d = float(np.cumsum(q[order])[rng.integers(0, n)])
    elif exact:
        d = float(rng.integers(0, int(total) + 2))
    else:
        d = float(rng.uniform(0, total * 1.1))
    return b, q, d


@pytest.mark.parametrize("exact", [True, False], ids=["exact", "float"])
@pytest.mark.parametrize("tie_rule", TIE_RULES)
def test_random_sweep_matches_reference(tie_rule, exact):
    """Thousands of problems, small to large N (the selection path for large N)."""
    rng = np.random.default_rng(20240601 + exact + 2 * (tie_rule == "index"))
    for case in range(1500):
        n = int(np.exp(rng.uniform(0, np.log(3000))))
        b, q, d = _random_problem(rng, n, exact)
        sp = None if case % 3 else float(rng.uniform(100, 1000))
        if tie_rule == "index" or exact or not level_ambiguous(b, q, d):
            assert_matches(b, q, d, tie_rule, sp)
        else:
            price, cleared = pm.clear(b, q, d, tie_rule=tie_rule, shortage_price=sp)
            check_invariants(b, q, d, price, cleared, tie_rule, sp)


# --------------------------------------------------------------------------- invariants


@PROPS
@given(
    prob=st.one_of(problems("int"), problems("dyadic"), problems("float", max_n=30)),
    tie_rule=st.sampled_from(TIE_RULES),
    sp=shortage_prices,
)
def test_invariants(prob, tie_rule, sp):
    b, q, d = prob
    price, cleared = pm.clear(b, q, d, tie_rule=tie_rule, shortage_price=sp)
    check_invariants(b, q, d, price, cleared, tie_rule, sp)


@PROPS
@given(
    n_tied=st.integers(2, 8),
    qty=st.integers(1, 30),
    others=st.lists(st.tuples(st.sampled_from(PRICE_SET), st.integers(0, 30)), max_size=8),
    frac=st.floats(0.01, 0.99),
    seed=st.integers(0, 2**32 - 1),
)
def test_pro_rata_equal_offers_at_price_get_equal_shares(n_tied, qty, others, frac, seed):
    """Identical offers at p* get the same share, wherever they sit in the input."""
    p_star = 21.0
    below = sum(q for p, q in others if p < p_star)
    bids = [p_star] * n_tied + [p for p, _ in others]
    quantities = [float(qty)] * n_tied + [float(q) for _, q in others]
    d = below + frac * n_tied * qty  # strictly inside the tied block
    perm = np.random.default_rng(seed).permutation(len(bids))
    b, q = np.asarray(bids)[perm], np.asarray(quantities)[perm]
    price, cleared = pm.clear(b, q, d, tie_rule="pro_rata")
    assert price == p_star
    shares = cleared[b == p_star]
    np.testing.assert_allclose(shares, shares[0], rtol=1e-12, atol=0)
    np.testing.assert_allclose(shares.sum(), d - below, rtol=1e-12)
    check_invariants(b, q, d, price, cleared, "pro_rata")


@PROPS
@given(
    prob=st.one_of(problems("int"), problems("dyadic")),
    seed=st.integers(0, 2**32 - 1),
    sp=shortage_prices,
)
def test_permutation_invariance(prob, seed, sp):
    """Pro rata is order-free; index order only moves volume between tied offers."""
    b, q, d = prob
    perm = np.random.default_rng(seed).permutation(len(b))
    p1, c1 = pm.clear(b, q, d, tie_rule="pro_rata", shortage_price=sp)
    p2, c2 = pm.clear(b[perm], q[perm], d, tie_rule="pro_rata", shortage_price=sp)
    assert p1 == p2
    np.testing.assert_allclose(c2, c1[perm], rtol=1e-12, atol=tol_for(q, d))
    i1, k1 = pm.clear(b, q, d, tie_rule="index", shortage_price=sp)
    i2, k2 = pm.clear(b[perm], q[perm], d, tie_rule="index", shortage_price=sp)
    assert i1 == i2 == p1
    for level in np.unique(b):
        np.testing.assert_allclose(
            k2[b[perm] == level].sum(), k1[b == level].sum(), rtol=1e-12, atol=tol_for(q, d)
        )


def test_rules_differ_only_at_the_tie():
    """A hand-checkable tie: index order fills gen 0 first, pro rata splits 2:1."""
    b, q = [10.0, 30.0, 30.0, 50.0], [10.0, 20.0, 10.0, 5.0]
    p_idx, c_idx = pm.clear(b, q, 25.0, tie_rule="index")
    p_pr, c_pr = pm.clear(b, q, 25.0, tie_rule="pro_rata")
    assert p_idx == p_pr == 30.0
    np.testing.assert_array_equal(c_idx, [10.0, 15.0, 0.0, 0.0])
    np.testing.assert_allclose(c_pr, [10.0, 10.0, 5.0, 0.0], rtol=1e-15)


@pytest.mark.parametrize("tie_rule", TIE_RULES)
def test_special_cases(tie_rule):
    """Zero demand, shortage with and without cap, zero-quantity offers in price formation."""
    b, q = np.array([40.0, 10.0, 25.0]), np.array([5.0, 0.0, 5.0])
    assert pm.clear(b, q, 0.0, tie_rule=tie_rule)[0] == 10.0
    np.testing.assert_array_equal(pm.clear(b, q, 0.0, tie_rule=tie_rule)[1], [0, 0, 0])
    p, c = pm.clear(b, q, 11.0, tie_rule=tie_rule)
    assert p == 40.0
    np.testing.assert_array_equal(c, q)
    p, c = pm.clear(b, q, 11.0, tie_rule=tie_rule, shortage_price=3000.0)
    assert p == 3000.0
    np.testing.assert_array_equal(c, q)
    p, c = pm.clear(b, q, 10.0, tie_rule=tie_rule, shortage_price=3000.0)  # exactly enough
    assert p == 40.0
    np.testing.assert_array_equal(c, q)
    for rule_fn in (ref.classic_clear, ref.pro_rata_clear):
        assert rule_fn(b, q, 0.0)[0] == 10.0
        assert rule_fn(b, q, 11.0, 3000.0)[0] == 3000.0


# --------------------------------------------------------------------------- input kinds


@pytest.mark.parametrize("tie_rule", TIE_RULES)
def test_input_kinds(tie_rule):
    """float32, float64, strided (positive / negative / column) arrays and lists."""
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(1, 40))
        b64 = rng.choice([5.0, 12.5, 30.0, 31.0, 70.0], n) + rng.choice([0.0, 0.1], n)
        q64 = rng.integers(0, 9, n) * 0.5
        d = float(rng.integers(0, int(q64.sum() * 2 + 3))) * 0.5
        expected = ref.clear(b64, q64, d, tie_rule)
        variants = {
            "f64": (b64, q64),
            "list": (b64.tolist(), q64.tolist()),
            "strided": (np.repeat(b64, 3)[::3], np.repeat(q64, 2)[::2]),
            "reversed": (b64[::-1].copy()[::-1], q64[::-1].copy()[::-1]),
            "column": (np.stack([b64, -b64], axis=1)[:, 0], np.stack([q64, q64], axis=1)[:, 1]),
        }
        for name, (bb, qq) in variants.items():
            price, cleared = pm.clear(bb, qq, d, tie_rule=tie_rule)
            assert price == expected[0], name
            np.testing.assert_allclose(cleared, expected[1], rtol=1e-12, atol=1e-12, err_msg=name)
        # float32 inputs are cleared as their (exact) float64 values
        b32, q32 = b64.astype(np.float32), (q64 * 1.1).astype(np.float32)
        exp32 = ref.clear(b32.astype(np.float64), q32.astype(np.float64), d, tie_rule)
        for bb, qq in ((b32, q32), (b32[::-1][::-1], np.repeat(q32, 2)[1::2])):
            price, cleared = pm.clear(bb, qq, np.float32(d), tie_rule=tie_rule)
            assert price == exp32[0]
            np.testing.assert_allclose(cleared, exp32[1], rtol=1e-12, atol=1e-12)


def test_negative_stride_and_int_lists():
    b = np.array([50.0, 10.0, 30.0, 20.0])
    q = np.array([1.0, 2.0, 3.0, 4.0])
    price, cleared = pm.clear(b[::-1], q[::-1], 5.0, tie_rule="index")
    rprice, rcleared = ref.classic_clear(b[::-1], q[::-1], 5.0)
    assert price == rprice
    np.testing.assert_array_equal(cleared, rcleared)
    price, cleared = pm.clear([3, 1, 2], [1, 1, 1], 2, tie_rule="index")
    assert price == 2.0
    np.testing.assert_array_equal(cleared, [0.0, 1.0, 1.0])


def test_negative_zero_quantity_is_accepted():
    price, cleared = pm.clear([1.0, 2.0], [-0.0, 1.0], 0.5)
    assert price == 2.0
    np.testing.assert_array_equal(cleared, [0.0, 0.5])


# --------------------------------------------------------------------------- errors

NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    ("bids", "quantities", "demand", "pattern"),
    [
        ([1, NAN, INF], [1, 1, 1], 1, r"bids\[1\] must be finite, got NaN"),
        ([1, 2, INF, NAN], [1, 1, 1, 1], 1, r"bids\[2\] must be finite, got inf"),
        ([-INF, 2], [1, 1], 1, r"bids\[0\] must be finite, got -inf"),
        ([1, 2, 3], [1, -1, -2], 1, r"quantities\[1\] must be >= 0, got -1"),
        ([1, 2, 3], [1, 1, NAN], 1, r"quantities\[2\].*NaN"),
        ([1, 2, 3], [INF, 1, NAN], 1, r"quantities\[0\].*inf"),
        ([1, 2, 3], [0, 0, -1e-300], 1, r"quantities\[2\] must be >= 0"),
        ([1, 2], [1, 2], -1, r"demand must be finite and >= 0, got -1"),
        ([1, 2], [1, 2], NAN, r"demand .*NaN"),
        ([1, 2], [1, 2], INF, r"demand .*inf"),
        ([1, 2], [1, 2, 3], 1, r"length mismatch: quantities has length 3, expected 2"),
        ([1, 2, 3], [1, 2], 1, r"length mismatch: quantities has length 2, expected 3"),
        ([], [], 1, r"bids must not be empty"),
        (np.ones((2, 2)), np.ones(2), 1, r"bids must be 1-D, got shape \(2, 2\)"),
        (np.ones(2), np.ones((2, 1)), 1, r"quantities must be 1-D, got shape \(2, 1\)"),
        (np.ones((1, 3)), np.ones((1, 3)), 1, r"bids must be 1-D"),
    ],
)
@pytest.mark.parametrize("tie_rule", TIE_RULES)
def test_bad_input_raises_value_error(bids, quantities, demand, pattern, tie_rule):
    with pytest.raises(ValueError, match=pattern):
        pm.clear(bids, quantities, demand, tie_rule=tie_rule)


@pytest.mark.parametrize("n", [5, 64, 1000])
def test_first_bad_index_reported_for_long_inputs(n):
    """Any vectorised validation must still name the first bad index."""
    rng = np.random.default_rng(n)
    for _ in range(20):
        k, j = sorted(rng.choice(n, 2, replace=False))
        b, q = rng.uniform(0, 100, n), rng.uniform(0, 10, n)
        b[k], b[j] = rng.choice([NAN, INF, -INF]), NAN
        with pytest.raises(ValueError, match=rf"^bids\[{k}\] must be finite"):
            pm.clear(b, q, 5.0)
        b = rng.uniform(0, 100, n)
        q[k], q[j] = rng.choice([NAN, INF, -1.0]), -2.0
        with pytest.raises(ValueError, match=rf"^quantities\[{k}\] must be"):
            pm.clear(b, q, 5.0)
        with pytest.raises(ValueError, match=rf"^quantities\[{k}\] must be"):
            pm.clear(b.astype(np.float32), q.astype(np.float32)[::-1][::-1], 5.0)


@pytest.mark.parametrize("value", [NAN, INF, -INF])
def test_bad_shortage_price(value):
    with pytest.raises(ValueError, match="shortage_price"):
        pm.clear([1.0], [1.0], 2.0, shortage_price=value)
    with pytest.raises(ValueError, match="shortage_price"):
        pm.clear_batch([[1.0]], [[1.0]], [2.0], shortage_price=value)


@pytest.mark.parametrize("name", ["x", "ProRata", "", "pro-rata"])
def test_unknown_tie_rule(name):
    with pytest.raises(ValueError, match=rf"unknown tie_rule .*{re.escape(name)}.*pro_rata, index"):
        pm.clear([1.0], [1.0], 1.0, tie_rule=name)
    with pytest.raises(ValueError, match="unknown tie_rule"):
        pm.clear_batch([[1.0]], [[1.0]], [1.0], tie_rule=name)


# --------------------------------------------------------------------------- clear_batch


def _batch(rng: np.random.Generator, m: int, n: int, exact: bool):
    rows = [_random_problem(rng, n, exact) for _ in range(m)]
    b = np.stack([r[0] for r in rows])
    q = np.stack([r[1] for r in rows])
    d = np.array([r[2] for r in rows])
    return b, q, d


@pytest.mark.parametrize("tie_rule", TIE_RULES)
@pytest.mark.parametrize(("m", "n"), [(1, 1), (7, 3), (50, 40), (3000, 12), (200, 300)])
def test_clear_batch_equals_row_by_row(tie_rule, m, n):
    """Bit for bit, including the large (threaded) batches."""
    rng = np.random.default_rng(m * 1000 + n)
    for exact in (True, False):
        b, q, d = _batch(rng, m, n, exact)
        for sp in (None, 777.0):
            prices, cleared = pm.clear_batch(b, q, d, tie_rule=tie_rule, shortage_price=sp)
            assert prices.shape == (m,) and cleared.shape == (m, n)
            assert prices.dtype == np.float64 and cleared.dtype == np.float64
            for i in range(m):
                p, c = pm.clear(b[i], q[i], d[i], tie_rule=tie_rule, shortage_price=sp)
                assert prices[i] == p, i
                np.testing.assert_array_equal(cleared[i], c, err_msg=f"market {i}")
            if m <= 200:
                for i in range(m):
                    rp, rc = ref.clear(b[i], q[i], d[i], tie_rule, sp)
                    if tie_rule == "index" or exact or not level_ambiguous(b[i], q[i], d[i]):
                        assert prices[i] == rp, i
                        np.testing.assert_allclose(
                            cleared[i], rc, rtol=1e-12, atol=tol_for(q[i], d[i])
                        )


@pytest.mark.parametrize("tie_rule", TIE_RULES)
def test_clear_batch_input_kinds(tie_rule):
    rng = np.random.default_rng(3)
    b, q, d = _batch(rng, 30, 9, exact=True)
    expected = pm.clear_batch(b, q, d, tie_rule=tie_rule)
    variants = {
        "fortran": (np.asfortranarray(b), np.asfortranarray(q), d),
        "transposed": (b.T.copy().T, q.T.copy().T, d),
        "strided": (np.repeat(b, 2, axis=1)[:, ::2], np.repeat(q, 3, axis=0)[::3], d),
        "lists": (b.tolist(), q.tolist(), d.tolist()),
        "demand_strided": (b, q, np.repeat(d, 2)[::2]),
    }
    for name, (bb, qq, dd) in variants.items():
        prices, cleared = pm.clear_batch(bb, qq, dd, tie_rule=tie_rule)
        np.testing.assert_array_equal(prices, expected[0], err_msg=name)
        np.testing.assert_array_equal(cleared, expected[1], err_msg=name)
    b32, q32, d32 = b.astype(np.float32), q.astype(np.float32), d.astype(np.float32)
    prices, cleared = pm.clear_batch(b32, q32, d32, tie_rule=tie_rule)
    for i in range(len(d)):
        p, c = pm.clear(b32[i], q32[i], float(d32[i]), tie_rule=tie_rule)
        assert prices[i] == p
        np.testing.assert_array_equal(cleared[i], c)


@pytest.mark.parametrize("m", [6, 2000])
def test_clear_batch_names_the_first_bad_market(m):
    rng = np.random.default_rng(11)
    b, q, d = _batch(rng, m, 4, exact=True)
    k, j = 3, m - 2
    bad = [
        ("bids", 2, NAN, rf"^market {k}: bids\[2\] must be finite, got NaN"),
        ("quantities", 1, -3.0, rf"^market {k}: quantities\[1\] must be >= 0, got -3"),
        ("quantities", 0, INF, rf"^market {k}: quantities\[0\] must be finite"),
    ]
    for arg, idx, value, pattern in bad:
        bb, qq = b.copy(), q.copy()
        arr = bb if arg == "bids" else qq
        arr[k, idx] = value
        arr[j, 0] = NAN
        with pytest.raises(ValueError, match=pattern):
            pm.clear_batch(bb, qq, d)
    for value, word in ((-1.0, "-1"), (NAN, "NaN"), (INF, "inf")):
        dd = d.copy()
        dd[k], dd[j] = value, -5.0
        with pytest.raises(ValueError, match=rf"^market {k}: demand .*{word}"):
            pm.clear_batch(b, q, dd)


def test_clear_batch_shape_errors():
    with pytest.raises(ValueError, match=r"bids must be 2-D"):
        pm.clear_batch(np.ones(3), np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match=r"quantities must have shape \(3, 2\), got \(3, 3\)"):
        pm.clear_batch(np.ones((3, 2)), np.ones((3, 3)), np.ones(3))
    with pytest.raises(ValueError, match=r"demand must have shape \(3,\), got \(2,\)"):
        pm.clear_batch(np.ones((3, 2)), np.ones((3, 2)), np.ones(2))
    with pytest.raises(ValueError, match=r"bids must not be empty"):
        pm.clear_batch(np.ones((3, 0)), np.ones((3, 0)), np.ones(3))
