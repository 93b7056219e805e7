"""Adversarial probes of the storage surface (batteries): paths the other
storage tests do not name. A test marked ``xfail(strict=True)`` states the
correct behaviour of a defect found here (its reason says what goes wrong);
the others are probes that pass and guard paths nobody else covers."""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from conftest import same
from test_storage_reference import BIDS, design_scenario, run_side_by_side

import powermarket as pm
from powermarket.gymnasium import ENV_ID

ROOT = Path(__file__).resolve().parents[1]
BIG = 2.0**50  # the largest storage value a scenario accepts


def two_units(**kw) -> pm.Scenario:
    units = [
        pm.Storage(power=15, energy=30),
        pm.Storage(power=10, energy=25, soc_min=0.2, soc_initial=0.2, cost=1.0, reference_price=32),
    ]
    base = dict(storage=units, price_cap=80.0, price_floor=-10.0)
    base.update(kw)
    t = base.pop("t", 4)
    return pm.Scenario.default(n=2, t=t).replace(**base)


def joint(sc: pm.Scenario, rng: np.random.Generator, lead=()) -> np.ndarray:
    block = (2,) if sc.segments == 1 else (sc.segments, 2)
    a = rng.uniform(-1.2, 1.2, size=(*lead, sc.num_agents, *block)).astype(np.float32)
    a[..., 1] *= 6.0
    return a


# --- Defects (xfail strict: each asserts the correct behaviour) -------------


# Fixed defect (found by the adversarial run): the float32 reward-overflow check of Scenario
# ignores storage money: two 2^50 MW units trading at a 2^49 reference price in a market of
# small demand and costs give rewards of +-inf instead of a ScenarioError
def test_storage_rewards_cannot_overflow_float32():
    units = [
        pm.Storage(power=BIG, energy=BIG, soc_initial=1.0, reference_price=BIG / 2),
        pm.Storage(power=BIG, energy=BIG, soc_initial=0.0, reference_price=BIG / 2),
    ]
    try:
        sc = pm.Scenario([1.0], [1e-4], [1e-4, 1e-4], demand_noise=0.0, storage=units)
    except ValueError as e:  # refused up front: the project's rule for generators
        assert "storage" in str(e) or "sto_" in str(e)
        return
    env = pm.MarketEnv(sc, seed=0)
    env.reset()
    # Unit 0 offers all at the lowest price, unit 1 bids for all at the highest.
    _, rewards, *_ = env.step(np.array([[0, 0], [1, -10], [-1, 10]], np.float32))
    assert np.isfinite(rewards).all(), rewards


# Fixed defect (found by the adversarial run): arbitrage_value returns value=inf (with a
# RuntimeWarning) when the optimum overflows float64, instead of a ValueError naming the inputs
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_arbitrage_value_overflow_is_an_error():
    from powermarket import analysis

    unit = pm.Storage(power=1e10, energy=1e10, terminal_value=0.0)
    with pytest.raises(ValueError):
        analysis.arbitrage_value([1e300, -1e300], unit)


# Fixed defect (found by the adversarial run): docs/semantics.md says VecMarketEnv's info['soc']
# of a market that just ended is its next episode's initial state; the env returns the ended
# episode's last state (docs and code disagree)
def test_vec_env_soc_of_an_ended_market_matches_the_docs():
    sc = pm.Scenario.default(n=2, t=3).replace(storage=[pm.Storage(power=15, energy=30)])
    vec = pm.VecMarketEnv(sc, num_envs=1, seed=0)
    vec.reset()
    a = np.zeros((1, 3, 2), np.float32)
    a[:, 2] = [-1.0, 5.0]  # charge: the SoC leaves its initial 15 MWh
    for _ in range(sc.t):
        *_, info = vec.step(a, copy=True)
    text = (ROOT / "docs" / "semantics.md").read_text()
    doc_says_initial = "just ended, its next episode's initial" in text.replace("\n", " ")
    got_initial = info["soc"][0, 0] == 15.0
    assert doc_says_initial == got_initial, (doc_says_initial, info["soc"])


# Fixed defect (found by the adversarial run): the Gymnasium single env's step info has no 'soc'
# with storage, while MarketEnv.step, PettingZoo and the Gymnasium vector env report it
def test_gymnasium_single_info_reports_the_soc_like_the_vector_env():
    sc = two_units()
    single = gym.make(ENV_ID, scenario=sc, agent="sto_0", seed=0)
    single.reset(seed=0)
    vec = gym.make_vec(
        ENV_ID, num_envs=1, vectorization_mode="vector_entry_point", scenario=sc, agent="sto_0"
    )
    vec.reset(seed=0)
    a = np.array([-1.0, 5.0], np.float32)
    info = single.step(a)[4]
    vinfo = vec.step(a[None])[4]
    assert "soc" in vinfo
    assert "soc" in info


@pytest.mark.integration  # torch
# Fixed defect (found by the adversarial run): TorchRL: a storage action of the wrong block
# shape fails inside torch.cat (RuntimeError 'Sizes of tensors must match') instead of a
# ValueError naming ('storage', 'action')
def test_torchrl_bad_storage_action_shape_names_the_group():
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchrl")
    from tensordict import TensorDict

    from powermarket.torchrl import MarketEnv as TorchMarketEnv

    sc = pm.Scenario.default(n=2).replace(storage=[pm.Storage(power=15, energy=30)])
    env = TorchMarketEnv(sc, num_envs=2, seed=0)
    env.reset()
    td = TensorDict(
        {
            "agents": TensorDict({"action": torch.zeros(2, 2, 2)}, batch_size=(2, 2)),
            "storage": {"action": torch.zeros(2, 1, 3)},
        },
        batch_size=(2,),
    )
    with pytest.raises(ValueError, match="storage"):
        env.step(td)


# Fixed defect (found by the adversarial run): a per-agent opponent callable's non-finite a0 for
# a storage unit is called 'a0 (withheld share)' (the generators' name) instead of 'signed power
# share'
def test_non_finite_storage_action_of_a_callable_is_named_as_storage():
    sc = pm.Scenario.default(n=2).replace(storage=[pm.Storage(power=15, energy=30)])
    bad = lambda o: np.array([np.nan, 0.0])  # noqa: E731
    single = gym.make(ENV_ID, scenario=sc, agent=0, opponents=[None, "truthful", bad], seed=0)
    single.reset()
    with pytest.raises(pm.ActionError, match="sto_0.*signed power share"):
        single.step(np.zeros(2, np.float32))


@pytest.mark.integration  # SB3 imports torch
# Fixed defect (found by the adversarial run): SB3: a storage unit's non-finite a0 is called 'a0
# (withheld share)' (the generators' name): the 'env k (sto_0 in market m)' place does not start
# with 'sto_'
def test_non_finite_storage_action_in_sb3_is_named_as_storage():
    pytest.importorskip("stable_baselines3")
    from powermarket.sb3 import MarketVecEnv

    sc = pm.Scenario.default(n=2).replace(storage=[pm.Storage(power=15, energy=30)])
    env = MarketVecEnv(sc, num_markets=2, seed=0)
    env.reset()
    a = np.zeros((6, 2), np.float32)
    a[5, 0] = np.nan  # sto_0 of market 1
    with pytest.raises(pm.ActionError, match="signed power share"):
        env.step(a)


# Fixed defect (found by the adversarial run): PettingZoo: an unknown agent key in a storage
# market gets 'agents are gen_0 ... gen_3' (A - 1 as a generator index) instead of the real
# agent names
def test_pettingzoo_unknown_agent_message_lists_the_storage_units():
    env = pm.parallel_env(two_units(), seed=0)
    env.reset(seed=0)
    actions = {a: np.zeros(2, np.float32) for a in env.agents}
    actions["sto_9"] = np.zeros(2, np.float32)
    with pytest.raises(ValueError) as e:
        env.step(actions)
    assert "gen_3" not in str(e.value) and "sto_1" in str(e.value), str(e.value)


# Fixed defect (found by the adversarial run): Scenario.to_dict() ('all fields as plain Python
# values') returns powermarket.Storage objects for `storage`: json.dumps fails
def test_to_dict_of_a_storage_scenario_is_plain_values():
    sc = two_units()
    d = json.loads(json.dumps(sc.to_dict()))
    assert pm.Scenario.from_dict(d) == sc


# Fixed defect (found by the adversarial run): arbitrage_value(scenario=) takes the mean cost
# with np.mean (pairwise summation): with 34 generators it differs by an ulp from the env's
# reference price
def test_arbitrage_value_default_reference_is_the_envs_bit_for_bit():
    from powermarket import analysis

    costs = [26.979, 4.097, 1.653, 81.327, 91.276, 60.664, 72.95, 54.362, 93.507, 81.585]
    costs += [0.274, 85.74, 3.359, 72.966, 17.566, 86.318, 54.146, 29.971, 42.269, 2.832]
    costs += [12.428, 67.062, 64.719, 61.539, 38.368, 99.721, 98.084, 68.554, 65.046]
    costs += [68.845, 38.892, 13.51, 72.149, 52.535]
    unit = pm.Storage(power=1, energy=1, soc_initial=0.0, efficiency_charge=1.0)
    sc = pm.Scenario([10.0] * len(costs), costs, [5.0], storage=[unit])
    ref = sc.storage_reference_prices[0]
    a = analysis.arbitrage_value([1.0], unit, scenario=sc)
    b = analysis.arbitrage_value([1.0], unit.replace(terminal_value=ref))
    assert a.value == b.value


# Fixed defect (found by the adversarial run): arbitrage_value accepts strings (and bools) as
# prices: ['10', '20'] is solved as [10.0, 20.0] instead of a TypeError
def test_arbitrage_value_refuses_string_prices():
    from powermarket import analysis

    unit = pm.Storage(power=1, energy=2, terminal_value=0.0)
    with pytest.raises(TypeError):
        analysis.arbitrage_value(["10", "20"], unit)


# Fixed defect (found by the adversarial run): arbitrage_value's returned soc can fall below
# soc_min * E by rounding (-1.1e-16 < 0 here): _trajectory's cut-back recomputes the same
# rounded level
def test_arbitrage_value_soc_stays_in_range():
    from powermarket import analysis

    unit = pm.Storage(power=1, energy=1, terminal_value=0.0, soc_initial=0.0)
    res = analysis.arbitrage_value([10.0, 20.0], unit)  # soc [0, 0.95, -1.1e-16]
    assert res.soc.min() >= 0.0, res.soc.min()
    assert res.soc.max() <= 1.0


# Fixed defect (found by the adversarial run): arbitrage_value(scenario='x') fails with
# AttributeError (no 'costs') instead of a TypeError naming `scenario`
def test_arbitrage_value_bad_scenario_is_a_type_error():
    from powermarket import analysis

    with pytest.raises(TypeError, match="scenario"):
        analysis.arbitrage_value([10.0, 20.0], pm.Storage(power=1, energy=2), scenario="x")


# Fixed defect (found by the adversarial run): agent names with leading zeros are accepted:
# gym.make(agent='sto_01') silently learns as sto_1 (not a name of any agent)
def test_agent_name_with_leading_zero_is_refused():
    with pytest.raises(ValueError, match="sto_01"):
        gym.make(ENV_ID, scenario=two_units(), agent="sto_01")


# Fixed defect (found by the adversarial run): pm.Storage keeps what it is given:
# efficiency_charge=None passes the check (None means 'the default'), and a scenario built from
# the unit holds 0.95, so Scenario(storage=[u]).storage[0] != u
def test_storage_fields_round_trip_through_a_scenario():
    # None is "derived" for the optional fields only; numbers are kept as floats.
    with pytest.raises(TypeError, match="efficiency_charge.*number"):
        pm.Storage(power=1, energy=1, efficiency_charge=None)
    u = pm.Storage(power=1, energy=np.float32(2), soc_initial=np.array(0.25))
    assert type(u.energy) is float and u.soc_initial == 0.25
    assert pm.Scenario.default().replace(storage=[u]).storage[0] == u


# Fixed defect (found by the adversarial run): a storage unit given as a Mapping that is not a
# dict (MappingProxyType, UserDict) is read by attribute: 'missing required field `power`'
# although the key is there (arbitrage_value takes any Mapping)
def test_storage_units_as_any_mapping():
    import types

    unit = types.MappingProxyType({"power": 1.0, "energy": 2.0})
    assert pm.Scenario.default().replace(storage=[unit]).storage[0].power == 1.0


# Fixed defect (found by the adversarial run): a reference price too large for the price action
# to show (2^50 with max_bid_delta 0.1: every bid rounds to r_u) is accepted, where the same
# generator cost is refused (|cost| <= 2^40 x max(1, max_bid_delta))
def test_reference_price_too_coarse_for_markups_is_refused():
    unit = pm.Storage(power=1, energy=1, reference_price=BIG)
    with pytest.raises(ValueError, match="reference_price|storage"):
        pm.Scenario.default(n=2).replace(storage=[unit], max_bid_delta=0.1)


# Fixed defect (found by the adversarial run): pm.Storage's TypeErrors say 'storage[0] (sto_0)'
# for a unit made on its own, and a name with a lone surrogate is called 'not a str'
def test_standalone_storage_type_errors_name_the_field_only():
    with pytest.raises(TypeError) as e:
        pm.Storage(power="1", energy=1)
    assert "sto_0" not in str(e.value) and "power" in str(e.value)


# Fixed defect (found by the adversarial run): (not storage-specific) render_mode='rgb_array'
# with segments > 1 fails in matplotlib's stackplot ('y2' is not 1-dimensional): episode() plots
# (T, N, K)
def test_render_with_segments_and_storage():
    pytest.importorskip("matplotlib")
    sc = two_units(segments=2)
    env = pm.parallel_env(sc, seed=0, render_mode="rgb_array")
    env.reset(seed=0)
    env.step({a: np.zeros((2, 2), np.float32) for a in env.agents})
    assert env.render().ndim == 3


# --- Probes that pass: paths the other tests do not name ---------------------


def test_more_than_16_blocks_match_the_reference():
    """K = 17 takes limit_blocks' heap path (the stack holds 16)."""
    sc = design_scenario(17, BIDS["many"], "pay_as_bid", 45.0, 5.0, 2)
    seen = run_side_by_side(sc, "market_v2", "index", seed=3, episodes=1)
    assert seen["crossing"] and seen["cut_charge"], seen


@pytest.mark.parametrize("segments", [1, 3])
def test_vec_env_threads_equal_one_thread(segments):
    sc = two_units(segments=segments, t=5)
    m = 600
    one = pm.VecMarketEnv(sc, num_envs=m, seed=5, num_threads=1, observer="market_v2")
    many = pm.VecMarketEnv(sc, num_envs=m, seed=5, num_threads=4, observer="market_v2")
    assert same(one.reset()[0], many.reset()[0])
    rng = np.random.default_rng(segments)
    for h in range(12):
        a = joint(sc, rng, (m,))
        x, y = one.step(a, copy=True), many.step(a)
        for u, v in zip(x[:4], y[:4], strict=True):
            assert same(u, v), h
        assert set(x[4]) == set(y[4])
        for k in x[4]:
            assert same(np.asarray(x[4][k]), np.asarray(y[4][k])), (h, k)
        if h == 7:
            mask = np.zeros(m, bool)
            mask[::3] = True
            assert same(one.reset(mask=mask)[0], many.reset(mask=mask)[0])


def test_failed_vec_env_calls_leave_the_soc_unchanged():
    sc = pm.Scenario.default(n=2, t=4).replace(storage=[pm.Storage(power=15, energy=30)])
    vec = pm.VecMarketEnv(sc, num_envs=3, seed=0)
    vec.reset()
    a = np.zeros((3, 3, 2), np.float32)
    a[:, 2] = [-1.0, 5.0]
    vec.step(a)
    twin = pickle.loads(pickle.dumps(vec))
    bad = a.copy()
    bad[2, 2, 0] = np.nan
    with pytest.raises(pm.ActionError, match="sto_0 in market 2"):
        vec.step(bad)
    with pytest.raises(ValueError, match="seed"):
        vec.reset(seed=[1, 2], mask=[1, 0, 1])
    with pytest.raises(ValueError, match="mask"):
        vec.reset(mask=[1, 0])
    for _ in range(sc.t):
        x, y = vec.step(a, copy=True), twin.step(a, copy=True)
        assert all(same(p, q) for p, q in zip(x[:4], y[:4], strict=True))
        assert same(x[4]["soc"], y[4]["soc"])


EXTREME_UNITS = [
    pm.Storage(power=1e-300, energy=1.0, efficiency_charge=5e-324, soc_initial=0.0),
    pm.Storage(power=BIG, energy=1.0, efficiency_discharge=1e-300, soc_initial=1.0),
    pm.Storage(power=1.0, energy=BIG, reference_price=-(2.0**45), terminal_value=BIG, cost=BIG),
    pm.Storage(power=3.0, energy=1e-12, soc_min=0.3, soc_initial=0.3, soc_max=0.3),
    pm.Storage(power=5.0, energy=7.0, efficiency_charge=1.0, efficiency_discharge=1.0),
]


@pytest.mark.parametrize("observer", ["simple", "basic", "market_v2"])
@pytest.mark.parametrize("mechanism", ["uniform", "pay_as_bid"])
def test_extreme_units_stay_finite_and_in_bounds(observer, mechanism):
    sc = pm.Scenario(
        [30.0, 1e6],
        [-10.0, 40.0],
        [10.0, 60.0, 1e-3],
        segments=3,
        mechanism=mechanism,
        price_floor=-50.0,
        demand_bids=[(0.0, 0.3)],
        storage=EXTREME_UNITS,
    )
    env = pm.MarketEnv(sc, seed=1, observer=observer)
    low, high = env.observation_bounds()
    rng = np.random.default_rng(7)
    for _ in range(2):
        obs, _ = env.reset()
        for _ in range(sc.t):
            assert ((obs >= low) & (obs <= high)).all()
            a = joint(sc, rng)
            a[..., 0] = np.sign(a[..., 0])  # full blocks: the limits bind
            obs, rewards, *_, info = env.step(a)
            assert np.isfinite(rewards).all() and np.isfinite(info["price"])
        assert ((obs >= low) & (obs <= high)).all()
        soc = env.episode_record()["soc"]
        for u, unit in enumerate(sc.storage):
            lo, hi = unit.soc_min * unit.energy, unit.soc_max * unit.energy
            assert (soc[:, u] >= lo).all() and (soc[:, u] <= hi).all(), (u, soc[:, u])


@pytest.mark.parametrize(
    "opponents", [("arbitrage", 25.0, 35.0), "random", ["truthful", "idle", None, "random"]]
)
def test_gymnasium_single_pickles_and_copies_mid_episode(opponents):
    """The one-block arbitrage rule reads the market's last price: a copy must carry it."""
    sc = two_units()
    env = gym.make(ENV_ID, scenario=sc, agent="sto_0", opponents=opponents, seed=3).unwrapped
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    twins = []
    for h in range(3 * sc.t):
        if h == sc.t + 1:
            twins = [pickle.loads(pickle.dumps(env)), copy.deepcopy(env)]
        a = rng.uniform(-1, 1, 2).astype(np.float32)
        out = env.step(a)
        for twin in twins:
            o = twin.step(a)
            assert same(out[0], o[0]) and out[1] == o[1], h
        if out[2]:
            for e in [env, *twins]:
                e.reset()


@pytest.mark.parametrize("segments", [1, 2])
def test_gymnasium_vector_equals_singles_with_random_storage_opponents(segments):
    """Random and arbitrage storage opponents, a storage learner, K blocks, autoresets."""
    sc = two_units(segments=segments)
    m, s = 3, 40
    opponents = ["random", "idle", ("arbitrage", 20.0, 45.0), None]
    kw = dict(scenario=sc, agent="sto_1", opponents=opponents)
    venv = gym.make_vec(ENV_ID, num_envs=m, vectorization_mode="vector_entry_point", **kw)
    singles = [gym.make(ENV_ID, **kw) for _ in range(m)]
    obs, _ = venv.reset(seed=[s + i for i in range(m)])
    for i, e in enumerate(singles):
        assert same(obs[i], e.reset(seed=s + i)[0])
    rng = np.random.default_rng(4)
    block = (m, 2) if segments == 1 else (m, segments, 2)
    for h in range(2 * sc.t + 1):
        a = rng.uniform(-1, 1, block).astype(np.float32)
        obs, rew, *_ = venv.step(a)
        for i, e in enumerate(singles):
            o, r, te, _, _ = e.step(a[i])
            if te:
                o, _ = e.reset()
            assert same(obs[i], o) and rew[i] == r, (h, i)


def test_gymnasium_vector_pickles_mid_episode_with_arbitrage():
    sc = two_units()
    kw = dict(scenario=sc, agent="sto_1", opponents=("arbitrage", 25.0, 35.0))
    venv = gym.make_vec(ENV_ID, num_envs=3, vectorization_mode="vector_entry_point", seed=1, **kw)
    venv.reset(seed=1)
    venv.reset(options={"reset_mask": np.array([0, 1, 0])})
    rng = np.random.default_rng(0)
    twin = None
    for h in range(3 * sc.t):
        if h == sc.t + 2:
            twin = pickle.loads(pickle.dumps(venv))
        a = rng.uniform(-1, 1, (3, 2)).astype(np.float32)
        o, r, *_ = venv.step(a)
        if twin is not None:
            o2, r2, *_ = twin.step(a)
            assert same(o, o2) and same(r, r2), h


def test_pettingzoo_pickles_and_copies_mid_episode():
    sc = two_units()
    rng = np.random.default_rng(0)
    pz = pm.parallel_env(sc, seed=0)
    pz.reset(seed=0)
    pz.step({a: np.zeros(2, np.float32) for a in pz.agents})
    twins = [pickle.loads(pickle.dumps(pz)), copy.deepcopy(pz)]
    for _ in range(2):
        acts = {a: rng.uniform(-1, 1, 2).astype(np.float32) for a in pz.possible_agents}
        x = pz.step(acts)
        for t in twins:
            y = t.step(acts)
            assert all(same(x[0][k], y[0][k]) for k in x[0]) and x[1] == y[1] and x[4] == y[4]


@pytest.mark.integration  # SB3 imports torch
def test_sb3_pickles_mid_episode():
    sb3 = pytest.importorskip("powermarket.sb3")
    sc = two_units()
    rng = np.random.default_rng(0)
    env = sb3.MarketVecEnv(sc, num_markets=2, seed=0)
    env.reset()
    env.step(np.zeros((8, 2), np.float32))
    twin = pickle.loads(pickle.dumps(env))
    for _ in range(2 * sc.t):
        a = rng.uniform(-1, 1, (8, 2)).astype(np.float32)
        x, y = env.step(a), twin.step(a)
        assert same(x[0], y[0]) and same(x[1], y[1])


NAMES = ['a"b', "back\\slash", "ü€😀", "tab\tnl\nx", "\x00nul", "\x7fdel", "\u2028", "\ufeff", ""]


def test_save_and_load_odd_unit_names(tmp_path):
    units = [pm.Storage(power=1, energy=2, name=n, reference_price=-3.5) for n in NAMES]
    sc = pm.Scenario.default(n=2).replace(storage=units)
    path = tmp_path / "s.toml"
    pm.save_scenario(sc, path)
    assert pm.load_scenario(path) == sc


BASE = (
    "[market]\ndemand_noise = 0.0\n\n[[generators]]\ncapacity = 10.0\ncost = 5.0\n\n"
    "[demand]\nvalues = [5.0, 6.0]\n"
)


def test_storage_files_as_editors_write_them(tmp_path):
    path = tmp_path / "s.toml"
    text = BASE + '\n[[storage]]\nname = "b\\u00e9\\t"\npower = 2\nenergy = 4\n'
    path.write_bytes(("\ufeff" + text).replace("\n", "\r\n").encode())
    sc = pm.load_scenario(path)
    assert sc.storage[0].name == "bé\t" and sc.storage[0].power == 2.0
    path.write_text(BASE + "\n[[storage]]\npower = 2\nenergy = 4\n[[storage]]\nenergy = 1\n")
    with pytest.raises(ValueError, match=r"storage\[1\]\.power` \(line 14\): is missing"):
        pm.load_scenario(path)
    path.write_text(BASE + "\n[[storage]]\npower = 2\nenergy = 4\nterminal_value = nan\n")
    with pytest.raises(ValueError, match=r"storage\[0\]\.terminal_value` \(line 14\)"):
        pm.load_scenario(path)
    path.write_text(BASE + "\n[[storage]]\npower = 2\nenergy = 4\ncost = 1" + "0" * 400 + "\n")
    with pytest.raises(ValueError, match=r"storage\[0\]\.cost` \(line 14\)"):
        pm.load_scenario(path)


def test_core_opponents_check_their_arguments():
    """_core.Opponents (what the Gymnasium fronts build on): one strategy per
    agent of its scenario, a finite max_bid_delta >= 0, one last price per
    market, float32 actions; each a clear error, not a silent misfill."""
    from powermarket._core import Opponents

    sc = two_units()
    with pytest.raises(ValueError, match=r"one per agent of the scenario \(4\), got 3"):
        Opponents(["truthful"] * 3, 50.0, scenario=sc)
    for bad in (float("nan"), -1.0, float("inf")):
        with pytest.raises(ValueError, match="max_bid_delta"):
            Opponents(["truthful"] * 4, bad, scenario=sc)
    ops = Opponents(["truthful"] * 4, 50.0, num_markets=2, scenario=sc)
    with pytest.raises(ValueError, match=r"last_prices: expected one per market \(2\), or \(M, Z\) node prices, got 3"):
        ops.fill_batch(np.zeros((2, 4, 2), np.float32), 0, [1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="float32.*float64"):
        ops.fill(np.zeros((4, 2)), 0)
    with pytest.raises(TypeError, match="float32.*list"):
        ops.fill_batch([[0.0]], 0)
    a = np.full((2, 4, 2), 9.0, np.float32)
    ops.fill_batch(a, 1, [30.0, float("nan")])
    assert (a[:, 0] == 0).all() and (a[:, 1] == 9).all()
