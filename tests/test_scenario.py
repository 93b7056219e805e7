"""Scenario presets, round trips and validation, checked against docs/semantics.md in NumPy."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import powermarket as pm

FIELDS = {
    "network",
    "node_names",
    "nodes",
    "lines",
    "demand_shares",
    "demand_bid_nodes",
    "segments",
    "demand_bids",
    "mechanism",
    "price_action",
    "price_cap",
    "price_floor",
    "capacities",
    "costs",
    "demand",
    "max_bid_delta",
    "bid_penalty",
    "lol_penalty",
    "demand_noise",
    "shortage_price",
    "availability",
    "availability_noise",
    "ramp_limits",
    "ramp_costs",
    "storage",
}


def small() -> pm.Scenario:
    return pm.Scenario([10.0, 20.0, 30.0], [5.0, 15.0, 25.0], [12.0, 30.0, 45.0, 20.0])


# --- presets -------------------------------------------------------------------------------


@pytest.mark.parametrize("n,t", [(1, 1), (1, 24), (2, 7), (5, 24), (7, 48), (30, 100)])
def test_default_preset_matches_design_formulas(n: int, t: int) -> None:
    s = pm.Scenario.default(n=n, t=t)
    demand = (np.sin(np.linspace(0.0, 2.0 * np.pi, t)) + 1.5) * 50.0
    assert s.n == n and s.t == t
    assert s.demand.shape == (t,)
    np.testing.assert_allclose(s.demand, demand, rtol=0, atol=1e-12)
    np.testing.assert_allclose(s.capacities, np.full(n, 150.0 / n), rtol=0, atol=1e-12)
    np.testing.assert_allclose(s.costs, np.linspace(20.0, 40.0, n), rtol=0, atol=1e-12)
    # easy_marl scalar defaults (docs/semantics.md, "The environment").
    assert s.max_bid_delta == 50.0
    assert s.bid_penalty == 0.01
    assert s.lol_penalty == 1.0
    assert s.demand_noise == 0.05
    assert s.shortage_price is None


def test_default_arguments_are_n5_t24() -> None:
    assert pm.Scenario.default() == pm.Scenario.default(n=5, t=24)
    assert pm.Scenario.default().n == 5 and pm.Scenario.default().t == 24


def test_scales_follow_design() -> None:
    s = pm.Scenario.default(n=4, t=24)
    assert s.demand_scale == pytest.approx(np.max(s.demand), abs=0)
    assert s.cost_scale == 40.0
    assert s.capacity_scale == pytest.approx(150.0 / 4)
    s2 = small()
    assert (s2.demand_scale, s2.cost_scale, s2.capacity_scale) == (45.0, 25.0, 30.0)


@pytest.mark.parametrize("costs", [[0.0, 0.0], [-5.0, -1.0]])
def test_non_positive_cost_scale_is_one(costs: list[float]) -> None:
    """docs/semantics.md: a scale that is not positive is taken as 1."""
    s = pm.Scenario([1.0, 2.0], costs, [1.0, 2.0])
    assert s.cost_scale == 1.0


def easy_marl_competitive(n: int, t: int, competition_rate: int) -> dict[str, np.ndarray]:
    """easy_marl's make_competitive_params, re-written in NumPy from its definition."""
    shape = np.sin(np.linspace(0, 2 * np.pi, t)) + 1.5
    capacities = np.full(n, 30.0 * 5 / n)
    demand = shape / shape.max() * (np.sum(capacities[:-1]) - 1)
    levels = np.linspace(20.0, 40.0, int(np.ceil(n / competition_rate))).tolist()
    costs = np.sort(np.array((levels * competition_rate)[:n]))
    return {"capacities": capacities, "costs": costs, "demand": demand}


def test_competitive_n8_holds_easy_marl_values() -> None:
    """The issue's numbers for N=8, T=24, rate 2, written out by hand."""
    s = pm.Scenario.competitive(8, 24, 2)
    third = 20.0 / 3.0
    want_costs = [20.0, 20.0, 20 + third, 20 + third, 40 - third, 40 - third, 40.0, 40.0]
    np.testing.assert_allclose(s.costs, want_costs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(s.capacities, np.full(8, 18.75), rtol=0, atol=1e-12)
    assert abs(s.demand.max() - 130.25) <= 1e-12
    assert (s.max_bid_delta, s.bid_penalty) == (50.0, 0.01)


@pytest.mark.parametrize("rate", [1, 2, 3, 4, 7, 100])
@pytest.mark.parametrize("n", [2, 3, 5, 8, 9, 33])
@pytest.mark.parametrize("t", [1, 7, 24, 168])
def test_competitive_equals_easy_marl_builder(n: int, t: int, rate: int) -> None:
    s = pm.Scenario.competitive(n=n, t=t, competition_rate=rate)
    want = easy_marl_competitive(n, t, rate)
    for field, values in want.items():
        np.testing.assert_allclose(getattr(s, field), values, rtol=1e-12, atol=1e-12)


def test_competitive_defaults_are_easy_marls() -> None:
    """easy_marl's defaults: N=8, T=24, competition_rate=2."""
    s = pm.Scenario.competitive()
    assert (s.n, s.t) == (8, 24)
    assert s == pm.Scenario.competitive(8, 24, 2)
    assert pm.Scenario.competitive(n=5, t=10) == pm.Scenario.competitive(5, 10, 2)


def test_competitive_numpy_ints_and_huge_rates() -> None:
    assert pm.Scenario.competitive(6, 5, np.int64(3)) == pm.Scenario.competitive(6, 5, 3)
    # every rate >= n puts all plants on the 20 EUR/MWh level
    huge = pm.Scenario.competitive(6, 5, 10**30)
    assert huge == pm.Scenario.competitive(6, 5, 6)
    np.testing.assert_array_equal(huge.costs, np.full(6, 20.0))


@pytest.mark.parametrize(
    "rate", [0, -1, 2.0, 2.5, float("nan"), float("inf"), True, "2", -(10**30)]
)
def test_competitive_bad_rate(rate: object) -> None:
    with pytest.raises(ValueError, match="competition_rate"):
        pm.Scenario.competitive(n=3, t=24, competition_rate=rate)  # type: ignore[arg-type]


def test_competitive_needs_two_generators() -> None:
    with pytest.raises(ValueError, match="`n`.*n >= 2"):
        pm.Scenario.competitive(n=1, t=24)


@pytest.mark.parametrize("n", [1, 2, 5, 10])
def test_weekly_preset(n: int) -> None:
    s = pm.Scenario.weekly(n=n)
    assert s.t == 168 and s.n == n
    d = s.demand.reshape(7, 24)
    assert np.all(np.isfinite(d)) and np.all(d > 0)
    # five identical weekdays, two identical weekend days at 80 % (documented)
    for day in range(1, 5):
        np.testing.assert_array_equal(d[day], d[0])
    np.testing.assert_array_equal(d[6], d[5])
    np.testing.assert_allclose(d[5], 0.8 * d[0], rtol=1e-12)
    if n >= 2:
        assert np.any(s.costs == 0.0), "weekly needs zero-cost (renewable) generators"
        assert np.any(s.costs > 0.0)
    assert np.all(s.capacities > 0)


def test_weekly_default_n() -> None:
    assert pm.Scenario.weekly().n == 5


@pytest.mark.parametrize(
    "call,field",
    [
        (lambda: pm.Scenario.default(n=0), "n"),
        (lambda: pm.Scenario.default(t=0), "t"),
        (lambda: pm.Scenario.competitive(n=0), "n"),
        (lambda: pm.Scenario.weekly(n=0), "n"),
    ],
)
def test_preset_sizes_validated(call, field: str) -> None:
    with pytest.raises(ValueError, match=f"`{field}`"):
        call()


# --- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "s",
    [
        pm.Scenario.default(),
        pm.Scenario.competitive(n=3, t=10, competition_rate=1),
        pm.Scenario.weekly(n=4),
        pm.Scenario(
            [1.0],
            [3.0],
            [0.5],
            max_bid_delta=7.0,
            bid_penalty=0.5,
            lol_penalty=2.0,
            demand_noise=0.0,
            shortage_price=300.0,
        ),
        pm.Scenario.advanced(),
        pm.Scenario.advanced().replace(availability_noise=0.3, ramp_costs=None),
        pm.Scenario.default().replace(price_action="linear"),
    ],
)
def test_to_dict_from_dict_round_trip(s: pm.Scenario) -> None:
    d = s.to_dict()
    assert set(d) == FIELDS
    assert isinstance(d["capacities"], list) and isinstance(d["demand"], list)
    s2 = pm.Scenario.from_dict(d)
    assert s2 == s
    assert s2.to_dict() == d
    np.testing.assert_array_equal(s2.demand, s.demand)
    np.testing.assert_array_equal(s2.costs, s.costs)
    np.testing.assert_array_equal(s2.capacities, s.capacities)
    for k in ("max_bid_delta", "bid_penalty", "lol_penalty", "demand_noise", "shortage_price"):
        assert getattr(s2, k) == getattr(s, k)
    for k in ("availability", "ramp_limits", "ramp_costs"):
        a, b = getattr(s2, k), getattr(s, k)
        assert (a is None and b is None) or np.array_equal(a, b), k
    assert pickle.loads(pickle.dumps(s)) == s


def test_from_dict_defaults_scalars() -> None:
    s = pm.Scenario.from_dict({"capacities": [1.0, 2.0], "costs": [1.0, 2.0], "demand": [2.0]})
    assert s == pm.Scenario([1.0, 2.0], [1.0, 2.0], [2.0])
    assert s.max_bid_delta == 50.0 and s.demand_noise == 0.05 and s.shortage_price is None


def test_constructor_keywords() -> None:
    s = pm.Scenario(
        [1.0, 2.0],
        [3.0, 4.0],
        [2.5, 1.0],
        max_bid_delta=10.0,
        bid_penalty=0.0,
        lol_penalty=3.0,
        demand_noise=0.1,
        shortage_price=-5.0,
    )
    assert (s.max_bid_delta, s.bid_penalty, s.lol_penalty) == (10.0, 0.0, 3.0)
    assert (s.demand_noise, s.shortage_price) == (0.1, -5.0)
    np.testing.assert_array_equal(s.capacities, [1.0, 2.0])
    np.testing.assert_array_equal(s.costs, [3.0, 4.0])
    np.testing.assert_array_equal(s.demand, [2.5, 1.0])


def test_constructor_accepts_numpy_arrays_of_any_dtype_and_stride() -> None:
    k = np.arange(1, 9, dtype=np.float32)[::2]  # strided float32
    s = pm.Scenario(k, np.array([1, 2, 3, 4]), np.array([3.0, 4.0]))
    np.testing.assert_array_equal(s.capacities, [1.0, 3.0, 5.0, 7.0])
    assert s.capacities.dtype == np.float64
    np.testing.assert_array_equal(s.costs, [1.0, 2.0, 3.0, 4.0])


def test_replace() -> None:
    s = pm.Scenario.default(n=3, t=6)
    r = s.replace(demand_noise=0.0, bid_penalty=0.5)
    assert r.demand_noise == 0.0 and r.bid_penalty == 0.5
    assert s.demand_noise == 0.05 and s.bid_penalty == 0.01, "replace must not modify self"
    assert r != s
    np.testing.assert_array_equal(r.demand, s.demand)
    np.testing.assert_array_equal(r.costs, s.costs)
    assert r.replace(demand_noise=0.05, bid_penalty=0.01) == s
    r2 = s.replace(costs=[1.0, 2.0, 3.0], shortage_price=500.0)
    np.testing.assert_array_equal(r2.costs, [1.0, 2.0, 3.0])
    assert r2.shortage_price == 500.0
    assert s.replace() == s


def test_replace_validates() -> None:
    s = pm.Scenario.default(n=3, t=6)
    with pytest.raises(ValueError, match="demand_noise"):
        s.replace(demand_noise=-1.0)
    with pytest.raises(ValueError, match="costs"):
        s.replace(costs=[1.0, 2.0])
    with pytest.raises(ValueError, match="colour"):
        s.replace(colour=1.0)


@pytest.mark.parametrize(
    "s",
    [pm.Scenario.default(n=2, t=3), pm.Scenario.weekly(3), small().replace(shortage_price=100.0)],
)
def test_pickle_and_copy(s: pm.Scenario) -> None:
    for p in (pickle.loads(pickle.dumps(s)), copy.deepcopy(s), copy.copy(s)):
        assert p == s
        assert p.to_dict() == s.to_dict()


def test_array_properties_are_copies() -> None:
    s = small()
    c = s.costs
    c[:] = 999.0
    np.testing.assert_array_equal(s.costs, [5.0, 15.0, 25.0])
    d = s.demand
    d[0] = -1.0
    assert s.demand[0] == 12.0


def test_equality_and_repr() -> None:
    assert small() == small()
    assert small() != small().replace(lol_penalty=2.0)
    r = repr(pm.Scenario.default(n=5, t=24))
    assert "n=5" in r and "t=24" in r


# --- validation ----------------------------------------------------------------------------


def _make(**changes):
    d = small().to_dict()
    d.update(changes)
    return pm.Scenario(
        d["capacities"],
        d["costs"],
        d["demand"],
        **{
            k: d[k]
            for k in (
                "max_bid_delta",
                "bid_penalty",
                "lol_penalty",
                "demand_noise",
                "shortage_price",
            )
        },
    )


@pytest.mark.parametrize(
    "changes,pattern",
    [
        ({"capacities": [], "costs": []}, r"`capacities`"),
        ({"demand": []}, r"`demand`"),
        ({"costs": [5.0, float("nan"), 25.0]}, r"`costs`.*gen_1.*(?i:nan)"),
        ({"costs": [5.0, 15.0, float("inf")]}, r"`costs`.*gen_2"),
        ({"capacities": [10.0, 0.0, 30.0]}, r"`capacities`.*gen_1.*0"),
        ({"capacities": [-1.0, 20.0, 30.0]}, r"`capacities`.*gen_0"),
        ({"capacities": [10.0, float("nan"), 30.0]}, r"`capacities`.*gen_1"),
        ({"demand": [12.0, 30.0, 45.0, 0.0]}, r"`demand`.*hour 3"),
        ({"demand": [12.0, -3.0, 45.0, 20.0]}, r"`demand`.*hour 1"),
        ({"demand": [12.0, float("nan"), 45.0, 20.0]}, r"`demand`.*hour 1"),
        ({"costs": [5.0, 15.0]}, r"`costs`"),
        ({"costs": [5.0, 15.0, 25.0, 35.0]}, r"`costs`"),
        ({"demand_noise": -0.1}, r"`demand_noise`"),
        ({"demand_noise": float("nan")}, r"`demand_noise`"),
        ({"max_bid_delta": -1.0}, r"`max_bid_delta`"),
        ({"bid_penalty": float("inf")}, r"`bid_penalty`"),
        ({"lol_penalty": -2.0}, r"`lol_penalty`"),
        ({"shortage_price": float("nan")}, r"`shortage_price`"),
    ],
)
def test_validation_names_the_field(changes: dict, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        _make(**changes)
    # the dict path and replace validate the same way
    with pytest.raises(ValueError, match=pattern):
        pm.Scenario.from_dict({**small().to_dict(), **changes})
    with pytest.raises(ValueError, match=pattern):
        small().replace(**changes)


def test_unknown_dict_key_is_named() -> None:
    with pytest.raises(ValueError, match="wind_share"):
        pm.Scenario.from_dict({**small().to_dict(), "wind_share": 0.3})


def test_missing_dict_key_is_named() -> None:
    d = small().to_dict()
    del d["costs"]
    with pytest.raises(ValueError, match="costs"):
        pm.Scenario.from_dict(d)


def test_two_dimensional_field_rejected() -> None:
    with pytest.raises(ValueError, match="capacities"):
        pm.Scenario([[1.0, 2.0]], [1.0, 2.0], [1.0])


def test_envs_accept_scenario_dict() -> None:
    """A dict is as good as a Scenario wherever one is taken."""
    d = small().to_dict()
    assert pm.MarketEnv(d).scenario == small()
    assert pm.MarketEnv(None).scenario == pm.Scenario.default()
    with pytest.raises(ValueError, match="scenario"):
        pm.MarketEnv(42)


# --- availability and ramps (issue 10) ----------------------------------------------------


def test_advanced_preset_is_easy_marl_get_params() -> None:
    s = pm.Scenario.advanced()
    assert (s.n, s.t) == (5, 168)
    np.testing.assert_array_equal(s.capacities, [40, 40, 20, 20, 20])
    np.testing.assert_array_equal(s.costs, [0, 0, 10, 20, 30])
    np.testing.assert_array_equal(s.ramp_limits, [1, 1, 0.25, 0.5, 1])
    np.testing.assert_array_equal(s.ramp_costs, [0, 0, 1, 1, 1])
    assert s.availability.shape == (168, 5) and s.availability_noise == 0.0
    # Thermal plants always available; solar dark at night, wind never 0 or 1.
    np.testing.assert_array_equal(s.availability[:, 2:], 1.0)
    hours = np.arange(168) % 24
    assert np.all(s.availability[(hours < 6) | (hours > 18), 1] == 0.0)
    assert s.availability[12, 1] == pytest.approx(0.75, abs=1e-12)
    assert 0.15 <= s.availability[:, 0].min() and s.availability[:, 0].max() <= 0.85
    # Demand: peak 0.75 x 140 MW; weekday 19:00 knot = 1.0 / spline max (18:00).
    # Hold-out from scipy.interpolate.CubicSpline(bc_type="periodic") (SciPy 1.17.1):
    # weekday spline at 18 h = 1.005214755066632, weekend at 10 h = 0.75 (a knot),
    # weekend at 19 h = 0.8622390929064658, weekday at 3 h = 0.5421734837018716.
    top = 1.005214755066632
    assert s.demand.max() == pytest.approx(105.0, rel=1e-14)
    assert s.demand[18] == pytest.approx(105.0, rel=1e-14)
    assert s.demand[19] == pytest.approx(105.0 / top, rel=1e-13)
    assert s.demand[3] == pytest.approx(105.0 * 0.5421734837018716 / top, rel=1e-13)
    assert s.demand[5 * 24 + 10] == pytest.approx(105.0 * 0.75 / top, rel=1e-13)
    assert s.demand[6 * 24 + 19] == pytest.approx(105.0 * 0.8622390929064658 / top, rel=1e-13)
    np.testing.assert_array_equal(s.demand[:24], s.demand[4 * 24 : 5 * 24])


@pytest.mark.parametrize(
    ("changes", "field", "value"),
    [
        (dict(availability=np.full((4, 3), 1.5)), "availability", "1.5"),
        (dict(availability=np.full((4, 3), np.nan)), "availability", "NaN"),
        (dict(availability=np.ones((3, 4))), "availability", "(3, 4)"),
        (dict(availability=np.ones(12)), "availability", "(12,)"),
        (dict(availability_noise=-0.1), "availability_noise", "-0.1"),
        (dict(availability_noise=np.inf), "availability_noise", "inf"),
        (dict(ramp_limits=[0.1, -0.2, 0.3]), "ramp_limits", "-0.2"),
        (dict(ramp_limits=[0.1, 0.2]), "ramp_limits", "2 values"),
        (dict(ramp_costs=[0.0, np.nan, 1.0]), "ramp_costs", "NaN"),
        (dict(ramp_costs=[0.0, 1e300, 1.0]), "ramp_costs", "e"),
    ],
)
def test_bad_limit_fields_name_field_and_value(changes, field, value) -> None:
    with pytest.raises(ValueError, match=field) as e:
        small().replace(**changes)
    assert value in str(e.value)
    with pytest.raises(ValueError, match=field):
        pm.Scenario([10.0, 20.0, 30.0], [5.0, 15.0, 25.0], [12.0, 30.0, 45.0, 20.0], **changes)


def test_limit_fields_wrong_kind_is_type_error() -> None:
    with pytest.raises(TypeError, match="ramp_limits"):
        small().replace(ramp_limits=["a", "b", "c"])
