"""Networked scenarios from PyPSA networks (rules: ``docs/grids.md``)."""

from __future__ import annotations

import importlib
import math
from collections.abc import Hashable
from typing import Any

import numpy as np

from powermarket.grid._common import GridImport, _check_network, _finite, _keep_one_island, _require


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
