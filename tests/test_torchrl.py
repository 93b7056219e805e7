"""The TorchRL front (``powermarket.torchrl.MarketEnv``), the TorchRL PPO example
and the training benchmark. Needs the ``torchrl`` extra: run with
``make test-integration``; the default suite skips them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.integration
torch = pytest.importorskip("torch")
pytest.importorskip("torchrl")

from conftest import load_example  # noqa: E402
from tensordict import TensorDict  # noqa: E402
from torchrl.envs.utils import check_env_specs  # noqa: E402

import powermarket as pm  # noqa: E402
from powermarket.torchrl import MarketEnv  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OBS, ACTION, REWARD = ("agents", "observation"), ("agents", "action"), ("agents", "reward")


def _actions(rng: np.random.Generator, m: int, n: int) -> np.ndarray:
    return np.stack([rng.uniform(0, 0.5, (m, n)), rng.uniform(-2, 2, (m, n))], axis=-1).astype(
        np.float32
    )


@pytest.mark.parametrize("observer", ["simple", "basic", "market", "simple_v3"])
def test_check_env_specs(observer):
    env = MarketEnv(pm.Scenario.default(n=4, t=3), num_envs=6, observer=observer, seed=1)
    check_env_specs(env, break_when_any_done="both")
    check_env_specs(env, seed=5)


def test_keys_shapes_and_specs():
    env = MarketEnv(pm.Scenario.default(n=5, t=24), num_envs=7, seed=0)
    assert env.batch_size == torch.Size([7])
    assert (env.num_envs, env.num_agents, env.obs_dim, env.horizon) == (7, 5, 4, 24)
    assert env.group_map == {"agents": [f"gen_{i}" for i in range(5)]}
    assert env.full_action_spec[ACTION].shape == (7, 5, 2)
    assert env.full_reward_spec[REWARD].shape == (7, 5, 1)
    assert env.full_done_spec["done"].shape == (7, 1)
    low = env.full_action_spec[ACTION].space.low
    high = env.full_action_spec[ACTION].space.high
    assert torch.equal(low[3, 2], torch.tensor([0.0, -10.0]))
    assert torch.equal(high[6, 4], torch.tensor([1.0, 10.0]))
    vec_low, vec_high = pm.VecMarketEnv(env.scenario, num_envs=1).observation_bounds()
    obs_space = env.full_observation_spec[OBS].space
    assert np.array_equal(obs_space.low[0].numpy(), vec_low)
    assert np.array_equal(obs_space.high[5].numpy(), vec_high)
    td = env.reset()
    assert td[OBS].shape == (7, 5, 4) and td[OBS].dtype == torch.float32
    assert not td["done"].any() and td["done"].shape == (7, 1)
    td = env.rand_step(td)
    assert td["next", REWARD].shape == (7, 5, 1)
    assert env.full_action_spec[ACTION].is_in(td[ACTION])
    assert td["next", "terminated"].shape == (7, 1) and td["next", "truncated"].dtype == torch.bool


def test_rollouts_equal_vec_market_env_across_episodes():
    """Same seed and actions: the TorchRL env walks the very episodes of
    VecMarketEnv; the ending step shows the final observation and the reset
    after it the core's already-drawn next episode."""
    scenario = pm.Scenario.default(n=3, t=4)
    m, n, t = 5, 3, 4
    env = MarketEnv(scenario, num_envs=m, observer="market", seed=42)
    ref = pm.VecMarketEnv(scenario, num_envs=m, observer="market", seed=42)
    rng = np.random.default_rng(0)
    ref_obs, _ = ref.reset(copy=True)
    td = env.reset()
    np.testing.assert_array_equal(td[OBS].numpy(), ref_obs)
    ended_steps = 0
    for step in range(3 * t):
        a = _actions(rng, m, n)
        td[ACTION] = torch.from_numpy(a)
        out, td = env.step_and_maybe_reset(td)
        obs, rew, term, trunc, info = ref.step(a, copy=True)
        np.testing.assert_array_equal(out["next", REWARD].numpy()[..., 0], rew)
        np.testing.assert_array_equal(out["next", "terminated"].numpy()[:, 0], term)
        np.testing.assert_array_equal(out["next", "done"].numpy()[:, 0], term | trunc)
        if (step + 1) % t == 0:
            ended_steps += 1
            assert term.all() and info["_final_obs"].all()
            np.testing.assert_array_equal(out["next", OBS].numpy(), info["final_obs"])
            assert not np.array_equal(info["final_obs"], obs)
            assert not td["done"].any()  # reset by step_and_maybe_reset
        else:
            assert not term.any()
            np.testing.assert_array_equal(out["next", OBS].numpy(), obs)
        np.testing.assert_array_equal(td[OBS].numpy(), obs)
    assert ended_steps == 3


def test_rollout_data_is_not_overwritten_by_later_steps():
    env = MarketEnv(pm.Scenario.default(n=2, t=5), num_envs=3, seed=0)
    data = env.rollout(12, break_when_any_done=False)
    obs = data[OBS]
    # Hours advance within an episode: the data of each step is its own.
    assert not torch.equal(obs[:, 0], obs[:, 1])
    np.testing.assert_array_equal(data["next", OBS][:, :-1][~data["next", "done"][:, :-1, 0]],
                                  obs[:, 1:][~data["next", "done"][:, :-1, 0]])  # fmt: skip
    assert data["next", "done"].sum() == 3 * 2  # steps 5 and 10 of each market


def test_partial_reset_follows_the_reset_key():
    scenario = pm.Scenario.default(n=3, t=6)
    env = MarketEnv(scenario, num_envs=4, seed=7)
    ref = pm.VecMarketEnv(scenario, num_envs=4, seed=7)
    rng = np.random.default_rng(1)
    td = env.reset()
    ref.reset()
    for _ in range(2):
        a = _actions(rng, 4, 3)
        td[ACTION] = torch.from_numpy(a)
        td = env.step(td)["next"]
        ref.step(a)
    mask = np.array([True, False, True, False])
    td.set("_reset", torch.from_numpy(mask).unsqueeze(-1))
    before = td[OBS].clone()
    td = env.reset(td)
    ref_obs, _ = ref.reset(mask=mask, copy=True)
    np.testing.assert_array_equal(td[OBS].numpy()[mask], ref_obs[mask])
    np.testing.assert_array_equal(td[OBS].numpy()[~mask], before.numpy()[~mask])
    a = _actions(rng, 4, 3)
    td[ACTION] = torch.from_numpy(a)
    out = env.step(td)
    np.testing.assert_array_equal(out["next", REWARD].numpy()[..., 0], ref.step(a)[1])


def test_stepping_a_done_market_raises_and_changes_nothing():
    scenario = pm.Scenario.default(n=2, t=2)
    env = MarketEnv(scenario, num_envs=3, seed=3)
    ref = pm.VecMarketEnv(scenario, num_envs=3, seed=3)
    ref.reset()
    td = env.reset()
    zeros = np.zeros((3, 2, 2), np.float32)
    for _ in range(2):
        td[ACTION] = torch.from_numpy(zeros)
        td = env.step(td)["next"]
        ref.step(zeros)
    assert td["done"].all()
    td[ACTION] = torch.from_numpy(zeros)
    with pytest.raises(RuntimeError, match="done"):
        env.step(td)
    td = env.reset(td.exclude("done", "terminated", "truncated"))
    ref_obs = ref.step(zeros, copy=True)  # hour 0 of the next episode, as the env resumes
    td[ACTION] = torch.from_numpy(zeros)
    out = env.step(td)
    np.testing.assert_array_equal(out["next", REWARD].numpy()[..., 0], ref_obs[1])


def test_set_seed_applies_at_the_next_reset():
    scenario = pm.Scenario.default(n=3, t=4)
    env = MarketEnv(scenario, num_envs=4, seed=0)
    first = env.reset()[OBS].clone()
    ret = env.set_seed(123)
    assert isinstance(ret, int) and ret != 123  # TorchRL's next-seed convention
    seeded = env.reset()[OBS]
    ref_obs, _ = pm.VecMarketEnv(scenario, num_envs=4, seed=123).reset()
    np.testing.assert_array_equal(seeded.numpy(), ref_obs)
    assert not torch.equal(first, seeded)
    # without a new set_seed, the next reset draws new episodes
    assert not torch.equal(env.reset()[OBS], seeded)
    env.set_seed(123)
    np.testing.assert_array_equal(env.reset()[OBS].numpy(), ref_obs)


def test_bad_input_raises_value_error_and_changes_no_state():
    with pytest.raises(ValueError, match="device"):
        MarketEnv(num_envs=2, device="no-such-device")
    with pytest.raises(ValueError, match="num_envs"):
        MarketEnv(num_envs=0)
    with pytest.raises(ValueError, match="observer"):
        MarketEnv(num_envs=2, observer="nope")
    env = MarketEnv(pm.Scenario.default(n=2, t=3), num_envs=2, seed=0)
    with pytest.raises(ValueError, match="seed"):
        env.set_seed(-1)
    with pytest.raises(ValueError, match="seed"):
        env.set_seed("x")
    ref = pm.VecMarketEnv(pm.Scenario.default(n=2, t=3), num_envs=2, seed=0)
    td = env.reset()
    ref_obs, _ = ref.reset(copy=True)
    np.testing.assert_array_equal(td[OBS].numpy(), ref_obs)  # bad seeds were not kept
    bad = np.zeros((2, 2, 2), np.float32)
    bad[1, 0, 1] = np.nan
    td[ACTION] = torch.from_numpy(bad)
    with pytest.raises(ValueError, match="NaN"):
        env.step(td)
    good = np.full((2, 2, 2), 0.25, np.float32)
    td[ACTION] = torch.from_numpy(good)
    out = env.step(td)
    np.testing.assert_array_equal(out["next", REWARD].numpy()[..., 0], ref.step(good)[1])
    with pytest.raises(ValueError, match="unexpected keyword"):
        env.reset(nonsense=1)
    with pytest.raises(RuntimeError, match="before reset"):
        fresh = MarketEnv(num_envs=2)
        fresh.step(TensorDict({ACTION: torch.zeros(2, 5, 2)}, batch_size=[2]))


def test_actions_with_grad_and_other_dtypes_are_accepted():
    env = MarketEnv(pm.Scenario.default(n=2, t=3), num_envs=2, seed=0)
    ref = pm.VecMarketEnv(pm.Scenario.default(n=2, t=3), num_envs=2, seed=0)
    td = env.reset()
    ref.reset()
    a = torch.full((2, 2, 2), 0.5, dtype=torch.float64, requires_grad=True)
    td[ACTION] = a
    out = env.step(td)
    np.testing.assert_array_equal(
        out["next", REWARD].numpy()[..., 0], ref.step(np.full((2, 2, 2), 0.5, np.float32))[1]
    )


def test_torchrl_example_learns_in_a_smoke_run(capsys):
    table = load_example("train_torchrl_ppo").main(["--smoke"])
    lines = capsys.readouterr().out.strip().splitlines()
    rate = [ln for ln in lines if ln.startswith("agent-steps/s: ")]
    assert len(rate) == 1 and float(rate[0].split(": ")[1].replace(",", "")) > 0
    assert "gen_2" in table
    # The final policy is scored against its best responses and the equilibrium.
    scored = [ln for ln in lines if ln.startswith("distance to equilibrium")]
    assert len(scored) == 1 and "NashConv" in scored[0] and "% of the learned reward" in scored[0]
    share = float(scored[0].split("= ")[1].split(" %")[0])
    assert 0.0 <= share < 1000.0
    total = [ln for ln in lines if ln.split()[0] == "total"][0].split()
    assert float(total[3]) >= 0.0  # NashConv, €/day
    mean = [ln for ln in lines if ln.split()[0] == "mean"][0].split()
    learned, truthful = float(mean[1]), float(mean[2])
    # Even a tiny run learns to bid above cost: more reward than truthful bidding.
    assert learned > truthful > 0


def test_torchrl_example_mappo_agent_id_smoke(capsys):
    load_example("train_torchrl_ppo").main(["--smoke", "--mappo", "--agent-id"])
    out = capsys.readouterr().out
    assert "MAPPO" in out and "agent-steps/s: " in out and "distance to equilibrium" in out


def test_bench_train_quick():
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benches" / "bench_train.py"),
            "--quick",
            "--contenders",
            "torchrl,sb3",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| TorchRL IPPO |" in done.stdout and "| SB3 PPO (SBR) |" in done.stdout
    assert "TorchRL / SB3 PPO (SBR) agent-steps/s (median of per-round ratios)" in done.stdout


def test_market_design_specs_and_rollout():
    """Segments, demand bids, pay-as-bid and a cap: the action spec is
    [M, N, K, 2], check_env_specs passes and rewards equal VecMarketEnv's."""
    scenario = pm.Scenario.default(n=3, t=4).replace(
        segments=2, demand_bids=[(30.0, 0.2)], mechanism="pay_as_bid", price_cap=55.0
    )
    env = MarketEnv(scenario, num_envs=4, seed=3)
    assert env.full_action_spec[ACTION].shape == (4, 3, 2, 2)
    check_env_specs(env, seed=2)
    env = MarketEnv(scenario, num_envs=4, seed=3)
    ref = pm.VecMarketEnv(scenario, num_envs=4, seed=3)
    td = env.reset()
    ref.reset()
    rng = np.random.default_rng(1)
    for _ in range(6):
        a = rng.uniform([0, -2], [1, 2], (4, 3, 2, 2)).astype(np.float32)
        td[ACTION] = torch.from_numpy(a)
        out, td = env.step_and_maybe_reset(td)
        _, rew, *_ = ref.step(a, copy=True)
        np.testing.assert_array_equal(out["next", REWARD].numpy()[..., 0], rew)


def test_step_without_actions_raises_a_clear_error_and_changes_nothing():
    sc = pm.Scenario.default(n=2, t=3)
    env = MarketEnv(sc, num_envs=2, seed=0)
    ref = pm.VecMarketEnv(sc, num_envs=2, seed=0)
    td = env.reset()
    ref.reset(copy=True)
    assert ACTION not in td.keys(include_nested=True)
    for bad in (td, TensorDict({}, batch_size=[2]), TensorDict({"agents": {}}, batch_size=[2])):
        with pytest.raises(ValueError, match=r"\('agents', 'action'\)") as e:
            env.step(bad)
        assert "powermarket" in e.traceback[-1].path.as_posix()  # raised by our code
    # the failed steps changed nothing: the next good step is the reference's
    good = np.full((2, 2, 2), 0.25, np.float32)
    td[ACTION] = torch.from_numpy(good)
    out = env.step(td)
    np.testing.assert_array_equal(out["next", REWARD].numpy()[..., 0], ref.step(good)[1])
