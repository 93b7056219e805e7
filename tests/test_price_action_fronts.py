"""``Scenario(price_action=...)`` through every front (issue 21).

``"tanh"`` (the default): a1 in [-10, 10], bid ``c + tanh(a1) * delta``;
``"linear"``: a1 in [-1, 1], bid ``c + a1 * delta``. One parametrised test
runs each through PettingZoo, Gymnasium single (built-in and callable
opponents) and vector, SB3, TorchRL and pickling; the episodes themselves are
checked against the NumPy reference in ``test_env_reference.py``.
"""

from __future__ import annotations

import copy
import pickle

import gymnasium as gym
import numpy as np
import pytest
from conftest import random_actions
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import parallel_api_test

import powermarket as pm
from powermarket import analysis

ENV_ID = "powermarket/Market-v0"
PRICE_ACTIONS = ("tanh", "linear")
BOXES = {"tanh": ([0.0, -10.0], [1.0, 10.0]), "linear": ([0.0, -1.0], [1.0, 1.0])}


def scenario(pa: str, **kw) -> pm.Scenario:
    return pm.Scenario.default(n=4, t=6).replace(price_action=pa, **kw)


def share(pa: str, a1) -> np.ndarray:
    """The reference mapping of a1 to a markup share of max_bid_delta."""
    a1 = np.asarray(a1, dtype=np.float32).astype(np.float64)
    return np.clip(a1, -1, 1) if pa == "linear" else np.tanh(np.clip(a1, -10, 10))


def same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def box_of(space) -> tuple[list[float], list[float]]:
    return space.low.reshape(-1, 2)[0].tolist(), space.high.reshape(-1, 2)[0].tolist()


def test_the_default_is_tanh_and_the_names_come_from_the_core():
    assert pm.Scenario.default().price_action == "tanh"
    assert pm._core.PRICE_ACTIONS == PRICE_ACTIONS
    for pa, (lo, hi) in BOXES.items():
        assert pm._core.action_box(pa) == (tuple(lo), tuple(hi))
    assert pm._core.action_box() == (pm._core.ACTION_LOW, pm._core.ACTION_HIGH)
    with pytest.raises(ValueError, match="price_action.*cubic.*tanh, linear"):
        pm._core.action_box("cubic")


@pytest.mark.parametrize(
    ("value", "exc", "match"),
    [("cubic", ValueError, "price_action.*cubic.*tanh, linear"), (3, ValueError, "price_action")],
)
def test_a_bad_price_action_names_the_field_and_value(value, exc, match):
    s = pm.Scenario.default()
    with pytest.raises(exc, match=match):
        s.replace(price_action=value)
    with pytest.raises(exc, match=match):
        pm.Scenario([10.0], [5.0], [3.0], price_action=value)
    assert s.price_action == "tanh"  # a failed replace changes nothing


@pytest.mark.parametrize("pa", PRICE_ACTIONS)
def test_scenario_dicts_files_and_pickles_keep_it(pa, tmp_path):
    s = scenario(pa)
    assert s.to_dict()["price_action"] == pa
    assert pm.Scenario.from_dict(s.to_dict()) == s
    assert pickle.loads(pickle.dumps(s)) == s
    s.save(tmp_path / "s.toml")
    assert pm.Scenario.load(tmp_path / "s.toml") == s


@pytest.mark.parametrize("segments", [1, 3])
@pytest.mark.parametrize("pa", PRICE_ACTIONS)
def test_every_front_follows_the_price_action(pa, segments):
    sc = scenario(pa, segments=segments)
    n, t, k = sc.n, sc.t, segments
    lo, hi = BOXES[pa]
    block = (2,) if k == 1 else (k, 2)
    rng = np.random.default_rng(7)

    def joint(m=None):
        a = random_actions(rng, n * k * (m or 1), mix="wide", a1_high=hi[1])
        return a.reshape(((m,) if m else ()) + (n,) + block)

    # MarketEnv: the bid is c + share(a1) * delta, after clipping to the box.
    env = pm.MarketEnv(sc, seed=3)
    env.reset(seed=3)
    acts = [joint() for _ in range(t)]
    for a in acts:
        env.step(a)
    bids = env.episode_record()["bids"].reshape(t, n * k)
    costs = np.repeat(sc.costs, k)
    want = costs + share(pa, np.stack(acts).reshape(t, n * k, 2)[..., 1]) * sc.max_bid_delta
    np.testing.assert_allclose(bids, want, rtol=1e-12, atol=1e-12)

    # PettingZoo: the spaces, the API test, and the same episode as MarketEnv.
    pz = pm.parallel_env(sc, seed=3)
    for agent in pz.possible_agents:
        assert box_of(pz.action_space(agent)) == (lo, hi)
        assert pz.action_space(agent).shape == block
    parallel_api_test(pm.parallel_env(sc, seed=0), num_cycles=20)
    pz.reset(seed=3)
    ref = pm.MarketEnv(sc, seed=3)
    ref.reset(seed=3)
    for a in acts:
        o, r, *_ = pz.step({f"gen_{i}": a[i] for i in range(n)})
        ro, rr, *_ = ref.step(a)
        assert all(same(o[f"gen_{i}"], ro[i]) and r[f"gen_{i}"] == float(rr[i]) for i in range(n))

    # Gymnasium single: built-in opponents draw and map in the scenario's box.
    for opponents in ["random", ("markup", 10.0), ("constant", 0.0, 0.5)]:
        g = gym.make(ENV_ID, scenario=sc, agent=0, opponents=opponents, seed=1).unwrapped
        assert box_of(g.action_space) == (lo, hi)
        check_env(g, skip_render_check=True)
        g.reset(seed=1)
        for _ in range(t):
            g.step(g.action_space.sample())
        others = (
            g.market.episode_record()["bids"].reshape(t, n, k)[:, 1:]
            - np.asarray(sc.costs)[None, 1:, None]
        )
        if opponents == "random":
            # uniform a1 over the box: tanh piles bids at the ends, linear does not
            ends = np.mean(np.abs(others) > 0.9 * sc.max_bid_delta)
            assert (ends > 0.6) if pa == "tanh" else (ends < 0.3), ends
            assert np.all(np.abs(others) <= sc.max_bid_delta)
        elif opponents[0] == "markup":
            np.testing.assert_allclose(others, 10.0, atol=1e-4)
        else:
            np.testing.assert_allclose(others, share(pa, 0.5) * sc.max_bid_delta, atol=1e-5)

    # Gymnasium single with a callable opponent: its action is clipped to the box.
    g = gym.make(
        ENV_ID,
        scenario=sc,
        agent=1,
        opponents=[lambda obs: np.broadcast_to(np.array([0.0, 5.0], np.float32), block)] * (n - 1),
        seed=2,
    ).unwrapped
    g.reset(seed=2)
    g.step(np.broadcast_to(np.array([0.0, 0.0], np.float32), block).copy())
    b = g.market.episode_record()["bids"].reshape(1, n, k)[0, 0]
    np.testing.assert_allclose(b, sc.costs[0] + share(pa, 5.0) * sc.max_bid_delta, atol=1e-9)

    # Gymnasium vector: the same box, and market i equals a single env.
    venv = gym.make_vec(
        ENV_ID,
        num_envs=2,
        vectorization_mode="vector_entry_point",
        scenario=sc,
        agent=1,
        opponents="random",
        seed=5,
    )
    assert box_of(venv.unwrapped.single_action_space) == (lo, hi)
    single = gym.make(ENV_ID, scenario=sc, agent=1, opponents="random", seed=5).unwrapped
    vo, _ = venv.reset(seed=[5, 6])
    so, _ = single.reset(seed=5)
    assert same(vo[0], so)
    for _ in range(t - 1):  # (the last step autoresets the vector env)
        a = joint(2)[:, 1]
        vo, vr, *_ = venv.step(a)
        so, sr, *_ = single.step(a[0])
        assert same(vo[0], so) and vr[0] == sr

    # Pickling mid-episode, random opponents' RNG and price action included.
    g = gym.make(ENV_ID, scenario=sc, agent=0, opponents="random", seed=4).unwrapped
    g.reset(seed=4)
    g.step(g.action_space.sample())
    clones = (pickle.loads(pickle.dumps(g)), copy.deepcopy(g))
    a = g.action_space.sample()
    x = g.step(a)
    for clone in clones:
        assert clone.plan.rust.price_action == pa
        y = clone.step(a)
        assert same(x[0], y[0]) and x[1] == y[1]
        assert same(g.market.episode_record()["bids"], clone.market.episode_record()["bids"])


@pytest.mark.parametrize("pa", PRICE_ACTIONS)
def test_analysis_grid_follows_the_price_action(pa):
    sc = scenario(pa, demand_noise=0.0)
    w, a = analysis.default_grid(5, 9, scenario=sc)
    lo, hi = BOXES[pa]
    assert a.min() == lo[1] and a.max() == hi[1]
    # evenly spaced bids either way
    np.testing.assert_allclose(np.diff(share(pa, a)), 0.25, atol=1e-6)
    out = analysis.exploitability(sc, lambda obs: np.zeros((sc.n, 2)), grid=(w, a), seed=0)
    assert out["nash_conv"] >= 0.0
    # the equilibrium's default grid is the scenario's, and its actions lie in its box
    eq = analysis.equilibrium(sc)
    acts = np.asarray(eq["actions"])
    assert acts[..., 1].min() >= lo[1] and acts[..., 1].max() <= hi[1]
    grid41 = analysis.default_grid(scenario=sc)[1].astype(np.float32)
    assert np.isin(acts[..., 1], grid41).all()
    if pa == "linear":
        with pytest.raises(ValueError, match=r"price_action.*action box \[-1, 1\]"):
            analysis.exploitability(
                sc, lambda obs: np.zeros((sc.n, 2)), grid=analysis.default_grid(5, 9), seed=0
            )


@pytest.mark.integration  # stable-baselines3 and torchrl (make test-integration)
@pytest.mark.parametrize("pa", PRICE_ACTIONS)
def test_sb3_and_torchrl_follow_the_price_action(pa):
    pytest.importorskip("stable_baselines3")
    pytest.importorskip("torchrl")
    import torch

    from powermarket.sb3 import MarketVecEnv
    from powermarket.torchrl import MarketEnv as TorchMarketEnv

    sc = scenario(pa)
    lo, hi = BOXES[pa]
    env = MarketVecEnv(sc, num_markets=2, seed=8)
    assert box_of(env.action_space) == (lo, hi)
    vec = pm.VecMarketEnv(sc, num_envs=2, seed=8)
    env.reset()
    vec.reset()
    rng = np.random.default_rng(1)
    for _ in range(sc.t):
        a = random_actions(rng, 2 * sc.n, mix="wide", a1_high=hi[1]).reshape(2, sc.n, 2)
        x, y = env.step(a.reshape(-1, 2)), vec.step(a)
        assert same(x[1], y[1].reshape(x[1].shape))
    tenv = TorchMarketEnv(sc, num_envs=2, seed=8)
    spec = tenv.full_action_spec["agents", "action"]
    assert spec.space.low.reshape(-1, 2)[0].tolist() == lo
    assert spec.space.high.reshape(-1, 2)[0].tolist() == hi
    td = tenv.rollout(3)
    assert torch.all(td["agents", "action"][..., 1].abs() <= hi[1])
