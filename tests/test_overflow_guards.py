"""Overflow guards: inputs whose sums or worst cases leave the float64 range are
refused with a ValueError naming the argument or scenario field at fault, instead
of a silent NaN, inf or wrong clearing (docs/semantics.md, "Validation").

Every accepted case is checked against an independent computation, so a guard
that refused everything, or nothing, would fail here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import powermarket as pm
from powermarket import analysis


def episode_rewards(scenario: pm.Scenario, seed: int = 0) -> np.ndarray:
    """Rewards (T, N) of one episode of random actions."""
    env = pm.MarketEnv(scenario, seed=seed)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    shape = (scenario.n, 2) if scenario.segments == 1 else (scenario.n, scenario.segments, 2)
    out = []
    for _ in range(scenario.t):
        a = np.stack([rng.uniform(0, 1, shape[:-1]), rng.uniform(-10, 10, shape[:-1])], -1)
        _, r, *_ = env.step(a.astype(np.float32))
        out.append(r)
    return np.array(out)


# --- scenario validation: availability noise ---------------------------------------------


def test_huge_availability_noise_is_refused_naming_the_field() -> None:
    advanced = pm.Scenario.advanced()
    for noise in (1e308, 1e100, 1e4):
        with pytest.raises(ValueError, match="availability_noise") as e:
            advanced.replace(availability_noise=noise)
        assert "1000" in str(e.value)  # the stated bound


@pytest.mark.parametrize("noise", [0.3, 5.0, 1000.0])
def test_accepted_availability_noise_gives_finite_load_factors_and_rewards(noise) -> None:
    s = pm.Scenario.advanced().replace(availability_noise=noise, demand_noise=0.0)
    env = pm.MarketEnv(s, seed=3)
    env.reset(seed=3)
    lf = env.availability
    assert np.isfinite(lf).all() and lf.min() >= 0.0 and lf.max() <= 1.0
    # Multiplicative noise: a plant at 0 (solar at night) stays at 0, and
    # generators without variable load factors keep the scenario's.
    base = s.availability
    assert np.all(lf[base == 0.0] == 0.0)
    assert np.isfinite(episode_rewards(s, seed=3)).all()


# --- scenario validation: bids after clipping to the cap and floor -----------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (dict(price_floor=1e23), "price_floor"),
        (dict(price_cap=-1e23), "price_cap"),
        (dict(price_floor=1e200), "price_floor"),
        (dict(price_cap=-1e200), "price_cap"),
        (dict(price_cap=1e300), "price_cap"),
        (dict(shortage_price=1e300), "shortage_price"),
        (dict(shortage_price=-1e300), "shortage_price"),
        (dict(demand_bids=[(1e300, 0.1)]), "demand_bids"),
        (dict(demand_bids=[(-1e300, 0.1)]), "demand_bids"),
    ],
)
def test_price_fields_that_overflow_rewards_are_refused_naming_that_field(changes, field) -> None:
    s = pm.Scenario.default()
    with pytest.raises(ValueError) as e:
        s.replace(**changes)
    message = str(e.value)
    assert f"scenario field `{field}`" in message, message


@pytest.mark.parametrize("floor", [100.0, 1e3, 1e4, 1e6, 1e9, 1e12, 1e15, 1e18, 1e21, 1e23])
def test_price_floor_is_refused_or_gives_finite_rewards(floor) -> None:
    """Either validation refuses the floor, or every reward of an episode is finite."""
    for changes in (dict(price_floor=floor), dict(price_cap=-floor)):
        try:
            s = pm.Scenario.default().replace(**changes)
        except ValueError as e:
            assert next(iter(changes)) in str(e)
            continue
        r = episode_rewards(s, seed=1)
        assert np.isfinite(r).all() and np.abs(r).max() < np.finfo(np.float32).max, changes


def test_moderate_or_never_binding_floor_and_cap_are_still_accepted() -> None:
    s = pm.Scenario.default()
    # A floor far below every bid never binds (without a cap it is not the
    # shortage price either), so it cannot overflow anything.
    for changes in (
        dict(price_floor=1e3),
        dict(price_cap=-1e3),
        dict(price_cap=4000.0),
        dict(price_floor=-1e300),
    ):
        r = episode_rewards(s.replace(**changes), seed=2)
        assert np.isfinite(r).all()


# --- pm.clear: the demand side ------------------------------------------------------------


@pytest.mark.parametrize(
    ("demand", "bid_prices", "bid_quantities"),
    [
        (5.0, [15.0, 15.0], [1e308, 1e308]),  # one group whose sum overflows
        (5.0, [15.0, 16.0], [1e308, 1e308]),  # two groups: the demand levels overflow
        (1e308, [15.0], [1e308]),  # inelastic demand plus the bid
    ],
)
def test_clear_refuses_demand_bids_whose_sum_overflows(demand, bid_prices, bid_quantities) -> None:
    with pytest.raises(ValueError, match="demand_bids"):
        pm.clear([10.0, 20.0], [10.0, 10.0], demand, demand_bids=(bid_prices, bid_quantities))
    with pytest.raises(ValueError, match="demand_bids"):
        pm.clear_batch(
            [[10.0, 20.0]],
            [[10.0, 10.0]],
            [demand],
            demand_bids=([bid_prices], [bid_quantities]),
        )


def test_clear_with_large_but_finite_demand_bids_serves_what_it_clears() -> None:
    # 1e306 MW of bids: the sums stay finite, so it clears: all supply is
    # bought at the bid price and the volume cleared equals the volume served.
    price, cleared, served = pm.clear(
        [10.0, 20.0], [10.0, 10.0], 5.0, demand_bids=([15.0, 15.0], [1e306, 1e306])
    )
    assert price == 15.0
    assert cleared.tolist() == [10.0, 0.0]
    assert math.isclose(5.0 + served.sum(), cleared.sum(), rel_tol=1e-12)


# --- analysis ---------------------------------------------------------------------------


def test_pure_nash_refuses_capacities_whose_sum_overflows() -> None:
    with pytest.raises(ValueError, match="capacities"):
        analysis.pure_nash([1.0, 2.0], [1e308, 1e308], [0.0, 0.0], 1.0)


def test_pure_nash_refuses_profits_beyond_float64() -> None:
    with pytest.raises(ValueError, match="prices_grid|costs"):
        analysis.pure_nash([-1e308, 1e308], [10.0, 10.0], [1e308, 0.0], 1.0)


def test_pure_nash_with_large_capacities_meets_demand() -> None:
    eq = analysis.pure_nash([1.0, 2.0], [1e300, 1e300], [0.0, 0.0], 1.0)
    assert len(eq["price"]) > 0
    np.testing.assert_allclose(eq["cleared"].sum(axis=1), 1.0, rtol=1e-12)


@pytest.mark.parametrize(
    ("a", "b", "caps"),
    [
        (1e308, 1e-308, [np.inf, np.inf]),
        (1e308, 1e-308, [np.inf]),
        (1e308, 1e-300, [np.inf, 1.0]),
    ],
)
def test_cournot_refuses_an_equilibrium_beyond_float64(a, b, caps) -> None:
    with pytest.raises(ValueError, match="float64"):
        analysis.cournot(a, b, [0.0] * len(caps), caps)


def test_cournot_at_large_finite_scale_is_exact() -> None:
    # Symmetric, uncapped: P = (a + n c) / (n + 1), q = (a - c) / (b (n + 1)).
    price, q = analysis.cournot(1e300, 1.0, [0.0, 0.0], [np.inf, np.inf])
    assert price == pytest.approx(1e300 / 3, rel=1e-12)
    np.testing.assert_allclose(q, 1e300 / 3, rtol=1e-12)
    assert np.isfinite(q).all()


def test_exploitability_refuses_a_grid_above_the_work_bound() -> None:
    s = pm.Scenario.default(n=3, t=2)
    grid = (np.linspace(0, 1, 100_000), np.linspace(-1, 1, 100_000))
    actions = np.zeros((1, s.t, s.n, 2), np.float32)
    demand = np.array([s.demand])
    with pytest.raises(ValueError, match="grid") as e:
        analysis.exploitability_of_play(s, actions, demand, grid=grid)
    assert str(analysis.EXPLOITABILITY_MAX_WORK) in str(e.value)
    with pytest.raises(ValueError, match="grid"):
        analysis.exploitability(s, lambda obs: np.zeros((3, 2)), grid=grid)


def test_exploitability_work_bound_is_the_clearing_count_times_n() -> None:
    """The bound is G x E x T x N clearings of N offers; below it the call runs."""
    assert analysis.EXPLOITABILITY_MAX_WORK == 2**35
    s = pm.Scenario.default(n=2, t=1)
    actions = np.zeros((1, 1, 2, 2), np.float32)
    demand = np.array([s.demand])
    small = (np.linspace(0, 1, 3), np.linspace(-1, 1, 3))
    out = analysis.exploitability_of_play(s, actions, demand, grid=small)
    assert out["regret"].shape == (2,)
    # E x T x N x N = 4, so 2^17 x (2^16 + 1) grid pairs is just over 2^35.
    over = (np.zeros(2**17), np.zeros(2**16 + 1))
    with pytest.raises(ValueError, match="grid"):
        analysis.exploitability_of_play(s, actions, demand, grid=over)
