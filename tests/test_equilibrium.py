"""powermarket.analysis.equilibrium: best-response dynamics on the grid.

Every result is checked independently of the solver's own numbers: its
NashConv by exploitability_of_play, its prices and rewards by replaying the
actions in MarketEnv, its equilibria against pure_nash's enumeration and the
theory (pivotal duopoly at the cap, Bertrand-like pricing at cost)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import powermarket as pm
from powermarket import analysis as pa

GRAF = Path(__file__).resolve().parents[1] / "examples" / "scenarios" / "graf_duopoly.toml"


def replay(scenario: pm.Scenario, actions: np.ndarray) -> dict:
    """Play the profile (T, N, 2) in MarketEnv without demand noise."""
    env = pm.MarketEnv(scenario.replace(demand_noise=0.0), seed=0)
    env.reset()
    total = np.zeros(scenario.n)
    for a in actions:
        _, r, *_ = env.step(a)
        total += r
    rec = env.episode_record()
    return {"reward": total, "prices": rec["prices"], "record": rec}


def test_default_market_nash_conv_checked_by_exploitability_of_play():
    s = pm.Scenario.default(n=5, t=24)
    eq = pa.equilibrium(s)
    assert eq["actions"].shape == (24, 5, 2) and eq["actions"].dtype == np.float32
    assert eq["prices"].shape == (24,) and eq["profits"].shape == (5,)
    grid = pa.default_grid()
    x = pa.exploitability_of_play(s, eq["actions"][None], s.demand[None], grid=grid)
    total = x["played_reward"].sum()
    assert total > 0
    assert x["nash_conv"] <= 0.01 * total
    assert eq["converged"]
    np.testing.assert_allclose(eq["nash_conv"], x["nash_conv"], rtol=0, atol=1e-12)
    # The env agrees on prices and rewards (its rewards are float32).
    env = replay(s, eq["actions"])
    np.testing.assert_allclose(env["prices"], eq["prices"], rtol=1e-12)
    np.testing.assert_allclose(env["reward"], eq["reward"], rtol=1e-5)
    # Profits are at the paid (clearing) price, in € per day.
    rec = env["record"]
    profit = ((rec["prices"][:, None] - s.costs) * rec["cleared"]).sum(axis=0)
    np.testing.assert_allclose(eq["profits"], profit, rtol=1e-9)
    # Far above the competitive outcome (the market has market power).
    comp = pa.competitive(s)
    assert eq["profits"].sum() > 2.0 * comp["profit"].sum()
    assert np.all(eq["prices"] >= comp["price"] - 1e-6)


def test_random_starts_deterministic_and_each_scored_exactly():
    s = pm.Scenario.default(n=4, t=6)
    grid = pa.default_grid(6, 11)
    a = pa.equilibrium(s, grid=grid, starts=5, seed=11)
    b = pa.equilibrium(s, grid=grid, starts=5, seed=11)
    np.testing.assert_array_equal(a["actions"], b["actions"])
    assert [e["start"] for e in a["equilibria"]] == [e["start"] for e in b["equilibria"]]
    assert a["equilibria"], "no start converged"
    seen = []
    for e in a["equilibria"]:
        assert e["converged"]
        x = pa.exploitability_of_play(s, e["actions"][None], s.demand[None], grid=grid)
        assert x["nash_conv"] <= 0.01 * x["played_reward"].sum()
        assert not any(np.array_equal(e["actions"], o) for o in seen)
        seen.append(e["actions"])
    # The best has the smallest NashConv of all starts.
    assert a["nash_conv"] <= min(e["nash_conv"] for e in a["equilibria"])


def test_demand_draws_give_an_episode_axis():
    s = pm.Scenario.default(n=3, t=4)
    rng = np.random.default_rng(0)
    d = s.demand[None] * rng.uniform(0.9, 1.1, size=(3, 4))
    grid = pa.default_grid(5, 9)
    eq = pa.equilibrium(s, demand=d, grid=grid)
    assert eq["actions"].shape == (3, 4, 3, 2) and eq["prices"].shape == (3, 4)
    x = pa.exploitability_of_play(s, eq["actions"], d, grid=grid)
    np.testing.assert_allclose(x["nash_conv"], eq["nash_conv"], atol=1e-12)
    one = pa.equilibrium(s, demand=d[1], grid=grid)
    np.testing.assert_array_equal(one["actions"], eq["actions"][1])


def test_graf_duopoly_price_at_the_cap():
    s = pm.load_scenario(GRAF)  # the one-hour game, 24 identical independent hours
    assert (s.n, s.t, s.price_cap) == (2, 24, 100.0)
    eq = pa.equilibrium(s, starts=8, seed=1)
    assert eq["converged"] and np.all(eq["prices"] == 100.0)
    assert eq["equilibria"]
    for e in eq["equilibria"]:
        assert np.all(e["prices"] == 100.0)
        # In every hour one unit sells the residual 20 MW, the other 50 MW, both
        # at the cap: 1600 € and 4000 €; per unit between 24 x 1600 and 24 x 4000.
        np.testing.assert_allclose(e["profits"].sum(), 24 * 5600.0, rtol=1e-9)
        assert np.all(e["profits"] >= 24 * 1600.0 - 1e-6)
        bids = 20.0 + np.tanh(e["actions"][:, :, 1].astype(np.float64)) * 100.0
        low = bids.min(axis=1)
        assert np.all(50 * (low - 20) <= 20 * (100 - 20) + 1e-6)  # b <= 52
        np.testing.assert_allclose(sorted(e["cleared"][0]), [20.0, 50.0], rtol=1e-9)
    # Independently: no unilateral deviation on the grid gains.
    x = pa.exploitability_of_play(s, eq["actions"][None], s.demand[None], grid=pa.default_grid())
    assert x["nash_conv"] == 0.0


def test_bertrand_like_case_prices_at_cost():
    # Three 50 MW units at 10 €/MWh and one at 30; demand 40 MW: nobody is
    # pivotal. Undercutting a shared price p by one step s pays when
    # (p - s - c) D > (p - c) D / 3, so equilibrium prices are <= c + s
    # (as in tests/test_analysis.py); s = 2.5 €/MWh on the 41-point axis.
    # Full-capacity offers (withheld = 0): withholding would open other
    # equilibria, a shortage priced at the highest offer.
    s = pm.Scenario(
        [50.0] * 4,
        [10.0, 10.0, 10.0, 30.0],
        [40.0, 40.0],
        bid_penalty=0.0,
        lol_penalty=0.0,
        demand_noise=0.0,
    )
    grid = (np.zeros(1), pa.default_grid()[1])
    eq = pa.equilibrium(s, grid=grid, starts=6, seed=2)
    assert len(eq["equilibria"]) >= 2  # the random starts land somewhere else
    for e in eq["equilibria"]:
        assert e["exact_hours"] == 2
        assert np.all(e["prices"] <= 10.0 + 2.5 + 1e-6), e["prices"]
        assert np.all(e["prices"] >= 10.0 - 1e-6)


def _bids(s: pm.Scenario, actions: np.ndarray) -> np.ndarray:
    return s.costs + np.tanh(actions[..., 1].astype(np.float64)) * s.max_bid_delta


@pytest.mark.parametrize("caps", [(30.0, 20.0, 25.0), (40.0, 40.0, 15.0)])
def test_agrees_with_pure_nash_on_tiny_games(caps):
    # Full-capacity offers only (withheld = 0), one common price axis: the
    # grid game is exactly pure_nash's game, hour by hour.
    cost, delta, cap = 10.0, 40.0, 50.0
    demands = [15.0, 40.0, 60.0, 80.0]
    s = pm.Scenario(
        list(caps),
        [cost] * 3,
        demands,
        max_bid_delta=delta,
        bid_penalty=0.0,
        lol_penalty=0.0,
        demand_noise=0.0,
        price_cap=cap,
        shortage_price=cap,
    )
    a1 = np.arctanh(np.linspace(-0.5, 1.0, 7)[:-1])  # bids 10 ... 42 in steps of 6.4
    a1 = np.append(a1, 10.0)  # and 10 + 40 tanh(10), just below the cap of 50
    prices_grid = cost + np.tanh(a1.astype(np.float32).astype(np.float64)) * delta
    eq = pa.equilibrium(s, grid=(np.zeros(1), a1), starts=4, seed=5)
    assert eq["equilibria"]
    for h, d in enumerate(demands):
        want = pa.pure_nash(prices_grid, caps, [cost] * 3, d, price_cap=cap)
        assert len(want["price"]) > 0
        for e in eq["equilibria"]:
            got = _bids(s, e["actions"][h])
            dist = np.abs(want["bids"] - got).max(axis=1)
            assert dist.min() < 1e-9, (h, got, want["bids"])
            k = int(np.argmin(dist))
            assert abs(want["price"][k] - e["prices"][h]) < 1e-9


def test_refusals_are_clear_value_errors():
    s = pm.Scenario.default(n=2, t=3)
    with pytest.raises(ValueError, match="ramp"):
        pa.equilibrium(s.replace(ramp_limits=[0.5, 0.5]))
    with pytest.raises(ValueError, match="ramp"):
        pa.equilibrium(s.replace(ramp_costs=[1.0, 1.0]))
    with pytest.raises(ValueError, match="1 storage unit.*state of charge"):
        pa.equilibrium(s.replace(storage=[pm.Storage(power=1.0, energy=2.0)]))
    with pytest.raises(ValueError, match="segments"):
        pa.equilibrium(s.replace(segments=2))
    with pytest.raises(ValueError, match="work bound"):
        pa.equilibrium(s, max_moves=10**9)
    assert pa.EQUILIBRIUM_MAX_CLEARINGS == 2**32
    with pytest.raises(ValueError, match=r"demand must have shape \(T,\) or \(E, T\) with T = 3"):
        pa.equilibrium(s, demand=np.ones(4))
    with pytest.raises(ValueError, match="demand"):
        pa.equilibrium(s, demand=np.ones((0, 3)))
    with pytest.raises(ValueError, match="demand"):
        pa.equilibrium(s, demand="high")
    with pytest.raises(ValueError, match="demand"):
        pa.equilibrium(s, demand=[1.0, -1.0, 2.0])
    with pytest.raises(ValueError, match="starts"):
        pa.equilibrium(s, starts=0)
    with pytest.raises(ValueError, match="max_moves"):
        pa.equilibrium(s, max_moves=-1)
    with pytest.raises(ValueError, match="tol"):
        pa.equilibrium(s, tol=float("nan"))
    with pytest.raises(ValueError, match="withheld"):
        pa.equilibrium(s, grid=([2.0], [0.0]))


def test_max_moves_zero_keeps_the_start_and_reports_its_regret():
    s = pm.Scenario.default(n=3, t=4)
    grid = pa.default_grid(5, 9)
    eq = pa.equilibrium(s, grid=grid, max_moves=0)
    np.testing.assert_array_equal(eq["actions"], 0.0)  # truthful
    assert eq["moves"] == 0
    x = pa.exploitability_of_play(s, eq["actions"][None], s.demand[None], grid=grid)
    assert x["nash_conv"] > 0 and not eq["converged"]
    np.testing.assert_allclose(eq["nash_conv"], x["nash_conv"], atol=1e-12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(2, 4),
    t=st.integers(1, 3),
    data=st.data(),
    tie_rule=st.sampled_from(pm.TIE_RULES),
    mechanism=st.sampled_from(["uniform", "pay_as_bid"]),
)
def test_random_markets_scored_independently(n, t, data, tie_rule, mechanism):
    caps = data.draw(st.lists(st.floats(5.0, 60.0), min_size=n, max_size=n))
    costs = data.draw(st.lists(st.floats(0.0, 50.0), min_size=n, max_size=n))
    demand = data.draw(st.lists(st.floats(1.0, 1.2 * sum(caps)), min_size=t, max_size=t))
    design = data.draw(
        st.fixed_dictionaries(
            {},
            optional={
                "price_cap": st.floats(60.0, 200.0),
                "demand_bids": st.just([(45.0, 0.2), (30.0, 0.1)]),
            },
        )
    )
    s = pm.Scenario(caps, costs, demand, demand_noise=0.0, mechanism=mechanism, **design)
    grid = pa.default_grid(3, 7)
    seed = data.draw(st.integers(0, 2**32))
    eq = pa.equilibrium(s, grid=grid, tie_rule=tie_rule, starts=2, seed=seed)
    x = pa.exploitability_of_play(
        s, eq["actions"][None], np.asarray(demand)[None], grid=grid, tie_rule=tie_rule
    )
    np.testing.assert_allclose(x["regret"], eq["regret"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(x["played_reward"], eq["reward"], rtol=1e-12, atol=1e-12)
    if eq["exact_hours"] == t:
        # Exact: no agent gains more than 1e-9 max(|its hour's reward|, reward_scale).
        scale = 24.0 / (x["eur_per_day_per_reward"] * t)
        env = pm.MarketEnv(s, seed=0, tie_rule=tie_rule)
        env.reset()
        hourly = np.array([env.step(a)[1] for a in eq["actions"]], dtype=np.float64)
        bound = 1e-9 * np.maximum(np.abs(hourly) * 1.001, scale).sum()
        assert x["nash_conv"] <= bound
    assert eq["moves"] <= 100 * t
    again = pa.equilibrium(s, grid=grid, tie_rule=tie_rule, starts=2, seed=seed)
    np.testing.assert_array_equal(again["actions"], eq["actions"])


def test_a_cycling_hour_keeps_the_best_profile_seen():
    # Two units, hour 1 (14.4 MW, less than either capacity): best responses
    # keep undercutting and withholding in turn; no grid equilibrium is
    # reached in 60 moves. The other hours are exact.
    s = pm.Scenario(
        [14.6, 42.1], [18.1, 16.5], [64.3, 14.4, 35.4, 2.6], demand_noise=0.0, bid_penalty=0.0
    )
    grid = pa.default_grid(5, 9)
    short = pa.equilibrium(s, grid=grid, max_moves=6)
    long = pa.equilibrium(s, grid=grid, max_moves=60)
    assert long["moves_per_hour"][1] == 60 and long["exact_hours"] == 3
    # The long run replays the short one's first moves, then keeps going: the
    # best profile it has seen is at least as good.
    assert long["nash_conv"] <= short["nash_conv"]
    x = pa.exploitability_of_play(s, long["actions"][None], s.demand[None], grid=grid)
    np.testing.assert_allclose(x["nash_conv"], long["nash_conv"], atol=1e-12)
    assert x["regret"].sum() > 0  # not an equilibrium ...
    assert long["converged"]  # ... but within tol = 1 % of the total reward
    assert x["nash_conv"] <= 0.01 * x["played_reward"].sum()
    assert not pa.equilibrium(s, grid=grid, max_moves=60, tol=0.0)["converged"]
