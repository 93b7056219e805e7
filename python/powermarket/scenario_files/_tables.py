"""The keys of scenario files, from the core's field table, and what reading a
file needs: the file and its lines, numbers, tables, CSVs, TOML syntax errors."""

from __future__ import annotations

import csv as _csv
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from powermarket._core import SCENARIO_FIELDS, STORAGE_FIELDS, Scenario

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


def _hourly(
    f: _File, value: Any, field: str, line: int | None, csv_path: Path | None
) -> tuple[list[float], tuple[Path | None, Any]] | None:
    """A series of one value per hour as a file gives it: the name of a
    column of the demand CSV, or an array of numbers. Returns the values and
    where they stand (the CSV and its rows, or ``(None, None)`` for the TOML);
    ``None`` when ``value`` is neither."""
    if isinstance(value, str):
        if csv_path is None:
            raise f.error(
                field, f"names the CSV column {value!r}, but [demand] has no `csv` file", line
            )
        values, rows = _read_csv(f, csv_path, value, field)
        return values, (csv_path, rows)
    if isinstance(value, list) and value:
        return [_number(f, x, f"{field}[{h}]", line) for h, x in enumerate(value)], (None, None)
    return None


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
