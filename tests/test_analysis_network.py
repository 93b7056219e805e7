"""powermarket.analysis on networked scenarios: a two-node case computed by
hand, exploitability against a brute-force best response cleared with
``pm.clear_network``, and the competitive node prices against
``pm.clear_network`` of cost offers, hour by hour. Expectations are computed
here, never copied from the code."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import powermarket as pm
from powermarket import analysis as pa


def two_nodes(demand, network="transport", **kw):
    """North (node 0): 100 MW at 10 €/MWh. South (node 1): 60 MW at 30 and
    20 MW at 50. One line north -> south of 30 MW; 20 % of demand north."""
    fields = {
        "network": network,
        "node_names": ["north", "south"],
        "nodes": [0, 1, 1],
        "lines": [(0, 1, 30.0, 1.0)],
        "demand_shares": [0.2, 0.8],
        "demand_noise": 0.0,
        "bid_penalty": 0.0,
    }
    return pm.Scenario([100.0, 60.0, 20.0], [10.0, 30.0, 50.0], demand, **(fields | kw))


# ------------------------------------------------------------ by hand, two nodes


def test_competitive_two_nodes_by_hand():
    c = pa.competitive(two_nodes([100.0, 40.0, 30.0]))
    # 100 MW: the north serves its 20 MW and exports 30 (the line is full);
    # the south's 30 € unit serves the other 50 MW.
    # 40 MW: north 8, south 32 > 30 MW of line: the south unit sells 2 MW.
    # 30 MW: north 6, south 24 < 30: no congestion, one price of 10.
    np.testing.assert_array_equal(c["node_prices"], [[10, 30], [10, 30], [10, 10]])
    np.testing.assert_array_equal(c["cleared"], [[50, 50, 0], [38, 2, 0], [30, 0, 0]])
    np.testing.assert_array_equal(c["flows"], [[30.0], [30.0], [24.0]])
    np.testing.assert_allclose(c["price"], [(10 * 20 + 30 * 80) / 100, (10 * 8 + 30 * 32) / 40, 10])
    np.testing.assert_allclose(c["congestion_rent"], [600.0, 600.0, 0.0], atol=1e-9)
    # Everyone is paid its own node's price, which is its cost here.
    np.testing.assert_array_equal(c["profit"], np.zeros((3, 3)))
    # Not networked: no node keys.
    plain = pa.competitive(pm.Scenario([10.0], [1.0], [5.0]))
    assert set(plain) == {"price", "cleared", "profit"}


def test_market_power_two_nodes_by_hand():
    s = two_nodes([100.0, 50.0])
    record = {
        "bids": np.array([[10.0, 30.0, 50.0], [10.0, 30.0, 50.0]]),
        "cleared": np.array([[50.0, 50.0, 0.0], [0.0, 0.0, 0.0]]),
        "prices": np.array([26.0, 10.0]),
        "demand": np.array([100.0, 0.0]),
        "node_prices": np.array([[10.0, 30.0], [10.0, 10.0]]),
    }
    m = pa.market_power(s, record)
    # System-wide: 180 MW for 100 MW. Without the north's 100 MW only 80
    # are left: pivotal. Without the south's 60 MW, 120: not pivotal.
    np.testing.assert_allclose(m["rsi"][0], [0.8, 1.2, 1.6])
    np.testing.assert_array_equal(m["pivotal"][0], [True, False, False])
    np.testing.assert_allclose(m["node_demand"], [[20, 80], [0, 0]])
    # Reachable: north 100 + 30 imported; south 80 + 30 imported.
    np.testing.assert_allclose(m["reachable_supply"], [[130, 110], [130, 110]])
    # At its own node: the north unit leaves 30 MW of import for 20 MW
    # (1.5, not pivotal there); the south's 30 € unit leaves 20 + 30 = 50 MW
    # for 80 (pivotal in the south, though not system-wide); the 50 € unit
    # leaves 60 + 30 = 90.
    np.testing.assert_allclose(m["local_rsi"][0], [1.5, 50 / 80, 90 / 80])
    np.testing.assert_array_equal(m["local_pivotal"][0], [False, True, False])
    np.testing.assert_allclose(m["node_rsi"][0], [1.5, 50 / 80])
    np.testing.assert_array_equal(m["node_pivotal"], [[False, True], [False, False]])
    assert np.isinf(m["node_rsi"][1]).all() and np.isinf(m["local_rsi"][1]).all()
    # Lerner at the node price: each dispatched unit is paid its cost.
    np.testing.assert_array_equal(m["node_lerner"][0, :2], [0.0, 0.0])
    assert np.isnan(m["node_lerner"][0, 2]) and np.isnan(m["node_lerner"][1]).all()
    # A thicker line: the south is no longer import-constrained.
    wide = two_nodes([100.0], lines=[(0, 1, 70.0, 1.0)])
    w = pa.market_power(wide, {k: v[:1] for k, v in record.items()})
    np.testing.assert_allclose(w["local_rsi"][0, 1], (20 + 70) / 80)
    assert not w["node_pivotal"].any()


def test_market_power_of_env_records():
    s = two_nodes([100.0, 60.0, 140.0], network="dc")
    env = pm.MarketEnv(s, seed=0)
    env.reset()
    for _ in range(3):
        env.step(np.zeros((3, 2)))
    rec = env.episode_record()
    m = pa.market_power(s, rec)
    assert m["node_rsi"].shape == (3, 2) and m["local_rsi"].shape == (3, 3)
    assert m["node_lerner"].shape == (3, 3) and m["node_pivotal"].dtype == bool
    np.testing.assert_allclose(m["node_demand"].sum(axis=1), rec["demand"])
    with pytest.raises(ValueError, match="node_prices"):
        pa.market_power(s, {k: v for k, v in rec.items() if k != "node_prices"})
    with pytest.raises(ValueError, match="node_prices"):
        bad = dict(rec, node_prices=rec["node_prices"][:, :1])
        pa.market_power(s, bad)
    # A one-node market has no node keys.
    one = pm.Scenario([10.0, 10.0], [1.0, 2.0], [5.0], demand_noise=0.0)
    env = pm.MarketEnv(one, seed=0)
    env.reset()
    env.step(np.zeros((2, 2)))
    assert "node_rsi" not in pa.market_power(one, env.episode_record())


# ------------------------------------------------ competitive vs pm.clear_network


@pytest.mark.parametrize("model", ["dc", "transport"])
def test_competitive_matches_clear_network_hour_by_hour(model):
    rng = np.random.default_rng(7)
    t, z = 6, 3
    caps = np.array([80.0, 50.0, 40.0, 60.0, 30.0])
    costs = np.array([12.0, 25.0, 33.0, 41.0, 55.0])
    nodes = np.array([0, 0, 1, 2, 2])
    lines = np.array([[0, 1, 25.0, 1.0], [1, 2, 20.0, 2.0], [0, 2, 30.0, 1.5]])
    shares = rng.dirichlet(np.ones(z), size=t)
    demand = rng.uniform(60.0, 200.0, size=t)
    s = pm.Scenario(
        caps,
        costs,
        demand,
        network=model,
        node_names=["a", "b", "c"],
        nodes=nodes,
        lines=lines,
        demand_shares=shares,
        demand_noise=0.0,
    )
    c = pa.competitive(s)
    node_demand = s.node_demand
    congested = 0
    for h in range(t):
        prices, cleared, flows = pm.clear_network(
            costs, caps, nodes, node_demand[h], lines, model=model
        )
        np.testing.assert_array_equal(c["node_prices"][h], prices)
        np.testing.assert_array_equal(c["cleared"][h], cleared)
        np.testing.assert_array_equal(c["flows"][h], flows)
        mean = (prices * node_demand[h]).sum() / node_demand[h].sum()
        np.testing.assert_allclose(c["price"][h], mean, rtol=1e-12)
        rent = (
            np.abs(flows)
            * np.abs(prices[lines[:, 1].astype(int)] - prices[lines[:, 0].astype(int)])
        ).sum()
        np.testing.assert_allclose(c["congestion_rent"][h], rent, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(
            c["profit"][h], (prices[nodes] - costs) * cleared, rtol=1e-12, atol=1e-9
        )
        congested += np.ptp(prices) > 0
    assert congested > 0, "the case should congest some hour"


# --------------------------------------------- exploitability vs a brute force


def brute_force(s, actions, node_demand, grid, model):
    """Per agent, sum over hours of max(0, best grid reward - played reward)
    and the played reward, in € (bid penalty and loss of load included),
    every deviation cleared by pm.clear_network."""
    costs, caps = np.asarray(s.costs), np.asarray(s.capacities)
    nodes, lines = np.asarray(s.nodes), np.asarray(s.lines)
    t, n = actions.shape[:2]
    delta = s.max_bid_delta

    def profit(a, h, i):
        a = a.astype(np.float32).astype(np.float64)
        bids = costs + np.clip(a[:, 1], -1, 1) * delta
        q = (1.0 - np.clip(a[:, 0], 0, 1)) * caps
        prices, cleared, _ = pm.clear_network(bids, q, nodes, node_demand[h], lines, model=model)
        shortfall = max(0.0, node_demand[h].sum() - cleared.sum())
        return (
            (prices[nodes[i]] - costs[i]) * cleared[i]
            - s.bid_penalty * (bids[i] - costs[i]) ** 2
            - s.lol_penalty * shortfall
        )

    regret, played = np.zeros(n), np.zeros(n)
    for h, i in itertools.product(range(t), range(n)):
        base = profit(actions[h], h, i)
        played[i] += base
        best = base
        for w, p in itertools.product(*grid):
            dev = actions[h].copy()
            dev[i] = (w, p)
            best = max(best, profit(dev, h, i))
        regret[i] += best - base
    return regret, played


@pytest.mark.parametrize("model", ["dc", "transport"])
def test_exploitability_matches_a_brute_force_on_the_network(model):
    rng = np.random.default_rng(3)
    t = 4
    caps = np.array([70.0, 40.0, 45.0, 35.0])
    costs = np.array([15.0, 22.0, 31.0, 44.0])
    nodes = np.array([0, 1, 2, 2])
    lines = np.array([[0, 1, 12.0, 1.0], [1, 2, 10.0, 1.0], [0, 2, 15.0, 2.0]])
    s = pm.Scenario(
        caps,
        costs,
        rng.uniform(80.0, 140.0, size=t),
        network=model,
        node_names=["a", "b", "c"],
        nodes=nodes,
        lines=lines,
        demand_shares=rng.dirichlet([2.0, 3.0, 5.0], size=t),
        demand_noise=0.0,
        bid_penalty=0.02,
        lol_penalty=3.0,
        price_action="linear",
        max_bid_delta=40.0,
    )
    actions = np.stack(
        [rng.uniform(0.0, 0.4, size=(t, 4)), rng.uniform(-1.0, 1.0, size=(t, 4))], axis=-1
    ).astype(np.float32)
    grid = (np.linspace(0.0, 1.0, 5), np.linspace(-1.0, 1.0, 9))
    x = pa.exploitability_of_play(s, actions[None], np.asarray(s.demand)[None], grid=grid)
    regret, played = brute_force(
        s, actions, s.node_demand, (grid[0].astype(np.float32), grid[1].astype(np.float32)), model
    )
    to_eur = x["eur_per_day_per_reward"] * t / 24.0
    np.testing.assert_allclose(x["played_reward"] * to_eur, played, rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(x["regret"] * to_eur, regret, rtol=1e-9, atol=1e-6)
    assert regret.sum() > 1.0
    # Most played hours are congested (the node prices differ).
    congested = 0
    for h in range(t):
        a = actions[h].astype(np.float64)
        prices, *_ = pm.clear_network(
            costs + a[:, 1] * 40.0,
            (1 - a[:, 0]) * caps,
            nodes,
            s.node_demand[h],
            lines,
            model=model,
        )
        congested += np.ptp(prices) > 0
    assert congested >= t // 2
    # The played rewards are the env's.
    env = pm.MarketEnv(s, seed=0)
    env.reset()
    total = np.zeros(4)
    for h in range(t):
        _, r, *_ = env.step(actions[h])
        total += np.asarray(r, dtype=np.float64)
    np.testing.assert_allclose(x["played_reward"], total, rtol=1e-5, atol=1e-6)


def test_exploitability_of_a_policy_on_a_network():
    s = two_nodes([100.0, 60.0, 140.0], network="dc")
    x = pa.exploitability(s, lambda obs: np.zeros((3, 2)), grid=pa.default_grid(5, 9))
    # Truthful play: the south's 30 € unit can raise the southern price by
    # offering above cost while it is pivotal there.
    assert x["regret"][1] > 0.0
    assert x["regret"].shape == (3,) and not x["lower_bound"]


def test_storage_best_response_is_paid_its_node_price():
    def regret_eur(node):
        battery = pm.Storage(
            10.0,
            10.0,
            soc_initial=1.0,
            efficiency_charge=1.0,
            efficiency_discharge=1.0,
            reference_price=0.0,
            terminal_value=0.0,
        )
        s = two_nodes([100.0, 100.0], storage=[battery], max_bid_delta=5.0, nodes=[0, 1, 1, node])
        x = pa.exploitability_of_play(
            s,
            np.zeros((1, 2, 4, 2)),
            np.array([[100.0, 100.0]]),
            grid=([0.0], [0.0]),
            soc_grid=11,
        )
        return x["regret"][3] * x["eur_per_day_per_reward"] * 2 / 24

    # 10 MWh sold at the north's 10 €/MWh, or at the south's 30 €/MWh.
    assert regret_eur(0) == pytest.approx(100.0, rel=1e-9)
    assert regret_eur(1) == pytest.approx(300.0, rel=1e-9)


def test_equilibrium_on_a_network_has_no_regret():
    s = two_nodes([100.0, 60.0])
    grid = (np.linspace(0, 1, 3), np.linspace(-2, 2, 5))
    eq = pa.equilibrium(s, grid=grid, max_moves=50)
    assert eq["exact_hours"] == 2
    x = pa.exploitability_of_play(s, eq["actions"][None], np.asarray(s.demand)[None], grid=grid)
    assert x["nash_conv"] == 0.0
