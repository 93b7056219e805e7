"""powermarket.analysis against hand-computed cases, an independent NumPy
brute force (exploitability, pure_nash) and the theory (Cournot closed form
and bisection, Bertrand-like undercutting, von der Fehr–Harbord pivotal
supplier). Expectations are computed here, never copied from the code."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import reference as ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import powermarket as pm
from powermarket import analysis as pa

PROPS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------- competitive


def test_competitive_by_hand():
    # Costs 30, 10, 20 €/MWh, 10 MW each. 15 MW: the 20 € unit is marginal.
    s = pm.Scenario([10.0, 10.0, 10.0], [30.0, 10.0, 20.0], [15.0, 30.0, 5.0])
    c = pa.competitive(s)
    np.testing.assert_array_equal(c["price"], [20.0, 30.0, 10.0])
    np.testing.assert_array_equal(c["cleared"], [[0, 10, 5], [10, 10, 10], [0, 5, 0]])
    np.testing.assert_array_equal(c["profit"], [[0, 100, 0], [0, 200, 100], [0, 0, 0]])
    given_demand = pa.competitive(s, [25.0, 0.0])
    np.testing.assert_array_equal(given_demand["price"], [30.0, 10.0])
    assert given_demand["cleared"].shape == (2, 3)


def test_competitive_bad_demand_names_it():
    s = pm.Scenario.default(3, 4)
    with pytest.raises(ValueError, match=r"demand\[1\]"):
        pa.competitive(s, [10.0, np.nan])
    with pytest.raises(ValueError, match="demand"):
        pa.competitive(s, [10.0, -1.0])


# --------------------------------------------------------------- market power


def test_market_power_by_hand():
    # K = 50, 30, 20 MW (100 in all), demand 60 MW, price 40 €/MWh.
    s = pm.Scenario([50.0, 30.0, 20.0], [10.0, 20.0, 30.0], [60.0, 60.0])
    record = {
        "bids": np.array([[12.0, 25.0, 45.0], [-5.0, 20.0, 30.0]]),
        "cleared": np.array([[50.0, 10.0, 0.0], [0.0, 0.0, 0.0]]),
        "prices": np.array([40.0, 0.0]),
        "demand": np.array([60.0, 0.0]),
    }
    m = pa.market_power(s, record)
    np.testing.assert_allclose(m["rsi"][0], [50 / 60, 70 / 60, 80 / 60])
    assert np.all(np.isinf(m["rsi"][1]))
    np.testing.assert_array_equal(m["pivotal"], [[True, False, False], [False] * 3])
    shares = np.array([50.0, 10.0]) / 60.0 * 100.0
    assert m["hhi"][0] == pytest.approx(np.sum(shares**2))
    assert np.isnan(m["hhi"][1])
    np.testing.assert_allclose(m["lerner"][0, :2], [30 / 40, 20 / 40])
    assert np.isnan(m["lerner"][0, 2]) and np.all(np.isnan(m["lerner"][1]))
    np.testing.assert_array_equal(m["markup"], [[2.0, 5.0, 15.0], [-15.0, 0.0, 0.0]])


def test_market_power_of_an_episode_record():
    s = pm.Scenario.default(4, 6)
    env = pm.MarketEnv(s, seed=2)
    env.reset()
    rng = np.random.default_rng(0)
    env.step(np.tile([0.0, -3.0], (4, 1)))  # every bid below zero: P < 0 in hour 0
    for _ in range(s.t - 1):
        env.step(rng.uniform([0, -2], [0.5, 2], size=(4, 2)))
    rec = env.episode_record()
    assert rec["prices"][0] < 0
    m = pa.market_power(s, rec)
    np.testing.assert_allclose(m["markup"], rec["bids"] - s.costs)
    total = s.capacities.sum()
    np.testing.assert_allclose(m["rsi"], (total - s.capacities)[None, :] / rec["demand"][:, None])
    x = rec["cleared"]
    np.testing.assert_allclose(m["hhi"], np.sum((100 * x / x.sum(1, keepdims=True)) ** 2, 1))
    p = rec["prices"][:, None]
    defined = (x > 0) & (p > 0)
    assert (~defined).any() and (p <= 0).any()  # the episode has both edge cases
    np.testing.assert_allclose(m["lerner"][defined], ((p - s.costs) / p)[defined])
    assert np.all(np.isnan(m["lerner"][~defined]))


def test_market_power_bad_record():
    s = pm.Scenario.default(2, 3)
    with pytest.raises(ValueError, match="missing prices"):
        pa.market_power(s, {"bids": 0, "cleared": 0, "demand": 0})
    rec = {"bids": np.zeros((3, 3)), "cleared": np.zeros((3, 2)), "prices": np.ones(3)}
    rec["demand"] = np.ones(3)
    with pytest.raises(ValueError, match="bids"):
        pa.market_power(s, rec)


def blocks_record(k: int = 3, seed: int = 4):
    s = pm.Scenario.default(4, 6).replace(segments=k)
    env = pm.MarketEnv(s, seed=seed)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(s.t):
        env.step(rng.uniform([0, -2], [0.6, 2], size=(4, k, 2)).astype(np.float32))
    return s, env.episode_record()


def test_market_power_of_a_record_with_offer_blocks():
    s, rec = blocks_record()
    assert rec["bids"].shape == rec["cleared"].shape == (s.t, 4, 3)
    m = pa.market_power(s, rec)
    x = rec["cleared"].sum(axis=2)  # per generator: the sum of its blocks
    assert x.sum() > 0
    total = s.capacities.sum()
    np.testing.assert_allclose(m["rsi"], (total - s.capacities)[None, :] / rec["demand"][:, None])
    np.testing.assert_array_equal(m["pivotal"], m["rsi"] < 1)
    shares = 100 * x / x.sum(1, keepdims=True)
    np.testing.assert_allclose(m["hhi"], np.sum(shares**2, 1))
    p = rec["prices"][:, None]
    defined = (x > 0) & (p > 0)
    assert defined.any()
    np.testing.assert_allclose(m["lerner"][defined], ((p - s.costs) / p)[defined])
    assert np.all(np.isnan(m["lerner"][~defined]))
    # markup per offer block, in the record's shape
    assert m["markup"].shape == (s.t, 4, 3)
    np.testing.assert_allclose(m["markup"], rec["bids"] - s.costs[None, :, None])


def test_market_power_with_blocks_rejects_bad_blocks():
    s, rec = blocks_record()
    bad = dict(rec, bids=rec["bids"].copy())
    bad["bids"][2, 1, 2] = np.nan
    with pytest.raises(ValueError, match="bids"):
        pa.market_power(s, bad)
    bad = dict(rec, cleared=rec["cleared"].copy())
    bad["cleared"][0, 0, 1] = -1.0
    with pytest.raises(ValueError, match="cleared"):
        pa.market_power(s, bad)
    with pytest.raises(ValueError, match="bids"):
        pa.market_power(s, dict(rec, bids=rec["bids"][:, :, :2]))
    with pytest.raises(ValueError, match="cleared"):
        pa.market_power(s, dict(rec, cleared=rec["cleared"].sum(axis=2)))


def test_competitive_profit_under_pay_as_bid_uses_the_paid_price():
    """Everyone offers at cost: under pay-as-bid each offer is paid its own
    (clipped) offer price, so profit is (paid - c_i) x_i, not (P - c_i) x_i."""
    caps, costs, demand = [50.0, 30.0, 20.0], [10.0, 20.0, 30.0], [60.0, 90.0]
    for cap in (None, 25.0):
        s = pm.Scenario(caps, costs, demand).replace(mechanism="pay_as_bid", price_cap=cap)
        comp = pa.competitive(s)
        offers = np.minimum(costs, cap) if cap is not None else np.array(costs)
        for h, d in enumerate(demand):
            price, cleared, paid = pm.clear(offers, caps, d, mechanism="pay_as_bid", price_cap=cap)
            assert comp["price"][h] == price
            np.testing.assert_array_equal(comp["cleared"][h], cleared)
            np.testing.assert_allclose(comp["profit"][h], (paid - costs) * cleared, atol=1e-12)
        uniform = pa.competitive(s.replace(mechanism="uniform"))
        assert (uniform["profit"] > comp["profit"] + 1e-9).any()


def test_semantics_doc_states_the_pay_as_bid_rule_of_competitive():
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "semantics.md").read_text(encoding="utf-8")
    start = doc.index("### `competitive(")
    section = doc[start : doc.index("### ", start + 4)]
    assert "pay-as-bid" in section and "paid" in section


# ------------------------------------------------------------- exploitability


def _reward(s: pm.Scenario, i: int, bids, cleared, price, shortfall) -> float:
    """The env reward of generator i for one hour, from the README formula."""
    scale = 20.0 / (s.demand_scale * s.cost_scale * max(1, s.t))
    profit = (
        (price - s.costs[i]) * cleared[i]
        - s.bid_penalty * (bids[i] - s.costs[i]) ** 2
        - s.lol_penalty * shortfall
    )
    return profit * scale


def _offers(s: pm.Scenario, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = actions.astype(np.float64)
    withheld = np.clip(a[:, 0], 0.0, 1.0)
    pa_ = np.clip(a[:, 1], -10.0, 10.0)
    return s.costs + np.tanh(pa_) * s.max_bid_delta, (1.0 - withheld) * s.capacities


def brute_force_regret(s, actions, demand, withheld, price_action, tie_rule="pro_rata"):
    """Regret by clearing every deviation with the NumPy reference clearing."""
    e_count, t_count, n, _ = actions.shape
    regret = np.zeros((e_count, n))
    played_total = np.zeros((e_count, n))
    grid = [(np.float32(w), np.float32(p)) for w in withheld for p in price_action]
    for e, h in itertools.product(range(e_count), range(t_count)):
        d = demand[e, h]

        def rewards(acts, d=d):
            b, q = _offers(s, acts)
            price, x = ref.clear(b, q, d, tie_rule, shortage_price=s.shortage_price)
            shortfall = max(0.0, d - x.sum()) if q.sum() < d else 0.0
            return [_reward(s, i, b, x, price, shortfall) for i in range(n)]

        played = rewards(actions[e, h])
        played_total[e] += played
        for i in range(n):
            best = played[i]
            for w, p in grid:
                dev = actions[e, h].copy()
                dev[i] = (w, p)
                best = max(best, rewards(dev)[i])
            regret[e, i] += best - played[i]
    return regret.mean(0), played_total.mean(0)


def _table_policy(table: np.ndarray):
    """A policy that plays table[k] at its k-th call (cycling over episodes)."""
    calls = iter(itertools.cycle(range(len(table))))
    return lambda obs: table[next(calls)]


@pytest.mark.parametrize("n,t,episodes,tie_rule", [(2, 3, 1, "pro_rata"), (3, 4, 2, "index")])
def test_exploitability_equals_numpy_brute_force(n, t, episodes, tie_rule):
    s = pm.Scenario.default(n, t).replace(shortage_price=80.0)
    rng = np.random.default_rng(n * 10 + t)
    table = rng.uniform([0.0, -1.5], [0.6, 1.5], size=(episodes * t, n, 2)).astype(np.float32)
    withheld = np.array([0.0, 0.35, 1.0])
    price_action = np.array([-2.0, -0.5, 0.0, 0.7, 3.0])
    x = pa.exploitability(
        s,
        _table_policy(table),
        grid=(withheld, price_action),
        seed=5,
        episodes=episodes,
        tie_rule=tie_rule,
    )
    # The realised demand of the same episodes: MarketEnv with the same seed.
    env = pm.MarketEnv(s, seed=5)
    demand = np.zeros((episodes, t))
    for e in range(episodes):
        env.reset()
        demand[e] = env.demand
    actions = table.reshape(episodes, t, n, 2)
    want_regret, want_played = brute_force_regret(
        s, actions, demand, withheld, price_action, tie_rule
    )
    np.testing.assert_allclose(x["regret"], want_regret, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(x["played_reward"], want_played, rtol=1e-9, atol=1e-12)
    assert x["nash_conv"] == pytest.approx(want_regret.sum(), rel=1e-9, abs=1e-12)
    assert x["best_response"].shape == (episodes, t, n, 2)
    np.testing.assert_allclose(x["regret_per_episode"].mean(0), x["regret"])


def test_truthful_regret_is_non_negative_and_played_reward_is_the_env_reward():
    s = pm.Scenario.default(5, 24)
    truthful = lambda obs: np.zeros((5, 2), np.float32)  # noqa: E731
    x = pa.exploitability(s, truthful, grid=pa.default_grid(), seed=1, episodes=2)
    assert np.all(x["regret"] >= 0.0) and x["nash_conv"] >= 0.0
    # Truthful bidding leaves money on the table for someone in this market.
    assert x["nash_conv"] > 0.0
    env = pm.MarketEnv(s, seed=1)
    total = np.zeros(5)
    for _ in range(2):
        env.reset()
        for _ in range(24):
            env.step(np.zeros((5, 2), np.float32))
        total += env.episode_record()["rewards"].astype(np.float64).sum(0)
    np.testing.assert_allclose(x["played_reward"], total / 2, rtol=1e-5, atol=1e-6)
    # € per day: reward / reward scale * 24 / T, the scale from the scenario.
    scale = 20.0 / (s.demand_scale * s.cost_scale * 24)
    np.testing.assert_allclose(x["regret_eur_per_day"], x["regret"] / scale)
    assert x["nash_conv_eur_per_day"] == pytest.approx(x["nash_conv"] / scale)
    assert x["lower_bound"] is False


def test_best_response_of_the_mover_has_zero_regret():
    s = pm.Scenario.default(4, 8)
    rng = np.random.default_rng(7)
    table = rng.uniform([0.0, -2.0], [0.5, 2.0], size=(8, 4, 2)).astype(np.float32)
    grid = pa.default_grid(6, 11)
    x = pa.exploitability(s, _table_policy(table), grid=grid, seed=3)
    assert x["nash_conv"] > 0.0
    for j in range(4):
        moved = table.copy()
        moved[:, j] = x["best_response"][0, :, j]
        y = pa.exploitability(s, _table_policy(moved), grid=grid, seed=3)
        assert y["regret"][j] == 0.0
        # It gained exactly its regret.
        assert y["played_reward"][j] == pytest.approx(
            x["played_reward"][j] + x["regret"][j], rel=1e-12, abs=1e-12
        )


def test_exploitability_of_play_matches_the_rollout_and_is_deterministic():
    s = pm.Scenario.default(3, 6)
    rng = np.random.default_rng(1)
    table = rng.uniform([0.0, -1.0], [0.5, 1.0], size=(12, 3, 2))  # float64: clipped, cast
    grid = pa.default_grid(5, 9)
    a = pa.exploitability(s, _table_policy(table), grid=grid, seed=11, episodes=2)
    b = pa.exploitability(s, _table_policy(table), grid=grid, seed=11, episodes=2)
    np.testing.assert_array_equal(a["regret"], b["regret"])
    np.testing.assert_array_equal(a["best_response"], b["best_response"])
    env = pm.MarketEnv(s, seed=11)
    demand = []
    for _ in range(2):
        env.reset()
        demand.append(env.demand.copy())
    c = pa.exploitability_of_play(s, table.reshape(2, 6, 3, 2), np.array(demand), grid=grid)
    np.testing.assert_array_equal(a["regret"], c["regret"])
    # The first episode alone is the first row of the per-episode regret.
    one = pa.exploitability(s, _table_policy(table[:6]), grid=grid, seed=11)
    np.testing.assert_array_equal(one["regret"], a["regret_per_episode"][0])


def test_exploitability_bad_inputs():
    s = pm.Scenario.default(2, 3)
    ok = lambda obs: np.zeros((2, 2))  # noqa: E731
    with pytest.raises(ValueError, match="withheld"):
        pa.exploitability(s, ok, grid=([0.0, 1.5], [0.0]))
    with pytest.raises(ValueError, match="price_action"):
        pa.exploitability(s, ok, grid=([0.0], [np.nan]))
    with pytest.raises(ValueError, match="price_action must not be empty"):
        pa.exploitability(s, ok, grid=([0.0], []))
    with pytest.raises(ValueError, match="grid must be a pair"):
        pa.exploitability(s, ok, grid=5)
    with pytest.raises(ValueError, match="episodes"):
        pa.exploitability(s, ok, grid=([0.0], [0.0]), episodes=0)
    bad = lambda obs: np.array([[0.0, 0.0], [0.0, np.nan]])  # noqa: E731
    with pytest.raises(ValueError, match="gen_1"):
        pa.exploitability(s, bad, grid=([0.0], [0.0]))
    acts = np.zeros((1, 3, 2, 2), np.float32)
    acts[0, 2, 1, 0] = np.inf
    with pytest.raises(ValueError, match=r"actions\[0, 2\] for gen_1: a0"):
        pa.exploitability_of_play(s, acts, np.ones((1, 3)), grid=([0.0], [0.0]))
    with pytest.raises(ValueError, match="demand"):
        pa.exploitability_of_play(s, np.zeros_like(acts), np.ones((1, 4)), grid=([0.0], [0.0]))
    with pytest.raises(ValueError, match="actions"):
        pa.exploitability_of_play(s, np.zeros((1, 3, 3, 2)), np.ones((1, 3)), grid=([0], [0]))


# ------------------------------------------------------------------ pure Nash


def brute_force_nash(grid, capacities, costs, demand, price_cap=None):
    """Equilibrium prices by enumerating profiles with the NumPy reference clearing."""
    n = len(costs)
    profit = {}
    for prof in itertools.product(range(len(grid)), repeat=n):
        b = np.array([grid[k] for k in prof])
        price, x = ref.clear(b, np.asarray(capacities, float), demand, shortage_price=price_cap)
        profit[prof] = (price - np.asarray(costs)) * x, price
    eq = []
    for prof, (pr, price) in profit.items():
        stable = True
        for i in range(n):
            for k in range(len(grid)):
                dev = list(prof)
                dev[i] = k
                if profit[tuple(dev)][0][i] > pr[i] + 1e-9 * max(1.0, abs(pr[i])):
                    stable = False
        if stable:
            eq.append((tuple(grid[k] for k in prof), price))
    return eq


def test_pure_nash_equals_brute_force():
    grid = np.array([5.0, 12.0, 20.0, 31.0, 45.0])
    caps, costs = [30.0, 20.0, 25.0], [10.0, 18.0, 25.0]
    for demand in (15.0, 40.0, 70.0):
        eq = pa.pure_nash(grid, caps, costs, demand, price_cap=45.0)
        got = sorted((tuple(b), p) for b, p in zip(eq["bids"], eq["price"], strict=True))
        want = sorted(brute_force_nash(grid, caps, costs, demand, price_cap=45.0))
        assert got == want, demand
        assert eq["profiles"] == len(grid) ** 3
        np.testing.assert_allclose(eq["profit"], (eq["price"][:, None] - costs) * eq["cleared"])


@pytest.mark.parametrize("k", [2, 3])
def test_bertrand_like_equilibria_price_at_cost(k):
    # k lowest-cost units of 10 €/MWh and one of 30, each of 50 MW; demand
    # 40 MW: nobody is pivotal, the lowest-cost units have spare capacity.
    step, cost = 5.0, 10.0
    grid = np.arange(0.0, 60.0 + step, step)
    caps, costs = [50.0] * (k + 1), [cost] * k + [30.0]
    demand = 40.0
    assert all(sum(caps) - c >= demand for c in caps)  # no pivotal supplier
    eq = pa.pure_nash(grid, caps, costs, demand)
    competitive_price = pa.competitive(pm.Scenario(caps, costs, [demand]))["price"][0]
    assert competitive_price == cost
    assert competitive_price in eq["price"]
    # Undercutting a shared price p by one step pays when
    # (p - step - c) D > (p - c) D / k, so p - c <= k step / (k - 1): one grid
    # step for k >= 3; for k = 2, c + 2 steps is a weak equilibrium (indifferent).
    bound = cost + step * (1 if k >= 3 else 2)
    assert eq["price"].max() <= bound
    if k >= 3:
        assert eq["price"].max() <= cost + step


def test_pivotal_supplier_with_a_cap():
    # gen_0 is pivotal: the others' 60 MW cannot serve 80 MW.
    caps, costs, demand, cap = [60.0, 30.0, 30.0], [10.0, 20.0, 25.0], 80.0, 100.0
    grid = np.arange(0.0, cap + 1e-9, 10.0)
    residual = demand - (caps[1] + caps[2])
    assert residual > 0 and demand - (caps[0] + caps[2]) <= 0 and demand - caps[0] - caps[1] <= 0
    eq = pa.pure_nash(grid, caps, costs, demand, price_cap=cap)
    assert cap in eq["price"]  # von der Fehr–Harbord: the pivotal unit bids the cap
    floor = (cap - costs[0]) * residual
    assert np.all(eq["profit"][:, 0] >= floor - 1e-9)


def test_pure_nash_limits_and_errors():
    grid = np.arange(20.0)
    with pytest.raises(ValueError, match="1048576"):
        pa.pure_nash(grid, [1.0] * 5, [0.0] * 5, 1.0)
    assert pa.PURE_NASH_MAX_PROFILES == 2**20
    with pytest.raises(ValueError, match="strictly increasing"):
        pa.pure_nash([2.0, 1.0], [1.0], [0.0], 1.0)
    with pytest.raises(ValueError, match="price_cap"):
        pa.pure_nash([1.0, 2.0], [1.0], [0.0], 1.0, price_cap=1.5)
    with pytest.raises(ValueError, match="costs"):
        pa.pure_nash([1.0, 2.0], [1.0, 1.0], [0.0], 1.0)
    with pytest.raises(ValueError, match="demand"):
        pa.pure_nash([1.0, 2.0], [1.0], [0.0], "lots")


# -------------------------------------------------------------------- Cournot


def bisect_cournot(a, b, costs, caps):
    """Independent solution: bisection on total output Q of
    Q = sum_i clip((a - b Q - c_i) / b, 0, K_i)."""
    costs, caps = np.asarray(costs, float), np.asarray(caps, float)

    def supply(q_total):
        return np.clip((a - b * q_total - costs) / b, 0.0, caps).sum()

    lo, hi = 0.0, max(a - costs.min(), 0.0) / b + 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if supply(mid) > mid:
            lo = mid
        else:
            hi = mid
    q_total = 0.5 * (lo + hi)
    price = a - b * q_total
    return price, np.clip((price - costs) / b, 0.0, caps)


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_cournot_symmetric_closed_form(n):
    a, b, c = 120.0, 0.5, 20.0
    price, q = pa.cournot(a, b, [c] * n, [np.inf] * n)
    assert price == pytest.approx((a + n * c) / (n + 1), rel=1e-12)
    np.testing.assert_allclose(q, (a - c) / (b * (n + 1)), rtol=1e-12)


@PROPS
@given(
    a=st.floats(10.0, 500.0),
    b=st.floats(0.05, 5.0),
    costs=st.lists(st.floats(0.0, 100.0), min_size=1, max_size=6),
    data=st.data(),
)
def test_cournot_matches_bisection_with_binding_capacities(a, b, costs, data):
    caps = data.draw(st.lists(st.floats(0.0, 80.0), min_size=len(costs), max_size=len(costs)))
    price, q = pa.cournot(a, b, costs, caps)
    want_p, want_q = bisect_cournot(a, b, costs, caps)
    assert price == pytest.approx(want_p, abs=1e-7)
    np.testing.assert_allclose(q, want_q, atol=1e-7)
    # Each quantity is a best response to the others (profit concave in q_i).
    for i in range(len(costs)):
        others = q.sum() - q[i]

        def profit(x, i=i, others=others):
            return (a - b * (x + others) - costs[i]) * x

        for x in (max(0.0, q[i] - 0.1), min(caps[i], q[i] + 0.1)):
            assert profit(x) <= profit(q[i]) + 1e-7


def test_cournot_errors():
    with pytest.raises(ValueError, match="b"):
        pa.cournot(10.0, 0.0, [1.0], [1.0])
    with pytest.raises(ValueError, match="capacities"):
        pa.cournot(10.0, 1.0, [1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="capacities"):
        pa.cournot(10.0, 1.0, [1.0], [-1.0])


# ---------------------------------------------------- the demo and the bench


def test_bench_analysis_runs():
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benches" / "bench_analysis.py"
    args = ["--sizes", "3", "--episodes", "1", "--grid", "3", "5", "--rounds", "1"]
    done = subprocess.run(
        [sys.executable, str(script), *args, "--round-s", "0.005"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| 3 | 1 |" in done.stdout


def test_demo_prints_nash_conv_and_regret(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "demo.py"
    spec = importlib.util.spec_from_file_location("powermarket_demo_analysis", path)
    demo = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = demo
    spec.loader.exec_module(demo)
    out = demo.main(["--budget", "quick", "--seed", "1", "--out", str(tmp_path / "d.png")])
    history = out["exploitability"]
    assert 2 <= len(history) <= 3  # round 0 (truthful), then up to the quick round limit
    x = history[-1]
    printed = capsys.readouterr()
    text = printed.out + printed.err
    assert "round 1: NashConv" in text and "regret" in text
    # The table's regret column is the last round's regret in € per day.
    for j, r in enumerate(x["regret_eur_per_day"]):
        assert f"gen_{j}" in text and f"{r:9.1f}" in text
    assert np.all(x["regret"] >= 0.0)
