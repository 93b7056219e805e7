"""Analysis with storage units: exploitability (the generators' deviations
with the storage blocks held as played, the storage units' dynamic program
over a SoC grid) and market power with storage discharge as supply.
Definitions in docs/semantics.md (section 10, "With storage units")."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import powermarket as pm
from powermarket import analysis as an


def battery(**kw: float) -> pm.Storage:
    fields = dict(
        power=10.0,
        energy=20.0,
        efficiency_charge=0.9,
        efficiency_discharge=0.95,
        soc_initial=0.5,
        reference_price=30.0,
        terminal_value=25.0,
        cost=1.0,
    )
    fields.update(kw)
    return pm.Storage(**fields)


def small_market(mechanism: str = "uniform", **storage: float) -> pm.Scenario:
    """Three generators, three hours of different prices, one battery; no
    demand noise (the env's demand is the profile)."""
    return pm.Scenario(
        [60.0, 60.0, 40.0],
        [10.0, 30.0, 60.0],
        [70.0, 125.0, 95.0],
        demand_noise=0.0,
        bid_penalty=0.0,
        mechanism=mechanism,
        price_floor=0.0,
    ).replace(storage=[battery(**storage)])


def played_actions(scenario: pm.Scenario, storage: list[list[float]], seed: int) -> np.ndarray:
    """(1, T, A, 2) float32: generators at fixed pseudo-random offers, the
    battery as given per hour."""
    rng = np.random.default_rng(seed)
    t, n = scenario.t, scenario.n
    a = np.zeros((1, t, n + 1, 2), dtype=np.float32)
    a[0, :, :n, 0] = rng.uniform(0.0, 0.3, (t, n))
    a[0, :, :n, 1] = rng.uniform(-0.5, 1.0, (t, n))
    a[0, :, n] = np.asarray(storage, dtype=np.float32)
    return a


def play(scenario: pm.Scenario, actions: np.ndarray) -> tuple[np.ndarray, dict]:
    """One episode of MarketEnv with these (T, A, 2) actions: the rewards
    (T, A) and the record."""
    env = pm.MarketEnv(scenario, seed=0)
    env.reset()
    rewards = [env.step(actions[h])[1] for h in range(scenario.t)]
    return np.asarray(rewards, dtype=np.float64), env.episode_record()


def storage_states(unit: pm.Storage, g: int) -> np.ndarray:
    e = unit.energy
    x = np.linspace(unit.soc_min * e, unit.soc_max * e, g)
    assert np.any(x == unit.soc_initial * e), "tests keep soc_0 on the grid"
    return x


def move_block(unit: pm.Storage, s: float, s2: float) -> float | None:
    """Signed MW of the move s -> s2 (> 0 discharge), None beyond the power."""
    if s2 > s:
        q = -(s2 - s) / unit.efficiency_charge
    elif s2 < s:
        q = (s - s2) * unit.efficiency_discharge
    else:
        q = 0.0
    return q if abs(q) <= unit.power * (1 + 1e-9) else None


@pytest.mark.parametrize("mechanism", ["uniform", "pay_as_bid"])
def test_storage_regret_is_the_brute_force_optimum_over_grid_paths(mechanism):
    """Every path over the SoC grid (T = 3, 5 states) with every candidate
    price per hour, each played in MarketEnv with the others as played: the
    best whose blocks all clear whole, or the played reward, is the played
    reward plus the regret."""
    s = small_market(mechanism)
    unit = s.storage[0]
    g, price_actions = 5, np.array([-0.3, 0.4], dtype=np.float32)
    acts = played_actions(s, [[-0.4, 0.2], [0.6, -0.1], [0.0, 0.0]], seed=1)
    demand = np.asarray(s.demand, dtype=np.float64)[None]
    out = an.exploitability_of_play(s, acts, demand, grid=([0.0], price_actions), soc_grid=g)
    n, scale = s.n, out["eur_per_day_per_reward"]
    rewards, _ = play(s, acts[0])
    played = rewards[:, n].sum()
    assert out["played_reward"][n] == pytest.approx(played, rel=1e-6, abs=1e-9)
    x = storage_states(unit, g)
    best = played
    found_better = False
    soc0 = unit.soc_initial * unit.energy
    for path in itertools.product(range(g), repeat=s.t):
        states = [soc0] + [x[k] for k in path]
        blocks = [move_block(unit, states[h], states[h + 1]) for h in range(s.t)]
        if any(q is None for q in blocks):
            continue
        options = []
        for q in blocks:
            if q == 0.0:
                options.append([(0.0, 0.0)])
            else:
                extreme = -10.0 if q > 0 else 10.0
                a0 = np.float32(q / unit.power)
                options.append([(a0, a1) for a1 in [extreme, *price_actions]])
        for choice in itertools.product(*options):
            trial = acts[0].copy()
            trial[:, n] = np.asarray(choice, dtype=np.float32)
            r, rec = play(s, trial)
            cleared = rec["storage_cleared"][:, 0]
            if np.all(np.abs(cleared - np.asarray(blocks)) <= 1e-6 * np.maximum(1, np.abs(blocks))):
                if r[:, n].sum() > best:
                    best, found_better = r[:, n].sum(), True
    assert found_better, "the case must let the battery gain"
    assert out["regret"][n] > 0
    assert out["played_reward"][n] + out["regret"][n] == pytest.approx(best, rel=1e-5)
    assert scale > 0
    assert out["lower_bound"] is True


@pytest.mark.parametrize("mechanism", ["uniform", "pay_as_bid"])
def test_replaying_the_storage_best_response_earns_the_regret(mechanism):
    """The best path's actions, replayed in MarketEnv with everyone else as
    played, give the battery its played reward plus its regret (float32)."""
    s = pm.Scenario.default().replace(
        storage=[pm.Storage(power=20.0, energy=80.0, cost=0.5)],
        mechanism=mechanism,
        demand_noise=0.0,
    )
    t, n = s.t, s.n
    rng = np.random.default_rng(3)
    acts = np.zeros((1, t, n + 1, 2), dtype=np.float32)
    acts[0, :, :n, 0] = rng.uniform(0.0, 0.4, (t, n))
    acts[0, :, :n, 1] = rng.uniform(-1.0, 1.5, (t, n))
    acts[0, :, n, 0] = rng.uniform(-1.0, 1.0, t)
    demand = np.asarray(s.demand, dtype=np.float64)[None]
    out = an.exploitability_of_play(s, acts, demand, grid=an.default_grid(5, 11), soc_grid=41)
    assert out["regret"][n] > 0
    rewards, _ = play(s, acts[0])
    assert out["played_reward"] == pytest.approx(rewards.sum(axis=0), rel=1e-5, abs=1e-6)
    replay = acts[0].copy()
    replay[:, n] = out["best_response"][0, :, n]
    better, rec = play(s, replay)
    want = out["played_reward"][n] + out["regret"][n]
    assert better[:, n].sum() == pytest.approx(want, rel=1e-5)
    # The path stays inside the SoC range and respects the power.
    soc = rec["soc"][:, 0]
    unit = s.storage[0]
    assert np.all(soc >= unit.soc_min * unit.energy - 1e-6)
    assert np.all(soc <= unit.soc_max * unit.energy + 1e-6)


def test_idle_storage_leaves_the_generators_regret_unchanged():
    """With the battery idle (a0 = 0) a generator's deviations are scored
    exactly as in the market without it."""
    plain = pm.Scenario.default()
    s = plain.replace(storage=[pm.Storage(power=20.0, energy=80.0)])
    t, n = s.t, s.n
    rng = np.random.default_rng(7)
    acts = np.zeros((2, t, n + 1, 2), dtype=np.float32)
    acts[:, :, :n, 0] = rng.uniform(0.0, 0.3, (2, t, n))
    acts[:, :, :n, 1] = rng.uniform(-2.0, 2.0, (2, t, n))
    acts[:, :, n, 1] = rng.uniform(-2.0, 2.0, (2, t))  # a price, but no block
    demand = np.asarray(s.demand, dtype=np.float64) * rng.uniform(0.9, 1.1, (2, t))
    grid = an.default_grid(6, 9)
    with_sto = an.exploitability_of_play(s, acts, demand, grid=grid, soc_grid=21)
    without = an.exploitability_of_play(plain, acts[:, :, :n], demand, grid=grid)
    np.testing.assert_array_equal(with_sto["regret"][:n], without["regret"])
    np.testing.assert_array_equal(with_sto["played_reward"][:n], without["played_reward"])
    np.testing.assert_array_equal(with_sto["best_response"][:, :, :n], without["best_response"])
    assert with_sto["played_reward"][n] == 0.0
    assert with_sto["regret"][n] >= 0.0
    assert with_sto["lower_bound"] is True and without["lower_bound"] is False


def test_generator_deviation_is_cleared_with_the_played_storage_blocks():
    """A discharging battery lowers what a generator's deviation can earn:
    the generators' regrets differ from the market without it, and equal
    those of a market where the battery's played block is a generator's
    offer of the same price and quantity."""
    plain = pm.Scenario([50.0, 50.0], [10.0, 40.0], [80.0], demand_noise=0.0, bid_penalty=0.0)
    # Full (40 MWh), so that its SoC lets it sell all 20 MW (from half full
    # the cut leaves 20 * 0.95 = 19 MW).
    unit = pm.Storage(
        power=20.0, energy=40.0, soc_initial=1.0, reference_price=0.0, terminal_value=0.0
    )
    s = plain.replace(storage=[unit])
    acts = np.zeros((1, 1, 3, 2), dtype=np.float32)
    acts[0, 0, 2] = [1.0, 0.0]  # sell 20 MW at 0 €/MWh
    grid = ([0.0, 0.5], np.linspace(-1.0, 1.0, 9))
    demand = np.array([[80.0]])
    out = an.exploitability_of_play(s, acts, demand, grid=grid, soc_grid=3)
    # The same book with the battery as a third generator of 20 MW at cost 0.
    g3 = pm.Scenario(
        [50.0, 50.0, 20.0], [10.0, 40.0, 0.0], [80.0], demand_noise=0.0, bid_penalty=0.0
    )
    ref = an.exploitability_of_play(g3, np.zeros((1, 1, 3, 2), np.float32), demand, grid=grid)
    # In € (the reward scales differ: the mean cost does).
    for key in ("regret_eur_per_day", "played_reward_eur_per_day"):
        np.testing.assert_allclose(out[key][:2], ref[key][:2], rtol=1e-12)
    assert out["regret_eur_per_day"][1] > 0
    noplay = an.exploitability_of_play(plain, acts[:, :, :2], demand, grid=grid)
    assert not np.allclose(out["regret_eur_per_day"][:2], noplay["regret_eur_per_day"])
    # From half full the played block is cut to 19 MW, and the deviations see that.
    half = plain.replace(
        storage=[pm.Storage(power=20.0, energy=40.0, reference_price=0.0, terminal_value=0.0)]
    )
    cut = an.exploitability_of_play(half, acts, demand, grid=grid, soc_grid=3)
    g19 = g3.replace(capacities=[50.0, 50.0, 19.0])
    ref19 = an.exploitability_of_play(g19, np.zeros((1, 1, 3, 2), np.float32), demand, grid=grid)
    np.testing.assert_allclose(
        cut["regret_eur_per_day"][:2], ref19["regret_eur_per_day"][:2], rtol=1e-12
    )


def test_two_price_day_closed_form():
    """Truthful generators at 10 and 50 €/MWh; an empty battery of 10 MW /
    10 MWh, 0.9 / 0.9, no terminal value, idle as played: its best response
    on an 11-point grid buys 10 MW at 10 and sells 8.1 MW at 50, worth
    P (eta_c eta_d p_high - p_low) = 305 €."""
    s = pm.Scenario(
        [100.0, 100.0], [10.0, 50.0], [50.0, 150.0], demand_noise=0.0, bid_penalty=0.0
    ).replace(
        storage=[
            pm.Storage(
                power=10.0,
                energy=10.0,
                efficiency_charge=0.9,
                efficiency_discharge=0.9,
                soc_initial=0.0,
                reference_price=30.0,
                terminal_value=0.0,
            )
        ]
    )
    acts = np.zeros((1, 2, 3, 2), dtype=np.float32)
    out = an.exploitability_of_play(
        s, acts, np.array([[50.0, 150.0]]), grid=([0.0], [0.0]), soc_grid=11
    )
    # regret (reward units) / reward_scale = € over the episode.
    scale = 24 / (out["eur_per_day_per_reward"] * 2)
    assert out["regret"][2] / scale == pytest.approx(305.0, rel=1e-12)
    np.testing.assert_array_equal(out["best_response"][0, :, 2, 0], np.float32([-1.0, 0.81]))


@pytest.mark.parametrize("bad", [1, 0, -3, 2.5, True, "11", None, np.float64(5.0)])
def test_bad_soc_grid_is_a_value_error(bad):
    s = small_market()
    acts = played_actions(s, [[0.0, 0.0]] * 3, seed=0)
    demand = np.asarray(s.demand, dtype=np.float64)[None]
    with pytest.raises(ValueError, match="soc_grid"):
        an.exploitability_of_play(s, acts, demand, grid=([0.0], [0.0]), soc_grid=bad)
    with pytest.raises(ValueError, match="soc_grid"):
        pm._core.exploitability_of_play(
            s, acts, demand, [0.0], [0.0], soc_grid=bad if bad is not None else 1
        )


def test_too_fine_a_soc_grid_is_refused_up_front():
    s = small_market()
    acts = played_actions(s, [[0.0, 0.0]] * 3, seed=0)
    demand = np.asarray(s.demand, dtype=np.float64)[None]
    with pytest.raises(ValueError, match="soc_grid"):
        an.exploitability_of_play(s, acts, demand, grid=([0.0], [0.0]), soc_grid=10**12)


def test_storage_actions_shape_and_names():
    s = small_market()
    demand = np.asarray(s.demand, dtype=np.float64)[None]
    with pytest.raises(ValueError, match="actions"):
        an.exploitability_of_play(
            s, np.zeros((1, 3, 3, 2), np.float32), demand, grid=([0.0], [0.0])
        )
    acts = played_actions(s, [[0.0, 0.0]] * 3, seed=0)
    acts[0, 1, 3, 0] = np.nan
    with pytest.raises(ValueError, match=r"sto_0.*signed power share"):
        an.exploitability_of_play(s, acts, demand, grid=([0.0], [0.0]))


def test_exploitability_plays_a_policy_on_a_storage_market():
    s = small_market()

    def policy(obs: np.ndarray) -> np.ndarray:
        a = np.zeros((obs.shape[0], 2))
        a[-1] = [-0.5, 3.0]  # the battery buys, as float64 (clipped, rounded)
        return a

    out = an.exploitability(s, policy, grid=an.default_grid(3, 5), soc_grid=9)
    assert out["regret"].shape == (4,) and out["best_response"].shape == (1, 3, 4, 2)
    assert out["lower_bound"] is True
    assert np.all(out["regret"] >= 0)


def test_equilibrium_refuses_storage():
    with pytest.raises(ValueError, match="storage"):
        an.equilibrium(small_market(), grid=([0.0], [0.0]))


def test_market_power_counts_storage_discharge_as_supply():
    """By hand: generators of 50 and 30 MW, a battery of 20 MW / 40 MWh with
    soc_min 0.25 and eta_d 0.9 that starts hour 0 with 30 MWh (it can sell
    min(20, 20 * 0.9) = 18 MW) and hour 1 at its minimum (0 MW)."""
    unit = pm.Storage(
        power=20.0, energy=40.0, soc_min=0.25, soc_initial=0.75, efficiency_discharge=0.9
    )
    s = pm.Scenario([50.0, 30.0], [10.0, 20.0], [80.0, 60.0]).replace(storage=[unit])
    record = {
        "bids": np.array([[10.0, 25.0], [12.0, 20.0]]),
        "cleared": np.array([[50.0, 12.0], [50.0, 10.0]]),
        "prices": np.array([25.0, 20.0]),
        "demand": np.array([80.0, 60.0]),
        "soc": np.array([[30.0], [10.0], [10.0]]),
        "discharge": np.array([[18.0], [0.0]]),
    }
    m = an.market_power(s, record)
    np.testing.assert_allclose(
        m["rsi"], [[48 / 80, 68 / 80, 80 / 80], [30 / 60, 50 / 60, 80 / 60]], rtol=1e-12
    )
    np.testing.assert_array_equal(m["pivotal"], [[True, True, False], [True, True, False]])
    hhi0 = (100 * 50 / 80) ** 2 + (100 * 12 / 80) ** 2 + (100 * 18 / 80) ** 2
    assert m["hhi"][0] == pytest.approx(hhi0, rel=1e-12)
    assert m["lerner"].shape == (2, 2) and m["markup"].shape == (2, 2)
    missing = {k: v for k, v in record.items() if k != "discharge"}
    with pytest.raises(ValueError, match="discharge"):
        an.market_power(s, missing)
    bad = dict(record, soc=np.zeros((2, 1)))
    with pytest.raises(ValueError, match="soc"):
        an.market_power(s, bad)
    bad = dict(record, discharge=-np.ones((2, 1)))
    with pytest.raises(ValueError, match="discharge"):
        an.market_power(s, bad)


def test_market_power_of_an_env_record_with_storage():
    s = pm.Scenario.default().replace(storage=[pm.Storage(power=20.0, energy=80.0)])
    env = pm.MarketEnv(s, seed=0)
    env.reset()
    for h in range(s.t):
        a = np.zeros((s.n + 1, 2), dtype=np.float32)
        a[s.n, 0] = 1.0 if h % 2 else -1.0
        env.step(a)
    rec = env.episode_record()
    m = an.market_power(s, rec)
    assert m["rsi"].shape == (s.t, s.n + 1) and m["hhi"].shape == (s.t,)
    # Without storage the generators' rows are those of the generators alone.
    plain = an.market_power(
        s.replace(storage=[]),
        {k: rec[k] for k in ("bids", "cleared", "prices", "demand", "availability")},
    )
    assert np.all(m["rsi"][:, : s.n] >= plain["rsi"])
