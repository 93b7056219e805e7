"""Scenario files: a market in TOML, its hourly series inline or in a CSV beside it.

A file holds the market rules, the fleet table and the demand series::

    description = "optional text"

    [market]                  # every key optional; defaults as pm.Scenario(...)
    max_bid_delta = 50.0      # €/MWh
    bid_penalty = 0.01
    lol_penalty = 1.0
    demand_noise = 0.05
    shortage_price = 3000.0   # €/MWh; omit it for "the highest offer price"
    availability_noise = 0.0  # per-episode AR(1) perturbation of load factors
    segments = 1              # offer blocks per generator (an int)
    mechanism = "uniform"     # or "pay_as_bid"
    price_action = "tanh"     # or "linear": a1 in [-1, 1], bid = cost + a1 * max_bid_delta
    price_cap = 4000.0        # €/MWh; omit for no cap
    price_floor = -500.0      # €/MWh; omit for no floor
    demand_bids = [[45.0, 0.1], [30.0, 0.05]]  # [price, share of demand] pairs
    network = "dc"            # or "transport", or "copper" (the default: one price)
    demand_bid_nodes = ["north", "south"]  # the node of each demand bid (missing: node 0)

    [[nodes]]                 # optional: one table per node, in node order
    name = "north"            # unique, not blank
    demand_share = 0.4        # share of each hour's demand, or one per hour:
    # demand_share = [0.4, 0.45, 0.5], or the name of a column of the demand CSV

    [[lines]]                 # one table per line between two nodes
    from = "north"            # a node's name or index
    to = "south"
    capacity = 40.0           # MW, either direction; `inf` for no limit
    reactance = 0.1           # required with network = "dc"; else missing: 1 (unused)

    [[generators]]            # one table per generator, in agent order
    name = "nuclear"          # optional, for the reader
    node = "north"            # optional: its node's name or index (missing: node 0)
    capacity = 40.0           # MW
    cost = 10.0               # €/MWh
    ramp_limit = 0.25         # optional: share of capacity per hour (missing: 1, no limit)
    ramp_cost = 1.0           # optional: € per MW of change (missing: 0)
    availability = [1.0, 0.9, 0.8]  # optional: load factors per hour (missing: all 1)
    # ... or the name of a column of the demand CSV: availability = "wind_lf"

    [demand]                  # MW per hour: inline ...
    values = [60.0, 55.0, 70.0]
    # ... or in a CSV beside this file (header row, one row per hour):
    # csv = "week.csv"
    # column = "demand"       # optional, default "demand"

:func:`load` reads one (``pm.load_scenario`` / ``pm.Scenario.load``) and
:func:`save` writes one (``pm.save_scenario`` / ``scenario.save``). Floats are
written with ``repr``, so ``load(save(s)) == s`` exactly. A malformed file is a
``ValueError`` naming the file, the field and, where there is one, the line.

A CSV named by the file must lie in the file's folder or below it (after
resolving ``..`` and symbolic links); ``load(path, allow_outside=True)`` lifts
this for files the caller trusts. Error messages quote a CSV's column names,
never its other contents. Both files may start with a UTF-8 byte-order mark.

Networks: without ``[[nodes]]`` the market has one node, and a ``node`` key (or
``[[lines]]``, or ``demand_bid_nodes``) is an error. With ``[[nodes]]``, every
node has a ``demand_share`` (a single node may leave it out), all as numbers or
all per hour. ``save`` writes nodes by name; a ``[[storage]]`` table takes
``node`` too.
"""

from __future__ import annotations

import csv as _csv
import math
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from powermarket._core import SCENARIO_FIELDS, STORAGE_FIELDS, Scenario, ScenarioError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["load", "save"]

# Every key, its Scenario field and its kind come from the core's field table
# (``_core.SCENARIO_FIELDS``: name, kind, section, key, missing): a new field
# of the core is read and written here without a change to this module.
_MARKET = {key: (name, kind) for name, kind, sec, key, _ in SCENARIO_FIELDS if sec == "market"}
MARKET_FIELDS = tuple(_MARKET)
TOP_FIELDS = ("description", "market", "nodes", "lines", "generators", "demand", "storage")
# The network: a ``[[nodes]]`` table per node (its name and demand share), a
# ``[[lines]]`` table per line, and the ``node`` key of each agent's table.
_NODE_KEYS = {key: name for name, _, sec, key, _ in SCENARIO_FIELDS if sec == "nodes"}
_NAME_KEY = next(key for key, name in _NODE_KEYS.items() if name == "node_names")
_SHARE_KEY = next(key for key, name in _NODE_KEYS.items() if name == "demand_shares")
NODE_FIELDS = tuple(_NODE_KEYS)
(_AGENT_NODE_KEY, _AGENT_NODE_FIELD) = next(
    (key, name) for name, _, sec, key, _ in SCENARIO_FIELDS if sec == "agents"
)
_LINES_FIELD = next(name for name, _, sec, _, _ in SCENARIO_FIELDS if sec == "lines")
# The columns of a row of ``Scenario.lines``, in order; a missing reactance is
# 1 except under ``network = "dc"``, which needs one per line.
LINE_FIELDS = ("from", "to", "capacity", "reactance")
_DEFAULT_REACTANCE = 1.0
# The keys of a ``[[storage]]`` table: the core's storage fields, a name and a node.
STORAGE_KEYS = ("name",) + tuple(name for name, _, _ in STORAGE_FIELDS) + (_AGENT_NODE_KEY,)
_STORAGE_REQUIRED = tuple(
    name for name, default, optional in STORAGE_FIELDS if default is None and not optional
)
# Per-generator keys that every generator must have -> Scenario field.
_GEN_REQUIRED = {
    key: name
    for name, kind, sec, key, missing in SCENARIO_FIELDS
    if sec == "generators" and missing is None
}
# Optional per-generator numbers -> (Scenario field, value when missing). A
# ramp limit of 1 (the whole capacity per hour) is the same as no limit.
_GEN_OPTIONAL = {
    key: (name, missing)
    for name, kind, sec, key, missing in SCENARIO_FIELDS
    if sec == "generators" and kind == "OptPerAgent"
}
GENERATOR_FIELDS = (
    ("name",)
    + tuple(key for _, _, sec, key, _ in SCENARIO_FIELDS if sec == "generators")
    + (_AGENT_NODE_KEY,)
)
# What the defaults are, to write only the market keys that differ.
_DEFAULTS = Scenario([1.0], [0.0], [1.0]).to_dict()
DEMAND_FIELDS = ("values", "csv", "column")

_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.-]+)\s*\]\]?")
_KEY = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=")


class _Lines:
    """Line numbers of the keys of a TOML text: (table, index, key) -> line (1-based).

    Covers the plain layout this module reads and writes (headers ``[t]`` and
    ``[[t]]``, bare keys); anything else gets no line number.
    """

    def __init__(self, text: str) -> None:
        self.at: dict[tuple[str, int, str], int] = {}
        table, index, counts = "", 0, {}
        for no, line in enumerate(text.splitlines(), start=1):
            if m := _HEADER.match(line):
                table = m.group(2)
                if m.group(1) == "[[":
                    index = counts.get(table, 0)
                    counts[table] = index + 1
                else:
                    index = 0
                self.at.setdefault((table, index, ""), no)
            elif m := _KEY.match(line):
                self.at.setdefault((table, index, m.group(1)), no)

    def of(self, table: str, key: str = "", index: int = 0) -> int | None:
        return self.at.get((table, index, key)) or self.at.get((table, index, ""))


class _File:
    """Error reporting for one file."""

    def __init__(self, path: Path, lines: _Lines | None = None) -> None:
        self.path, self.lines = path, lines

    def error(self, field: str, message: str, line: int | None = None) -> ValueError:
        where = f" (line {line})" if line is not None else ""
        return ValueError(f"{self.path}: field `{field}`{where}: {message}")

    def line(self, table: str, key: str = "", index: int = 0) -> int | None:
        return self.lines.of(table, key, index) if self.lines is not None else None


def _number(f: _File, value: Any, field: str, line: int | None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise f.error(field, f"must be a number, got {value!r}", line)
    try:
        return float(value)
    except OverflowError:
        raise f.error(field, f"is beyond the float64 range, got {value}", line) from None


def _table(f: _File, value: Any, field: str, allowed: Sequence[str], line: int | None) -> dict:
    if not isinstance(value, dict):
        raise f.error(field, f"must be a table, got {type(value).__name__}", line)
    for key in value:
        if key not in allowed:
            raise f.error(
                f"{field}.{key}" if field else key,
                f"unknown field; valid fields are: {', '.join(allowed)}",
                line,
            )
    return value


def _read_csv(
    f: _File, csv_path: Path, column: str, field: str = "demand.csv"
) -> tuple[list[float], list[int]]:
    """One column of a CSV with a header row: the values and their line numbers."""
    cf = _File(csv_path)
    try:
        # utf-8-sig: Excel's "CSV UTF-8" starts with a byte-order mark.
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            reader = _csv.reader(fh)
            # (line of the row's end, row); blank lines are skipped
            numbered = [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    except OSError as e:
        raise f.error(field, f"cannot read {csv_path}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise cf.error(column, f"not a readable CSV: not UTF-8 text (byte {e.start})") from None
    except _csv.Error as e:
        raise cf.error(column, f"not a readable CSV: {e}") from None
    if not numbered:
        raise cf.error(column, "the file is empty (it needs a header row and one row per hour)")
    header_line, header = numbered[0]
    names = [h.strip() for h in header]
    if column not in names:
        raise cf.error(
            column, f"no such column; the header has: {_column_list(names)}", header_line
        )
    j = names.index(column)
    values, lines = [], []
    for no, row in numbered[1:]:
        if j >= len(row):
            raise cf.error(column, f"the row has {len(row)} cells, no `{column}` cell", no)
        try:
            values.append(float(row[j]))
        except ValueError:
            # The cell is located, not quoted: messages show column names only.
            raise cf.error(column, "not a number", no) from None
        lines.append(no)
    if not values:
        raise cf.error(column, "no rows after the header (it needs one row per hour)")
    return values, lines


# At most this many column names, each cut to this many characters, in a message.
_MAX_COLUMNS, _MAX_NAME = 30, 40


def _column_list(names: list[str]) -> str:
    """Column names for a message: a header row, cut short if it is long."""
    cut = [n if len(n) <= _MAX_NAME else n[: _MAX_NAME - 3] + "..." for n in names]
    more = f", ... ({len(names)} columns)" if len(cut) > _MAX_COLUMNS else ""
    return ", ".join(cut[:_MAX_COLUMNS]) + more


def _csv_path(f: _File, folder: Path, name: str, allow_outside: bool, line: int | None) -> Path:
    """The CSV ``name`` relative to the scenario's ``folder``; a path that leaves
    the folder (absolute, ``..``, a symbolic link out) only with ``allow_outside``."""
    csv_path = folder / name
    if allow_outside:
        return csv_path
    root = folder.resolve()
    target = csv_path.resolve()
    if Path(name).is_absolute() or not target.is_relative_to(root):
        raise f.error(
            "demand.csv",
            f"{name!r} is outside the scenario file's folder {root}; a scenario file reads "
            "only files in its folder or below it (pass allow_outside=True to read it anyway)",
            line,
        )
    return csv_path


def _syntax_line(e: Exception, text: str) -> int | None:
    """The line of a TOML syntax error: the parser's, or the last line when it
    stopped at the end of the document (an unclosed array, string or table)."""
    lineno = getattr(e, "lineno", None)
    if lineno is None and (m := re.search(r"\(at line (\d+)", str(e))):
        lineno = int(m.group(1))
    if lineno is None and "end of document" in str(e):
        lineno = max(1, len(text.splitlines()))
    return lineno


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
        a = g["availability"]
        if isinstance(a, str):
            if csv_path is None:
                raise f.error(
                    field, f"names the CSV column {a!r}, but [demand] has no `csv` file", line
                )
            values, rows = _read_csv(f, csv_path, a, field)
            lf_lines[i] = (csv_path, rows)
        elif isinstance(a, list) and a:
            values = [_number(f, v, f"{field}[{h}]", line) for h, v in enumerate(a)]
            lf_lines[i] = (None, None)
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


# --- the network: [[nodes]], [[lines]], and the node of each agent and demand bid ---------


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
        if isinstance(v, str):
            if csv_path is None:
                raise f.error(
                    field, f"names the CSV column {v!r}, but [demand] has no `csv` file", line
                )
            values, rows = _read_csv(f, csv_path, v, field)
            src[z] = (csv_path, rows)
        elif isinstance(v, list) and v:
            values = [_number(f, x, f"{field}[{h}]", line) for h, x in enumerate(v)]
            src[z] = (None, None)
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


def _market_toml(kind: str, value: Any) -> str:
    """A ``[market]`` value of ``kind`` as TOML."""
    if kind == "Count":
        return str(int(value))
    if kind == "Name":
        return _toml_string(value)
    if kind == "Pairs":
        return "[" + ", ".join(f"[{_fmt(p)}, {_fmt(x)}]" for p, x in value) + "]"
    return _fmt(value)


def _fmt(x: float) -> str:
    if not math.isfinite(x):  # pragma: no cover - a valid Scenario is finite
        raise ValueError(f"cannot write the non-finite value {x}")
    return repr(float(x))


def _fmt_float(x: float) -> str:
    """A float as TOML, ``inf`` and ``nan`` included (a line's capacity may be
    ``inf``, and a reactance the model ignores is not checked)."""
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return repr(float(x))


def _array(key: str, values: Any) -> list[str]:
    """``key = [...]``: the values six to a line."""
    v = [_fmt(x) for x in values]
    return (
        [f"{key} = ["]
        + ["    " + ", ".join(v[j : j + 6]) + "," for j in range(0, len(v), 6)]
        + ["]"]
    )


def _toml_escape(c: str) -> str:
    """One character of a TOML basic string: as it is when printable, else an
    escape, ``\\uXXXX`` or, above U+FFFF, ``\\UXXXXXXXX``."""
    if c.isprintable():
        return c
    code = ord(c)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _toml_string(s: str, field: str = "description") -> str:
    bad = next((c for c in s if 0xD800 <= ord(c) <= 0xDFFF), None)
    if bad is not None:
        raise ValueError(
            f"{field}: a lone surrogate (U+{ord(bad):04X}) cannot be written to a TOML file"
        )
    out = s.replace("\\", "\\\\").replace('"', '\\"')
    out = "".join(_toml_escape(c) for c in out)
    return f'"{out}"'


def save(
    scenario: Scenario,
    path: str | os.PathLike[str],
    *,
    csv: bool = False,
    description: str | None = None,
) -> None:
    """Write ``scenario`` to ``path`` (TOML). With ``csv=True`` the demand goes to
    ``<stem>.csv`` beside it (columns ``hour, demand``, then one load-factor
    column ``lf_gen_<i>`` per generator with availability), referenced by name."""
    if not isinstance(scenario, Scenario):
        raise TypeError(f"scenario must be a powermarket.Scenario, got {type(scenario).__name__}")
    path = Path(path)
    if csv and path.suffix == ".csv":
        raise ValueError(f"path: {path} would be overwritten by its own CSV; name it .toml")
    lines = ["# powermarket scenario (see powermarket.scenario_files)"]
    if description is not None:
        lines.append(f"description = {_toml_string(description)}")
    lines += ["", "[market]"]
    values = scenario.to_dict()
    # Nodes are written by name; a scenario of one unnamed node has none, and
    # its `nodes` and `demand_bid_nodes` (all node 0) are not written.
    names: list[str] = values[_NODE_KEYS[_NAME_KEY]]
    quoted = [_toml_string(n, "node name") for n in names]
    for key, (field, kind) in _MARKET.items():
        value = values[field]
        if kind == "Nodes":
            if names and value:
                lines.append(f"{key} = [{', '.join(quoted[z] for z in value)}]")
        elif kind == "Number" or value != _DEFAULTS[field]:
            lines.append(f"{key} = {_market_toml(kind, value)}")
    shares = values[_NODE_KEYS[_SHARE_KEY]]
    hourly_shares = shares is not None and bool(shares) and isinstance(shares[0], list)
    for z, name in enumerate(quoted):
        lines += ["", "[[nodes]]", f"{_NAME_KEY} = {name}"]
        if shares is None:
            continue
        if not hourly_shares:
            lines.append(f"{_SHARE_KEY} = {_fmt(shares[z])}")
        elif csv:
            lines.append(f'{_SHARE_KEY} = "share_{z}"  # a column of the CSV')
        else:
            lines += _array(f"{_SHARE_KEY}", [row[z] for row in shares])
    for row in values[_LINES_FIELD]:
        a, b, cap, x = row
        lines += ["", "[[lines]]", f"from = {quoted[int(a)]}", f"to = {quoted[int(b)]}"]
        lines.append(f"capacity = {_fmt_float(cap)}")
        if values["network"] == "dc" or not x == _DEFAULT_REACTANCE:
            lines.append(f"reactance = {_fmt_float(x)}")
    agent_nodes = values[_AGENT_NODE_FIELD] if names else []
    lf = scenario.availability
    # Load-factor columns to write: every generator whose series is not all
    # ones (and generator 0 if none is, so that the file loads back equal).
    lf_gens = [] if lf is None else [i for i in range(scenario.n) if (lf[:, i] != 1.0).any()]
    if lf is not None and not lf_gens:
        lf_gens = [0]
    for i in range(scenario.n):
        lines += ["", "[[generators]]", f'name = "gen_{i}"']
        if agent_nodes:
            lines.append(f"{_AGENT_NODE_KEY} = {quoted[agent_nodes[i]]}")
        lines += [f"{key} = {_fmt(values[field][i])}" for key, field in _GEN_REQUIRED.items()]
        for key, (field, _) in _GEN_OPTIONAL.items():
            if values[field] is not None:
                lines.append(f"{key} = {_fmt(values[field][i])}")
        if lf is not None and i in lf_gens:
            if csv:
                lines.append(f'availability = "lf_gen_{i}"  # a column of the CSV')
            else:
                lines += _array("availability", lf[:, i])
    defaults = {name: default for name, default, _ in STORAGE_FIELDS}
    for u, unit in enumerate(scenario.storage):
        lines += ["", "[[storage]]"]
        if unit.name is not None:
            lines.append(f"name = {_toml_string(unit.name, 'storage name')}")
        if agent_nodes:
            lines.append(f"{_AGENT_NODE_KEY} = {quoted[agent_nodes[scenario.n + u]]}")
        for name, _, _ in STORAGE_FIELDS:
            v = getattr(unit, name)
            if v is not None and (defaults[name] is None or v != defaults[name]):
                lines.append(f"{name} = {_fmt(v)}")
    lines += ["", "[demand]  # MW per hour"]
    csv_text = None
    if csv:
        csv_name = path.with_suffix(".csv").name
        lines += [f"csv = {_toml_string(csv_name, 'path')}", 'column = "demand"']
        share_columns = [f"share_{z}" for z in range(len(names))] if hourly_shares else []
        header = ",".join(["hour", "demand"] + [f"lf_gen_{i}" for i in lf_gens] + share_columns)
        rows = []
        for h, d in enumerate(scenario.demand):
            cells = [str(h), _fmt(d)] + ([] if lf is None else [_fmt(lf[h, i]) for i in lf_gens])
            if hourly_shares:
                cells += [_fmt(x) for x in shares[h]]
            rows.append(",".join(cells) + "\n")
        csv_text = header + "\n" + "".join(rows)
    else:
        lines.append("values = [")
        d = [_fmt(v) for v in scenario.demand]
        lines += ["    " + ", ".join(d[i : i + 6]) + "," for i in range(0, len(d), 6)]
        lines.append("]")
    text = "\n".join(lines) + "\n"
    if csv_text is not None:
        path.with_suffix(".csv").write_text(csv_text, encoding="utf-8")
    path.write_text(text, encoding="utf-8")
