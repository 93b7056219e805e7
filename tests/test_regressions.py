"""Regression tests for defects found in review (each failed before its fix)."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import powermarket as pm
from powermarket._core import Opponents


def test_demand_equal_to_total_capacity_clears_it_all():
    # Capacity equals peak demand: at the peak, every MW must clear at the top price.
    base = pm.Scenario.default(n=33, t=168)
    scenario = base.replace(capacities=np.full(33, base.demand.max() / 33), demand_noise=0.0)
    env = pm.MarketEnv(scenario, seed=0)
    env.reset()
    truthful = np.zeros((33, 2), np.float32)
    for _ in range(168):
        _, _, _, _, info = env.step(truthful)
        assert info["shortfall"] == 0.0
        assert info["cleared"].sum() == pytest.approx(info["demand"], rel=1e-12)
        assert 20.0 <= info["price"] <= 40.0


@pytest.mark.parametrize("n", [40, 100, 333])
def test_clear_all_supply_many_offers(n):
    rng = np.random.default_rng(n)
    for _ in range(300):
        bids = rng.uniform(0, 100, n)
        qty = rng.uniform(0.1, 5, n)
        price, cleared = pm.clear(bids, qty, float(qty.sum()))
        assert cleared.sum() == pytest.approx(qty.sum(), rel=1e-12)
        np.testing.assert_allclose(cleared, qty, rtol=1e-9)


def _misaligned(values: np.ndarray) -> np.ndarray:
    raw = np.frombuffer(bytearray(values.nbytes + 1), dtype=np.uint8)[1:]
    out = raw.view(values.dtype).reshape(values.shape)
    out[...] = values
    assert not out.flags.aligned
    return out


def test_misaligned_arrays_are_converted_not_a_panic():
    bids, qty = np.array([30.0, 10.0, 20.0]), np.array([10.0, 10.0, 10.0])
    assert pm.clear(_misaligned(bids), _misaligned(qty), 15.0)[0] == 20.0
    acts = np.full((5, 2), 0.25, np.float32)
    a = pm.MarketEnv(seed=1)
    b = pm.MarketEnv(seed=1)
    a.reset()
    b.reset()
    np.testing.assert_array_equal(a.step(acts)[1], b.step(_misaligned(acts))[1])
    v = pm.VecMarketEnv(num_envs=2, seed=1)
    v.reset()
    v.step(_misaligned(np.zeros((2, 5, 2), np.float32)))
    s = pm.Scenario(_misaligned(np.array([1.0, 2.0])), [3.0, 4.0], [1.0])
    assert list(s.capacities) == [1.0, 2.0]


def test_opponents_reject_readonly_and_handle_empty():
    opp = Opponents(["truthful", "random"], 50.0, seed=0)
    ro = np.zeros((2, 2), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        opp.fill(ro, 0)
    Opponents([], 50.0, num_markets=3).fill_batch(np.zeros((3, 0, 2), np.float32), 0)


def test_absurd_sizes_are_errors_not_aborts():
    with pytest.raises((ValueError, MemoryError), match="num_envs"):
        pm.VecMarketEnv(num_envs=2**40)
    with pytest.raises(ValueError, match="`n`"):
        pm.Scenario.default(n=2**62)


def test_overflowing_scenario_is_rejected():
    with pytest.raises(ValueError, match="max_bid_delta"):
        pm.Scenario([1.0], [1e308], [1.0], max_bid_delta=1e308)


def test_huge_finite_float64_actions_are_clipped_not_rejected():
    a, b = pm.MarketEnv(seed=2), pm.MarketEnv(seed=2)
    a.reset()
    b.reset()
    big = np.tile(np.array([[1e300, -1e300]]), (5, 1))
    edge = np.tile(np.array([[1.0, -10.0]], np.float32), (5, 1))
    np.testing.assert_array_equal(a.step(big)[1], b.step(edge)[1])
    with pytest.raises(ValueError, match="finite"):
        a.step(np.full((5, 2), np.inf))


def _opponent_bids_after(fail: bool) -> np.ndarray:
    env = gymnasium.make("powermarket/Market-v0", opponents="random", seed=0).unwrapped
    env.reset(seed=0)
    for _ in range(24):
        env.step([0.0, 0.0])
    if fail:
        with pytest.raises(RuntimeError):
            env.step([0.0, 0.0])
    env.reset()
    env.step([0.0, 0.0])
    return env.market.episode_record()["bids"][0]


def test_failed_single_learner_step_leaves_no_trace():
    np.testing.assert_array_equal(_opponent_bids_after(False), _opponent_bids_after(True))


def test_failed_opponent_callable_leaves_no_trace():
    calls = {"nan": False}

    def opponent(obs):
        value = np.nan if calls["nan"] else 0.0
        return np.full(2, value, np.float32)

    def run(fail: bool):
        env = gymnasium.make(
            "powermarket/Market-v0",
            opponents=["random", opponent, "random"],
            scenario=pm.Scenario.default(n=3),
            seed=5,
        ).unwrapped
        env.reset(seed=5)
        env.step([0.0, 0.0])
        if fail:
            calls["nan"] = True
            with pytest.raises(ValueError):
                env.step([0.0, 0.0])
            calls["nan"] = False
        env.step([0.0, 0.0])
        return env.market.episode_record()["bids"]

    np.testing.assert_array_equal(run(False), run(True))


def test_vector_env_nan_action_names_market_and_changes_nothing():
    def run(fail: bool):
        env = gymnasium.make_vec(
            "powermarket/Market-v0",
            num_envs=2,
            vectorization_mode="vector_entry_point",
            opponents="random",
        )
        env.reset(seed=3)
        if fail:
            with pytest.raises(ValueError, match="market 0"):
                env.step(np.array([[np.nan, 0.0], [0.0, 0.0]], np.float32))
        _, _, _, _, info = env.step(np.zeros((2, 2), np.float32))
        return info["price"]

    np.testing.assert_array_equal(run(False), run(True))


def test_vector_env_info_follows_gymnasium_conventions():
    env = gymnasium.make_vec(
        "powermarket/Market-v0",
        num_envs=3,
        vectorization_mode="vector_entry_point",
        scenario=pm.Scenario.default(n=5, t=2),
    )
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.zeros((3, 2), np.float32))
    for key in ("price", "demand", "shortfall", "cleared"):
        assert info["_" + key].all() and info[key].shape == (3,)
    _, _, terminated, _, info = env.step(np.zeros((3, 2), np.float32))
    assert terminated.all() and info["_final_info"].all()
    np.testing.assert_array_equal(info["final_info"]["price"], info["price"])


def test_vec_env_actions_may_be_its_own_buffer():
    # N=1 with "basic" has D == 2, so obs has the shape of the actions.
    scenario = pm.Scenario.default(n=1, t=6)
    a = pm.VecMarketEnv(scenario, num_envs=3, observer="basic", seed=0)
    b = pm.VecMarketEnv(scenario, num_envs=3, observer="basic", seed=0)
    obs_a, _ = a.reset()
    obs_b, _ = b.reset()
    for _ in range(8):
        expected = b.step(obs_b.copy(), copy=True)
        got = a.step(obs_a)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])
        obs_b = expected[0]
        obs_a = got[0]


@pytest.mark.parametrize(
    "capacities, costs, demand",
    [
        ([3.1], [5e-324], [0.1, 50.1]),  # cost scale too small: reward scale overflows
        ([1.1], [1e-300], [5.1, 0.1]),  # rewards would not fit in float32
        ([5e-324, 1.0], [20.0, 30.0], [1.0]),  # capacity too small to normalise by
    ],
)
def test_scenarios_whose_rewards_or_features_overflow_are_rejected(capacities, costs, demand):
    with pytest.raises(ValueError, match="scenario field"):
        pm.Scenario(capacities, costs, demand)


def test_fuzzed_steps_stay_finite_and_in_bounds():
    rng = np.random.default_rng(7)
    for _ in range(200):
        n, t = int(rng.integers(1, 5)), int(rng.integers(1, 4))
        scenario = pm.Scenario(
            rng.uniform(0.1, 100, n),
            rng.normal(20, 30, n),
            rng.uniform(0.1, 200, t),
            max_bid_delta=float(rng.uniform(0, 200)),
            demand_noise=float(rng.uniform(0, 0.5)),
        )
        env = pm.MarketEnv(scenario, observer=str(rng.choice(pm.OBSERVERS)), seed=1)
        env.reset()
        low, high = env.observation_bounds()
        for _ in range(t):
            actions = rng.normal(0, 20, (n, 2))  # float64, often outside the box
            obs, rewards, *_ = env.step(actions)
            assert np.isfinite(rewards).all()
            assert ((obs >= low) & (obs <= high)).all()
