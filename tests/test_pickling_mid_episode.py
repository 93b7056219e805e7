"""Every front pickles and deep-copies mid-episode, bit-exact; the spec is in the repository.

Shared helpers are in conftest.py; the stateful machines in test_stateful.py,
the writer-thread and fork tests in test_concurrency.py.
"""

from __future__ import annotations

import copy
import pickle
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    assert_same_step,
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


# --- pickling -------------------------------------------------------------------------------


def _clone(obj, how):
    return pickle.loads(pickle.dumps(obj)) if how == "pickle" else copy.deepcopy(obj)


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_vec_market_env_pickles_mid_episode(how):
    sc = pm.Scenario.default(n=3, t=5)
    env = pm.VecMarketEnv(sc, 4, seed=2, observer="market", tie_rule="index")
    env.reset()
    rng = np.random.default_rng(0)
    for _ in range(3):
        env.step(vec_actions(rng, 4, 3))
    clone = _clone(env, how)
    assert (clone.observer, clone.tie_rule, clone.num_envs) == ("market", "index", 4)
    for _ in range(12):  # across autoresets: the RNGs went along
        a = vec_actions(rng, 4, 3)
        assert_same_step(step_copy(env, a), step_copy(clone, a))
    env.reset()
    clone.reset()
    assert all(
        same(x, y) for x, y in zip(episode_demands(env, 4), episode_demands(clone, 4), strict=True)
    )


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_gymnasium_vector_env_pickles_mid_episode(how):
    env = gym_vector(3, scenario=pm.Scenario.default(n=3, t=4), seed=5)
    env.reset(seed=5)
    vector_trace(env, 3)
    clone = _clone(env, how)
    assert_same_traces(vector_trace(env, 9), vector_trace(clone, 9))


@pytest.mark.integration  # needs stable-baselines3 (make test-integration)
@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_sb3_adapter_pickles_mid_episode(how):
    pytest.importorskip("stable_baselines3")
    from powermarket.sb3 import MarketVecEnv

    env = MarketVecEnv(pm.Scenario.default(n=2, t=4), num_markets=2, seed=1)
    env.reset()
    acts = np.tile([0.1, 0.4], (4, 1)).astype(np.float32)
    env.step(acts)
    clone = _clone(env, how)
    for _ in range(6):
        x, y = env.step(acts), clone.step(acts)
        assert same(x[0], y[0]) and same(x[1], y[1]) and same(x[2], y[2])


# --- the spec is in the repository ----------------------------------------------------------


def test_no_reference_to_a_design_file_outside_the_repository():
    assert (ROOT / "docs" / "semantics.md").is_file()
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    offenders = []
    for name in files:
        path = ROOT / name
        if name == "tests/test_pickling_mid_episode.py":
            continue
        if path.suffix not in {".py", ".rs", ".md", ".toml", ".pyi", ""} or not path.is_file():
            continue
        text = path.read_text(errors="ignore")
        if re.search(r"DESIGN(\.md)?\b", text):
            offenders.append(name)
    assert not offenders, offenders
    assert "docs/semantics.md" in (ROOT / "README.md").read_text()
