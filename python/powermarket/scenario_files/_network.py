"""The network of a scenario file: ``[[nodes]]``, ``[[lines]]``, the node of
each agent and demand bid, the demand shares, and where a core error on them
stands in the file."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from powermarket.scenario_files._tables import (
    _AGENT_NODE_FIELD,
    _AGENT_NODE_KEY,
    _DEFAULT_REACTANCE,
    _LINES_FIELD,
    _NAME_KEY,
    _NODE_KEYS,
    _SHARE_KEY,
    LINE_FIELDS,
    NODE_FIELDS,
    _column_list,
    _File,
    _hourly,
    _number,
    _table,
)


def _node_tables(f: _File, value: Any) -> list[dict[str, Any]]:
    """The ``[[nodes]]`` tables, checked: known keys, a unique string name each."""
    if not isinstance(value, list) or not value:
        raise f.error("nodes", "must be one or more [[nodes]] tables", f.line("", "nodes"))
    tables: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for z, table in enumerate(value):
        where = f"nodes[{z}]"
        # (an inline `nodes = [...]` has no header: the line of its key)
        head = f.line("nodes", index=z) or f.line("", "nodes")
        table = _table(f, table, where, NODE_FIELDS, head)
        if _NAME_KEY not in table:
            raise f.error(f"{where}.{_NAME_KEY}", "is missing", f.line("nodes", index=z))
        name, line = table[_NAME_KEY], f.line("nodes", _NAME_KEY, z)
        if not isinstance(name, str):
            raise f.error(f"{where}.{_NAME_KEY}", f"must be a string, got {_kind(name)}", line)
        if not name.strip():
            raise f.error(f"{where}.{_NAME_KEY}", "is empty (node names must not be blank)", line)
        if name in seen:
            raise f.error(
                f"{where}.{_NAME_KEY}",
                f"is also the name of nodes[{seen[name]}]; node names must be unique",
                line,
            )
        seen[name] = z
        tables.append(table)
    return tables


def _kind(value: Any) -> str:
    """A TOML value's kind for a message (the value itself is not quoted)."""
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a float",
        str: "a string",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _name_list(names: Sequence[str]) -> str:
    """Node names for a message, quoted, cut short if there are many."""
    return _column_list([repr(n) for n in names])


def _node(f: _File, value: Any, names: Sequence[str], field: str, line: int | None) -> int:
    """A node given by its name or its index (an int) -> its index."""
    if not names:
        raise f.error(
            field,
            "names a node, but the file has no [[nodes]] tables (give one [[nodes]] table "
            "per node, with its `name`)",
            line,
        )
    if isinstance(value, str):
        try:
            return list(names).index(value)
        except ValueError:
            # The unknown name is not quoted: the message lists the valid ones.
            raise f.error(
                field, f"is not the name of a node; the nodes are: {_name_list(names)}", line
            ) from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise f.error(
            field, f"must be a node name (a string) or index (an int), got {_kind(value)}", line
        )
    if not 0 <= value < len(names):
        raise f.error(
            field,
            f"node index {value} is not in [0, {len(names)}); the nodes are: {_name_list(names)}",
            line,
        )
    return value


def _node_list(
    f: _File, value: Any, names: Sequence[str], field: str, line: int | None
) -> list[int]:
    """An array of nodes (names or indices) -> their indices."""
    if not isinstance(value, list):
        raise f.error(field, f"must be an array of node names or indices, got {_kind(value)}", line)
    return [_node(f, v, names, f"{field}[{k}]", line) for k, v in enumerate(value)]


def _lines(
    f: _File, value: Any, names: Sequence[str], network: Any
) -> list[tuple[float, float, float, float]]:
    """The ``[[lines]]`` tables as ``(from, to, capacity, reactance)`` rows.

    ``capacity`` is required (``inf``: no limit); ``reactance`` is required
    under ``network = "dc"`` and 1 when missing otherwise (where it is unused)."""
    if not isinstance(value, list):
        raise f.error("lines", "must be [[lines]] tables", f.line("", "lines"))
    rows = []
    for k, table in enumerate(value):
        where, head = f"lines[{k}]", f.line("lines", index=k)
        table = _table(f, table, where, LINE_FIELDS, head)
        for key in LINE_FIELDS:
            if key in table:
                continue
            if key == "capacity":
                raise f.error(f"{where}.{key}", "is missing (MW; `inf` for no limit)", head)
            if key != "reactance":
                raise f.error(f"{where}.{key}", "is missing (a node name or index)", head)
            if network == "dc":
                message = 'is missing; network = "dc" needs the reactance of every line'
                raise f.error(f"{where}.{key}", message, head)
        ends = [
            float(_node(f, table[key], names, f"{where}.{key}", f.line("lines", key, k)))
            for key in ("from", "to")
        ]
        cap = _number(f, table["capacity"], f"{where}.capacity", f.line("lines", "capacity", k))
        x = _DEFAULT_REACTANCE
        if "reactance" in table:
            line = f.line("lines", "reactance", k)
            x = _number(f, table["reactance"], f"{where}.reactance", line)
        rows.append((ends[0], ends[1], cap, x))
    return rows


def _shares(
    f: _File, tables: list[dict[str, Any]], hours: int, csv_path: Path | None
) -> tuple[Any, dict[int, tuple[Path | None, list[int] | None]]]:
    """The ``demand_share`` of the ``[[nodes]]`` tables: None (none given), Z
    numbers, or (T, Z) rows; and where node z's per-hour shares came from (the
    CSV and its lines, or (None, None) for an inline array)."""
    given = [_SHARE_KEY in t for t in tables]
    if not any(given):
        if len(tables) > 1:
            raise f.error(
                f"nodes[0].{_SHARE_KEY}",
                f"is missing; a market of {len(tables)} nodes needs each node's share of the "
                "demand (a number, or one per hour)",
                f.line("nodes", index=0),
            )
        return None, {}
    if not all(given):
        z, other = given.index(False), given.index(True)
        raise f.error(
            f"nodes[{z}].{_SHARE_KEY}",
            f"is missing; nodes[{other}] has one, and every node needs one (or none does)",
            f.line("nodes", index=z),
        )
    columns: list[Any] = []
    src: dict[int, tuple[Path | None, list[int] | None]] = {}
    per_hour = None
    for z, table in enumerate(tables):
        field, line = f"nodes[{z}].{_SHARE_KEY}", f.line("nodes", _SHARE_KEY, z)
        v = table[_SHARE_KEY]
        values: list[float] | float
        series = _hourly(f, v, field, line, csv_path)
        if series is not None:
            values, src[z] = series
        elif isinstance(v, int | float) and not isinstance(v, bool):
            values = _number(f, v, field, line)
        else:
            raise f.error(
                field,
                "must be a number (the node's share of every hour), an array of one share "
                f"per hour or the name of a CSV column, got {_kind(v)}",
                line,
            )
        hourly = isinstance(values, list)
        if per_hour is None:
            per_hour = hourly
        elif hourly != per_hour:
            forms = ("a number", "per hour")
            raise f.error(
                field,
                f"is {forms[hourly]} but nodes[0].{_SHARE_KEY} is {forms[per_hour]}; every "
                "node's share must have the same form",
                line,
            )
        if isinstance(values, list) and len(values) != hours:
            raise f.error(field, f"has {len(values)} hours but the demand has {hours}", line)
        columns.append(values)
    if per_hour:
        return [[c[h] for c in columns] for h in range(hours)], src
    return columns, src


# Core fields of the network, located by _locate_network.
_NETWORK_FIELDS = (
    _NODE_KEYS[_NAME_KEY],
    _NODE_KEYS[_SHARE_KEY],
    _AGENT_NODE_FIELD,
    _LINES_FIELD,
)
_LINE_ERROR = re.compile(r"^lines\[(\d+)\] (\w+): (.*)$", re.S)
_NODE_ERROR = re.compile(r"^nodes? (?:\d+ and )?(\d+)\b")


def _locate_network(
    f: _File,
    field: str,
    detail: str,
    agent: int | None,
    hour: int | None,
    generators: int | None,
    share_src: dict[int, tuple[Path | None, list[int] | None]] | None,
) -> ValueError:
    """A core error about the network, at its ``[[nodes]]``, ``[[lines]]`` or
    agent table (the core names a line or node by its index in its message)."""
    if field == _LINES_FIELD:
        if m := _LINE_ERROR.match(detail):
            k, key = int(m.group(1)), m.group(2)
            return f.error(f"lines[{k}].{key}", m.group(3), f.line("lines", key, k))
        return f.error("lines", detail, f.line("lines"))
    if field == _AGENT_NODE_FIELD:
        if agent is not None and generators is not None:
            if agent < generators:
                where, table, i = f"generators[{agent}]", "generators", agent
            else:
                where, table, i = f"storage[{agent - generators}]", "storage", agent - generators
            key = _AGENT_NODE_KEY
            return f.error(f"{where}.{key}", detail, f.line(table, key, i))
        return f.error(f"generators.{_AGENT_NODE_KEY}", detail)
    key = _NAME_KEY if field == _NODE_KEYS[_NAME_KEY] else _SHARE_KEY
    m = _NODE_ERROR.match(detail)
    if key == _NAME_KEY:
        if m:
            z = int(m.group(1))
            return f.error(f"nodes[{z}].{key}", detail, f.line("nodes", key, z))
        return f.error(f"nodes.{key}", detail, f.line("nodes"))
    src = share_src or {}
    if m and ":" in detail:  # "node z: a share must be ..."
        z = int(m.group(1))
        csv_file, rows = src.get(z, (None, None))
        if csv_file is not None and rows is not None and hour is not None:
            return _File(csv_file).error(f"nodes[{z}].{key}", detail, rows[hour])
        name = f"nodes[{z}].{key}" + (f"[{hour}]" if z in src and hour is not None else "")
        return f.error(name, detail, f.line("nodes", key, z))
    # The shares of an hour do not add up to 1: every node's.
    for csv_file, rows in src.values():
        if csv_file is not None and rows is not None and hour is not None:
            return _File(csv_file).error(f"nodes.{key}", detail, rows[hour])
    name = f"nodes.{key}" + (f"[{hour}]" if src and hour is not None else "")
    return f.error(name, detail, f.line("nodes", key, 0))
