"""Networked scenarios from pandapower nets (rules: ``docs/grids.md``)."""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Any

import numpy as np

from powermarket.grid._common import (
    GridImport,
    _check_network,
    _finite,
    _is_missing,
    _keep_one_island,
    _multipliers,
    _node_names,
    _require,
    _truthy,
    _Union,
)

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
