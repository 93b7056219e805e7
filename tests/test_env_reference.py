"""Differential tests: ``pm.MarketEnv`` against the NumPy ``ReferenceEnv``.

Both are driven with the same random action sequences (including actions
outside the box, to test clipping) over whole episodes; the reference takes the
env's realised demand, since the ChaCha demand noise cannot be reproduced.
"""

from __future__ import annotations

import numpy as np
import pytest
import reference as ref
from conftest import random_actions

import powermarket as pm

# Spelled out (not pm.OBSERVERS): a new observer must be added here on purpose,
# with its reference in tests/reference.py.
OBSERVERS = ("simple", "simple_v2", "simple_v3", "basic", "market", "market_v2")
TIE_RULES = ("pro_rata", "index")

# float32 observations and rewards; float64 bids / quantities / prices.
OBS_TOL = {"rtol": 2e-6, "atol": 1e-6}
REWARD_TOL = {"rtol": 1e-5, "atol": 1e-6}
F64_TOL = {"rtol": 1e-9, "atol": 1e-9}


def assert_in_bounds(obs: np.ndarray, low: np.ndarray, high: np.ndarray) -> None:
    assert obs.shape == low.shape == high.shape
    bad = (obs < low) | (obs > high) | ~np.isfinite(obs)
    assert not bad.any(), (np.argwhere(bad), obs[bad], low[bad], high[bad])


def check_demand_realisation(scenario, demand: np.ndarray) -> None:
    """Realised demand = base + noise, each draw clipped as docs/semantics.md says."""
    base = np.asarray(scenario.demand)
    noise = demand - base
    lo = -0.5 * base.min()
    hi = max(0.0, 0.5 * (np.sum(scenario.capacities) - base.max()))
    slack = 1e-9 * max(1.0, base.max())
    assert np.all(noise >= lo - slack) and np.all(noise <= hi + slack), (noise, lo, hi)


def check_availability_realisation(scenario, lf: np.ndarray) -> None:
    """Load factors in [0, 1]; without noise exactly the scenario's (or ones);
    with noise, generators whose base series is all ones are untouched and
    a base load factor of 0 stays 0 (the perturbation is multiplicative)."""
    t, n = scenario.t, scenario.n
    assert lf.shape == (t, n) and lf.dtype == np.float64
    assert np.all((lf >= 0) & (lf <= 1))
    base = np.ones((t, n)) if scenario.availability is None else scenario.availability
    if scenario.availability_noise == 0:
        np.testing.assert_array_equal(lf, base)
        return
    fixed = np.all(base == 1.0, axis=0)
    np.testing.assert_array_equal(lf[:, fixed], base[:, fixed])
    assert np.all(lf[base == 0] == 0)


def compare_records(env: pm.MarketEnv, renv: ref.ReferenceEnv) -> None:
    rec, rrec = env.episode_record(), renv.episode_record()
    keys = {
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
    assert set(rec) == keys
    for key in keys - {"rewards"}:
        assert rec[key].shape == rrec[key].shape, key
        np.testing.assert_allclose(rec[key], rrec[key], **F64_TOL, err_msg=key)
    assert rec["rewards"].shape == rrec["rewards"].shape
    np.testing.assert_allclose(rec["rewards"], rrec["rewards"], **REWARD_TOL)
    np.testing.assert_array_equal(rec["demand"], env.demand[: len(rec["demand"])])


def run_side_by_side(
    scenario,
    observer: str,
    tie_rule: str,
    *,
    seed: int,
    episodes: int,
) -> tuple[bool, bool]:
    """Run ``episodes`` episodes on both; return (saw a shortage, saw a tie at p*)."""
    env = pm.MarketEnv(scenario, observer=observer, seed=seed, tie_rule=tie_rule)
    renv = ref.ReferenceEnv.from_scenario(scenario, observer=observer, tie_rule=tie_rule)
    n, horizon = renv.n, renv.horizon
    assert (env.num_agents, env.obs_dim, env.horizon) == (n, renv.obs_dim, horizon)
    assert (env.observer, env.tie_rule) == (observer, tie_rule)
    assert scenario.demand_scale == renv.demand_scale
    assert scenario.cost_scale == renv.cost_scale
    assert scenario.capacity_scale == renv.capacity_scale
    low, high = env.observation_bounds()
    assert low.shape == high.shape == (n, renv.obs_dim)
    rng = np.random.default_rng(seed)
    seen_shortage = seen_tie = False
    k = renv.segments
    a1_high = pm._core.action_box(scenario.price_action)[1][1]

    def draw() -> np.ndarray:
        a = random_actions(rng, n * k, mix="edges", a1_high=a1_high)
        return a if k == 1 else a.reshape(n, k, 2)

    for episode in range(episodes):
        obs, info = env.reset(seed=seed + episode if episode % 2 == 0 else None)
        demand = np.array(env.demand, dtype=np.float64)
        assert demand.shape == (horizon,)
        check_demand_realisation(scenario, demand)
        assert info["demand"] == demand[0]
        load_factors = env.availability
        check_availability_realisation(scenario, load_factors)
        robs = renv.reset(demand, load_factors if scenario.availability_noise > 0 else None)
        assert obs.dtype == np.float32 and obs.shape == (n, renv.obs_dim)
        np.testing.assert_allclose(obs, robs, **OBS_TOL)
        assert_in_bounds(obs, low, high)
        assert env.t == 0

        for t in range(horizon):
            actions = draw()
            obs, rewards, terminated, truncated, info = env.step(actions)
            r = renv.step(actions)
            where = f"episode {episode} hour {t}"
            assert env.t == t + 1
            assert terminated is r.terminated == (t == horizon - 1), where
            assert truncated is False
            assert info["demand"] == demand[t], where
            assert info["price"] == pytest.approx(r.price, rel=1e-12, abs=1e-12), where
            np.testing.assert_allclose(info["cleared"], r.cleared, **F64_TOL, err_msg=where)
            assert info["shortfall"] == pytest.approx(r.shortfall, rel=1e-9, abs=1e-9), where
            assert info["average_paid"] == pytest.approx(r.average_paid, rel=1e-9, abs=1e-9)
            assert rewards.dtype == np.float32 and rewards.shape == (n,)
            np.testing.assert_allclose(rewards, r.rewards, **REWARD_TOL, err_msg=where)
            assert obs.dtype == np.float32
            np.testing.assert_allclose(obs, r.obs, **OBS_TOL, err_msg=where)
            assert_in_bounds(obs, low, high)
            b, _ = renv.bids_and_quantities(actions)
            seen_shortage |= r.shortfall > 0
            seen_tie |= bool(np.any(np.sum(b == r.price) > 1))
            if t == horizon // 2:
                compare_records(env, renv)

        compare_records(env, renv)
        with pytest.raises(RuntimeError):
            env.step(draw())
        compare_records(env, renv)  # a refused step records nothing
    return seen_shortage, seen_tie


@pytest.mark.parametrize("n", [1, 2, 5, 50])
@pytest.mark.parametrize("tie_rule", TIE_RULES)
@pytest.mark.parametrize("observer", OBSERVERS)
def test_default_scenario(observer, tie_rule, n):
    run_side_by_side(pm.Scenario.default(n=n), observer, tie_rule, seed=100 + n, episodes=3)


@pytest.mark.parametrize("tie_rule", TIE_RULES)
@pytest.mark.parametrize("observer", OBSERVERS)
def test_competitive_scenario(observer, tie_rule):
    for n, rate in ((2, 1), (5, 2), (8, 3)):
        scenario = pm.Scenario.competitive(n=n, competition_rate=rate)
        run_side_by_side(scenario, observer, tie_rule, seed=7 + n, episodes=2)


@pytest.mark.parametrize("tie_rule", TIE_RULES)
@pytest.mark.parametrize("observer", ["simple_v2", "simple_v3", "market"])
def test_weekly_scenario(observer, tie_rule):
    """168 h: the day-of-week features wrap; zero-cost renewables."""
    run_side_by_side(pm.Scenario.weekly(n=5), observer, tie_rule, seed=3, episodes=1)


def shortage_scenario(shortage_price):
    """Demand often above the fleet's 45 MW, so shortages and the cap matter."""
    return pm.Scenario(
        [10.0, 20.0, 15.0],
        [10.0, 30.0, 20.0],
        [30.0, 50.0, 70.0, 55.0, 40.0, 20.0, 44.0, 46.0],
        shortage_price=shortage_price,
    )


@pytest.mark.parametrize("shortage_price", [None, 500.0, -5.0])
@pytest.mark.parametrize("tie_rule", TIE_RULES)
@pytest.mark.parametrize("observer", OBSERVERS)
def test_custom_scenario_with_shortage(observer, tie_rule, shortage_price):
    seen_shortage, _ = run_side_by_side(
        shortage_scenario(shortage_price), observer, tie_rule, seed=11, episodes=4
    )
    assert seen_shortage


@pytest.mark.parametrize("tie_rule", TIE_RULES)
@pytest.mark.parametrize("observer", ["simple", "basic", "market"])
def test_tied_costs_scenario(observer, tie_rule):
    """Equal costs and dyadic capacities: many exact ties at the marginal price."""
    scenario = pm.Scenario(
        [16.0, 16.0, 32.0, 8.0, 8.0],
        [25.0, 25.0, 25.0, 40.0, 25.0],
        [30.0, 45.0, 60.0, 70.0, 50.0, 35.0],
        max_bid_delta=20.0,
        bid_penalty=0.02,
        lol_penalty=3.0,
    )
    _, seen_tie = run_side_by_side(scenario, observer, tie_rule, seed=5, episodes=6)
    assert seen_tie


@pytest.mark.parametrize("tie_rule", TIE_RULES)
def test_noise_free_demand_is_the_base_profile(tie_rule):
    scenario = pm.Scenario.default(n=4).replace(demand_noise=0.0)
    env = pm.MarketEnv(scenario, seed=1, tie_rule=tie_rule)
    env.reset()
    np.testing.assert_array_equal(env.demand, scenario.demand)
    run_side_by_side(scenario, "market", tie_rule, seed=1, episodes=2)


def test_float64_actions_are_taken_as_float32():
    """docs/semantics.md: the mapping is computed in float64 from the float32 actions."""
    scenario = pm.Scenario.default(n=5)
    env = pm.MarketEnv(scenario, observer="market", seed=9)
    renv = ref.ReferenceEnv.from_scenario(scenario, observer="market")
    env.reset(seed=9)
    renv.reset(env.demand)
    rng = np.random.default_rng(9)
    for _ in range(scenario.t):
        actions = np.stack([rng.uniform(-0.2, 1.2, 5), rng.uniform(-2, 2, 5)], axis=1)
        _, rewards, _, _, info = env.step(actions)  # float64 in
        r = renv.step(actions.astype(np.float32))
        np.testing.assert_allclose(info["cleared"], r.cleared, **F64_TOL)
        np.testing.assert_allclose(rewards, r.rewards, **REWARD_TOL)
    compare_records(env, renv)


@pytest.mark.parametrize("tie_rule", TIE_RULES)
@pytest.mark.parametrize("observer", OBSERVERS)
def test_non_positive_costs_scale_is_one(observer, tie_rule):
    """All costs <= 0: cost_scale falls back to 1 (docs/semantics.md scales rule)."""
    scenario = pm.Scenario([10.0, 10.0, 4.0], [0.0, -5.0, -1.5], [5.0, 8.0, 12.0, 20.0])
    assert scenario.cost_scale == 1.0
    run_side_by_side(scenario, observer, tie_rule, seed=21, episodes=3)


# --- market design: segments, demand bids, mechanisms, cap and floor -------------------------


def design_scenario(segments, demand_bids, mechanism, cap, floor, shortage_price=None):
    """Tight supply (shortages happen), tied costs (ties happen)."""
    return pm.Scenario(
        [10.0, 20.0, 15.0, 16.0],
        [10.0, 30.0, 20.0, 20.0],
        [30.0, 50.0, 66.0, 55.0, 40.0, 20.0, 44.0, 60.0],
        shortage_price=shortage_price,
        segments=segments,
        demand_bids=demand_bids,
        mechanism=mechanism,
        price_cap=cap,
        price_floor=floor,
    )


BIDS = {
    "none": [],
    "one": [(35.0, 0.2)],
    "many": [(60.0, 0.1), (25.0, 0.15), (25.0, 0.05), (10.0, 0.1), (-5.0, 0.05)],
    "all elastic": [(40.0, 0.5), (15.0, 0.5)],
}


@pytest.mark.parametrize("segments", [1, 2, 4])
@pytest.mark.parametrize("bids", list(BIDS))
@pytest.mark.parametrize("mechanism", ["uniform", "pay_as_bid"])
@pytest.mark.parametrize("limits", [(None, None), (45.0, 5.0)])
def test_market_design_episodes(segments, bids, mechanism, limits):
    cap, floor = limits
    scenario = design_scenario(segments, BIDS[bids], mechanism, cap, floor, shortage_price=900.0)
    for observer, tie_rule in (("market", "pro_rata"), ("simple", "index")):
        run_side_by_side(scenario, observer, tie_rule, seed=segments * 7 + len(bids), episodes=3)


def test_market_design_differential_sees_every_case():
    """The design episodes above reach shortages, bid-set prices and ties."""
    scenario = design_scenario(2, BIDS["many"], "pay_as_bid", 45.0, 5.0)
    seen_shortage, seen_tie = run_side_by_side(scenario, "market", "pro_rata", seed=3, episodes=8)
    assert seen_shortage and seen_tie
    env = pm.MarketEnv(scenario, seed=3)
    bid_prices = {p for p, _ in BIDS["many"]}
    set_by_bid = 0
    for _ in range(10):
        env.reset()
        for _ in range(env.horizon):
            a = np.random.default_rng(set_by_bid).uniform(-1, 1, (4, 2, 2)).astype(np.float32)
            _, _, _, _, info = env.step(a)
            set_by_bid += info["price"] in bid_prices
    assert set_by_bid > 0


def ramp_scenario(**changes):
    """Ramps that bind (small limits, a plant whose availability drops below
    its floor), ramp costs, and demand that swings."""
    t, n = 12, 4
    availability = np.ones((t, n))
    availability[:, 0] = [1, 0.9, 0.2, 0.0, 0.5, 1.0, 0.7, 0.05, 0.3, 0.8, 1.0, 0.6]
    availability[:, 3] = np.linspace(0.1, 1.0, t)
    fields = dict(
        availability=availability,
        ramp_limits=[0.2, 0.1, 1.0, 0.3],
        ramp_costs=[0.5, 2.0, 0.0, 1.5],
        shortage_price=300.0,
    )
    fields.update(changes)
    return pm.Scenario(
        [30.0, 25.0, 20.0, 15.0],
        [5.0, 20.0, 30.0, 0.0],
        [40.0, 70.0, 20.0, 60.0, 80.0, 35.0, 50.0, 75.0, 30.0, 65.0, 45.0, 55.0],
        **fields,
    )


@pytest.mark.parametrize("tie_rule", TIE_RULES)
@pytest.mark.parametrize("observer", OBSERVERS)
def test_ramps_and_availability(observer, tie_rule):
    seen_shortage, _ = run_side_by_side(ramp_scenario(), observer, tie_rule, seed=31, episodes=4)
    assert seen_shortage


@pytest.mark.parametrize(
    "changes",
    [
        dict(availability=None),
        dict(ramp_limits=None),
        dict(ramp_costs=None),
        dict(ramp_limits=None, ramp_costs=None),
        dict(availability_noise=0.3),
    ],
    ids=["ramps_only", "costs_no_limits", "limits_no_costs", "availability_only", "noise"],
)
def test_each_limit_alone(changes):
    run_side_by_side(ramp_scenario(**changes), "market_v2", "pro_rata", seed=2, episodes=3)


@pytest.mark.parametrize("observer", ["market_v2", "simple_v3"])
def test_advanced_week(observer):
    run_side_by_side(pm.Scenario.advanced(), observer, "pro_rata", seed=4, episodes=1)


def test_advanced_week_with_availability_noise():
    scenario = pm.Scenario.advanced().replace(availability_noise=0.2)
    run_side_by_side(scenario, "market_v2", "index", seed=8, episodes=2)


def test_ramp_window_binds_as_documented():
    """By hand: the offer stays in [x - rK, min(K LF, x + rK)] whatever the
    withheld share, and collapses to the top when availability falls below
    the floor."""
    scenario = ramp_scenario(demand_noise=0.0)
    env = pm.MarketEnv(scenario, seed=0)
    env.reset()
    k = scenario.capacities
    r = scenario.ramp_limits * k
    lf = scenario.availability
    full = np.zeros((4, 2), np.float32)  # everything offered at cost
    withhold = np.tile(np.float32([1.0, 0.0]), (4, 1))  # everything withheld
    _, _, _, _, info = env.step(full)
    x = info["cleared"]
    np.testing.assert_array_equal(env.episode_record()["offered"][0], k * lf[0])
    for h in range(1, 4):
        _, _, _, _, info = env.step(withhold if h % 2 else full)
        offered = env.episode_record()["offered"][h]
        hi = np.minimum(k * lf[h], x + r)
        lo = np.minimum(np.maximum(0.0, x - r), hi)
        np.testing.assert_allclose(offered, lo if h % 2 else hi, rtol=1e-12)
        x = info["cleared"]
    # Hour 3: plant 0's load factor is 0 (its floor is above): it offers 0.
    assert env.episode_record()["offered"][3][0] == 0.0


def test_no_availability_noise_draws_nothing():
    """Availability and ramps with availability_noise=0 leave the RNG stream
    as it is: the demand draws equal those of the same market without them."""
    plain = ramp_scenario(availability=None, ramp_limits=None, ramp_costs=None)
    limited = ramp_scenario()
    a, b = pm.MarketEnv(plain, seed=5), pm.MarketEnv(limited, seed=5)
    for _ in range(3):
        a.reset()
        b.reset()
        np.testing.assert_array_equal(a.demand, b.demand)
    # With noise the demand of the first episode is drawn first (the same),
    # then the load factors: the next episode's demand differs.
    c = pm.MarketEnv(limited.replace(availability_noise=0.1), seed=5)
    a = pm.MarketEnv(plain, seed=5)
    a.reset()
    c.reset()
    np.testing.assert_array_equal(a.demand, c.demand)
    assert not np.array_equal(c.availability, limited.availability)
    a.reset()
    c.reset()
    assert not np.array_equal(a.demand, c.demand)


@pytest.mark.parametrize("segments", [2, 3])
@pytest.mark.parametrize("observer", ["market_v2", "simple"])
def test_ramps_and_availability_with_market_design(segments, observer):
    """Ramp windows over several blocks (merit-order cut and raise), with
    demand bids, pay-as-bid and a cap, against the reference."""
    scenario = ramp_scenario(
        segments=segments,
        demand_bids=[(25.0, 0.1), (8.0, 0.05)],
        mechanism="pay_as_bid",
        price_cap=250.0,
    )
    seen_shortage, _ = run_side_by_side(scenario, observer, "pro_rata", seed=segments, episodes=4)
    assert seen_shortage


@pytest.mark.parametrize("tie_rule", TIE_RULES)
@pytest.mark.parametrize("observer", OBSERVERS)
def test_linear_price_action(observer, tie_rule):
    """price_action="linear": a1 in [-1, 1], bid c + a1 * max_bid_delta (issue 21)."""
    sc = pm.Scenario.default(n=5).replace(price_action="linear")
    run_side_by_side(sc, observer, tie_rule, seed=21, episodes=3)


@pytest.mark.parametrize("segments", [1, 3])
def test_linear_price_action_with_market_design_and_limits(segments):
    sc = pm.Scenario.advanced().replace(
        price_action="linear",
        segments=segments,
        demand_bids=[(45.0, 0.1)],
        mechanism="pay_as_bid",
        price_cap=80.0,
        price_floor=-10.0,
        availability_noise=0.1,
    )
    run_side_by_side(sc, "market_v2", "pro_rata", seed=22, episodes=2)
