"""Regression tests of issue 8 (hardening): one or more per defect, numbered as in the issue.

Each test failed on the main before the fixes (e1ab25f). Results are checked
against an untouched twin, an independent reference (``tests/reference.py``)
or invariants, never against outputs of the code under test. The writer-thread,
fork and AsyncVectorEnv tests of item 1 and 12 are in ``test_concurrency.py``;
the stateful machines in ``test_stateful.py``.
"""

from __future__ import annotations

import copy
import datetime
import os
import pickle
import re
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import gymnasium
import numpy as np
import pytest
import reference as ref

import powermarket as pm

ENV_ID = "powermarket/Market-v0"
ROOT = Path(__file__).resolve().parents[1]


def same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def step_copy(env, actions):
    obs, rewards, terminated, truncated, info = env.step(actions, copy=True)
    return obs, rewards, terminated, truncated, {k: np.array(v) for k, v in info.items()}


def assert_same_step(x, y) -> None:
    for a, b in zip(x[:4], y[:4], strict=True):
        assert same(a, b)
    assert x[4].keys() == y[4].keys()
    for key in x[4]:
        if key == "final_obs":
            m = x[4]["_final_obs"]
            assert same(x[4][key][m], y[4][key][m])
        else:
            assert same(x[4][key], y[4][key])


def vec_actions(rng, m: int, n: int) -> np.ndarray:
    return np.stack([rng.uniform(0, 1, (m, n)), rng.uniform(-3, 3, (m, n))], axis=-1).astype(
        np.float32
    )


def run_python(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout
    )


# --- 1. no Python memory used while the GIL is released ------------------------------------


def test_1_actions_aliasing_the_cleared_buffer_act_like_a_copy():
    # cleared (M, N) float64 has the bytes of (M, N, 2) float32 actions.
    m, n = 4, 3
    sc = pm.Scenario.default(n=n, t=6).replace(demand_noise=0.0)
    env, twin = pm.VecMarketEnv(sc, m, seed=3), pm.VecMarketEnv(sc, m, seed=3)
    env.reset()
    twin.reset()
    rng = np.random.default_rng(0)
    first = vec_actions(rng, m, n)
    _, _, _, _, info = env.step(first)
    step_copy(twin, first)
    for _ in range(8):
        alias = info["cleared"].view(np.float32).reshape(m, n, 2)
        given = alias.copy()
        if not np.isfinite(given).all():
            break
        expected = step_copy(twin, given)
        out = env.step(alias)
        info = out[4]
        assert_same_step(
            (out[0], out[1], out[2], out[3], {k: np.array(v) for k, v in info.items()}), expected
        )


# --- 2. sizes that cannot be allocated are errors, not aborts ------------------------------


@pytest.mark.parametrize(
    "code",
    [
        "pm.MarketEnv(pm.Scenario.default(n=10**5, t=10**5))",
        "pm.VecMarketEnv(pm.Scenario.default(n=60000), observer='basic')",
        "pm.VecMarketEnv(pm.Scenario.default(n=5), num_envs=2**45)",
    ],
)
def test_2_huge_sizes_raise_instead_of_aborting(code):
    proc = run_python(
        "import powermarket as pm\n"
        f"try:\n    {code}\nexcept (MemoryError, ValueError) as e:\n"
        "    print('RAISED', type(e).__name__, e)\n"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "RAISED" in proc.stdout, proc.stdout


# --- 3. tampered output buffers: reallocated, never a panic --------------------------------


def _tamper(kind: str, arr: np.ndarray) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if kind == "strides":
            arr.strides = (0,) * arr.ndim
        elif kind == "writeable":
            arr.flags.writeable = False
        elif kind == "resize":
            if not arr.flags.owndata:
                pytest.skip("the returned buffer is a view: NumPy cannot resize it")
            arr.resize((1,), refcheck=False)
        elif kind == "dtype":
            arr.dtype = np.uint8
        elif kind == "shape":
            if arr.ndim == 1:
                pytest.skip("a 1-D buffer reshaped to its own shape is not tampered with")
            arr.shape = (arr.size,)


@pytest.mark.parametrize("kind", ["strides", "writeable", "resize", "dtype", "shape"])
@pytest.mark.parametrize("which", ["obs", "rewards", "terminated", "price", "cleared"])
def test_3_tampered_buffers_are_replaced_and_left_alone(kind, which):
    m, n = 3, 2
    sc = pm.Scenario.default(n=n, t=3)
    env, twin = pm.VecMarketEnv(sc, m, seed=5), pm.VecMarketEnv(sc, m, seed=5)
    env.reset()
    twin.reset()
    rng = np.random.default_rng(1)
    a = vec_actions(rng, m, n)
    out = env.step(a)
    step_copy(twin, a)
    pick = {"obs": out[0], "rewards": out[1], "terminated": out[2]}
    target = pick.get(which, out[4].get(which))
    _tamper(kind, target)
    before = (target.shape, target.strides, target.dtype, target.flags.writeable)
    snapshot = target.tobytes() if target.strides and all(target.strides) else None
    for _ in range(5):
        a = vec_actions(rng, m, n)
        got = env.step(a)
        want = step_copy(twin, a)
        assert_same_step(
            (got[0], got[1], got[2], got[3], {k: np.array(v) for k, v in got[4].items()}), want
        )
    # The user's array is left as the user made it.
    assert (target.shape, target.strides, target.dtype, target.flags.writeable) == before
    if snapshot is not None:
        assert target.tobytes() == snapshot


def test_3_writeable_false_is_not_overridden():
    env = pm.VecMarketEnv(pm.Scenario.default(n=2, t=3), 2, seed=0)
    obs, _ = env.reset()
    obs.flags.writeable = False
    kept = obs.copy()
    env.step(np.zeros((2, 2, 2), np.float32))
    assert not obs.flags.writeable
    assert same(obs, kept)


# --- 4. the price does not depend on the tie rule ------------------------------------------


def _problems(seed: int, count: int):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        n = int(rng.integers(1, 12))
        bids = np.round(rng.uniform(0, 60, n), int(rng.integers(0, 3)))
        qty = rng.uniform(0.0, 40.0, n) * rng.choice([1e-3, 1.0, 1e3])
        if rng.random() < 0.3:
            qty[rng.integers(0, n)] = 0.0
        yield bids, qty


def _boundary_demands(bids, qty):
    """Demand exactly on every cumulative step, summed three ways, and at total supply."""
    order = np.argsort(bids, kind="stable")
    out = set(np.cumsum(qty[order]).tolist())
    out |= set(np.cumsum(qty[order][::-1]).tolist())
    acc = 0.0
    for p in np.unique(bids):
        acc += float(np.sum(qty[bids == p]))
        out.add(acc)
    out.add(float(np.sum(qty)))
    out.add(float(np.sum(qty, dtype=np.float32)))
    return sorted(d for d in out if d > 0)


@pytest.mark.parametrize("shortage_price", [None, 3000.0])
def test_4_boundary_demand_same_price_for_both_tie_rules(shortage_price):
    checked = 0
    for bids, qty in _problems(4, 400):
        for d in _boundary_demands(bids, qty):
            expected, shortage = ref.exact_price(bids, qty, d, shortage_price)
            p1, c1 = pm.clear(bids, qty, d, tie_rule="pro_rata", shortage_price=shortage_price)
            p2, c2 = pm.clear(bids, qty, d, tie_rule="index", shortage_price=shortage_price)
            assert p1 == p2 == expected, (bids, qty, d)
            if not shortage:
                for c in (c1, c2):
                    assert c.sum() == pytest.approx(min(d, qty.sum()), rel=1e-11)
                    assert np.all(c <= qty * (1 + 1e-12)) and np.all(c >= 0)
            checked += 1
    assert checked > 1000


def test_4_batch_boundary_demand_same_price_for_both_tie_rules():
    probs = [(b, q) for b, q in _problems(9, 300) if len(b) == 5]
    bids = np.stack([b for b, _ in probs])
    qty = np.stack([q for _, q in probs])
    demand = np.array([_boundary_demands(b, q)[-1] for b, q in probs])
    p1, _ = pm.clear_batch(bids, qty, demand, tie_rule="pro_rata", shortage_price=3000.0)
    p2, _ = pm.clear_batch(bids, qty, demand, tie_rule="index", shortage_price=3000.0)
    want = [ref.exact_price(b, q, d, 3000.0)[0] for b, q, d in zip(bids, qty, demand, strict=True)]
    assert same(p1, p2) and same(p1, np.array(want))


def test_4_episode_at_exact_capacity_no_phantom_shortage():
    base = pm.Scenario.default(n=9)
    sc = base.replace(
        capacities=np.full(9, base.demand.max() / 9), demand_noise=0.0, shortage_price=3000.0
    )
    runs = {}
    for rule in ("pro_rata", "index"):
        env = pm.MarketEnv(sc, seed=0, tie_rule=rule)
        env.reset()
        rows = []
        for _ in range(sc.t):
            _, _, _, _, info = env.step(np.zeros((9, 2), np.float32))
            rows.append((info["price"], info["shortfall"]))
        runs[rule] = rows
    assert runs["pro_rata"] == [(p, s) for p, s in runs["index"]]
    caps, costs = sc.capacities, sc.costs
    for h, (price, shortfall) in enumerate(runs["index"]):
        want, shortage = ref.exact_price(costs, caps, sc.demand[h], 3000.0)
        assert (price, shortfall > 0) == (want, shortage)
        assert price <= 40.0 and shortfall == 0.0


# --- 5. extreme magnitudes ------------------------------------------------------------------


def test_5_overflowing_quantity_total_is_a_value_error():
    for rule in ("pro_rata", "index"):
        with pytest.raises(ValueError, match="quantities"):
            pm.clear([10.0, 10.0], [1e308, 1e308], 5.0, tie_rule=rule)


@pytest.mark.parametrize(
    "bids, qty, demand",
    [
        ([5.0], [1e30], 1e-300),
        ([5.0, 7.0], [1e300, 1.0], 1e-300),
        ([1.0, 2.0, 3.0], [1e-300, 1e-300, 1e-300], 2e-300),
        ([1.0, 2.0], [1e200, 1e200], 1.5e200),
    ],
)
def test_5_extreme_magnitudes_match_the_exact_reference(bids, qty, demand):
    for rule in ("pro_rata", "index"):
        price, cleared = pm.clear(bids, qty, demand, tie_rule=rule)
        rprice, rcleared = ref.exact_clear(bids, qty, demand, rule)
        assert price == rprice
        np.testing.assert_allclose(cleared, rcleared, rtol=1e-12, atol=0)
        assert cleared.sum() == pytest.approx(demand, rel=1e-12)


# --- 6. failed calls change no state ---------------------------------------------------------


def _gym_vec(num_envs=3, **kw):
    kw.setdefault("opponents", "random")
    return gymnasium.make_vec(
        ENV_ID, num_envs=num_envs, vectorization_mode="vector_entry_point", **kw
    ).unwrapped


def _vector_trace(env, steps=30):
    out = []
    for h in range(steps):
        acts = np.full((env.num_envs, 2), [0.2, 0.1 * (h % 7)], np.float32)
        obs, rew, *_, info = env.step(acts)
        out.append((obs.copy(), rew.copy(), info["price"].copy()))
    return out


def _assert_traces(a, b):
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x, y, strict=True):
            assert same(u, v)


@pytest.mark.parametrize(
    "bad",
    [
        {"seed": 9, "options": {"reset_mask": np.ones(5, bool)}},
        {"seed": 9, "options": {"reset_mask": np.array(["a", "b", "c"])}},
        {"seed": 9, "options": {"unknown": 1}},
        {"seed": 2**64},
        {"seed": -1},
        {"seed": [1, 2]},
        {"seed": [1, 2, 2**64]},
        {"seed": True},
    ],
)
def test_6_failed_vector_reset_reseeds_nothing(bad):
    env, twin = _gym_vec(seed=1), _gym_vec(seed=1)
    env.reset(seed=4)
    twin.reset(seed=4)
    _vector_trace(env, 5)
    _vector_trace(twin, 5)
    rng_state = copy.deepcopy(env.np_random.bit_generator.state)
    with pytest.raises((ValueError, TypeError)):
        env.reset(**bad)
    assert env.np_random.bit_generator.state == rng_state
    _assert_traces(_vector_trace(env), _vector_trace(twin))
    env.reset()
    twin.reset()
    _assert_traces(_vector_trace(env), _vector_trace(twin))


@pytest.mark.parametrize("seed", [2**64, -1, 1.5, "3"])
def test_6_failed_single_reset_reseeds_nothing(seed):
    env = gymnasium.make(ENV_ID, opponents="random", seed=2).unwrapped
    twin = gymnasium.make(ENV_ID, opponents="random", seed=2).unwrapped
    env.reset(seed=2)
    twin.reset(seed=2)
    env.step([0.1, 0.2])
    twin.step([0.1, 0.2])
    state = copy.deepcopy(env.np_random.bit_generator.state)
    with pytest.raises((ValueError, TypeError)):
        env.reset(seed=seed)
    assert env.np_random.bit_generator.state == state
    for _ in range(40):
        if env.market.t == env.market.horizon:
            env.reset()
            twin.reset()
        x, y = env.step([0.3, -0.5]), twin.step([0.3, -0.5])
        assert same(x[0], y[0]) and x[1:4] == y[1:4] and x[4]["price"] == y[4]["price"]


@pytest.mark.integration  # needs stable-baselines3 (make test-integration)
def test_6_sb3_seed_is_checked_at_call_time_and_step_wait_never_resends():
    pytest.importorskip("stable_baselines3")
    from powermarket.sb3 import MarketVecEnv

    sc = pm.Scenario.default(n=2, t=4)
    env = MarketVecEnv(sc, num_markets=2, seed=0)
    for bad, exc in ((2**64, ValueError), (-1, ValueError), (1.5, ValueError), (True, TypeError)):
        with pytest.raises(exc, match="seed"):
            env.seed(bad)
    env.reset()  # still works: the bad seeds were not kept
    twin = pm.VecMarketEnv(sc, 2, seed=0)
    twin.reset()
    acts = np.full((4, 2), 0.25, np.float32)
    env.step_async(acts)
    env.step_wait()
    twin.step(acts.reshape(2, 2, 2))
    with pytest.raises(RuntimeError, match="step_async"):
        env.step_wait()  # the consumed actions are not sent again
    assert same(env.vec.hours, twin.hours)
    fresh = MarketVecEnv(sc, num_markets=2, seed=0)
    fresh.step_async(acts)
    with pytest.raises(RuntimeError, match="reset"):
        fresh.step_wait()
    with pytest.raises(RuntimeError, match="step_async"):
        fresh.step_wait()


# --- 7. masks --------------------------------------------------------------------------------


@pytest.mark.parametrize("first", [0.5, 256, np.nan, 1e10, -1, True])
def test_7_any_nonzero_mask_value_resets(first):
    env = pm.VecMarketEnv(pm.Scenario.default(n=2, t=5), 3, seed=0)
    env.reset()
    env.step(np.zeros((3, 2, 2), np.float32))
    env.reset(mask=np.array([first, 0, 0]))
    assert list(env.hours) == [0, 1, 1]


@pytest.mark.parametrize(
    "mask, exc",
    [
        (np.array(["a", "", ""]), TypeError),
        (np.array([1 + 1j, 0, 0]), TypeError),
        (np.array([b"x", b"", b""]), TypeError),
        (np.ma.masked_array([1, 0, 0], mask=[0, 1, 0]), TypeError),
        (np.array([1, 0]), ValueError),
        (np.ones((3, 1)), ValueError),
    ],
)
def test_7_bad_masks_name_mask_and_change_nothing(mask, exc):
    env = pm.VecMarketEnv(pm.Scenario.default(n=2, t=5), 3, seed=0)
    env.reset()
    env.step(np.zeros((3, 2, 2), np.float32))
    with pytest.raises(exc, match="mask"):
        env.reset(seed=1, mask=mask)
    assert list(env.hours) == [1, 1, 1]


# --- 8. seeds and streams ----------------------------------------------------------------------


def _demands(env, m):
    return [env.episode_demand(i) for i in range(m)]


def test_8_market_streams():
    sc = pm.Scenario.default(n=3, t=24)
    m = 4
    v0, v1 = pm.VecMarketEnv(sc, m, seed=0), pm.VecMarketEnv(sc, m, seed=1)
    v0.reset()
    v1.reset()
    single = pm.MarketEnv(sc, seed=0)
    single.reset()
    assert same(v0.episode_demand(0), single.demand)
    # Runs seeded 0 and 1 share no demand stream.
    for a in _demands(v0, m):
        for b in _demands(v1, m):
            assert not np.array_equal(a, b)
    # Market i is no longer MarketEnv(seed=s+i).
    for i in range(1, m):
        e = pm.MarketEnv(sc, seed=i)
        e.reset()
        assert not np.array_equal(v0.episode_demand(i), e.demand)


@pytest.mark.parametrize("where", ["constructor", "reset"])
def test_8_seed_lists_give_market_i_the_single_env_seeded_seed_i(where):
    sc = pm.Scenario.default(n=3, t=6)
    seeds = [5, 99, 7, 2**64 - 1]
    if where == "constructor":
        v = pm.VecMarketEnv(sc, 4, seed=seeds)
        obs, _ = v.reset()
    else:
        v = pm.VecMarketEnv(sc, 4, seed=123)
        v.reset()
        obs, _ = v.reset(seed=seeds)
    obs = obs.copy()
    singles = [pm.MarketEnv(sc, seed=s) for s in seeds]
    for i, e in enumerate(singles):
        o, _ = e.reset()
        assert same(obs[i], o)
    rng = np.random.default_rng(2)
    for _ in range(15):  # across the autoreset: each market continues its own stream
        a = vec_actions(rng, 4, 3)
        out = step_copy(v, a)
        for i, e in enumerate(singles):
            o, r, te, _, info = e.step(a[i])
            assert same(out[1][i], r) and out[4]["price"][i] == info["price"]
            if te:
                o, _ = e.reset()
            assert same(out[0][i], o)


def test_8_masked_reseed_uses_stream_i():
    sc = pm.Scenario.default(n=2, t=6)
    v = pm.VecMarketEnv(sc, 3, seed=50)
    v.reset()
    v.reset(seed=8, mask=np.array([False, True, True]))
    fresh = pm.VecMarketEnv(sc, 3, seed=8)
    fresh.reset()
    old = pm.VecMarketEnv(sc, 3, seed=50)
    old.reset()
    assert same(v.episode_demand(0), old.episode_demand(0))
    for i in (1, 2):
        assert same(v.episode_demand(i), fresh.episode_demand(i))


@pytest.mark.parametrize(
    "seed, exc",
    [
        (-1, ValueError),
        (2**64, ValueError),
        (1.5, ValueError),
        ("1", ValueError),
        (True, TypeError),
    ],
)
def test_8_bad_seeds(seed, exc):
    with pytest.raises(exc, match="seed"):
        pm.VecMarketEnv(num_envs=2, seed=seed)
    with pytest.raises(exc, match="seed"):
        pm.MarketEnv(seed=seed)
    with pytest.raises(exc, match="seed"):
        pm.VecMarketEnv(num_envs=2, seed=[0, seed])


def test_8_gymnasium_vector_seed_list_matches_single_envs_with_random_opponents():
    sc = pm.Scenario.default(n=3, t=4)
    seeds = [5, 99, 7]
    venv = _gym_vec(scenario=sc, agent=1, seed=0)
    obs, _ = venv.reset(seed=seeds)
    singles = [
        gymnasium.make(ENV_ID, scenario=sc, agent=1, opponents="random").unwrapped for _ in seeds
    ]
    for i, (e, s) in enumerate(zip(singles, seeds, strict=True)):
        o, _ = e.reset(seed=s)
        assert same(obs[i], o)
    for h in range(10):
        acts = np.full((3, 2), [0.1, 0.2 * h - 1], np.float32)
        obs, rew, term, _, info = venv.step(acts)
        for i, e in enumerate(singles):
            o, r, te, _, inf = e.step(acts[i])
            assert rew[i] == r and info["price"][i] == inf["price"]
            if te:
                o, _ = e.reset()
            assert same(obs[i], o)


def test_8_gymnasium_vector_market_0_equals_single_env_with_the_same_int_seed():
    sc = pm.Scenario.default(n=3, t=4)
    venv = _gym_vec(scenario=sc, seed=11)
    single = gymnasium.make(ENV_ID, scenario=sc, opponents="random", seed=11).unwrapped
    obs, _ = venv.reset(seed=11)
    o, _ = single.reset(seed=11)
    assert same(obs[0], o)
    for _ in range(6):
        _, rew, *_, info = venv.step(np.zeros((3, 2), np.float32))
        _, r, te, _, inf = single.step([0.0, 0.0])
        assert rew[0] == r and info["price"][0] == inf["price"]
        if te:
            single.reset()


def test_8_opponent_draws_of_a_market_do_not_depend_on_num_envs():
    sc = pm.Scenario.default(n=3, t=5)
    small, large = _gym_vec(2, scenario=sc, seed=3), _gym_vec(6, scenario=sc, seed=3)
    small.reset(seed=3)
    large.reset(seed=3)
    for _ in range(12):
        _, r2, *_, i2 = small.step(np.zeros((2, 2), np.float32))
        _, r6, *_, i6 = large.step(np.zeros((6, 2), np.float32))
        assert same(r2, r6[:2]) and same(i2["price"], i6["price"][:2])


# --- 9. vector-env opponent callables ----------------------------------------------------------


def test_9_per_agent_callables_get_one_market_at_a_time():
    sc = pm.Scenario.default(n=3, t=4)
    seen = []

    def opp(obs):
        seen.append(np.shape(obs))
        return [0.0, float(obs[0])]  # a bid that depends on the market's own demand

    venv = _gym_vec(4, scenario=sc, agent=0, opponents=[None, opp, "truthful"], seed=[1, 2, 3, 4])
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
def test_9_bad_callable_results_name_agent_and_market_and_change_nothing(ret, exc, words):
    calls = {"n": 0}

    def opp(obs):
        calls["n"] += 1
        return ret if calls["n"] % 3 == 0 else np.zeros(2)

    venv = _gym_vec(
        3, scenario=pm.Scenario.default(n=3, t=4), opponents=["random", opp, "random"], seed=1
    )
    venv.reset(seed=1)
    with pytest.raises(exc) as info:
        venv.step(np.zeros((3, 2), np.float32))
    for w in words:
        assert w in str(info.value)
    assert list(venv.vec.hours) == [0, 0, 0]


def test_9_batched_callable_is_validated_and_clipped():
    sc = pm.Scenario.default(n=3, t=4)
    venv = _gym_vec(
        2, scenario=sc, opponents=lambda o: np.full(o.shape[:-1] + (2,), 1e300), seed=[1, 2]
    )
    venv.reset(seed=[1, 2])
    _, rew, *_ = venv.step(np.zeros((2, 2), np.float32))
    for i, s in enumerate([1, 2]):
        e = pm.MarketEnv(sc, seed=s)
        e.reset()
        joint = np.array([[0, 0], [1, 10], [1, 10]], np.float32)
        assert rew[i] == e.step(joint)[1][0]
    bad = _gym_vec(2, scenario=sc, opponents=lambda o: np.full(o.shape[:-1] + (2,), np.inf))
    bad.reset(seed=0)
    with pytest.raises(ValueError, match=r"gen_1 in market 0.*inf"):
        bad.step(np.zeros((2, 2), np.float32))


# --- 10. clipping in float64, values reported as given -----------------------------------------


def test_10_huge_float64_actions_are_clipped_in_every_front():
    sc = pm.Scenario.default(n=3, t=4)
    big, edge = np.array([1e300, -1e39]), np.array([1.0, -10.0], np.float32)
    single = gymnasium.make(ENV_ID, scenario=sc, seed=0).unwrapped
    single.reset(seed=0)
    ref_env = pm.MarketEnv(sc, seed=0)
    ref_env.reset()
    joint = np.zeros((3, 2), np.float32)
    joint[0] = edge
    assert single.step(big)[1] == ref_env.step(joint)[1][0]
    venv = _gym_vec(2, scenario=sc, opponents="truthful", seed=[0, 1])
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


def test_10_non_finite_values_are_reported_as_given():
    env = gymnasium.make(ENV_ID, seed=0).unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"a1 \(price action\) must be finite, got inf"):
        env.step(np.array([0.0, np.inf]))
    venv = _gym_vec(2, seed=0)
    venv.reset(seed=0)
    with pytest.raises(
        ValueError, match=r"market 1: a0 \(withheld share\) must be finite, got -inf"
    ):
        venv.step(np.array([[0.0, 0.0], [-np.inf, 1.0]]))
    assert env.market.t == 0 and list(venv.vec.hours) == [0, 0]


@pytest.mark.integration  # needs stable-baselines3 (make test-integration)
def test_10_sb3_clips_in_float64():
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


# --- 11. scenario validation -----------------------------------------------------------------


def test_11_demand_noise_that_could_overflow_rewards_is_rejected():
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
def test_11_messages_name_the_field_and_value(kwargs, field, value):
    with pytest.raises(ValueError) as info:
        pm.Scenario(**kwargs)
    msg = str(info.value)
    assert f"`{field}`" in msg, msg
    assert value in msg.replace("1e308", "1e+308"), msg
    assert "   " not in msg, msg


# --- 12. threads --------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -1, 1025, 2**70, 1.5, "2"])
def test_12_num_threads_is_checked(bad):
    with pytest.raises((ValueError, TypeError), match="num_threads"):
        pm.VecMarketEnv(num_envs=2, num_threads=bad)


def test_12_num_threads_reports_the_value_given():
    assert pm.VecMarketEnv(num_envs=2, num_threads=7).num_threads == 7
    cores = {os.cpu_count(), len(os.sched_getaffinity(0))}
    assert pm.VecMarketEnv(num_envs=2).num_threads in cores


def test_12_many_envs_share_one_pool():
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


# --- 13. errors and conversions ----------------------------------------------------------------


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
def test_13_negative_ints_are_value_errors(call, name):
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
def test_13_non_numeric_inputs_are_type_errors(bad):
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
def test_13_non_numeric_demand_scalar_is_a_type_error(scalar):
    with pytest.raises(TypeError, match="demand"):
        pm.clear([1.0], [1.0], scalar)


def test_13_step_dict_duplicate_agent_names():
    env = pm.MarketEnv(pm.Scenario.default(n=2, t=3), seed=0)
    env.reset()
    acts = {"gen_0": [0.0, 0.0], "gen_1": [0.0, 0.0]}
    with pytest.raises(ValueError, match="gen_0"):
        env.step_dict(acts, ["gen_0", "gen_0"])
    assert env.t == 0


def test_13_one_env_from_two_threads_says_not_thread_safe():
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
def test_13_sb3_indices_are_honoured_and_checked():
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


# --- 14. pickling -------------------------------------------------------------------------------


def _clone(obj, how):
    return pickle.loads(pickle.dumps(obj)) if how == "pickle" else copy.deepcopy(obj)


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_14_vec_market_env_pickles_mid_episode(how):
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
    assert all(same(x, y) for x, y in zip(_demands(env, 4), _demands(clone, 4), strict=True))


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_14_gymnasium_vector_env_pickles_mid_episode(how):
    env = _gym_vec(3, scenario=pm.Scenario.default(n=3, t=4), seed=5)
    env.reset(seed=5)
    _vector_trace(env, 3)
    clone = _clone(env, how)
    _assert_traces(_vector_trace(env, 9), _vector_trace(clone, 9))


@pytest.mark.integration  # needs stable-baselines3 (make test-integration)
@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_14_sb3_adapter_pickles_mid_episode(how):
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


# --- 15. the spec is in the repository ----------------------------------------------------------


def test_15_no_reference_to_a_design_file_outside_the_repository():
    assert (ROOT / "docs" / "semantics.md").is_file()
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    offenders = []
    for name in files:
        path = ROOT / name
        if name == "tests/test_hardening.py":
            continue
        if path.suffix not in {".py", ".rs", ".md", ".toml", ".pyi", ""} or not path.is_file():
            continue
        text = path.read_text(errors="ignore")
        if re.search(r"DESIGN(\.md)?\b", text):
            offenders.append(name)
    assert not offenders, offenders
    assert "docs/semantics.md" in (ROOT / "README.md").read_text()


# --- found in review after the fixes --------------------------------------------------------


@pytest.mark.parametrize("backstop", [1e6, 1e9, 1e15])
@pytest.mark.parametrize("rule", ["pro_rata", "index"])
def test_review_huge_backstop_does_not_set_the_price(backstop, rule):
    caps = [300.1, 250.3, 180.7, 120.9]
    demand = sum(caps)
    price, cleared = pm.clear(
        [10.0, 20.0, 30.0, 40.0, 3000.0], caps + [backstop], demand, tie_rule=rule
    )
    assert price == 40.0
    assert cleared[4] == 0.0
    assert cleared.sum() == pytest.approx(demand, rel=1e-12)
    s = pm.Scenario(caps + [backstop], [10, 20, 30, 40, 3000], [demand] * 2, demand_noise=0.0)
    env = pm.MarketEnv(s, seed=0, tie_rule=rule)
    env.reset()
    info = env.step(np.zeros((5, 2), np.float32))[4]
    assert info["price"] == 40.0 and info["shortfall"] == 0.0


def test_review_copy_or_pickle_during_a_step_is_a_runtime_error_not_a_panic():
    import copy
    import pickle

    v = pm.VecMarketEnv(pm.Scenario.default(n=50, t=24), num_envs=20000, seed=0, num_threads=1)
    v.reset()
    a = np.zeros((20000, 50, 2), np.float32)
    errors: list[BaseException] = []
    t = threading.Thread(target=v.step, args=(a,))
    t.start()
    while t.is_alive():
        for op in (pickle.dumps, copy.copy, copy.deepcopy, lambda e: e.hours):
            try:
                op(v)
            except BaseException as e:  # noqa: BLE001 - a PanicException is a BaseException
                errors.append(e)
    t.join()
    assert all(type(e) is RuntimeError and "thread" in str(e) for e in errors), errors


def test_review_step_dict_refuses_masked_and_non_numeric_actions():
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


def test_review_huge_int_actions_take_the_same_path_everywhere():
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


def test_review_numpy_bool_seed_is_a_type_error():
    for make in (lambda: pm.MarketEnv(seed=np.True_), lambda: pm.VecMarketEnv(seed=np.True_)):
        with pytest.raises(TypeError, match="seed"):
            make()
