"""Reading a scenario file: ``load``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from powermarket._core import Scenario, ScenarioError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib
from powermarket.scenario_files._network import (
    _NETWORK_FIELDS,
    _lines,
    _locate_network,
    _node,
    _node_list,
    _node_tables,
    _shares,
)
from powermarket.scenario_files._tables import (
    _AGENT_NODE_FIELD,
    _AGENT_NODE_KEY,
    _DEFAULTS,
    _GEN_OPTIONAL,
    _GEN_REQUIRED,
    _LINES_FIELD,
    _MARKET,
    _NAME_KEY,
    _NODE_KEYS,
    _SHARE_KEY,
    _STORAGE_REQUIRED,
    DEMAND_FIELDS,
    GENERATOR_FIELDS,
    MARKET_FIELDS,
    STORAGE_KEYS,
    TOP_FIELDS,
    _csv_path,
    _File,
    _hourly,
    _Lines,
    _number,
    _read_csv,
    _syntax_line,
    _table,
)


def load(path: str | os.PathLike[str], *, allow_outside: bool = False) -> Scenario:
    """Read a scenario file (TOML; the demand inline or in a CSV beside it).

    A CSV it names must be in the file's folder or below it, unless
    ``allow_outside=True`` (for files you trust)."""
    path = Path(path)
    f = _File(path)
    try:
        # utf-8-sig: a byte-order mark at the start is accepted (and dropped).
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise ValueError(f"{path}: cannot read the scenario file: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text (byte {e.start})") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        lineno = _syntax_line(e, text)
        where = f" (line {lineno})" if lineno is not None else ""
        raise ValueError(f"{path}{where}: not valid TOML: {e}") from None
    f.lines = _Lines(text)

    _table(f, doc, "", TOP_FIELDS, None)
    for key in ("generators", "demand"):
        if key not in doc:
            raise f.error(key, "is missing")
    if "description" in doc and not isinstance(doc["description"], str):
        raise f.error("description", "must be a string", f.line("", "description"))

    node_tables = _node_tables(f, doc["nodes"]) if "nodes" in doc else []
    names = [t[_NAME_KEY] for t in node_tables]
    market = _table(f, doc.get("market", {}), "market", MARKET_FIELDS, f.line("market"))
    rules: dict[str, Any] = {}
    for key, value in market.items():
        field, kind = _MARKET[key]
        line = f.line("market", key)
        if kind == "Nodes":
            rules[field] = _node_list(f, value, names, f"market.{key}", line)
        else:
            rules[field] = _market_value(f, key, kind, value, line)
    if names:
        rules[_NODE_KEYS[_NAME_KEY]] = names

    gens = doc["generators"]
    if not isinstance(gens, list) or not gens:
        raise f.error(
            "generators", "must be one or more [[generators]] tables", f.line("", "generators")
        )
    fleet: dict[str, list[float]] = {key: [] for key in _GEN_REQUIRED}
    ramps: dict[str, list[float | None]] = {key: [] for key in _GEN_OPTIONAL}
    # The node of each agent (generators, then storage units); None: not given.
    agent_nodes: list[int | None] = []
    for i, g in enumerate(gens):
        name = f"generators[{i}]"
        g = _table(f, g, name, GENERATOR_FIELDS, f.line("generators", index=i))
        if _AGENT_NODE_KEY in g:
            line = f.line("generators", _AGENT_NODE_KEY, i)
            field = f"{name}.{_AGENT_NODE_KEY}"
            agent_nodes.append(_node(f, g[_AGENT_NODE_KEY], names, field, line))
        else:
            agent_nodes.append(None)
        for key, out in fleet.items():
            if key not in g:
                raise f.error(f"{name}.{key}", "is missing", f.line("generators", index=i))
            out.append(_number(f, g[key], f"{name}.{key}", f.line("generators", key, i)))
        for key, values in ramps.items():
            line = f.line("generators", key, i)
            values.append(_number(f, g[key], f"{name}.{key}", line) if key in g else None)
        if "name" in g and not isinstance(g["name"], str):
            raise f.error(f"{name}.name", "must be a string", f.line("generators", "name", i))

    dem = _table(f, doc["demand"], "demand", DEMAND_FIELDS, f.line("demand"))
    csv_path, csv_lines = None, None
    if ("values" in dem) == ("csv" in dem):
        raise f.error("demand", "needs exactly one of `values` or `csv`", f.line("demand"))
    if "values" in dem:
        if "column" in dem:
            raise f.error("demand.column", "only goes with `csv`", f.line("demand", "column"))
        vals = dem["values"]
        line = f.line("demand", "values")
        if not isinstance(vals, list) or not vals:
            raise f.error("demand.values", "must be a non-empty array of numbers (MW)", line)
        demand = [_number(f, v, f"demand.values[{h}]", line) for h, v in enumerate(vals)]
    else:
        name = dem["csv"]
        column = dem.get("column", "demand")
        if not isinstance(name, str) or not name:
            raise f.error("demand.csv", "must be a file name", f.line("demand", "csv"))
        if not isinstance(column, str):
            raise f.error("demand.column", "must be a string", f.line("demand", "column"))
        csv_path = _csv_path(f, path.parent, name, allow_outside, f.line("demand", "csv"))
        demand, csv_lines = _read_csv(f, csv_path, column)

    extra: dict[str, Any] = {}
    if "storage" in doc:
        extra["storage"], unit_nodes = _storage_units(f, doc["storage"], names)
        agent_nodes += unit_nodes
    if any(z is not None for z in agent_nodes):
        extra[_AGENT_NODE_FIELD] = [0 if z is None else z for z in agent_nodes]
    if "lines" in doc:
        network = market.get("network", _DEFAULTS["network"])
        extra[_LINES_FIELD] = _lines(f, doc["lines"], names, network)
    shares, share_src = _shares(f, node_tables, len(demand), csv_path)
    if shares is not None:
        extra[_NODE_KEYS[_SHARE_KEY]] = shares
    for key, (field, missing) in _GEN_OPTIONAL.items():
        if any(v is not None for v in ramps[key]):
            extra[field] = [missing if v is None else v for v in ramps[key]]
    lf_lines: dict[int, tuple[Path | None, list[int] | None]] = {}
    columns = []
    for i, g in enumerate(gens):
        if "availability" not in g:
            columns.append(None)
            continue
        field, line = f"generators[{i}].availability", f.line("generators", "availability", i)
        series = _hourly(f, g["availability"], field, line, csv_path)
        if series is not None:
            values, lf_lines[i] = series
        else:
            raise f.error(
                field, "must be an array of load factors or the name of a CSV column", line
            )
        if len(values) != len(demand):
            raise f.error(field, f"has {len(values)} hours but the demand has {len(demand)}", line)
        columns.append(values)
    if any(c is not None for c in columns):
        extra["availability"] = [
            [1.0 if c is None else c[h] for c in columns] for h in range(len(demand))
        ]
    try:
        fleet_fields = {_GEN_REQUIRED[key]: values for key, values in fleet.items()}
        return Scenario(**fleet_fields, demand=demand, **rules, **extra)  # type: ignore[arg-type]
    except ValueError as e:
        raise _locate(f, e, csv_path, csv_lines, lf_lines, len(gens), share_src) from None


def _locate(
    f: _File,
    e: ValueError,
    csv_path: Path | None,
    csv_lines: list[int] | None,
    lf_lines: dict[int, tuple[Path | None, list[int] | None]] | None = None,
    generators: int | None = None,
    share_src: dict[int, tuple[Path | None, list[int] | None]] | None = None,
) -> ValueError:
    """Map a core validation error to the file's field and line, from the
    place the error carries (``ScenarioError.field``, ``.agent``, ``.hour``)."""
    if not isinstance(e, ScenarioError):
        return ValueError(f"{f.path}: {e}")
    field, detail, gen, hour = e.field, e.reason, e.agent, e.hour
    if field in ("capacities", "costs"):
        key = "capacity" if field == "capacities" else "cost"
        if gen is not None:
            return f.error(f"generators[{gen}].{key}", detail, f.line("generators", key, gen))
        return f.error(f"generators.{key}", detail)
    if field == "demand":
        if csv_path is not None and csv_lines is not None:
            line = csv_lines[hour] if hour is not None else None
            return _File(csv_path).error("demand", detail, line)
        name = f"demand.values[{hour}]" if hour is not None else "demand.values"
        return f.error(name, detail, f.line("demand", "values"))
    market_keys = {name: key for key, (name, _) in _MARKET.items()}
    if field in market_keys:
        key = market_keys[field]
        return f.error(f"market.{key}", detail, f.line("market", key))
    ramp_keys = {v[0]: k for k, v in _GEN_OPTIONAL.items()}
    if field in ramp_keys and gen is not None:
        key = ramp_keys[field]
        return f.error(f"generators[{gen}].{key}", detail, f.line("generators", key, gen))
    if field == "availability" and gen is not None and hour is not None and lf_lines:
        where, rows = lf_lines.get(gen, (None, None))
        if where is not None and rows is not None:
            return _File(where).error(f"generators[{gen}].availability", detail, rows[hour])
        line = f.line("generators", "availability", gen)
        return f.error(f"generators[{gen}].availability[{hour}]", detail, line)
    if field in _NETWORK_FIELDS:
        return _locate_network(f, field, detail, gen, hour, generators, share_src)
    if field.startswith("storage") and gen is not None and generators is not None:
        # `agent` is on the agent axis: storage unit u is agent N + u.
        u, key = gen - generators, field.partition(".")[2]
        name = f"storage[{u}].{key}" if key else f"storage[{u}]"
        return f.error(name, detail, f.line("storage", key, u))
    return f.error(field, detail)


def _storage_units(
    f: _File, value: Any, names: list[str]
) -> tuple[list[dict[str, Any]], list[int | None]]:
    """The ``[[storage]]`` tables as dicts of ``powermarket.Storage`` fields,
    and the node of each unit (None where the table has no ``node``)."""
    if not isinstance(value, list):
        raise f.error("storage", "must be [[storage]] tables", f.line("", "storage"))
    units: list[dict[str, Any]] = []
    nodes: list[int | None] = []
    for u, table in enumerate(value):
        where = f"storage[{u}]"
        table = _table(f, table, where, STORAGE_KEYS, f.line("storage", index=u))
        for key in _STORAGE_REQUIRED:
            if key not in table:
                raise f.error(f"{where}.{key}", "is missing", f.line("storage", index=u))
        unit: dict[str, Any] = {}
        nodes.append(None)
        for key, v in table.items():
            line = f.line("storage", key, u)
            if key == _AGENT_NODE_KEY:
                nodes[u] = _node(f, v, names, f"{where}.{key}", line)
            elif key == "name":
                if not isinstance(v, str):
                    raise f.error(f"{where}.name", "must be a string", line)
                unit[key] = v
            else:
                unit[key] = _number(f, v, f"{where}.{key}", line)
        units.append(unit)
    return units, nodes


def _market_value(f: _File, key: str, kind: str, value: Any, line: int | None) -> Any:
    """A ``[market]`` value of the field table's ``kind``, checked as TOML gives it."""
    where = f"market.{key}"
    if kind == "Count":
        if isinstance(value, bool) or not isinstance(value, int):
            raise f.error(where, f"must be an int >= 1, got {value!r}", line)
        return value
    if kind == "Name":
        if not isinstance(value, str):
            raise f.error(where, f"must be a string, got {value!r}", line)
        return value
    if kind == "Pairs":
        if not isinstance(value, list):
            raise f.error(where, "must be an array of [price, share]", line)
        pairs = []
        for k, pair in enumerate(value):
            field = f"{where}[{k}]"
            if not (isinstance(pair, list) and len(pair) == 2):
                raise f.error(field, f"must be a pair [price, share], got {pair!r}", line)
            pairs.append(tuple(_number(f, x, field, line) for x in pair))
        return pairs
    return _number(f, value, where, line)
