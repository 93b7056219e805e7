"""A scenario file reads CSVs only from its own folder (or below it), unless the
caller passes ``allow_outside=True``; errors never echo a file's contents beyond
its column names."""

from __future__ import annotations

from pathlib import Path

import pytest

import powermarket as pm

TOML = (
    "[market]\n"
    "demand_noise = 0.0\n"
    "\n"
    "[[generators]]\n"
    "capacity = 10.0\n"
    "cost = 5.0\n"
    "\n"
    "[demand]\n"
    'csv = "{csv}"\n'
    'column = "{column}"\n'
)
SECRET = "s3cret-token-value"


def scenario_in(folder: Path, csv: str, column: str = "demand") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / "market.toml"
    p.write_text(TOML.format(csv=csv, column=column))
    return p


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A CSV beside the scenario's folder, not in it."""
    p = tmp_path / "outside.csv"
    p.write_text("hour,demand\n0,4.0\n1,6.0\n")
    return p


@pytest.mark.parametrize("how", ["dotdot", "absolute", "nested_dotdot"])
def test_csv_outside_the_scenario_folder_is_refused(tmp_path: Path, outside: Path, how) -> None:
    folder = tmp_path / "scen"
    csv = {
        "dotdot": "../outside.csv",
        "absolute": str(outside),
        "nested_dotdot": "sub/../../outside.csv",
    }[how]
    p = scenario_in(folder, csv)
    with pytest.raises(ValueError, match="allow_outside") as e:
        pm.load_scenario(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}: field `demand.csv`"), msg
    assert "outside" in msg
    with pytest.raises(ValueError, match="allow_outside"):
        pm.Scenario.load(p)


@pytest.mark.parametrize("csv_of", [lambda o: "../outside.csv", lambda o: str(o)])
def test_allow_outside_reads_a_csv_outside_the_folder(tmp_path: Path, outside: Path, csv_of):
    p = scenario_in(tmp_path / "scen", csv_of(outside))
    s = pm.load_scenario(p, allow_outside=True)
    assert s.demand.tolist() == [4.0, 6.0]
    assert pm.Scenario.load(p, allow_outside=True) == s


def test_csv_in_the_folder_or_below_loads(tmp_path: Path) -> None:
    folder = tmp_path / "scen"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "d.csv").write_text("hour,demand\n0,3.0\n")
    (folder / "d.csv").write_text("hour,demand\n0,5.0\n")
    assert pm.load_scenario(scenario_in(folder, "data/d.csv")).demand.tolist() == [3.0]
    assert pm.load_scenario(scenario_in(folder, "./data/../d.csv")).demand.tolist() == [5.0]


def test_symlink_leaving_the_folder_is_refused(tmp_path: Path, outside: Path) -> None:
    folder = tmp_path / "scen"
    folder.mkdir()
    link = folder / "link.csv"
    try:
        link.symlink_to(outside)
    except OSError:
        pytest.skip("no symlinks here")
    with pytest.raises(ValueError, match="allow_outside"):
        pm.load_scenario(scenario_in(folder, "link.csv"))


def test_availability_column_of_an_outside_csv_is_refused_too(tmp_path: Path, outside) -> None:
    p = scenario_in(tmp_path / "scen", "../outside.csv")
    p.write_text(p.read_text().replace("cost = 5.0\n", 'cost = 5.0\navailability = "demand"\n'))
    with pytest.raises(ValueError, match="allow_outside"):
        pm.load_scenario(p)


def test_errors_do_not_echo_file_contents(tmp_path: Path) -> None:
    folder = tmp_path / "scen"
    folder.mkdir()
    # A missing column: the header's names are listed, the rows are not.
    (folder / "d.csv").write_text(f"hour,load\n0,{SECRET}\n")
    with pytest.raises(ValueError) as e:
        pm.load_scenario(scenario_in(folder, "d.csv"))
    assert SECRET not in str(e.value) and "hour, load" in str(e.value)
    # A cell that is not a number is located, not quoted.
    (folder / "d.csv").write_text(f"hour,demand\n0,{SECRET}\n")
    with pytest.raises(ValueError) as e:
        pm.load_scenario(scenario_in(folder, "d.csv"))
    msg = str(e.value)
    assert SECRET not in msg and "(line 2)" in msg and "not a number" in msg
    # Column names are what a message may quote.
    (folder / "d.csv").write_text("hour,load\n0,1.0\n")
    with pytest.raises(ValueError, match="hour, load"):
        pm.load_scenario(scenario_in(folder, "d.csv"))


def test_outside_file_contents_never_reach_the_message(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(f"{SECRET}\n")
    p = scenario_in(tmp_path / "scen", "../secret.txt")
    with pytest.raises(ValueError) as e:
        pm.load_scenario(p)
    assert SECRET not in str(e.value)
