"""The BenchMARL task (``powermarket.benchmarl``, issue 21): its env passes
TorchRL's spec checks as BenchMARL builds it, every continuous-action
algorithm runs on it, and short seeded MAPPO and IPPO runs learn. Needs the
``benchmarl`` extra (``make test-integration``)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.integration

pytest.importorskip("benchmarl")

import torch  # noqa: E402
from benchmarl.algorithms import (  # noqa: E402
    IddpgConfig,
    IppoConfig,
    IsacConfig,
    MaddpgConfig,
    MappoConfig,
    MasacConfig,
)
from benchmarl.experiment import Experiment, ExperimentConfig  # noqa: E402
from benchmarl.models.mlp import MlpConfig  # noqa: E402
from conftest import load_example  # noqa: E402
from torchrl.envs.utils import check_env_specs  # noqa: E402

import powermarket as pm  # noqa: E402
from powermarket.benchmarl import DEFAULT_CONFIG, MarketTask  # noqa: E402


def test_default_task_and_its_env_pass_the_spec_checks():
    task = MarketTask.DEFAULT.get_task()
    assert task.config == DEFAULT_CONFIG
    assert task.scenario == pm.Scenario.default().replace(price_action="linear")
    assert MarketTask.DEFAULT.get_from_yaml() == task
    assert task.supports_continuous_actions() and not task.supports_discrete_actions()
    env = task.get_env_fun(num_envs=3, continuous_actions=True, seed=0, device="cpu")()
    check_env_specs(env)
    assert task.group_map(env) == {"agents": [f"gen_{i}" for i in range(5)]}
    assert task.max_steps(env) == 24
    box = task.action_spec(env)["agents", "action"].space
    assert box.low[0].tolist() == [0.0, -1.0] and box.high[0].tolist() == [1.0, 1.0]
    assert ("agents", "observation") in task.observation_spec(env).keys(True)
    assert task.state_spec(env) is None and task.info_spec(env) is None


def test_config_keys_are_checked_and_follow_through():
    sc = pm.Scenario.default(n=3, t=6)
    task = MarketTask.DEFAULT.get_task({"scenario": sc.to_dict(), "price_action": None})
    assert task.scenario == sc  # the scenario's own price action
    task = MarketTask.DEFAULT.get_task({"n_generators": 2, "hours": 4, "observer": "market"})
    env = task.get_env_fun(num_envs=2, continuous_actions=True, seed=1, device="cpu")()
    assert env.num_agents == 2 and env.horizon == 4
    check_env_specs(env)
    with pytest.raises(ValueError, match="unknown powermarket task config keys.*colour"):
        MarketTask.DEFAULT.get_task({"colour": 1})
    with pytest.raises(ValueError, match="continuous actions only"):
        task.get_env_fun(num_envs=2, continuous_actions=False, seed=1, device="cpu")
    with pytest.raises(TypeError, match="scenario.*int"):
        MarketTask.DEFAULT.get_task({"scenario": 3})


def tiny_experiment(algo_config, seed=0, task_config=None) -> Experiment:
    ex = ExperimentConfig.get_from_yaml()
    ex.loggers, ex.create_json, ex.render, ex.evaluation = [], False, False, False
    ex.checkpoint_interval, ex.checkpoint_at_end = 0, False
    ex.max_n_iters, ex.max_n_frames = 2, None
    ex.on_policy_collected_frames_per_batch = ex.off_policy_collected_frames_per_batch = 48
    ex.on_policy_n_envs_per_worker = ex.off_policy_n_envs_per_worker = 2
    ex.on_policy_minibatch_size = ex.off_policy_train_batch_size = 24
    ex.on_policy_n_minibatch_iters, ex.off_policy_n_optimizer_steps = 1, 2
    ex.off_policy_memory_size = 1000
    model = MlpConfig(num_cells=[8], layer_class=torch.nn.Linear, activation_class=torch.nn.Tanh)
    task = MarketTask.DEFAULT.get_task(task_config or {"n_generators": 3, "hours": 24})
    return Experiment(
        task=task,
        algorithm_config=algo_config.get_from_yaml(),
        model_config=model,
        critic_model_config=model,
        seed=seed,
        config=ex,
    )


@pytest.mark.parametrize(
    "algo", [MappoConfig, IppoConfig, MaddpgConfig, IddpgConfig, MasacConfig, IsacConfig]
)
def test_every_continuous_action_algorithm_runs(algo, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exp = tiny_experiment(algo)
    exp.run()
    assert exp.total_frames == 96 and np.isfinite(exp.mean_return)


@pytest.mark.parametrize("algo", [MappoConfig, MasacConfig])
def test_storage_units_train_as_their_own_group(algo, tmp_path, monkeypatch):
    """A generator policy and a storage policy train together: two groups."""
    monkeypatch.chdir(tmp_path)
    sc = pm.Scenario.with_battery(n=3)
    task = MarketTask.DEFAULT.get_task({"scenario": sc})
    env = task.get_env_fun(num_envs=2, continuous_actions=True, seed=0, device="cpu")()
    check_env_specs(env)
    assert task.group_map(env) == {"agents": ["gen_0", "gen_1", "gen_2"], "storage": ["sto_0"]}
    box = task.action_spec(env)["storage", "action"].space
    assert box.low[0].tolist() == [-1.0, -1.0] and box.high[0].tolist() == [1.0, 1.0]
    exp = tiny_experiment(algo, task_config={"scenario": sc})
    exp.run()
    assert set(exp.group_map) == {"agents", "storage"} and np.isfinite(exp.mean_return)


@pytest.mark.parametrize("algorithm", ["mappo", "ippo"])
def test_short_seeded_runs_beat_the_random_policy(algorithm):
    ex = load_example("train_benchmarl")
    cfg = ex.Config(steps=60_000, markets=16, seed=0)
    exp, stats = ex.train(algorithm, cfg, {"n_generators": 3, "hours": 24})
    assert stats["agent_steps"] >= 60_000 - 16 * 24 * 3
    sc = exp.task.scenario
    learned = ex.evaluate(sc, ex.greedy(exp), episodes=16)
    rng = np.random.default_rng(0)
    box = pm._core.action_box("linear")
    rand = ex.evaluate(  # uniform over the action box
        sc, lambda obs: rng.uniform(*box, size=(sc.n, 2)).astype(np.float32), episodes=16
    )
    assert learned.mean() > rand.mean() + 0.2, (learned, rand)


def test_a_networked_scenario_trains(tmp_path, monkeypatch):
    """Two zones over a binding line (with a battery in the importing zone):
    the env passes the spec checks and MAPPO runs on it."""
    monkeypatch.chdir(tmp_path)
    zones = pm.Scenario.two_zones(t=6)
    sc = zones.replace(storage=[pm.Storage(power=10, energy=20)], nodes=[0, 0, 1, 1, 1])
    task = MarketTask.DEFAULT.get_task({"scenario": sc})
    env = task.get_env_fun(num_envs=2, continuous_actions=True, seed=0, device="cpu")()
    check_env_specs(env)
    assert task.group_map(env) == {"agents": [f"gen_{i}" for i in range(4)], "storage": ["sto_0"]}
    exp = tiny_experiment(MappoConfig, task_config={"scenario": sc})
    exp.run()
    assert np.isfinite(exp.mean_return)
