"""Storage units (batteries): ``pm.MarketEnv`` against the NumPy ``ReferenceEnv``.

The reference (tests/reference.py) re-implements the storage rules on its
own: the block mapping, the SoC cut in merit order, discharge blocks in the
offer book, charge blocks among the demand bids, settlement, the SoC update
and the storage reward with its terminal value. Both are driven with the
same random actions over whole episodes (the reference takes the env's
realised demand). Tolerances are those of tests/test_env_reference.py (the
reference uses NumPy's tanh, the core its own); the SoC trajectory is
compared to 1e-9 relative.

Also here: the SoC trajectory and the storage rewards recomputed from
``episode_record()`` alone (bit for bit), a hand-computed episode, and
``VecMarketEnv`` against separate ``MarketEnv`` runs on a storage scenario.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import reference as ref
from conftest import random_actions, same

import powermarket as pm

OBS_TOL = {"rtol": 2e-6, "atol": 1e-6}
REWARD_TOL = {"rtol": 1e-5, "atol": 1e-6}
F64_TOL = {"rtol": 1e-9, "atol": 1e-9}
SOC_RTOL = 1e-9  # of E

STORAGE_KEYS = {"storage_bids", "storage_offered", "storage_cleared", "discharge", "charge", "soc"}
GENERATOR_KEYS = {
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


def storage_block_actions(rng: np.random.Generator, blocks: int) -> np.ndarray:
    """(blocks, 2) float32 storage actions: a0 in and outside [-1, 1], exact
    zeros and edges; a1 inside the box, at and past its edges, and zeros."""
    kind0 = rng.integers(0, 6, blocks)
    a0 = np.select(
        [kind0 == 0, kind0 == 1, kind0 == 2, kind0 == 3, kind0 == 4],
        [
            rng.uniform(-1, 1, blocks),
            rng.uniform(-1.5, 1.5, blocks),
            np.zeros(blocks),
            rng.choice([-1.0, 1.0], blocks),
            rng.uniform(-1, 0, blocks),  # charge-heavy: the SoC reaches its top too
        ],
        default=rng.choice([0.5, -0.5, 1.7, -2.0, 0.25], blocks),
    )
    kind1 = rng.integers(0, 4, blocks)
    a1 = np.select(
        [kind1 == 0, kind1 == 1, kind1 == 2],
        [rng.uniform(-3, 3, blocks), rng.uniform(-15, 15, blocks), np.zeros(blocks)],
        default=rng.choice([-10.0, 10.0, 1e3, -0.7, 0.7], blocks),
    )
    return np.stack([a0, a1], axis=1).astype(np.float32)


def draw_actions(
    rng: np.random.Generator, n: int, s: int, k: int, charging: bool = False
) -> np.ndarray:
    """(A, 2) or (A, K, 2) float32: generators then storage units. With
    ``charging``, most storage blocks bid to charge (so that the SoC also
    reaches its top), a few keep their draw (crossing blocks)."""
    sto = storage_block_actions(rng, s * k)
    if charging:
        flip = rng.uniform(size=s * k) < 0.8
        sto[flip, 0] = -np.abs(sto[flip, 0])
    a = np.concatenate([random_actions(rng, n * k, mix="edges"), sto])
    return a if k == 1 else a.reshape(n + s, k, 2)


def compare_records(env: pm.MarketEnv, renv: ref.ReferenceEnv) -> None:
    rec, rrec = env.episode_record(), renv.episode_record()
    assert set(rec) == GENERATOR_KEYS | STORAGE_KEYS == set(rrec)
    for key in set(rec) - {"rewards", "soc"}:
        assert rec[key].shape == rrec[key].shape, key
        assert rec[key].dtype == np.float64, key
        np.testing.assert_allclose(rec[key], rrec[key], **F64_TOL, err_msg=key)
    assert rec["rewards"].dtype == np.float32
    assert rec["rewards"].shape == rrec["rewards"].shape == (env.t, renv.agents)
    np.testing.assert_allclose(rec["rewards"], rrec["rewards"], **REWARD_TOL)
    energy = np.array([u.energy for u in renv.storage])
    assert rec["soc"].shape == rrec["soc"].shape == (env.t + 1, renv.s)
    np.testing.assert_allclose(rec["soc"], rrec["soc"], rtol=0, atol=SOC_RTOL * energy.max())


def run_side_by_side(scenario, observer="simple", tie_rule="pro_rata", *, seed, episodes):
    """Run ``episodes`` episodes on both; return counts of what was seen."""
    env = pm.MarketEnv(scenario, observer=observer, seed=seed, tie_rule=tie_rule)
    renv = ref.ReferenceEnv.from_scenario(scenario, observer=observer, tie_rule=tie_rule)
    n, s, k, horizon = renv.n, renv.s, renv.segments, renv.horizon
    assert s == len(scenario.storage) > 0
    assert (env.num_agents, env.obs_dim) == (n + s, renv.obs_dim)
    energy = np.array([u.energy for u in renv.storage])
    low, high = env.observation_bounds()
    rng = np.random.default_rng(seed)
    seen = dict.fromkeys(
        ("shortage", "crossing", "cut", "soc_min", "soc_max", "partial_charge", "charged"), 0
    )
    seen.update(sold=0, bid_set_price=0, cut_charge=0, cut_discharge=0)
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        noise = scenario.availability_noise > 0
        robs = renv.reset(np.array(env.demand), env.availability if noise else None)
        assert obs.shape == (n + s, renv.obs_dim)
        np.testing.assert_allclose(obs, robs, **OBS_TOL)
        for t in range(horizon):
            actions = draw_actions(rng, n, s, k, charging=(t // 3) % 2 == 0)
            obs, rewards, terminated, _, info = env.step(actions)
            r = renv.step(actions)
            where = f"episode {episode} hour {t}"
            assert terminated is r.terminated, where
            assert info["price"] == pytest.approx(r.price, rel=1e-12, abs=1e-12), where
            assert info["shortfall"] == pytest.approx(r.shortfall, rel=1e-9, abs=1e-9), where
            assert info["average_paid"] == pytest.approx(r.average_paid, rel=1e-9, abs=1e-9)
            assert info["cleared"].shape == (n + s,)
            np.testing.assert_allclose(info["cleared"], r.cleared, **F64_TOL, err_msg=where)
            assert info["soc"].shape == (s,)
            np.testing.assert_allclose(
                info["soc"], r.soc, rtol=0, atol=SOC_RTOL * energy.max(), err_msg=where
            )
            assert rewards.dtype == np.float32 and rewards.shape == (n + s,)
            np.testing.assert_allclose(rewards, r.rewards, **REWARD_TOL, err_msg=where)
            np.testing.assert_allclose(obs, r.obs, **OBS_TOL, err_msg=where)
            assert np.all((obs >= low) & (obs <= high)), (where, obs, low, high)
            # What this hour exercised (from the reference's own record).
            rec = renv.record
            offered = rec["storage_offered"][-1].reshape(s, k)
            x = rec["storage_cleared"][-1].reshape(s, k)
            a = np.clip(actions.reshape(-1, 2)[n * k :, 0].astype(np.float64), -1, 1).reshape(s, k)
            wanted = a * np.array([u.power for u in renv.storage])[:, None] / k
            seen["shortage"] += r.shortfall > 0
            seen["crossing"] += bool(np.any((offered > 0).any(axis=1) & (offered < 0).any(axis=1)))
            seen["cut"] += bool(np.any(offered != wanted))
            seen["cut_charge"] += bool(np.any((wanted < 0) & (offered != wanted)))
            seen["cut_discharge"] += bool(np.any((wanted > 0) & (offered != wanted)))
            lows = np.array([u.lowest for u in renv.storage])
            highs = np.array([u.highest for u in renv.storage])
            seen["soc_min"] += bool(np.any(r.soc <= lows + 1e-9 * energy))
            seen["soc_max"] += bool(np.any(r.soc >= highs - 1e-9 * energy))
            seen["partial_charge"] += bool(np.any((x < 0) & (x > offered + 1e-9)))
            seen["charged"] += bool(np.any(x < 0))
            seen["sold"] += bool(np.any(x > 0))
            bp = rec["storage_bids"][-1].reshape(s, k)
            seen["bid_set_price"] += bool(np.any((offered < 0) & (bp == r.price)))
            if t == horizon // 2:
                compare_records(env, renv)
        compare_records(env, renv)
    return seen


def design_scenario(segments, bids, mechanism, cap, floor, units):
    """Tight supply (shortages happen) and storage that fills and empties."""
    small = pm.Storage(power=12.0, energy=15.0, soc_initial=0.3, soc_min=0.1, soc_max=0.9, cost=0.5)
    slow = pm.Storage(
        power=8.0,
        energy=20.0,
        efficiency_charge=0.9,
        efficiency_discharge=0.8,
        soc_initial=0.8,
        reference_price=25.0,
        terminal_value=12.0,
    )
    return pm.Scenario(
        [20.0, 30.0, 25.0, 16.0],
        [10.0, 30.0, 20.0, 20.0],
        [30.0, 50.0, 62.0, 45.0, 25.0, 20.0, 44.0, 58.0, 15.0, 40.0],
        shortage_price=900.0,
        segments=segments,
        demand_bids=bids,
        mechanism=mechanism,
        price_cap=cap,
        price_floor=floor,
    ).replace(storage=[small, slow][:units])


BIDS = {
    "none": [],
    "many": [(60.0, 0.1), (25.0, 0.15), (25.0, 0.05), (10.0, 0.1), (-5.0, 0.05)],
}


@pytest.mark.parametrize("units", [1, 2])
@pytest.mark.parametrize("segments", [1, 2])
@pytest.mark.parametrize("bids", list(BIDS))
@pytest.mark.parametrize("mechanism", ["uniform", "pay_as_bid"])
@pytest.mark.parametrize("limits", [(None, None), (45.0, 5.0)], ids=["free", "cap_floor"])
def test_design_episodes(units, segments, bids, mechanism, limits):
    cap, floor = limits
    scenario = design_scenario(segments, BIDS[bids], mechanism, cap, floor, units)
    seen = run_side_by_side(scenario, "market", "pro_rata", seed=segments + 10 * units, episodes=4)
    # Each run has its SoC limits cut blocks both ways, charges and sells.
    assert seen["cut_charge"] and seen["cut_discharge"], seen
    assert seen["charged"] and seen["sold"], seen
    if segments == 2:
        assert seen["crossing"], seen


def test_design_episodes_see_every_case():
    """Over a few design runs (tie rule "index"): shortages, partly served
    charge bids, a price set by a charge bid, the SoC at both bounds."""
    total: dict[str, int] = {}
    for seed in range(3):
        scenario = design_scenario(2, BIDS["many"], "pay_as_bid", 45.0, 5.0, 2)
        for key, v in run_side_by_side(scenario, "simple", "index", seed=seed, episodes=4).items():
            total[key] = total.get(key, 0) + v
    for key in ("shortage", "partial_charge", "bid_set_price", "soc_min", "soc_max", "crossing"):
        assert total[key], (key, total)


@pytest.mark.parametrize("tie_rule", ["pro_rata", "index"])
@pytest.mark.parametrize(
    "observer", ["simple", "simple_v2", "simple_v3", "basic", "market", "market_v2"]
)
def test_default_scenario_every_observer(observer, tie_rule):
    """The storage rows of every observer: own features hold the storage
    features, the others generator 0's. The reference price (the mean cost,
    30) equals generator 2's cost: discharge offers tie with it at a1 = 0."""
    scenario = pm.Scenario.default(5, 24).replace(
        storage=[pm.Storage(power=20, energy=80), pm.Storage(power=10, energy=12, cost=2.0)]
    )
    assert 30.0 in list(scenario.costs)
    run_side_by_side(scenario, observer, tie_rule, seed=3, episodes=2)


@pytest.mark.parametrize("noise", [0.0, 0.3])
@pytest.mark.parametrize("observer", ["market_v2", "simple"])
def test_with_ramps_and_availability(observer, noise):
    """Generators with availability, ramp limits and ramp costs (their
    windows follow their own dispatch only), K = 2, pay-as-bid and a cap,
    next to two storage units."""
    t, n = 12, 4
    availability = np.ones((t, n))
    availability[:, 0] = [1, 0.9, 0.2, 0.0, 0.5, 1.0, 0.7, 0.05, 0.3, 0.8, 1.0, 0.6]
    scenario = pm.Scenario(
        [30.0, 25.0, 20.0, 15.0],
        [5.0, 20.0, 30.0, 0.0],
        [40.0, 70.0, 20.0, 60.0, 80.0, 35.0, 50.0, 75.0, 30.0, 65.0, 45.0, 55.0],
        availability=availability,
        availability_noise=noise,
        ramp_limits=[0.2, 0.1, 1.0, 0.3],
        ramp_costs=[0.5, 2.0, 0.0, 1.5],
        shortage_price=300.0,
        segments=2,
        demand_bids=[(25.0, 0.1), (8.0, 0.05)],
        mechanism="pay_as_bid",
        price_cap=250.0,
    ).replace(
        storage=[
            pm.Storage(power=15.0, energy=20.0, cost=1.0),
            pm.Storage(power=5.0, energy=50.0, soc_initial=0.1, terminal_value=3.0),
        ]
    )
    seen = run_side_by_side(scenario, observer, "pro_rata", seed=31, episodes=3)
    assert seen["shortage"] and seen["charged"] and seen["sold"], seen


def test_float64_actions_are_taken_as_float32():
    """Storage actions too: 0.1 as float64 acts as float32(0.1)."""
    scenario = design_scenario(1, [], "uniform", None, None, 1)
    env = pm.MarketEnv(scenario, seed=2)
    env.reset()
    actions = np.zeros((5, 2))
    actions[4] = [0.1, 0.3]
    env.step(actions)
    rec = env.episode_record()
    q = np.float64(np.float32(0.1)) * 12.0
    assert rec["storage_offered"][0, 0] == q != 0.1 * 12.0


def test_zero_quantity_offer_is_the_highest_offer_in_a_shortage():
    """An empty battery offers 0 MW at 500: in a shortage without a cap or
    shortage price, everything clears at the highest offer, that one."""
    battery = pm.Storage(power=20.0, energy=40.0, soc_initial=0.0, reference_price=500.0)
    scenario = pm.Scenario([30.0], [10.0], [50.0], demand_noise=0.0).replace(storage=[battery])
    env = pm.MarketEnv(scenario, seed=0)
    renv = ref.ReferenceEnv.from_scenario(scenario)
    env.reset()
    renv.reset(env.demand)
    actions = np.float32([[0.0, 0.0], [1.0, 0.0]])
    _, _, _, _, info = env.step(actions)
    r = renv.step(actions)
    assert info["price"] == r.price == 500.0
    assert info["shortfall"] == r.shortfall == 20.0
    np.testing.assert_array_equal(info["cleared"], [30.0, 0.0])


def test_refused_step_records_nothing():
    scenario = design_scenario(2, BIDS["many"], "uniform", None, None, 2)
    env = pm.MarketEnv(scenario, seed=0)
    env.reset()
    rng = np.random.default_rng(0)
    for _ in range(scenario.t):
        env.step(draw_actions(rng, 4, 2, 2))
    before = env.episode_record()
    with pytest.raises(RuntimeError):
        env.step(draw_actions(rng, 4, 2, 2))
    after = env.episode_record()
    assert set(before) == set(after)
    for key in before:
        assert same(before[key], after[key]), key


def test_copies_and_pickles_carry_the_soc_mid_episode():
    """A deep copy or a pickle taken mid-episode continues bit for bit (the
    SoC is part of the state), for MarketEnv and VecMarketEnv."""
    scenario = design_scenario(2, BIDS["many"], "pay_as_bid", 45.0, 5.0, 2)
    rng = np.random.default_rng(0)
    env = pm.MarketEnv(scenario, observer="market", seed=3)
    env.reset()
    for _ in range(4):
        env.step(draw_actions(rng, 4, 2, 2))
    copies = [copy.deepcopy(env), pickle.loads(pickle.dumps(env))]
    for _ in range(scenario.t - 4):
        a = draw_actions(rng, 4, 2, 2)
        x = env.step(a)
        for c in copies:
            y = c.step(a)
            assert same(x[0], y[0]) and same(x[1], y[1]) and same(x[4]["soc"], y[4]["soc"])
    for c in copies:
        rec, other = env.episode_record(), c.episode_record()
        assert all(same(rec[key], other[key]) for key in rec)
    vec = pm.VecMarketEnv(scenario, num_envs=2, seed=[1, 2])
    vec.reset()
    for _ in range(3):
        vec.step(np.stack([draw_actions(rng, 4, 2, 2) for _ in range(2)]))
    twin = pickle.loads(pickle.dumps(vec))
    for _ in range(scenario.t + 2):  # across the autoreset
        a = np.stack([draw_actions(rng, 4, 2, 2) for _ in range(2)])
        x, y = vec.step(a, copy=True), twin.step(a, copy=True)
        assert same(x[0], y[0]) and same(x[1], y[1]) and same(x[4]["soc"], y[4]["soc"])


def test_extreme_units():
    """A unit with no SoC range (soc_min = soc_max: every block cut to 0), a
    lossless 1e6 MW unit of 1e-6 MWh, and many generators with K = 3."""
    scenario = design_scenario(2, BIDS["many"], "pay_as_bid", 45.0, 5.0, 1).replace(
        storage=[
            pm.Storage(power=5, energy=1e-3, soc_min=0.5, soc_max=0.5, soc_initial=0.5),
            pm.Storage(
                power=1e6,
                energy=1e-6,
                efficiency_charge=1.0,
                efficiency_discharge=1.0,
                soc_initial=0.0,
            ),
        ]
    )
    seen = run_side_by_side(scenario, "market_v2", "index", seed=1, episodes=3)
    assert seen["cut_charge"] and seen["cut_discharge"], seen
    big = pm.Scenario.default(50, 24).replace(
        storage=[
            pm.Storage(power=100, energy=400, soc_initial=1.0, soc_min=0.2),
            pm.Storage(power=1, energy=1, soc_initial=0),
        ],
        segments=3,
    )
    seen = run_side_by_side(big, "basic", "pro_rata", seed=1, episodes=2)
    assert seen["crossing"] and seen["partial_charge"], seen


def test_storage_rows_by_hand():
    """market observer, hour 0 and 1: [D/Dmax, soc/E, P/E, hour, price/cmax, net/P]."""
    scenario = pm.Scenario.default(3, 24).replace(
        storage=[pm.Storage(power=20, energy=80, soc_initial=0.25)], demand_noise=0.0
    )
    env = pm.MarketEnv(scenario, observer="market", seed=0)
    obs, _ = env.reset()
    d = scenario.demand[0] / scenario.demand_scale
    np.testing.assert_array_equal(obs[3], np.float32([d, 0.25, 0.25, 0.0, 0.0, 0.0]))
    actions = np.zeros((4, 2), np.float32)
    actions[3] = [-1.0, 10.0]  # charge 20 MW at a high price: served in full
    obs, _, _, _, info = env.step(actions)
    soc = 20.0 + 0.95 * 20.0
    assert info["soc"][0] == soc and info["cleared"][3] == -20.0
    price = info["price"] / scenario.cost_scale
    d = scenario.demand[1] / scenario.demand_scale
    np.testing.assert_array_equal(
        obs[3], np.float32([d, soc / 80, 0.25, 1 / 24, price, -1.0]), strict=True
    )


# --- the record alone: SoC trajectory, storage rewards, the SoC cut ------------------------


def recompute_from_record(scenario, rec, actions_seen) -> None:
    """Recompute, bit for bit, from ``episode_record()`` and the actions:
    the SoC cut, charge / discharge, the SoC trajectory and the rewards."""
    n, s, k, horizon = scenario.n, len(scenario.storage), scenario.segments, scenario.t
    units = [ref.StorageUnit.from_storage(u, scenario.costs) for u in scenario.storage]
    t_done = len(rec["prices"])
    x = rec["storage_cleared"].reshape(t_done, s, k)
    bids = rec["storage_bids"].reshape(t_done, s, k)
    offered = rec["storage_offered"].reshape(t_done, s, k)
    scale = 20.0 / (scenario.demand_scale * scenario.cost_scale * max(1, horizon))
    soc = np.array([u.soc0 for u in units])
    np.testing.assert_array_equal(rec["soc"][0], soc)
    for t in range(t_done):
        a = actions_seen[t].reshape(-1, 2)[n * k :].astype(np.float64).reshape(s, k, 2)
        for u, unit in enumerate(units):
            # The SoC cut of this hour, from the SoC at its start.
            a0 = np.clip(a[u, :, 0], -1.0, 1.0)
            wanted = a0 * unit.power / k
            cut = ref.soc_cut(
                bids[t, u], wanted, unit.max_discharge(soc[u]), unit.max_charge(soc[u])
            )
            assert same(offered[t, u], cut), (t, u, offered[t, u], cut)
            # Cleared within what was offered, with its sign.
            assert np.all(np.sign(x[t, u]) * np.sign(offered[t, u]) >= 0)
            assert np.all(np.abs(x[t, u]) <= np.abs(offered[t, u]))
            sold = bought = revenue = 0.0
            paid = rec["prices"][t] if scenario.mechanism == "uniform" else None
            for j in range(k):
                p = paid if paid is not None else bids[t, u, j]
                revenue += p * x[t, u, j]
                if x[t, u, j] > 0:
                    sold += x[t, u, j]
                elif x[t, u, j] < 0:
                    bought -= x[t, u, j]
            assert rec["discharge"][t, u] == sold and rec["charge"][t, u] == bought
            nxt = soc[u] + unit.efficiency_charge * bought - sold / unit.efficiency_discharge
            nxt = min(max(nxt, unit.soc_min * unit.energy), unit.soc_max * unit.energy)
            assert rec["soc"][t + 1, u] == nxt, (t, u)
            raw = revenue - unit.cost * (sold + bought)
            if t == horizon - 1:
                raw += unit.terminal_value * (nxt - unit.soc_initial * unit.energy)
            assert rec["rewards"][t, n + u] == np.float32(raw * scale), (t, u)
            soc[u] = nxt


@pytest.mark.parametrize("segments", [1, 2, 3])
@pytest.mark.parametrize("mechanism", ["uniform", "pay_as_bid"])
def test_record_recomputation(segments, mechanism):
    scenario = design_scenario(segments, BIDS["many"], mechanism, 45.0, 5.0, 2)
    n, s, k = scenario.n, 2, segments
    env = pm.MarketEnv(scenario, seed=segments)
    rng = np.random.default_rng(segments)
    for _ in range(3):
        env.reset()
        seen = []
        for t in range(scenario.t):
            actions = draw_actions(rng, n, s, k)
            _, _, _, _, info = env.step(actions)
            seen.append(actions)
            rec = env.episode_record()
            np.testing.assert_array_equal(info["soc"], rec["soc"][t + 1])
            assert same(info["cleared"][n:], rec["discharge"][t] - rec["charge"][t])
            if t == 3:
                recompute_from_record(scenario, rec, seen)
        rec = env.episode_record()
        assert rec["soc"].shape == (scenario.t + 1, s)
        assert rec["charge"].shape == rec["discharge"].shape == (scenario.t, s)
        assert rec["storage_bids"].shape == ((scenario.t, s) if k == 1 else (scenario.t, s, k))
        recompute_from_record(scenario, rec, seen)


def test_record_recomputation_sees_the_terminal_value():
    """The terminal term is non-zero in these runs: the last reward differs
    from the same formula without it."""
    scenario = design_scenario(1, [], "uniform", None, None, 2)
    env = pm.MarketEnv(scenario, seed=1)
    env.reset()
    rng = np.random.default_rng(1)
    seen = [draw_actions(rng, 4, 2, 1) for _ in range(scenario.t)]
    for a in seen:
        env.step(a)
    rec = env.episode_record()
    recompute_from_record(scenario, rec, seen)
    # Unit 1 has terminal value 12 and starts full: it ended elsewhere.
    assert rec["soc"][-1, 1] != rec["soc"][0, 1]


# --- by hand ----------------------------------------------------------------------------------


def test_hand_episode():
    """One generator (100 MW at 10) and a lossless battery (20 MW, 40 MWh,
    half full, reference 30, terminal value 0), demand 50 MW. Hour 0: charge
    20 MW at 30: price 10, reward -10 * 20 * scale. Hour 1: discharge 20 MW
    at 30 - 50 tanh(10): it sells 20 MW at 10."""
    battery = pm.Storage(
        power=20.0,
        energy=40.0,
        efficiency_charge=1.0,
        efficiency_discharge=1.0,
        reference_price=30.0,
        terminal_value=0.0,
    )
    scenario = pm.Scenario(
        [100.0], [10.0], [50.0, 50.0], demand_noise=0.0, bid_penalty=0.0
    ).replace(storage=[battery])
    scale = 20.0 / (50.0 * 10.0 * 2)
    for mechanism in ("uniform", "pay_as_bid"):
        env = pm.MarketEnv(scenario.replace(mechanism=mechanism), seed=0)
        renv = ref.ReferenceEnv.from_scenario(scenario.replace(mechanism=mechanism))
        env.reset()
        renv.reset(env.demand)
        charge = np.float32([[0.0, 0.0], [-1.0, 0.0]])
        _, rewards, _, _, info = env.step(charge)
        r = renv.step(charge)
        assert info["price"] == r.price == 10.0
        np.testing.assert_array_equal(info["cleared"], [70.0, -20.0])
        assert info["soc"][0] == 40.0
        paid = 10.0 if mechanism == "uniform" else 30.0
        assert rewards[1] == r.rewards[1] == np.float32(-paid * 20.0 * scale)
        sell = np.float32([[0.0, 0.0], [1.0, -10.0]])
        _, rewards, _, _, info = env.step(sell)
        r = renv.step(sell)
        assert info["price"] == r.price == 10.0
        np.testing.assert_array_equal(info["cleared"], [30.0, 20.0])
        assert info["soc"][0] == 20.0
        paid = 10.0 if mechanism == "uniform" else 30.0 - 50.0 * np.tanh(10.0)
        assert rewards[1] == pytest.approx(paid * 20.0 * scale, rel=1e-6)
        assert r.rewards[1] == pytest.approx(paid * 20.0 * scale, rel=1e-6)
        rec = env.episode_record()
        np.testing.assert_array_equal(rec["soc"][:, 0], [20.0, 40.0, 20.0])
        np.testing.assert_array_equal(rec["charge"][:, 0], [20.0, 0.0])
        np.testing.assert_array_equal(rec["discharge"][:, 0], [0.0, 20.0])


def test_zero_quantity_discharge_offer_sets_the_price():
    """An empty battery's discharge offer is cut to 0 MW but stays in the
    book: it takes part in price formation like a generator's zero offer
    (at 5 it is a candidate below the generator's 10, yet 0 MW does not meet
    demand; the price stays 10). Its cleared quantity is 0."""
    battery = pm.Storage(power=20.0, energy=40.0, soc_initial=0.0, reference_price=5.0)
    scenario = pm.Scenario([100.0], [10.0], [50.0, 50.0], demand_noise=0.0).replace(
        storage=[battery]
    )
    env = pm.MarketEnv(scenario, seed=0)
    env.reset()
    _, _, _, _, info = env.step(np.float32([[0.0, 0.0], [1.0, 0.0]]))
    rec = env.episode_record()
    assert rec["storage_offered"][0, 0] == 0.0 and rec["storage_cleared"][0, 0] == 0.0
    assert info["price"] == 10.0 and info["soc"][0] == 0.0


def test_charge_bid_shares_a_group_with_a_demand_bid():
    """A charge block at a demand bid's price joins its group: the group is
    served pro rata. Generator 60 MW at 10; demand 50 MW, 20% of it bid at
    30 (10 MW); the battery bids 20 MW at 30. At 10 supply (60) is below the
    70 MW bid above 10, so the price is 30: 60 - 40 = 20 MW of the 30 MW
    group is served, 2/3 of each bid."""
    battery = pm.Storage(power=20.0, energy=40.0, reference_price=30.0, terminal_value=0.0)
    scenario = pm.Scenario(
        [60.0], [10.0], [50.0], demand_noise=0.0, demand_bids=[(30.0, 0.2)], bid_penalty=0.0
    ).replace(storage=[battery])
    for mechanism in ("uniform", "pay_as_bid"):
        sc = scenario.replace(mechanism=mechanism)
        env = pm.MarketEnv(sc, seed=0)
        renv = ref.ReferenceEnv.from_scenario(sc)
        env.reset()
        renv.reset(env.demand)
        actions = np.float32([[0.0, 0.0], [-1.0, 0.0]])
        _, rewards, _, _, info = env.step(actions)
        r = renv.step(actions)
        assert info["price"] == r.price == 30.0
        np.testing.assert_allclose(info["cleared"], [60.0, -40.0 / 3], rtol=1e-12)
        np.testing.assert_allclose(r.cleared, [60.0, -40.0 / 3], rtol=1e-12)
        soc = 20.0 + 0.95 * 40.0 / 3
        assert info["soc"][0] == pytest.approx(soc, rel=1e-12)
        scale = 20.0 / (50.0 * 10.0 * 1)
        # Last hour, terminal value 0: the reward is what it paid, at 30 either way.
        expected = -30.0 * 40.0 / 3 * scale
        assert rewards[1] == pytest.approx(expected, rel=1e-6)
        assert r.rewards[1] == pytest.approx(expected, rel=1e-6)
        # The generator: (30 - 10) * 60 under uniform; pay-as-bid pays its bid, 10.
        assert rewards[0] == pytest.approx((20.0 * 60.0 if mechanism == "uniform" else 0.0) * scale)


@pytest.mark.parametrize("tie_rule", ["pro_rata", "index"])
def test_discharge_ties_with_a_generator(tie_rule):
    """A discharge block comes after every generator offer in the book: tied
    at 30 with a 40 MW generator against 50 MW of demand, "index" clears the
    generator first (40 + 10), "pro_rata" shares (50 * 40/60, 50 * 20/60)."""
    battery = pm.Storage(power=20.0, energy=80.0, reference_price=30.0)
    scenario = pm.Scenario([40.0], [30.0], [50.0], demand_noise=0.0).replace(storage=[battery])
    env = pm.MarketEnv(scenario, seed=0, tie_rule=tie_rule)
    renv = ref.ReferenceEnv.from_scenario(scenario, tie_rule=tie_rule)
    env.reset()
    renv.reset(env.demand)
    actions = np.float32([[0.0, 0.0], [1.0, 0.0]])
    _, _, _, _, info = env.step(actions)
    r = renv.step(actions)
    expected = [40.0, 10.0] if tie_rule == "index" else [50.0 * 40 / 60, 50.0 * 20 / 60]
    assert info["price"] == r.price == 30.0
    np.testing.assert_allclose(info["cleared"], expected, rtol=1e-12)
    np.testing.assert_allclose(r.cleared, expected, rtol=1e-12)
    assert info["soc"][0] == pytest.approx(40.0 - expected[1] / 0.95, rel=1e-12)


def test_equal_zero_prices_of_opposite_sign_are_cut_in_block_order():
    """Two charge blocks at prices -0.0 (block 0) and +0.0 (block 1) are at
    the same price: the SoC cut keeps cmax in block order, block 0 first.
    (reference_price=-0.0 and a1 = -0.0 / +0.0 give those prices.)"""
    battery = pm.Storage(power=20.0, energy=40.0, soc_initial=0.9, reference_price=-0.0)
    scenario = pm.Scenario([100.0], [10.0], [50.0, 50.0], demand_noise=0.0, segments=2)
    scenario = scenario.replace(storage=[battery])
    actions = np.zeros((2, 2, 2), np.float32)
    actions[1] = [[-1.0, -0.0], [-1.0, 0.0]]
    env = pm.MarketEnv(scenario, seed=0)
    renv = ref.ReferenceEnv.from_scenario(scenario)
    env.reset()
    renv.reset(env.demand)
    env.step(actions)
    renv.step(actions)
    cmax = 4.0 / 0.95
    expected = [-cmax, 0.0]
    np.testing.assert_allclose(renv.episode_record()["storage_offered"][0, 0], expected)
    np.testing.assert_allclose(env.episode_record()["storage_offered"][0, 0], expected)


# --- VecMarketEnv equals MarketEnv ------------------------------------------------------------


@pytest.mark.parametrize("segments", [1, 2])
def test_vec_env_equals_market_env(segments):
    scenario = design_scenario(segments, BIDS["many"], "pay_as_bid", 45.0, 5.0, 2)
    m, n, s, k, seed = 3, scenario.n, 2, segments, 40
    seeds = [seed + i for i in range(m)]
    vec = pm.VecMarketEnv(scenario, num_envs=m, observer="market", seed=seeds)
    envs = [pm.MarketEnv(scenario, observer="market", seed=seed + i) for i in range(m)]
    obs, _ = vec.reset()
    assert same(obs, np.stack([e.reset()[0] for e in envs]))
    rng = np.random.default_rng(seed)
    for _ in range(2 * scenario.t + 3):
        actions = np.stack([draw_actions(rng, n, s, k) for _ in range(m)])
        obs, rewards, terminated, truncated, info = vec.step(actions, copy=True)
        assert info["soc"].shape == (m, s) and rewards.shape == (m, n + s)
        for i, e in enumerate(envs):
            o, r, te, tr, inf = e.step(actions[i])
            assert terminated[i] == te and truncated[i] == tr
            if te:
                assert same(info["final_obs"][i], o)
                o, _ = e.reset()
            assert same(obs[i], o) and same(rewards[i], r)
            for key in ("price", "demand", "shortfall", "average_paid"):
                assert info[key][i] == inf[key], key
            assert same(info["cleared"][i], inf["cleared"])
            assert same(info["soc"][i], inf["soc"])


@pytest.mark.parametrize("segments", [1, 2])
def test_linear_price_action_with_storage(segments):
    """price_action="linear" (issue 21): the storage units' bids are
    reference + clip(a1, -1, 1) * max_bid_delta, as the generators'."""
    scenario = pm.Scenario.default(4, 24).replace(
        storage=[pm.Storage(power=20, energy=80), pm.Storage(power=10, energy=12, cost=2.0)],
        segments=segments,
        price_action="linear",
    )
    run_side_by_side(scenario, "market", "pro_rata", seed=21, episodes=2)
