"""Scenario files (TOML + optional CSV): round trips, the shipped examples, malformed files."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

import powermarket as pm
from powermarket.scenario_files import tomllib

EXAMPLES = sorted((Path(__file__).parent.parent / "examples" / "scenarios").glob("*.toml"))

SCENARIOS = [
    pm.Scenario.default(),
    pm.Scenario.competitive(8, 24, 2),
    pm.Scenario.weekly(n=4),
    pm.Scenario(
        [1.0, 1e-3, 7.25],
        [-3.0, 0.1 + 0.2, 1e6],
        [0.5, 1 / 3, 2.0],
        max_bid_delta=7.0,
        bid_penalty=0.0,
        lol_penalty=2.0,
        demand_noise=0.0,
        shortage_price=-300.0,
    ),
    pm.Scenario.advanced(),
    pm.Scenario.advanced().replace(availability_noise=0.25, ramp_limits=None),
    # availability given but all ones: still written (generator 0), loads back equal
    pm.Scenario.default(n=2, t=3).replace(availability=[[1.0, 1.0]] * 3, ramp_costs=[0.5, 0.0]),
    # the market-design fields
    pm.Scenario.default(n=3).replace(
        segments=4,
        mechanism="pay_as_bid",
        price_cap=4000.0,
        price_floor=-500.0,
        demand_bids=[(45.0, 0.1), (0.1 + 0.2, 0.05)],
    ),
    pm.Scenario.default(n=2).replace(price_cap=300.0),
]


@pytest.mark.parametrize("csv", [False, True])
@pytest.mark.parametrize("s", SCENARIOS)
def test_save_load_round_trip_is_exact(tmp_path: Path, s: pm.Scenario, csv: bool) -> None:
    path = tmp_path / "market.toml"
    pm.save_scenario(s, path, csv=csv)
    assert (tmp_path / "market.csv").exists() == csv
    back = pm.load_scenario(path)
    assert back == s
    for k, v in s.to_dict().items():
        assert back.to_dict()[k] == v, k
    # the methods are the same entry points
    s.save(tmp_path / "m2.toml", csv=csv)
    assert pm.Scenario.load(tmp_path / "m2.toml") == s
    assert pm.Scenario.load(str(tmp_path / "m2.toml")) == s


def test_saved_file_is_plain_toml(tmp_path: Path) -> None:
    """Read back with tomllib alone: the fleet table and the rules as written."""
    s = pm.Scenario.competitive(4, 6, 2).replace(shortage_price=250.0)
    pm.save_scenario(s, tmp_path / "c.toml", description='quote " and \\ back')
    doc = tomllib.loads((tmp_path / "c.toml").read_text())
    assert doc["description"] == 'quote " and \\ back'
    assert [g["capacity"] for g in doc["generators"]] == [37.5] * 4
    assert [g["cost"] for g in doc["generators"]] == [20.0, 20.0, 40.0, 40.0]
    assert doc["market"]["shortage_price"] == 250.0
    assert doc["demand"]["values"] == s.demand.tolist()
    # None: the key is left out
    pm.save_scenario(pm.Scenario.default(), tmp_path / "d.toml")
    assert "shortage_price" not in tomllib.loads((tmp_path / "d.toml").read_text())["market"]


def test_hand_written_file(tmp_path: Path) -> None:
    (tmp_path / "m.toml").write_text(
        "[[generators]]\ncapacity = 10\ncost = 5\n\n"
        "[[generators]]\ncapacity = 20.5\ncost = 30\n\n"
        "[demand]\nvalues = [12, 25.5, 7]\n"
    )
    s = pm.load_scenario(tmp_path / "m.toml")
    assert s == pm.Scenario([10.0, 20.5], [5.0, 30.0], [12.0, 25.5, 7.0])


def test_csv_column_by_name_and_blank_lines(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("hour, load ,other\n0,3.5,x\n\n1,4,y\n2,1e1,z\n")
    (tmp_path / "m.toml").write_text(
        '[[generators]]\ncapacity = 10.0\ncost = 1.0\n[demand]\ncsv = "d.csv"\ncolumn = "load"\n'
    )
    np.testing.assert_array_equal(pm.load_scenario(tmp_path / "m.toml").demand, [3.5, 4.0, 10.0])


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_shipped_example_loads_and_runs(path: Path) -> None:
    s = pm.load_scenario(path)
    assert s.n >= 2 and s.t >= 24
    env = pm.MarketEnv(s, seed=0)
    env.reset()
    total = np.zeros(s.num_agents)
    block = (2,) if s.segments == 1 else (s.segments, 2)
    for h in range(s.t):
        _, rewards, term, trunc, info = env.step(np.zeros((s.num_agents, *block), np.float32))
        assert np.all(np.isfinite(rewards))
        total += rewards
        assert bool(term or trunc) == (h == s.t - 1)
    assert np.all(np.isfinite(total))
    vec = pm.VecMarketEnv(num_envs=2, scenario=s, seed=1)
    vec.reset()
    vec.step(np.zeros((2, s.num_agents, *block), np.float32))


def test_shipped_examples_exist() -> None:
    names = {p.name for p in EXAMPLES}
    assert {
        "four_plants_day.toml",
        "renewable_week.toml",
        "advanced_week.toml",
        "exchange_day.toml",
    } <= names


def test_advanced_week_file_is_the_preset() -> None:
    """The shipped file loads equal to Scenario.advanced(), bit for bit."""
    s = pm.load_scenario(EXAMPLES[0].parent / "advanced_week.toml")
    assert s == pm.Scenario.advanced()
    assert s.availability is not None and s.ramp_limits is not None


def test_renewable_week_reads_its_csv() -> None:
    s = pm.load_scenario(EXAMPLES[0].parent / "renewable_week.toml")
    assert s.t == 168 and s.demand[0] == 62.0 and s.demand[24 * 5 + 18] == 96.0
    np.testing.assert_array_equal(s.costs[:2], [0.0, 0.0])


# --- malformed files ----------------------------------------------------------------------

GOOD = (
    "[market]\n"  # 1
    "demand_noise = 0.0\n"  # 2
    "\n"  # 3
    "[[generators]]\n"  # 4
    "capacity = 10.0\n"  # 5
    "cost = 5.0\n"  # 6
    "\n"  # 7
    "[[generators]]\n"  # 8
    "capacity = 20.0\n"  # 9
    "cost = 30.0\n"  # 10
    "\n"  # 11
    "[demand]\n"  # 12
    "values = [12.0, 25.0]\n"  # 13
)


def write(tmp_path: Path, text: str, name: str = "bad.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_good_base_loads(tmp_path: Path) -> None:
    assert pm.load_scenario(write(tmp_path, GOOD)).n == 2


@pytest.mark.parametrize(
    "old, new, field, line",
    [
        ("capacity = 20.0", "capacity = -20.0", "generators[1].capacity", 9),
        ("capacity = 20.0", 'capacity = "20"', "generators[1].capacity", 9),
        ("capacity = 20.0", "capacity = true", "generators[1].capacity", 9),
        ("capacity = 20.0\n", "", "generators[1].capacity", 8),
        ("cost = 30.0", "cost = nan", "generators[1].cost", 10),
        ("cost = 30.0", "cost = 1" + "0" * 400, "generators[1].cost", 10),
        ("cost = 30.0", "costs = 30.0", "generators[1].costs", 8),
        ("demand_noise = 0.0", "demand_noise = -1.0", "market.demand_noise", 2),
        ("demand_noise = 0.0", "demand_nois = 0.1", "market.demand_nois", 1),
        ("values = [12.0, 25.0]", "values = [12.0, -25.0]", "demand.values[1]", 13),
        ("values = [12.0, 25.0]", "values = [12.0, 'x']", "demand.values[1]", 13),
        ("values = [12.0, 25.0]", "values = []", "demand.values", 13),
        ("values = [12.0, 25.0]", 'values = [1.0]\ncsv = "d.csv"', "demand", 12),
        ("[demand]\nvalues = [12.0, 25.0]\n", "", "demand", None),
        ("[market]\n", "fleet = 3\n[market]\n", "fleet", None),
        ("cost = 30.0", "cost = 30.0\nramp_limit = -0.5", "generators[1].ramp_limit", 11),
        ("cost = 30.0", "cost = 30.0\nramp_cost = 'x'", "generators[1].ramp_cost", 11),
        ("cost = 5.0", "cost = 5.0\nramp_cost = nan", "generators[0].ramp_cost", 7),
        (
            "cost = 30.0",
            "cost = 30.0\navailability = [0.5, 1.5]",
            "generators[1].availability[1]",
            11,
        ),
        ("cost = 30.0", "cost = 30.0\navailability = [0.5]", "generators[1].availability", 11),
        ("cost = 30.0", "cost = 30.0\navailability = 3", "generators[1].availability", 11),
        ("cost = 30.0", "cost = 30.0\navailability = 'lf'", "generators[1].availability", 11),
        ("demand_noise = 0.0", "availability_noise = -1.0", "market.availability_noise", 2),
        ("demand_noise = 0.0", "segments = 2.5", "market.segments", 2),
        ("demand_noise = 0.0", "segments = 0", "market.segments", 2),
        ("demand_noise = 0.0", "mechanism = 3", "market.mechanism", 2),
        ("demand_noise = 0.0", 'mechanism = "vickrey"', "market.mechanism", 2),
        ("demand_noise = 0.0", "demand_bids = [[1.0]]", "market.demand_bids[0]", 2),
        ("demand_noise = 0.0", "demand_bids = [[1.0, 1.5]]", "market.demand_bids", 2),
        ("demand_noise = 0.0", "price_cap = 'x'", "market.price_cap", 2),
        ("demand_noise = 0.0", "price_cap = 1.0\nprice_floor = 2.0", "market.price_floor", 3),
    ],
)
def test_malformed_names_file_field_line(
    tmp_path: Path, old: str, new: str, field: str, line: int | None
) -> None:
    assert old in GOOD
    p = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ValueError) as e:
        pm.load_scenario(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}: field `{field}`"), msg
    if line is not None:
        assert f"(line {line})" in msg, msg


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD.replace("cost = 5.0\n", "cost = 5.0,\n"))
    with pytest.raises(ValueError, match=rf"^{re.escape(str(p))} \(line 6\): not valid TOML"):
        pm.load_scenario(p)


def csv_file(tmp_path: Path, body: str) -> Path:
    (tmp_path / "d.csv").write_text(body)
    return write(tmp_path, GOOD.replace("values = [12.0, 25.0]", 'csv = "d.csv"'))


@pytest.mark.parametrize(
    "body, line, needle",
    [
        ("hour,demand\n0,1.0\n1,oops\n", 3, "not a number"),
        ("hour,demand\n0,1.0\n\n1,-2.0\n", 4, "hour 1 must be finite and > 0"),
        ("hour,demand\n0,1.0\n1\n", 3, "no `demand` cell"),
        ("hour,load\n0,1.0\n", 1, "no such column"),
        ("hour,demand\n", None, "no rows after the header"),
        ("", None, "the file is empty"),
    ],
)
def test_malformed_csv_names_csv_line(
    tmp_path: Path, body: str, line: int | None, needle: str
) -> None:
    p = csv_file(tmp_path, body)
    with pytest.raises(ValueError) as e:
        pm.load_scenario(p)
    msg = str(e.value)
    assert msg.startswith(f"{tmp_path / 'd.csv'}: field `demand`"), msg
    assert needle in msg
    if line is not None:
        assert f"(line {line})" in msg, msg


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"nope\.toml: cannot read"):
        pm.load_scenario(tmp_path / "nope.toml")
    p = write(tmp_path, GOOD.replace("values = [12.0, 25.0]", 'csv = "gone.csv"'))
    with pytest.raises(ValueError, match=r"bad\.toml: field `demand\.csv`.*gone\.csv"):
        pm.load_scenario(p)


def test_save_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="scenario"):
        pm.save_scenario({"capacities": [1.0]}, tmp_path / "x.toml")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="CSV"):
        pm.save_scenario(pm.Scenario.default(), tmp_path / "x.csv", csv=True)
    assert not (tmp_path / "x.csv").exists()


def test_loaded_example_matches_its_text() -> None:
    """The hand-made day: an independent read of the TOML with tomllib."""
    path = EXAMPLES[0].parent / "four_plants_day.toml"
    doc = tomllib.loads(path.read_text())
    s = pm.load_scenario(path)
    np.testing.assert_array_equal(s.capacities, [g["capacity"] for g in doc["generators"]])
    np.testing.assert_array_equal(s.costs, [g["cost"] for g in doc["generators"]])
    np.testing.assert_array_equal(s.demand, doc["demand"]["values"])
    assert s.shortage_price == 3000.0 and math.isclose(s.demand_noise, 0.03)


def test_partial_ramp_fields_and_csv_availability(tmp_path: Path) -> None:
    """Missing ramp_limit = 1 (no limit), missing ramp_cost = 0; availability
    from a CSV column; a bad CSV load factor names the CSV and its line."""
    text = GOOD.replace("cost = 30.0", 'cost = 30.0\nramp_cost = 2.0\navailability = "lf"')
    text = text.replace("cost = 5.0", "cost = 5.0\nramp_limit = 0.3")
    text = text.replace("values = [12.0, 25.0]", 'csv = "d.csv"')
    p = write(tmp_path, text)
    (tmp_path / "d.csv").write_text("hour,demand,lf\n0,12.0,0.25\n\n1,25.0,1.0\n")
    s = pm.load_scenario(p)
    np.testing.assert_array_equal(s.ramp_limits, [0.3, 1.0])
    np.testing.assert_array_equal(s.ramp_costs, [0.0, 2.0])
    np.testing.assert_array_equal(s.availability, [[1.0, 0.25], [1.0, 1.0]])
    (tmp_path / "d.csv").write_text("hour,demand,lf\n0,12.0,0.25\n\n1,25.0,-1.0\n")
    with pytest.raises(ValueError) as e:
        pm.load_scenario(p)
    msg = str(e.value)
    assert msg.startswith(f"{tmp_path / 'd.csv'}: field `generators[1].availability`"), msg
    assert "(line 4)" in msg and "-1" in msg
    (tmp_path / "d.csv").write_text("hour,demand\n0,12.0\n1,25.0\n")
    with pytest.raises(ValueError, match="no such column"):
        pm.load_scenario(p)
