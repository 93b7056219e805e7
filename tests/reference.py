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


# --- storage units (batteries) ----------------------------------------------------------------

# What a storage unit's row holds in its observer's own features, in order
# (zeros past the last); the other features are copied from the generators'.
STORAGE_FEATURE_NAMES = (
    "soc / E",
    "P / E",
    "last net sale / P",
    "max discharge now / P",
    "max charge now / P",
    "reference price / cmax",
    "eta_c * eta_d",
)

# The features of each observer that belong to the agent itself (a storage
# unit's row holds its own features there).
OWN_FEATURES = {
    "simple": lambda n: [1, 2],
    "simple_v2": lambda n: [1, 2],
    "simple_v3": lambda n: [1, 2],
    "basic": lambda n: list(range(1, 2 + 2 * (n - 1))),
    "market": lambda n: [1, 2, 5],
    "market_v2": lambda n: [1, 2, 5, 6, 7, 8],
}


def mean_cost(costs) -> float:
    """The mean generator cost, summed in index order."""
    total = 0.0
    for c in costs:
        total += float(c)
    return total / max(1, len(costs))


@dataclass(frozen=True)
class StorageUnit:
    """One battery with its prices resolved (reference price, terminal value)."""

    power: float
    energy: float
    efficiency_charge: float = 0.95
    efficiency_discharge: float = 0.95
    soc_initial: float = 0.5
    soc_min: float = 0.0
    soc_max: float = 1.0
    cost: float = 0.0
    reference_price: float = 0.0
    terminal_value: float = 0.0

    @classmethod
    def from_storage(cls, unit, generator_costs) -> StorageUnit:
        """From a ``pm.Storage``: reference price None -> the mean generator
        cost; terminal value None -> the reference price."""
        ref = unit.reference_price
        ref = mean_cost(generator_costs) if ref is None else float(ref)
        term = ref if unit.terminal_value is None else float(unit.terminal_value)
        return cls(
            power=float(unit.power),
            energy=float(unit.energy),
            efficiency_charge=float(unit.efficiency_charge),
            efficiency_discharge=float(unit.efficiency_discharge),
            soc_initial=float(unit.soc_initial),
            soc_min=float(unit.soc_min),
            soc_max=float(unit.soc_max),
            cost=float(unit.cost),
            reference_price=ref,
            terminal_value=term,
        )

    @property
    def soc0(self) -> float:
        return self.soc_initial * self.energy

    @property
    def lowest(self) -> float:
        return self.soc_min * self.energy

    @property
    def highest(self) -> float:
        return self.soc_max * self.energy

    def max_discharge(self, soc: float) -> float:
        """dmax = max(0, min(P, (soc - soc_min E) eta_d)), MW."""
        return max(0.0, min(self.power, (soc - self.lowest) * self.efficiency_discharge))

    def max_charge(self, soc: float) -> float:
        """cmax = max(0, min(P, (soc_max E - soc) / eta_c)), MW."""
        return max(0.0, min(self.power, (self.highest - soc) / self.efficiency_charge))

    def next_soc(self, soc: float, discharge: float, charge: float) -> float:
        """soc + eta_c c - d / eta_d, clipped to [soc_min E, soc_max E]."""
        x = soc + self.efficiency_charge * charge - discharge / self.efficiency_discharge
        return min(max(x, self.lowest), self.highest)

    def features(self, soc: float, net: float, cost_scale: float) -> list[float]:
        """The values of ``STORAGE_FEATURE_NAMES`` (net: last net sale, MW)."""
        p, e = self.power, self.energy
        return [
            soc / e,
            p / e,
            net / p,
            self.max_discharge(soc) / p,
            self.max_charge(soc) / p,
            self.reference_price / cost_scale,
            self.efficiency_charge * self.efficiency_discharge,
        ]


def soc_cut(prices, quantities, dmax: float, cmax: float) -> np.ndarray:
    """A unit's signed block quantities kept within its SoC limits: the
    discharge blocks (> 0) taken in merit order (price ascending, then block
    index) up to ``dmax`` MW in total; the charge blocks (< 0) in buyer order
    (price descending, then block index) up to ``cmax``."""
    p = [float(x) for x in prices]
    q = [float(x) for x in quantities]
    room = dmax
    for j in sorted(range(len(q)), key=lambda j: (p[j], j)):
        if q[j] > 0.0:
            q[j] = min(q[j], room)
            room -= q[j]
    room = cmax
    for j in sorted(range(len(q)), key=lambda j: (-p[j], j)):
        if q[j] < 0.0:
            q[j] = -min(-q[j], room)
            room += q[j]
    return np.array(q, dtype=np.float64)


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
    soc: np.ndarray | None = None  # (S,) MWh after the step
    node_prices: np.ndarray | None = None  # (Z,) networked scenarios only
    flows: np.ndarray | None = None  # (L,)
    congestion_rent: float | None = None
    network: NetworkResult | None = None  # the hour's clearing ("transport"/"dc")


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
    storage: tuple = ()  # StorageUnit, agents N .. N + S - 1
    # Networks (/work/notes/network_spec.md): "copper" | "transport" | "dc".
    network: str = "copper"
    num_nodes: int = 1
    agent_nodes: tuple = ()  # node of each agent: N generators then S units; () = node 0
    lines: np.ndarray | None = None  # (L, 4) rows [from, to, capacity, reactance]
    demand_shares: np.ndarray | None = None  # (Z,) or (T, Z); None: one node
    bid_nodes: tuple = ()  # node of each demand bid; () = node 0
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
            storage=tuple(
                StorageUnit.from_storage(u, scenario.costs) for u in (scenario.storage or ())
            ),
            **network_fields(scenario),
        )

    @property
    def networked(self) -> bool:
        return self.num_nodes > 1 or self.network != "copper"

    @property
    def num_lines(self) -> int:
        return 0 if self.lines is None else len(self.lines)

    def node_of(self, agent: int) -> int:
        return int(self.agent_nodes[agent]) if len(self.agent_nodes) else 0

    def shares_at(self, hour: int) -> np.ndarray:
        """(Z,) demand shares of hour index ``hour`` (clamped to the horizon)."""
        if self.demand_shares is None:
            return np.ones(self.num_nodes)
        s = np.asarray(self.demand_shares, dtype=np.float64)
        return s if s.ndim == 1 else s[min(hour, self.horizon - 1)]

    def node_demand_scale(self, node: int) -> float:
        """max_t(D_t share_tz) of the base demand (1 when not positive)."""
        top = max(
            float(self.base_demand[t]) * float(self.shares_at(t)[node]) for t in range(self.horizon)
        )
        return _positive_or_one(top)

    @property
    def n(self) -> int:
        return len(self.capacities)

    @property
    def s(self) -> int:
        return len(self.storage)

    @property
    def agents(self) -> int:
        return self.n + self.s

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
        self._last_node_prices = np.zeros(self.num_nodes)
        self._last_cleared = np.zeros(self.n)
        if self.networked:
            for key in ("node_prices", "flows", "congestion_rent"):
                self.record[key] = []
        self.soc = np.array([u.soc0 for u in self.storage], dtype=np.float64)
        self._last_net = np.zeros(self.s)
        if self.s:
            for key in ("storage_bids", "storage_offered", "storage_cleared"):
                self.record[key] = []
            self.record["soc"] = [self.soc.copy()]
        return self.observe(0, float(self.demand[0]))

    def observe(self, hour: int, demand_t: float) -> np.ndarray:
        """Features at hour index ``hour`` with demand ``demand_t`` (float32):
        the generators' rows, then one row per storage unit holding its
        ``STORAGE_FEATURE_NAMES`` in the observer's own features (zeros past
        the last) and generator 0's values in every other feature."""
        gens = self._observe_generators(hour, demand_t)
        if not self.s:
            return gens
        dim = self.obs_dim
        own = [f for f in OWN_FEATURES[self.observer](self.n) if f < dim]
        rows = np.zeros((self.s, dim))
        for u, unit in enumerate(self.storage):
            rows[u] = gens[0]
            rows[u, own] = 0.0
            net = self._last_net[u] if hour > 0 else 0.0
            values = unit.features(float(self.soc[u]), net, self.cost_scale)
            for f, x in zip(own, values, strict=False):
                rows[u, f] = x
            if self.networked:
                # Its own node's demand and (market observers) last price.
                rows[u, 0] = self._node_demand_feature(self.n + u, hour, demand_t)
                if self.observer in ("market", "market_v2"):
                    rows[u, 4] = self._node_price_feature(self.n + u)
        return np.concatenate([gens, rows.astype(np.float32)], axis=0)

    def _observe_generators(self, hour: int, demand_t: float) -> np.ndarray:
        n, k, c = self.n, self.capacities, self.costs
        d = np.full(n, demand_t / self.demand_scale)
        last_price = np.full(n, self._last_price / self.cost_scale)
        if self.networked:
            d = np.array([self._node_demand_feature(i, hour, demand_t) for i in range(n)])
            last_price = np.array([self._node_price_feature(i) for i in range(n)])
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
                last_price,
                self._last_cleared / k,
            ]
            if self.observer == "market_v2":
                lf = self.lf[min(hour, self.horizon - 1)]
                lo, hi = self.window(hour, lf)
                cols += [lf, np.clip(lo / k, 0, 1), np.clip(hi / k, 0, 1)]
        else:
            raise ValueError(f"unknown observer {self.observer!r}")
        return np.stack(cols, axis=1).astype(np.float32)

    def _node_demand_feature(self, agent: int, hour: int, demand_t: float) -> float:
        """D_tz / max_t(D_t share_tz) at the agent's node z (hour clamped)."""
        z = self.node_of(agent)
        return demand_t * float(self.shares_at(hour)[z]) / self.node_demand_scale(z)

    def _node_price_feature(self, agent: int) -> float:
        return float(self._last_node_prices[self.node_of(agent)]) / self.cost_scale

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
        a = np.asarray(actions, dtype=np.float32).astype(np.float64).reshape(-1, 2)[: n * k]
        a0 = np.clip(a[:, 0], 0.0, 1.0)
        share = self.share(a[:, 1])
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

    def share(self, a1: np.ndarray) -> np.ndarray:
        """The markup share of float64 price actions: ``tanh(clip(a1, -10, 10))``,
        or ``clip(a1, -1, 1)`` with ``price_action="linear"``."""
        if self.price_action == "linear":
            return np.clip(a1, -1.0, 1.0)
        return np.tanh(np.clip(a1, -10.0, 10.0))

    def storage_blocks(self, actions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The storage units' blocks from the last S x K rows of the actions:
        ``(prices, signed quantities after the SoC cut, a0)``, flat (S * K,),
        unit-major. a0 clipped to [-1, 1], a1 to [-10, 10] (float64 from the
        float32 actions); price = clip(ref + share(a1) max_bid_delta) to the
        cap and floor; quantity a0 P / K."""
        k, nk = self.segments, self.n * self.segments
        a = np.asarray(actions, dtype=np.float32).astype(np.float64).reshape(-1, 2)[nk:]
        assert a.shape == (self.s * k, 2)
        a0 = np.clip(a[:, 0], -1.0, 1.0)
        share = self.share(a[:, 1])
        prices = np.empty(self.s * k)
        quantities = np.empty(self.s * k)
        for u, unit in enumerate(self.storage):
            js = slice(u * k, (u + 1) * k)
            prices[js] = clip_prices(
                unit.reference_price + share[js] * self.max_bid_delta,
                self.price_cap,
                self.price_floor,
            )
            soc = float(self.soc[u])
            quantities[js] = soc_cut(
                prices[js],
                a0[js] * unit.power / k,
                unit.max_discharge(soc),
                unit.max_charge(soc),
            )
        return prices, quantities, a0

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

    def _signed_blocks(self, dis, chg, discharged, charged, k):
        """Each storage block's cleared MW, signed: + sold (its discharge
        offer's dispatch, blocks ``dis``), - bought (its charge bid's served
        MW, blocks ``chg``)."""
        x = np.zeros(self.s * k)
        x[dis] = discharged
        x[chg] = -np.asarray(charged)
        return x

    def _storage_hour(self, x, sto_paid, sp, sq, k, scale):
        """The storage units' hour after the clearing, from each block's signed
        cleared MW ``x`` and paid price ``sto_paid``: state of charge, net
        sale, reward (with the terminal value in the last hour) and the
        record. Returns the rewards (S,) and the net sales (S,)."""
        last = self.t == self.horizon - 1
        sto_rewards = np.zeros(self.s, dtype=np.float32)
        net = np.zeros(self.s)
        for u, unit in enumerate(self.storage):
            sold = bought = revenue = 0.0
            for j in range(u * k, (u + 1) * k):
                revenue += sto_paid[j] * x[j]
                if x[j] > 0.0:
                    sold += x[j]
                elif x[j] < 0.0:
                    bought += -x[j]
            self.soc[u] = unit.next_soc(float(self.soc[u]), sold, bought)
            value = revenue - unit.cost * (sold + bought)
            if last:
                value += unit.terminal_value * (self.soc[u] - unit.soc0)
            sto_rewards[u] = np.float32(value * scale)
            net[u] = sold - bought
        self._last_net = net
        self.record["storage_bids"].append(sp)
        self.record["storage_offered"].append(sq)
        self.record["storage_cleared"].append(x)
        self.record["soc"].append(self.soc.copy())
        return sto_rewards, net

    def step(self, actions) -> StepResult:
        assert 0 <= self.t < self.horizon, "step outside the episode"
        if self.networked:
            return self._step_network(actions)
        b, q = self.bids_and_quantities(actions)
        d = float(self.demand[self.t])
        inelastic, bids = self.demand_curve(d)
        k, n = self.segments, self.n
        if self.s:
            # Discharge blocks join the offer book after the generators' offers;
            # charge blocks join the demand bids (after the scenario's).
            sp, sq, a0 = self.storage_blocks(actions)
            dis, chg = np.flatnonzero(a0 > 0.0), np.flatnonzero(a0 < 0.0)
            book_b = np.concatenate([b, sp[dis]])
            book_q = np.concatenate([q, sq[dis]])
            if len(chg):
                bp, bq = bids if bids is not None else (np.zeros(0), np.zeros(0))
                bids = (np.concatenate([bp, sp[chg]]), np.concatenate([bq, -sq[chg]]))
            n_scenario_bids = 0 if bids is None else len(bids[0]) - len(chg)
        else:
            book_b, book_q = b, q
        price, book_cleared, served, shortage = market_clear(
            book_b, book_q, inelastic, bids, self.tie_rule, self.shortage_price, self.price_cap
        )
        cleared = book_cleared[: n * k]
        shortfall = max(0.0, inelastic - float(np.sum(book_q))) if shortage else 0.0
        paid = settle(self.mechanism, price, b)
        c = np.repeat(self.costs, k)
        profit = ((paid - c) * cleared).reshape(n, k).sum(axis=1)
        penalty = (self.bid_penalty * (b - c) ** 2).reshape(n, k).sum(axis=1) / k
        raw = profit - penalty - self.lol_penalty * shortfall
        if self.ramp_costs is not None and self.t > 0:
            x = cleared.reshape(n, k).sum(axis=1)
            raw = raw - self.ramp_costs * np.abs(x - self._last_cleared)
        scale = 20.0 / (self.demand_scale * self.cost_scale * max(1, self.horizon))
        rewards = (raw * scale).astype(np.float32)
        book_paid = settle(self.mechanism, price, book_b)
        volume = float(np.sum(book_cleared))
        average = float(np.sum(book_paid * book_cleared)) / volume if volume > 0 else price
        per_agent = cleared.reshape(n, k).sum(axis=1)
        if self.s:
            sto_paid = settle(self.mechanism, price, sp)
            x = self._signed_blocks(dis, chg, book_cleared[n * k :], served[n_scenario_bids:], k)
            sto_rewards, net = self._storage_hour(x, sto_paid, sp, sq, k, scale)
            rewards = np.concatenate([rewards, sto_rewards])
            per_agent = np.concatenate([per_agent, net])
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
        self._last_price, self._last_cleared = price, per_agent[:n]
        self.t += 1
        terminated = self.t == self.horizon
        # The final observation: hour T's time features, last hour's demand.
        obs = self.observe(self.t, float(self.demand[min(self.t, self.horizon - 1)]))
        soc = self.soc.copy() if self.s else None
        return StepResult(obs, rewards, terminated, price, d, shortfall, per_agent, average, soc)

    def _step_network(self, actions) -> StepResult:
        """One hour of a networked scenario (/work/notes/network_spec.md rules 1-8)."""
        k, n, z = self.segments, self.n, self.num_nodes
        b, q = self.bids_and_quantities(actions)
        d = float(self.demand[self.t])
        node_d = np.array([d * float(x) for x in self.shares_at(self.t)])
        # Rule 2: bid k bids share_k D_t,n_k at its node; the rest is inelastic.
        bid_p, bid_q, bid_n = [], [], []
        bid_share = [0.0] * z
        for j, (price, share) in enumerate(self.demand_bids):
            node = int(self.bid_nodes[j]) if len(self.bid_nodes) else 0
            bid_p.append(float(clip_prices([price], self.price_cap, self.price_floor)[0]))
            bid_q.append(float(share) * float(node_d[node]))
            bid_n.append(node)
            bid_share[node] += float(share)
        inelastic = np.array([node_d[x] * max(0.0, 1.0 - bid_share[x]) for x in range(z)])
        n_scenario_bids = len(bid_p)
        # Rule 3: offers at their agent's node; charge blocks bid at their unit's.
        book_b, book_q = b, q
        book_n = np.repeat([self.node_of(i) for i in range(n)], k).astype(int)
        if self.s:
            sp, sq, a0 = self.storage_blocks(actions)
            unit_n = np.repeat([self.node_of(n + u) for u in range(self.s)], k).astype(int)
            dis, chg = np.flatnonzero(a0 > 0.0), np.flatnonzero(a0 < 0.0)
            book_b = np.concatenate([b, sp[dis]])
            book_q = np.concatenate([q, sq[dis]])
            book_n = np.concatenate([book_n, unit_n[dis]])
            bid_p += [float(x) for x in sp[chg]]
            bid_q += [float(x) for x in -sq[chg]]
            bid_n += [int(x) for x in unit_n[chg]]
        bids = (np.array(bid_p), np.array(bid_q), np.array(bid_n, dtype=int))
        self.last_bids = bids  # (prices, MW, nodes): the scenario's, then charge blocks
        self.last_book = (book_b, book_q, book_n, inelastic)  # offers; node inelastic MW
        lines = np.zeros((0, 4)) if self.lines is None else self.lines
        result = None
        # Rule 4: the clearing.
        if self.network in ("transport", "dc"):
            result = network_clear(
                book_b,
                book_q,
                book_n,
                inelastic,
                lines,
                self.network,
                bids if len(bid_p) else None,
                self.tie_rule,
                self.shortage_price,
                self.price_cap,
                self.price_floor,
            )
            node_prices, book_cleared, served = result.prices, result.cleared, result.served
            shortfall, flows = result.shortfall, result.flows
            rent = congestion_rent(node_prices, flows, lines)
        else:
            total = 0.0
            for x in inelastic:
                total += float(x)
            price, book_cleared, served, shortage = market_clear(
                book_b,
                book_q,
                total,
                bids[:2] if len(bid_p) else None,
                self.tie_rule,
                self.shortage_price,
                self.price_cap,
            )
            node_prices = np.full(z, price)
            shortfall = max(0.0, total - float(np.sum(book_q))) if shortage else 0.0
            flows, rent = np.zeros(len(lines)), 0.0
        self.last_served = served  # MW served per bid (as in self.last_bids)
        price = weighted_price(node_prices, node_d)
        # Rule 5: settlement at the own node's price, or the own bid.
        cleared = book_cleared[: n * k]
        gen_n = book_n[: n * k]
        uniform = self.mechanism == "uniform"
        paid = node_prices[gen_n] if uniform else settle(self.mechanism, 0.0, b)
        c = np.repeat(self.costs, k)
        # Rule 6: rewards; the loss-of-load penalty on the total shortfall.
        profit = ((paid - c) * cleared).reshape(n, k).sum(axis=1)
        penalty = (self.bid_penalty * (b - c) ** 2).reshape(n, k).sum(axis=1) / k
        raw = profit - penalty - self.lol_penalty * shortfall
        if self.ramp_costs is not None and self.t > 0:
            x = cleared.reshape(n, k).sum(axis=1)
            raw = raw - self.ramp_costs * np.abs(x - self._last_cleared)
        scale = 20.0 / (self.demand_scale * self.cost_scale * max(1, self.horizon))
        rewards = (raw * scale).astype(np.float32)
        book_paid = node_prices[book_n] if uniform else settle(self.mechanism, 0.0, book_b)
        volume = float(np.sum(book_cleared))
        average = float(np.sum(book_paid * book_cleared)) / volume if volume > 0 else price
        per_agent = cleared.reshape(n, k).sum(axis=1)
        if self.s:
            sto_paid = node_prices[unit_n] if uniform else settle(self.mechanism, 0.0, sp)
            x = self._signed_blocks(dis, chg, book_cleared[n * k :], served[n_scenario_bids:], k)
            sto_rewards, net = self._storage_hour(x, sto_paid, sp, sq, k, scale)
            rewards = np.concatenate([rewards, sto_rewards])
            per_agent = np.concatenate([per_agent, net])
        for key, val in (
            ("bids", b),
            ("offered", q),
            ("cleared", cleared),
            ("paid", paid),
            ("average_paid", average),
            ("rewards", rewards),
            ("prices", price),
            ("node_prices", node_prices.copy()),
            ("flows", np.asarray(flows, dtype=np.float64).copy()),
            ("congestion_rent", rent),
        ):
            self.record[key].append(val)
        self._last_price, self._last_cleared = price, per_agent[:n]
        self._last_node_prices = node_prices.copy()
        self.t += 1
        terminated = self.t == self.horizon
        obs = self.observe(self.t, float(self.demand[min(self.t, self.horizon - 1)]))
        soc = self.soc.copy() if self.s else None
        return StepResult(
            obs,
            rewards,
            terminated,
            price,
            d,
            shortfall,
            per_agent,
            average,
            soc,
            node_prices.copy(),
            np.asarray(flows, dtype=np.float64).copy(),
            rent,
            result,
        )

    def episode_record(self) -> dict[str, np.ndarray]:
        n, t, k = self.n, self.t, self.segments
        blocks = (t, n) if k == 1 else (t, n, k)
        out = {
            "bids": np.asarray(self.record["bids"], dtype=np.float64).reshape(blocks),
            "offered": np.asarray(self.record["offered"], dtype=np.float64).reshape(blocks),
            "cleared": np.asarray(self.record["cleared"], dtype=np.float64).reshape(blocks),
            "paid": np.asarray(self.record["paid"], dtype=np.float64).reshape(blocks),
            "rewards": np.asarray(self.record["rewards"], dtype=np.float32).reshape(t, self.agents),
            "prices": np.asarray(self.record["prices"], dtype=np.float64).reshape(t),
            "average_paid": np.asarray(self.record["average_paid"], dtype=np.float64).reshape(t),
            "demand": self.demand[:t].copy(),
            "availability": self.lf[:t].copy(),
        }
        if self.s:
            s = self.s
            units = (t, s) if k == 1 else (t, s, k)
            for key in ("storage_bids", "storage_offered", "storage_cleared"):
                out[key] = np.asarray(self.record[key], dtype=np.float64).reshape(units)
            x = out["storage_cleared"].reshape(t, s, k)
            out["discharge"] = np.where(x > 0, x, 0.0).sum(axis=2)
            out["charge"] = np.where(x < 0, -x, 0.0).sum(axis=2)
            out["soc"] = np.asarray(self.record["soc"], dtype=np.float64).reshape(t + 1, s)
        if self.networked:
            z, nl = self.num_nodes, self.num_lines
            out["node_prices"] = np.asarray(self.record["node_prices"], np.float64).reshape(t, z)
            out["flows"] = np.asarray(self.record["flows"], np.float64).reshape(t, nl)
            out["congestion_rent"] = np.asarray(self.record["congestion_rent"], np.float64)
        return out


# --- networks (issue 19): one hour on a grid, and the env's networked step --------------------
#
# The hour is cleared as docs/semantics.md "Networks" documents it: the copper
# plate first (kept when its flows fit every line), else the LP of
# tests/reference_network.py solved by HiGHS (prices = its duals, replaced by
# the exact price of a node's marginal variable where the documented rule
# fixes one), then each node's totals dispatched by the copper-plate rule.


def snap(v: float, lo: float, hi: float) -> float:
    """A value within a relative 1e-9 of a bound, put on it."""
    tol = 1e-9 * (1.0 + max(abs(lo), abs(hi)))
    if abs(v - lo) <= tol:
        return lo
    if abs(v - hi) <= tol:
        return hi
    return min(max(v, lo), hi)


def grid_ptdf(z: int, lines: np.ndarray, unit: bool = False) -> np.ndarray:
    """(L, Z) PTDF (reactances, or all ones with ``unit``), by the Laplacian's
    pseudo-inverse (reference_network.ptdf)."""
    from reference_network import ptdf

    lines = np.asarray(lines, dtype=np.float64).reshape(-1, 4).copy()
    if unit:
        lines[:, 3] = 1.0
    return ptdf(z, lines)


def is_radial(z: int, lines: np.ndarray) -> bool:
    """A connected grid is radial when it has Z - 1 lines."""
    return len(lines) == z - 1


def copper_flows(z: int, lines: np.ndarray, model: str, inj: np.ndarray):
    """The flows of node injections ``inj`` and whether they fit every line:
    the PTDF flows under "dc" (unique), the unit-reactance flows under
    "transport" (unique on a radial grid; on a meshed grid any flows within
    the limits will do, found by a feasibility LP)."""
    from scipy.optimize import linprog

    lines = np.asarray(lines, dtype=np.float64).reshape(-1, 4)
    cap = lines[:, 2]
    if len(lines) == 0:
        return np.zeros(0), True
    flows = grid_ptdf(z, lines, unit=(model == "transport")) @ inj
    if np.all(np.abs(flows) <= cap):
        return flows, True
    if model == "dc" or is_radial(z, lines):
        return flows, False
    frm, to = lines[:, 0].astype(int), lines[:, 1].astype(int)
    a = np.zeros((z, len(lines)))
    a[frm, np.arange(len(lines))] = 1.0  # out of `from`
    a[to, np.arange(len(lines))] -= 1.0
    bounds = [(-c, c) if np.isfinite(c) else (None, None) for c in cap]
    res = linprog(np.zeros(len(lines)), A_eq=a, b_eq=inj, bounds=bounds, method="highs")
    if res.status != 0:
        return flows, False
    return np.array(
        [snap(f, -c, c) if np.isfinite(c) else f for f, c in zip(res.x, cap, strict=True)]
    ), True


@dataclass
class NetworkResult:
    prices: np.ndarray  # (Z,)
    cleared: np.ndarray  # (N,) per offer
    served: np.ndarray  # (B,) per bid
    shed: np.ndarray  # (Z,)
    flows: np.ndarray  # (L,)
    congested: bool  # the LP ran
    cost: float  # the LP objective of the dispatch
    exact: np.ndarray  # (Z,) bool: the node's price is fixed by a marginal variable

    @property
    def shortfall(self) -> float:
        return float(np.sum(self.shed))


def serve_bids_at_node(local, prices, quantities, total: float, served: np.ndarray) -> None:
    """``total`` MW to the bids ``local`` from the highest price down; the
    bids of the price where it runs out share the rest pro rata."""
    order = sorted(local, key=lambda k: (-prices[k], k))
    left = total
    i = 0
    while i < len(order):
        top = prices[order[i]]
        group = [k for k in order[i:] if prices[k] == top]
        gq = sum(float(quantities[k]) for k in group)
        full = left >= gq - 1e-9 * (1.0 + gq)
        share = 1.0 if full or gq <= 0.0 else max(left / gq, 0.0)
        for k in group:
            served[k] = quantities[k] if full else quantities[k] * share
        left = max(left - gq, 0.0)
        i += len(group)


def network_clear(
    offer_prices,
    offer_quantities,
    offer_nodes,
    node_demand,
    lines,
    model: str,
    bids=None,  # (prices, quantities, nodes) or None
    tie_rule: str = "pro_rata",
    shortage_price=None,
    price_cap=None,
    price_floor=None,
) -> NetworkResult:
    """One hour of ``pm.clear_network`` by its documented rules (see above)."""
    from reference_network import objective, shed_price, solve, voll_model

    b = clip_prices(offer_prices, price_cap, price_floor)
    q = np.asarray(offer_quantities, dtype=np.float64)
    nodes = np.asarray(offer_nodes, dtype=int)
    demand = np.asarray(node_demand, dtype=np.float64)
    lines = np.asarray(lines, dtype=np.float64).reshape(-1, 4)
    z = len(demand)
    if bids is None or len(bids[0]) == 0:
        bp, bq, bn = np.zeros(0), np.zeros(0), np.zeros(0, dtype=int)
    else:
        bp = clip_prices(bids[0], price_cap, price_floor)
        bq = np.asarray(bids[1], dtype=np.float64)
        bn = np.asarray(bids[2], dtype=int)
    vmodel = voll_model(model, z, lines)
    v = shed_price(b, bp, price_cap, shortage_price, vmodel)
    total = 0.0
    for d in demand:
        total += float(d)
    # 1. The copper plate (its shortage priced at the LP's V).
    price, cleared, served, shortage = market_clear(
        b, q, total, (bp, bq) if len(bp) else None, tie_rule, shortage_price, price_cap
    )
    shortfall = max(0.0, total - float(np.sum(q))) if shortage else 0.0
    shed = np.array(
        [shortfall * (d / total) if total > 0.0 and shortfall > 0.0 else 0.0 for d in demand]
    )
    inj = shed - demand
    np.add.at(inj, nodes, cleared)
    np.add.at(inj, bn, -served)
    flows, fits = copper_flows(z, lines, model, inj)
    demand_bids = (bp, bq) if len(bp) else None
    if fits:
        cost = objective(
            cleared, served, shed, b, demand_bids, price_cap, price_floor, shortage_price, vmodel
        )
        p = v if shortage else price
        return NetworkResult(
            np.full(z, p), cleared, served, shed, flows, False, cost, np.ones(z, dtype=bool)
        )
    # 2. The LP (HiGHS).
    lp = solve(
        b,
        q,
        nodes,
        demand,
        lines,
        model=model,
        demand_bids=(bp, bq, bn) if len(bp) else None,
        price_cap=price_cap,
        price_floor=price_floor,
        shortage_price=shortage_price,
        least_shedding=True,
    )
    prices = lp.prices.copy()
    # 3. Per-node dispatch of the LP's node totals, by the copper-plate rule.
    cleared = np.zeros(len(q))
    served = np.zeros(len(bq))
    shed = np.zeros(z)
    for node in range(z):
        offers = np.flatnonzero(nodes == node)
        local_bids = list(np.flatnonzero(bn == node))
        generation = sum(snap(float(lp.cleared[i]), 0.0, float(q[i])) for i in offers)
        served_total = sum(snap(float(lp.served[k]), 0.0, float(bq[k])) for k in local_bids)
        cut = snap(float(lp.shed[node]), 0.0, float(demand[node]))
        swap = min(cut, served_total)  # inelastic demand before bids at V
        cut -= swap
        served_total -= swap
        need = generation + cut
        if len(offers) == 0:
            shed[node] = need
        else:
            _, short = exact_price(b[offers], q[offers], need)
            if short:
                cleared[offers] = q[offers]
                shed[node] = max(need - float(np.sum(q[offers])), 0.0)
            else:
                _, cleared[offers] = exact_clear(b[offers], q[offers], need, tie_rule)
        serve_bids_at_node(local_bids, bp, bq, served_total, served)
    # Exact prices: a node with a variable strictly inside its bounds is
    # priced at it; under "transport" across unsaturated lines.
    exact = np.zeros(z, dtype=bool)

    def inside(x: float, hi: float) -> bool:
        tol = 1e-9 * (1.0 + abs(hi))
        return tol < x < hi - tol

    for i in range(len(q)):
        if inside(float(cleared[i]), float(q[i])):
            prices[nodes[i]], exact[nodes[i]] = b[i], True
    for k in range(len(bq)):
        if inside(float(served[k]), float(bq[k])):
            prices[bn[k]], exact[bn[k]] = bp[k], True
    for node in range(z):
        if inside(float(shed[node]), float(demand[node])):
            prices[node], exact[node] = v, True
    if model == "transport":
        zone = list(range(z))

        def root(a: int) -> int:
            while zone[a] != a:
                a = zone[a]
            return a

        for f, (a, c, cap, _) in zip(lp.flows, lines, strict=True):
            if not np.isfinite(cap) or abs(f) < cap - 1e-9 * (1.0 + cap):
                ra, rc = root(int(a)), root(int(c))
                if ra != rc:
                    zone[max(ra, rc)] = min(ra, rc)
        for node in np.flatnonzero(exact):
            for other in range(z):
                if root(other) == root(node) and not exact[other]:
                    prices[other], exact[other] = prices[node], True
    cost = objective(
        cleared, served, shed, b, demand_bids, price_cap, price_floor, shortage_price, vmodel
    )
    return NetworkResult(prices + 0.0, cleared, served, shed, lp.flows, True, cost, exact)


def congestion_rent(prices, flows, lines) -> float:
    """sum_l |f_l| |p_to - p_from|."""
    lines = np.asarray(lines, dtype=np.float64).reshape(-1, 4)
    rent = 0.0
    for f, (a, c, _, _) in zip(flows, lines, strict=True):
        rent += abs(float(f)) * abs(float(prices[int(c)]) - float(prices[int(a)]))
    return rent


def weighted_price(prices, node_demand) -> float:
    """sum_z p_z D_z / sum_z D_z; exactly p when every node price is p."""
    p = [float(x) for x in prices]
    if all(x == p[0] for x in p):
        return p[0]
    num = den = 0.0
    for x, d in zip(p, node_demand, strict=True):
        num += x * float(d)
        den += float(d)
    return num / den if den > 0.0 else float(np.mean(p))


def network_fields(scenario) -> dict:
    """The ReferenceEnv network fields of a ``pm.Scenario`` (defaults when the
    scenario has none: one node, copper plate)."""

    def listed(name):
        value = getattr(scenario, name, None)
        return () if value is None else tuple(int(x) for x in np.asarray(value).ravel())

    lines = getattr(scenario, "lines", None)
    lines = np.zeros((0, 4)) if lines is None else np.asarray(lines, dtype=np.float64)
    shares = getattr(scenario, "demand_shares", None)
    return {
        "network": str(getattr(scenario, "network", "copper")),
        "num_nodes": int(getattr(scenario, "num_nodes", 1)),
        "agent_nodes": listed("nodes"),
        "lines": lines.reshape(-1, 4),
        "demand_shares": None if shares is None else np.asarray(shares, dtype=np.float64),
        "bid_nodes": listed("demand_bid_nodes"),
    }
