"""What both grid importers share: the import result (``GridImport``), the
lazy import of the optional libraries, islands, node names and argument checks."""

from __future__ import annotations

import importlib
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

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
