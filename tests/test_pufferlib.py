"""The native PufferLib adapter (``powermarket.pufferlib``, issue 21): its
transitions are VecMarketEnv's bit for bit, it plugs into
``pufferlib.vector.make`` and ``pufferl.PuffeRL``, and a short seeded run
learns. Needs the ``pufferlib`` extra (``make test-integration``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.integration

pytest.importorskip("pufferlib")
pytest.importorskip("torch")

import pufferlib  # noqa: E402
import pufferlib.vector  # noqa: E402
from conftest import load_example, random_actions  # noqa: E402

import powermarket as pm  # noqa: E402
from powermarket import analysis  # noqa: E402
from powermarket.pufferlib import MarketPufferEnv  # noqa: E402


def same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize(
    ("pa", "segments", "observer", "storage", "network"),
    [
        ("tanh", 1, "simple", 0, False),
        ("linear", 1, "market_v2", 0, False),
        ("linear", 2, "basic", 0, False),
        ("tanh", 2, "market", 2, False),  # storage units: more agents per market
        ("tanh", 1, "market", 0, True),  # two zones over a binding line
    ],
)
def test_transitions_equal_vec_market_env_bit_for_bit_across_episode_ends(
    pa, segments, observer, storage, network
):
    units = [pm.Storage(power=15, energy=20)] * storage
    base = pm.Scenario.two_zones(t=5) if network else pm.Scenario.default(n=3, t=5)
    sc = base.replace(price_action=pa, segments=segments, storage=units)
    m, n, k = 4, sc.num_agents, segments
    env = MarketPufferEnv(sc, num_envs=m, observer=observer, seed=11)
    vec = pm.VecMarketEnv(sc, num_envs=m, observer=observer, seed=11)
    assert env.num_agents == m * n
    assert env.single_action_space.shape == (2 * k,)
    obs, infos = env.reset()
    vobs, _ = vec.reset()
    assert infos == [] and same(obs, vobs.reshape(m * n, -1))
    assert obs is env.observations
    rng = np.random.default_rng(0)
    hi = pm._core.action_box(pa)[1][1]
    ends = 0
    for step in range(3 * sc.t + 2):
        a = random_actions(rng, m * n * k, mix="wide", a1_high=hi).reshape(m * n, 2 * k)
        o, r, d, t, infos = env.step(a)
        vo, vr, vd, vt, vinfo = vec.step(a.reshape((m, n, 2) if k == 1 else (m, n, k, 2)))
        assert same(o, vo.reshape(m * n, -1)), step
        assert same(r, vr.reshape(m * n)), step
        assert same(d, np.repeat(vd, n)), step
        assert same(t, np.repeat(vt, n)), step
        assert o in env.observation_space or np.all(
            (o >= env.single_observation_space.low) & (o <= env.single_observation_space.high)
        )
        if vd.any():
            ends += 1
            assert len(infos) == 1 and infos[0]["episodes"] == int(vd.sum())
        else:
            assert infos == []
    assert ends == 3


def test_episode_infos_are_returns_prices_and_nash_conv_of_the_played_episode():
    sc = pm.Scenario.default(n=3, t=6).replace(price_action="linear", demand_noise=0.0)
    m, n = 2, 3
    env = MarketPufferEnv(sc, num_envs=m, seed=3, nash_conv=True)
    vec = pm.VecMarketEnv(sc, num_envs=m, seed=3)
    env.reset()
    vec.reset()
    rng = np.random.default_rng(1)
    played, returns, prices, demand = [], np.zeros((m, n)), np.zeros(m), []
    for _ in range(sc.t):
        a = random_actions(rng, m * n, mix="box", a1_high=1.0)
        _, r, d, _, infos = env.step(a)
        _, vr, _, _, vi = vec.step(a.reshape(m, n, 2))
        played.append(a.reshape(m, n, 2)[0])
        returns += vr
        prices += vi["price"]
        demand.append(vi["demand"][0])
    (info,) = infos
    assert info["episode_return"] == pytest.approx(returns.mean(), rel=1e-12)
    assert info["mean_price"] == pytest.approx(prices.mean() / sc.t, rel=1e-12)
    assert info["episode_length"] == sc.t and info["episodes"] == m
    for i in range(n):
        assert info["return"][f"gen_{i}"] == pytest.approx(returns[:, i].mean(), rel=1e-12)
    x = analysis.exploitability_of_play(
        sc,
        np.stack(played)[None],
        np.array(demand)[None],
        grid=analysis.default_grid(scenario=sc),
    )
    assert info["nash_conv"] == pytest.approx(x["nash_conv"], rel=1e-12)
    assert info["nash_conv"] > 0  # random play is exploitable
    # the sums restart with the next episode
    for _ in range(sc.t):
        *_, infos = env.step(np.zeros((m * n, 2), np.float32))
    assert infos[0]["episode_return"] != info["episode_return"]


def test_bad_arguments_are_clear_errors_and_change_nothing():
    env = MarketPufferEnv(num_envs=2, seed=0)
    env.reset()
    before = env.observations.copy()
    with pytest.raises(ValueError, match=r"actions must have shape \(10, 2\).*got \(3, 2\)"):
        env.step(np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="gen_1 in market 0.*a1.*NaN"):
        bad = np.zeros((10, 2), np.float32)
        bad[1, 1] = np.nan
        env.step(bad)
    assert same(env.observations, before)
    with pytest.raises(ValueError, match="reward_scale.*nan"):
        MarketPufferEnv(reward_scale=float("nan"))
    with pytest.raises(ValueError, match="nash_conv.*availability_noise"):
        MarketPufferEnv(pm.Scenario.advanced().replace(availability_noise=0.1), nash_conv=True)


def test_vector_make_native_and_serial_backends():
    sc = pm.Scenario.default(n=2, t=4).replace(price_action="linear")
    native = pufferlib.vector.make(
        MarketPufferEnv,
        backend=pufferlib.vector.PufferEnv,
        env_kwargs={"scenario": sc, "num_envs": 3, "seed": 7},
    )
    assert isinstance(native, MarketPufferEnv) and native.num_agents == 6
    serial = pufferlib.vector.make(
        MarketPufferEnv,
        backend=pufferlib.vector.Serial,
        num_envs=2,
        env_kwargs={"scenario": sc, "num_envs": 3},
        seed=7,
    )
    serial.async_reset(7)
    o, r, d, t, ta, infos, ids, mask = serial.recv()
    assert o.shape == (12, sc_obs_dim(sc))
    # each sub-env writes into its slice of the shared buffers: sub-env 0 is seed 7
    ref = pm.VecMarketEnv(sc, num_envs=3, seed=7)
    assert same(o[:6], ref.reset()[0].reshape(6, -1))
    a = np.full((12, 2), 0.5, np.float32)
    serial.send(a)
    o, r, d, *_ = serial.recv()
    ro, rr, *_ = ref.step(a[:6].reshape(3, 2, 2))
    assert same(o[:6], ro.reshape(6, -1)) and same(r[:6], rr.reshape(6))


def sc_obs_dim(sc) -> int:
    return pm.VecMarketEnv(sc, num_envs=1, seed=0).obs_dim


def test_a_short_seeded_pufferl_run_beats_the_random_policy():
    ex = load_example("train_pufferlib")
    sc = pm.Scenario.default(n=3, t=24).replace(price_action="linear")
    cfg = ex.Config(steps=60_000, markets=16, seed=0)
    policy, stats = ex.train(sc, cfg)
    assert stats["agent_steps"] >= 60_000
    learned = ex.evaluate(sc, ex.greedy(policy), episodes=16)
    rng = np.random.default_rng(0)
    box = pm._core.action_box("linear")
    rand = ex.evaluate(  # uniform over the action box
        sc, lambda obs: rng.uniform(*box, size=(sc.n, 2)).astype(np.float32), episodes=16
    )
    assert learned.mean() > rand.mean() + 0.2, (learned, rand)


def test_bench_train_quick_has_the_pufferlib_and_benchmarl_columns():
    pytest.importorskip("benchmarl")
    root = Path(__file__).resolve().parents[1]
    contenders = "torchrl,pufferlib,benchmarl_mappo,benchmarl_ippo"
    done = subprocess.run(
        [sys.executable, str(root / "benches" / "bench_train.py"), "--quick"]
        + ["--contenders", contenders],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for name in ("TorchRL IPPO", "PufferLib PPO", "BenchMARL MAPPO", "BenchMARL IPPO"):
        assert f"| {name} |" in out, out
    assert "NashConv % per seed" in out
    assert "TorchRL / PufferLib PPO agent-steps/s (median of per-round ratios)" in out
