"""Opponent callables of the vector env, and actions clipped in float64 with non-finite values
reported as given, on every front.

Shared helpers are in conftest.py; the stateful machines in test_stateful.py,
the writer-thread and fork tests in test_concurrency.py.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium
import numpy as np
import pytest
from conftest import (
    gym_vector,
    same,
)

import powermarket as pm

ENV_ID = "powermarket/Market-v0"
ROOT = Path(__file__).resolve().parents[1]


# --- vector-env opponent callables ----------------------------------------------------------


def test_per_agent_callables_get_one_market_at_a_time():
    sc = pm.Scenario.default(n=3, t=4)
    seen = []

    def opp(obs):
        seen.append(np.shape(obs))
        return [0.0, float(obs[0])]  # a bid that depends on the market's own demand

    venv = gym_vector(4, scenario=sc, agent=0, opponents=[None, opp, "truthful"], seed=[1, 2, 3, 4])
    obs, _ = venv.reset(seed=[1, 2, 3, 4])
    seen.clear()
    _, rew, *_ = venv.step(np.zeros((4, 2), np.float32))
    assert seen == [(4,)] * 4
    for i, s in enumerate([1, 2, 3, 4]):
        e = pm.MarketEnv(sc, seed=s)
        o, _ = e.reset()
        joint = np.zeros((3, 2), np.float32)
        joint[1] = [0.0, o[1][0]]
        assert rew[i] == e.step(joint)[1][0]


@pytest.mark.parametrize(
    "ret, exc, words",
    [
        (np.zeros(3), ValueError, ["gen_1", "market 2", "shape"]),
        (np.array([0.0, np.nan]), ValueError, ["gen_1", "market 2", "finite", "NaN"]),
        (np.array([1j, 0]), TypeError, ["gen_1", "market 2"]),
        ("ab", TypeError, ["gen_1", "market 2"]),
    ],
)
def test_bad_callable_results_name_agent_and_market_and_change_nothing(ret, exc, words):
    calls = {"n": 0}

    def opp(obs):
        calls["n"] += 1
        return ret if calls["n"] % 3 == 0 else np.zeros(2)

    venv = gym_vector(
        3, scenario=pm.Scenario.default(n=3, t=4), opponents=["random", opp, "random"], seed=1
    )
    venv.reset(seed=1)
    with pytest.raises(exc) as info:
        venv.step(np.zeros((3, 2), np.float32))
    for w in words:
        assert w in str(info.value)
    assert list(venv.vec.hours) == [0, 0, 0]


def test_batched_callable_is_validated_and_clipped():
    sc = pm.Scenario.default(n=3, t=4)
    venv = gym_vector(
        2, scenario=sc, opponents=lambda o: np.full(o.shape[:-1] + (2,), 1e300), seed=[1, 2]
    )
    venv.reset(seed=[1, 2])
    _, rew, *_ = venv.step(np.zeros((2, 2), np.float32))
    for i, s in enumerate([1, 2]):
        e = pm.MarketEnv(sc, seed=s)
        e.reset()
        joint = np.array([[0, 0], [1, 10], [1, 10]], np.float32)
        assert rew[i] == e.step(joint)[1][0]
    bad = gym_vector(2, scenario=sc, opponents=lambda o: np.full(o.shape[:-1] + (2,), np.inf))
    bad.reset(seed=0)
    with pytest.raises(ValueError, match=r"gen_1 in market 0.*inf"):
        bad.step(np.zeros((2, 2), np.float32))


# --- clipping in float64, values reported as given -----------------------------------------


def test_huge_float64_actions_are_clipped_in_every_front():
    sc = pm.Scenario.default(n=3, t=4)
    big, edge = np.array([1e300, -1e39]), np.array([1.0, -10.0], np.float32)
    single = gymnasium.make(ENV_ID, scenario=sc, seed=0).unwrapped
    single.reset(seed=0)
    ref_env = pm.MarketEnv(sc, seed=0)
    ref_env.reset()
    joint = np.zeros((3, 2), np.float32)
    joint[0] = edge
    assert single.step(big)[1] == ref_env.step(joint)[1][0]
    venv = gym_vector(2, scenario=sc, opponents="truthful", seed=[0, 1])
    venv.reset(seed=[0, 1])
    _, rew, *_ = venv.step(np.tile(big, (2, 1)))
    for i in range(2):
        e = pm.MarketEnv(sc, seed=i)
        e.reset()
        assert rew[i] == e.step(joint)[1][0]
    opp = gymnasium.make(ENV_ID, scenario=sc, seed=0, opponents=lambda o: np.tile(big, (2, 1)))
    opp = opp.unwrapped
    opp.reset(seed=0)
    e = pm.MarketEnv(sc, seed=0)
    e.reset()
    assert opp.step(edge)[1] == e.step(np.tile(edge, (3, 1)))[1][0]


def test_non_finite_values_are_reported_as_given():
    env = gymnasium.make(ENV_ID, seed=0).unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"a1 \(price action\) must be finite, got inf"):
        env.step(np.array([0.0, np.inf]))
    venv = gym_vector(2, seed=0)
    venv.reset(seed=0)
    with pytest.raises(
        ValueError, match=r"market 1: a0 \(withheld share\) must be finite, got -inf"
    ):
        venv.step(np.array([[0.0, 0.0], [-np.inf, 1.0]]))
    assert env.market.t == 0 and list(venv.vec.hours) == [0, 0]


@pytest.mark.integration  # needs stable-baselines3 (make test-integration)
def test_sb3_clips_in_float64():
    pytest.importorskip("stable_baselines3")
    from powermarket.sb3 import MarketVecEnv

    sc = pm.Scenario.default(n=2, t=4)
    env = MarketVecEnv(sc, num_markets=2, seed=0)
    env.reset()
    twin = pm.VecMarketEnv(sc, 2, seed=0)
    twin.reset()
    _, rew, _, _ = env.step(np.tile([1e300, 1e39], (4, 1)))
    want = twin.step(np.tile(np.array([1.0, 10.0], np.float32), (2, 2, 1)), copy=True)[1]
    assert same(rew, want.reshape(4))
    with pytest.raises(ValueError, match="got inf"):
        env.step(np.tile([0.0, np.inf], (4, 1)))


def test_huge_int_actions_take_the_same_path_everywhere():
    from powermarket.gymnasium import MarketSingleAgentEnv

    builtin = MarketSingleAgentEnv(pm.Scenario.default(n=5, t=24), opponents="random", seed=1)
    python = MarketSingleAgentEnv(
        pm.Scenario.default(n=5, t=24), opponents=lambda o: np.zeros((len(o), 2)), seed=1
    )
    for env in (builtin, python):
        env.reset()
        with pytest.raises(TypeError):
            env.step([0, 2**70])
        assert env.market.t == 0
