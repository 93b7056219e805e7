"""powermarket.analysis.arbitrage_value against a closed form, hand-computed
cases, an independent dynamic program over an exact SoC grid, random
invariants (feasibility, objective, value >= 0) and its input checks.
Expectations are computed here, never copied from the code."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from powermarket import _arbitrage
from powermarket import analysis as pa

pytest.importorskip("scipy.optimize")

PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def storage(**changes):
    base = dict(
        power=10.0,
        energy=40.0,
        efficiency_charge=1.0,
        efficiency_discharge=1.0,
        soc_initial=0.0,
        soc_min=0.0,
        soc_max=1.0,
        cost=0.0,
        terminal_value=0.0,
    )
    base.update(changes)
    return SimpleNamespace(**base)


def objective(prices, s, r):
    """The objective of docs/semantics.md on the returned arrays."""
    p = np.asarray(prices, dtype=np.float64)
    return (
        float(np.sum(p * (r.discharge - r.charge)))
        - s.cost * float(np.sum(r.discharge + r.charge))
        + s.terminal_value * (r.soc[-1] - r.soc[0])
    )


def assert_feasible(s, r, T):
    E = s.energy
    tol = 1e-9 * E
    assert r.charge.shape == (T,) and r.discharge.shape == (T,) and r.soc.shape == (T + 1,)
    assert r.charge.dtype == r.discharge.dtype == r.soc.dtype == np.float64
    assert r.soc[0] == pytest.approx(s.soc_initial * E, abs=tol)
    assert np.all(r.charge >= -tol) and np.all(r.charge <= s.power + tol)
    assert np.all(r.discharge >= -tol) and np.all(r.discharge <= s.power + tol)
    assert np.all(r.soc >= s.soc_min * E - tol) and np.all(r.soc <= s.soc_max * E + tol)
    step = r.soc[:-1] + s.efficiency_charge * r.charge - r.discharge / s.efficiency_discharge
    np.testing.assert_allclose(r.soc[1:], step, rtol=0, atol=tol)


# ---------------------------------------------------------------- closed form


@pytest.mark.parametrize(
    "low, high, hours, power, eta_c, eta_d",
    [
        (20.0, 50.0, 3, 10.0, 0.9, 0.95),  # 0.855 * 50 > 20: trade
        (10.0, 11.0, 5, 2.5, 1.0, 1.0),  # lossless
        (-5.0, 30.0, 4, 7.0, 0.8, 0.7),  # paid to charge
        (40.0, 50.0, 3, 10.0, 0.9, 0.85),  # 0.765 * 50 < 40: idle
        (30.0, 30.0, 2, 10.0, 1.0, 1.0),  # no spread: 0
    ],
)
def test_two_price_day_closed_form(low, high, hours, power, eta_c, eta_d):
    # Buying P*h at L and selling eta_c*eta_d*P*h at H (energy large, never binding).
    prices = [low] * hours + [high] * hours
    s = storage(
        power=power, energy=1e3 * power * hours, efficiency_charge=eta_c, efficiency_discharge=eta_d
    )
    r = pa.arbitrage_value(prices, s)
    spread = eta_c * eta_d * high - low
    expected = power * hours * spread if spread > 0 else 0.0
    if expected > 0:
        assert r.value == pytest.approx(expected, rel=1e-9)
        np.testing.assert_allclose(r.charge, [power] * hours + [0.0] * hours, atol=1e-9)
    else:
        assert abs(r.value) <= 1e-9
    assert isinstance(r.value, float)
    assert_feasible(s, r, 2 * hours)


# ---------------------------------------------------------------- by hand


def test_soc_limits_bind_by_hand():
    # E = 4 MWh, SoC in [0.4, 3.6] MWh, starting at 2 MWh; eta_c = 0.8, power 10 MW
    # never binds. Prices 30, 10, 50.
    # Hour 0: sell the 1.6 MWh above the minimum at 30 (+48): refilling costs
    #   10 / 0.8 = 12.5 < 30 per stored MWh.
    # Hour 1: fill 0.4 -> 3.6 MWh: 3.2 / 0.8 = 4 MWh bought at 10 (-40).
    # Hour 2: sell 3.6 - 0.4 = 3.2 MWh at 50 (+160).
    # Terminal: 20 €/MWh on soc_T - soc_0 = 0.4 - 2 = -1.6 MWh (-32).
    # 48 - 40 + 160 - 32 = 136 (holding instead of selling at 50 or 30 is worse).
    s = storage(
        power=10.0,
        energy=4.0,
        efficiency_charge=0.8,
        soc_initial=0.5,
        soc_min=0.1,
        soc_max=0.9,
        terminal_value=20.0,
    )
    r = pa.arbitrage_value([30.0, 10.0, 50.0], s)
    assert r.value == pytest.approx(136.0, rel=1e-9)
    np.testing.assert_allclose(r.soc, [2.0, 0.4, 3.6, 0.4], atol=1e-9)
    np.testing.assert_allclose(r.charge, [0.0, 4.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(r.discharge, [1.6, 0.0, 3.2], atol=1e-9)
    # terminal_value None: the reference price is used instead.
    s_ref = dict(vars(s), terminal_value=None, reference_price=20.0)
    assert pa.arbitrage_value([30.0, 10.0, 50.0], s_ref).value == pytest.approx(136.0, rel=1e-9)
    # Worth more at the end than the 50 €/MWh price: keep it full.
    # 48 (hour 0) - 40 (hour 1) + 60 * (3.6 - 2) = 104.
    s_keep = storage(**dict(vars(s), terminal_value=60.0))
    r = pa.arbitrage_value([30.0, 10.0, 50.0], s_keep)
    assert r.value == pytest.approx(104.0, rel=1e-9)
    assert r.soc[-1] == pytest.approx(3.6, abs=1e-9)


def test_power_and_cost_by_hand():
    # Lossless, 1 MW, 3 MWh from empty; cost 2 €/MWh each way. Prices 0, 0, 100, 100:
    # buy 1 MWh in each cheap hour (power binds), sell 1 in each dear hour.
    # 2 * (100 - 0) - 2 * 4 MWh of throughput = 192.
    s = storage(power=1.0, energy=3.0, cost=2.0)
    r = pa.arbitrage_value([0.0, 0.0, 100.0, 100.0], s)
    assert r.value == pytest.approx(192.0, rel=1e-9)
    assert r.soc.max() == pytest.approx(2.0, abs=1e-9)


def test_negative_prices_pay_to_waste_energy():
    # SoC pinned at 0.5 (soc_min = soc_max): only a round trip in the same hour is
    # possible, eta_c c = d / eta_d, so d = 0.25 c at eta = 0.5 each. At -100 €/MWh
    # buying c and selling 0.25 c earns 100 * 0.75 c - 1 * 1.25 c per hour;
    # with c = 8 MW (power) over 3 hours: 3 * 8 * 73.75 = 1770.
    s = storage(
        power=8.0,
        energy=10.0,
        efficiency_charge=0.5,
        efficiency_discharge=0.5,
        soc_initial=0.5,
        soc_min=0.5,
        soc_max=0.5,
        cost=1.0,
    )
    r = pa.arbitrage_value([-100.0] * 3, s)
    assert r.value == pytest.approx(1770.0, rel=1e-9)
    np.testing.assert_allclose(r.charge, [8.0] * 3, atol=1e-9)
    np.testing.assert_allclose(r.discharge, [2.0] * 3, atol=1e-9)


def test_dict_and_object_agree():
    s = storage(efficiency_charge=0.9, cost=0.5, soc_initial=0.3, terminal_value=15.0)
    prices = [12.0, 40.0, -3.0, 55.0, 20.0]
    a = pa.arbitrage_value(prices, s)
    b = pa.arbitrage_value(np.array(prices), vars(s))
    assert a.value == b.value
    np.testing.assert_array_equal(a.soc, b.soc)
    with pytest.raises(AttributeError):  # frozen
        a.value = 0.0  # type: ignore[misc]


# ---------------------------------------------------------------- dynamic program


def dp_value(prices, s, step):
    """Brute force for eta = 1: SoC on the grid soc_min*E + k*step; the net charge
    n = soc' - soc of an hour is worth -p n - cost |n| (with eta = 1 and cost >= 0
    charging and discharging together never helps)."""
    E = s.energy
    lo, hi = s.soc_min * E, s.soc_max * E
    levels = [lo + k * step for k in range(round((hi - lo) / step) + 1)]
    start = levels.index(min(levels, key=lambda v: abs(v - s.soc_initial * E)))
    value = [s.terminal_value * (v - levels[start]) for v in levels]  # after the last hour
    for p in reversed(prices):
        new = []
        for v in levels:
            best = -np.inf
            for w, later in zip(levels, value, strict=True):
                n = w - v
                if abs(n) <= s.power + 1e-12:
                    best = max(best, -p * n - s.cost * abs(n) + later)
            new.append(best)
        value = new
    return value[start]


@pytest.mark.parametrize("seed", range(25))
def test_matches_dynamic_program(seed):
    # eta = 1: the LP's constraint matrix is totally unimodular, so with power,
    # SoC bounds and the start on a 0.5 MWh grid the optimal SoCs lie on it too.
    rng = np.random.default_rng(seed)
    T = int(rng.integers(1, 7))
    step = 0.5
    E = 4.0
    k_min, k_max = sorted(rng.integers(0, 9, 2))
    k_init = int(rng.integers(k_min, k_max + 1))
    s = storage(
        power=step * int(rng.integers(0, 5)),
        energy=E,
        soc_min=k_min * step / E,
        soc_max=k_max * step / E,
        soc_initial=k_init * step / E,
        cost=float(rng.choice([0.0, rng.uniform(0, 10)])),
        terminal_value=float(rng.normal(30, 20)),
    )
    prices = rng.normal(30, 40, T)
    r = pa.arbitrage_value(prices, s)
    expected = dp_value(list(prices), s, step)
    assert r.value == pytest.approx(expected, rel=1e-9, abs=1e-9)


# ---------------------------------------------------------------- random invariants

finite = dict(allow_nan=False, allow_infinity=False)


@st.composite
def cases(draw):
    T = draw(st.integers(1, 30))
    prices = draw(st.lists(st.floats(-500, 3000, **finite), min_size=T, max_size=T))
    energy = draw(st.floats(1e-2, 1e4, **finite))
    lo, init, hi = sorted(draw(st.lists(st.floats(0, 1, **finite), min_size=3, max_size=3)))
    s = storage(
        power=energy * draw(st.floats(0, 3, **finite)),
        energy=energy,
        efficiency_charge=draw(st.floats(0.05, 1, **finite)),
        efficiency_discharge=draw(st.floats(0.05, 1, **finite)),
        soc_initial=init,
        soc_min=lo,
        soc_max=hi,
        cost=draw(st.floats(0, 50, **finite)),
        terminal_value=draw(st.floats(-100, 3000, **finite)),
    )
    return prices, s


@PROPS
@given(cases())
# Power below HiGHS's default feasibility tolerance, SoC pinned at 0 (found by Hypothesis).
@example(([1.0], storage(power=1.2e-9, energy=1.0, soc_max=0.0, terminal_value=2.0)))
@example(([-1.0, 5.0], storage(power=3e-10, energy=1.0, soc_max=1e-10)))
def test_random_feasible_consistent_nonnegative(case):
    prices, s = case
    r = pa.arbitrage_value(prices, s)
    assert r.value >= -1e-9  # idling is feasible and worth 0
    assert_feasible(s, r, len(prices))
    assert r.value == pytest.approx(objective(prices, s, r), rel=1e-9, abs=1e-9)


def test_tolerance_feasible_solution_is_repaired(monkeypatch):
    # With HiGHS's default tolerances (1e-7) and a power below them, HiGHS returns
    # d = 5e-8 MW with the SoC pinned at 0 (SciPy 1.17.1): feasible within its
    # tolerance only. The returned trajectory must still follow the model.
    monkeypatch.setattr(_arbitrage, "_HIGHS_OPTIONS", {})
    s = storage(power=5e-8, energy=1.0, soc_max=0.0, terminal_value=2.0)
    prices = [1.0, 3.0, -1.0]
    r = pa.arbitrage_value(prices, s)
    assert_feasible(s, r, 3)
    assert r.value == pytest.approx(objective(prices, s, r), rel=1e-9, abs=1e-12)
    assert abs(r.value) <= 1e-12  # nothing can be stored: only 0 is feasible


# ---------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    "prices, match",
    [
        ([[1.0, 2.0], [3.0, 4.0]], r"prices.*\(2, 2\)"),
        (5.0, r"prices.*\(\)"),
        ([], r"prices.*empty"),
        ([1.0, np.nan], r"prices\[1\] = nan"),
        ([np.inf], r"prices\[0\] = inf"),
        (["a", "b"], r"prices"),
    ],
)
def test_bad_prices(prices, match):
    with pytest.raises(ValueError, match=match):
        pa.arbitrage_value(prices, storage())


@pytest.mark.parametrize(
    "changes, match",
    [
        (dict(power=-1.0), r"storage\.power.*-1\.0"),
        (dict(power=np.inf), r"storage\.power.*inf"),
        (dict(energy=0.0), r"storage\.energy.*0\.0"),
        (dict(energy=np.nan), r"storage\.energy.*nan"),
        (dict(efficiency_charge=0.0), r"storage\.efficiency_charge.*0\.0"),
        (dict(efficiency_discharge=1.5), r"storage\.efficiency_discharge.*1\.5"),
        (dict(soc_initial=0.2, soc_min=0.3), r"soc_min=0\.3, soc_initial=0\.2"),
        (dict(soc_max=1.2), r"soc_max=1\.2"),
        (dict(soc_min=-0.1), r"soc_min=-0\.1"),
        (dict(soc_initial=0.9, soc_max=0.8), r"soc_initial=0\.9, soc_max=0\.8"),
        (dict(cost=-0.5), r"storage\.cost.*-0\.5"),
        (dict(terminal_value=np.nan), r"storage\.terminal_value.*nan"),
        (dict(terminal_value=None), r"storage\.terminal_value"),
        (dict(terminal_value=None, reference_price=None), r"storage\.terminal_value"),
        (dict(terminal_value=None, reference_price=np.inf), r"storage\.reference_price.*inf"),
    ],
)
def test_bad_storage_values(changes, match):
    with pytest.raises(ValueError, match=match):
        pa.arbitrage_value([1.0, 2.0], storage(**changes))
    with pytest.raises(ValueError, match=match):
        pa.arbitrage_value([1.0, 2.0], vars(storage(**changes)))


@pytest.mark.parametrize("name", ["power", "energy", "efficiency_discharge", "terminal_value"])
def test_missing_storage_field(name):
    s = vars(storage())
    del s[name]
    with pytest.raises(TypeError, match=name):
        pa.arbitrage_value([1.0], SimpleNamespace(**s))
    with pytest.raises(TypeError, match=name):
        pa.arbitrage_value([1.0], s)


@pytest.mark.parametrize("bad", ["10", None, True])
def test_non_numeric_storage_field(bad):
    with pytest.raises(TypeError, match="storage.power"):
        pa.arbitrage_value([1.0], storage(power=bad))


def test_without_scipy(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy.optimize", None)
    with pytest.raises(ImportError, match=r'pip install "powermarket\[analysis\]"'):
        pa.arbitrage_value([1.0, 2.0], storage())


def test_solver_failure_is_a_runtime_error(monkeypatch):
    import scipy.optimize

    def failing(*args, **kwargs):
        return SimpleNamespace(status=1, x=None, fun=None, message="Iteration limit reached.")

    monkeypatch.setattr(scipy.optimize, "linprog", failing)
    with pytest.raises(RuntimeError, match="Iteration limit reached"):
        pa.arbitrage_value([1.0, 2.0], storage())


def test_scenario_gives_the_default_reference_price_as_in_the_env():
    """With scenario=, a unit without a reference price or terminal value
    values its energy at the scenario's mean generator cost (the env's rule)."""
    import powermarket as pm

    s = pm.Scenario.with_battery()
    prices = [20.0, 45.0, 20.0, 45.0]
    got = pa.arbitrage_value(prices, s.storage[0], scenario=s)
    want = pa.arbitrage_value(prices, s.storage[0].replace(terminal_value=30.0))
    assert got.value == want.value and s.storage_reference_prices == [30.0]
    with pytest.raises(ValueError, match="scenario="):
        pa.arbitrage_value(prices, s.storage[0])
