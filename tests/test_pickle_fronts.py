"""Pickling the Python fronts mid-episode (SubprocVecEnv and Ray ship envs by pickle)."""

from __future__ import annotations

import copy
import pickle

import gymnasium
import numpy as np
import pytest

import powermarket as pm


def _run(env, actions):
    out = []
    for a in actions:
        obs, reward, terminated, _, info = env.step(a)
        out.append((obs.copy(), reward, terminated, info["price"]))
    return out


def test_single_learner_env_with_random_opponents_pickles_mid_episode():
    env = gymnasium.make("powermarket/Market-v0", opponents="random", seed=4).unwrapped
    env.reset(seed=4)
    rng = np.random.default_rng(0)
    actions = rng.uniform([0, -10], [1, 10], size=(24, 2)).astype(np.float32)
    _run(env, actions[:7])
    clone = pickle.loads(pickle.dumps(env))
    deep = copy.deepcopy(env)
    a, b, c = _run(env, actions[7:]), _run(clone, actions[7:]), _run(deep, actions[7:])
    for x, y, z in zip(a, b, c, strict=True):
        np.testing.assert_array_equal(x[0], y[0])
        np.testing.assert_array_equal(x[0], z[0])
        assert x[1:] == y[1:] == z[1:]
    # The opponents' RNG went along: the next episode's random bids match too.
    env.reset()
    clone.reset()
    np.testing.assert_array_equal(_run(env, actions[:3])[2][0], _run(clone, actions[:3])[2][0])
    np.testing.assert_array_equal(
        env.market.episode_record()["bids"], clone.market.episode_record()["bids"]
    )


def test_parallel_env_pickles_mid_episode():
    env = pm.parallel_env(observer="market", seed=9)
    env.reset(seed=9)
    act = {a: np.array([0.1, 0.3], np.float32) for a in env.possible_agents}
    env.step(act)
    clone = pickle.loads(pickle.dumps(env))
    for _ in range(5):
        o1, r1, *_ = env.step(act)
        o2, r2, *_ = clone.step(act)
        assert r1 == r2
        for agent in o1:
            np.testing.assert_array_equal(o1[agent], o2[agent])


@pytest.mark.parametrize("kind", ["MarketEnv", "VecMarketEnv", "Opponents"])
@pytest.mark.parametrize("fmt", [None, 1, 99, "x"])
def test_a_pickle_of_another_format_is_refused_clearly(kind, fmt):
    if kind == "MarketEnv":
        obj = pm.MarketEnv(seed=1)
        obj.reset()
    elif kind == "VecMarketEnv":
        obj = pm.VecMarketEnv(num_envs=2, seed=1)
        obj.reset()
    else:
        obj = pm._core.Opponents(["truthful", "random"], 50.0, seed=1)
    fn, args = obj.__reduce__()[:2]
    state = next(a for a in args if isinstance(a, dict))
    assert state["format"] == 4
    fn(*args)  # this build's own format loads
    if fmt is None:
        del state["format"]
    else:
        state["format"] = fmt
    with pytest.raises(ValueError, match=f"cannot unpickle {kind}: its state has .*format 4"):
        fn(*args)
