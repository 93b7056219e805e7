"""Clearing at the edges: the price does not depend on the tie rule at boundary demands,
extreme magnitudes match the exact reference, a huge backstop does not set the price.

Shared helpers are in conftest.py; the stateful machines in test_stateful.py,
the writer-thread and fork tests in test_concurrency.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import reference as ref
from conftest import (
    same,
)

import powermarket as pm

ENV_ID = "powermarket/Market-v0"
ROOT = Path(__file__).resolve().parents[1]


# --- the price does not depend on the tie rule ------------------------------------------


def _problems(seed: int, count: int):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        n = int(rng.integers(1, 12))
        bids = np.round(rng.uniform(0, 60, n), int(rng.integers(0, 3)))
        qty = rng.uniform(0.0, 40.0, n) * rng.choice([1e-3, 1.0, 1e3])
        if rng.random() < 0.3:
            qty[rng.integers(0, n)] = 0.0
        yield bids, qty


def _boundary_demands(bids, qty):
    """Demand exactly on every cumulative step, summed three ways, and at total supply."""
    order = np.argsort(bids, kind="stable")
    out = set(np.cumsum(qty[order]).tolist())
    out |= set(np.cumsum(qty[order][::-1]).tolist())
    acc = 0.0
    for p in np.unique(bids):
        acc += float(np.sum(qty[bids == p]))
        out.add(acc)
    out.add(float(np.sum(qty)))
    out.add(float(np.sum(qty, dtype=np.float32)))
    return sorted(d for d in out if d > 0)


@pytest.mark.parametrize("shortage_price", [None, 3000.0])
def test_boundary_demand_same_price_for_both_tie_rules(shortage_price):
    checked = 0
    for bids, qty in _problems(4, 400):
        for d in _boundary_demands(bids, qty):
            expected, shortage = ref.exact_price(bids, qty, d, shortage_price)
            p1, c1 = pm.clear(bids, qty, d, tie_rule="pro_rata", shortage_price=shortage_price)
            p2, c2 = pm.clear(bids, qty, d, tie_rule="index", shortage_price=shortage_price)
            assert p1 == p2 == expected, (bids, qty, d)
            if not shortage:
                for c in (c1, c2):
                    assert c.sum() == pytest.approx(min(d, qty.sum()), rel=1e-11)
                    assert np.all(c <= qty * (1 + 1e-12)) and np.all(c >= 0)
            checked += 1
    assert checked > 1000


def test_batch_boundary_demand_same_price_for_both_tie_rules():
    probs = [(b, q) for b, q in _problems(9, 300) if len(b) == 5]
    bids = np.stack([b for b, _ in probs])
    qty = np.stack([q for _, q in probs])
    demand = np.array([_boundary_demands(b, q)[-1] for b, q in probs])
    p1, _ = pm.clear_batch(bids, qty, demand, tie_rule="pro_rata", shortage_price=3000.0)
    p2, _ = pm.clear_batch(bids, qty, demand, tie_rule="index", shortage_price=3000.0)
    want = [ref.exact_price(b, q, d, 3000.0)[0] for b, q, d in zip(bids, qty, demand, strict=True)]
    assert same(p1, p2) and same(p1, np.array(want))


def test_episode_at_exact_capacity_no_phantom_shortage():
    base = pm.Scenario.default(n=9)
    sc = base.replace(
        capacities=np.full(9, base.demand.max() / 9), demand_noise=0.0, shortage_price=3000.0
    )
    runs = {}
    for rule in ("pro_rata", "index"):
        env = pm.MarketEnv(sc, seed=0, tie_rule=rule)
        env.reset()
        rows = []
        for _ in range(sc.t):
            _, _, _, _, info = env.step(np.zeros((9, 2), np.float32))
            rows.append((info["price"], info["shortfall"]))
        runs[rule] = rows
    assert runs["pro_rata"] == [(p, s) for p, s in runs["index"]]
    caps, costs = sc.capacities, sc.costs
    for h, (price, shortfall) in enumerate(runs["index"]):
        want, shortage = ref.exact_price(costs, caps, sc.demand[h], 3000.0)
        assert (price, shortfall > 0) == (want, shortage)
        assert price <= 40.0 and shortfall == 0.0


# --- extreme magnitudes ------------------------------------------------------------------


def test_overflowing_quantity_total_is_a_value_error():
    for rule in ("pro_rata", "index"):
        with pytest.raises(ValueError, match="quantities"):
            pm.clear([10.0, 10.0], [1e308, 1e308], 5.0, tie_rule=rule)


@pytest.mark.parametrize(
    "bids, qty, demand",
    [
        ([5.0], [1e30], 1e-300),
        ([5.0, 7.0], [1e300, 1.0], 1e-300),
        ([1.0, 2.0, 3.0], [1e-300, 1e-300, 1e-300], 2e-300),
        ([1.0, 2.0], [1e200, 1e200], 1.5e200),
    ],
)
def test_extreme_magnitudes_match_the_exact_reference(bids, qty, demand):
    for rule in ("pro_rata", "index"):
        price, cleared = pm.clear(bids, qty, demand, tie_rule=rule)
        rprice, rcleared = ref.exact_clear(bids, qty, demand, rule)
        assert price == rprice
        np.testing.assert_allclose(cleared, rcleared, rtol=1e-12, atol=0)
        assert cleared.sum() == pytest.approx(demand, rel=1e-12)


@pytest.mark.parametrize("backstop", [1e6, 1e9, 1e15])
@pytest.mark.parametrize("rule", ["pro_rata", "index"])
def test_huge_backstop_does_not_set_the_price(backstop, rule):
    caps = [300.1, 250.3, 180.7, 120.9]
    demand = sum(caps)
    price, cleared = pm.clear(
        [10.0, 20.0, 30.0, 40.0, 3000.0], caps + [backstop], demand, tie_rule=rule
    )
    assert price == 40.0
    assert cleared[4] == 0.0
    assert cleared.sum() == pytest.approx(demand, rel=1e-12)
    s = pm.Scenario(caps + [backstop], [10, 20, 30, 40, 3000], [demand] * 2, demand_noise=0.0)
    env = pm.MarketEnv(s, seed=0, tie_rule=rule)
    env.reset()
    info = env.step(np.zeros((5, 2), np.float32))[4]
    assert info["price"] == 40.0 and info["shortfall"] == 0.0
