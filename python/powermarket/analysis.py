"""Scoring results: is a learned bidding profile competitive, how much market
power does it exert, and how far is it from an equilibrium?

- :func:`competitive`: the competitive benchmark (everyone offers full capacity at cost);
- :func:`market_power`: RSI, pivotal suppliers, HHI, Lerner index and markups of an episode;
- :func:`exploitability`: each agent's regret against a grid of one-hour deviations
  (others held as played) and NashConv, their sum; :func:`exploitability_of_play`
  scores recorded actions directly (e.g. from ``VecMarketEnv``);
- :func:`pure_nash`: every pure Nash equilibrium of a one-hour uniform-price auction;
- :func:`cournot`: the Cournot equilibrium with linear inverse demand.

The hot loops run in Rust with the GIL released. Exact definitions, units and
edge cases: ``docs/semantics.md`` (section 10).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from powermarket import _core
from powermarket._core import MarketEnv, Scenario

__all__ = [
    "EXPLOITABILITY_MAX_WORK",
    "PURE_NASH_MAX_PROFILES",
    "competitive",
    "cournot",
    "default_grid",
    "exploitability",
    "exploitability_of_play",
    "market_power",
    "pure_nash",
]

#: Largest number of price profiles (``len(prices_grid) ** N``) :func:`pure_nash` enumerates.
PURE_NASH_MAX_PROFILES: int = _core.PURE_NASH_MAX_PROFILES
#: Largest work :func:`exploitability` takes on: ``G x E x T x N`` clearings of
#: ``N`` offers (``G`` grid pairs, ``E`` episodes, ``T`` hours, ``N`` agents), 2**35.
EXPLOITABILITY_MAX_WORK: int = _core.EXPLOITABILITY_MAX_WORK

Policy = Callable[[np.ndarray], npt.ArrayLike]
Grid = tuple[npt.ArrayLike, npt.ArrayLike]

_RECORD_KEYS = ("bids", "cleared", "prices", "demand")
# The action box of MarketEnv, from the core.
_LOW = np.array(_core.ACTION_LOW)
_HIGH = np.array(_core.ACTION_HIGH)


def default_grid(withheld: int = 21, price_action: int = 41) -> tuple[np.ndarray, np.ndarray]:
    """A deviation grid: ``withheld`` shares evenly spaced in [0, 1], and
    ``price_action`` values whose bids ``c_i + tanh(a1) * max_bid_delta`` are
    evenly spaced from ``c_i - max_bid_delta`` to ``c_i + max_bid_delta``
    (``a1 = arctanh(linspace(-1, 1, k))``, the ends clipped to ±10).
    The default, 21 x 41, steps by 5 % of capacity and 2.5 €/MWh at
    ``max_bid_delta = 50``."""
    if withheld < 1 or price_action < 1:
        raise ValueError(
            f"default_grid needs at least one value per axis, got {withheld} x {price_action}"
        )
    w = np.linspace(0.0, 1.0, withheld)
    with np.errstate(divide="ignore"):
        a = np.clip(np.arctanh(np.linspace(-1.0, 1.0, price_action)), _LOW[1], _HIGH[1])
    if price_action == 1:
        a = np.zeros(1)
    return w, a


def competitive(
    scenario: Scenario, demand: npt.ArrayLike | None = None, *, tie_rule: str = "pro_rata"
) -> dict[str, np.ndarray]:
    """The competitive outcome: every generator offers its full available
    capacity ``K_i LF[t, i]`` at its marginal cost, each hour cleared on
    ``demand`` (MW, one value per hour) or on the scenario's base
    (noise-free) profile. With ramp limits the offer is kept in the ramp
    window around the previous hour's cleared quantity, as in the env.

    Returns ``price`` (T,) €/MWh, ``cleared`` (T, N) MW and ``profit``
    (T, N) € per hour, ``(paid - cost) * cleared`` minus the ramp cost, where
    ``paid`` is the price paid per MWh under the scenario's mechanism: the
    clearing price under uniform pricing; under pay-as-bid the offer's own
    price, its cost clipped to the cap and floor (so the profit is 0 unless
    the cap or floor moves the offer).
    """
    return _core.competitive(scenario, demand, tie_rule=tie_rule)


def market_power(scenario: Scenario, record: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Market-power metrics of an episode record (``MarketEnv.episode_record()``:
    it needs ``bids``, ``cleared`` (T, N), or (T, N, K) with K > 1 offer
    blocks, ``prices`` and ``demand`` (T,)). With blocks, a generator's
    ``cleared`` is the sum of its blocks, and ``markup`` is per block.

    Returns, per hour (T,) or per hour and generator (T, N):

    - ``rsi``: residual supply index ``(sum_j A_tj - A_ti) / D_t`` with available
      capacity ``A_ti = K_i LF[t, i]`` (the record's ``availability``, else the
      scenario's load factors) (``inf`` if ``D_t = 0``);
    - ``pivotal`` (bool): ``rsi < 1``, demand cannot be met without ``i``;
    - ``hhi``: ``sum_i (100 x_i / sum_j x_j) ** 2`` of cleared quantities, in
      [0, 10000] (NaN when nothing cleared);
    - ``lerner``: ``(P_t - c_i) / P_t`` where ``i`` is dispatched and ``P_t > 0``, else NaN;
    - ``markup``: bid minus cost, €/MWh, (T, N) or (T, N, K).
    """
    missing = [k for k in _RECORD_KEYS if k not in record]
    if missing:
        raise ValueError(
            f"record is missing {', '.join(missing)}: pass MarketEnv.episode_record() "
            f"(keys {', '.join(_RECORD_KEYS)} are used)"
        )
    bids, cleared = record["bids"], record["cleared"]
    if np.ndim(bids) == 3 or np.ndim(cleared) == 3:
        return _market_power_blocks(scenario, record)
    return _core.market_power(
        scenario,
        bids,
        cleared,
        record["prices"],
        record["demand"],
        record.get("availability"),
    )


def _market_power_blocks(scenario: Scenario, record: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """:func:`market_power` of a record with (T, N, K) offer blocks: the metrics
    of the per-generator dispatch (the sum of the blocks), markups per block."""
    if scenario is None:
        scenario = Scenario.default()
    elif isinstance(scenario, dict):
        scenario = Scenario.from_dict(scenario)
    elif not isinstance(scenario, Scenario):
        raise ValueError(
            "scenario must be a powermarket.Scenario, a dict or None, "
            f"got {type(scenario).__name__}"
        )
    t = np.shape(record["prices"])[0] if np.ndim(record["prices"]) == 1 else None
    want = (t, scenario.n, scenario.segments)
    arrays = {}
    for key in ("bids", "cleared"):
        try:
            a = np.asarray(record[key], dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{key} must be an array of real numbers") from None
        if a.shape != want or scenario.segments == 1:
            raise ValueError(
                f"{key} must have shape (T, N) or, with segments={scenario.segments} offer "
                f"blocks, (T, N, K) = {want}, got {a.shape}"
            )
        if not np.isfinite(a).all():
            k = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
            raise ValueError(f"{key}{list(k)} must be finite, got {a[k]}")
        arrays[key] = a
    bids, cleared = arrays["bids"], arrays["cleared"]
    if (cleared < 0).any():
        k = tuple(int(i) for i in np.argwhere(cleared < 0)[0])
        raise ValueError(f"cleared{list(k)} must be >= 0, got {cleared[k]}")
    out = _core.market_power(
        scenario,
        bids[:, :, 0],
        cleared.sum(axis=2),
        record["prices"],
        record["demand"],
        record.get("availability"),
    )
    out["markup"] = bids - scenario.costs[None, :, None]
    return out


def _env_actions(a: npt.ArrayLike) -> np.ndarray:
    """Actions exactly as ``MarketEnv.step`` takes them: float32 arrays as they
    are, anything else through float64 clipped to the box (NaN stays, and the
    env rejects it)."""
    if isinstance(a, np.ndarray) and a.dtype == np.float32:
        return np.ascontiguousarray(a)
    wide = np.asarray(a, dtype=np.float64)
    if wide.ndim == 2 and wide.shape[1] == 2:
        wide = np.where(np.isfinite(wide), np.clip(wide, _LOW, _HIGH), wide)
    return wide.astype(np.float32)


def exploitability(
    scenario: Scenario,
    policy: Policy,
    *,
    grid: Grid,
    seed: int | None = 0,
    episodes: int = 1,
    observer: str = "simple",
    tie_rule: str = "pro_rata",
) -> dict[str, Any]:
    """How much each agent could gain by deviating, hour by hour, on a grid.

    ``policy`` maps the (N, D) observations of one hour to (N, 2) actions of
    ``MarketEnv``. It plays ``episodes`` consecutive episodes of
    ``MarketEnv(scenario, observer=observer, seed=seed)`` (the seed is applied
    once, at construction; each episode starts with ``reset()``). Then, for
    every agent in every hour, every deviation ``(a0, a1)`` in
    ``grid = (withheld_values, price_action_values)`` is cleared with the
    others' actions as played and the hour's realised demand, and scored with
    the env reward of that hour.

    Returns a dict:

    - ``regret`` (N,): ``sum_t max(best deviation reward, played reward) -
      sum_t played reward``, mean over episodes (reward units, >= 0);
    - ``nash_conv``: ``sum(regret)``;
    - ``best_response`` (episodes, T, N, 2) float32: each agent's best action
      per hour (the played action when no deviation beats it strictly);
    - ``played_reward`` (N,): ``sum_t`` played reward, mean over episodes;
    - ``regret_eur_per_day``, ``nash_conv_eur_per_day``,
      ``played_reward_eur_per_day``: the same in € per day (reward divided by
      the env's reward scale, times 24 / T), and the factor
      ``eur_per_day_per_reward``;
    - ``regret_per_episode`` (episodes, N);
    - ``lower_bound``: False without ramps: hours are independent, so the
      regret is the exact best-response gain on the grid against the others'
      play. True when the scenario has ramp limits or ramp costs: the search
      is still per hour (static): each hour's deviation is kept in the ramp
      window around the agent's *played* previous dispatch and pays its ramp
      cost from there, and what it would change in later hours is ignored,
      so the regret is only a lower bound on what a deviating agent could
      gain over the episode (read it as a lower bound, not as exact).

    Availability always applies: a deviation offers at most ``K_i LF[t, i]``
    of the episode's realised load factors (``MarketEnv.availability``).
    """
    if not isinstance(episodes, int | np.integer) or episodes < 1:
        raise ValueError(f"episodes must be an int >= 1, got {episodes!r}")
    withheld, price_action = _grid_arg(grid)
    env = MarketEnv(scenario, observer=observer, seed=seed, tie_rule=tie_rule)
    n, t = env.num_agents, env.horizon
    if env.scenario.segments != 1:
        raise ValueError(
            "scenario: exploitability searches one [withheld, price action] per agent and "
            f"hour; it supports segments=1, got segments={env.scenario.segments}"
        )
    actions = np.empty((episodes, t, n, 2), dtype=np.float32)
    demand = np.empty((episodes, t), dtype=np.float64)
    availability = np.empty((episodes, t, n), dtype=np.float64)
    for e in range(episodes):
        obs, _ = env.reset()
        for h in range(t):
            a = _env_actions(policy(obs))
            obs, *_ = env.step(a)
            actions[e, h] = a
        demand[e] = env.demand
        availability[e] = env.availability
    return exploitability_of_play(
        env.scenario,
        actions,
        demand,
        grid=(withheld, price_action),
        tie_rule=tie_rule,
        availability=availability,
    )


def _grid_arg(grid: Grid) -> tuple[npt.ArrayLike, npt.ArrayLike]:
    try:
        withheld, price_action = grid
    except (TypeError, ValueError):
        raise ValueError(
            "grid must be a pair (withheld_values, price_action_values) of 1-D arrays, "
            f"got {type(grid).__name__}"
        ) from None
    return withheld, price_action


def exploitability_of_play(
    scenario: Scenario,
    actions: npt.ArrayLike,
    demand: npt.ArrayLike,
    *,
    grid: Grid,
    tie_rule: str = "pro_rata",
    availability: npt.ArrayLike | None = None,
) -> dict[str, Any]:
    """:func:`exploitability` of recorded play: ``actions`` (E, T, N, 2) as the
    env received them (non-float32 input is clipped to the box and rounded to
    float32, as ``MarketEnv.step`` does), the realised ``demand`` (E, T) MW
    of each episode (``MarketEnv.demand`` after the episode, or
    ``VecMarketEnv.episode_demand(i)``) and, when the scenario has
    ``availability_noise``, the realised load factors ``availability``
    (E, T, N) (``MarketEnv.availability``, ``VecMarketEnv.episode_availability(i)``;
    None: the scenario's). With ramps the played path (each hour's previous
    dispatch) is replayed from the actions. Same result dict."""
    withheld, price_action = _grid_arg(grid)
    out = _core.exploitability_of_play(
        scenario,
        actions,
        demand,
        withheld,
        price_action,
        tie_rule=tie_rule,
        availability=availability,
    )
    out["lower_bound"] = scenario.ramp_limits is not None or scenario.ramp_costs is not None
    return out


def pure_nash(
    prices_grid: npt.ArrayLike,
    capacities: npt.ArrayLike,
    costs: npt.ArrayLike,
    demand: float,
    *,
    price_cap: float | None = None,
) -> dict[str, Any]:
    """Every pure-strategy Nash equilibrium of a one-hour uniform-price auction.

    Each generator offers its whole capacity (MW) at one price from
    ``prices_grid`` (strictly increasing, €/MWh); demand is inelastic
    (``demand`` MW). Offers clear in merit order; ties at the price share pro
    rata; in a shortage everything clears at ``price_cap`` (or the highest
    offer without a cap; every grid price must be <= the cap). Profit is
    ``(P - c_i) x_i`` €. A profile is an equilibrium when no generator gains
    more than ``1e-9 * max(1, |profit|)`` by moving to another grid price.

    Enumerates all ``len(prices_grid) ** N`` profiles; refuses more than
    :data:`PURE_NASH_MAX_PROFILES` (2**20). Returns ``bids`` (E, N),
    ``price`` (E,), ``cleared`` (E, N), ``profit`` (E, N) of the E equilibria
    (generator 0's price varying fastest) and ``profiles`` (the count enumerated).
    """
    return _core.pure_nash(prices_grid, capacities, costs, demand, price_cap=price_cap)


def cournot(
    a: float, b: float, costs: npt.ArrayLike, capacities: npt.ArrayLike
) -> tuple[float, np.ndarray]:
    """The Cournot–Nash equilibrium with inverse demand ``P = a - b Q``
    (``a`` €/MWh, ``b`` €/MWh per MW), constant marginal costs and capacities
    (MW; ``np.inf`` for none).

    ``q_i = clip((P - c_i) / b, 0, K_i)`` where ``P`` solves
    ``P + b * sum_i q_i(P) = a`` (solved exactly: the left side is piecewise
    linear and increasing). Returns ``(price, quantities)``.
    """
    return _core.cournot(a, b, costs, capacities)
