"""Market design through every front: segments, demand bids, pay-as-bid, cap
and floor, in MarketEnv, VecMarketEnv, PettingZoo, Gymnasium (single and
vector), the scenario API, pickling and the analysis."""

from __future__ import annotations

import copy
import pickle

import gymnasium as gym
import numpy as np
import pytest
from conftest import PER_OFFER_RECORD_KEYS
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import parallel_api_test

import powermarket as pm
from powermarket import analysis
from powermarket._core import Opponents
from powermarket.gymnasium import MarketSingleAgentEnv, MarketVectorEnv


def design(segments=3, **kw) -> pm.Scenario:
    base = dict(
        segments=segments,
        demand_bids=[(45.0, 0.1), (25.0, 0.2)],
        mechanism="pay_as_bid",
        price_cap=60.0,
        price_floor=0.0,
    )
    base.update(kw)
    return pm.Scenario.default(n=4).replace(**base)


def test_scenario_fields_round_trip_and_defaults():
    s = design()
    assert (s.segments, s.mechanism, s.price_cap, s.price_floor) == (3, "pay_as_bid", 60.0, 0.0)
    assert s.demand_bids == [(45.0, 0.1), (25.0, 0.2)]
    assert pm.Scenario.from_dict(s.to_dict()) == s
    assert pickle.loads(pickle.dumps(s)) == s
    d = pm.Scenario.default()
    assert (d.segments, d.demand_bids, d.mechanism, d.price_cap, d.price_floor) == (
        1,
        [],
        "uniform",
        None,
        None,
    )
    e = d.euphemia_limits()
    assert (e.price_floor, e.price_cap) == (-500.0, 4000.0)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"segments": 0}, "segments.*>= 1.*0"),
        ({"segments": 5000}, "segments.*1024.*5000"),
        ({"segments": -1}, "segments"),
        ({"demand_bids": [(10.0, 1.5)]}, r"demand_bids.*bid 0.*share.*\[0, 1\].*1.5"),
        ({"demand_bids": [(10.0, 0.6), (20.0, 0.6)]}, "demand_bids.*sum to at most 1.*1.2"),
        ({"demand_bids": [(float("nan"), 0.1)]}, "demand_bids.*bid 0.*price.*finite.*NaN"),
        ({"demand_bids": [(1.0, 0.1, 3.0)]}, "demand_bids.*pairs"),
        ({"mechanism": "vickrey"}, "mechanism.*vickrey.*uniform, pay_as_bid"),
        ({"price_floor": 10.0, "price_cap": 5.0}, "price_floor.*<= price_cap.*10"),
        ({"price_cap": float("inf")}, "price_cap.*finite.*inf"),
    ],
)
def test_bad_design_fields_name_the_field_and_value(changes, match):
    with pytest.raises(ValueError, match=match):
        pm.Scenario.default().replace(**changes)


def test_shares_summing_to_one_up_to_rounding_are_accepted():
    s = pm.Scenario.default().replace(demand_bids=[(10.0, 0.1), (20.0, 0.2), (30.0, 0.7)])
    env = pm.MarketEnv(s, seed=0)
    env.reset()
    env.step(np.zeros((5, 2), np.float32))


def test_market_env_shapes_record_and_info():
    s = design()
    env = pm.MarketEnv(s, seed=1)
    env.reset()
    with pytest.raises(ValueError, match=r"actions.*\(4, 3, 2\)"):
        env.step(np.zeros((4, 2), np.float32))
    a = np.zeros((4, 3, 2), np.float32)
    a[:, :, 1] = [-1.0, 0.0, 2.0]
    _, rewards, _, _, info = env.step(a)
    rec = env.episode_record()
    for key in PER_OFFER_RECORD_KEYS:
        assert rec[key].shape == (1, 4, 3), key
    assert rec["average_paid"].shape == (1,)
    assert info["average_paid"] == rec["average_paid"][0]
    # Blocks of K_i / K MW each, prices clipped into [floor, cap].
    np.testing.assert_allclose(rec["offered"][0], np.repeat(s.capacities[:, None] / 3, 3, 1))
    assert rec["bids"].min() >= 0.0 and rec["bids"].max() <= 60.0
    # Pay-as-bid: each block is paid its own price; info["cleared"] sums the blocks.
    np.testing.assert_array_equal(rec["paid"], rec["bids"])
    np.testing.assert_allclose(info["cleared"], rec["cleared"][0].sum(axis=1))
    # A NaN names the agent.
    a[2, 1, 0] = np.nan
    with pytest.raises(ValueError, match="gen_2"):
        env.step(a)


def test_uniform_and_pay_as_bid_dispatch_equally():
    envs = [pm.MarketEnv(design(mechanism=m), seed=7) for m in ("uniform", "pay_as_bid")]
    rng = np.random.default_rng(0)
    for e in envs:
        e.reset()
    for _ in range(24):
        a = rng.uniform([0, -3], [1, 3], (4, 3, 2)).astype(np.float32)
        infos = [e.step(a)[4] for e in envs]
        assert infos[0]["price"] == infos[1]["price"]
        np.testing.assert_array_equal(infos[0]["cleared"], infos[1]["cleared"])
        # Cleared blocks are priced at most the price: pay-as-bid pays no more.
        assert infos[1]["average_paid"] <= infos[0]["average_paid"] + 1e-9


def test_vec_env_market_i_equals_market_env():
    s = design()
    vec = pm.VecMarketEnv(s, num_envs=3, seed=11)
    vec.reset()
    single = pm.MarketEnv(s, seed=11)
    single.reset()
    rng = np.random.default_rng(1)
    for _ in range(2 * s.t):
        a = rng.uniform([0, -4], [1, 4], (3, 4, 3, 2)).astype(np.float32)
        obs, rewards, term, _, info = vec.step(a)
        o1, r1, t1, _, i1 = single.step(a[0])
        np.testing.assert_array_equal(rewards[0], r1)
        assert info["price"][0] == i1["price"]
        assert info["average_paid"][0] == i1["average_paid"]
        np.testing.assert_array_equal(info["cleared"][0], i1["cleared"])
        if t1:
            single.reset()
            assert term[0]
    with pytest.raises(ValueError, match=r"actions.*\(3, 4, 3, 2\)"):
        vec.step(np.zeros((3, 4, 2), np.float32))


def test_pickle_mid_episode_with_blocks():
    env = pm.MarketEnv(design(), seed=2)
    env.reset()
    a = np.full((4, 3, 2), 0.3, np.float32)
    env.step(a)
    twin = pickle.loads(pickle.dumps(env))
    for e in (env, twin):
        e.step(a)
    for key, value in env.episode_record().items():
        np.testing.assert_array_equal(value, twin.episode_record()[key], err_msg=key)
    vec = pm.VecMarketEnv(design(), num_envs=2, seed=2)
    vec.reset()
    vec.step(np.zeros((2, 4, 3, 2), np.float32))
    vtwin = copy.deepcopy(vec)
    out = [v.step(np.ones((2, 4, 3, 2), np.float32)) for v in (vec, vtwin)]
    np.testing.assert_array_equal(out[0][1], out[1][1])
    np.testing.assert_array_equal(out[0][4]["average_paid"], out[1][4]["average_paid"])


def test_pettingzoo_api_with_blocks():
    env = pm.parallel_env(design(), seed=0)
    assert env.action_space("gen_0").shape == (3, 2)
    parallel_api_test(env, num_cycles=60)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"gen_1.*\(3, 2\)"):
        env.step({a: np.zeros((3, 2) if a != "gen_1" else (2,), np.float32) for a in env.agents})
    # The dict step equals the arrays step.
    arrays = pm.MarketEnv(design(), seed=0)
    arrays.reset(seed=0)
    env.reset(seed=0)
    act = np.random.default_rng(3).uniform(0, 1, (4, 3, 2)).astype(np.float32)
    _, rewards, _, _, infos = env.step({f"gen_{i}": act[i] for i in range(4)})
    _, r, _, _, info = arrays.step(act)
    assert [rewards[f"gen_{i}"] for i in range(4)] == [float(x) for x in r]
    assert infos["gen_0"]["average_paid"] == info["average_paid"]


def test_gymnasium_single_and_vector_with_blocks():
    env = MarketSingleAgentEnv(design(), agent=1, opponents="random", seed=0)
    assert env.action_space.shape == (3, 2)
    check_env(env, skip_render_check=True)
    env.reset(seed=4)
    obs, reward, *_ = env.step(env.action_space.sample())
    assert np.isfinite(reward)
    # Opponent callables return one (K, 2) block per agent.
    calls = []

    def opp(o):
        calls.append(o.shape)
        return np.zeros((3, 2))

    env = MarketSingleAgentEnv(design(), opponents=[opp] * 3, seed=0)
    env.reset()
    env.step(np.zeros((3, 2)))
    assert calls
    bad = MarketSingleAgentEnv(design(), opponents=[lambda o: np.zeros(2)] * 3, seed=0)
    bad.reset()
    with pytest.raises(ValueError, match=r"\(3, 2\)"):
        bad.step(np.zeros((3, 2)))
    venv = gym.make_vec(
        "powermarket/Market-v0",
        num_envs=3,
        vectorization_mode="vector_entry_point",
        scenario=design(),
        seed=0,
    )
    assert venv.single_action_space.shape == (3, 2)
    venv.reset(seed=0)
    _, rewards, _, _, info = venv.step(venv.action_space.sample())
    assert rewards.shape == (3,) and info["average_paid"].shape == (3,)
    assert isinstance(venv.unwrapped, MarketVectorEnv)


def test_builtin_opponents_fill_every_block():
    ops = Opponents(["truthful", ("constant", 0.5, 1.0), "random"], 50.0, seed=0)
    a = np.full((3, 4, 2), 9.0, np.float32)
    ops.fill(a, 0)
    np.testing.assert_array_equal(a[0], 9.0)  # skipped
    np.testing.assert_array_equal(a[1], [[0.5, 1.0]] * 4)
    assert len({tuple(r) for r in a[2]}) == 4  # one draw per block
    batch = Opponents(["truthful", "random"], 50.0, seed=0, num_markets=2)
    b = np.zeros((2, 2, 3, 2), np.float32)
    batch.fill_batch(b, 0)
    assert np.all(b[:, 1, :, 0] >= 0) and len(np.unique(b[:, 1])) > 2


def test_demand_bids_respond_to_price():
    """Expensive offers: the bid priced below them is served only in part."""
    s = pm.Scenario([50.0, 50.0], [10.0, 80.0], [60.0] * 4, demand_noise=0.0, max_bid_delta=1.0)
    inelastic = pm.MarketEnv(s, seed=0)
    elastic = pm.MarketEnv(s.replace(demand_bids=[(50.0, 0.25)]), seed=0)
    for e in (inelastic, elastic):
        e.reset()
    truthful = np.zeros((2, 2), np.float32)
    p0 = inelastic.step(truthful)[4]
    p1 = elastic.step(truthful)[4]
    assert p0["price"] == 80.0  # 60 MW needs the 80 €/MWh unit
    # At 50 €/MWh the cheap 50 MW meet the 45 MW inelastic part; the 15 MW
    # bid at 50 is served with the 5 MW left, and the 80 €/MWh unit stays out.
    assert p1["price"] == 50.0
    assert p1["cleared"].tolist() == [50.0, 0.0]


def test_cap_prices_a_shortage():
    s = pm.Scenario([10.0], [20.0], [30.0], demand_noise=0.0, price_cap=300.0, shortage_price=999.0)
    env = pm.MarketEnv(s, seed=0)
    env.reset()
    _, _, _, _, info = env.step(np.array([[0.0, 10.0]], np.float32))
    assert info["price"] == 300.0 and info["shortfall"] == pytest.approx(20.0)


def test_analysis_supports_design_with_one_block():
    s = design(segments=1)
    grid = (np.linspace(0, 1, 3), np.linspace(-2, 2, 5))
    out = analysis.exploitability(s, lambda o: np.zeros((4, 2), np.float32), grid=grid)
    env = pm.MarketEnv(s, seed=0)
    env.reset()
    total = np.zeros(4)
    for _ in range(s.t):
        total += env.step(np.zeros((4, 2), np.float32))[1]
    np.testing.assert_allclose(out["played_reward"], total, rtol=1e-5)
    assert np.all(out["regret"] >= 0)
    with pytest.raises(ValueError, match="segments=1.*segments=3"):
        analysis.exploitability(design(), lambda o: np.zeros((4, 3, 2)), grid=grid)
