"""A failed call changes no state; reset masks; seeds and RNG streams of every front.

Shared helpers are in conftest.py; the stateful machines in test_stateful.py,
the writer-thread and fork tests in test_concurrency.py.
"""

from __future__ import annotations

import copy
from pathlib import Path

import gymnasium
import numpy as np
import pytest
from conftest import (
    assert_same_traces,
    episode_demands,
    gym_vector,
    same,
    step_copy,
    vec_actions,
    vector_trace,
)

import powermarket as pm

ENV_ID = "powermarket/Market-v0"
ROOT = Path(__file__).resolve().parents[1]


# --- failed calls change no state ---------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"seed": 9, "options": {"reset_mask": np.ones(5, bool)}},
        {"seed": 9, "options": {"reset_mask": np.array(["a", "b", "c"])}},
        {"seed": 9, "options": {"unknown": 1}},
        {"seed": 2**64},
        {"seed": -1},
        {"seed": [1, 2]},
        {"seed": [1, 2, 2**64]},
        {"seed": True},
    ],
)
def test_failed_vector_reset_reseeds_nothing(bad):
    env, twin = gym_vector(seed=1), gym_vector(seed=1)
    env.reset(seed=4)
    twin.reset(seed=4)
    vector_trace(env, 5)
    vector_trace(twin, 5)
    rng_state = copy.deepcopy(env.np_random.bit_generator.state)
    with pytest.raises((ValueError, TypeError)):
        env.reset(**bad)
    assert env.np_random.bit_generator.state == rng_state
    assert_same_traces(vector_trace(env), vector_trace(twin))
    env.reset()
    twin.reset()
    assert_same_traces(vector_trace(env), vector_trace(twin))


@pytest.mark.parametrize("seed", [2**64, -1, 1.5, "3"])
def test_failed_single_reset_reseeds_nothing(seed):
    env = gymnasium.make(ENV_ID, opponents="random", seed=2).unwrapped
    twin = gymnasium.make(ENV_ID, opponents="random", seed=2).unwrapped
    env.reset(seed=2)
    twin.reset(seed=2)
    env.step([0.1, 0.2])
    twin.step([0.1, 0.2])
    state = copy.deepcopy(env.np_random.bit_generator.state)
    with pytest.raises((ValueError, TypeError)):
        env.reset(seed=seed)
    assert env.np_random.bit_generator.state == state
    for _ in range(40):
        if env.market.t == env.market.horizon:
            env.reset()
            twin.reset()
        x, y = env.step([0.3, -0.5]), twin.step([0.3, -0.5])
        assert same(x[0], y[0]) and x[1:4] == y[1:4] and x[4]["price"] == y[4]["price"]


@pytest.mark.integration  # needs stable-baselines3 (make test-integration)
def test_sb3_seed_is_checked_at_call_time_and_step_wait_never_resends():
    pytest.importorskip("stable_baselines3")
    from powermarket.sb3 import MarketVecEnv

    sc = pm.Scenario.default(n=2, t=4)
    env = MarketVecEnv(sc, num_markets=2, seed=0)
    for bad, exc in ((2**64, ValueError), (-1, ValueError), (1.5, ValueError), (True, TypeError)):
        with pytest.raises(exc, match="seed"):
            env.seed(bad)
    env.reset()  # still works: the bad seeds were not kept
    twin = pm.VecMarketEnv(sc, 2, seed=0)
    twin.reset()
    acts = np.full((4, 2), 0.25, np.float32)
    env.step_async(acts)
    env.step_wait()
    twin.step(acts.reshape(2, 2, 2))
    with pytest.raises(RuntimeError, match="step_async"):
        env.step_wait()  # the consumed actions are not sent again
    assert same(env.vec.hours, twin.hours)
    fresh = MarketVecEnv(sc, num_markets=2, seed=0)
    fresh.step_async(acts)
    with pytest.raises(RuntimeError, match="reset"):
        fresh.step_wait()
    with pytest.raises(RuntimeError, match="step_async"):
        fresh.step_wait()


# --- masks --------------------------------------------------------------------------------


@pytest.mark.parametrize("first", [0.5, 256, np.nan, 1e10, -1, True])
def test_any_nonzero_mask_value_resets(first):
    env = pm.VecMarketEnv(pm.Scenario.default(n=2, t=5), 3, seed=0)
    env.reset()
    env.step(np.zeros((3, 2, 2), np.float32))
    env.reset(mask=np.array([first, 0, 0]))
    assert list(env.hours) == [0, 1, 1]


@pytest.mark.parametrize(
    "mask, exc",
    [
        (np.array(["a", "", ""]), TypeError),
        (np.array([1 + 1j, 0, 0]), TypeError),
        (np.array([b"x", b"", b""]), TypeError),
        (np.ma.masked_array([1, 0, 0], mask=[0, 1, 0]), TypeError),
        (np.array([1, 0]), ValueError),
        (np.ones((3, 1)), ValueError),
    ],
)
def test_bad_masks_name_mask_and_change_nothing(mask, exc):
    env = pm.VecMarketEnv(pm.Scenario.default(n=2, t=5), 3, seed=0)
    env.reset()
    env.step(np.zeros((3, 2, 2), np.float32))
    with pytest.raises(exc, match="mask"):
        env.reset(seed=1, mask=mask)
    assert list(env.hours) == [1, 1, 1]


# --- seeds and streams ----------------------------------------------------------------------


def test_market_streams():
    sc = pm.Scenario.default(n=3, t=24)
    m = 4
    v0, v1 = pm.VecMarketEnv(sc, m, seed=0), pm.VecMarketEnv(sc, m, seed=1)
    v0.reset()
    v1.reset()
    single = pm.MarketEnv(sc, seed=0)
    single.reset()
    assert same(v0.episode_demand(0), single.demand)
    # Runs seeded 0 and 1 share no demand stream.
    for a in episode_demands(v0, m):
        for b in episode_demands(v1, m):
            assert not np.array_equal(a, b)
    # Market i is no longer MarketEnv(seed=s+i).
    for i in range(1, m):
        e = pm.MarketEnv(sc, seed=i)
        e.reset()
        assert not np.array_equal(v0.episode_demand(i), e.demand)


@pytest.mark.parametrize("where", ["constructor", "reset"])
def test_seed_lists_give_market_i_the_single_env_seeded_seed_i(where):
    sc = pm.Scenario.default(n=3, t=6)
    seeds = [5, 99, 7, 2**64 - 1]
    if where == "constructor":
        v = pm.VecMarketEnv(sc, 4, seed=seeds)
        obs, _ = v.reset()
    else:
        v = pm.VecMarketEnv(sc, 4, seed=123)
        v.reset()
        obs, _ = v.reset(seed=seeds)
    obs = obs.copy()
    singles = [pm.MarketEnv(sc, seed=s) for s in seeds]
    for i, e in enumerate(singles):
        o, _ = e.reset()
        assert same(obs[i], o)
    rng = np.random.default_rng(2)
    for _ in range(15):  # across the autoreset: each market continues its own stream
        a = vec_actions(rng, 4, 3)
        out = step_copy(v, a)
        for i, e in enumerate(singles):
            o, r, te, _, info = e.step(a[i])
            assert same(out[1][i], r) and out[4]["price"][i] == info["price"]
            if te:
                o, _ = e.reset()
            assert same(out[0][i], o)


def test_masked_reseed_uses_stream_i():
    sc = pm.Scenario.default(n=2, t=6)
    v = pm.VecMarketEnv(sc, 3, seed=50)
    v.reset()
    v.reset(seed=8, mask=np.array([False, True, True]))
    fresh = pm.VecMarketEnv(sc, 3, seed=8)
    fresh.reset()
    old = pm.VecMarketEnv(sc, 3, seed=50)
    old.reset()
    assert same(v.episode_demand(0), old.episode_demand(0))
    for i in (1, 2):
        assert same(v.episode_demand(i), fresh.episode_demand(i))


@pytest.mark.parametrize(
    "seed, exc",
    [
        (-1, ValueError),
        (2**64, ValueError),
        (1.5, ValueError),
        ("1", ValueError),
        (True, TypeError),
    ],
)
def test_bad_seeds(seed, exc):
    with pytest.raises(exc, match="seed"):
        pm.VecMarketEnv(num_envs=2, seed=seed)
    with pytest.raises(exc, match="seed"):
        pm.MarketEnv(seed=seed)
    with pytest.raises(exc, match="seed"):
        pm.VecMarketEnv(num_envs=2, seed=[0, seed])


def test_gymnasium_vector_seed_list_matches_single_envs_with_random_opponents():
    sc = pm.Scenario.default(n=3, t=4)
    seeds = [5, 99, 7]
    venv = gym_vector(scenario=sc, agent=1, seed=0)
    obs, _ = venv.reset(seed=seeds)
    singles = [
        gymnasium.make(ENV_ID, scenario=sc, agent=1, opponents="random").unwrapped for _ in seeds
    ]
    for i, (e, s) in enumerate(zip(singles, seeds, strict=True)):
        o, _ = e.reset(seed=s)
        assert same(obs[i], o)
    for h in range(10):
        acts = np.full((3, 2), [0.1, 0.2 * h - 1], np.float32)
        obs, rew, term, _, info = venv.step(acts)
        for i, e in enumerate(singles):
            o, r, te, _, inf = e.step(acts[i])
            assert rew[i] == r and info["price"][i] == inf["price"]
            if te:
                o, _ = e.reset()
            assert same(obs[i], o)


def test_gymnasium_vector_market_0_equals_single_env_with_the_same_int_seed():
    sc = pm.Scenario.default(n=3, t=4)
    venv = gym_vector(scenario=sc, seed=11)
    single = gymnasium.make(ENV_ID, scenario=sc, opponents="random", seed=11).unwrapped
    obs, _ = venv.reset(seed=11)
    o, _ = single.reset(seed=11)
    assert same(obs[0], o)
    for _ in range(6):
        _, rew, *_, info = venv.step(np.zeros((3, 2), np.float32))
        _, r, te, _, inf = single.step([0.0, 0.0])
        assert rew[0] == r and info["price"][0] == inf["price"]
        if te:
            single.reset()


def test_opponent_draws_of_a_market_do_not_depend_on_num_envs():
    sc = pm.Scenario.default(n=3, t=5)
    small, large = gym_vector(2, scenario=sc, seed=3), gym_vector(6, scenario=sc, seed=3)
    small.reset(seed=3)
    large.reset(seed=3)
    for _ in range(12):
        _, r2, *_, i2 = small.step(np.zeros((2, 2), np.float32))
        _, r6, *_, i6 = large.step(np.zeros((6, 2), np.float32))
        assert same(r2, r6[:2]) and same(i2["price"], i6["price"][:2])


def test_numpy_bool_seed_is_a_type_error():
    for make in (lambda: pm.MarketEnv(seed=np.True_), lambda: pm.VecMarketEnv(seed=np.True_)):
        with pytest.raises(TypeError, match="seed"):
            make()
