"""VecMarketEnv against M independent MarketEnv runs, plus buffers, masks and errors.

docs/semantics.md: market i of a batch seeded with the list ``[s_0, ..., s_{M-1}]`` is
bit-identical to a MarketEnv seeded ``s_i`` that is reset (without a seed) whenever its
episode ends (``seeds(s, m)`` below gives ``s_i = s + i``); same-step
autoreset keeps the final observation in ``info``.
"""

from __future__ import annotations

import gc
import re

import numpy as np
import pytest

import powermarket as pm


def same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def actions_for(rng: np.random.Generator, m: int, n: int) -> np.ndarray:
    """Actions partly outside the box (they are clipped the same way in both envs)."""
    a0 = rng.uniform(-0.2, 1.2, (m, n))
    a1 = rng.uniform(-11.0, 11.0, (m, n))
    return np.stack([a0, a1], axis=-1).astype(np.float32)


def seeds(seed: int, m: int) -> list[int]:
    """Per-market seeds ``s + i``: market i then equals ``MarketEnv(seed=s + i)``."""
    return [seed + i for i in range(m)]


class Reference:
    """M separate MarketEnvs stepped the way VecMarketEnv promises to step them."""

    def __init__(self, scenario, m: int, seed: int, observer: str = "simple") -> None:
        self.envs = [pm.MarketEnv(scenario, observer=observer, seed=seed + i) for i in range(m)]

    def reset(self) -> np.ndarray:
        return np.stack([e.reset()[0] for e in self.envs])

    def step(self, actions: np.ndarray):
        obs, rew, term, final, mask = [], [], [], [], []
        price, demand, shortfall, cleared = [], [], [], []
        for e, a in zip(self.envs, actions, strict=True):
            o, r, te, tr, info = e.step(a)
            assert tr is False
            mask.append(te)
            final.append(o)
            if te:
                o, _ = e.reset()
            obs.append(o)
            rew.append(r)
            term.append(te)
            price.append(info["price"])
            demand.append(info["demand"])
            shortfall.append(info["shortfall"])
            cleared.append(info["cleared"])
        return dict(
            obs=np.stack(obs),
            rewards=np.stack(rew),
            terminated=np.array(term),
            final=np.stack(final),
            mask=np.array(mask),
            price=np.array(price),
            demand=np.array(demand),
            shortfall=np.array(shortfall),
            cleared=np.stack(cleared),
        )


def assert_matches(ref: dict, out: tuple) -> None:
    obs, rewards, terminated, truncated, info = out
    assert same(obs, ref["obs"])
    assert same(rewards, ref["rewards"])
    assert same(terminated, ref["terminated"])
    assert same(truncated, np.zeros_like(ref["terminated"]))
    assert same(info["_final_obs"], ref["mask"])
    m = ref["mask"]
    assert same(info["final_obs"][m], ref["final"][m])
    assert same(info["price"], ref["price"])
    assert same(info["demand"], ref["demand"])
    assert same(info["shortfall"], ref["shortfall"])
    assert same(info["cleared"], ref["cleared"])


@pytest.mark.parametrize("observer", ["simple", "market"])
@pytest.mark.parametrize("n", [1, 5])
def test_equals_separate_market_envs_over_several_episodes(observer: str, n: int) -> None:
    t, m, seed = 5, 7, 1000
    sc = pm.Scenario.default(n=n, t=t)
    vec = pm.VecMarketEnv(sc, num_envs=m, observer=observer, seed=seeds(seed, m), num_threads=2)
    ref = Reference(sc, m, seed, observer)
    obs, info = vec.reset()
    assert info == {}
    assert same(obs, ref.reset())
    for i in range(m):
        assert same(vec.episode_demand(i), ref.envs[i].demand)
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(3 * t + 2):  # > 3 episodes
        a = actions_for(rng, m, n)
        out = vec.step(a)
        r = ref.step(a)
        assert_matches(r, out)
        ends += int(r["mask"].all())
        assert same(vec.hours, np.array([e.t for e in ref.envs], dtype=np.int64))
        for i in range(m):
            assert same(vec.episode_demand(i), ref.envs[i].demand)
    assert ends == 3


def test_identical_across_thread_counts_and_equal_to_reference() -> None:
    """M * N = 1500 agents is enough for the parallel path."""
    t, m, n, seed = 4, 300, 5, 77
    sc = pm.Scenario.default(n=n, t=t)
    rng = np.random.default_rng(1)
    acts = [actions_for(rng, m, n) for _ in range(2 * t + 1)]
    runs = {}
    for threads in (1, 2, 4):
        vec = pm.VecMarketEnv(sc, num_envs=m, seed=seeds(seed, m), num_threads=threads)
        assert vec.num_threads == threads
        outs = [vec.reset(copy=True)[0]]
        for a in acts:
            o, r, te, tr, info = vec.step(a, copy=True)
            outs.append((o, r, te, tr, info))
        runs[threads] = outs
    for threads in (2, 4):
        assert same(runs[1][0], runs[threads][0])
        for x, y in zip(runs[1][1:], runs[threads][1:], strict=True):
            for k in range(4):
                assert same(x[k], y[k])
            for key in x[4]:
                assert same(x[4][key], y[4][key]), key
    ref = Reference(sc, m, seed)
    assert same(ref.reset(), runs[4][0])
    for a, out in zip(acts, runs[4][1:], strict=True):
        assert_matches(ref.step(a), out)


def test_autoreset_same_step() -> None:
    t, m, n = 3, 4, 3
    sc = pm.Scenario.default(n=n, t=t)
    vec = pm.VecMarketEnv(sc, num_envs=m, observer="market", seed=seeds(5, m))
    ref = Reference(sc, m, 5, "market")
    vec.reset()
    ref.reset()
    zero = np.zeros((m, n, 2), np.float32)
    for h in range(t - 1):
        _, _, term, _, info = vec.step(zero, copy=True)
        ref.step(zero)
        assert not term.any() and not info["_final_obs"].any()
        assert same(vec.hours, np.full(m, h + 1, dtype=np.int64))
    # last hour: each market's final obs is what its MarketEnv returned with the last step
    last = [e.step(zero[i]) for i, e in enumerate(ref.envs)]
    obs, _, term, trunc, info = vec.step(zero)
    assert term.dtype == np.bool_ and term.all() and not trunc.any()
    assert info["_final_obs"].dtype == np.bool_ and info["_final_obs"].all()
    assert info["final_obs"].shape == obs.shape
    for i in range(m):
        assert same(info["final_obs"][i], last[i][0])
        first, _ = ref.envs[i].reset()
        assert same(obs[i], first), "obs row must be the new episode's first obs"
        assert same(vec.episode_demand(i), ref.envs[i].demand)
        # market observer: the new episode starts without a last price / dispatch
        assert np.all(obs[i][:, 4:] == 0.0)
    assert same(vec.hours, np.zeros(m, dtype=np.int64))
    # the next step is an ordinary one
    _, _, term, _, info = vec.step(zero)
    assert not term.any() and not info["_final_obs"].any()


def test_reset_mask_resets_only_masked_markets() -> None:
    t, m, n, seed = 6, 5, 3, 40
    sc = pm.Scenario.default(n=n, t=t)
    vec = pm.VecMarketEnv(sc, num_envs=m, seed=seeds(seed, m))
    ref = Reference(sc, m, seed)
    vec.reset()
    ref.reset()
    rng = np.random.default_rng(2)
    for _ in range(3):
        a = actions_for(rng, m, n)
        vec.step(a)
        ref.step(a)
    demand_before = [vec.episode_demand(i) for i in range(m)]
    mask = np.array([True, False, True, False, False])
    obs, _ = vec.reset(mask=mask)
    assert same(vec.hours, np.array([0, 3, 0, 3, 3], dtype=np.int64))
    for i in np.flatnonzero(mask):  # no seed: the market's RNG continues
        first, _ = ref.envs[i].reset()
        assert same(obs[i], first)
        assert same(vec.episode_demand(i), ref.envs[i].demand)
        assert not np.array_equal(vec.episode_demand(i), demand_before[i])
    for i in np.flatnonzero(~mask):
        assert same(vec.episode_demand(i), demand_before[i])
    # with a seed list: masked markets are reseeded with their entry, the others carry on
    mask2 = np.array([False, True, False, False, True])
    obs, _ = vec.reset(seed=seeds(900, m), mask=mask2)
    assert same(vec.hours, np.array([0, 0, 0, 3, 0], dtype=np.int64))
    for i in np.flatnonzero(mask2):
        ref.envs[i] = pm.MarketEnv(sc, seed=900 + i)
        first, _ = ref.envs[i].reset()
        assert same(obs[i], first)
        assert same(vec.episode_demand(i), ref.envs[i].demand)
    # every market, reset or not, keeps matching its reference over the next episodes
    for _ in range(2 * t):
        a = actions_for(rng, m, n)
        assert_matches(ref.step(a), vec.step(a))


def test_reset_seed_reseeds_all_markets() -> None:
    sc = pm.Scenario.default(n=2, t=4)
    vec = pm.VecMarketEnv(sc, num_envs=3, seed=1)
    vec.reset()
    vec.step(np.zeros((3, 2, 2), np.float32))
    obs, _ = vec.reset(seed=seeds(50, 3))
    ref = Reference(sc, 3, 50)
    assert same(obs, ref.reset())
    assert same(vec.hours, np.zeros(3, dtype=np.int64))


def test_reset_mask_validation() -> None:
    vec = pm.VecMarketEnv(num_envs=3, seed=0)
    with pytest.raises(ValueError, match="mask"):
        vec.reset(mask=np.array([True, False]))
    assert same(vec.hours, np.full(3, -1, dtype=np.int64))


def test_partial_reset_before_first_reset_names_unstarted_market() -> None:
    vec = pm.VecMarketEnv(pm.Scenario.default(n=2, t=4), num_envs=3, seed=0)
    vec.reset(mask=np.array([True, False, True]))
    assert same(vec.hours, np.array([0, -1, 0], dtype=np.int64))
    with pytest.raises(RuntimeError, match="market 1"):
        vec.step(np.zeros((3, 2, 2), np.float32))
    assert same(vec.hours, np.array([0, -1, 0], dtype=np.int64))


def test_step_before_reset_is_runtime_error() -> None:
    vec = pm.VecMarketEnv(num_envs=2, seed=0)
    assert same(vec.hours, np.full(2, -1, dtype=np.int64))
    with pytest.raises(RuntimeError, match="reset"):
        vec.step(np.zeros((2, 5, 2), np.float32))
    assert same(vec.hours, np.full(2, -1, dtype=np.int64))


def _snapshot(out: tuple) -> list[np.ndarray]:
    obs, rew, term, trunc, info = out
    return [obs.copy(), rew.copy(), term.copy(), trunc.copy()] + [
        info[k].copy() for k in sorted(info)
    ]


@pytest.mark.parametrize(
    "where,value",
    [((3, 1, 0), np.nan), ((3, 1, 1), np.nan), ((0, 0, 1), np.inf), ((5, 4, 0), -np.inf)],
)
def test_bad_action_names_market_and_agent_and_steps_nothing(where, value) -> None:
    t, m, n, seed = 4, 6, 5, 3
    sc = pm.Scenario.default(n=n, t=t)
    vec = pm.VecMarketEnv(sc, num_envs=m, seed=seeds(seed, m))
    ref = Reference(sc, m, seed)
    vec.reset()
    ref.reset()
    rng = np.random.default_rng(3)
    # stop one hour before the end, so that a wrongly executed step would also autoreset
    for _ in range(t - 1):
        a = actions_for(rng, m, n)
        out = vec.step(a)
        ref.step(a)
    views = out
    before = _snapshot(out)
    hours = vec.hours
    demands = [vec.episode_demand(i) for i in range(m)]
    bad = actions_for(rng, m, n)
    bad[where] = value
    market, agent, _ = where
    with pytest.raises(ValueError) as err:
        vec.step(bad)
    assert re.search(rf"\bgen_{agent}\b", str(err.value)), err.value
    assert re.search(rf"\bmarket {market}\b", str(err.value)), err.value
    assert same(vec.hours, hours)
    for x, y in zip(_snapshot(views), before, strict=True):
        assert same(x, y), "buffers must be unchanged after a rejected step"
    for i in range(m):
        assert same(vec.episode_demand(i), demands[i])
    for _ in range(t + 1):
        a = actions_for(rng, m, n)
        assert_matches(ref.step(a), vec.step(a))


@pytest.mark.parametrize(
    "shape", [(6, 5), (6, 4, 2), (6, 6, 2), (5, 5, 2), (7, 5, 2), (6, 5, 3), (6, 5, 2, 1), (30, 2)]
)
def test_wrong_action_shape_steps_nothing(shape) -> None:
    vec = pm.VecMarketEnv(num_envs=6, seed=0)
    vec.reset()
    out = vec.step(np.zeros((6, 5, 2), np.float32))
    before = _snapshot(out)
    with pytest.raises(ValueError, match="actions"):
        vec.step(np.zeros(shape, np.float32))
    assert same(vec.hours, np.ones(6, dtype=np.int64))
    for x, y in zip(_snapshot(out), before, strict=True):
        assert same(x, y)


def test_buffers_outlive_the_env() -> None:
    vec = pm.VecMarketEnv(num_envs=3, seed=0)
    vec.reset()
    obs, rew, term, trunc, info = vec.step(np.zeros((3, 5, 2), np.float32))
    keep = [obs.copy(), rew.copy(), info["cleared"].copy(), info["final_obs"].copy()]
    del vec
    gc.collect()
    junk = [np.full((3, 5, 4), 7.0, np.float32) for _ in range(50)]  # reuse freed memory
    assert same(obs, keep[0]) and same(rew, keep[1])
    assert same(info["cleared"], keep[2]) and same(info["final_obs"], keep[3])
    assert float(obs.sum()) == float(keep[0].sum())
    del junk


def test_copy_true_returns_independent_arrays() -> None:
    vec = pm.VecMarketEnv(num_envs=3, seed=0, observer="market")
    o0, _ = vec.reset(copy=True)
    o0_keep = o0.copy()
    rng = np.random.default_rng(4)
    o1, r1, te1, tr1, i1 = vec.step(actions_for(rng, 3, 5), copy=True)
    keep = _snapshot((o1, r1, te1, tr1, i1))
    o2, r2, te2, tr2, i2 = vec.step(actions_for(rng, 3, 5), copy=True)
    assert same(o0, o0_keep)
    for x, y in zip(_snapshot((o1, r1, te1, tr1, i1)), keep, strict=True):
        assert same(x, y)
    assert not np.shares_memory(o1, o2) and not np.shares_memory(r1, r2)
    assert not np.array_equal(o1, o2)  # market observer: last price changed


def test_copy_false_views_are_overwritten() -> None:
    vec = pm.VecMarketEnv(num_envs=3, seed=0, observer="market")
    o0, _ = vec.reset()
    rng = np.random.default_rng(5)
    o1, r1, _, _, i1 = vec.step(actions_for(rng, 3, 5))
    snap1 = o1.copy()
    o2, r2, _, _, i2 = vec.step(actions_for(rng, 3, 5))
    assert np.shares_memory(o1, o2) and np.shares_memory(o0, o2)
    assert np.shares_memory(r1, r2)
    assert np.shares_memory(i1["price"], i2["price"])
    assert same(o1, o2) and same(r1, r2) and same(i1["cleared"], i2["cleared"])
    assert not np.array_equal(snap1, o2)


def test_float64_and_non_contiguous_actions() -> None:
    m, n = 4, 5
    rng = np.random.default_rng(6)
    acts = [actions_for(rng, m, n) for _ in range(5)]
    envs = [pm.VecMarketEnv(num_envs=m, seed=8) for _ in range(4)]
    for e in envs:
        e.reset()
    for a in acts:
        wide = np.zeros((m, n, 4), np.float32)
        wide[..., ::2] = a
        fortran = np.asfortranarray(a)
        variants = [a, a.astype(np.float64), wide[..., ::2], fortran]
        assert not variants[2].flags.c_contiguous and not variants[3].flags.c_contiguous
        outs = [_snapshot(e.step(v)) for e, v in zip(envs, variants, strict=True)]
        for o in outs[1:]:
            for x, y in zip(outs[0], o, strict=True):
                assert same(x, y)


def test_constructor_validation() -> None:
    with pytest.raises(ValueError, match="num_threads"):
        pm.VecMarketEnv(num_envs=2, num_threads=0)
    with pytest.raises(ValueError, match="num_envs"):
        pm.VecMarketEnv(num_envs=0)
    with pytest.raises(ValueError, match="seed"):
        pm.VecMarketEnv(num_envs=2, seed=-1)
    with pytest.raises(ValueError, match="observer"):
        pm.VecMarketEnv(num_envs=2, observer="nope")
    with pytest.raises(ValueError, match="tie_rule"):
        pm.VecMarketEnv(num_envs=2, tie_rule="nope")
    vec = pm.VecMarketEnv(num_envs=2, seed=0)
    with pytest.raises(ValueError, match="seed"):
        vec.reset(seed=1.5)


def test_properties_and_bounds() -> None:
    sc = pm.Scenario.default(n=3, t=9)
    vec = pm.VecMarketEnv(sc, num_envs=4, observer="basic", seed=0, tie_rule="index")
    single = pm.MarketEnv(sc, observer="basic", tie_rule="index")
    assert (vec.num_envs, vec.num_agents, vec.obs_dim, vec.horizon) == (4, 3, 6, 9)
    assert vec.scenario == sc
    assert vec.num_threads >= 1
    assert pm.VecMarketEnv(sc, num_envs=2, num_threads=3).num_threads == 3
    lo, hi = vec.observation_bounds()
    slo, shi = single.observation_bounds()
    assert same(lo, slo) and same(hi, shi)
    obs, _ = vec.reset()
    assert obs.shape == (4, 3, 6) and obs.dtype == np.float32
    assert np.all((obs >= lo) & (obs <= hi))
    out = vec.step(np.zeros((4, 3, 2), np.float32))
    obs, rew, term, trunc, info = out
    assert rew.shape == (4, 3) and rew.dtype == np.float32
    assert term.shape == trunc.shape == (4,) and term.dtype == trunc.dtype == np.bool_
    assert set(info) == {
        "final_obs",
        "_final_obs",
        "price",
        "demand",
        "shortfall",
        "average_paid",
        "cleared",
    }
    assert info["cleared"].shape == (4, 3) and info["cleared"].dtype == np.float64
    for k in ("price", "demand", "shortfall"):
        assert info[k].shape == (4,) and info[k].dtype == np.float64
    assert vec.hours.dtype == np.int64
    with pytest.raises(ValueError):
        vec.episode_demand(4)


def test_unseeded_vec_envs_differ() -> None:
    a = pm.VecMarketEnv(num_envs=2)
    b = pm.VecMarketEnv(num_envs=2)
    a.reset()
    b.reset()
    assert not np.array_equal(a.episode_demand(0), b.episode_demand(0))
    assert not np.array_equal(a.episode_demand(0), a.episode_demand(1))


@pytest.mark.parametrize("m", [3, 700])
def test_small_and_large_batches_publish_observations_alike(m):
    """Small batches step observations into env memory and copy them; large
    ones (>= 2**17 values) compute them from the state straight into the NumPy
    buffer. Both equal MarketEnv, survive tampering, reset and pickling."""
    import pickle

    s = pm.Scenario.default(n=50, t=4)
    vec = pm.VecMarketEnv(s, num_envs=m, seed=9, num_threads=2)
    ones = [pm.MarketEnv(s, seed=9) if i == 0 else None for i in range(m)]
    obs, _ = vec.reset()
    o0, _ = ones[0].reset()
    np.testing.assert_array_equal(obs[0], o0)
    rng = np.random.default_rng(0)
    for step in range(9):
        a = rng.uniform([0, -2], [1, 2], (m, 50, 2)).astype(np.float32)
        if step == 2:
            obs[:] = -7.0  # scribbles are overwritten by the next step
        if step == 5:
            vec = pickle.loads(pickle.dumps(vec))
        obs, r, term, _, info = vec.step(a)
        o1, r1, t1, _, _ = ones[0].step(a[0])
        if t1:
            np.testing.assert_array_equal(info["final_obs"][0], o1)
            o1, _ = ones[0].reset()
        np.testing.assert_array_equal(obs[0], o1)
        np.testing.assert_array_equal(r[0], r1)
        assert not (obs == -7.0).any()
    obs[:] = 5.0
    obs, _ = vec.reset(mask=np.arange(m) == 0)
    assert not (obs == 5.0).any()  # every row rewritten from the state


def test_the_output_table_is_what_step_returns():
    """_core.VEC_OUTPUTS (name, dtype, width, info key) describes every output
    of VecMarketEnv.step: the tuple's first four items and every info entry."""
    from powermarket._core import VEC_OUTPUTS

    m, sc = 3, pm.Scenario.default(n=4, t=2)
    v = pm.VecMarketEnv(sc, num_envs=m, seed=0, observer="market")
    v.reset()
    out = v.step(np.zeros((m, 4, 2), np.float32))
    info = out[4]
    shapes = {"market": (m,), "agent": (m, 4), "obs": (m, 4, v.obs_dim), "storage": (m, 0)}
    tuple_rows = [row for row in VEC_OUTPUTS if row[3] is None]
    assert [row[0] for row in tuple_rows] == ["obs", "rewards", "terminated", "truncated"]
    for (_, dtype, width, _), got in zip(tuple_rows, out[:4], strict=True):
        assert (got.dtype.name, got.shape) == (dtype, shapes[width])
    # Outputs of no value per market (storage ones without storage, network
    # ones without a network) are left out.
    absent = {"storage", "node", "line", "network"}
    info_rows = {row[3]: row for row in VEC_OUTPUTS if row[3] is not None and row[2] not in absent}
    assert set(info) == set(info_rows)
    for key, (_, dtype, width, _) in info_rows.items():
        assert (info[key].dtype.name, info[key].shape) == (dtype, shapes[width]), key
