"""Networked scenarios from pandapower and PyPSA grids.

``from_pandapower(net)`` and ``from_pypsa(network)`` build a ``pm.Scenario``
with one node per bus, one generator per power plant and one line per branch;
``extract_pandapower`` / ``extract_pypsa`` return the same conversion as a
``GridImport`` (the ``Scenario`` keyword arguments plus which grid element
became which node, generator and line) without building the scenario. Every
conversion rule is stated in ``docs/grids.md``.

pandapower and PyPSA are optional: they are imported when a function is
called, and ``pip install "powermarket[grid]"`` installs both.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "GridImport",
    "extract_pandapower",
    "extract_pypsa",
    "from_pandapower",
    "from_pypsa",
]

_HINT = 'pip install "powermarket[grid]"'
_NETWORKS = ("copper", "transport", "dc")


def _require(module: str, function: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"powermarket.grid.{function} needs the `{module}` package, which is not "
            f"installed: {_HINT}"
        ) from err


@dataclass
class GridImport:
    """A grid converted to ``pm.Scenario`` keyword arguments.

    ``kwargs``: the keyword arguments of ``pm.Scenario`` (capacities, costs,
    demand, network, node_names, nodes, lines, demand_shares and, for PyPSA
    with hourly ``p_max_pu``, availability).
    ``buses[z]``: the grid's bus ids merged into node z (one bus unless closed
    bus-bus switches join several). ``generators[i]``: ``(table, id)`` of
    generator i (``("gen", 3)``, ``("ext_grid", 0)``, ``("Generator", "wind")``).
    ``lines[l]``: ``(table, id)`` of line row l (``("line", 7)``, ``("trafo", 0)``,
    ``("Line", "ab")``, ``("Transformer", "t1")``). ``skipped``: ``(table, id,
    reason)`` of every element left out on purpose (out of service, no
    capacity, an empty island, ...).
    """

    kwargs: dict[str, Any]
    buses: list[list[Hashable]] = field(default_factory=list)
    generators: list[tuple[str, Hashable]] = field(default_factory=list)
    lines: list[tuple[str, Hashable]] = field(default_factory=list)
    skipped: list[tuple[str, Hashable, str]] = field(default_factory=list)

    def scenario(self, **overrides: Any) -> Any:
        """``pm.Scenario(**kwargs)``, with ``overrides`` replacing or adding keywords."""
        import powermarket as pm

        return pm.Scenario(**{**self.kwargs, **overrides})

    @property
    def node_of_bus(self) -> dict[Hashable, int]:
        """The node index of every imported bus id."""
        return {b: z for z, group in enumerate(self.buses) for b in group}


# ---------------------------------------------------------------------------
# shared helpers


def _finite(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _is_missing(x: Any) -> bool:
    if x is None:
        return True
    try:
        return bool(np.isnan(float(x)))
    except (TypeError, ValueError):
        return False


def _truthy(x: Any, default: bool) -> bool:
    """A pandas cell read as a bool; a missing value (None, NaN, NA) is ``default``."""
    if x is None:
        return default
    try:
        if x != x:  # NaN
            return default
    except (TypeError, ValueError):
        return default
    try:
        return bool(x)
    except (TypeError, ValueError):
        return default


class _Union:
    """Union-find over hashable keys (the buses fused by closed switches)."""

    def __init__(self, keys: Sequence[Hashable]) -> None:
        self.parent = {k: k for k in keys}

    def find(self, k: Hashable) -> Hashable:
        root = k
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[k] != root:
            self.parent[k], k = root, self.parent[k]
        return root

    def union(self, a: Hashable, b: Hashable) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def _components(num_nodes: int, edges: Sequence[tuple[int, int]]) -> list[int]:
    """The connected component label of each node (labels in order of first node)."""
    adj: list[list[int]] = [[] for _ in range(num_nodes)]
    for a, b in edges:
        adj[a].append(b)
        adj[b].append(a)
    label = [-1] * num_nodes
    nxt = 0
    for start in range(num_nodes):
        if label[start] >= 0:
            continue
        label[start] = nxt
        stack = [start]
        while stack:
            u = stack.pop()
            for v in adj[u]:
                if label[v] < 0:
                    label[v] = nxt
                    stack.append(v)
        nxt += 1
    return label


def _node_names(groups: list[list[Hashable]], name_of: dict[Hashable, Any], prefix: str) -> list:
    """A node's name is its first bus's name (str) when that is non-empty and no
    other node gets the same name; otherwise ``f"{prefix}{bus id}"``."""
    raw = []
    for group in groups:
        name = name_of.get(group[0])
        text = "" if _is_missing(name) else str(name).strip()
        raw.append(text)
    counts: dict[str, int] = {}
    for text in raw:
        counts[text] = counts.get(text, 0) + 1
    names = [
        text if text and counts[text] == 1 else f"{prefix}{group[0]}"
        for text, group in zip(raw, groups, strict=True)
    ]
    if len(set(names)) != len(names):  # a bus literally named like another's fallback
        names = [f"{prefix}{group[0]}" for group in groups]
    return names


def _keep_one_island(
    num_nodes: int,
    edges: Sequence[tuple[int, int]],
    active: Sequence[bool],
    describe: Any,
) -> list[int]:
    """The nodes kept: the one connected component holding every node with a
    load or a generator (``active``). Components with neither are dropped;
    two components with load or generation are refused."""
    label = _components(num_nodes, edges)
    used = sorted({label[z] for z in range(num_nodes) if active[z]})
    if not used:
        raise ValueError("the grid has no load and no generator")
    if len(used) > 1:
        first = [next(z for z in range(num_nodes) if label[z] == lab) for lab in used[:2]]
        raise ValueError(
            f"the grid has {len(used)} islands with load or generation, and the core "
            f"clears one connected grid: {describe(first[1])} is not connected to "
            f"{describe(first[0])}; import each island as its own grid "
            "(e.g. split it with pandapower.topology or PyPSA's sub_networks) or connect them"
        )
    return [z for z in range(num_nodes) if label[z] == used[0]]


def _multipliers(demand: Any) -> np.ndarray:
    if demand is None:
        return np.ones(24)
    mult = np.asarray(demand, dtype=float)
    if mult.ndim != 1 or mult.size == 0:
        raise ValueError(
            f"demand: must be a non-empty 1-D array of hourly multipliers of the "
            f"load snapshot, got shape {mult.shape}"
        )
    if not np.all(np.isfinite(mult)) or np.any(mult < 0):
        raise ValueError("demand: every hourly multiplier must be finite and >= 0")
    return mult


def _check_network(network: str) -> str:
    if network not in _NETWORKS:
        raise ValueError(f"network: must be one of {_NETWORKS}, got {network!r}")
    return network


# ---------------------------------------------------------------------------
# pandapower

# Tables whose in-service rows the import cannot represent.
_PP_REFUSED = {
    "trafo3w": "three-winding transformers",
    "impedance": "impedance branches",
    "dcline": "DC lines",
    "line_dc": "DC lines",
    "vsc": "voltage source converters",
    "ward": "ward equivalents",
    "xward": "extended ward equivalents",
    "storage": "storage units (use pm.Storage)",
    "motor": "motors",
    "asymmetric_load": "asymmetric loads",
    "asymmetric_sgen": "asymmetric static generators",
    "tcsc": "TCSCs",
    "svc": "SVCs",
    "ssc": "SSCs",
}


def _pp_rows(net: Any, table: str) -> Any:
    df = net[table] if table in net else None
    if df is None or len(df) == 0:
        return []
    return list(df.iterrows())


def _pp_id(x: Any) -> Any:
    """An element index as a Python int where it is integral (poly_cost's
    `element` column may hold floats)."""
    try:
        if float(x) == int(x):
            return int(x)
    except (TypeError, ValueError, OverflowError):
        pass
    return x


def _pp_cell(row: Any, col: str, default: Any = None) -> Any:
    return row[col] if col in row.index else default


def _pp_tap_ratio(idx: Hashable, row: Any) -> tuple[float, float]:
    """The tap-adjusted rated voltages (vn_hv_kv, vn_lv_kv) of a two-winding
    transformer. Ratio taps (no table, no phase shift) only."""
    vnh = float(row["vn_hv_kv"])
    vnl = float(row["vn_lv_kv"])
    for t in ("", "2"):
        pos = _pp_cell(row, f"tap{t}_pos")
        if _is_missing(pos):
            continue
        neutral = _pp_cell(row, f"tap{t}_neutral")
        neutral = 0.0 if _is_missing(neutral) else float(neutral)
        step = _pp_cell(row, f"tap{t}_step_percent")
        if float(pos) == neutral or _is_missing(step) or float(step) == 0.0:
            continue
        if _truthy(_pp_cell(row, f"tap{t}_dependency_table"), False):
            raise ValueError(
                f"net.trafo[{idx}]: taps with a characteristic table are not supported"
            )
        kind = _pp_cell(row, f"tap{t}_changer_type")
        kind = None if _is_missing(kind) else str(kind)
        degree = _pp_cell(row, f"tap{t}_step_degree")
        shifting = (kind == "Ideal") or (not _is_missing(degree) and float(degree) != 0.0)
        if _truthy(_pp_cell(row, f"tap{t}_phase_shifter"), False) or shifting:
            raise ValueError(
                f"net.trafo[{idx}]: phase-shifting taps are not supported (the DC model "
                "here has no phase shifts); set the tap to its neutral position"
            )
        du = (float(pos) - neutral) * float(step) / 100.0
        side = _pp_cell(row, f"tap{t}_side")
        if side == "hv":
            vnh *= 1.0 + du
        elif side == "lv":
            vnl *= 1.0 + du
        else:
            raise ValueError(f"net.trafo[{idx}]: tap{t}_side must be 'hv' or 'lv', got {side!r}")
    return vnh, vnl


def _pp_limit(value: float) -> float:
    """A branch limit: a missing (NaN), zero or infinite limit means no limit
    (pandapower's OPF also treats a zero rating as unlimited)."""
    if not _finite(value) or value == 0.0:
        return math.inf
    if value < 0:
        raise ValueError(f"negative limit {value}")
    return float(value)


def extract_pandapower(net: Any, *, demand: Any = None, network: str = "dc") -> GridImport:
    """Convert a pandapower net to ``pm.Scenario`` keyword arguments (see
    ``from_pandapower``; the rules are in docs/grids.md)."""
    _require("pandapower", "extract_pandapower")
    _check_network(network)
    mult = _multipliers(demand)
    skipped: list[tuple[str, Hashable, str]] = []

    for table, what in _PP_REFUSED.items():
        for idx, row in _pp_rows(net, table):
            if _truthy(_pp_cell(row, "in_service"), True):
                raise ValueError(
                    f"net.{table}[{idx}]: {what} are not supported by the import; "
                    f"take it out of service or remove it"
                )

    # Buses: in service, fused by closed bus-bus switches.
    bus_ids = [idx for idx, row in _pp_rows(net, "bus") if _truthy(row["in_service"], True)]
    for idx, row in _pp_rows(net, "bus"):
        if not _truthy(row["in_service"], True):
            skipped.append(("bus", idx, "out of service"))
    in_bus = set(bus_ids)
    fuse = _Union(bus_ids)
    open_branch: set[tuple[str, Hashable]] = set()
    for _idx, row in _pp_rows(net, "switch"):
        closed = _truthy(row["closed"], True)
        et = row["et"]
        if et == "b":
            if closed and row["bus"] in in_bus and row["element"] in in_bus:
                fuse.union(row["bus"], row["element"])
        elif et in ("l", "t") and not closed:
            open_branch.add(("line" if et == "l" else "trafo", row["element"]))
    groups: dict[Hashable, list[Hashable]] = {}
    for b in bus_ids:
        groups.setdefault(fuse.find(b), []).append(b)
    group_list = list(groups.values())
    node0 = {b: z for z, g in enumerate(group_list) for b in g}

    # Branches.
    sn_base = float(net.sn_mva) if _finite(getattr(net, "sn_mva", None)) else 1.0
    vn_kv = {idx: float(row["vn_kv"]) for idx, row in _pp_rows(net, "bus")}
    branches: list[tuple[int, int, float, float, tuple[str, Hashable]]] = []

    def branch_ok(table: str, idx: Hashable, row: Any, a: Hashable, b: Hashable) -> bool:
        if not _truthy(row["in_service"], True):
            skipped.append((table, idx, "out of service"))
            return False
        if (table, idx) in open_branch:
            skipped.append((table, idx, "open switch"))
            return False
        if a not in in_bus or b not in in_bus:
            skipped.append((table, idx, "at an out-of-service bus"))
            return False
        if node0[a] == node0[b]:
            skipped.append((table, idx, "both ends on one node (fused buses)"))
            return False
        return True

    for idx, row in _pp_rows(net, "line"):
        a, b = row["from_bus"], row["to_bus"]
        if not branch_ok("line", idx, row, a, b):
            continue
        parallel = float(_pp_cell(row, "parallel", 1) or 1)
        vn = vn_kv[a]
        x_ohm = float(row["x_ohm_per_km"]) * float(row["length_km"]) / parallel
        x_pu = x_ohm * sn_base / vn**2
        if not (_finite(x_pu) and x_pu > 0):
            raise ValueError(
                f"net.line[{idx}]: the DC model needs a reactance > 0, got "
                f"x_ohm_per_km={row['x_ohm_per_km']}, length_km={row['length_km']}"
            )
        df = _pp_cell(row, "df", 1.0)
        df = 1.0 if _is_missing(df) else float(df)
        loading = _pp_cell(row, "max_loading_percent", 100.0)
        loading = 100.0 if _is_missing(loading) else float(loading)
        try:
            cap = _pp_limit(
                loading / 100.0 * float(row["max_i_ka"]) * df * parallel * vn * math.sqrt(3.0)
            )
        except ValueError as err:
            raise ValueError(f"net.line[{idx}]: {err}") from None
        branches.append((node0[a], node0[b], cap, x_pu, ("line", idx)))

    for idx, row in _pp_rows(net, "trafo"):
        a, b = row["hv_bus"], row["lv_bus"]
        if not branch_ok("trafo", idx, row, a, b):
            continue
        parallel = float(_pp_cell(row, "parallel", 1) or 1)
        vnh, vnl = _pp_tap_ratio(idx, row)
        sn = float(row["sn_mva"])
        vk, vkr = float(row["vk_percent"]), float(row["vkr_percent"])
        if not (_finite(sn) and sn > 0 and _finite(vk) and _finite(vkr) and vk > abs(vkr)):
            raise ValueError(
                f"net.trafo[{idx}]: needs sn_mva > 0 and vk_percent > |vkr_percent|, got "
                f"sn_mva={row['sn_mva']}, vk_percent={row['vk_percent']}, "
                f"vkr_percent={row['vkr_percent']}"
            )
        # Short-circuit impedance on the system base, referred to the LV bus.
        scale = (vnl / vn_kv[b]) ** 2 * sn_base / sn
        z = vk / 100.0 * scale
        r = vkr / 100.0 * scale
        x_pu = math.sqrt(z * z - r * r) / parallel
        # Off-nominal ratio (tap and rated voltages against the bus voltages).
        ratio = (vnh / vnl) / (vn_kv[a] / vn_kv[b])
        df = _pp_cell(row, "df", 1.0)
        df = 1.0 if _is_missing(df) else float(df)
        loading = _pp_cell(row, "max_loading_percent", 100.0)
        loading = 100.0 if _is_missing(loading) else float(loading)
        try:
            cap = _pp_limit(loading / 100.0 * sn * df * parallel)
        except ValueError as err:
            raise ValueError(f"net.trafo[{idx}]: {err}") from None
        branches.append((node0[a], node0[b], cap, x_pu * ratio, ("trafo", idx)))

    # Costs: linear term of net.poly_cost; piecewise costs refused.
    cost_of: dict[tuple[str, Hashable], float] = {}
    for idx, row in _pp_rows(net, "poly_cost"):
        key = (str(row["et"]), _pp_id(row["element"]))
        if key in cost_of:
            raise ValueError(f"net.poly_cost[{idx}]: a second cost row for net.{key[0]}[{key[1]}]")
        cp1 = float(row["cp1_eur_per_mw"])
        if not _finite(cp1):
            raise ValueError(f"net.poly_cost[{idx}]: cp1_eur_per_mw must be finite, got {cp1}")
        cost_of[key] = cp1
    pwl = {(str(row["et"]), _pp_id(row["element"])) for _, row in _pp_rows(net, "pwl_cost")}

    # Generators: ext_grid, then gen, then sgen, each in index order.
    gens: list[tuple[int, float, float, tuple[str, Hashable]]] = []
    for table in ("ext_grid", "gen", "sgen"):
        for idx, row in _pp_rows(net, table):
            if not _truthy(row["in_service"], True):
                skipped.append((table, idx, "out of service"))
                continue
            if row["bus"] not in in_bus:
                skipped.append((table, idx, "at an out-of-service bus"))
                continue
            controllable = table == "ext_grid" or _truthy(
                _pp_cell(row, "controllable"), table == "gen"
            )
            if controllable:
                cap = _pp_cell(row, "max_p_mw")
                if not _finite(cap):
                    raise ValueError(
                        f"net.{table}[{idx}]: a controllable unit needs a finite max_p_mw "
                        f"(its capacity), got {cap}; set net.{table}.max_p_mw"
                    )
                cap = float(cap)
            else:
                scaling = _pp_cell(row, "scaling", 1.0)
                scaling = 1.0 if _is_missing(scaling) else float(scaling)
                cap = float(row["p_mw"]) * scaling
            if not cap > 0:
                skipped.append((table, idx, f"no capacity ({cap} MW)"))
                continue
            if (table, _pp_id(idx)) in pwl:
                raise ValueError(
                    f"net.{table}[{idx}]: piecewise-linear costs (net.pwl_cost) are not "
                    "supported; give it a net.poly_cost row"
                )
            cost = cost_of.get((table, _pp_id(idx)), 0.0)
            gens.append((node0[row["bus"]], cap, cost, (table, idx)))

    # Loads.
    load_at = [0.0] * len(group_list)
    for idx, row in _pp_rows(net, "load"):
        if not _truthy(row["in_service"], True):
            skipped.append(("load", idx, "out of service"))
            continue
        if row["bus"] not in in_bus:
            skipped.append(("load", idx, "at an out-of-service bus"))
            continue
        if _truthy(_pp_cell(row, "controllable"), False):
            raise ValueError(
                f"net.load[{idx}]: controllable (flexible) loads are not supported; set "
                "net.load.controllable = False to import it as fixed demand"
            )
        scaling = _pp_cell(row, "scaling", 1.0)
        scaling = 1.0 if _is_missing(scaling) else float(scaling)
        p = float(row["p_mw"]) * scaling
        if not _finite(p):
            raise ValueError(f"net.load[{idx}]: p_mw must be finite, got {row['p_mw']}")
        load_at[node0[row["bus"]]] += p

    # Shunts: their active power at 1 pu voltage is a load (as in pandapower's
    # DC model, which puts the shunt conductance at 1 pu into the bus balance).
    for idx, row in _pp_rows(net, "shunt"):
        if not _truthy(row["in_service"], True) or row["bus"] not in in_bus:
            continue
        p_mw = float(row["p_mw"])
        if p_mw == 0.0:
            continue  # reactive only
        if _truthy(_pp_cell(row, "step_dependency_table"), False):
            raise ValueError(
                f"net.shunt[{idx}]: shunts with a step characteristic table are not supported"
            )
        step = _pp_cell(row, "step", 1)
        step = 1.0 if _is_missing(step) else float(step)
        vn = _pp_cell(row, "vn_kv")
        v_ratio = 1.0 if _is_missing(vn) else (vn_kv[row["bus"]] / float(vn)) ** 2
        p = p_mw * step * v_ratio
        if not _finite(p):
            raise ValueError(f"net.shunt[{idx}]: p_mw must be finite, got {row['p_mw']}")
        load_at[node0[row["bus"]]] += p

    active = [False] * len(group_list)
    for z, _, _, _ in gens:
        active[z] = True
    for z, p in enumerate(load_at):
        if p != 0.0:
            active[z] = True
    names0 = {idx: row["name"] for idx, row in _pp_rows(net, "bus")}

    def describe(z: int) -> str:
        return f"net.bus[{group_list[z][0]}] (name {names0.get(group_list[z][0])!r})"

    kept = _keep_one_island(
        len(group_list), [(a, b) for a, b, _, _, _ in branches], active, describe
    )
    for z in sorted(set(range(len(group_list))) - set(kept)):
        for bus in group_list[z]:
            skipped.append(("bus", bus, "an island without load or generation"))
    renum = {z: i for i, z in enumerate(kept)}
    groups_kept = [group_list[z] for z in kept]

    node_load = np.array([load_at[z] for z in kept], dtype=float)
    for i, p in enumerate(node_load):
        if p < 0:
            raise ValueError(
                f"net.bus[{groups_kept[i][0]}]: its loads sum to {p} MW < 0 (negative "
                "demand is not supported; model it as a generator)"
            )
    total = float(np.sum(node_load))
    if not total > 0:
        raise ValueError("the net has no load (net.load sums to 0 MW)")

    kwargs: dict[str, Any] = {
        "capacities": [cap for _, cap, _, _ in gens],
        "costs": [cost for _, _, cost, _ in gens],
        "demand": [total * float(m) for m in mult],
        "network": network,
        "node_names": _node_names(groups_kept, names0, "bus_"),
        "nodes": [renum[z] for z, _, _, _ in gens],
        "lines": [
            (renum[a], renum[b], float(cap), float(x)) for a, b, cap, x, _ in branches if a in renum
        ],
        "demand_shares": [float(p / total) for p in node_load],
    }
    if not kwargs["capacities"]:
        raise ValueError("the net has no generator with capacity (ext_grid, gen, sgen)")
    return GridImport(
        kwargs=kwargs,
        buses=groups_kept,
        generators=[src for _, _, _, src in gens],
        lines=[src for a, _, _, _, src in branches if a in renum],
        skipped=skipped,
    )


def from_pandapower(net: Any, *, demand: Any = None, network: str = "dc", **overrides: Any) -> Any:
    """A networked ``pm.Scenario`` from a pandapower net (docs/grids.md).

    One node per in-service bus (buses fused by closed bus-bus switches share
    a node), one generator per in-service ext_grid, gen and sgen with capacity
    (cost: ``cp1_eur_per_mw`` of ``net.poly_cost``, 0 without a row), one line
    per in-service line and two-winding transformer (reactance in per unit on
    ``net.sn_mva``). The hourly total demand is the load snapshot's total times
    ``demand`` (a (T,) array of multipliers; default 24 hours of 1.0), shared
    between nodes as in the snapshot. ``overrides`` go to ``pm.Scenario`` and
    win over the imported values (e.g. ``max_bid_delta``, ``demand_noise``,
    ``costs``).
    """
    return extract_pandapower(net, demand=demand, network=network).scenario(**overrides)


# ---------------------------------------------------------------------------
# PyPSA


def _ps_series(network: Any, component: str, attr: str, snapshots: Any) -> Any:
    """(T, n) DataFrame of a component attribute: the static value, overridden
    column by column by the time series where one exists."""
    pd = importlib.import_module("pandas")
    static = getattr(network, component)
    frame = pd.DataFrame(
        np.tile(static[attr].to_numpy(dtype=float), (len(snapshots), 1)),
        index=snapshots,
        columns=static.index,
    )
    series = getattr(network, f"{component}_t")
    dyn = series[attr] if attr in series else None
    if dyn is not None and len(dyn.columns):
        cols = [c for c in dyn.columns if c in frame.columns]
        frame.loc[:, cols] = dyn.loc[snapshots, cols].to_numpy(dtype=float)
    return frame


def _ps_active(df: Any) -> Any:
    if "active" in df.columns:
        return df[df["active"].astype(bool)]
    return df


def extract_pypsa(network: Any, *, snapshots: Any = None, network_model: str = "dc") -> GridImport:
    """Convert a PyPSA network to ``pm.Scenario`` keyword arguments (see
    ``from_pypsa``; the rules are in docs/grids.md). ``network_model`` is the
    Scenario's ``network`` ("dc" by default)."""
    _require("pypsa", "extract_pypsa")
    _check_network(network_model)
    n = network
    if getattr(n, "has_scenarios", False):
        raise ValueError("stochastic PyPSA networks (with scenarios) are not supported")
    snaps = n.snapshots if snapshots is None else n.snapshots[n.snapshots.isin(snapshots)]
    if snapshots is not None and len(snaps) != len(list(snapshots)):
        raise ValueError("snapshots: each must be one of network.snapshots, given once")
    if len(snaps) == 0:
        raise ValueError("snapshots: the network has no snapshots to import")
    skipped: list[tuple[str, Hashable, str]] = []

    for comp, what in (
        ("links", "links (controllable transfers such as HVDC; the DC model has no such branch)"),
        ("storage_units", "storage units (use pm.Storage)"),
        ("stores", "stores"),
    ):
        df = _ps_active(getattr(n, comp))
        if len(df):
            raise ValueError(
                f"network.{comp}[{df.index[0]!r}]: {what} are not supported by the import; "
                "remove them or set active=False"
            )
    shunts = _ps_active(n.shunt_impedances)
    if len(shunts) and np.any(shunts["g"].to_numpy(dtype=float) != 0.0):
        bad = shunts.index[shunts["g"].to_numpy(dtype=float) != 0.0][0]
        raise ValueError(
            f"network.shunt_impedances[{bad!r}]: a shunt with conductance g != 0 draws "
            "active power and is not supported"
        )

    # Line and transformer types set x from the type: compute it on a copy.
    typed = any(
        len(df) and "type" in df.columns and bool((df["type"].astype(str) != "").any())
        for df in (n.lines, n.transformers)
    )
    if typed:
        n = n.copy()
        n.calculate_dependent_values()

    buses = list(n.buses.index)
    node0 = {b: z for z, b in enumerate(buses)}
    carrier = n.buses["carrier"].astype(str) if "carrier" in n.buses.columns else None
    v_nom = n.buses["v_nom"].to_numpy(dtype=float)

    branches: list[tuple[int, int, float, float, tuple[str, Hashable]]] = []
    for comp, table in (("lines", "Line"), ("transformers", "Transformer")):
        df = getattr(n, comp)
        dyn = getattr(n, f"{comp}_t")
        if "s_max_pu" in dyn and len(dyn["s_max_pu"].columns):
            col = dyn["s_max_pu"].columns[0]
            raise ValueError(
                f"network.{comp}_t.s_max_pu[{col!r}]: time-varying line limits are not supported"
            )
        for name, row in df.iterrows():
            if "active" in row.index and not bool(row["active"]):
                skipped.append((table, name, "inactive"))
                continue
            a, b = node0[row["bus0"]], node0[row["bus1"]]
            if carrier is not None and "DC" in (carrier.iloc[a], carrier.iloc[b]):
                raise ValueError(
                    f"network.{comp}[{name!r}]: lines between DC buses are not supported"
                )
            if bool(row.get("s_nom_extendable", False)):
                raise ValueError(
                    f"network.{comp}[{name!r}]: s_nom_extendable branches are not supported "
                    "(no investment here); fix s_nom"
                )
            if comp == "lines":
                x_pu = float(row["x"]) / v_nom[a] ** 2
            else:
                shift = float(row.get("phase_shift", 0.0) or 0.0)
                if shift != 0.0:
                    raise ValueError(
                        f"network.transformers[{name!r}]: phase shifts are not supported"
                    )
                tap = float(row.get("tap_ratio", 1.0) or 1.0)
                s_nom = float(row["s_nom"])
                x_pu = float(row["x"]) / s_nom * tap if s_nom > 0 else math.nan
            if not (_finite(x_pu) and x_pu > 0):
                raise ValueError(
                    f"network.{comp}[{name!r}]: the DC model needs a reactance x > 0 "
                    f"(and s_nom > 0 for a transformer), got x={row['x']}"
                )
            cap = float(row["s_nom"]) * float(row.get("s_max_pu", 1.0))
            if not cap > 0:
                raise ValueError(
                    f"network.{comp}[{name!r}]: s_nom * s_max_pu must be > 0 (a limit of "
                    f"0 MW blocks the branch), got {cap}"
                )
            if a == b:
                skipped.append((table, name, "both ends at one bus"))
                continue
            branches.append((a, b, cap, x_pu, (table, name)))

    # Generators.
    gen_df = n.generators
    p_max = _ps_series(n, "generators", "p_max_pu", snaps)
    mcost = _ps_series(n, "generators", "marginal_cost", snaps)
    gens: list[tuple[int, float, float, np.ndarray, tuple[str, Hashable]]] = []
    for name, row in gen_df.iterrows():
        if "active" in row.index and not bool(row["active"]):
            skipped.append(("Generator", name, "inactive"))
            continue
        if bool(row.get("p_nom_extendable", False)):
            raise ValueError(
                f"network.generators[{name!r}]: p_nom_extendable generators are not "
                "supported (no investment here); fix p_nom"
            )
        if float(row.get("sign", 1.0)) != 1.0:
            raise ValueError(f"network.generators[{name!r}]: sign must be 1")
        costs = mcost[name].to_numpy(dtype=float)
        if not np.all(costs == costs[0]) or not _finite(costs[0]):
            raise ValueError(
                f"network.generators[{name!r}]: the marginal cost must be finite and the "
                "same in every imported snapshot (a scenario's costs are fixed)"
            )
        pmax = p_max[name].to_numpy(dtype=float)
        if not np.all(np.isfinite(pmax)) or np.any(pmax < 0) or np.any(pmax > 1):
            raise ValueError(
                f"network.generators[{name!r}]: p_max_pu must be in [0, 1] in every "
                "imported snapshot"
            )
        p_nom = float(row["p_nom"])
        if not _finite(p_nom):
            raise ValueError(f"network.generators[{name!r}]: p_nom must be finite, got {p_nom}")
        if not p_nom > 0 or not np.any(pmax > 0):
            skipped.append(("Generator", name, f"no capacity (p_nom={p_nom})"))
            continue
        gens.append((node0[row["bus"]], p_nom, float(costs[0]), pmax, ("Generator", name)))

    # Loads.
    ld = _ps_active(n.loads)
    node_demand = np.zeros((len(snaps), len(buses)))
    if len(ld):
        p_set = _ps_series(n, "loads", "p_set", snaps)
        for name, row in ld.iterrows():
            if float(row.get("sign", -1.0)) != -1.0:
                raise ValueError(f"network.loads[{name!r}]: sign must be -1 (a consumer)")
            col = p_set[name].to_numpy(dtype=float)
            if not np.all(np.isfinite(col)):
                raise ValueError(f"network.loads[{name!r}]: p_set must be finite")
            node_demand[:, node0[row["bus"]]] += col

    active = [False] * len(buses)
    for z, *_ in gens:
        active[z] = True
    for z in range(len(buses)):
        if np.any(node_demand[:, z] != 0.0):
            active[z] = True
    kept = _keep_one_island(
        len(buses),
        [(a, b) for a, b, *_ in branches],
        active,
        lambda z: f"bus {buses[z]!r}",
    )
    for z in sorted(set(range(len(buses))) - set(kept)):
        skipped.append(("Bus", buses[z], "an island without load or generation"))
    renum = {z: i for i, z in enumerate(kept)}
    node_demand = node_demand[:, kept]
    if np.any(node_demand < 0):
        t, z = map(int, np.argwhere(node_demand < 0)[0])
        raise ValueError(
            f"bus {buses[kept[z]]!r}: its loads sum to {node_demand[t, z]} MW < 0 at "
            f"snapshot {snaps[t]!r} (negative demand is not supported)"
        )
    total = node_demand.sum(axis=1)
    if not np.all(total > 0):
        t = int(np.argmin(total > 0))
        raise ValueError(f"snapshot {snaps[t]!r}: the loads sum to 0 MW")
    if not gens:
        raise ValueError("the network has no generator with capacity")

    caps = np.array([g[1] for g in gens])
    pmax = np.stack([g[3] for g in gens], axis=1)  # (T, N)
    kwargs: dict[str, Any] = {
        "capacities": None,
        "costs": [g[2] for g in gens],
        "demand": [float(d) for d in total],
        "network": network_model,
        "node_names": [str(buses[z]) for z in kept],
        "nodes": [renum[g[0]] for g in gens],
        "lines": [
            (renum[a], renum[b], float(cap), float(x)) for a, b, cap, x, _ in branches if a in renum
        ],
        "demand_shares": (node_demand / total[:, None]).tolist(),
    }
    if np.all(pmax == pmax[0]):
        # Static availability: the capacity is p_nom * p_max_pu.
        kwargs["capacities"] = [float(c) for c in caps * pmax[0]]
        dropped = [i for i, c in enumerate(kwargs["capacities"]) if not c > 0]
        if dropped:  # pragma: no cover - p_max_pu == 0 everywhere was skipped above
            raise AssertionError(dropped)
    else:
        kwargs["capacities"] = [float(c) for c in caps]
        kwargs["availability"] = pmax.tolist()
    return GridImport(
        kwargs=kwargs,
        buses=[[buses[z]] for z in kept],
        generators=[g[4] for g in gens],
        lines=[src for a, _, _, _, src in branches if a in renum],
        skipped=skipped,
    )


def from_pypsa(network: Any, /, *, snapshots: Any = None, **overrides: Any) -> Any:
    """A networked ``pm.Scenario`` from a PyPSA network (docs/grids.md).

    One node per bus, one generator per active generator (capacity
    ``p_nom * p_max_pu``, hourly ``p_max_pu`` as ``availability``; cost
    ``marginal_cost``), each snapshot one hour of demand (the loads' ``p_set``:
    hourly totals and (T, Z) shares), lines (``x`` in ohm on ``v_nom``) and
    transformers (``x`` in per unit of ``s_nom``) as lines with reactances on a
    1 MVA base and limits ``s_nom * s_max_pu``. Links, storage units and stores
    are refused. ``snapshots`` picks a subset of ``network.snapshots``;
    ``overrides`` go to ``pm.Scenario`` (``network="transport"`` chooses the
    transport model; the default is ``"dc"``).
    """
    model = overrides.pop("network", "dc")
    return extract_pypsa(network, snapshots=snapshots, network_model=model).scenario(**overrides)
