"""pm.clear_network: the LP reference (HiGHS via scipy), the copper plate bit
for bit, textbook cases, the batch, and errors that name their argument."""

from __future__ import annotations

import os

import numpy as np
import pytest
from reference_network import clip, is_optimal_dual, objective, shed_price, solve, voll_model

import powermarket as pm

CASES = int(os.environ.get("PM_NETWORK_CASES", "600"))


def random_grid(rng, z, meshed, unlimited=False):
    """A connected grid: a random spanning tree, plus extra lines if meshed."""
    rows = []
    for k in range(1, z):
        rows.append([int(rng.integers(0, k)), k])
    if meshed and z > 1:
        for _ in range(int(rng.integers(1, z + 1))):
            a, b = rng.choice(z, 2, replace=False)
            rows.append([int(a), int(b)])
    lines = []
    for a, b in rows:
        if rng.random() < 0.5:
            a, b = b, a
        cap = np.inf if unlimited or rng.random() < 0.1 else rng.uniform(5.0, 80.0)
        lines.append([a, b, cap, rng.uniform(0.05, 1.0)])
    return np.array(lines, dtype=float)


def random_market(rng, z, *, design=True):
    n = int(rng.integers(1, 13))
    kw = {}
    if design:
        if rng.random() < 0.3:
            kw["price_cap"] = float(rng.uniform(60.0, 150.0))
        if rng.random() < 0.2:
            kw["price_floor"] = float(rng.uniform(0.0, 20.0))
        if rng.random() < 0.3:
            kw["shortage_price"] = float(rng.uniform(100.0, 400.0))
        if rng.random() < 0.3:
            b = int(rng.integers(1, 5))
            kw["demand_bids"] = (
                rng.uniform(0.0, 150.0, b),
                rng.uniform(0.0, 30.0, b),
                rng.integers(0, z, b),
            )
    demand = rng.uniform(0.0, 60.0, z) * (rng.random(z) < 0.8)
    return (
        rng.uniform(0.0, 100.0, n),
        rng.uniform(0.0, 60.0, n),
        rng.integers(0, z, n),
        demand,
        kw,
    )


def check_dispatch(out, bids, q, nodes, demand, lines, model, kw, ref):
    prices, cleared, flows = out[:3]
    served = out[3] if "demand_bids" in kw else np.zeros(0)
    z = len(demand)
    scale = 1.0 + q.sum() + demand.sum()
    assert np.all(cleared >= 0) and np.all(cleared <= q)
    assert np.all(np.abs(flows) <= lines[:, 2] + 1e-9 * scale)
    # Node balance gives the shed load, which must be within [0, demand].
    inj = np.zeros(z)
    np.add.at(inj, nodes, cleared)
    if "demand_bids" in kw:
        np.add.at(inj, kw["demand_bids"][2], -served)
    np.add.at(inj, lines[:, 0].astype(int), -flows)
    np.add.at(inj, lines[:, 1].astype(int), flows)
    shed = demand - inj
    assert np.all(shed >= -1e-7 * scale) and np.all(shed <= demand + 1e-7 * scale)
    shed = np.clip(shed, 0.0, demand)
    cost = objective(
        cleared,
        served,
        shed,
        bids,
        kw.get("demand_bids"),
        kw.get("price_cap"),
        kw.get("price_floor"),
        kw.get("shortage_price"),
        voll_model(model, len(demand), lines),
    )
    cap, floor = kw.get("price_cap"), kw.get("price_floor")
    bid_p = clip(kw["demand_bids"][0], cap, floor) if "demand_bids" in kw else np.zeros(0)
    vm = voll_model(model, len(demand), lines)
    v = shed_price(clip(bids, cap, floor), bid_p, cap, kw.get("shortage_price"), vm)
    assert cost == pytest.approx(ref.cost, rel=1e-7, abs=1e-6 * scale * max(v, 1.0))
    price_scale = max(1.0, v, float(np.max(np.abs(ref.prices))))
    unique = np.allclose(prices, ref.prices, rtol=1e-7, atol=1e-7 * price_scale)
    if not unique:
        # Degenerate duals (e.g. zero demand, a supply that meets demand at
        # an offer's edge): ours must still be optimal duals, checked below
        # with complementary slackness.
        assert is_optimal_dual(prices, flows, lines, model), (prices, ref.prices)
        bp = (
            clip(kw["demand_bids"][0], kw.get("price_cap"), kw.get("price_floor"))
            if "demand_bids" in kw
            else None
        )
        if bp is not None:
            bn = kw["demand_bids"][2]
            bq = kw["demand_bids"][1]
            hi_b, lo_b = bp > prices[bn] + 1e-7 * price_scale, bp < prices[bn] - 1e-7 * price_scale
            np.testing.assert_allclose(served[hi_b], bq[hi_b], atol=1e-7 * scale)
            np.testing.assert_allclose(served[lo_b], 0.0, atol=1e-7 * scale)
        below_v = prices < v - 1e-7 * price_scale
        np.testing.assert_allclose(shed[below_v], 0.0, atol=1e-7 * scale)
    distinct = len(np.unique(np.concatenate([clip(bids, cap, floor), bid_p]))) == len(bids) + len(
        bid_p
    )
    no_shed = ref.shed.sum() <= 1e-9 * scale and shed.sum() <= 1e-9 * scale
    if model == "dc" and unique and distinct and no_shed:
        # Flows are unique where the dispatch is: with continuous random
        # data, everywhere but where offers tie (clipped to the cap or
        # floor) or shedding (at one price V) could move.
        np.testing.assert_allclose(flows, ref.flows, rtol=1e-6, atol=1e-6 * scale)
    # The price rule per node.
    p_off = prices[nodes]
    c = np.clip(bids, kw.get("price_floor", -np.inf), kw.get("price_cap", np.inf))
    below, above = c < p_off - 1e-7 * price_scale, c > p_off + 1e-7 * price_scale
    np.testing.assert_allclose(cleared[below], q[below], atol=1e-7 * scale)
    np.testing.assert_allclose(cleared[above], 0.0, atol=1e-7 * scale)
    return unique


@pytest.mark.parametrize("model", ["transport", "dc"])
def test_random_networks_match_highs(model):
    """Prices, dispatch cost and (DC) flows equal the HiGHS solution of the
    same LP on random meshed and radial grids of 2-8 nodes, with caps,
    floors, demand bids and shortages."""
    rng = np.random.default_rng(19 if model == "dc" else 20)
    congested = degenerate = 0
    for case in range(CASES):
        z = int(rng.integers(2, 9))
        lines = random_grid(rng, z, meshed=case % 2 == 1)
        bids, q, nodes, demand, kw = random_market(rng, z)
        tie_rule = "index" if case % 3 == 0 else "pro_rata"
        out = pm.clear_network(bids, q, nodes, demand, lines, model=model, tie_rule=tie_rule, **kw)
        ref = solve(bids, q, nodes, demand, lines, model=model, **kw)
        try:
            degenerate += not check_dispatch(out, bids, q, nodes, demand, lines, model, kw, ref)
        except AssertionError as e:
            raise AssertionError(f"case {case}: {e}") from e
        congested += int(np.ptp(out[0]) > 0)
    # The sample exercises the LP path, not only the copper plate.
    assert congested > CASES // 5
    # Non-unique duals are the exception (zero demand and the like).
    assert degenerate < CASES // 10


@pytest.mark.parametrize("model", ["transport", "dc"])
@pytest.mark.parametrize("tie_rule", ["pro_rata", "index"])
def test_unlimited_lines_give_the_copper_plate_bit_for_bit(model, tie_rule):
    rng = np.random.default_rng(7)
    for case in range(300):
        z = int(rng.integers(1, 9))
        lines = random_grid(rng, z, meshed=case % 2 == 1, unlimited=True)
        bids, q, nodes, demand, kw = random_market(rng, z)
        # Ties: prices on a coarse grid.
        bids = np.round(bids / 20.0) * 20.0
        net = pm.clear_network(bids, q, nodes, demand, lines, model=model, tie_rule=tie_rule, **kw)
        copper_kw = dict(kw)
        if "demand_bids" in kw:
            copper_kw["demand_bids"] = kw["demand_bids"][:2]
        total = sum(demand.tolist())  # in node order, as the core adds them
        cu = pm.clear(bids, q, total, tie_rule=tie_rule, **copper_kw)
        price = cu[0]
        if np.array_equal(cu[1], q) and sum(q.tolist()) < total:
            # A shortage: priced at the LP's shedding price V, the copper
            # plate's shortage price unless that is below an offer or bid.
            bp = kw["demand_bids"][0] if "demand_bids" in kw else np.zeros(0)
            cap, floor = kw.get("price_cap"), kw.get("price_floor")
            price = shed_price(
                clip(bids, cap, floor),
                clip(bp, cap, floor),
                cap,
                kw.get("shortage_price"),
                voll_model(model, z, lines),
            )
            if cap is not None:
                assert price == cu[0]
        assert np.array_equal(net[0], np.full(z, price)), case
        assert np.array_equal(net[1], cu[1]), case
        if "demand_bids" in kw:
            assert np.array_equal(net[3], cu[2]), case


@pytest.mark.parametrize("model", ["transport", "dc"])
def test_two_nodes_export_limited_by_hand(model):
    # Node 0: 100 MW at 10, 100 MW at 30, demand 20; node 1: 100 MW at 50,
    # demand 120; a 60 MW line. Node 0 exports 60 (its cheap offer runs at
    # 80 MW and sets its price, 10); node 1 makes up 60 MW at 50.
    prices, cleared, flows = pm.clear_network(
        [10, 30, 50], [100, 100, 100], [0, 0, 1], [20, 120], [[0, 1, 60, 0.1]], model=model
    )
    assert prices.tolist() == [10.0, 50.0]
    assert cleared.tolist() == [80.0, 0.0, 60.0]
    assert flows.tolist() == [60.0]
    rent = abs(flows[0]) * abs(prices[1] - prices[0])
    assert rent == 2400.0
    # Reversed line direction: the flow is negative, nothing else changes.
    p2, c2, f2 = pm.clear_network(
        [10, 30, 50], [100, 100, 100], [0, 0, 1], [20, 120], [[1, 0, 60, 0.1]], model=model
    )
    assert p2.tolist() == [10.0, 50.0] and c2.tolist() == [80.0, 0.0, 60.0]
    assert f2.tolist() == [-60.0]


def test_three_node_loop_flows_differ_from_transport():
    # A triangle of equal reactances; the direct line 0-2 is limited to 50.
    lines = [[0, 1, np.inf, 1.0], [1, 2, np.inf, 1.0], [0, 2, 50, 1.0]]
    args = ([10, 50], [200, 200], [0, 2], [0, 0, 120], lines)
    p, c, f = pm.clear_network(*args, model="dc")
    # 2/3 of node 0's output takes the direct line: 75 MW fill it.
    np.testing.assert_allclose(c, [75, 45])
    np.testing.assert_allclose(f, [25, 25, 50])
    np.testing.assert_allclose(p, [10, 30, 50])
    pt, ct, ft = pm.clear_network(*args, model="transport")
    assert pt.tolist() == [10.0, 10.0, 10.0]
    assert ct.tolist() == [120.0, 0.0]
    assert abs(ft[2]) <= 50
    assert ft[0] + ft[2] == pytest.approx(120)


def test_dc_loop_prices_a_node_above_every_offer_and_sheds_nothing():
    """Three nodes in a loop, equal reactances, the west-city line limited
    to 60 MW, 124.9 MW at the city: the west plant (20 EUR/MWh) can give
    55.1 MW (2/3 of its output and 1/3 of the east's use the limited line),
    the east (50) the rest, and one more MW at the city takes 2 MW from the
    east and 1 MW less from the west: 2 x 50 - 20 = 80 EUR/MWh. No load is
    shed though 80 is above both offers (the default shedding price of "dc"
    is 50 + 10 x 30 = 350)."""
    lines = [[0, 2, 60, 1], [1, 2, np.inf, 1], [0, 1, np.inf, 1]]
    p, c, f = pm.clear_network([20.0, 50.0], [120.0, 120.0], [0, 1], [0, 0, 124.9], lines)
    np.testing.assert_allclose(p, [20.0, 50.0, 80.0], rtol=1e-12)
    np.testing.assert_allclose(c, [55.1, 69.8], rtol=1e-12)
    np.testing.assert_allclose(f, [60.0, 64.9, -4.9], rtol=1e-12, atol=1e-12)
    # With a cap below 80, serving the last MW costs more than the cap
    # (the value of lost load), and the city sheds instead.
    p, c, f = pm.clear_network(
        [20.0, 50.0], [120.0, 120.0], [0, 1], [0, 0, 124.9], lines, price_cap=70.0
    )
    assert p[2] == 70.0
    assert sum(c) < 124.9


def test_batch_equals_one_hour_at_a_time():
    rng = np.random.default_rng(3)
    z, m = 5, 40
    lines = random_grid(rng, z, meshed=True)
    n = 9
    nodes = rng.integers(0, z, n)
    bids = rng.uniform(0, 100, (m, n))
    q = rng.uniform(0, 50, (m, n))
    demand = rng.uniform(0, 60, (m, z))
    bp, bq, bn = rng.uniform(0, 120, (m, 2)), rng.uniform(0, 20, (m, 2)), [0, 4]
    for model in pm.NETWORK_MODELS:
        out = pm.clear_network_batch(
            bids,
            q,
            nodes,
            demand,
            lines,
            model=model,
            demand_bids=(bp, bq, bn),
            mechanism="pay_as_bid",
            price_cap=90.0,
        )
        assert [a.shape for a in out] == [(m, z), (m, n), (m, len(lines)), (m, 2), (m, n)]
        for k in range(m):
            one = pm.clear_network(
                bids[k],
                q[k],
                nodes,
                demand[k],
                lines,
                model=model,
                demand_bids=(bp[k], bq[k], bn),
                mechanism="pay_as_bid",
                price_cap=90.0,
            )
            for a, b in zip(out, one, strict=True):
                assert np.array_equal(a[k], b), (model, k)


def test_mechanisms_pay_the_node_price_or_the_offer():
    args = ([10, 30, 50], [100, 100, 100], [0, 0, 1], [20, 120], [[0, 1, 60, 0.1]])
    *_, paid = pm.clear_network(*args, mechanism="uniform")
    assert paid.tolist() == [10.0, 10.0, 50.0]
    *_, paid = pm.clear_network(*args, mechanism="pay_as_bid", price_cap=40.0)
    assert paid.tolist() == [10.0, 30.0, 40.0]


def test_same_bits_every_run():
    rng = np.random.default_rng(11)
    lines = random_grid(rng, 8, meshed=True)
    bids = np.round(rng.uniform(0, 100, 20) / 10) * 10  # many ties
    q = np.round(rng.uniform(0, 60, 20))
    nodes = rng.integers(0, 8, 20)
    demand = np.round(rng.uniform(0, 60, 8))
    for model in pm.NETWORK_MODELS:
        first = pm.clear_network(bids, q, nodes, demand, lines, model=model)
        for _ in range(5):
            again = pm.clear_network(bids, q, nodes, demand, lines, model=model)
            for a, b in zip(first, again, strict=True):
                assert a.tobytes() == b.tobytes()
        batch = pm.clear_network_batch(
            np.tile(bids, (32, 1)),
            np.tile(q, (32, 1)),
            nodes,
            np.tile(demand, (32, 1)),
            lines,
            model=model,
        )
        for a, b in zip(batch, first, strict=True):
            assert all(row.tobytes() == b.tobytes() for row in a)


GOOD = dict(
    bids=[10.0, 30.0, 50.0],
    quantities=[100.0, 100.0, 100.0],
    nodes=[0, 0, 1],
    demand=[20.0, 120.0],
    lines=[[0, 1, 60.0, 0.1]],
)


@pytest.mark.parametrize(
    "change, exc, words",
    [
        (
            dict(nodes=[0, 0, 2]),
            ValueError,
            "nodes[2] must be an integer node index in [0, 2), got 2",
        ),
        (dict(nodes=[0, 0.5, 1]), ValueError, "nodes[1] must be an integer node index"),
        (dict(nodes=[0, -1, 1]), ValueError, "nodes[1]"),
        (dict(nodes=[0, 1]), ValueError, "nodes has length 2, expected 3"),
        (dict(lines=[[0, 1, -1.0, 1.0]]), ValueError, "lines[0] capacity: must be >= 0"),
        (dict(lines=[[0, 1, np.nan, 1.0]]), ValueError, "lines[0] capacity"),
        (dict(lines=[[0, 1, 5.0, 0.0]]), ValueError, "lines[0] reactance: must be finite and > 0"),
        (dict(lines=[[0, 1, 5.0, np.inf]]), ValueError, "lines[0] reactance"),
        (dict(lines=[[0, 1, 5.0]]), ValueError, "lines must have shape (L, 4)"),
        (dict(lines=[[0, 5, 5.0, 1.0]]), ValueError, "lines[0] to: must be an integer node index"),
        (dict(lines=[[1, 1, 5.0, 1.0]]), ValueError, "two different nodes"),
        (dict(lines=[]), ValueError, "node 1 is not reachable from node 0"),
        (dict(demand=[1.0, np.nan]), ValueError, "demand[1] must be finite, got NaN"),
        (dict(demand=[1.0, -2.0]), ValueError, "demand[1] must be >= 0, got -2"),
        (dict(demand=[]), ValueError, "demand must not be empty"),
        (dict(bids=[1.0, np.nan, 3.0]), ValueError, "bids[1] must be finite"),
        (dict(quantities=[1.0, -1.0, 3.0]), ValueError, "quantities[1] must be >= 0"),
        (dict(quantities=[1.0, 1.0]), ValueError, "quantities"),
        (dict(bids=[]), ValueError, "bids"),
        (dict(model="ac"), ValueError, 'unknown model "ac"'),
        (dict(tie_rule="lottery"), ValueError, "unknown tie_rule"),
        (dict(mechanism="vickrey"), ValueError, "unknown mechanism"),
        (dict(price_cap=10.0, price_floor=20.0), ValueError, "price_floor"),
        (dict(shortage_price=np.inf), ValueError, "shortage_price"),
        (dict(demand_bids=([1.0], [1.0])), TypeError, "triple (prices, quantities, nodes)"),
        (dict(demand_bids=([1.0], [1.0], [5])), ValueError, "demand_bids nodes[0]"),
        (
            dict(demand_bids=([1.0], [-1.0], [0])),
            ValueError,
            "demand_bids quantities[0] must be >= 0",
        ),
        (
            dict(demand_bids=([np.nan], [1.0], [0])),
            ValueError,
            "demand_bids prices[0] must be finite",
        ),
        (dict(demand_bids=([1.0], [1.0, 2.0], [0])), ValueError, "demand_bids quantities"),
        (dict(bids="abc"), TypeError, "bids"),
        (dict(quantities=[5e307, 5e307, 5e307]), ValueError, "beyond the float64 range"),
        (
            dict(demand=[0.0] * 1025, lines=[[0, k, 1.0, 1.0] for k in range(1, 1025)]),
            ValueError,
            "at most 1024 nodes",
        ),
    ],
)
def test_bad_inputs_name_the_argument_and_value(change, exc, words):
    kw = {**GOOD, **change}
    args = [kw.pop(k) for k in ("bids", "quantities", "nodes", "demand", "lines")]
    with pytest.raises(exc) as info:
        pm.clear_network(*args, **kw)
    assert words in str(info.value)


def test_batch_errors_name_the_market():
    bids = np.array([[10.0, 30.0, 50.0]] * 3)
    q = np.array([[100.0, 100.0, 100.0]] * 3)
    q[2, 1] = -5.0
    demand = np.array([[20.0, 120.0]] * 3)
    with pytest.raises(ValueError, match=r"market 2: quantities\[1\] must be >= 0"):
        pm.clear_network_batch(bids, q, [0, 0, 1], demand, [[0, 1, 60.0, 0.1]])
    with pytest.raises(ValueError, match="demand"):
        pm.clear_network_batch(bids, np.abs(q), [0, 0, 1], demand[:2], [[0, 1, 60.0, 0.1]])


def integer_market(rng, z):
    """Prices, quantities, demands and capacities on coarse integer grids:
    ties, supplies that meet demand exactly, lines loaded exactly to their
    limits (a degenerate LP, with non-unique prices and dispatch)."""
    n = int(rng.integers(1, 13))
    kw = {}
    if rng.random() < 0.3:
        kw["price_cap"] = 80.0
    if rng.random() < 0.3:
        b = int(rng.integers(1, 4))
        kw["demand_bids"] = (
            rng.integers(0, 10, b) * 10.0,
            rng.integers(0, 4, b) * 10.0,
            rng.integers(0, z, b),
        )
    return (
        rng.integers(0, 10, n) * 10.0,
        rng.integers(0, 5, n) * 10.0,
        rng.integers(0, z, n),
        rng.integers(0, 5, z) * 10.0,
        kw,
    )


@pytest.mark.parametrize("model", ["transport", "dc"])
def test_degenerate_networks_are_optimal(model):
    """Integer data (ties everywhere): the dispatch cost equals HiGHS's optimum
    and the prices are optimal duals, even where they differ from HiGHS's."""
    rng = np.random.default_rng(5 if model == "dc" else 6)
    for case in range(CASES // 2):
        z = int(rng.integers(2, 7))
        lines = random_grid(rng, z, meshed=case % 2 == 1)
        lines[:, 2] = np.where(np.isfinite(lines[:, 2]), np.round(lines[:, 2] / 10) * 10, np.inf)
        lines[:, 3] = np.round(lines[:, 3] * 4 + 1) / 4
        bids, q, nodes, demand, kw = integer_market(rng, z)
        tie_rule = "index" if case % 2 else "pro_rata"
        out = pm.clear_network(bids, q, nodes, demand, lines, model=model, tie_rule=tie_rule, **kw)
        ref = solve(bids, q, nodes, demand, lines, model=model, **kw)
        try:
            check_dispatch(out, bids, q, nodes, demand, lines, model, kw, ref)
        except AssertionError as e:
            raise AssertionError(f"case {case}: {e}") from e


def test_threads_clear_concurrently_with_the_same_results():
    """The GIL is released while clearing; each thread has its own workspace."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(9)
    problems = []
    for _ in range(64):
        z = int(rng.integers(2, 9))
        lines = random_grid(rng, z, meshed=True)
        bids, q, nodes, demand, kw = random_market(rng, z)
        problems.append((bids, q, nodes, demand, lines, kw))

    def run(p):
        bids, q, nodes, demand, lines, kw = p
        return pm.clear_network(bids, q, nodes, demand, lines, **kw)

    alone = [run(p) for p in problems]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(run, problems * 4))
    for k, out in enumerate(together):
        for a, b in zip(out, alone[k % len(problems)], strict=True):
            assert a.tobytes() == b.tobytes()
