"""Availability, ramps and the advanced week through every front (issue 10).

Each front is compared bit for bit with ``MarketEnv`` (itself checked against
the NumPy reference in ``test_env_reference.py``), on scenarios with
availability noise, so that the per-episode load-factor draw, the ramp state
and the ``market_v2`` observer are exercised everywhere.
"""

from __future__ import annotations

import copy
import functools
import pickle

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import parallel_api_test, parallel_seed_test

import powermarket as pm
from powermarket import analysis

ENV_ID = "powermarket/Market-v0"


def same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def small_limited(noise: float = 0.2) -> pm.Scenario:
    """Three plants, six hours: a variable plant, binding ramps, ramp costs."""
    lf = np.ones((6, 3))
    lf[:, 0] = [0.9, 0.4, 0.0, 0.7, 1.0, 0.2]
    return pm.Scenario(
        [30.0, 20.0, 25.0],
        [0.0, 20.0, 35.0],
        [40.0, 55.0, 30.0, 60.0, 45.0, 50.0],
        availability=lf,
        availability_noise=noise,
        ramp_limits=[0.5, 0.2, 0.3],
        ramp_costs=[0.0, 1.0, 2.0],
    )


SCENARIOS = {
    "small": small_limited(),
    "advanced_noisy": pm.Scenario.advanced().replace(availability_noise=0.1),
}


def actions(rng, shape) -> np.ndarray:
    a0 = rng.uniform(-0.2, 1.2, shape)
    a1 = rng.uniform(-3, 3, shape)
    return np.stack([a0, a1], axis=-1).astype(np.float32)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_vec_env_equals_market_envs_and_pickles(name):
    sc = SCENARIOS[name]
    m, seed = 3, 40
    vec = pm.VecMarketEnv(
        sc, num_envs=m, observer="market_v2", seed=[seed + i for i in range(m)], num_threads=2
    )
    refs = [pm.MarketEnv(sc, observer="market_v2", seed=seed + i) for i in range(m)]
    obs, _ = vec.reset()
    for i, e in enumerate(refs):
        assert same(obs[i], e.reset()[0])
        assert same(vec.episode_availability(i), e.availability)
    assert not same(vec.episode_availability(0), vec.episode_availability(1))
    rng = np.random.default_rng(1)
    steps = 2 * sc.t + 3 if sc.t < 24 else 30
    for k in range(steps):
        if k == steps // 2:
            vec = pickle.loads(pickle.dumps(vec))
            refs = [copy.deepcopy(e) for e in refs]
        a = actions(rng, (m, sc.n))
        o, r, te, _, info = vec.step(a)
        for i, e in enumerate(refs):
            ro, rr, rte, _, rinfo = e.step(a[i])
            if rte:
                assert same(info["final_obs"][i], ro)
                ro, _ = e.reset()
            assert same(o[i], ro) and same(r[i], rr) and te[i] == rte
            assert same(info["cleared"][i], rinfo["cleared"])
            assert same(vec.episode_availability(i), e.availability)


def test_market_env_pickles_mid_episode_with_noise():
    env = pm.MarketEnv(small_limited(), observer="market_v2", seed=3)
    env.reset()
    rng = np.random.default_rng(0)
    env.step(actions(rng, 3))
    clone = pickle.loads(pickle.dumps(env))
    assert same(clone.availability, env.availability)
    for _ in range(20):
        a = actions(rng, 3)
        x, y = env.step(a), clone.step(a)
        assert all(same(p, q) for p, q in zip(x[:2], y[:2], strict=True))
        if x[2]:
            x, y = env.reset(), clone.reset()
            assert same(env.availability, clone.availability)


def test_pettingzoo_conformance_and_equivalence():
    sc = SCENARIOS["small"]
    parallel_api_test(pm.parallel_env(sc, observer="market_v2", seed=0), num_cycles=50)
    parallel_seed_test(functools.partial(pm.parallel_env, sc, observer="market_v2"), num_cycles=50)
    env = pm.parallel_env(sc, observer="market_v2", seed=5)
    ref = pm.MarketEnv(sc, observer="market_v2", seed=5)
    obs, _ = env.reset(seed=5)
    robs, _ = ref.reset(seed=5)
    rng = np.random.default_rng(2)
    while env.agents:
        joint = actions(rng, 3)
        obs, rew, *_ = env.step({f"gen_{i}": joint[i] for i in range(3)})
        robs, rrew, *_ = ref.step(joint)
        for i in range(3):
            assert same(obs[f"gen_{i}"], robs[i]) and rew[f"gen_{i}"] == float(rrew[i])


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_gymnasium_single_check_env_and_equivalence(name):
    sc = SCENARIOS[name]
    env = gym.make(ENV_ID, scenario=sc, observer="market_v2", agent=1, seed=0)
    check_env(env.unwrapped, skip_render_check=True)
    env = gym.make(ENV_ID, scenario=sc, observer="market_v2", agent=1, seed=9)
    ref = pm.MarketEnv(sc, observer="market_v2", seed=9)
    obs, _ = env.reset(seed=9)
    robs, _ = ref.reset(seed=9)
    assert same(obs, robs[1])
    rng = np.random.default_rng(3)
    for _ in range(min(sc.t, 30)):
        a = actions(rng, 1)[0]
        obs, reward, *_ = env.step(a)
        joint = np.zeros((sc.n, 2), np.float32)  # truthful opponents
        joint[1] = np.clip(a, [0, -10], [1, 10])
        robs, rrew, *_ = ref.step(joint)
        assert same(obs, robs[1]) and reward == float(rrew[1])
        assert obs in env.observation_space


def test_gymnasium_vector_matches_singles():
    sc = SCENARIOS["small"]
    m, s = 3, 70
    venv = gym.make_vec(
        ENV_ID,
        num_envs=m,
        vectorization_mode="vector_entry_point",
        scenario=sc,
        agent=2,
        observer="market_v2",
        seed=s,
    )
    singles = [
        gym.make(ENV_ID, scenario=sc, agent=2, observer="market_v2", seed=s + i) for i in range(m)
    ]
    obs, _ = venv.reset(seed=[s + i for i in range(m)])
    for i, e in enumerate(singles):
        assert same(obs[i], e.reset(seed=s + i)[0])
    rng = np.random.default_rng(4)
    for _ in range(2 * sc.t):
        a = actions(rng, m)
        obs, rew, term, _, info = venv.step(a)
        for i, e in enumerate(singles):
            o, r, te, _, _ = e.step(a[i])
            if te:
                assert same(info["final_obs"][i], o)
                o, _ = e.reset()
            assert same(obs[i], o) and rew[i] == r


@pytest.mark.integration  # needs stable-baselines3 (make test-integration)
def test_sb3_adapter_equals_vec_env():
    pytest.importorskip("stable_baselines3")
    from powermarket.sb3 import MarketVecEnv

    sc = SCENARIOS["small"]
    env = MarketVecEnv(sc, num_markets=2, observer="market_v2", seed=8)
    vec = pm.VecMarketEnv(sc, num_envs=2, observer="market_v2", seed=8)
    first = env.reset()
    assert same(first, vec.reset()[0].reshape(first.shape))
    rng = np.random.default_rng(5)
    for _ in range(8):
        a = actions(rng, (2, 3))
        x = env.step(a.reshape(6, 2))
        y = vec.step(a)
        assert same(x[0], y[0].reshape(x[0].shape)) and same(x[1], y[1].reshape(x[1].shape))


# --- analysis with availability and ramps -------------------------------------------------


def test_competitive_benchmark_is_the_env_with_truthful_play():
    """analysis.competitive = the env's outcome when every agent plays [0, 0]
    on the noise-free profile (availability and ramp windows included)."""
    for sc in (small_limited(0.0).replace(demand_noise=0.0), pm.Scenario.advanced()):
        sc = sc.replace(demand_noise=0.0, bid_penalty=0.0, lol_penalty=0.0)
        env = pm.MarketEnv(sc, seed=0)
        env.reset()
        for _ in range(sc.t):
            env.step(np.zeros((sc.n, 2), np.float32))
        rec = env.episode_record()
        c = analysis.competitive(sc)
        np.testing.assert_array_equal(c["price"], rec["prices"])
        np.testing.assert_array_equal(c["cleared"], rec["cleared"])
        # Profit less ramp cost = reward / reward scale (no penalties here).
        scale = 20.0 / (sc.demand_scale * sc.cost_scale * sc.t)
        np.testing.assert_allclose(c["profit"] * scale, rec["rewards"], rtol=1e-5, atol=1e-7)


def test_market_power_uses_available_capacity():
    sc = pm.Scenario.advanced()
    env = pm.MarketEnv(sc, seed=0)
    env.reset()
    for _ in range(24):
        env.step(np.zeros((5, 2), np.float32))
    rec = env.episode_record()
    mp = analysis.market_power(sc, rec)
    avail = sc.capacities * sc.availability[:24]
    want = (avail.sum(axis=1, keepdims=True) - avail) / rec["demand"][:, None]
    np.testing.assert_allclose(mp["rsi"], want, rtol=1e-12)
    # Without the record's availability: the scenario's load factors, the same here.
    no_lf = {k: v for k, v in rec.items() if k != "availability"}
    np.testing.assert_allclose(analysis.market_power(sc, no_lf)["rsi"], want, rtol=1e-12)


@pytest.mark.parametrize("noise", [0.0, 0.2])
def test_exploitability_with_ramps_matches_env_and_is_flagged(noise):
    sc = small_limited(noise)
    rng = np.random.default_rng(6)

    def policy(obs):
        return actions(rng, obs.shape[0])

    grid = analysis.default_grid(5, 7)
    x = analysis.exploitability(sc, policy, grid=grid, seed=3, episodes=2, observer="market_v2")
    assert x["lower_bound"] is True
    assert np.all(x["regret"] >= 0)
    # Played reward = the env's rewards summed (the played path is replayed
    # with ramp windows, ramp costs and the realised load factors).
    env = pm.MarketEnv(sc, observer="market_v2", seed=3)
    rng = np.random.default_rng(6)
    totals = np.zeros(3)
    for _ in range(2):
        obs, _ = env.reset()
        for _ in range(sc.t):
            obs, r, *_ = env.step(policy(obs))
            totals += r
    np.testing.assert_allclose(x["played_reward"], totals / 2, rtol=1e-5, atol=1e-6)
    # Without ramps the flag is off.
    plain = sc.replace(ramp_limits=None, ramp_costs=None)
    y = analysis.exploitability(plain, policy, grid=grid, seed=3)
    assert y["lower_bound"] is False


def test_exploitability_of_play_checks_availability():
    sc = small_limited(0.0)
    a = np.zeros((1, sc.t, sc.n, 2), np.float32)
    d = sc.demand[None, :]
    grid = analysis.default_grid(3, 3)
    with pytest.raises(ValueError, match="availability"):
        analysis.exploitability_of_play(sc, a, d, grid=grid, availability=np.ones((1, 2, 3)))
    with pytest.raises(ValueError, match="availability"):
        analysis.exploitability_of_play(
            sc, a, d, grid=grid, availability=np.full((1, sc.t, sc.n), 2.0)
        )
    base = analysis.exploitability_of_play(sc, a, d, grid=grid)
    given = analysis.exploitability_of_play(sc, a, d, grid=grid, availability=sc.availability[None])
    np.testing.assert_array_equal(base["regret"], given["regret"])
