"""Scenario files as text: a UTF-8 byte-order mark is accepted, syntax errors carry
a line number, and strings with characters beyond the Basic Multilingual Plane
survive a save/load round trip."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import powermarket as pm
from powermarket.scenario_files import tomllib

GOOD = (
    "[market]\n"  # 1
    "demand_noise = 0.0\n"  # 2
    "\n"  # 3
    "[[generators]]\n"  # 4
    "capacity = 10.0\n"  # 5
    "cost = 5.0\n"  # 6
    "\n"  # 7
    "[demand]\n"  # 8
    "values = [12.0, 25.0]\n"  # 9
)
BOM = "\ufeff"


def test_toml_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    plain, marked = tmp_path / "plain.toml", tmp_path / "marked.toml"
    plain.write_text(GOOD, encoding="utf-8")
    marked.write_text(BOM + GOOD, encoding="utf-8")
    assert marked.read_bytes()[:3] == b"\xef\xbb\xbf"
    assert pm.load_scenario(marked) == pm.load_scenario(plain)


def test_csv_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    """Excel's "CSV UTF-8" starts with a BOM: the first column keeps its name."""
    (tmp_path / "d.csv").write_text(BOM + "demand,wind\n7.0,0.5\n9.0,0.25\n", encoding="utf-8")
    text = GOOD.replace("values = [12.0, 25.0]", 'csv = "d.csv"').replace(
        "cost = 5.0\n", 'cost = 5.0\navailability = "wind"\n'
    )
    (tmp_path / "m.toml").write_text(text, encoding="utf-8")
    s = pm.load_scenario(tmp_path / "m.toml")
    assert s.demand.tolist() == [7.0, 9.0]
    assert s.availability[:, 0].tolist() == [0.5, 0.25]


def test_missing_csv_column_lists_clean_column_names(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text(BOM + "hour,load\n0,1.0\n", encoding="utf-8")
    (tmp_path / "m.toml").write_text(GOOD.replace("values = [12.0, 25.0]", 'csv = "d.csv"'))
    with pytest.raises(ValueError, match=r"no such column; the header has: hour, load$"):
        pm.load_scenario(tmp_path / "m.toml")


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (GOOD.replace("cost = 5.0\n", "cost = 5.0,\n"), 6),
        (GOOD.replace("values = [12.0, 25.0]\n", "values = [12.0,\n25.0,\n"), 10),
        (GOOD.replace("values = [12.0, 25.0]\n", "values = [12.0, 25.0"), 9),
        (GOOD.replace("demand_noise = 0.0\n", 'description = "open\n'), 2),
        (GOOD + "[demand]\n", 10),
    ],
)
def test_toml_syntax_error_carries_the_line_number(tmp_path: Path, text: str, line: int) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(tomllib.TOMLDecodeError):
        tomllib.loads(text)
    with pytest.raises(ValueError) as e:
        pm.load_scenario(p)
    msg = str(e.value)
    assert re.match(rf"^{re.escape(str(p))} \(line {line}\): not valid TOML", msg), msg


NAMES = [
    "wind \U0001f32c\ufe0f and sun \u2600",  # printable, beyond the BMP: raw UTF-8
    "tag \U000e0041\U000e007f end",  # unprintable, beyond the BMP: \U escapes
    'bell \x07 tab \t quote " backslash \\ nul \x00',
    "private \U0010fffd",
]


@pytest.mark.parametrize("description", NAMES)
def test_description_beyond_the_bmp_round_trips(tmp_path: Path, description: str) -> None:
    s = pm.Scenario.default(n=2, t=3)
    p = tmp_path / "m.toml"
    pm.save_scenario(s, p, description=description)
    assert tomllib.loads(p.read_text(encoding="utf-8"))["description"] == description
    assert pm.load_scenario(p) == s


def test_csv_name_beyond_the_bmp_round_trips(tmp_path: Path) -> None:
    s = pm.Scenario.default(n=2, t=3)
    p = tmp_path / "m\U000e0041\U0001f32c.toml"
    try:
        pm.save_scenario(s, p, csv=True)
    except OSError:
        pytest.skip("the file system refuses the name")
    assert pm.load_scenario(p) == s


def test_lone_surrogate_in_a_description_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="description"):
        pm.save_scenario(pm.Scenario.default(), tmp_path / "m.toml", description="bad \ud800")
    assert not (tmp_path / "m.toml").exists()
