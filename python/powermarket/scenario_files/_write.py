"""Writing a scenario file: ``save``."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from powermarket._core import STORAGE_FIELDS, Scenario
from powermarket.scenario_files._tables import (
    _AGENT_NODE_FIELD,
    _AGENT_NODE_KEY,
    _DEFAULT_REACTANCE,
    _DEFAULTS,
    _GEN_OPTIONAL,
    _GEN_REQUIRED,
    _LINES_FIELD,
    _MARKET,
    _NAME_KEY,
    _NODE_KEYS,
    _SHARE_KEY,
)


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
