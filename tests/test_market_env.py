"""MarketEnv state, determinism and error handling: seeds, pickling, records, bounds.

The semantics checked here are docs/semantics.md's "The environment"; the
expected values are recomputed in NumPy from the scenario and the actions.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from conftest import PER_OFFER_RECORD_KEYS, random_actions

import powermarket as pm

OBSERVERS = ["simple", "simple_v2", "simple_v3", "basic", "market", "market_v2"]


def obs_dim(observer: str, n: int) -> int:
    dims = {"simple": 4, "simple_v2": 5, "simple_v3": 7, "basic": 2 + 2 * (n - 1), "market": 6}
    return {**dims, "market_v2": 9}[observer]


def same(a, b) -> bool:
    """Bit-identical: same dtype, shape and bytes."""
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def run(env: pm.MarketEnv, actions: list[np.ndarray]) -> list[tuple]:
    return [env.step(a) for a in actions]


def assert_steps_identical(xs: list[tuple], ys: list[tuple]) -> None:
    assert len(xs) == len(ys)
    for (o1, r1, te1, tr1, i1), (o2, r2, te2, tr2, i2) in zip(xs, ys, strict=True):
        assert same(o1, o2)
        assert same(r1, r2)
        assert te1 is te2 and tr1 is tr2
        assert set(i1) == set(i2)
        for k in i1:
            assert same(i1[k], i2[k]), k


def assert_records_identical(r1: dict, r2: dict) -> None:
    assert (
        set(r1)
        == set(r2)
        == {
            "bids",
            "offered",
            "cleared",
            "paid",
            "rewards",
            "prices",
            "average_paid",
            "demand",
            "availability",
        }
    )
    for k in r1:
        assert same(r1[k], r2[k]), k


SCENARIOS = {
    "default": pm.Scenario.default(),
    "n1": pm.Scenario.default(n=1, t=6),
    "competitive3": pm.Scenario.competitive(n=3, t=10, competition_rate=2),
    "weekly2": pm.Scenario.weekly(n=2),
    "advanced_noisy": pm.Scenario.advanced().replace(availability_noise=0.15),
}


# --- determinism -------------------------------------------------------------------------


@pytest.mark.parametrize("observer", OBSERVERS)
@pytest.mark.parametrize("name", ["default", "n1", "competitive3"])
def test_same_seed_same_actions_bit_identical(observer: str, name: str) -> None:
    sc = SCENARIOS[name]
    rng = np.random.default_rng(1)
    acts = [random_actions(rng, sc.n) for _ in range(2 * sc.t)]
    e1 = pm.MarketEnv(sc, observer=observer, seed=123)
    e2 = pm.MarketEnv(sc, observer=observer, seed=123)
    for ep in range(2):  # second episode: reset() without seed continues the RNG
        o1, i1 = e1.reset()
        o2, i2 = e2.reset()
        assert same(o1, o2) and i1 == i2
        assert same(e1.demand, e2.demand)
        chunk = acts[ep * sc.t : (ep + 1) * sc.t]
        assert_steps_identical(run(e1, chunk), run(e2, chunk))
        assert_records_identical(e1.episode_record(), e2.episode_record())
        assert same(e1.demand, e2.demand)


def test_constructor_seed_equals_reset_seed() -> None:
    a = pm.MarketEnv(seed=9)
    b = pm.MarketEnv(seed=1)
    c = pm.MarketEnv()
    oa, _ = a.reset()
    ob, _ = b.reset(seed=9)
    oc, _ = c.reset(seed=9)
    assert same(oa, ob) and same(oa, oc)
    assert same(a.demand, b.demand) and same(a.demand, c.demand)


def test_different_seeds_differ() -> None:
    demands = []
    for seed in (0, 1, 2):
        env = pm.MarketEnv(seed=seed)
        env.reset()
        demands.append(env.demand)
    assert not np.array_equal(demands[0], demands[1])
    assert not np.array_equal(demands[0], demands[2])
    assert not np.array_equal(demands[1], demands[2])


def test_unseeded_envs_differ() -> None:
    """seed=None draws from OS entropy."""
    a, b = pm.MarketEnv(), pm.MarketEnv()
    a.reset()
    b.reset()
    assert not np.array_equal(a.demand, b.demand)


def test_reset_seed_reproducible_and_unseeded_reset_redraws() -> None:
    env = pm.MarketEnv(seed=5)
    rng = np.random.default_rng(2)
    acts = [random_actions(rng, 5) for _ in range(24)]
    o1, _ = env.reset(seed=77)
    d1 = env.demand
    s1 = run(env, acts)
    rec1 = env.episode_record()
    o2, _ = env.reset()
    assert not np.array_equal(env.demand, d1), "reset() without seed must draw fresh noise"
    o3, _ = env.reset(seed=77)
    assert same(o1, o3) and same(env.demand, d1)
    assert_steps_identical(s1, run(env, acts))
    assert_records_identical(rec1, env.episode_record())


def test_noise_free_demand_is_the_profile() -> None:
    sc = pm.Scenario.default(n=3, t=12).replace(demand_noise=0.0)
    env = pm.MarketEnv(sc, seed=0)
    env.reset()
    assert same(env.demand, sc.demand)


def test_noisy_demand_stays_within_design_clip() -> None:
    """docs/semantics.md: noise clipped to [-0.5 min(D), max(0, 0.5 (sum K - max D))]."""
    sc = pm.Scenario.default(n=5, t=24).replace(demand_noise=0.5)
    base = sc.demand
    lo = -0.5 * base.min()
    hi = max(0.0, 0.5 * (sc.capacities.sum() - base.max()))
    env = pm.MarketEnv(sc, seed=3)
    hits = 0
    for _ in range(20):
        env.reset()
        noise = env.demand - base
        assert np.all(noise >= lo - 1e-9) and np.all(noise <= hi + 1e-9)
        hits += np.isclose(noise, lo, rtol=0, atol=1e-9).sum()
        hits += np.isclose(noise, hi, rtol=0, atol=1e-9).sum()
    # sd = 0.5 * peak is far wider than the clip range: most draws sit on a bound
    assert hits > 20 * 24 // 2


# --- pickling and copying ----------------------------------------------------------------


def _pickle(env):
    return pickle.loads(pickle.dumps(env))


COPIERS = {"pickle": _pickle, "deepcopy": copy.deepcopy, "copy": copy.copy}


@pytest.mark.parametrize("how", list(COPIERS))
@pytest.mark.parametrize("observer", ["simple", "market"])
def test_copy_mid_episode_continues_identically(how: str, observer: str) -> None:
    sc = pm.Scenario.default(n=4, t=8)
    rng = np.random.default_rng(3)
    acts = [random_actions(rng, 4) for _ in range(8 * 3)]
    env = pm.MarketEnv(sc, observer=observer, seed=11, tie_rule="index")
    env.reset()
    run(env, acts[:5])
    clone = COPIERS[how](env)
    assert clone is not env
    assert clone.t == env.t == 5
    assert (clone.observer, clone.tie_rule, clone.scenario) == (observer, "index", sc)
    assert same(clone.demand, env.demand)
    assert_records_identical(clone.episode_record(), env.episode_record())
    # rest of the episode, then two unseeded resets (RNG state must have been copied)
    assert_steps_identical(run(env, acts[5:8]), run(clone, acts[5:8]))
    for ep in (1, 2):
        o1, i1 = env.reset()
        o2, i2 = clone.reset()
        assert same(o1, o2) and i1 == i2
        chunk = acts[8 * ep : 8 * (ep + 1)]
        assert_steps_identical(run(env, chunk), run(clone, chunk))
        assert_records_identical(env.episode_record(), clone.episode_record())


@pytest.mark.parametrize("how", list(COPIERS))
def test_copy_is_independent(how: str) -> None:
    env = pm.MarketEnv(seed=1)
    env.reset()
    clone = COPIERS[how](env)
    env.step(np.zeros((5, 2), np.float32))
    assert clone.t == 0 and env.t == 1
    assert clone.episode_record()["prices"].shape == (0,)


@pytest.mark.parametrize("how", list(COPIERS))
def test_copy_before_first_reset(how: str) -> None:
    env = pm.MarketEnv(pm.Scenario.default(n=2, t=4), seed=21)
    clone = COPIERS[how](env)
    assert clone.t is None
    with pytest.raises(RuntimeError):
        clone.step(np.zeros((2, 2), np.float32))
    o1, _ = env.reset()
    o2, _ = clone.reset()
    assert same(o1, o2) and same(env.demand, clone.demand)
    acts = [np.full((2, 2), 0.25, np.float32)] * 4
    assert_steps_identical(run(env, acts), run(clone, acts))


@pytest.mark.parametrize("how", list(COPIERS))
def test_copy_after_termination(how: str) -> None:
    env = pm.MarketEnv(pm.Scenario.default(n=2, t=3), seed=4)
    env.reset()
    run(env, [np.zeros((2, 2), np.float32)] * 3)
    clone = COPIERS[how](env)
    with pytest.raises(RuntimeError):
        clone.step(np.zeros((2, 2), np.float32))
    assert_records_identical(env.episode_record(), clone.episode_record())
    o1, _ = env.reset()
    o2, _ = clone.reset()
    assert same(o1, o2)


# --- misuse and bad input ----------------------------------------------------------------


def test_step_before_reset_raises_runtime_error() -> None:
    env = pm.MarketEnv(seed=0)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros((5, 2), np.float32))
    assert env.t is None


def test_step_after_termination_raises_runtime_error() -> None:
    sc = pm.Scenario.default(n=3, t=5)
    env = pm.MarketEnv(sc, seed=0)
    env.reset()
    for h in range(5):
        *_, terminated, truncated, _ = env.step(np.zeros((3, 2), np.float32))
        assert terminated is (h == 4)
        assert truncated is False
    rec = env.episode_record()
    with pytest.raises(RuntimeError):
        env.step(np.zeros((3, 2), np.float32))
    assert env.t == 5
    assert_records_identical(rec, env.episode_record())
    env.reset()
    assert env.t == 0
    env.step(np.zeros((3, 2), np.float32))


BAD_SHAPES = [(5,), (10,), (5, 3), (4, 2), (6, 2), (2, 5), (1, 5, 2), ()]


@pytest.mark.parametrize("shape", BAD_SHAPES)
def test_wrong_action_shape_is_value_error_and_steps_nothing(shape: tuple) -> None:
    env = pm.MarketEnv(seed=0)
    env.reset()
    env.step(np.zeros((5, 2), np.float32))
    rec = env.episode_record()
    with pytest.raises(ValueError, match="actions"):
        env.step(np.zeros(shape, np.float32))
    assert env.t == 1
    assert_records_identical(rec, env.episode_record())


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("agent,component", [(0, 0), (3, 1), (4, 0)])
def test_non_finite_action_names_agent_and_steps_nothing(bad, agent, component) -> None:
    rng = np.random.default_rng(4)
    acts = [random_actions(rng, 5) for _ in range(6)]
    env = pm.MarketEnv(seed=8)
    ref = pm.MarketEnv(seed=8)
    env.reset()
    ref.reset()
    run(env, acts[:2])
    run(ref, acts[:2])
    rec = env.episode_record()
    a = acts[2].copy()
    a[agent, component] = bad
    with pytest.raises(ValueError, match=rf"gen_{agent}\b"):
        env.step(a)
    assert env.t == 2
    assert_records_identical(rec, env.episode_record())
    # nothing was consumed: the env continues exactly like one that never saw the error
    assert_steps_identical(run(env, acts[2:]), run(ref, acts[2:]))
    assert_records_identical(env.episode_record(), ref.episode_record())


def test_non_numeric_actions_are_type_error() -> None:
    env = pm.MarketEnv(seed=0)
    env.reset()
    with pytest.raises(TypeError, match="actions"):
        env.step([["a", "b"]] * 5)
    assert env.t == 0


def test_actions_accept_lists_float64_and_strided() -> None:
    rng = np.random.default_rng(5)
    a = random_actions(rng, 5)
    envs = [pm.MarketEnv(seed=2) for _ in range(4)]
    for e in envs:
        e.reset()
    big = np.zeros((5, 4), np.float32)
    big[:, ::2] = a
    outs = [
        envs[0].step(a),
        envs[1].step(a.astype(np.float64)),
        envs[2].step(a.tolist()),
        envs[3].step(big[:, ::2]),
    ]
    for o in outs[1:]:
        assert_steps_identical([outs[0]], [o])


def test_out_of_box_actions_are_clipped() -> None:
    sc = pm.Scenario.default(n=5, t=6)
    rng = np.random.default_rng(6)
    wide = [random_actions(rng, 5, mix="wide") * np.float32(3.0) for _ in range(6)]
    wide[0][:, 0] = [-5.0, 2.0, 1.0, 0.0, 100.0]
    wide[0][:, 1] = [-1e6, 1e6, 10.0, -10.0, 10.5]
    clipped = [np.clip(a, [0.0, -10.0], [1.0, 10.0]).astype(np.float32) for a in wide]
    assert any(not np.array_equal(w, c) for w, c in zip(wide, clipped, strict=True))
    e1 = pm.MarketEnv(sc, observer="market", seed=3)
    e2 = pm.MarketEnv(sc, observer="market", seed=3)
    e1.reset()
    e2.reset()
    assert_steps_identical(run(e1, wide), run(e2, clipped))
    assert_records_identical(e1.episode_record(), e2.episode_record())


def test_reset_options() -> None:
    env = pm.MarketEnv(seed=0)
    env.reset(options=None)
    env.reset(options={})
    with pytest.raises(ValueError, match="options"):
        env.reset(options={"foo": 1})


@pytest.mark.parametrize("seed", [-1, 1.5, "3", 2**64, [1]])
def test_bad_seeds_are_value_errors(seed) -> None:
    with pytest.raises(ValueError, match="seed"):
        pm.MarketEnv(seed=seed)
    env = pm.MarketEnv(seed=0)
    with pytest.raises(ValueError, match="seed"):
        env.reset(seed=seed)
    assert env.t is None


def test_large_seeds_ok() -> None:
    a = pm.MarketEnv(seed=2**64 - 1)
    a.reset()
    b = pm.MarketEnv(seed=0)
    b.reset(seed=2**64 - 1)
    assert same(a.demand, b.demand)
    b.reset(seed=np.uint64(5))
    c = pm.MarketEnv(seed=5)
    c.reset()
    assert same(b.demand, c.demand)


def test_unknown_observer_lists_valid_names() -> None:
    with pytest.raises(ValueError) as e:
        pm.MarketEnv(observer="fancy")
    msg = str(e.value)
    assert "fancy" in msg
    for name in OBSERVERS:
        assert name in msg


def test_unknown_tie_rule_lists_valid_names() -> None:
    with pytest.raises(ValueError) as e:
        pm.MarketEnv(tie_rule="random")
    msg = str(e.value)
    assert "random" in msg and "pro_rata" in msg and "index" in msg


# --- episode record and per-step semantics -----------------------------------------------


@pytest.mark.parametrize("tie_rule", ["pro_rata", "index"])
@pytest.mark.parametrize("name", ["default", "n1", "competitive3"])
def test_episode_record_matches_steps_and_design(name: str, tie_rule: str) -> None:
    sc = SCENARIOS[name]
    n, t = sc.n, sc.t
    k, c = sc.capacities, sc.costs
    env = pm.MarketEnv(sc, seed=31, tie_rule=tie_rule)
    env.reset()
    rec0 = env.episode_record()
    assert rec0["bids"].shape == (0, n) and rec0["prices"].shape == (0,)
    rng = np.random.default_rng(7)
    acts, steps = [], []
    for h in range(t):
        a = random_actions(rng, n)
        acts.append(a)
        steps.append(env.step(a))
        rec = env.episode_record()
        assert rec["bids"].shape == (h + 1, n)
    rec = env.episode_record()
    for key in PER_OFFER_RECORD_KEYS:
        assert rec[key].shape == (t, n) and rec[key].dtype == np.float64
    assert rec["rewards"].shape == (t, n) and rec["rewards"].dtype == np.float32
    assert rec["prices"].shape == (t,) and rec["prices"].dtype == np.float64
    assert rec["demand"].shape == (t,) and rec["demand"].dtype == np.float64

    a = np.stack(acts).astype(np.float64)  # actions are widened from float32
    a0 = np.clip(a[..., 0], 0.0, 1.0)
    a1 = np.clip(a[..., 1], -10.0, 10.0)
    np.testing.assert_allclose(rec["offered"], (1.0 - a0) * k, rtol=1e-15, atol=1e-12)
    np.testing.assert_allclose(rec["bids"], c + np.tanh(a1) * sc.max_bid_delta, rtol=0, atol=1e-12)
    prices = np.array([s[4]["price"] for s in steps])
    assert same(rec["prices"], prices)
    assert same(rec["demand"], np.array([s[4]["demand"] for s in steps]))
    assert same(rec["demand"], env.demand)
    assert same(rec["cleared"], np.stack([s[4]["cleared"] for s in steps]))
    assert same(rec["rewards"], np.stack([s[1] for s in steps]))
    shortfall = np.array([s[4]["shortfall"] for s in steps])

    # clearing invariants: nobody sells more than offered; supply meets demand or
    # everything offered clears and the gap is the shortfall.
    x = rec["cleared"]
    assert np.all(x >= -1e-12) and np.all(x <= rec["offered"] + 1e-9)
    total_offered = rec["offered"].sum(axis=1)
    d = rec["demand"]
    np.testing.assert_allclose(x.sum(axis=1), np.minimum(d, total_offered), atol=1e-9)
    np.testing.assert_allclose(shortfall, np.maximum(d - total_offered, 0.0), atol=1e-9)
    # the price is one of the bids (no shortage price set) and no cheaper offer is left unsold
    for h in range(t):
        assert np.any(np.isclose(rec["bids"][h], prices[h], rtol=0, atol=1e-12))
        cheaper = rec["bids"][h] < prices[h]
        np.testing.assert_allclose(x[h][cheaper], rec["offered"][h][cheaper], atol=1e-9)
        dearer = rec["bids"][h] > prices[h]
        assert np.all(x[h][dearer] == 0.0)

    # reward formula of docs/semantics.md
    scale = 20.0 / (sc.demand_scale * sc.cost_scale * max(1, t))
    markup = rec["bids"] - c
    profit = (
        (prices[:, None] - c) * x - sc.bid_penalty * markup**2 - sc.lol_penalty * shortfall[:, None]
    )
    np.testing.assert_allclose(
        rec["rewards"], (profit * scale).astype(np.float32), rtol=1e-6, atol=1e-6
    )


def test_info_types_and_reset_info() -> None:
    env = pm.MarketEnv(seed=3)
    obs, info = env.reset()
    assert set(info) == {"demand"}
    assert isinstance(info["demand"], float) and info["demand"] == env.demand[0]
    obs, rewards, terminated, truncated, info = env.step(np.zeros((5, 2), np.float32))
    assert obs.dtype == np.float32 and obs.shape == (5, 4)
    assert rewards.dtype == np.float32 and rewards.shape == (5,)
    assert type(terminated) is bool and type(truncated) is bool
    assert set(info) == {"price", "demand", "shortfall", "average_paid", "cleared"}
    for key in ("price", "demand", "shortfall"):
        assert isinstance(info[key], float)
    assert info["cleared"].dtype == np.float64 and info["cleared"].shape == (5,)


def test_step_returns_new_arrays() -> None:
    env = pm.MarketEnv(seed=3)
    o0, _ = env.reset()
    keep_o0 = o0.copy()
    o1, r1, *_, i1 = env.step(np.zeros((5, 2), np.float32))
    keep = (o1.copy(), r1.copy(), i1["cleared"].copy())
    env.step(np.ones((5, 2), np.float32))
    assert same(o0, keep_o0)
    assert same(o1, keep[0]) and same(r1, keep[1]) and same(i1["cleared"], keep[2])


def test_simple_and_market_observations_follow_design() -> None:
    sc = pm.Scenario.default(n=4, t=30)
    k, c = sc.capacities, sc.costs
    ds, cs, ks = sc.demand_scale, sc.cost_scale, sc.capacity_scale
    es = pm.MarketEnv(sc, observer="simple", seed=2)
    em = pm.MarketEnv(sc, observer="market", seed=2)
    os_, _ = es.reset()
    om, _ = em.reset()
    d = es.demand
    rng = np.random.default_rng(8)
    last_price, last_cleared = 0.0, np.zeros(4)
    for h in range(sc.t + 1):
        hour = h
        shown_d = d[min(h, sc.t - 1)]
        exp = np.stack(
            [np.full(4, shown_d / ds), k / ks, c / cs, np.full(4, (hour % 24) / 24)], axis=1
        )
        np.testing.assert_allclose(os_, exp, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(om[:, :4], exp, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(om[:, 4], last_price / cs, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(om[:, 5], last_cleared / k, rtol=1e-6, atol=1e-7)
        if h == sc.t:
            break
        a = random_actions(rng, 4)
        os_, *_ = es.step(a)
        om, _, _, _, info = em.step(a)
        last_price, last_cleared = info["price"], info["cleared"]


@pytest.mark.parametrize("observer", OBSERVERS)
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_observations_in_bounds_and_final_obs_valid(observer: str, name: str) -> None:
    sc = SCENARIOS[name].replace(demand_noise=0.2)
    env = pm.MarketEnv(sc, observer=observer, seed=13)
    low, high = env.observation_bounds()
    n, dim = sc.n, obs_dim(observer, sc.n)
    assert low.shape == high.shape == (n, dim)
    assert low.dtype == high.dtype == np.float32
    assert np.all(low <= high)
    rng = np.random.default_rng(9)
    for _ in range(2):
        obs, _ = env.reset()
        assert np.all((obs >= low) & (obs <= high))
        for _ in range(sc.t):
            obs, *_ = env.step(random_actions(rng, n))
            assert obs.shape == (n, dim) and obs.dtype == np.float32
            assert np.all(np.isfinite(obs))
            assert np.all((obs >= low) & (obs <= high)), (obs, low, high)
        assert env.t == sc.t
        # final obs: last hour's demand
        np.testing.assert_allclose(obs[:, 0], env.demand[-1] / sc.demand_scale, rtol=1e-6)


@pytest.mark.parametrize("observer", OBSERVERS)
@pytest.mark.parametrize("n", [1, 2, 5])
def test_properties(observer: str, n: int) -> None:
    sc = pm.Scenario.default(n=n, t=7)
    env = pm.MarketEnv(sc, observer=observer, seed=0, tie_rule="index")
    assert env.num_agents == n
    assert env.obs_dim == obs_dim(observer, n)
    assert env.horizon == 7
    assert env.observer == observer and env.tie_rule == "index"
    assert env.scenario == sc
    assert env.t is None
    assert env.demand.shape == (7,)
    obs, _ = env.reset()
    assert obs.shape == (n, env.obs_dim)
    assert env.t == 0
    env.step(np.zeros((n, 2), np.float32))
    assert env.t == 1
    d = env.demand
    d[:] = -1.0
    assert np.all(env.demand > 0), "demand property must be a copy"


def test_defaults() -> None:
    env = pm.MarketEnv()
    assert env.scenario == pm.Scenario.default()
    assert env.observer == "simple" and env.tie_rule == "pro_rata"
    assert "MarketEnv" in repr(env)
