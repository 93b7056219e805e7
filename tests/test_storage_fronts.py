"""Storage units through every front: the scenario API and files, MarketEnv,
VecMarketEnv, PettingZoo, Gymnasium (single learner ``sto_0`` against built-in
and callable opponents, and vector), SB3, TorchRL and pickling. Each front's
transitions are compared with MarketEnv's on the same actions."""

from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np
import pytest
from conftest import same
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import parallel_api_test

import powermarket as pm
from powermarket.gymnasium import ENV_ID


def battery_market(segments: int = 1, **kw) -> pm.Scenario:
    """Three generators and two small batteries (SoC limits bind within a day)."""
    units = [
        pm.Storage(power=15, energy=30, soc_initial=0.5),
        pm.Storage(power=10, energy=25, soc_min=0.2, soc_initial=0.2, cost=1.0, reference_price=32),
    ]
    base = dict(segments=segments, storage=units, price_cap=80.0, price_floor=-10.0)
    base.update(kw)
    return pm.Scenario.default(n=3).replace(**base)


def storage_actions(rng: np.random.Generator, sc: pm.Scenario, lead=()) -> np.ndarray:
    """Random actions for every agent: generators in their box, storage
    units in theirs (a0 in [-1, 1]), with some values outside both boxes."""
    block = (2,) if sc.segments == 1 else (sc.segments, 2)
    a = rng.uniform(-1.3, 1.3, size=(*lead, sc.num_agents, *block)).astype(np.float32)
    a[..., 1] *= 6.0
    return a


SEGMENTS = [1, 2]


def test_storage_fields_presets_and_errors():
    s = pm.Scenario.with_battery()
    assert (s.n, s.s, s.num_agents) == (5, 1, 6)
    u = s.storage[0]
    assert (u.power, u.energy, u.efficiency_charge, u.efficiency_discharge) == (20, 80, 0.95, 0.95)
    assert s.storage_reference_prices == [30.0]  # the mean of linspace(20, 40, 5)
    assert pm.Scenario.default().replace(storage=[pm.Storage(power=20, energy=80)]) == s
    assert pm.Scenario.from_dict(s.to_dict()) == s and pickle.loads(pickle.dumps(s)) == s
    assert s.replace(storage=[]) == pm.Scenario.default()
    with pytest.raises(ValueError, match=r"efficiency_discharge.*\(0, 1\].*1.5"):
        pm.Storage(power=1, energy=1, efficiency_discharge=1.5)
    with pytest.raises(TypeError, match="missing required field `energy`"):
        pm.Scenario.default().replace(storage=[{"power": 1.0}])
    with pytest.raises(pm.ScenarioError) as e:
        pm.Scenario.default().replace(storage=[{"power": 1.0, "energy": 2.0, "soc_min": 0.9}])
    assert (e.value.field, e.value.agent) == ("storage.soc_initial", 5)
    assert "sto_0" in str(e.value)
    with pytest.raises(TypeError, match="list"):
        pm.Scenario.default().replace(storage=pm.Storage(power=1, energy=1))


def test_scenario_files_round_trip_and_locate_errors(tmp_path):
    s = pm.load_scenario("examples/scenarios/two_batteries_day.toml")
    assert [u.name for u in s.storage] == ["fast", "slow"] and s.storage[1].cost == 2.0
    path = tmp_path / "s.toml"
    pm.save_scenario(s, path)
    assert pm.load_scenario(path) == s
    text = path.read_text().replace("energy = 40.0", "energy = -4.0")
    path.write_text(text)
    with pytest.raises(ValueError, match=r"storage\[1\]\.energy.*line \d+.*> 0, got -4"):
        pm.load_scenario(path)
    path.write_text(text.replace("energy = -4.0", "volume = 4.0"))
    with pytest.raises(ValueError, match=r"storage\[1\]\.volume.*unknown field"):
        pm.load_scenario(path)


@pytest.mark.parametrize("segments", SEGMENTS)
def test_vec_env_markets_equal_market_envs_and_pickle(segments):
    sc = battery_market(segments)
    m = 3
    vec = pm.VecMarketEnv(sc, num_envs=m, seed=[11, 12, 13], observer="market_v2")
    singles = [pm.MarketEnv(sc, seed=11 + i, observer="market_v2") for i in range(m)]
    obs, _ = vec.reset()
    for i, e in enumerate(singles):
        assert same(obs[i], e.reset()[0])
    rng = np.random.default_rng(segments)
    for h in range(2 * sc.t + 3):
        a = storage_actions(rng, sc, (m,))
        obs, rew, term, _, info = vec.step(a)
        assert info["soc"].shape == (m, 2)
        for i, e in enumerate(singles):
            o, r, te, _, inf = e.step(a[i])
            assert same(r, rew[i]) and te == term[i]
            assert same(inf["cleared"], info["cleared"][i])
            if te:
                assert same(o, info["final_obs"][i])
                o, _ = e.reset()
            else:
                assert same(inf["soc"], info["soc"][i])
            assert same(o, obs[i])
        if h == sc.t // 2:
            vec = pickle.loads(pickle.dumps(vec))
            singles = [pickle.loads(pickle.dumps(e)) for e in singles]


def test_observations_stay_in_their_bounds():
    sc = battery_market(2)
    for observer in pm.OBSERVERS:
        env = pm.MarketEnv(sc, seed=3, observer=observer)
        low, high = env.observation_bounds()
        assert low.shape == (sc.num_agents, env.obs_dim)
        obs, _ = env.reset()
        rng = np.random.default_rng(0)
        for _ in range(sc.t):
            assert (obs >= low).all() and (obs <= high).all(), observer
            obs, *_ = env.step(storage_actions(rng, sc))


def test_pettingzoo_agents_spaces_and_equivalence():
    sc = battery_market()
    parallel_api_test(pm.parallel_env(sc, seed=0, observer="market"), num_cycles=40)
    env = pm.parallel_env(sc, seed=4, observer="market")
    assert env.possible_agents == ["gen_0", "gen_1", "gen_2", "sto_0", "sto_1"]
    assert env.action_space("sto_1").low.tolist() == [-1.0, -10.0]
    assert env.action_space("gen_0").low.tolist() == [0.0, -10.0]
    ref = pm.MarketEnv(sc, seed=4, observer="market")
    obs, _ = env.reset(seed=4)
    ref.reset(seed=4)
    rng = np.random.default_rng(1)
    while env.agents:
        joint = storage_actions(rng, sc)
        obs, rew, _, _, infos = env.step(dict(zip(env.agents, joint, strict=True)))
        robs, rrew, *_ = ref.step(joint)
        for i, name in enumerate(env.possible_agents):
            assert same(obs[name], robs[i]) and rew[name] == float(rrew[i])
        assert infos["sto_1"]["soc"] == ref.episode_record()["soc"][-1, 1]


def arbitrage_rows(sc: pm.Scenario, last_price: float | None, buy: float, sell: float):
    """What ("arbitrage", buy, sell) plays for each storage unit with one block."""
    rows = []
    for ref in sc.storage_reference_prices:
        sell_now = last_price is not None and last_price >= sell
        target = sell if sell_now else buy
        x = np.clip((target - ref) / sc.max_bid_delta, -1.0, 1.0)
        rows.append([1.0 if sell_now else -1.0, np.float32(np.clip(np.arctanh(x), -10, 10))])
    return np.array(rows, np.float32)


@pytest.mark.parametrize("kind", ["builtin", "callable"])
def test_gymnasium_storage_learner_against_opponents(kind):
    sc = battery_market()
    gen_rule = lambda o: np.array([0.25, 0.5], np.float32)  # noqa: E731
    if kind == "builtin":
        opponents = ["truthful"] * 3 + [("arbitrage", 25.0, 35.0)] * 2
    else:
        opponents = [gen_rule] * 3 + [None, lambda o: np.array([-0.5, 1.0], np.float32)]
        opponents[3] = "idle"
    env = gym.make(ENV_ID, scenario=sc, agent="sto_0", opponents=opponents, seed=0)
    check_env(env.unwrapped, skip_render_check=True)
    assert env.action_space.low.tolist() == [-1.0, -10.0]
    env = gym.make(ENV_ID, scenario=sc, agent="sto_0", opponents=opponents, seed=9)
    ref = pm.MarketEnv(sc, seed=9)
    obs, _ = env.reset(seed=9)
    assert same(obs, ref.reset(seed=9)[0][3])
    rng = np.random.default_rng(3)
    last = None
    for _ in range(sc.t):
        a = storage_actions(rng, sc)[3]
        obs, reward, *_ = env.step(a)
        joint = np.zeros((5, 2), np.float32)
        if kind == "builtin":
            joint[3:] = arbitrage_rows(sc, last, 25.0, 35.0)
        else:
            joint[:3] = gen_rule(None)
            joint[4] = [-0.5, 1.0]
        joint[3] = a
        robs, rrew, _, _, info = ref.step(joint)
        last = info["price"]
        assert same(obs, robs[3]) and reward == float(rrew[3])


def test_gymnasium_vector_storage_learner_matches_singles():
    sc = battery_market()
    m, s = 3, 40
    kw = dict(scenario=sc, agent="sto_1", opponents=("arbitrage", 25.0, 35.0))
    venv = gym.make_vec(ENV_ID, num_envs=m, vectorization_mode="vector_entry_point", seed=s, **kw)
    singles = [gym.make(ENV_ID, seed=s + i, **kw) for i in range(m)]
    obs, _ = venv.reset(seed=[s + i for i in range(m)])
    for i, e in enumerate(singles):
        assert same(obs[i], e.reset(seed=s + i)[0])
    rng = np.random.default_rng(4)
    for _ in range(2 * sc.t):
        a = storage_actions(rng, sc, (m,))[:, 4]
        obs, rew, _, _, info = venv.step(a)
        for i, e in enumerate(singles):
            o, r, te, _, _ = e.step(a[i])
            if te:
                assert same(info["final_obs"][i], o)
                o, _ = e.reset()
            assert same(obs[i], o) and rew[i] == r


def test_agent_names_and_errors_name_storage_units():
    sc = battery_market()
    env = pm.MarketEnv(sc, seed=0)
    env.reset()
    a = np.zeros((5, 2), np.float32)
    a[4, 0] = np.nan
    with pytest.raises(pm.ActionError, match=r"sto_1: a0 \(signed power share\).*NaN") as e:
        env.step(a)
    assert e.value.agent == 4
    with pytest.raises(ValueError, match="sto_0'..'sto_1"):
        gym.make(ENV_ID, scenario=sc, agent="sto_2")
    with pytest.raises(ValueError, match=r"\(5, 2\)"):
        env.step(np.zeros((3, 2), np.float32))


@pytest.mark.integration  # needs stable-baselines3 and torchrl (make test-integration)
def test_sb3_and_torchrl_run_storage_markets():
    pytest.importorskip("stable_baselines3")
    pytest.importorskip("torchrl")
    import torch

    from powermarket.sb3 import MarketVecEnv
    from powermarket.torchrl import MarketEnv as TorchMarketEnv

    sc = battery_market()
    env = MarketVecEnv(sc, num_markets=2, seed=8)
    vec = pm.VecMarketEnv(sc, num_envs=2, seed=8)
    first = env.reset()
    assert same(first, vec.reset()[0].reshape(first.shape))
    assert env.action_space.low.tolist() == [-1.0, -10.0]
    rng = np.random.default_rng(5)
    for _ in range(8):
        a = storage_actions(rng, sc, (2,))
        x = env.step(a.reshape(10, 2))
        y = vec.step(a)
        assert same(x[0], y[0].reshape(x[0].shape)) and same(x[1], y[1].reshape(x[1].shape))
    # Two TorchRL groups: the generators ("agents") and the storage units.
    tenv = TorchMarketEnv(sc, num_envs=2, seed=8)
    assert tenv.group_map == {"agents": ["gen_0", "gen_1", "gen_2"], "storage": ["sto_0", "sto_1"]}
    assert tenv.full_action_spec["storage", "action"].space.low[0, 1].tolist() == [-1.0, -10.0]
    assert tenv.full_action_spec["agents", "action"].space.low[0, 0].tolist() == [0.0, -10.0]
    vec = pm.VecMarketEnv(sc, num_envs=2, seed=8)
    td = tenv.reset()
    obs, _ = vec.reset()
    assert same(td["storage", "observation"].numpy(), obs[:, 3:])
    for _ in range(sc.t + 2):
        td = tenv.rand_action(td)
        a = torch.cat([td["agents", "action"], td["storage", "action"]], dim=1).numpy()
        td = tenv.step(td)
        obs, rew, term, _, info = vec.step(a)
        assert same(td["next", "storage", "reward"].numpy()[..., 0], rew[:, 3:])
        assert same(td["next", "agents", "reward"].numpy()[..., 0], rew[:, :3])
        td = tenv.step_mdp(td)
        if term.any():
            td = tenv.reset(td.set("_reset", td["done"].clone()))


def test_competitive_benchmark_leaves_storage_idle():
    """analysis.competitive with storage: the generators' outcome, the units idle."""
    from powermarket import analysis

    s = pm.Scenario.with_battery().replace(demand_noise=0.0)
    got = analysis.competitive(s)
    want = analysis.competitive(s.replace(storage=[]))
    assert same(got["price"], want["price"]) and same(got["cleared"], want["cleared"])
    env = pm.MarketEnv(s, seed=0)
    env.reset()
    for _ in range(s.t):
        _, _, _, _, info = env.step(np.zeros((6, 2), np.float32))
    assert same(env.episode_record()["prices"], got["price"])
