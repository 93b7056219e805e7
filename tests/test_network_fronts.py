"""Networked scenarios (``network``, ``node_names``, ``nodes``, ``lines``,
``demand_shares``, ``demand_bid_nodes``) through every front: MarketEnv,
VecMarketEnv, PettingZoo, Gymnasium (single learner against built-in *and*
callable opponents, and vector), SB3, TorchRL and pickling.

The values are checked, not only the shapes: each hour's node prices, flows
and dispatch equal ``pm.clear_network`` of the recorded offers and node
demands; market i of a VecMarketEnv equals a MarketEnv seeded the same, bit
for bit; feature 0 of an agent's observation is its own node's demand over
that node's peak; an ``("arbitrage", buy, sell)`` battery sees its own
node's last price (docs: /work/notes/network_spec.md, items 1-9).
"""

from __future__ import annotations

import copy
import pickle

import gymnasium as gym
import numpy as np
import pytest
from conftest import same
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import parallel_api_test

import powermarket as pm
from powermarket.gymnasium import ENV_ID

T = 6
# Hourly shares of the two-node market: most demand in the south, where
# the expensive generator is; the line north -> south binds.
SHARES2 = np.array([[0.2, 0.8], [0.3, 0.7], [0.25, 0.75], [0.5, 0.5], [0.6, 0.4], [0.1, 0.9]])
KINDS = ("transport2", "dc3", "storage", "bids")
CASES = [(k, 1) for k in KINDS] + [("transport2", 2), ("storage", 2), ("bids", 2)]
ARB = ("arbitrage", 30.0, 38.0)  # sells when its node's last price is >= 38


def net_scenario(kind: str, segments: int = 1, **kw) -> pm.Scenario:
    """Three generators (50 MW at 20, 30, 40 EUR/MWh) on a small network."""
    base = pm.Scenario.default(n=3, t=T)
    two = dict(
        network="transport",
        node_names=["north", "south"],
        nodes=[0, 0, 1],
        lines=[(0, 1, 10.0, 0.1)],
        demand_shares=SHARES2,
    )
    if kind == "transport2":
        fields = two
    elif kind == "dc3":
        fields = dict(
            network="dc",
            node_names=["a", "b", "c"],
            nodes=[0, 1, 2],
            lines=[(0, 1, 25.0, 0.1), (1, 2, 40.0, 0.2), (0, 2, 15.0, 0.1)],
            demand_shares=[0.2, 0.3, 0.5],
        )
    elif kind == "storage":
        fields = dict(two, nodes=[0, 0, 1, 1], storage=[pm.Storage(power=15, energy=30)])
    elif kind == "bids":
        fields = dict(
            two,
            demand_bids=[(60.0, 0.2), (35.0, 0.3), (25.0, 0.1)],
            demand_bid_nodes=[1, 0, 1],
            price_cap=90.0,
            price_floor=-5.0,
        )
    else:
        raise ValueError(kind)
    fields.update(segments=segments, **kw)
    return base.replace(**fields)


def actions(rng: np.random.Generator, sc: pm.Scenario, lead=()) -> np.ndarray:
    """Random actions of every agent (some outside the boxes, to be clipped)."""
    block = (2,) if sc.segments == 1 else (sc.segments, 2)
    a = rng.uniform(-0.2, 1.2, size=(*lead, sc.num_agents, *block)).astype(np.float32)
    a[..., 1] = rng.uniform(-2.5, 2.5, size=a[..., 1].shape).astype(np.float32)
    if sc.s:  # storage units: a0 (signed power share) in [-1, 1]
        units = a[(slice(None),) * len(lead) + (slice(sc.n, None),)]
        units[..., 0] = rng.uniform(-1.2, 1.2, units[..., 0].shape)
    return a


def shares(sc: pm.Scenario) -> np.ndarray:
    """(T, Z) demand shares."""
    sh = np.asarray(sc.demand_shares, dtype=float)
    return np.broadcast_to(sh, (sc.t, sc.num_nodes)) if sh.ndim == 1 else sh


def reclear(sc: pm.Scenario, rec: dict, h: int, joint: np.ndarray):
    """pm.clear_network of hour h's recorded offers and node demands (spec
    items 2-4); ``joint`` is the hour's actions (the sign of a storage
    block's a0 makes it an offer, even of 0 MW, or a bid)."""
    nodes = np.asarray(sc.nodes)
    k, n = sc.segments, sc.n
    bids = rec["bids"][h].reshape(-1)
    q = rec["offered"][h].reshape(-1)
    onodes = np.repeat(nodes[:n], k)
    node_d = rec["demand"][h] * shares(sc)[h]
    bp, bq, bn = [], [], []
    bid_share = np.zeros(sc.num_nodes)
    for (p, s), z in zip(sc.demand_bids, sc.demand_bid_nodes, strict=True):
        bp.append(p)
        bq.append(s * node_d[z])
        bn.append(z)
        bid_share[z] += s
    inelastic = node_d * np.maximum(0.0, 1.0 - bid_share)
    if sc.s:
        sb = rec["storage_bids"][h].reshape(-1)
        so = rec["storage_offered"][h].reshape(-1)
        snodes = np.repeat(nodes[n:], k)
        dis = joint[sc.n :, ..., 0].reshape(-1) > 0
        bids = np.concatenate([bids, sb[dis]])
        q = np.concatenate([q, so[dis]])
        onodes = np.concatenate([onodes, snodes[dis]])
        chg = ~dis
        bp += list(sb[chg])
        bq += list(-so[chg])
        bn += list(snodes[chg])
    kw = dict(model=sc.network, price_cap=sc.price_cap, price_floor=sc.price_floor)
    kw["shortage_price"] = sc.shortage_price
    if bp:
        kw["demand_bids"] = (np.array(bp), np.array(bq), np.array(bn, dtype=np.int64))
    return pm.clear_network(bids, q, onodes, inelastic, np.asarray(sc.lines), **kw)


def check_episode_against_clear_network(sc, rec: dict, infos: list[dict], acts: list) -> None:
    assert rec["node_prices"].shape == (T, sc.num_nodes)
    assert rec["flows"].shape == (T, sc.num_lines)
    assert rec["congestion_rent"].shape == (T,)
    for h, info in enumerate(infos):
        prices, cleared, flows = reclear(sc, rec, h, acts[h])[:3]
        np.testing.assert_allclose(info["node_prices"], prices, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(info["flows"], flows, rtol=1e-9, atol=1e-7)
        np.testing.assert_allclose(
            rec["cleared"][h].reshape(-1), cleared[: sc.n * sc.segments], rtol=1e-9, atol=1e-7
        )
        assert same(rec["node_prices"][h], info["node_prices"])
        assert same(rec["flows"][h], info["flows"])
        assert rec["congestion_rent"][h] == info["congestion_rent"]
        # the rent (docs/semantics.md): sum over lines of |flow| x |price difference|
        ln = np.asarray(sc.lines)
        dp = prices[ln[:, 1].astype(int)] - prices[ln[:, 0].astype(int)]
        rent = np.sum(np.abs(flows) * np.abs(dp))
        assert info["congestion_rent"] == pytest.approx(rent, rel=1e-9, abs=1e-7)
        # spec item 7: the scalar price is the demand-weighted mean of the node prices
        d = info["demand"] * shares(sc)[h]
        want = prices[0] if np.all(prices == prices[0]) else np.dot(prices, d) / d.sum()
        assert info["price"] == pytest.approx(want, rel=1e-12)
        assert rec["prices"][h] == info["price"]


@pytest.mark.parametrize(("kind", "segments"), CASES)
def test_market_env_clears_on_the_network(kind, segments):
    sc = net_scenario(kind, segments)
    env = pm.MarketEnv(sc, seed=5, observer="market")
    obs, _ = env.reset()
    rng = np.random.default_rng(1)
    infos = []
    sh = shares(sc)
    peak = (np.asarray(sc.demand)[:, None] * sh).max(axis=0)
    nodes = np.asarray(sc.nodes)
    cmax = None
    acts = []
    for h in range(T):
        # spec item 9: feature 0 is the own node's demand over its peak
        d = env.demand[h]
        want0 = (d * sh[h, nodes] * (1.0 / peak[nodes])).astype(np.float32)
        assert same(obs[:, 0], want0), (h, obs[:, 0], want0)
        acts.append(actions(rng, sc))
        obs, rew, term, _, info = env.step(acts[-1])
        infos.append({k: np.copy(v) for k, v in info.items()})
        assert term == (h == T - 1)
        assert info["node_prices"].shape == (sc.num_nodes,)
        assert info["flows"].shape == (sc.num_lines,)
        # feature 4 ("market"): the own node's last price / cmax
        p = info["node_prices"][nodes]
        if cmax is None and np.any(p != 0):
            i = int(np.flatnonzero(p)[0])
            cmax = p[i] / obs[i, 4]
        if cmax is not None:
            np.testing.assert_allclose(obs[:, 4], p / cmax, rtol=1e-6)
    check_episode_against_clear_network(sc, env.episode_record(), infos, acts)
    if kind == "transport2":  # the line binds: a congested price difference, some hour
        rec = env.episode_record()
        assert np.any(np.abs(rec["flows"][:, 0]) == 10.0)
        assert np.any(rec["node_prices"][:, 0] != rec["node_prices"][:, 1])
        assert np.any(rec["congestion_rent"] > 0)


@pytest.mark.parametrize(("kind", "segments"), CASES)
def test_observations_stay_in_their_bounds(kind, segments):
    sc = net_scenario(kind, segments)
    for observer in pm.OBSERVERS:
        env = pm.MarketEnv(sc, seed=3, observer=observer)
        low, high = env.observation_bounds()
        obs, _ = env.reset()
        rng = np.random.default_rng(0)
        for _ in range(T):
            assert (obs >= low).all() and (obs <= high).all(), observer
            obs, *_ = env.step(actions(rng, sc))
        if observer in ("market", "market_v2") and sc.network == "dc":
            assert np.all(low[:, 4] == np.finfo(np.float32).min)
            assert np.all(high[:, 4] == np.finfo(np.float32).max)


@pytest.mark.parametrize(("kind", "segments"), CASES)
def test_vec_env_markets_equal_market_envs_and_pickle(kind, segments):
    sc = net_scenario(kind, segments)
    m = 3
    vec = pm.VecMarketEnv(sc, num_envs=m, seed=[21, 22, 23], observer="market_v2")
    singles = [pm.MarketEnv(sc, seed=21 + i, observer="market_v2") for i in range(m)]
    obs, _ = vec.reset()
    for i, e in enumerate(singles):
        assert same(obs[i], e.reset()[0])
    rng = np.random.default_rng(segments)
    for h in range(2 * T + 3):
        a = actions(rng, sc, (m,))
        obs, rew, term, _, info = vec.step(a)
        assert info["node_prices"].shape == (m, sc.num_nodes)
        assert info["flows"].shape == (m, sc.num_lines)
        assert info["congestion_rent"].shape == (m,)
        for i, e in enumerate(singles):
            o, r, te, _, inf = e.step(a[i])
            assert same(r, rew[i]) and te == term[i]
            for key in ("node_prices", "flows", "cleared"):
                assert same(inf[key], info[key][i]), key
            assert inf["congestion_rent"] == info["congestion_rent"][i]
            assert inf["price"] == info["price"][i]
            if te:
                assert same(o, info["final_obs"][i])
                o, _ = e.reset()
            assert same(o, obs[i])
        if h == T // 2:
            vec = pickle.loads(pickle.dumps(vec))
            singles = [pickle.loads(pickle.dumps(e)) for e in singles]


def test_vec_env_threads_do_not_change_the_results():
    sc = net_scenario("storage", 2)
    m = 33
    runs = []
    for threads in (1, 2, 4):
        vec = pm.VecMarketEnv(sc, num_envs=m, seed=7, num_threads=threads)
        vec.reset()
        rng = np.random.default_rng(0)
        out = []
        for _ in range(T + 2):
            obs, rew, _, _, info = vec.step(actions(rng, sc, (m,)))
            out.append((obs.copy(), rew.copy(), info["node_prices"].copy(), info["flows"].copy()))
        runs.append(out)
    for other in runs[1:]:
        for x, y in zip(runs[0], other, strict=True):
            assert all(same(u, v) for u, v in zip(x, y, strict=True))


@pytest.mark.parametrize(("kind", "segments"), CASES)
def test_pettingzoo_api_node_prices_and_equivalence(kind, segments):
    sc = net_scenario(kind, segments)
    parallel_api_test(pm.parallel_env(sc, seed=0, observer="market"), num_cycles=2 * T)
    env = pm.parallel_env(sc, seed=4, observer="market")
    ref = pm.MarketEnv(sc, seed=4, observer="market")
    env.reset(seed=4)
    ref.reset(seed=4)
    nodes = np.asarray(sc.nodes)
    rng = np.random.default_rng(2)
    h = 0
    while env.agents:
        joint = actions(rng, sc)
        obs, rew, _, _, infos = env.step(dict(zip(env.agents, joint, strict=True)))
        robs, rrew, _, _, rinfo = ref.step(joint)
        for i, name in enumerate(env.possible_agents):
            assert same(obs[name], robs[i]) and rew[name] == float(rrew[i])
            assert infos[name]["node_price"] == rinfo["node_prices"][nodes[i]]
            assert same(infos[name]["node_prices"], rinfo["node_prices"])
            assert same(infos[name]["flows"], rinfo["flows"])
        h += 1
        if h == 2:  # pickling mid-episode: the copy continues as the original
            clone = pickle.loads(pickle.dumps(env))
            a = actions(np.random.default_rng(9), sc)
            d = dict(zip(env.agents, a, strict=True))
            x, y = copy.deepcopy(env).step(d), clone.step(d)
            for u, v in zip(x[:2], y[:2], strict=True):
                assert all(same(u[k], v[k]) for k in u)
    assert h == T


def arbitrage_row(sc: pm.Scenario, unit: int, last: float | None, buy: float, sell: float):
    """What ARB plays for storage unit ``unit`` (one block) after a last price ``last``."""
    ref = sc.storage_reference_prices[unit]
    sell_now = last is not None and last >= sell
    target = sell if sell_now else buy
    x = np.clip((target - ref) / sc.max_bid_delta, -1.0, 1.0)
    return np.array([1.0 if sell_now else -1.0, np.clip(np.arctanh(x), -10, 10)], np.float32)


@pytest.mark.parametrize("kind", ["builtin", "callable"])
def test_gymnasium_single_learner_against_opponents(kind):
    """A generator at the north node learns; the south battery follows
    ARB on its own node's price (built-in) or a callable plays for everyone."""
    sc = net_scenario("storage")
    gen_rule = lambda o: np.array([0.1, 0.5], np.float32)  # noqa: E731
    if kind == "builtin":
        opponents = ["truthful", None, ("markup", 5.0), ARB]
        opponents[1] = "truthful"
    else:
        opponents = [gen_rule, gen_rule, lambda o: np.array([-0.5, 1.0], np.float32)]
    env = gym.make(ENV_ID, scenario=sc, agent="gen_0", opponents=opponents, seed=0)
    check_env(env.unwrapped, skip_render_check=True)
    env = gym.make(ENV_ID, scenario=sc, agent="gen_0", opponents=opponents, seed=9).unwrapped
    ref = pm.MarketEnv(sc, seed=9)
    obs, _ = env.reset(seed=9)
    assert same(obs, ref.reset(seed=9)[0][0])
    rng = np.random.default_rng(3)
    last_node = last_mean = None
    seen = set()
    for _ in range(T):
        a = actions(rng, sc)[0]
        obs, reward, term, _, info = env.step(a)
        joint = np.zeros((4, 2), np.float32)
        if kind == "builtin":
            joint[1] = [0.0, 0.0]
            joint[2] = [0.0, np.arctanh(5.0 / sc.max_bid_delta)]
            joint[3] = arbitrage_row(sc, 0, last_node, *ARB[1:])
            seen.add(
                (
                    last_node is not None and last_node >= ARB[2],
                    last_mean is not None and last_mean >= ARB[2],
                )
            )
        else:
            joint[1] = joint[2] = gen_rule(None)
            joint[3] = [-0.5, 1.0]
        joint[0] = a
        robs, rrew, _, _, rinfo = ref.step(joint)
        assert same(obs, robs[0]) and reward == float(rrew[0])
        assert info["node_price"] == rinfo["node_prices"][0]
        assert same(info["node_prices"], rinfo["node_prices"])
        last_node, last_mean = rinfo["node_prices"][1], rinfo["price"]
    assert term
    if kind == "builtin":  # the node price and the mean price disagreed on ARB's choice
        assert (True, False) in seen, seen


def test_gymnasium_single_pickles_mid_episode():
    sc = net_scenario("storage", 2)
    g = gym.make(ENV_ID, scenario=sc, agent="sto_0", opponents="random", seed=4).unwrapped
    g.reset(seed=4)
    g.step(g.action_space.sample())
    clones = (pickle.loads(pickle.dumps(g)), copy.deepcopy(g))
    a = g.action_space.sample()
    x = g.step(a)
    for clone in clones:
        y = clone.step(a)
        assert same(x[0], y[0]) and x[1] == y[1]
        assert same(x[4]["node_prices"], y[4]["node_prices"])
        assert same(g.market.episode_record()["flows"], clone.market.episode_record()["flows"])


@pytest.mark.parametrize("kind", ["transport2", "storage"])
def test_gymnasium_vector_matches_singles_and_sees_node_prices(kind):
    """Market i of the vector env equals the single env seeded s + i; the
    ARB battery sees its own node's last price in both (the vector env passes
    the (M, Z) node prices to the opponents)."""
    sc = net_scenario(kind)
    m, s = 3, 40
    opp = ["truthful", "truthful", ("markup", 5.0)] + ([ARB] if sc.s else [])
    kw = dict(scenario=sc, agent="gen_0", opponents=opp)
    venv = gym.make_vec(ENV_ID, num_envs=m, vectorization_mode="vector_entry_point", seed=s, **kw)
    singles = [gym.make(ENV_ID, seed=s + i, **kw).unwrapped for i in range(m)]
    obs, _ = venv.reset(seed=[s + i for i in range(m)])
    for i, e in enumerate(singles):
        assert same(obs[i], e.reset(seed=s + i)[0])
    rng = np.random.default_rng(4)
    for h in range(2 * T + 2):
        a = actions(rng, sc, (m,))[:, 0]
        obs, rew, term, _, info = venv.step(a)
        assert info["node_prices"].shape == (m, sc.num_nodes)
        for i, e in enumerate(singles):
            o, r, te, _, inf = e.step(a[i])
            assert same(info["node_prices"][i], inf["node_prices"])
            assert same(info["flows"][i], inf["flows"])
            if te:
                assert same(info["final_obs"][i], o)
                o, _ = e.reset()
            assert same(obs[i], o) and rew[i] == r
        if h == T // 2:  # pickling mid-episode
            venv = pickle.loads(pickle.dumps(venv))
            singles = [pickle.loads(pickle.dumps(e)) for e in singles]


def test_gymnasium_vector_opponents_get_node_prices():
    """The battery's ARB row in the vector env's joint actions follows its node's price."""
    sc = net_scenario("storage")
    opp = ["truthful", "truthful", "truthful", ARB]
    env = gym.make_vec(
        ENV_ID,
        num_envs=2,
        vectorization_mode="vector_entry_point",
        scenario=sc,
        agent=0,
        opponents=opp,
        seed=1,
    ).unwrapped
    env.reset(seed=1)
    last = None
    for _ in range(T - 1):
        env.step(np.zeros((2, 2), np.float32))
        want = [arbitrage_row(sc, 0, None if last is None else last[i], *ARB[1:]) for i in range(2)]
        assert same(env._actions[:, 3], np.stack(want))
        last = env._last_prices[:, 1].copy()


@pytest.mark.integration  # stable-baselines3 and torchrl (make test-integration)
@pytest.mark.parametrize(("kind", "segments"), [("storage", 1), ("dc3", 2), ("bids", 1)])
def test_sb3_and_torchrl_run_networked_markets(kind, segments):
    pytest.importorskip("stable_baselines3")
    pytest.importorskip("torchrl")
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    from powermarket.sb3 import MarketVecEnv
    from powermarket.torchrl import MarketEnv as TorchMarketEnv

    sc = net_scenario(kind, segments)
    a_count = sc.num_agents
    sb3_check_env(gym.make(ENV_ID, scenario=sc, agent=0, opponents="random", seed=0).unwrapped)
    env = MarketVecEnv(sc, num_markets=2, seed=8)
    vec = pm.VecMarketEnv(sc, num_envs=2, seed=8)
    first = env.reset()
    assert same(first, vec.reset()[0].reshape(first.shape))
    rng = np.random.default_rng(5)
    for _ in range(T + 2):
        a = actions(rng, sc, (2,))
        x = env.step(a.reshape(2 * a_count, *a.shape[2:]))
        y = vec.step(a)
        assert same(x[0], y[0].reshape(x[0].shape)) and same(x[1], y[1].reshape(x[1].shape))
    if sc.s == 0:  # one action box: PPO learns a few steps on it
        PPO("MlpPolicy", MarketVecEnv(sc, num_markets=2, seed=1), n_steps=8, batch_size=8).learn(32)
    tenv = TorchMarketEnv(sc, num_envs=2, seed=8)
    vec = pm.VecMarketEnv(sc, num_envs=2, seed=8)
    td = tenv.reset()
    obs, _ = vec.reset()
    assert same(td["agents", "observation"].numpy(), obs[:, : sc.n])
    for _ in range(T + 2):
        td = tenv.rand_action(td)
        parts = [td["agents", "action"]] + ([td["storage", "action"]] if sc.s else [])
        a = torch.cat(parts, dim=1).numpy()
        td = tenv.step(td)
        obs, rew, term, _, _ = vec.step(a)
        assert same(td["next", "agents", "reward"].numpy()[..., 0], rew[:, : sc.n])
        td = tenv.step_mdp(td)
        if term.any():
            td = tenv.reset(td.set("_reset", td["done"].clone()))
    # pickling the SB3 adapter mid-episode
    clone = pickle.loads(pickle.dumps(env))
    a = actions(rng, sc, (2,)).reshape(2 * a_count, *a.shape[2:])
    x, y = env.step(a), clone.step(a)
    assert same(x[0], y[0]) and same(x[1], y[1])
