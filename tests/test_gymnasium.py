"""Gymnasium fronts: check_env, the opponents' actions, seeding, and the vector env.

Opponents are checked through the market's episode record: the bids and offers
of every opponent must be exactly what its strategy implies (docs/semantics.md:
``q_i = (1 - a0) K_i``, ``b_i = c_i + tanh(a1) * max_bid_delta``).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode

import powermarket as pm

ENV_ID = "powermarket/Market-v0"


def same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def make(**kwargs):
    return gym.make(ENV_ID, **kwargs)


def implied(sc: pm.Scenario, a0, a1) -> tuple[np.ndarray, np.ndarray]:
    """(offered, bid) of actions ``a0, a1`` per docs/semantics.md, computed from float32 actions."""
    a0 = np.clip(np.float64(np.float32(a0)), 0.0, 1.0)
    a1 = np.clip(np.float64(np.float32(a1)), -10.0, 10.0)
    return (1.0 - a0) * sc.capacities, sc.costs + np.tanh(a1) * sc.max_bid_delta


def learner_actions(seed: int, t: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.array([rng.uniform(0, 1), rng.uniform(-3, 3)], np.float32) for _ in range(t)]


def play(env, actions) -> list[tuple]:
    return [env.step(a) for a in actions]


def record(env) -> dict:
    return env.unwrapped.market.episode_record()


# --- conformance ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"scenario": pm.Scenario.default(n=1, t=6)},
        {"scenario": pm.Scenario.default(n=2, t=5), "observer": "basic", "agent": 1},
        {"observer": "market", "opponents": "random", "agent": "gen_3"},
        {"observer": "simple_v3", "opponents": ("markup", 5.0)},
        {
            "scenario": pm.Scenario.weekly(n=3),
            "observer": "simple_v2",
            "opponents": ("constant", 0.2, 1.0),
        },
        {"opponents": lambda obs: np.zeros((obs.shape[0], 2), np.float32)},
    ],
)
def test_check_env(kwargs: dict) -> None:
    env = make(seed=0, **kwargs)
    # Rendering (matplotlib) is checked once below; here the other checks.
    check_env(env.unwrapped, skip_render_check=True)


def test_check_env_with_render_modes() -> None:
    check_env(make(seed=0).unwrapped)


def test_spaces() -> None:
    env = make(scenario=pm.Scenario.default(n=3, t=5), observer="basic", agent=2, seed=0)
    u = env.unwrapped
    assert u.action_space == gym.spaces.Box(
        np.array([0.0, -10.0], np.float32), np.array([1.0, 10.0], np.float32), dtype=np.float32
    )
    lo, hi = u.market.observation_bounds()
    assert same(u.observation_space.low, lo[2]) and same(u.observation_space.high, hi[2])
    assert u.observation_space.shape == (2 + 2 * 2,)


# --- step results --------------------------------------------------------------------------


@pytest.mark.parametrize("observer", ["simple", "market"])
def test_types_and_equivalence_to_market_env(observer: str) -> None:
    """Truthful opponents: identical to MarketEnv with the same seed and joint actions."""
    sc = pm.Scenario.default(n=4, t=6)
    env = make(scenario=sc, agent=1, observer=observer, seed=21)
    ref = pm.MarketEnv(sc, observer=observer, seed=21)
    obs, info = env.reset(seed=21)
    robs, rinfo = ref.reset(seed=21)
    assert same(obs, robs[1]) and info == rinfo
    for ep in range(2):
        if ep:
            obs, _ = env.reset()
            robs, _ = ref.reset()
            assert same(obs, robs[1])
        for h, a in enumerate(learner_actions(ep, sc.t)):
            joint = np.zeros((4, 2), np.float32)
            joint[1] = a
            obs, reward, terminated, truncated, info = env.step(a)
            robs, rrew, rterm, rtrunc, rinfo = ref.step(joint)
            assert type(reward) is float
            assert type(terminated) is bool and type(truncated) is bool
            assert obs.dtype == np.float32 and obs.shape == env.observation_space.shape
            assert obs in env.observation_space
            assert same(obs, robs[1])
            assert reward == float(rrew[1])
            assert terminated is rterm and truncated is rtrunc
            assert terminated is (h == sc.t - 1)
            assert info["price"] == rinfo["price"] and info["demand"] == rinfo["demand"]
            assert info["cleared"] == rinfo["cleared"][1]


@pytest.mark.parametrize("agent", [2, "gen_2", np.int64(2)])
def test_agent_by_index_or_name(agent) -> None:
    sc = pm.Scenario.default(n=4, t=5)
    env = make(scenario=sc, agent=agent, seed=3)
    assert env.unwrapped.agent == 2
    env.reset(seed=3)
    acts = learner_actions(1, sc.t)
    play(env, acts)
    rec = record(env)
    offered, bids = zip(*(implied(sc, *a) for a in acts), strict=True)
    np.testing.assert_allclose(rec["offered"][:, 2], np.array(offered)[:, 2], atol=1e-12)
    np.testing.assert_allclose(rec["bids"][:, 2], np.array(bids)[:, 2], atol=1e-12)


@pytest.mark.parametrize("agent", [4, -1, "gen_4", "gen_", "player_0", "gen_x", 1.5, None])
def test_bad_agent(agent) -> None:
    with pytest.raises(ValueError, match="agent"):
        make(scenario=pm.Scenario.default(n=4, t=5), agent=agent)


def test_bad_learner_action() -> None:
    env = make(seed=0)
    env.reset()
    u = env.unwrapped
    for bad in ([np.nan, 0.0], [0.0, np.inf], [0.0, -np.inf]):
        with pytest.raises(ValueError, match="gen_0"):
            env.step(np.array(bad, np.float32))
        with pytest.raises(ValueError, match="gen_0"):
            u.step(np.array(bad, np.float32))
    for shape in [(3,), (1,), (2, 2)]:
        with pytest.raises(ValueError, match="gen_0"):
            u.step(np.zeros(shape, np.float32))
    assert u.market.t == 0, "a rejected action must not step the market"


def test_step_before_reset() -> None:
    env = make(seed=0)
    with pytest.raises(RuntimeError, match="reset"):
        env.unwrapped.step(np.zeros(2, np.float32))
    with pytest.raises((RuntimeError, gym.error.ResetNeeded)):
        env.step(np.zeros(2, np.float32))


def test_out_of_box_learner_action_is_clipped() -> None:
    sc = pm.Scenario.default(n=3, t=4)
    e1 = make(scenario=sc, seed=5)
    e2 = make(scenario=sc, seed=5)
    e1.reset(seed=5)
    e2.reset(seed=5)
    wide = [np.array([1.5, 20.0], np.float32), np.array([-1.0, -30.0], np.float32)]
    box = [np.array([1.0, 10.0], np.float32), np.array([0.0, -10.0], np.float32)]
    for a, b in zip(wide, box, strict=True):
        o1, r1, *_ = e1.unwrapped.step(a)
        o2, r2, *_ = e2.unwrapped.step(b)
        assert same(o1, o2) and r1 == r2


# --- opponents -----------------------------------------------------------------------------

SC = pm.Scenario.default(n=5, t=6)
OTHERS = [0, 1, 3, 4]  # the learner is gen_2 in these tests


def run_with(opponents, seed: int = 1, learner: int = 2, sc: pm.Scenario = SC):
    env = make(scenario=sc, agent=learner, opponents=opponents, seed=seed)
    env.reset(seed=seed)
    play(env, learner_actions(seed, sc.t))
    return env, record(env)


def test_truthful_opponents() -> None:
    _, rec = run_with("truthful")
    assert same(rec["offered"][:, OTHERS], np.broadcast_to(SC.capacities[OTHERS], (6, 4)))
    assert same(rec["bids"][:, OTHERS], np.broadcast_to(SC.costs[OTHERS], (6, 4)))


def test_default_opponents_are_truthful() -> None:
    env = make(scenario=SC, agent=2, seed=1)
    env.reset(seed=1)
    play(env, learner_actions(1, SC.t))
    _, rec = run_with("truthful")
    for k in rec:
        assert same(record(env)[k], rec[k])


@pytest.mark.parametrize("markup", [0.0, 5.0, -12.5, 30.0, 49.0])
def test_markup_opponents(markup: float) -> None:
    _, rec = run_with(("markup", markup))
    assert same(rec["offered"][:, OTHERS], np.broadcast_to(SC.capacities[OTHERS], (6, 4)))
    np.testing.assert_allclose(rec["bids"][:, OTHERS] - SC.costs[OTHERS], markup, atol=1e-4)


@pytest.mark.parametrize("a0,a1", [(0.3, 1.0), (0.0, -0.7), (1.0, 10.0), (1.7, -25.0)])
def test_constant_opponents(a0: float, a1: float) -> None:
    _, rec = run_with(("constant", a0, a1))
    offered, bids = implied(SC, a0, a1)
    np.testing.assert_allclose(
        rec["offered"][:, OTHERS], np.broadcast_to(offered[OTHERS], (6, 4)), rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(
        rec["bids"][:, OTHERS], np.broadcast_to(bids[OTHERS], (6, 4)), rtol=0, atol=1e-12
    )


def test_random_opponents_in_box_varied_and_seeded() -> None:
    env, rec = run_with("random", seed=4)
    off, bids = rec["offered"][:, OTHERS], rec["bids"][:, OTHERS]
    k, c = SC.capacities[OTHERS], SC.costs[OTHERS]
    assert np.all(off >= 0) and np.all(off <= k + 1e-12)
    assert np.all(np.abs(bids - c) <= SC.max_bid_delta + 1e-9)
    assert len(np.unique(off)) == off.size and len(np.unique(bids)) == bids.size
    # same seed: identical; another seed: different
    _, rec2 = run_with("random", seed=4)
    for key in rec:
        assert same(rec[key], rec2[key]), key
    _, rec3 = run_with("random", seed=5)
    assert not np.array_equal(rec3["bids"][:, OTHERS], bids)
    # reset(seed=...) replays the opponents too
    env.reset(seed=4)
    play(env, learner_actions(4, SC.t))
    for key in rec:
        assert same(record(env)[key], rec[key]), key


def test_same_seed_identical_trajectories_with_random_opponents() -> None:
    sc = pm.Scenario.default(n=3, t=5)
    trajs = []
    for _ in range(2):
        env = make(scenario=sc, opponents="random", observer="market", seed=17)
        steps = [env.reset(seed=17)]
        for ep in range(3):  # later episodes use reset() without seed
            if ep:
                steps.append(env.reset())
            steps += play(env, learner_actions(ep, sc.t))
        trajs.append(steps)
    assert len(trajs[0]) == len(trajs[1])
    for s1, s2 in zip(*trajs, strict=True):
        assert len(s1) == len(s2)
        for x, y in zip(s1, s2, strict=True):
            if isinstance(x, dict):
                assert x.keys() == y.keys() and all(same(x[k], y[k]) for k in x)
            else:
                assert same(x, y)


def test_batched_callable_opponents() -> None:
    seen: list[np.ndarray] = []

    def policy(obs: np.ndarray) -> np.ndarray:
        seen.append(obs.copy())
        return np.stack([0.5 * obs[:, 2], obs[:, 0] - 0.5 + obs[:, 2]], axis=1)

    env, rec = run_with(policy)
    assert len(seen) == SC.t
    # the callable saw the opponents' rows of the market observation of each hour
    ref = pm.MarketEnv(SC, seed=1)
    robs, _ = ref.reset(seed=1)
    for h, a in enumerate(learner_actions(1, SC.t)):
        assert seen[h].shape == (4, ref.obs_dim)
        assert same(seen[h], robs[OTHERS])
        joint = np.zeros((5, 2), np.float32)
        joint[OTHERS] = policy(robs[OTHERS])
        joint[2] = a
        offered, bids = implied(SC, joint[:, 0], joint[:, 1])
        np.testing.assert_allclose(rec["offered"][h], offered, rtol=0, atol=1e-12)
        np.testing.assert_allclose(rec["bids"][h], bids, rtol=0, atol=1e-12)
        robs, *_ = ref.step(joint)
    assert same(ref.episode_record()["rewards"], rec["rewards"])


def test_batched_callable_wrong_shape() -> None:
    env = make(scenario=SC, agent=2, opponents=lambda obs: np.zeros((5, 2)), seed=0)
    env.reset()
    with pytest.raises(ValueError, match="shape"):
        env.unwrapped.step(np.zeros(2, np.float32))


def _agent_fn(i: int):
    def f(obs: np.ndarray) -> np.ndarray:
        assert obs.shape == (4,)
        return np.array([0.1 * i, obs[0] + 0.25 * i - 0.5], np.float32)

    return f


def _never(obs):
    raise AssertionError("the learner's own entry must be ignored")


def _check_per_agent(
    rec: dict, fns: dict, sc: pm.Scenario = SC, learner: int = 2, seed: int = 1
) -> None:
    ref = pm.MarketEnv(sc, seed=seed)
    robs, _ = ref.reset(seed=seed)
    for h, a in enumerate(learner_actions(seed, sc.t)):
        joint = np.zeros((sc.n, 2), np.float32)
        for i, f in fns.items():
            joint[i] = f(robs[i])
        joint[learner] = a
        offered, bids = implied(sc, joint[:, 0], joint[:, 1])
        np.testing.assert_allclose(rec["offered"][h], offered, rtol=0, atol=1e-12)
        np.testing.assert_allclose(rec["bids"][h], bids, rtol=0, atol=1e-12)
        robs, *_ = ref.step(joint)
    assert same(ref.episode_record()["rewards"], rec["rewards"])


def test_per_agent_callables_list_of_n() -> None:
    fns = {i: _agent_fn(i) for i in OTHERS}
    _, rec = run_with([fns[0], fns[1], _never, fns[3], fns[4]])
    _check_per_agent(rec, fns)


def test_per_agent_callables_list_of_n_minus_1() -> None:
    fns = {i: _agent_fn(i) for i in OTHERS}
    _, rec = run_with([fns[i] for i in OTHERS])
    _check_per_agent(rec, fns)


def test_mixed_list() -> None:
    """N-1 entries for learner gen_2: gen_0 truthful, gen_1 markup 7.5,
    gen_3 a callable, gen_4 constant."""
    f3 = _agent_fn(3)
    _, rec = run_with(["truthful", ("markup", 7.5), f3, ("constant", 0.4, -0.5)])
    assert same(rec["offered"][:, 0], np.full(6, SC.capacities[0]))
    assert same(rec["bids"][:, 0], np.full(6, SC.costs[0]))
    assert same(rec["offered"][:, 1], np.full(6, SC.capacities[1]))
    np.testing.assert_allclose(rec["bids"][:, 1], SC.costs[1] + 7.5, atol=1e-4)
    off4, bid4 = implied(SC, 0.4, -0.5)
    np.testing.assert_allclose(rec["offered"][:, 4], off4[4], rtol=0, atol=1e-12)
    np.testing.assert_allclose(rec["bids"][:, 4], bid4[4], rtol=0, atol=1e-12)
    # gen_3 followed its callable on the market's observation
    ref = pm.MarketEnv(SC, seed=1)
    robs, _ = ref.reset(seed=1)
    for h, a in enumerate(learner_actions(1, SC.t)):
        joint = np.zeros((5, 2), np.float32)
        joint[1] = [0.0, np.arctanh(7.5 / SC.max_bid_delta)]
        joint[3] = f3(robs[3])
        joint[4] = [0.4, -0.5]
        joint[2] = a
        off, bid = implied(SC, joint[:, 0], joint[:, 1])
        np.testing.assert_allclose(rec["offered"][h, 3], off[3], rtol=0, atol=1e-12)
        np.testing.assert_allclose(rec["bids"][h, 3], bid[3], rtol=0, atol=1e-12)
        robs, *_ = ref.step(joint)


def test_mixed_list_of_n_with_random_entries_is_seeded() -> None:
    opp = ["random", ("markup", 3.0), "truthful", "random", ("constant", 0.0, 0.0)]
    _, r1 = run_with(opp, seed=8)
    _, r2 = run_with(opp, seed=8)
    for key in r1:
        assert same(r1[key], r2[key])
    assert same(r1["bids"][:, 4], np.full(6, SC.costs[4]))
    assert len(np.unique(r1["bids"][:, 0])) == 6 and len(np.unique(r1["bids"][:, 3])) == 6


@pytest.mark.parametrize(
    "opponents",
    [
        "greedy",
        ("markup",),
        ("markup", float("nan")),
        ("constant", 0.1),
        ("constant", 0.1, float("inf")),
        ["truthful"] * 3,
        ["truthful"] * 6,
        ["truthful", "truthful", "truthful", 42],
        42,
    ],
)
def test_bad_opponents(opponents) -> None:
    with pytest.raises(ValueError):
        make(scenario=SC, agent=2, opponents=opponents)


# --- vector env ----------------------------------------------------------------------------


def test_make_vec_matches_single_envs() -> None:
    sc = pm.Scenario.default(n=3, t=4)
    s, m = 100, 4
    venv = gym.make_vec(
        ENV_ID,
        num_envs=m,
        vectorization_mode="vector_entry_point",
        scenario=sc,
        agent=1,
        observer="market",
        seed=s,
    )
    assert venv.num_envs == m
    assert venv.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    singles = [make(scenario=sc, agent=1, observer="market", seed=s + i) for i in range(m)]
    obs, info = venv.reset(seed=[s + i for i in range(m)])  # market i: key s + i, stream 0
    assert obs.shape == (m, 6) and obs.dtype == np.float32
    assert obs in venv.observation_space
    for i, e in enumerate(singles):
        o, _ = e.reset(seed=s + i)
        assert same(obs[i], o)
    rng = np.random.default_rng(0)
    episodes_ended = 0
    for step in range(3 * sc.t):  # three episodes
        acts = np.stack([rng.uniform([0, -3], [1, 3]) for _ in range(m)]).astype(np.float32)
        obs, rew, term, trunc, info = venv.step(acts)
        assert obs.shape == (m, 6) and rew.shape == (m,) and term.shape == trunc.shape == (m,)
        assert term.dtype == trunc.dtype == np.bool_
        last_hour = step % sc.t == sc.t - 1
        assert ("final_obs" in info) is last_hour and ("_final_obs" in info) is last_hour
        for i, e in enumerate(singles):
            o, r, te, tr, inf = e.step(acts[i])
            assert rew[i] == r and term[i] == te and trunc[i] == tr
            assert info["price"][i] == inf["price"] and info["cleared"][i] == inf["cleared"]
            if te:
                assert info["_final_obs"][i]
                assert same(info["final_obs"][i], o)
                o, _ = e.reset()
            assert same(obs[i], o)
        episodes_ended += int(term.all())
    assert episodes_ended == 3


def test_vector_env_spaces_errors_and_seeding() -> None:
    sc = pm.Scenario.default(n=2, t=3)
    venv = gym.make_vec(
        ENV_ID, num_envs=3, vectorization_mode="vector_entry_point", scenario=sc, seed=0
    )
    assert venv.single_action_space == make(scenario=sc).unwrapped.action_space
    assert venv.action_space.shape == (3, 2)
    assert venv.observation_space.shape == (3, 4)
    with pytest.raises(RuntimeError):
        venv.step(np.zeros((3, 2), np.float32))
    venv.reset(seed=0)
    with pytest.raises(ValueError):
        venv.step(np.zeros((2, 2), np.float32))
    bad = np.zeros((3, 2), np.float32)
    bad[1, 0] = np.nan
    with pytest.raises(ValueError, match="market 1"):
        venv.step(bad)
    # same seed: same trajectory, including random opponents
    outs = []
    for _ in range(2):
        v = gym.make_vec(
            ENV_ID,
            num_envs=3,
            vectorization_mode="vector_entry_point",
            scenario=sc,
            opponents="random",
            seed=9,
        )
        run = [v.reset(seed=9)[0]]
        for _ in range(2 * sc.t):
            run.append(v.step(np.full((3, 2), 0.5, np.float32))[:2])
        outs.append(run)
    assert same(outs[0][0], outs[1][0])
    for (o1, r1), (o2, r2) in zip(outs[0][1:], outs[1][1:], strict=True):
        assert same(o1, o2) and same(r1, r2)


@pytest.mark.parametrize(
    "opponents", ["truthful", "random", ("markup", 7.5), ("constant", 0.2, -1.0)]
)
def test_single_learner_step_is_the_market_step_with_the_opponents_rows(opponents):
    """The single env's step equals a MarketEnv step whose other rows are the
    built-in opponents' actions (drawn from their own RNG, keyed seed ^ salt),
    for a plain pair, a float32 array and a (2, 1) array alike."""
    import gymnasium

    from powermarket.gymnasium import _OPPONENT_SEED_SALT

    sc = pm.Scenario.default(n=4, t=24)
    kw = dict(scenario=sc, agent=2, opponents=opponents, seed=11)
    fast = gymnasium.make("powermarket/Market-v0", **kw).unwrapped
    market = pm.MarketEnv(sc, seed=11)
    specs = [opponents] * 4
    specs[2] = "truthful"
    rng = np.random.default_rng(3)
    for episode in range(3):
        ops = pm._core.Opponents(specs, sc.max_bid_delta, seed=episode ^ _OPPONENT_SEED_SALT)
        obs, _ = market.reset(seed=episode)
        assert np.array_equal(fast.reset(seed=episode)[0], obs[2])
        for _ in range(24):
            a = rng.uniform([-0.5, -12.0], [1.5, 12.0])
            given = [list(map(float, a)), a.astype(np.float32), a.reshape(2, 1)][episode]
            got = fast.step(given)
            actions = np.zeros((4, 2), np.float32)
            ops.fill(actions, 2)
            actions[2] = np.clip(a, [0.0, -10.0], [1.0, 10.0]).astype(np.float32)
            obs, rewards, term, trunc, info = market.step(actions)
            assert got[0].dtype == np.float32 and got[0].tobytes() == obs[2].tobytes()
            assert got[1] == float(rewards[2]) and type(got[1]) is float
            assert got[2:4] == (term, trunc)
            assert got[4] == {**info, "cleared": float(info["cleared"][2])}
    # Invalid actions are refused, naming the learner.
    with pytest.raises(RuntimeError):
        fast.step(np.zeros(2, np.float32))
    fast.reset()
    with pytest.raises(ValueError, match="gen_2"):
        fast.step(np.array([np.nan, 0.0], np.float32))


# --- batched opponent callables with several offer blocks ------------------------------------

K_BLOCKS = 3
SC_BLOCKS = pm.Scenario.default(n=5, t=6).replace(segments=K_BLOCKS)


def block_policy(obs: np.ndarray) -> np.ndarray:
    """Opponents' (..., K, 2) blocks from their (..., D) observations: each block
    withholds a different share and bids a different price action."""
    k = np.arange(K_BLOCKS) / K_BLOCKS
    a0 = np.clip(0.3 * obs[..., 2:3] + 0.2 * k, 0.0, 1.0)
    a1 = obs[..., 0:1] - 0.5 + k
    return np.stack([a0, a1], axis=-1)


def test_batched_callable_with_blocks_matches_the_market_stepped_by_hand() -> None:
    seen: list[np.ndarray] = []

    def policy(obs: np.ndarray) -> np.ndarray:
        seen.append(obs.copy())
        return block_policy(obs)

    env = make(scenario=SC_BLOCKS, agent=2, opponents=policy, seed=1)
    env.reset(seed=1)
    ref = pm.MarketEnv(SC_BLOCKS, seed=1)
    robs, _ = ref.reset(seed=1)
    rng = np.random.default_rng(0)
    for h in range(SC_BLOCKS.t):
        a = rng.uniform([0, -3], [1, 3], (K_BLOCKS, 2)).astype(np.float32)
        _, r, *_ = env.step(a)
        assert same(seen[h], robs[OTHERS])
        joint = np.zeros((5, K_BLOCKS, 2), np.float32)
        joint[OTHERS] = block_policy(robs[OTHERS])
        joint[2] = a
        robs, rr, *_ = ref.step(joint)
        assert r == float(rr[2])
    rec, want = record(env), ref.episode_record()
    assert rec["bids"].shape == (SC_BLOCKS.t, 5, K_BLOCKS)
    for key in ("bids", "offered", "cleared", "rewards", "prices"):
        assert same(rec[key], want[key]), key


def test_batched_callable_with_blocks_equals_per_agent_callables_in_the_vector_env() -> None:
    m = 3

    def per_agent(obs: np.ndarray) -> np.ndarray:
        return block_policy(obs)

    def vector(opponents):
        return gym.make_vec(
            ENV_ID,
            num_envs=m,
            vectorization_mode="vector_entry_point",
            scenario=SC_BLOCKS,
            agent=2,
            opponents=opponents,
            seed=7,
        )

    batched, listed = vector(block_policy), vector([per_agent] * 4)
    ob, _ = batched.reset(seed=7)
    ol, _ = listed.reset(seed=7)
    rng = np.random.default_rng(1)
    for _ in range(SC_BLOCKS.t):
        a = rng.uniform([0, -3], [1, 3], (m, K_BLOCKS, 2)).astype(np.float32)
        ob, rb, *_, ib = batched.step(a)
        ol, rl, *_, il = listed.step(a)
        assert same(ob, ol) and same(rb, rl)
        assert same(ib["price"], il["price"]) and same(ib["cleared"], il["cleared"])
