"""Input validation: scenario fields, counts, non-numeric inputs, agent names, SB3 indices,
thread misuse; each error names the argument and the value.

Shared helpers are in conftest.py; the stateful machines in test_stateful.py,
the writer-thread and fork tests in test_concurrency.py.
"""

from __future__ import annotations

import datetime
import os
import threading
import time
from pathlib import Path

import gymnasium
import numpy as np
import pytest
from conftest import (
    run_python,
    same,
)

import powermarket as pm

ENV_ID = "powermarket/Market-v0"
ROOT = Path(__file__).resolve().parents[1]


# --- scenario validation -----------------------------------------------------------------


def test_demand_noise_that_could_overflow_rewards_is_rejected():
    with pytest.raises(ValueError, match="demand_noise"):
        pm.Scenario([1e11], [1e-30], [1.0], max_bid_delta=0, demand_noise=1e10)


@pytest.mark.parametrize(
    "kwargs, field, value",
    [
        (dict(capacities=[1.0], costs=[1e308], demand=[1.0]), "costs", "1e+308"),
        (
            dict(capacities=[1.0], costs=[1.0], demand=[1.0], max_bid_delta=1e308),
            "max_bid_delta",
            "1e+308",
        ),
        (dict(capacities=[1e308, 1e308], costs=[1.0, 2.0], demand=[1.0]), "capacities", "1e+308"),
    ],
)
def test_messages_name_the_field_and_value(kwargs, field, value):
    with pytest.raises(ValueError) as info:
        pm.Scenario(**kwargs)
    msg = str(info.value)
    assert f"`{field}`" in msg, msg
    assert value in msg.replace("1e308", "1e+308"), msg
    assert "   " not in msg, msg


# --- threads --------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -1, 1025, 2**70, 1.5, "2"])
def test_num_threads_is_checked(bad):
    with pytest.raises((ValueError, TypeError), match="num_threads"):
        pm.VecMarketEnv(num_envs=2, num_threads=bad)


def test_num_threads_reports_the_value_given():
    assert pm.VecMarketEnv(num_envs=2, num_threads=7).num_threads == 7
    cores = {os.cpu_count(), len(os.sched_getaffinity(0))}
    assert pm.VecMarketEnv(num_envs=2).num_threads in cores


def test_many_envs_share_one_pool():
    proc = run_python(
        "import os, numpy as np, powermarket as pm\n"
        "def threads(): return len(os.listdir('/proc/self/task'))\n"
        "base = threads()\n"
        "envs = [pm.VecMarketEnv(pm.Scenario.default(n=5), 512, seed=i, num_threads=4)"
        " for i in range(6)]\n"
        "for e in envs:\n"
        "    e.reset(); e.step(np.zeros((512, 5, 2), np.float32))\n"
        "pm.clear_batch(np.ones((4096, 5)), np.ones((4096, 5)), np.ones(4096))\n"
        "print(threads() - base)\n"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stdout.split()[-1]) <= (os.cpu_count() or 1) + 1


# --- errors and conversions ----------------------------------------------------------------


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: pm.VecMarketEnv(num_envs=-1), "num_envs"),
        (lambda: pm.VecMarketEnv(num_envs=2, num_threads=-1), "num_threads"),
        (lambda: pm.Scenario.default(n=-1), "n"),
        (lambda: pm.Scenario.default(t=-1), "t"),
        (lambda: pm.Scenario.competitive(n=-3), "n"),
        (lambda: pm.Scenario.weekly(n=-2), "n"),
    ],
)
def test_negative_ints_are_value_errors(call, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        call()


_BAD_NUMBERS = [
    np.array([1 + 2j, 3.0]),
    np.array(["1", "2"]),
    np.array([b"1", b"2"]),
    np.array([datetime.datetime(2020, 1, 1), datetime.datetime(2020, 1, 2)]),
    np.array(["2020-01-01", "2020-01-02"], dtype="datetime64[D]"),
    np.ma.masked_array([1.0, 2.0], mask=[0, 1]),
]


@pytest.mark.parametrize("bad", _BAD_NUMBERS, ids=lambda a: str(a.dtype))
def test_non_numeric_inputs_are_type_errors(bad):
    good = np.array([1.0, 2.0])
    with pytest.raises(TypeError, match="bids"):
        pm.clear(bad, good, 1.0)
    with pytest.raises(TypeError, match="quantities"):
        pm.clear(good, bad, 1.0)
    with pytest.raises(TypeError, match="demand"):
        pm.clear_batch(good[None], good[None], bad[:1])
    with pytest.raises(TypeError, match="capacities"):
        pm.Scenario(bad, good, good)
    with pytest.raises(TypeError, match="demand"):
        pm.Scenario(good, good, bad)
    env = pm.MarketEnv(pm.Scenario.default(n=1, t=3), seed=0)
    env.reset()
    with pytest.raises(TypeError, match="actions"):
        env.step(bad.reshape(1, 2))
    venv = pm.VecMarketEnv(pm.Scenario.default(n=1, t=3), 1, seed=0)
    venv.reset()
    with pytest.raises(TypeError, match="actions"):
        venv.step(bad.reshape(1, 1, 2))
    g = gymnasium.make(ENV_ID, seed=0).unwrapped
    g.reset(seed=0)
    with pytest.raises(TypeError, match="action"):
        g.step(bad)
    assert env.t == 0 and list(venv.hours) == [0] and g.market.t == 0


@pytest.mark.parametrize("scalar", [1 + 2j, "1.0", b"1", datetime.datetime(2020, 1, 1)])
def test_non_numeric_demand_scalar_is_a_type_error(scalar):
    with pytest.raises(TypeError, match="demand"):
        pm.clear([1.0], [1.0], scalar)


def test_step_dict_duplicate_agent_names():
    env = pm.MarketEnv(pm.Scenario.default(n=2, t=3), seed=0)
    env.reset()
    acts = {"gen_0": [0.0, 0.0], "gen_1": [0.0, 0.0]}
    with pytest.raises(ValueError, match="gen_0"):
        env.step_dict(acts, ["gen_0", "gen_0"])
    assert env.t == 0


def test_one_env_from_two_threads_says_not_thread_safe():
    env = pm.VecMarketEnv(pm.Scenario.default(n=50), 4000, seed=0, num_threads=1)
    env.reset()
    acts = np.zeros((4000, 50, 2), np.float32)
    errors: list[BaseException] = []
    stop = time.monotonic() + 20

    def loop():
        while time.monotonic() < stop and not errors:
            try:
                env.step(acts)
            except RuntimeError as e:
                errors.append(e)

    threads = [threading.Thread(target=loop) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors, "no concurrent use was detected in 20 s"
    assert all("thread" in str(e) for e in errors), errors
    assert "borrowed" not in str(errors[0])


@pytest.mark.integration  # needs stable-baselines3 (make test-integration)
def test_sb3_indices_are_honoured_and_checked():
    pytest.importorskip("stable_baselines3")
    from powermarket.sb3 import MarketVecEnv

    env = MarketVecEnv(pm.Scenario.default(n=2, t=4), num_markets=3, seed=0)
    env.reset()
    env.set_attr("tag", "x", indices=[1, 4])
    assert env.get_attr("tag", indices=[1, 4]) == ["x", "x"]
    with pytest.raises(AttributeError):
        env.get_attr("tag", indices=[0])
    assert env.get_attr("market", indices=[0, 3, 5]) == [0, 1, 2]
    demand = env.env_method("episode_demand", indices=[5, 0])
    assert same(demand[0], env.vec.episode_demand(2)) and same(demand[1], env.vec.episode_demand(0))
    for bad, exc in ((6, ValueError), ([0, 99], ValueError), ([True], TypeError), ("a", TypeError)):
        with pytest.raises(exc, match="indices"):
            env.get_attr("render_mode", indices=bad)
        with pytest.raises(exc, match="indices"):
            env.set_attr("tag", 1, indices=bad)
        with pytest.raises(exc, match="indices"):
            env.env_method("episode_demand", indices=bad)
    assert env.get_attr("tag", indices=1) == ["x"]


def test_step_dict_refuses_masked_and_non_numeric_actions():
    e = pm.MarketEnv(pm.Scenario.default(n=3, t=4), seed=0)
    e.reset()
    names = ["gen_0", "gen_1", "gen_2"]
    for bad in (
        np.ma.masked_array(np.array([0.5, 1.0], np.float32), mask=[True, False]),
        np.array([1 + 1j, 0]),
        "ab",
    ):
        acts = {n: np.zeros(2, np.float32) for n in names}
        acts["gen_0"] = bad
        with pytest.raises(TypeError, match="actions"):
            e.step_dict(acts, names)
    assert e.t == 0
