"""Scoring results: is a learned bidding profile competitive, how much market
power does it exert, and how far is it from an equilibrium?

- :func:`competitive`: the competitive benchmark (everyone offers full capacity at cost);
- :func:`market_power`: RSI, pivotal suppliers, HHI, Lerner index and markups of an episode;
- :func:`exploitability`: each agent's regret against a grid of one-hour deviations
  (others held as played) and NashConv, their sum; :func:`exploitability_of_play`
  scores recorded actions directly (e.g. from ``VecMarketEnv``);
- :func:`equilibrium`: an approximate pure Nash equilibrium of the per-hour bidding
  game on the same grid, by best-response dynamics (a ground truth for learned bids);
- :func:`pure_nash`: every pure Nash equilibrium of a one-hour uniform-price auction;
- :func:`cournot`: the Cournot equilibrium with linear inverse demand;
- :func:`arbitrage_value`: the perfect-foresight arbitrage optimum of one storage
  unit over a price series (an LP solved by HiGHS; needs SciPy, the ``analysis`` extra).

On networked scenarios (``num_nodes > 1`` or ``network != "copper"``)
:func:`competitive`, :func:`exploitability` and :func:`equilibrium` clear every
hour on the network as the env does (node prices), and :func:`market_power`
adds per-node indices (reachable supply, node RSI, pivotal nodes).

The hot loops run in Rust with the GIL released. Exact definitions, units and
edge cases: ``docs/semantics.md`` (section 10).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from powermarket import _core
from powermarket._arbitrage import Arbitrage, arbitrage_value
from powermarket._core import MarketEnv, Scenario

__all__ = [
    "EXPLOITABILITY_MAX_WORK",
    "EXPLOITABILITY_SOC_GRID",
    "EQUILIBRIUM_MAX_CLEARINGS",
    "PURE_NASH_MAX_PROFILES",
    "Arbitrage",
    "arbitrage_value",
    "competitive",
    "cournot",
    "default_grid",
    "equilibrium",
    "exploitability",
    "exploitability_of_play",
    "market_power",
    "pure_nash",
]

#: Largest number of price profiles (``len(prices_grid) ** N``) :func:`pure_nash` enumerates.
PURE_NASH_MAX_PROFILES: int = _core.PURE_NASH_MAX_PROFILES
#: Largest work :func:`exploitability` takes on: ``G x E x T x N`` clearings of
#: ``A`` offers (``G`` grid pairs, ``E`` episodes, ``T`` hours, ``N`` generators,
#: ``A`` agents), 2**35; the storage units' search is bounded by the same number.
EXPLOITABILITY_MAX_WORK: int = _core.EXPLOITABILITY_MAX_WORK
#: Default number of points of a storage unit's state-of-charge grid in :func:`exploitability`.
EXPLOITABILITY_SOC_GRID: int = _core.EXPLOITABILITY_SOC_GRID
#: Work bound of :func:`equilibrium`, in clearings (2**32).
EQUILIBRIUM_MAX_CLEARINGS: int = _core.EQUILIBRIUM_MAX_CLEARINGS

Policy = Callable[[np.ndarray], npt.ArrayLike]
Grid = tuple[npt.ArrayLike, npt.ArrayLike]

_RECORD_KEYS = ("bids", "cleared", "prices", "demand")
# The action boxes of MarketEnv's generators and storage units, from the core
# (the default price action's, the widest); the env clips a linear price
# action further, to [-1, 1].
_LOW = np.array(_core.ACTION_LOW)
_HIGH = np.array(_core.ACTION_HIGH)
_STO_LOW = np.array(_core.STORAGE_ACTION_LOW)
_STO_HIGH = np.array(_core.STORAGE_ACTION_HIGH)


def _price_action_of(scenario: Any) -> str:
    """The price action of a Scenario or a scenario dict (``"tanh"`` for None)."""
    if isinstance(scenario, Scenario):
        return scenario.price_action
    if isinstance(scenario, dict):
        return str(scenario.get("price_action", "tanh"))
    return "tanh"


def default_grid(
    withheld: int = 21, price_action: int = 41, *, scenario: Scenario | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A deviation grid: ``withheld`` shares evenly spaced in [0, 1], and
    ``price_action`` values whose bids are evenly spaced from
    ``c_i - max_bid_delta`` to ``c_i + max_bid_delta``. Under the default
    price action (``"tanh"``, bid ``c_i + tanh(a1) * max_bid_delta``) these are
    ``a1 = arctanh(linspace(-1, 1, k))``, the ends clipped to ±10; for a
    ``scenario`` with ``price_action="linear"`` they are ``linspace(-1, 1, k)``.
    The default, 21 x 41, steps by 5 % of capacity and 2.5 €/MWh at
    ``max_bid_delta = 50``."""
    if withheld < 1 or price_action < 1:
        raise ValueError(
            f"default_grid needs at least one value per axis, got {withheld} x {price_action}"
        )
    kind = _price_action_of(scenario)
    _, high = _core.action_box(kind)
    w = np.linspace(0.0, 1.0, withheld)
    shares = np.linspace(-1.0, 1.0, price_action)
    if kind == "linear":
        a = shares
    else:
        with np.errstate(divide="ignore"):
            a = np.clip(np.arctanh(shares), -high[1], high[1])
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

    **Networked scenarios** (``num_nodes > 1`` or ``network != "copper"``):
    each hour is cleared on the network exactly as the env clears it
    (``demand[t]`` split over the nodes by the scenario's shares of hour
    ``t mod T``), each offer paid its node's price, and the dict gains
    ``node_prices`` (T, Z) €/MWh, ``flows`` (T, L) MW and ``congestion_rent``
    (T,) €/h; ``price`` is then the demand-weighted mean of the node prices,
    as the env's ``info["price"]``.
    """
    return _core.competitive(scenario, demand, tie_rule=tie_rule)


def market_power(scenario: Scenario, record: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Market-power metrics of an episode record (``MarketEnv.episode_record()``:
    it needs ``bids``, ``cleared`` (T, N), or (T, N, K) with K > 1 offer
    blocks, ``prices`` and ``demand`` (T,); with storage units also ``soc``
    (T + 1, S) and ``discharge`` (T, S)). With blocks, a generator's
    ``cleared`` is the sum of its blocks, and ``markup`` is per block.

    The suppliers are the N generators and, in a scenario with storage, the
    S storage units after them (A = N + S): their discharge counts as supply.

    Returns, per hour (T,), per hour and supplier (T, N) or (T, A), or per
    hour and generator (T, N):

    - ``rsi`` (T, A): residual supply index ``(sum_j A_tj - A_ti) / D_t`` with
      available capacity ``A_ti = K_i LF[t, i]`` of a generator (the record's
      ``availability``, else the scenario's load factors) and
      ``min(power, max(0, (soc[t] - soc_min * energy) * efficiency_discharge))``
      of a storage unit, what its state of charge at the start of hour ``t``
      lets it sell (``inf`` if ``D_t = 0``);
    - ``pivotal`` (T, A) bool: ``rsi < 1``, demand cannot be met without ``i``;
    - ``hhi`` (T,): ``sum_i (100 x_i / sum_j x_j) ** 2`` of the quantities sold
      (the generators' cleared MW and the storage units' discharge), in
      [0, 10000] (NaN when nothing cleared);
    - ``lerner`` (T, N): ``(P_t - c_i) / P_t`` where generator ``i`` is
      dispatched and ``P_t > 0``, else NaN;
    - ``markup``: a generator's bid minus its cost, €/MWh, (T, N) or (T, N, K).

    **Networked scenarios** also need the record's ``node_prices`` (T, Z), and
    add per-node metrics (keys present only then; definitions in
    ``docs/semantics.md``, section 10). With node demand
    ``D_tz = demand[t] * demand_share[t, z]`` and the reachable supply
    ``F_tz``, the maximum flow of available capacity (every supplier's
    ``A_tj``) into node ``z`` within the line capacities (the transport
    limits; all supply on a copper plate of several nodes), and ``F_tz^-i``
    the same without supplier ``i``:

    - ``node_demand`` (T, Z) MW and ``reachable_supply`` (T, Z) MW (``F_tz``);
    - ``local_rsi`` (T, A): ``F_tz^-i / D_tz`` at supplier ``i``'s own node
      ``z`` (``inf`` when ``D_tz = 0``); ``local_pivotal`` (T, A): ``< 1``;
    - ``node_rsi`` (T, Z): ``min_i F_tz^-i / D_tz`` over every supplier, at
      the node or behind a line; ``node_pivotal`` (T, Z): ``< 1``, the node's
      demand cannot be met without some one supplier;
    - ``node_lerner`` (T, N): ``(p_tz - c_i) / p_tz`` at the generator's node
      price where it is dispatched and ``p_tz > 0``, else NaN.

    The system-wide keys stay as above (``prices`` is the record's scalar,
    demand-weighted mean price).
    """
    missing = [k for k in _RECORD_KEYS if k not in record]
    if missing:
        raise ValueError(
            f"record is missing {', '.join(missing)}: pass MarketEnv.episode_record() "
            f"(keys {', '.join(_RECORD_KEYS)} are used)"
        )
    scenario = _scenario_obj(scenario)
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
        **_storage_supply(scenario, record),
        **_node_prices(scenario, record),
    )


def _networked(scenario: Scenario) -> bool:
    return scenario.num_nodes > 1 or scenario.network != "copper"


def _node_prices(scenario: Scenario, record: Mapping[str, Any]) -> dict[str, Any]:
    """The record's ``node_prices`` for a networked scenario (else nothing)."""
    if not _networked(scenario):
        return {}
    if "node_prices" not in record:
        raise ValueError(
            "record is missing node_prices: a networked scenario needs the node prices "
            f"(T, Z) = (T, {scenario.num_nodes}) of the episode (MarketEnv.episode_record())"
        )
    return {"node_prices": record["node_prices"]}


def _scenario_obj(scenario: Any) -> Scenario:
    if scenario is None:
        return Scenario.default()
    if isinstance(scenario, dict):
        return Scenario.from_dict(scenario)
    if not isinstance(scenario, Scenario):
        raise ValueError(
            "scenario must be a powermarket.Scenario, a dict or None, "
            f"got {type(scenario).__name__}"
        )
    return scenario


def _storage_supply(scenario: Scenario, record: Mapping[str, Any]) -> dict[str, Any]:
    """The record's ``soc`` at the start of each hour (its first T rows) and
    ``discharge``, for a scenario with storage units (else nothing)."""
    s = len(scenario.storage)
    if s == 0:
        return {}
    missing = [k for k in ("soc", "discharge") if k not in record]
    if missing:
        raise ValueError(
            f"record is missing {', '.join(missing)}: a scenario with storage units needs "
            "the record's soc (T + 1, S) and discharge (T, S) (MarketEnv.episode_record())"
        )
    t = int(np.shape(record["prices"])[0]) if np.ndim(record["prices"]) == 1 else -1
    try:
        soc = np.asarray(record["soc"], dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError("soc must be an array of real numbers") from None
    if soc.shape != (t + 1, s):
        raise ValueError(
            f"soc must have shape (T + 1, S) = ({t + 1}, {s}) (the state of charge at the "
            f"start of each hour and after the last), got {soc.shape}"
        )
    return {"soc": soc[:t], "discharge": record["discharge"]}


def _market_power_blocks(scenario: Scenario, record: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """:func:`market_power` of a record with (T, N, K) offer blocks: the metrics
    of the per-generator dispatch (the sum of the blocks), markups per block."""
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
        **_storage_supply(scenario, record),
        **_node_prices(scenario, record),
    )
    out["markup"] = bids - scenario.costs[None, :, None]
    return out


def _env_actions(a: npt.ArrayLike, n: int) -> np.ndarray:
    """Actions of a market of ``n`` generators as ``MarketEnv.step`` takes
    them: float32 arrays as they are, anything else through float64 clipped
    to each agent's box (the generators' rows, then the storage units'; NaN
    stays, and the env rejects it). The env's offers are the same."""
    if isinstance(a, np.ndarray) and a.dtype == np.float32:
        return np.ascontiguousarray(a)
    wide = np.asarray(a, dtype=np.float64)
    if wide.ndim == 2 and wide.shape[1] == 2:
        low = np.where(np.arange(wide.shape[0])[:, None] < n, _LOW, _STO_LOW)
        high = np.where(np.arange(wide.shape[0])[:, None] < n, _HIGH, _STO_HIGH)
        wide = np.where(np.isfinite(wide), np.clip(wide, low, high), wide)
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
    soc_grid: int = EXPLOITABILITY_SOC_GRID,
) -> dict[str, Any]:
    """How much each agent could gain by deviating, hour by hour, on a grid.

    ``policy`` maps the (A, D) observations of one hour to (A, 2) actions of
    ``MarketEnv`` (A = N generators, then S storage units). It plays
    ``episodes`` consecutive episodes of
    ``MarketEnv(scenario, observer=observer, seed=seed)`` (the seed is applied
    once, at construction; each episode starts with ``reset()``). Then, for
    every agent in every hour, every deviation ``(a0, a1)`` in
    ``grid = (withheld_values, price_action_values)`` is cleared with the
    others' actions as played and the hour's realised demand, and scored with
    the env reward of that hour.

    A storage unit's deviation is a whole-episode path instead: the best path
    of a dynamic program over ``soc_grid`` evenly spaced states of charge
    (plus the initial one), each hour's move valued by re-clearing that hour
    with the unit's block (priced at the most aggressive price of its box or
    at the grid's price actions, counted only when the whole block clears)
    and the terminal value at the end; for every deviation the other storage
    units' blocks are held at their played, SoC-cut quantities and prices.
    Exact definition: ``docs/semantics.md`` (section 10, "With storage").

    Returns a dict:

    - ``regret`` (A,): ``sum_t max(best deviation reward, played reward) -
      sum_t played reward``, mean over episodes (reward units, >= 0); for a
      storage unit ``max(best path value, played reward) - played reward``;
    - ``nash_conv``: ``sum(regret)``;
    - ``best_response`` (episodes, T, A, 2) float32: each agent's best action
      per hour (the played action when no deviation beats it strictly); a
      storage unit's best path, or its played actions;
    - ``played_reward`` (A,): ``sum_t`` played reward, mean over episodes;
    - ``regret_eur_per_day``, ``nash_conv_eur_per_day``,
      ``played_reward_eur_per_day``: the same in € per day (reward divided by
      the env's reward scale, times 24 / T), and the factor
      ``eur_per_day_per_reward``;
    - ``regret_per_episode`` (episodes, A);
    - ``lower_bound``: True with storage units (see the docs); else False
      without ramps: hours are independent, so the
      regret is the exact best-response gain on the grid against the others'
      play. True when the scenario has ramp limits or ramp costs: the search
      is still per hour (static): each hour's deviation is kept in the ramp
      window around the agent's *played* previous dispatch and pays its ramp
      cost from there, and what it would change in later hours is ignored,
      so the regret is only a lower bound on what a deviating agent could
      gain over the episode (read it as a lower bound, not as exact).

    Availability always applies: a deviation offers at most ``K_i LF[t, i]``
    of the episode's realised load factors (``MarketEnv.availability``).

    On a networked scenario every deviation (a generator's, and each move of
    a storage unit's path) is cleared on the network as the env clears the
    hour, and each offer is paid its node's price; the regrets mean the same.
    A network clearing costs more than a copper-plate one: the work bound
    counts it as ``A + (Z + L) ** 2`` offer evaluations (Z nodes, L lines).
    """
    if not isinstance(episodes, int | np.integer) or episodes < 1:
        raise ValueError(f"episodes must be an int >= 1, got {episodes!r}")
    withheld, price_action = _grid_arg(grid)
    env = MarketEnv(scenario, observer=observer, seed=seed, tie_rule=tie_rule)
    a, n, t = env.num_agents, env.scenario.n, env.horizon
    if env.scenario.segments != 1:
        raise ValueError(
            "scenario: exploitability searches one [withheld, price action] per agent and "
            f"hour; it supports segments=1, got segments={env.scenario.segments}"
        )
    actions = np.empty((episodes, t, a, 2), dtype=np.float32)
    demand = np.empty((episodes, t), dtype=np.float64)
    availability = np.empty((episodes, t, n), dtype=np.float64)
    for e in range(episodes):
        obs, _ = env.reset()
        for h in range(t):
            act = _env_actions(policy(obs), n)
            obs, *_ = env.step(act)
            actions[e, h] = act
        demand[e] = env.demand
        availability[e] = env.availability
    return exploitability_of_play(
        env.scenario,
        actions,
        demand,
        grid=(withheld, price_action),
        tie_rule=tie_rule,
        availability=availability,
        soc_grid=soc_grid,
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
    soc_grid: int = EXPLOITABILITY_SOC_GRID,
) -> dict[str, Any]:
    """:func:`exploitability` of recorded play: ``actions`` (E, T, A, 2) as the
    env received them (non-float32 input is clipped to the box and rounded to
    float32, as ``MarketEnv.step`` does), the realised ``demand`` (E, T) MW
    of each episode (``MarketEnv.demand`` after the episode, or
    ``VecMarketEnv.episode_demand(i)``) and, when the scenario has
    ``availability_noise``, the realised load factors ``availability``
    (E, T, N) (``MarketEnv.availability``, ``VecMarketEnv.episode_availability(i)``;
    None: the scenario's). With ramps the played path (each hour's previous
    dispatch) and, with storage, the played states of charge are replayed
    from the actions; ``soc_grid`` (an int >= 2) is the number of points of
    each storage unit's state-of-charge grid. Same result dict."""
    withheld, price_action = _grid_arg(grid)
    is_int = isinstance(soc_grid, int | np.integer) and not isinstance(soc_grid, bool)
    if not is_int or soc_grid < 2:
        raise ValueError(
            f"soc_grid must be an int >= 2 (points of the state-of-charge grid), got {soc_grid!r}"
        )
    out = _core.exploitability_of_play(
        scenario,
        actions,
        demand,
        withheld,
        price_action,
        tie_rule=tie_rule,
        availability=availability,
        soc_grid=int(soc_grid),
    )
    out["lower_bound"] = (
        scenario.ramp_limits is not None
        or scenario.ramp_costs is not None
        or len(scenario.storage) > 0
    )
    return out


def _count(value: Any, arg: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{arg} must be an int >= {low}, got {value!r}")
    return int(value)


def equilibrium(
    scenario: Scenario,
    *,
    grid: Grid | None = None,
    demand: npt.ArrayLike | None = None,
    tie_rule: str = "pro_rata",
    max_moves: int = 100,
    tol: float = 0.01,
    seed: int = 0,
    starts: int = 1,
) -> dict[str, Any]:
    """An approximate pure Nash equilibrium of the per-hour bidding game on a grid.

    The game: each agent picks one action ``(a0, a1)`` per hour from
    ``grid = (withheld_values, price_action_values)`` (default
    :func:`default_grid`, 21 x 41), the env's offer, clearing, settlement and
    reward apply, and demand is known: ``demand`` (T,) or (E, T) MW, default
    the scenario's base (noise-free) profile, with the scenario's load
    factors. Without ramps every (episode, hour) is its own game, solved by
    best-response dynamics in Rust:

    1. start from everyone truthful ``[0, 0]`` (start 0), or from a uniformly
       random grid pair per agent (starts 1 .. ``starts`` - 1, drawn from ``seed``);
    2. score the profile as :func:`exploitability_of_play` does: each agent's
       best grid deviation with the others held;
    3. stop when no agent gains more than ``1e-9 * max(|its reward|,
       reward_scale)`` (a grid equilibrium: ``exact``);
    4. else move the agent with the largest gain (lowest index on ties) to its
       best response; if the current profile was already visited in this game
       (a cycle), the mover is drawn uniformly among the agents that gain
       (seeded by ``seed``, the start, episode and hour);
    5. at most ``max_moves`` moves per game; then keep the profile of smallest
       NashConv seen.

    The result is deterministic from ``seed``. A game can have several
    equilibria and the one found depends on the start; ``starts=k`` tries k
    starts and returns the best (smallest NashConv) with the distinct
    converged ones in ``equilibria``.

    Refuses ramp limits and ramp costs (they couple the hours), scenarios with
    ``segments > 1``, and work above :data:`EQUILIBRIUM_MAX_CLEARINGS`
    clearings, counted as ``starts * E * T * (max_moves + 2) * N * G0 * G1``
    (on a networked scenario times ``(A + (Z + L) ** 2) / A``, a network
    clearing's cost in copper-plate clearings). On a networked scenario the
    games are cleared on the network as the env clears them, and ``prices``
    is the demand-weighted mean of the node prices (replay ``actions`` in
    ``MarketEnv`` for the node prices).

    Returns a dict (shapes with the E axis only when ``demand`` is 2-D):

    - ``actions`` (T, N, 2) or (E, T, N, 2) float32: the profile, playable in ``MarketEnv``;
    - ``prices`` (T,) or (E, T) €/MWh, ``cleared`` (T, N) or (E, T, N) MW;
    - ``profits`` (N,): ``sum_t (paid price - cost) * cleared``, € per day
      (``24 / T`` times the episode sum), mean over episodes;
    - ``reward`` (N,), ``regret`` (N,), ``nash_conv`` (reward units, as in
      :func:`exploitability`), ``reward_eur_per_day``, ``regret_eur_per_day``,
      ``nash_conv_eur_per_day`` and ``eur_per_day_per_reward``;
    - ``nash_conv_share``: ``nash_conv / sum(reward)`` (0 when NashConv is 0;
      ``inf`` when the total reward is <= 0 and NashConv is not 0);
    - ``moves`` (int, all games) and ``moves_per_hour`` (T,) or (E, T);
    - ``exact_hours``: games that ended in a grid equilibrium;
    - ``converged``: every game exact, or ``nash_conv <= tol * sum(reward)``;
    - ``start``: the start of this profile; ``equilibria``: the distinct
      converged profiles (same keys, without ``equilibria``), in start order.
    """
    withheld, price_action = _grid_arg(default_grid(scenario=scenario) if grid is None else grid)
    max_moves = _count(max_moves, "max_moves", 0)
    starts = _count(starts, "starts", 1)
    seed = _count(seed, "seed", 0)
    if isinstance(tol, bool) or not isinstance(tol, int | float | np.floating):
        raise ValueError(f"tol must be a number >= 0, got {tol!r}")
    if not (np.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be finite and >= 0, got {tol!r}")
    if demand is None:
        d = np.asarray(scenario.demand, dtype=np.float64)[None]
        squeeze = True
    else:
        try:
            d = np.asarray(demand, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"demand must be an array of numbers of shape (T,) or (E, T), got {demand!r}"
            ) from None
        if d.ndim not in (1, 2) or d.shape[-1] != scenario.t or d.size == 0:
            raise ValueError(
                f"demand must have shape (T,) or (E, T) with T = {scenario.t} and E >= 1, "
                f"got {d.shape}"
            )
        squeeze = d.ndim == 1
        d = np.atleast_2d(d)
    out = _core.equilibrium(
        scenario,
        d,
        withheld,
        price_action,
        tie_rule=tie_rule,
        max_moves=max_moves,
        tol=float(tol),
        seed=seed,
        starts=starts,
    )
    eur = out["eur_per_day_per_reward"]
    scale = 24.0 / max(1, scenario.t)

    def view(p: dict[str, Any]) -> dict[str, Any]:
        nash_conv = float(p["nash_conv"])
        total = float(p["reward"].sum())
        if nash_conv == 0.0:
            share = 0.0
        elif total > 0:
            share = nash_conv / total
        else:
            share = float("inf")
        first = (lambda a: a[0]) if squeeze else (lambda a: a)
        return {
            "actions": first(p["actions"]),
            "prices": first(p["prices"]),
            "cleared": first(p["cleared"]),
            "profits": p["profit"] * scale,
            "reward": p["reward"],
            "regret": p["regret"],
            "nash_conv": nash_conv,
            "reward_eur_per_day": p["reward"] * eur,
            "regret_eur_per_day": p["regret"] * eur,
            "nash_conv_eur_per_day": nash_conv * eur,
            "eur_per_day_per_reward": eur,
            "nash_conv_share": share,
            "moves": int(p["moves"].sum()),
            "moves_per_hour": first(p["moves"]),
            "exact_hours": int(p["exact_hours"]),
            "converged": bool(p["converged"]),
            "start": int(p["start"]),
        }

    profiles = [view(p) for p in out["profiles"]]
    result = dict(profiles[out["best"]])
    result["equilibria"] = [profiles[k] for k in out["distinct"]]
    return result


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
