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

    [[generators]]            # one table per generator, in agent order
    name = "nuclear"          # optional, for the reader
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
TOP_FIELDS = ("description", "market", "generators", "demand", "storage")
# The keys of a ``[[storage]]`` table: the core's storage fields and a name.
STORAGE_KEYS = ("name",) + tuple(name for name, _, _ in STORAGE_FIELDS)
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
GENERATOR_FIELDS = ("name",) + tuple(
    key for _, _, sec, key, _ in SCENARIO_FIELDS if sec == "generators"
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

    market = _table(f, doc.get("market", {}), "market", MARKET_FIELDS, f.line("market"))
    rules: dict[str, Any] = {}
    for key, value in market.items():
        field, kind = _MARKET[key]
        rules[field] = _market_value(f, key, kind, value, f.line("market", key))

    gens = doc["generators"]
    if not isinstance(gens, list) or not gens:
        raise f.error(
            "generators", "must be one or more [[generators]] tables", f.line("", "generators")
        )
    fleet: dict[str, list[float]] = {key: [] for key in _GEN_REQUIRED}
    ramps: dict[str, list[float | None]] = {key: [] for key in _GEN_OPTIONAL}
    for i, g in enumerate(gens):
        name = f"generators[{i}]"
        g = _table(f, g, name, GENERATOR_FIELDS, f.line("generators", index=i))
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
        extra["storage"] = _storage_units(f, doc["storage"])
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
        raise _locate(f, e, csv_path, csv_lines, lf_lines, len(gens)) from None


def _locate(
    f: _File,
    e: ValueError,
    csv_path: Path | None,
    csv_lines: list[int] | None,
    lf_lines: dict[int, tuple[Path | None, list[int] | None]] | None = None,
    generators: int | None = None,
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
    if field.startswith("storage") and gen is not None and generators is not None:
        # `agent` is on the agent axis: storage unit u is agent N + u.
        u, key = gen - generators, field.partition(".")[2]
        name = f"storage[{u}].{key}" if key else f"storage[{u}]"
        return f.error(name, detail, f.line("storage", key, u))
    return f.error(field, detail)


def _storage_units(f: _File, value: Any) -> list[dict[str, Any]]:
    """The ``[[storage]]`` tables as dicts of ``powermarket.Storage`` fields."""
    if not isinstance(value, list):
        raise f.error("storage", "must be [[storage]] tables", f.line("", "storage"))
    units = []
    for u, table in enumerate(value):
        where = f"storage[{u}]"
        table = _table(f, table, where, STORAGE_KEYS, f.line("storage", index=u))
        for key in _STORAGE_REQUIRED:
            if key not in table:
                raise f.error(f"{where}.{key}", "is missing", f.line("storage", index=u))
        unit: dict[str, Any] = {}
        for key, v in table.items():
            line = f.line("storage", key, u)
            if key == "name":
                if not isinstance(v, str):
                    raise f.error(f"{where}.name", "must be a string", line)
                unit[key] = v
            else:
                unit[key] = _number(f, v, f"{where}.{key}", line)
        units.append(unit)
    return units


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
    for key, (field, kind) in _MARKET.items():
        value = values[field]
        if kind == "Number" or value != _DEFAULTS[field]:
            lines.append(f"{key} = {_market_toml(kind, value)}")
    lf = scenario.availability
    # Load-factor columns to write: every generator whose series is not all
    # ones (and generator 0 if none is, so that the file loads back equal).
    lf_gens = [] if lf is None else [i for i in range(scenario.n) if (lf[:, i] != 1.0).any()]
    if lf is not None and not lf_gens:
        lf_gens = [0]
    for i in range(scenario.n):
        lines += ["", "[[generators]]", f'name = "gen_{i}"']
        lines += [f"{key} = {_fmt(values[field][i])}" for key, field in _GEN_REQUIRED.items()]
        for key, (field, _) in _GEN_OPTIONAL.items():
            if values[field] is not None:
                lines.append(f"{key} = {_fmt(values[field][i])}")
        if lf is not None and i in lf_gens:
            if csv:
                lines.append(f'availability = "lf_gen_{i}"  # a column of the CSV')
            else:
                lines.append("availability = [")
                v = [_fmt(x) for x in lf[:, i]]
                lines += ["    " + ", ".join(v[j : j + 6]) + "," for j in range(0, len(v), 6)]
                lines.append("]")
    defaults = {name: default for name, default, _ in STORAGE_FIELDS}
    for unit in scenario.storage:
        lines += ["", "[[storage]]"]
        if unit.name is not None:
            lines.append(f"name = {_toml_string(unit.name, 'storage name')}")
        for name, _, _ in STORAGE_FIELDS:
            v = getattr(unit, name)
            if v is not None and (defaults[name] is None or v != defaults[name]):
                lines.append(f"{name} = {_fmt(v)}")
    lines += ["", "[demand]  # MW per hour"]
    csv_text = None
    if csv:
        csv_name = path.with_suffix(".csv").name
        lines += [f"csv = {_toml_string(csv_name, 'path')}", 'column = "demand"']
        header = ",".join(["hour", "demand"] + [f"lf_gen_{i}" for i in lf_gens])
        rows = []
        for h, d in enumerate(scenario.demand):
            cells = [str(h), _fmt(d)] + ([] if lf is None else [_fmt(lf[h, i]) for i in lf_gens])
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
