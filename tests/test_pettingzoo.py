"""PettingZoo front: the official API and seed tests, plus dict-level behaviour.

The dict API is a thin layer over MarketEnv (STYLE.md), so its values are
compared with MarketEnv's arrays for the same seed and actions.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test
from pettingzoo.utils.conversions import parallel_to_aec

import powermarket as pm

CONFIGS = [
    pytest.param(pm.Scenario.default(n=1, t=6), "simple", id="n1-simple"),
    pytest.param(pm.Scenario.default(n=1, t=4), "basic", id="n1-basic"),
    pytest.param(pm.Scenario.default(n=2, t=24), "basic", id="n2-basic"),
    pytest.param(pm.Scenario.default(n=2, t=5), "market", id="n2-market"),
    pytest.param(pm.Scenario.default(n=5, t=24), "simple", id="n5-simple"),
    pytest.param(pm.Scenario.default(n=5, t=24), "basic", id="n5-basic"),
    pytest.param(pm.Scenario.default(n=5, t=24), "market", id="n5-market"),
    pytest.param(pm.Scenario.competitive(n=5, t=10), "simple_v3", id="n5-competitive-v3"),
    pytest.param(pm.Scenario.weekly(n=2), "simple_v2", id="n2-weekly-v2"),
]


def same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("scenario,observer", CONFIGS)
def test_parallel_api(scenario, observer) -> None:
    parallel_api_test(pm.parallel_env(scenario, observer=observer, seed=0), num_cycles=200)


@pytest.mark.parametrize("scenario,observer", CONFIGS)
def test_parallel_seed(scenario, observer) -> None:
    parallel_seed_test(
        functools.partial(pm.parallel_env, scenario, observer=observer), num_cycles=200
    )


@pytest.mark.parametrize("scenario,observer", CONFIGS)
def test_aec_api(scenario, observer) -> None:
    api_test(parallel_to_aec(pm.parallel_env(scenario, observer=observer, seed=1)), num_cycles=200)


def test_agents_and_spaces() -> None:
    env = pm.parallel_env(pm.Scenario.default(n=3, t=4), observer="basic", seed=0)
    assert env.possible_agents == ["gen_0", "gen_1", "gen_2"]
    assert env.agents == []
    assert env.num_agents == 0 and env.max_num_agents == 3
    low, high = env.market.observation_bounds()
    for i, a in enumerate(env.possible_agents):
        # spaces are cached: the same object every call
        assert env.observation_space(a) is env.observation_space(a)
        assert env.action_space(a) is env.action_space(a)
        sp = env.observation_space(a)
        assert sp.shape == (6,) and sp.dtype == np.float32
        assert same(sp.low, low[i]) and same(sp.high, high[i])
        act = env.action_space(a)
        assert same(act.low, np.array([0.0, -10.0], np.float32))
        assert same(act.high, np.array([1.0, 10.0], np.float32))
    obs, infos = env.reset(seed=1)
    assert env.agents == env.possible_agents and env.agents is not env.possible_agents
    assert set(obs) == set(infos) == set(env.possible_agents)
    for a in env.agents:
        assert obs[a] in env.observation_space(a)
        assert env.observation_space(a) is env.observation_spaces[a]
        assert env.action_space(a) is env.action_spaces[a]


def test_agents_removed_after_last_step() -> None:
    t = 4
    env = pm.parallel_env(pm.Scenario.default(n=3, t=t), seed=0)
    env.reset(seed=0)
    for h in range(t):
        assert env.agents == ["gen_0", "gen_1", "gen_2"]
        _, _, term, trunc, _ = env.step({a: [0.0, 0.0] for a in env.agents})
        assert set(term) == set(trunc) == {"gen_0", "gen_1", "gen_2"}
        assert all(v is (h == t - 1) for v in term.values())
        assert not any(trunc.values())
    assert env.agents == []
    assert env.possible_agents == ["gen_0", "gen_1", "gen_2"]
    with pytest.raises(RuntimeError):
        env.step({a: [0.0, 0.0] for a in env.possible_agents})
    env.reset()
    assert env.agents == env.possible_agents


def test_step_before_reset() -> None:
    env = pm.parallel_env(seed=0)
    with pytest.raises(RuntimeError, match="reset"):
        env.step({a: [0.0, 0.0] for a in env.possible_agents})


def _zero_actions(env) -> dict:
    return {a: np.zeros(2, np.float32) for a in env.agents}


def test_unknown_agent_key() -> None:
    env = pm.parallel_env(seed=0)
    env.reset(seed=0)
    acts = _zero_actions(env)
    acts["gen_17"] = np.zeros(2, np.float32)
    with pytest.raises(ValueError, match="gen_17"):
        env.step(acts)
    with pytest.raises(ValueError, match="player_0"):
        env.step({**_zero_actions(env), "player_0": [0.0, 0.0]})
    assert env.market.t == 0


@pytest.mark.parametrize("missing", ["gen_0", "gen_3", "gen_4"])
def test_missing_agent_key(missing: str) -> None:
    env = pm.parallel_env(seed=0)
    env.reset(seed=0)
    acts = _zero_actions(env)
    del acts[missing]
    with pytest.raises(ValueError, match=missing):
        env.step(acts)
    assert env.market.t == 0


@pytest.mark.parametrize(
    "bad",
    [
        [1.0, 2.0, 3.0],
        [1.0],
        0.5,
        np.zeros((2, 2)),
        "ab",
        None,
        [[0.0, 0.0]],
        [np.nan, 0.0],
        [0.0, np.inf],
    ],
)
def test_malformed_action_names_agent(bad) -> None:
    env = pm.parallel_env(seed=0)
    env.reset(seed=0)
    acts = _zero_actions(env)
    acts["gen_3"] = bad
    # Not numbers at all: TypeError; numbers of the wrong shape or value: ValueError.
    exc = TypeError if bad is None or isinstance(bad, str) else ValueError
    with pytest.raises(exc, match=r"gen_3\b"):
        env.step(acts)
    assert env.market.t == 0
    assert env.agents == env.possible_agents


@pytest.mark.parametrize("observer", ["simple", "basic", "market"])
@pytest.mark.parametrize("n", [1, 2, 5])
def test_dicts_equal_market_env(observer: str, n: int) -> None:
    sc = pm.Scenario.default(n=n, t=6)
    env = pm.parallel_env(sc, observer=observer, seed=3)
    ref = pm.MarketEnv(sc, observer=observer, seed=3)
    rng = np.random.default_rng(n)
    for ep in range(2):  # the second episode is reset without a seed
        obs, infos = env.reset(seed=3) if ep == 0 else env.reset()
        robs, _ = ref.reset(seed=3) if ep == 0 else ref.reset()
        assert list(obs) == env.agents
        for i, a in enumerate(env.agents):
            assert same(obs[a], robs[i])
            assert infos[a] == {}
        while env.agents:
            joint = np.stack([rng.uniform([-0.1, -11], [1.1, 11]) for _ in range(n)])
            joint = joint.astype(np.float32)
            # any order of keys, lists or arrays
            acts = {
                f"gen_{i}": joint[i].tolist() if i % 2 else joint[i] for i in reversed(range(n))
            }
            agents = list(env.agents)
            obs, rew, term, trunc, infos = env.step(acts)
            robs, rrew, rterm, rtrunc, rinfo = ref.step(joint)
            assert list(obs) == list(rew) == list(term) == list(trunc) == list(infos) == agents
            for i, a in enumerate(agents):
                assert same(obs[a], robs[i])
                assert type(rew[a]) is float
                assert rew[a] == float(rrew[i])
                assert term[a] is rterm and trunc[a] is rtrunc
                assert set(infos[a]) == {"price", "average_paid", "cleared", "demand"}
                assert infos[a]["price"] == rinfo["price"]
                assert infos[a]["demand"] == rinfo["demand"]
                assert infos[a]["cleared"] == rinfo["cleared"][i]
                assert type(infos[a]["cleared"]) is float
        assert ref.t == sc.t


def test_seed_in_constructor_and_reset() -> None:
    sc = pm.Scenario.default(n=2, t=4)
    a = pm.parallel_env(sc, seed=5)
    b = pm.parallel_env(sc, seed=6)
    oa, _ = a.reset()
    ob, _ = b.reset(seed=5)
    for k in oa:
        assert same(oa[k], ob[k])
    c = pm.parallel_env(sc, seed=6)
    oc, _ = c.reset()
    assert not np.array_equal(oc["gen_0"], oa["gen_0"])


def test_constructor_errors() -> None:
    with pytest.raises(ValueError, match="render_mode"):
        pm.parallel_env(render_mode="video")
    with pytest.raises(ValueError, match="observer"):
        pm.parallel_env(observer="nope")
    with pytest.raises(ValueError, match="tie_rule"):
        pm.parallel_env(tie_rule="nope")
    with pytest.raises(ValueError, match="seed"):
        pm.parallel_env(seed=-3)


def test_metadata_and_scenario() -> None:
    sc = pm.Scenario.default(n=2, t=3)
    env = pm.parallel_env(sc, tie_rule="index")
    assert env.metadata["name"] == "powermarket_v0"
    assert env.metadata["is_parallelizable"] is True
    assert env.scenario == sc
    assert env.market.tie_rule == "index"
    assert env.render() is None  # render_mode None
