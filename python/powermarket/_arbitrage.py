"""The perfect-foresight arbitrage value of one storage unit (a linear program
solved by HiGHS through SciPy). Exported as :func:`powermarket.analysis.arbitrage_value`;
definition in ``docs/semantics.md`` (section 10, "Analysis: arbitrage_value")."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Arbitrage", "arbitrage_value"]

# The storage fields read, in the order they are checked.
_FIELDS = (
    "power",
    "energy",
    "efficiency_charge",
    "efficiency_discharge",
    "soc_initial",
    "soc_min",
    "soc_max",
    "cost",
    "terminal_value",
)
# Relative agreement required between HiGHS's optimum and the objective
# recomputed from the returned trajectory (a safety net, not a tolerance the
# result is known to need: both agree to rounding on a basic solution).
_AGREEMENT = 1e-6
# HiGHS's feasibility tolerances (in units of E and of the price scale; its
# defaults are 1e-7).
_HIGHS_OPTIONS = {"primal_feasibility_tolerance": 1e-9, "dual_feasibility_tolerance": 1e-9}


@dataclass(frozen=True)
class Arbitrage:
    """The optimum of :func:`arbitrage_value`.

    - ``value``: the optimal objective, €;
    - ``charge``: ``c_t``, (T,) float64, MW (= MWh in the hour);
    - ``discharge``: ``d_t``, (T,) float64, MW;
    - ``soc``: ``soc_t`` for ``t = 0 … T``, (T+1,) float64, MWh (``soc[0]`` is
      ``soc_initial * energy``).
    """

    value: float
    charge: np.ndarray
    discharge: np.ndarray
    soc: np.ndarray


def _get(storage: Any, name: str) -> Any:
    if isinstance(storage, Mapping):
        if name not in storage:
            raise TypeError(f"storage has no key {name!r} (a storage needs {', '.join(_FIELDS)})")
        return storage[name]
    if not hasattr(storage, name):
        raise TypeError(
            f"storage has no attribute {name!r} (a storage needs {', '.join(_FIELDS)}); "
            f"got {type(storage).__name__}"
        )
    return getattr(storage, name)


def _number(name: str, value: Any) -> float:
    """``value`` as a finite float, or a TypeError/ValueError naming ``storage.<name>``."""
    if isinstance(value, (bool, np.bool_, str, bytes)) or value is None:
        raise TypeError(f"storage.{name} must be a real number, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"storage.{name} must be a real number, got {value!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"storage.{name} must be finite, got {x}")
    return x


def _read_storage(storage: Any, mean_cost: float | None = None) -> dict[str, float]:
    s: dict[str, float] = {}
    for name in _FIELDS[:-1]:
        s[name] = _number(name, _get(storage, name))
    terminal = _get(storage, "terminal_value")
    if terminal is None:
        # reference_price is read only here; a storage without it counts as None.
        if isinstance(storage, Mapping):
            reference = storage.get("reference_price")
        else:
            reference = getattr(storage, "reference_price", None)
        if reference is None:
            reference = mean_cost
        if reference is None:
            raise ValueError(
                "storage.terminal_value is None and storage.reference_price is None: "
                "set storage.terminal_value (€/MWh of the energy left at the end), or pass "
                "scenario= (its mean generator cost is the default reference price)"
            )
        s["terminal_value"] = _number("reference_price", reference)
    else:
        s["terminal_value"] = _number("terminal_value", terminal)

    if s["power"] < 0:
        raise ValueError(f"storage.power must be >= 0, got {s['power']}")
    if s["energy"] <= 0:
        raise ValueError(f"storage.energy must be > 0, got {s['energy']}")
    for name in ("efficiency_charge", "efficiency_discharge"):
        if not 0.0 < s[name] <= 1.0:
            raise ValueError(f"storage.{name} must be in (0, 1], got {s[name]}")
    lo, init, hi = s["soc_min"], s["soc_initial"], s["soc_max"]
    if not 0.0 <= lo <= init <= hi <= 1.0:
        raise ValueError(
            "storage needs 0 <= soc_min <= soc_initial <= soc_max <= 1, got "
            f"soc_min={lo}, soc_initial={init}, soc_max={hi}"
        )
    if s["cost"] < 0:
        raise ValueError(f"storage.cost must be >= 0, got {s['cost']}")
    return s


def _read_prices(prices: npt.ArrayLike) -> np.ndarray:
    try:
        p = np.asarray(prices, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"prices must be a 1-D array of finite numbers: {e}") from None
    if p.ndim != 1:
        raise ValueError(f"prices must be 1-D (one price per hour), got shape {p.shape}")
    if p.size == 0:
        raise ValueError("prices must not be empty, got shape (0,)")
    if not np.all(np.isfinite(p)):
        bad = int(np.flatnonzero(~np.isfinite(p))[0])
        raise ValueError(f"prices must be finite, got prices[{bad}] = {p[bad]}")
    return p


def _objective(
    p: np.ndarray, c: np.ndarray, d: np.ndarray, soc: np.ndarray, cost: float, terminal: float
) -> float:
    return float(np.dot(p, d - c) - cost * (np.sum(d) + np.sum(c)) + terminal * (soc[-1] - soc[0]))


def _trajectory(
    c: np.ndarray,
    d: np.ndarray,
    soc0: float,
    lo: float,
    hi: float,
    eta_c: float,
    eta_d: float,
) -> np.ndarray:
    """The SoC recursion from ``soc0``. Where a step would leave ``[lo, hi]``
    (HiGHS's solution is feasible within its tolerance only), that hour's
    discharge (below ``lo``) or charge (above ``hi``) is reduced in place until
    the SoC is on the bound; the flows stay in ``[0, power]``."""
    soc = np.empty(c.size + 1)
    soc[0] = soc0
    soc[1:] = soc0 + np.cumsum(eta_c * c - d / eta_d)
    if np.all(soc[1:] >= lo) and np.all(soc[1:] <= hi):
        return soc
    level = soc0
    for t in range(c.size):
        after = level + eta_c * c[t] - d[t] / eta_d
        if after < lo:
            d[t] = max(0.0, min(d[t], eta_d * (level + eta_c * c[t] - lo)))
        elif after > hi:
            c[t] = max(0.0, min(c[t], (hi - level + d[t] / eta_d) / eta_c))
        level = level + eta_c * c[t] - d[t] / eta_d
        soc[t + 1] = level
    return soc


def arbitrage_value(prices: npt.ArrayLike, storage: Any, *, scenario: Any = None) -> Arbitrage:
    """The price-taker, perfect-foresight optimum of one storage unit over
    ``prices`` (€/MWh, one per hour, T hours).

    ``storage`` is any object with the attributes (or a ``dict`` with the keys)
    ``power`` (MW, charge and discharge), ``energy`` (``E``, MWh),
    ``efficiency_charge`` ``η_c`` and ``efficiency_discharge`` ``η_d`` (each in
    (0, 1]), ``soc_initial``, ``soc_min``, ``soc_max`` (shares of ``E``),
    ``cost`` (€/MWh of throughput, charged and discharged) and
    ``terminal_value`` (€/MWh; None: ``storage.reference_price``), e.g. a
    ``powermarket.Storage``. With ``scenario`` (a ``powermarket.Scenario``), a
    reference price of None is its mean generator cost, as in the env.

    The linear program, with hours ``t = 0 … T-1`` of one hour each::

        maximise    sum_t p_t (d_t - c_t) - cost * sum_t (d_t + c_t)
                    + terminal_value * (soc_T - soc_0)
        over        c_t, d_t in [0, power]                (MW = MWh in the hour)
                    soc_t, t = 0 … T                      (MWh)
        subject to  soc_0 = soc_initial * E
                    soc_{t+1} = soc_t + η_c c_t - d_t / η_d
                    soc_min * E <= soc_t <= soc_max * E   (t = 1 … T)

    Charging and discharging in the same hour is allowed (as in the env): with
    a negative price it can pay to waste energy that way, and the LP does.
    Idling is feasible and worth 0, so the value is >= 0.

    Solved by HiGHS (``scipy.optimize.linprog(method="highs")``, which needs
    the ``analysis`` extra: ``pip install "powermarket[analysis]"``). The
    returned ``soc`` is recomputed from ``charge`` and ``discharge`` by the
    recursion above (where HiGHS's solution, feasible within its tolerance of
    1e-9 E, would leave the SoC range, that hour's flow is cut back to the
    bound), and ``value`` is the objective evaluated on the returned arrays.

    Raises ``ValueError`` for prices that are not 1-D, empty or not finite and
    for storage fields out of range (``power >= 0``, ``energy > 0``,
    efficiencies in (0, 1], ``0 <= soc_min <= soc_initial <= soc_max <= 1``,
    ``cost >= 0``, everything finite; ``terminal_value`` and
    ``reference_price`` both None), ``TypeError`` for a missing or non-numeric
    field, ``ImportError`` without SciPy, and ``RuntimeError`` with HiGHS's
    message if it does not report an optimum.
    """
    p = _read_prices(prices)
    mean_cost = None if scenario is None else float(np.mean(scenario.costs))
    s = _read_storage(storage, mean_cost)
    try:
        from scipy import sparse
        from scipy.optimize import linprog
    except ImportError as e:
        raise ImportError(
            "powermarket.analysis.arbitrage_value needs SciPy (HiGHS): "
            'pip install "powermarket[analysis]"'
        ) from e

    T = p.size
    E = s["energy"]
    eta_c, eta_d = s["efficiency_charge"], s["efficiency_discharge"]
    cost, terminal = s["cost"], s["terminal_value"]
    soc0 = s["soc_initial"] * E

    # Solved in units of E (variables c/E, d/E, soc/E) and of a price scale, so
    # HiGHS's absolute tolerances are relative to the unit's size and prices.
    scale = max(float(np.max(np.abs(p))), cost, abs(terminal), 1.0)
    # Variables x = [c_0 … c_{T-1}, d_0 … d_{T-1}, soc_1 … soc_T] / E.
    # linprog minimises: the negated objective (the constant -terminal * soc_0 dropped).
    obj = np.concatenate(
        [
            (p + cost) / scale,
            (-p + cost) / scale,
            np.zeros(T),
        ]
    )
    obj[-1] = -terminal / scale
    # Row t: soc_{t+1} - soc_t - η_c c_t + d_t / η_d = 0 (= soc_0 / E for t = 0).
    eye = sparse.identity(T, format="csr")
    lag = sparse.eye(T, k=-1, format="csr")
    a_eq = sparse.hstack([-eta_c * eye, (1.0 / eta_d) * eye, eye - lag], format="csr")
    b_eq = np.zeros(T)
    b_eq[0] = s["soc_initial"]
    rate = s["power"] / E
    bounds = np.empty((3 * T, 2))
    bounds[: 2 * T] = (0.0, rate)
    bounds[2 * T :] = (s["soc_min"], s["soc_max"])
    res = linprog(obj, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs", options=_HIGHS_OPTIONS)
    if res.status != 0 or res.x is None:
        raise RuntimeError(
            f"arbitrage_value: HiGHS found no optimum (status {res.status}): {res.message}"
        )

    x = np.asarray(res.x, dtype=np.float64)
    c = np.clip(x[:T] * E, 0.0, s["power"])
    d = np.clip(x[T : 2 * T] * E, 0.0, s["power"])
    soc = _trajectory(c, d, soc0, s["soc_min"] * E, s["soc_max"] * E, eta_c, eta_d)
    value = _objective(p, c, d, soc, cost, terminal)
    optimum = -float(res.fun) * scale * E - terminal * soc0
    if abs(value - optimum) > _AGREEMENT * max(abs(optimum), scale * E):
        raise RuntimeError(
            f"arbitrage_value: the returned trajectory is worth {value} but HiGHS "
            f"reports {optimum} ({res.message})"
        )
    for a in (c, d, soc):
        a.flags.writeable = False
    return Arbitrage(value=value, charge=c, discharge=d, soc=soc)
