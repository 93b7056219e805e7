"""Heavy integration tests (torch via Stable-Baselines3, Ray RLlib).

Run with ``make test-integration``; the default suite (``make test``) skips them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import load_example

import powermarket as pm

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_sb3_env_checker_accepts_single_learner_env():
    import gymnasium
    from stable_baselines3.common.env_checker import check_env

    env = gymnasium.make("powermarket/Market-v0", opponents="random", seed=0)
    check_env(env.unwrapped, warn=True)


def test_sb3_vecenv_contract():
    from stable_baselines3.common.vec_env import VecEnv, VecMonitor

    from powermarket.sb3 import MarketVecEnv

    scenario = pm.Scenario.default(n=3, t=4)
    venv = MarketVecEnv(scenario, num_markets=5, seed=11)
    assert isinstance(venv, VecEnv) and venv.num_envs == 15
    obs = venv.reset()
    assert obs.shape == (15, venv.observation_space.shape[0]) and obs.dtype == np.float32
    reference = pm.VecMarketEnv(scenario, num_envs=5, seed=11)
    ref_obs, _ = reference.reset()
    np.testing.assert_array_equal(obs, ref_obs.reshape(15, -1))
    actions = np.tile(np.array([[0.0, 0.5]], np.float32), (15, 1))
    for hour in range(4):
        obs, rewards, dones, infos = venv.step(actions)
        ref = reference.step(actions.reshape(5, 3, 2), copy=True)
        np.testing.assert_array_equal(rewards, ref[1].reshape(15))
        assert dones.dtype == bool and len(infos) == 15
        if hour < 3:
            assert not dones.any() and all("terminal_observation" not in i for i in infos)
        else:
            assert dones.all()
            finals = np.stack([i["terminal_observation"] for i in infos])
            np.testing.assert_array_equal(finals, ref[4]["final_obs"].reshape(15, -1))
            # same-step reset: the returned obs are the next episode's first
            np.testing.assert_array_equal(obs, ref[0].reshape(15, -1))
    assert venv.get_attr("render_mode") == [None] * 15
    assert venv.env_is_wrapped(object) == [False] * 15
    monitored = VecMonitor(venv)
    monitored.reset()
    for _ in range(4):
        _, _, _, infos = monitored.step(actions)
    assert all("episode" in i for i in infos)


def test_sb3_adapter_with_market_design():
    """Segments give every SB3 env a (K, 2) Box; PPO trains on it, and the
    adapter's rewards equal VecMarketEnv's."""
    from stable_baselines3 import PPO

    from powermarket.sb3 import MarketVecEnv

    scenario = pm.Scenario.default(n=3, t=4).replace(
        segments=3, demand_bids=[(35.0, 0.1)], mechanism="pay_as_bid", price_cap=60.0
    )
    venv = MarketVecEnv(scenario, num_markets=4, seed=5)
    assert venv.action_space.shape == (3, 2)
    ref = pm.VecMarketEnv(scenario, num_envs=4, seed=5)
    venv.reset()
    ref.reset()
    a = np.random.default_rng(0).uniform(0, 1, (12, 3, 2)).astype(np.float32)
    _, rewards, _, _ = venv.step(a)
    _, ref_rewards, *_ = ref.step(a.reshape(4, 3, 3, 2))
    np.testing.assert_array_equal(rewards, ref_rewards.reshape(-1))
    model = PPO("MlpPolicy", venv, n_steps=8, batch_size=48, seed=0)
    model.learn(total_timesteps=2 * 8 * venv.num_envs)
    action, _ = model.predict(venv.reset(), deterministic=True)
    assert action.shape == (12, 3, 2)


def _sb3_mean_reward(venv, policy, episodes: int = 2) -> float:
    """Mean reward per agent-step of ``policy(obs) -> actions`` over whole
    episodes of the adapter, from a fixed reset seed."""
    venv.seed(123)
    obs = venv.reset()
    total, steps = 0.0, 0
    for _ in range(episodes * venv.vec.horizon):
        obs, rewards, _, _ = venv.step(policy(obs))
        total += float(rewards.sum())
        steps += rewards.size
    return total / steps


def test_sb3_ppo_learns_on_the_adapter():
    """PPO on the SB3 adapter (every generator of every market a learner
    sharing one policy) ends with a higher reward than the policy it started
    from, scored on the same evaluation markets."""
    from stable_baselines3 import PPO

    from powermarket.sb3 import MarketVecEnv

    venv = MarketVecEnv(num_markets=8, seed=0)
    model = PPO("MlpPolicy", venv, n_steps=24, batch_size=120, learning_rate=1e-3, seed=0)
    greedy = lambda obs: model.predict(obs, deterministic=True)[0]  # noqa: E731
    before = _sb3_mean_reward(venv, greedy)
    model.learn(total_timesteps=40 * 24 * venv.num_envs)
    action, _ = model.predict(venv.reset(), deterministic=True)
    assert action.shape == (venv.num_envs, 2)
    after = _sb3_mean_reward(venv, greedy)
    assert after > before + 0.1 * abs(before), (before, after)


def test_train_sb3_example_smoke(capsys):
    load_example("train_sb3_ppo").main(["--smoke", "--mode", "ibr"])
    out = capsys.readouterr().out
    assert "IBR: mean episode reward per generator" in out and "gen_2" in out
    # The final policy is scored: NashConv (exploitability) and equilibrium profits.
    scored = [ln for ln in out.splitlines() if ln.startswith("distance to equilibrium")]
    assert len(scored) == 1 and "% of the learned reward" in scored[0]
    assert float(scored[0].split("= ")[1].split(" %")[0]) >= 0.0


@pytest.mark.parametrize(
    "extra",
    [[], ["--batteries", "1", "--shared"], ["--network", "two_zones", "--batteries", "1"]],
)
def test_rllib_example_smoke(extra):
    # As a user runs it: a script whose env factory Ray workers must import.
    done = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "rllib_ppo.py"),
            "--iterations",
            "2",
            "--smoke",
            "--generators",
            "2",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("iteration ")]
    assert len(lines) == 2
    steps = [float(ln.rsplit("env steps", 1)[1]) for ln in lines]
    assert 0 < steps[0] < steps[1]
