"""Independent NumPy reference of the docs/semantics.md rules, for differential tests.

Written from the spec (docs/semantics.md), not from the Rust code,
so that a disagreement points at a real bug on one side. Plain and slow on
purpose: every step is the textbook formula.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

OBSERVER_DIMS = {
    "simple": lambda n: 4,
    "simple_v2": lambda n: 5,
    "simple_v3": lambda n: 7,
    "basic": lambda n: 2 + 2 * (n - 1),
    "market": lambda n: 6,
    "market_v2": lambda n: 9,
}


def _as_inputs(bids, quantities, demand) -> tuple[np.ndarray, np.ndarray, float]:
    b = np.asarray(bids, dtype=np.float64).copy()
    q = np.asarray(quantities, dtype=np.float64).copy()
    if b.ndim != 1 or b.shape != q.shape or b.size == 0:
        raise ValueError("reference expects two 1-D arrays of the same non-zero length")
    return b, q, float(demand)


def _shortage(b: np.ndarray, q: np.ndarray, shortage_price: float | None):
    """Supply below demand: everything clears at the cap or the highest offer."""
    price = float(np.max(b)) if shortage_price is None else float(shortage_price)
    return price, q.copy()


def classic_clear(bids, quantities, demand, shortage_price=None) -> tuple[float, np.ndarray]:
    """The classic argsort / cumsum / searchsorted clearing (ties in index order)."""
    b, q, d = _as_inputs(bids, quantities, demand)
    order = np.argsort(b, kind="stable")
    cum = np.cumsum(q[order])
    idx = int(np.searchsorted(cum, d, side="left"))
    if idx == len(b):
        return _shortage(b, q, shortage_price)
    cleared = np.zeros_like(q)
    cleared[order[:idx]] = q[order[:idx]]
    cleared[order[idx]] = d - (cum[idx - 1] if idx > 0 else 0.0)
    return float(b[order[idx]]), cleared


def marginal_level(bids, quantities, demand) -> tuple[np.ndarray, np.ndarray, int]:
    """Price levels, cumulative supply at or below each level, and the index of p*.

    p* is the lowest level whose cumulative supply reaches the demand (``>=``);
    the index equals ``len(levels)`` in a shortage.
    """
    b, q, d = _as_inputs(bids, quantities, demand)
    levels, inverse = np.unique(b, return_inverse=True)
    per_level = np.zeros(len(levels))
    np.add.at(per_level, inverse, q)
    cum = np.cumsum(per_level)
    return levels, cum, int(np.searchsorted(cum, d, side="left"))


def pro_rata_clear(bids, quantities, demand, shortage_price=None) -> tuple[float, np.ndarray]:
    """Same price rule; the offers at p* share the residual pro rata to quantity."""
    b, q, d = _as_inputs(bids, quantities, demand)
    levels, _, k = marginal_level(b, q, d)
    if k == len(levels):
        return _shortage(b, q, shortage_price)
    price = float(levels[k])
    below, at = b < price, b == price
    cleared = np.where(below, q, 0.0)
    residual = d - float(np.sum(q[below]))
    tied = float(np.sum(q[at]))
    if tied > 0.0 and residual > 0.0:
        share = min(1.0, residual / tied)
        cleared[at] = q[at] * share
    return price, cleared


# --- the exact "supply meets demand" rule (docs/semantics.md) ------------------------------

TOLERANCE_BITS = 40  # supply meets demand within a relative 2**-40


def unit_exponent(quantities) -> int:
    """k such that N * qmax * 2**k < 2**62: quantities count in units of 2**-k MW."""
    q = [float(x) for x in quantities]
    qmax = max(q)
    if qmax == 0.0:
        return 0  # no supply at all: any positive demand is unmet whatever k is
    # qmax < 2**e1; subnormal quantities all count as below 2**-1022.
    e1 = max(math.frexp(qmax)[1], -1022)
    return 62 - e1 - (len(q) - 1).bit_length()


def demand_units(demand: float, k: int) -> int | None:
    """max(1, ceil(D * 2**k)); None when it does not even fit a float (never met)."""
    try:
        return max(1, math.ceil(math.ldexp(demand, k)))
    except OverflowError:
        return None


def meets(supply_units: int, d_units: int | None, n: int) -> bool:
    """S_u >= max(1, D_u - max(N, floor(D_u / 2**40))), with Python's exact big ints.

    The tolerance is relative (2**-40) but never below N units, the most that
    truncating N quantities to units can lose."""
    if d_units is None:
        return False
    return supply_units >= max(1, d_units - max(n, d_units >> TOLERANCE_BITS))


def exact_price(bids, quantities, demand, shortage_price=None) -> tuple[float, bool]:
    """(price, shortage) by the exact integer rule; the same for every tie rule."""
    b, q, d = _as_inputs(bids, quantities, demand)
    if not math.isfinite(len(q) * float(np.max(q))):
        raise ValueError("quantities: N x the largest quantity exceeds the float64 range")
    levels = sorted(set(float(x) for x in b))
    if d == 0.0:
        return levels[0], False
    k = unit_exponent(q)
    units = [int(math.ldexp(float(x), k)) for x in q]
    d_u = demand_units(d, k)
    for p in levels:
        s_u = sum(u for u, x in zip(units, b, strict=True) if x <= p)
        if meets(s_u, d_u, len(q)):
            return p, False
    return (levels[-1] if shortage_price is None else float(shortage_price)), True


def exact_clear(bids, quantities, demand, tie_rule="pro_rata", shortage_price=None):
    """Price by :func:`exact_price`; offers below clear fully, offers at the price
    share ``R = clamp(D - S(below), 0, Q(at))`` pro rata or in index order."""
    b, q, d = _as_inputs(bids, quantities, demand)
    price, shortage = exact_price(b, q, d, shortage_price)
    if d == 0.0:
        return price, np.zeros_like(q)
    if shortage:
        return price, q.copy()
    below, at = b < price, b == price
    cleared = np.where(below, q, 0.0)
    tied = float(np.sum(q[at]))
    residual = min(max(d - float(np.sum(q[below])), 0.0), tied)
    if tie_rule == "pro_rata":
        if tied > 0.0:
            cleared[at] = residual * (q[at] / tied)  # divide first: no underflow
    elif tie_rule == "index":
        left = residual
        for i in np.flatnonzero(at):
            take = min(float(q[i]), left)
            cleared[i] = take
            left -= take
    else:
        raise ValueError(f"unknown tie_rule {tie_rule!r}")
    return price, cleared


def clear(bids, quantities, demand, tie_rule="pro_rata", shortage_price=None):
    """Dispatch on the tie rule, like ``pm.clear``: the exact price rule, then the
    tie rule's sharing."""
    if tie_rule not in ("pro_rata", "index"):
        raise ValueError(f"unknown tie_rule {tie_rule!r}")
    return exact_clear(bids, quantities, demand, tie_rule, shortage_price)


# --- market design: demand bids, price limits, settlement (docs/semantics.md) ---------------


def clip_prices(prices, price_cap=None, price_floor=None) -> np.ndarray:
    """Prices clipped into [floor, cap] (each limit optional)."""
    p = np.asarray(prices, dtype=np.float64).copy()
    if price_floor is not None:
        p = np.where(p < price_floor, float(price_floor), p)
    if price_cap is not None:
        p = np.where(p > price_cap, float(price_cap), p)
    return p


def settle(mechanism: str, price: float, offer_prices) -> np.ndarray:
    """Price paid per MWh of each offer."""
    b = np.asarray(offer_prices, dtype=np.float64)
    if mechanism == "uniform":
        return np.full(b.shape, float(price))
    if mechanism == "pay_as_bid":
        return b.copy()
    raise ValueError(f"unknown mechanism {mechanism!r}")


def market_clear(
    bids,
    quantities,
    demand,
    demand_bids=None,
    tie_rule="pro_rata",
    shortage_price=None,
    price_cap=None,
    price_floor=None,
):
    """The full clearing rule, written from the spec.

    Returns ``(price, cleared, served, shortage)``; ``served`` is per bid
    (empty without bids). Candidates are the offer and bid prices; the price
    is the lowest candidate ``p`` with ``S(p) >= Dmin(p)`` by the exact unit
    rule, ``Q = min(S(p), Dmax(p))``; ties at ``p`` share by ``tie_rule``
    (offers) and pro rata (bids). A shortage (supply below ``demand``, the
    inelastic part) clears everything at the cap, else the shortage price,
    else the highest offer, and serves no bid.
    """
    b = clip_prices(bids, price_cap, price_floor)
    q = np.asarray(quantities, dtype=np.float64).copy()
    d0 = float(demand)
    scarcity = price_cap if price_cap is not None else shortage_price
    if demand_bids is None:
        bp, bq = np.zeros(0), np.zeros(0)
    else:
        bp = clip_prices(demand_bids[0], price_cap, price_floor)
        bq = np.asarray(demand_bids[1], dtype=np.float64).copy()
    if len(bp) == 0:
        price, shortage = exact_price(b, q, d0, scarcity)
        _, cleared = exact_clear(b, q, d0, tie_rule, scarcity)
        return price, cleared, np.zeros(0), shortage
    # Bid groups by price, ascending; a group's quantity is summed in index order.
    prices = sorted(set(float(x) + 0.0 for x in bp))
    group_q = [0.0] * len(prices)
    for v, x in zip(bp, bq, strict=True):
        group_q[prices.index(float(v) + 0.0)] += float(x)
    # levels[g] = D0 + the groups g.. added from the highest price down.
    levels = [0.0] * (len(prices) + 1)
    levels[-1] = d0
    for g in range(len(prices) - 1, -1, -1):
        levels[g] = levels[g + 1] + group_q[g]

    def dmin(p: float) -> float:  # D0 + bids priced above p
        return levels[next((g for g, v in enumerate(prices) if v > p), len(prices))]

    def dmax(p: float) -> float:  # D0 + bids priced at or above p
        return levels[next((g for g, v in enumerate(prices) if v >= p), len(prices))]

    k = unit_exponent(q)
    units = [int(math.ldexp(float(x), k)) for x in q]
    for p in sorted(set(float(x) + 0.0 for x in b) | set(prices)):
        s_u = sum(u for u, x in zip(units, b, strict=True) if x <= p)
        lo = dmin(p)
        if not (lo == 0.0 or meets(s_u, demand_units(lo, k), len(q))):
            continue
        # Offers: the inelastic rule at demand Q, with Q = min(S(p), Dmax(p)).
        below, at = b < p, b == p
        s_below = float(np.sum(q[below]))
        s_at = float(np.sum(q[at]))
        volume = min(s_below + s_at, dmax(p))
        cleared = np.where(below, q, 0.0)
        residual = min(max(volume - s_below, 0.0), s_at)
        if tie_rule == "pro_rata":
            if s_at > 0.0:
                cleared[at] = residual * (q[at] / s_at)
        else:
            left = residual
            for i in np.flatnonzero(at):
                cleared[i] = min(float(q[i]), left)
                left -= cleared[i]
        bids_at = dmax(p) - lo
        share = min(max(volume - lo, 0.0), bids_at)
        served = np.where(bp > p, bq, 0.0)
        if bids_at > 0.0:
            served = np.where(bp == p, share * (bq / bids_at), served)
        return p + 0.0, cleared, served, False
    top = float(np.max(b)) if scarcity is None else float(scarcity)
    return top, q.copy(), np.zeros(len(bq)), True


def _positive_or_one(x: float) -> float:
    return x if x > 0 else 1.0


@dataclass
class StepResult:
    obs: np.ndarray
    rewards: np.ndarray
    terminated: bool
    price: float
    demand: float
    shortfall: float
    cleared: np.ndarray
    average_paid: float = 0.0


@dataclass
class ReferenceEnv:
    """One market with the env semantics; the realised demand is an input.

    The demand noise comes from the env's ChaCha RNG, which NumPy cannot
    reproduce, so ``reset`` takes the realised profile (``env.demand``), and
    with availability noise the realised load factors (``env.availability``).
    """

    capacities: np.ndarray
    costs: np.ndarray
    base_demand: np.ndarray
    max_bid_delta: float = 50.0
    bid_penalty: float = 0.01
    lol_penalty: float = 1.0
    shortage_price: float | None = None
    availability: np.ndarray | None = None  # (T, N) load factors; None: all ones
    ramp_limits: np.ndarray | None = None  # (N,) share of capacity per hour
    ramp_costs: np.ndarray | None = None  # (N,) EUR per MW of change
    observer: str = "simple"
    tie_rule: str = "pro_rata"
    segments: int = 1
    demand_bids: tuple = ()
    mechanism: str = "uniform"
    price_action: str = "tanh"  # or "linear": bid = cost + clip(a1, -1, 1) * delta
    price_cap: float | None = None
    price_floor: float | None = None
    demand: np.ndarray = field(init=False, default=None)
    t: int = field(init=False, default=0)
    record: dict = field(init=False, default_factory=dict)

    @classmethod
    def from_scenario(cls, scenario, observer="simple", tie_rule="pro_rata") -> ReferenceEnv:
        return cls(
            capacities=np.asarray(scenario.capacities, dtype=np.float64),
            costs=np.asarray(scenario.costs, dtype=np.float64),
            base_demand=np.asarray(scenario.demand, dtype=np.float64),
            max_bid_delta=float(scenario.max_bid_delta),
            bid_penalty=float(scenario.bid_penalty),
            lol_penalty=float(scenario.lol_penalty),
            shortage_price=scenario.shortage_price,
            availability=None if scenario.availability is None else np.array(scenario.availability),
            ramp_limits=None if scenario.ramp_limits is None else np.array(scenario.ramp_limits),
            ramp_costs=None if scenario.ramp_costs is None else np.array(scenario.ramp_costs),
            observer=observer,
            tie_rule=tie_rule,
            segments=int(scenario.segments),
            demand_bids=tuple(tuple(b) for b in scenario.demand_bids),
            mechanism=scenario.mechanism,
            price_action=scenario.price_action,
            price_cap=scenario.price_cap,
            price_floor=scenario.price_floor,
        )

    @property
    def n(self) -> int:
        return len(self.capacities)

    @property
    def horizon(self) -> int:
        return len(self.base_demand)

    @property
    def obs_dim(self) -> int:
        return OBSERVER_DIMS[self.observer](self.n)

    @property
    def demand_scale(self) -> float:
        return _positive_or_one(float(np.max(self.base_demand)))

    @property
    def cost_scale(self) -> float:
        return _positive_or_one(float(np.max(self.costs)))

    @property
    def capacity_scale(self) -> float:
        return _positive_or_one(float(np.max(self.capacities)))

    def reset(self, demand, load_factors=None) -> np.ndarray:
        """``load_factors``: the episode's realised (T, N) load factors (needed
        only with availability noise; by default the scenario's, or ones)."""
        self.demand = np.asarray(demand, dtype=np.float64).copy()
        assert self.demand.shape == (self.horizon,)
        if load_factors is not None:
            self.lf = np.asarray(load_factors, dtype=np.float64).copy()
        elif self.availability is not None:
            self.lf = np.asarray(self.availability, dtype=np.float64).copy()
        else:
            self.lf = np.ones((self.horizon, self.n))
        assert self.lf.shape == (self.horizon, self.n)
        self.t = 0
        self.record = {
            k: []
            for k in ("bids", "offered", "cleared", "paid", "average_paid", "rewards", "prices")
        }
        self._last_price = 0.0
        self._last_cleared = np.zeros(self.n)
        return self.observe(0, float(self.demand[0]))

    def observe(self, hour: int, demand_t: float) -> np.ndarray:
        """Features at hour index ``hour`` with demand ``demand_t`` (float32)."""
        n, k, c = self.n, self.capacities, self.costs
        d = np.full(n, demand_t / self.demand_scale)
        own_k = k / self.capacity_scale
        own_c = c / self.cost_scale
        hour_of_day = hour % 24
        day = (hour // 24) % 7
        ones = np.ones(n)
        if self.observer == "simple":
            cols = [d, own_k, own_c, ones * hour_of_day / 24]
        elif self.observer == "simple_v2":
            cols = [d, own_k, own_c, ones * hour_of_day / 24, ones * day / 7]
        elif self.observer == "simple_v3":
            h, w = 2 * np.pi * hour_of_day / 24, 2 * np.pi * day / 7
            cols = [d, own_k, own_c] + [
                ones * f for f in (np.sin(h), np.cos(h), np.sin(w), np.cos(w))
            ]
        elif self.observer == "basic":
            obs = np.empty((n, self.obs_dim))
            for i in range(n):
                others = np.arange(n) != i
                obs[i] = np.concatenate(([d[i], own_k[i]], own_c[others], own_k[others]))
            return obs.astype(np.float32)
        elif self.observer in ("market", "market_v2"):
            cols = [
                d,
                own_k,
                own_c,
                ones * hour_of_day / 24,
                ones * self._last_price / self.cost_scale,
                self._last_cleared / k,
            ]
            if self.observer == "market_v2":
                lf = self.lf[min(hour, self.horizon - 1)]
                lo, hi = self.window(hour, lf)
                cols += [lf, np.clip(lo / k, 0, 1), np.clip(hi / k, 0, 1)]
        else:
            raise ValueError(f"unknown observer {self.observer!r}")
        return np.stack(cols, axis=1).astype(np.float32)

    def window(self, hour: int, lf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """What each generator may offer in hour ``hour``, MW: [0, K LF] in
        hour 0 or without ramp limits, else [max(0, x - rK), min(K LF, x + rK)]
        around the last cleared x; an empty window collapses to its top."""
        available = self.capacities * lf
        if self.ramp_limits is None or hour == 0:
            return np.zeros(self.n), available
        r = self.ramp_limits * self.capacities
        hi = np.minimum(available, self._last_cleared + r)
        lo = np.maximum(0.0, self._last_cleared - r)
        return np.where(lo > hi, hi, lo), hi

    def bids_and_quantities(self, actions) -> tuple[np.ndarray, np.ndarray]:
        """Clip to the box, then map in float64 from the float32 actions: (N, 2),
        or (N, K, 2) with K blocks of capacity / K each; prices clipped to the
        cap and floor. Quantities are scaled by the hour's load factor and the
        generator's total kept in its ramp window: blocks in merit order (price,
        then block) are cut from the top down to the window's upper bound, then
        raised from the cheapest block up (each to its available K LF / K) to
        the floor. Returns flat (N * K,) arrays, generator-major."""
        k, n = self.segments, self.n
        a = np.asarray(actions, dtype=np.float32).astype(np.float64).reshape(n * k, 2)
        a0 = np.clip(a[:, 0], 0.0, 1.0)
        if self.price_action == "linear":
            share = np.clip(a[:, 1], -1.0, 1.0)
        else:
            share = np.tanh(np.clip(a[:, 1], -10.0, 10.0))
        cap = np.repeat(self.capacities, k)
        cost = np.repeat(self.costs, k)
        q = (1.0 - a0) * cap / k
        b = clip_prices(cost + share * self.max_bid_delta, self.price_cap, self.price_floor)
        if self.t < self.horizon:
            lf = self.lf[self.t]
            q = q * np.repeat(lf, k)
            if self.ramp_limits is not None and self.t > 0:
                lo, hi = self.window(self.t, lf)
                if k == 1:
                    q = np.minimum(np.maximum(q, lo), hi)
                else:
                    for i in range(n):
                        blocks = q[i * k : (i + 1) * k]
                        order = sorted(range(k), key=lambda j: (b[i * k + j], j))
                        room_top = float(hi[i])
                        for j in order:
                            blocks[j] = min(blocks[j], max(room_top, 0.0))
                            room_top -= blocks[j]
                        need = float(lo[i]) - float(np.sum(blocks))
                        most = self.capacities[i] * lf[i] / k
                        for j in order:
                            if need <= 0:
                                break
                            add = min(max(most - blocks[j], 0.0), need)
                            blocks[j] += add
                            need -= add
                        q[i * k : (i + 1) * k] = blocks
        return b, q

    def demand_curve(self, d: float):
        """(inelastic MW, (bid prices, bid MW)) of an hour with demand ``d``: bids
        of one price merge (their shares summed in the order given)."""
        if not self.demand_bids:
            return d, None
        merged: dict[float, float] = {}
        for price, share in self.demand_bids:
            p = float(clip_prices([price], self.price_cap, self.price_floor)[0]) + 0.0
            merged[p] = merged.get(p, 0.0) + float(share)
        inelastic = max(0.0, 1.0 - sum(float(s) for _, s in self.demand_bids))
        prices = np.array(list(merged), dtype=np.float64)
        return d * inelastic, (prices, np.array([merged[p] * d for p in merged]))

    def step(self, actions) -> StepResult:
        assert 0 <= self.t < self.horizon, "step outside the episode"
        b, q = self.bids_and_quantities(actions)
        d = float(self.demand[self.t])
        inelastic, bids = self.demand_curve(d)
        price, cleared, _, shortage = market_clear(
            b, q, inelastic, bids, self.tie_rule, self.shortage_price, self.price_cap
        )
        shortfall = max(0.0, inelastic - float(np.sum(q))) if shortage else 0.0
        paid = settle(self.mechanism, price, b)
        k, n = self.segments, self.n
        c = np.repeat(self.costs, k)
        profit = ((paid - c) * cleared).reshape(n, k).sum(axis=1)
        penalty = (self.bid_penalty * (b - c) ** 2).reshape(n, k).sum(axis=1) / k
        raw = profit - penalty - self.lol_penalty * shortfall
        if self.ramp_costs is not None and self.t > 0:
            x = cleared.reshape(n, k).sum(axis=1)
            raw = raw - self.ramp_costs * np.abs(x - self._last_cleared)
        scale = 20.0 / (self.demand_scale * self.cost_scale * max(1, self.horizon))
        rewards = (raw * scale).astype(np.float32)
        volume = float(np.sum(cleared))
        average = float(np.sum(paid * cleared)) / volume if volume > 0 else price
        per_agent = cleared.reshape(n, k).sum(axis=1)
        for key, val in (
            ("bids", b),
            ("offered", q),
            ("cleared", cleared),
            ("paid", paid),
            ("average_paid", average),
            ("rewards", rewards),
            ("prices", price),
        ):
            self.record[key].append(val)
        self._last_price, self._last_cleared = price, per_agent
        self.t += 1
        terminated = self.t == self.horizon
        # The final observation: hour T's time features, last hour's demand.
        obs = self.observe(self.t, float(self.demand[min(self.t, self.horizon - 1)]))
        return StepResult(obs, rewards, terminated, price, d, shortfall, per_agent, average)

    def episode_record(self) -> dict[str, np.ndarray]:
        n, t, k = self.n, self.t, self.segments
        blocks = (t, n) if k == 1 else (t, n, k)
        out = {
            "bids": np.asarray(self.record["bids"], dtype=np.float64).reshape(blocks),
            "offered": np.asarray(self.record["offered"], dtype=np.float64).reshape(blocks),
            "cleared": np.asarray(self.record["cleared"], dtype=np.float64).reshape(blocks),
            "paid": np.asarray(self.record["paid"], dtype=np.float64).reshape(blocks),
            "rewards": np.asarray(self.record["rewards"], dtype=np.float32).reshape(t, n),
            "prices": np.asarray(self.record["prices"], dtype=np.float64).reshape(t),
            "average_paid": np.asarray(self.record["average_paid"], dtype=np.float64).reshape(t),
            "demand": self.demand[:t].copy(),
            "availability": self.lf[:t].copy(),
        }
        return out
