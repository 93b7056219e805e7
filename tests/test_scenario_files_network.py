"""Scenario files with a network: [[nodes]], [[lines]], a node per agent table,
market.network and market.demand_bid_nodes. Round trips, hand-written files
(names or indices), the errors (file, table index, line), text encodings, the
shipped two_zones.toml, and an episode of a loaded networked scenario."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import powermarket as pm
from powermarket.scenario_files import tomllib

EXAMPLES = Path(__file__).parent.parent / "examples" / "scenarios"
INF = math.inf


def base(**kw) -> dict:
    return dict(capacities=[10.0, 20.0, 5.0], costs=[5.0, 30.0, 0.0], demand=[12.0, 25.0, 7.0]) | kw


SCENARIOS = {
    "dc_bids_at_nodes": pm.Scenario(
        **base(),
        network="dc",
        node_names=["north", "south"],
        nodes=[0, 1, 0],
        lines=[(0, 1, 10.0, 0.1)],
        demand_shares=[0.3, 0.7],
        demand_bids=[(40.0, 0.1), (25.0, 0.05), (0.1 + 0.2, 0.2)],
        demand_bid_nodes=[1, 0, 1],
    ),
    "transport_hourly_shares": pm.Scenario(
        **base(),
        network="transport",
        node_names=["a", "b", "c"],
        nodes=[2, 1, 0],
        lines=[(0, 1, INF, 1.0), (1, 2, 3.0, 2.5), (2, 0, 0.1 + 0.2, 1.0)],
        demand_shares=[[0.5, 0.25, 0.25], [0.4, 0.6, 0.0], [1.0, 0.0, 0.0]],
    ),
    "copper_with_nodes": pm.Scenario(**base(), node_names=["x", "y"], demand_shares=[0.5, 0.5]),
    "dc_one_node": pm.Scenario(**base(), network="dc"),
    "storage_at_a_node": pm.Scenario.with_battery().replace(
        network="transport",
        node_names=["p", "q"],
        nodes=[0, 1, 1, 0, 1, 1],
        lines=[(1, 0, 7.0, 1.0)],
        demand_shares=[0.25, 0.75],
        storage=[pm.Storage(power=20.0, energy=80.0, name="big")],
    ),
    "default_nodes_and_bid_nodes": pm.Scenario(
        **base(),
        network="dc",
        node_names=["n0", "n1"],
        lines=[(0, 1, 50.0, 0.25)],
        demand_shares=[0.5, 0.5],
        demand_bids=[(40.0, 0.1)],
    ),
    "availability_and_names_with_quotes": pm.Scenario(
        **base(),
        network="transport",
        node_names=['say "hi"', "back\\slash", "tab\there", "\U0001f32c wind"],
        nodes=[3, 0, 1],
        lines=[(0, 1, 1.0, 1.0), (1, 2, 2.0, 1.0), (2, 3, 3.0, 1.0)],
        demand_shares=[0.25, 0.25, 0.25, 0.25],
        availability=[[1.0, 1.0, 0.5], [1.0, 1.0, 0.25], [1.0, 1.0, 1.0]],
    ),
}


@pytest.mark.parametrize("csv", [False, True])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_networked_round_trip_is_exact(tmp_path: Path, name: str, csv: bool) -> None:
    s = SCENARIOS[name]
    path = tmp_path / "grid.toml"
    s.save(path, csv=csv)
    back = pm.Scenario.load(path)
    assert back == s
    for k, v in s.to_dict().items():
        assert back.to_dict()[k] == v, k
    assert back.network == s.network
    np.testing.assert_array_equal(back.node_demand, s.node_demand)


def test_saved_network_is_plain_toml_with_names(tmp_path: Path) -> None:
    """Nodes are written by name, everywhere a node is named."""
    s = SCENARIOS["dc_bids_at_nodes"]
    s.save(tmp_path / "g.toml")
    doc = tomllib.loads((tmp_path / "g.toml").read_text(encoding="utf-8"))
    assert doc["market"]["network"] == "dc"
    assert doc["market"]["demand_bid_nodes"] == ["south", "north", "south"]
    assert doc["nodes"] == [
        {"name": "north", "demand_share": 0.3},
        {"name": "south", "demand_share": 0.7},
    ]
    assert doc["lines"] == [{"from": "north", "to": "south", "capacity": 10.0, "reactance": 0.1}]
    assert [g["node"] for g in doc["generators"]] == ["north", "south", "north"]


def test_saved_hourly_shares_inline_and_in_the_csv(tmp_path: Path) -> None:
    s = SCENARIOS["transport_hourly_shares"]
    s.save(tmp_path / "inline.toml")
    doc = tomllib.loads((tmp_path / "inline.toml").read_text(encoding="utf-8"))
    assert [n["demand_share"] for n in doc["nodes"]] == np.asarray(s.demand_shares).T.tolist()
    # an unlimited line: capacity = inf; a transport line of reactance 1: no reactance key
    assert doc["lines"][0] == {"from": "a", "to": "b", "capacity": INF}
    assert doc["lines"][1]["reactance"] == 2.5
    s.save(tmp_path / "split.toml", csv=True)
    doc = tomllib.loads((tmp_path / "split.toml").read_text(encoding="utf-8"))
    assert [n["demand_share"] for n in doc["nodes"]] == ["share_0", "share_1", "share_2"]
    header = (tmp_path / "split.csv").read_text().splitlines()[0]
    assert header == "hour,demand,share_0,share_1,share_2"


def test_storage_node_in_its_table(tmp_path: Path) -> None:
    s = SCENARIOS["storage_at_a_node"]
    s.save(tmp_path / "b.toml")
    doc = tomllib.loads((tmp_path / "b.toml").read_text(encoding="utf-8"))
    assert doc["storage"] == [{"name": "big", "node": "q", "power": 20.0, "energy": 80.0}]
    assert pm.load_scenario(tmp_path / "b.toml").nodes.tolist() == [0, 1, 1, 0, 1, 1]


# What save wrote before networks, byte for byte: a file without a network is unchanged.
UNCHANGED = """\
# powermarket scenario (see powermarket.scenario_files)

[market]
max_bid_delta = 50.0
bid_penalty = 0.01
lol_penalty = 1.0
demand_noise = 0.05
availability_noise = 0.0
demand_bids = [[40.0, 0.1]]

[[generators]]
name = "gen_0"
capacity = 10.0
cost = 5.0

[[generators]]
name = "gen_1"
capacity = 20.0
cost = 30.0
availability = [
    0.5, 1.0,
]

[[storage]]
name = "b"
power = 5.0
energy = 10.0

[demand]  # MW per hour
values = [
    12.0, 25.0,
]
"""


def test_file_without_a_network_is_unchanged(tmp_path: Path) -> None:
    s = pm.Scenario(
        [10.0, 20.0],
        [5.0, 30.0],
        [12.0, 25.0],
        demand_bids=[(40.0, 0.1)],
        storage=[pm.Storage(power=5.0, energy=10.0, name="b")],
        availability=[[1.0, 0.5], [1.0, 1.0]],
    )
    s.save(tmp_path / "plain.toml")
    assert (tmp_path / "plain.toml").read_text(encoding="utf-8") == UNCHANGED
    # one node under "dc": the same text plus the network key
    s.replace(network="dc").save(tmp_path / "dc.toml")
    text = (tmp_path / "dc.toml").read_text(encoding="utf-8")
    assert text == UNCHANGED.replace("[[40.0, 0.1]]\n", '[[40.0, 0.1]]\nnetwork = "dc"\n')


def test_one_node_explicit_node_lists_are_not_written(tmp_path: Path) -> None:
    """Without [[nodes]] every agent and bid is at node 0: explicit all-zero
    `nodes` / `demand_bid_nodes` of a one-node scenario are left out of the file
    (the core stores all-zero node lists empty: the same market)."""
    s = pm.Scenario(**base(), nodes=[0, 0, 0], demand_bids=[(4.0, 0.1)], demand_bid_nodes=[0])
    s.save(tmp_path / "one.toml")
    text = (tmp_path / "one.toml").read_text(encoding="utf-8")
    assert "node" not in text
    assert s == s.replace(nodes=[], demand_bid_nodes=[])
    assert pm.load_scenario(tmp_path / "one.toml") == s


# --- hand-written files ---------------------------------------------------------------------

GOOD = (
    "[market]\n"  # 1
    'network = "dc"\n'  # 2
    "demand_noise = 0.0\n"  # 3
    "demand_bids = [[40.0, 0.1]]\n"  # 4
    'demand_bid_nodes = ["south"]\n'  # 5
    "\n"  # 6
    "[[nodes]]\n"  # 7
    'name = "north"\n'  # 8
    "demand_share = 0.4\n"  # 9
    "\n"  # 10
    "[[nodes]]\n"  # 11
    'name = "south"\n'  # 12
    "demand_share = 0.6\n"  # 13
    "\n"  # 14
    "[[lines]]\n"  # 15
    'from = "north"\n'  # 16
    'to = "south"\n'  # 17
    "capacity = 10.0\n"  # 18
    "reactance = 0.5\n"  # 19
    "\n"  # 20
    "[[generators]]\n"  # 21
    "capacity = 30.0\n"  # 22
    "cost = 5.0\n"  # 23
    'node = "north"\n'  # 24
    "\n"  # 25
    "[[generators]]\n"  # 26
    "capacity = 20.0\n"  # 27
    "cost = 30.0\n"  # 28
    'node = "south"\n'  # 29
    "\n"  # 30
    "[[storage]]\n"  # 31
    "power = 5.0\n"  # 32
    "energy = 10.0\n"  # 33
    'node = "south"\n'  # 34
    "\n"  # 35
    "[demand]\n"  # 36
    "values = [12.0, 25.0]\n"  # 37
)
EXPECTED = pm.Scenario(
    [30.0, 20.0],
    [5.0, 30.0],
    [12.0, 25.0],
    demand_noise=0.0,
    demand_bids=[(40.0, 0.1)],
    demand_bid_nodes=[1],
    network="dc",
    node_names=["north", "south"],
    demand_shares=[0.4, 0.6],
    lines=[(0, 1, 10.0, 0.5)],
    nodes=[0, 1, 1],
    storage=[pm.Storage(power=5.0, energy=10.0)],
)


def write(tmp_path: Path, text: str, name: str = "grid.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_good_network_file_loads(tmp_path: Path) -> None:
    assert pm.load_scenario(write(tmp_path, GOOD)) == EXPECTED


def test_nodes_by_index_and_defaults(tmp_path: Path) -> None:
    """Indices work where names do; a missing node is node 0; a transport line
    without a reactance gets 1; capacity = inf is a line without a limit."""
    text = (
        GOOD.replace('network = "dc"', 'network = "transport"')
        .replace('demand_bid_nodes = ["south"]', "demand_bid_nodes = [1]")
        .replace('to = "south"', "to = 1")
        .replace("capacity = 10.0", "capacity = inf")
        .replace("reactance = 0.5\n", "")
        .replace('node = "north"\n', "")
        .replace('cost = 30.0\nnode = "south"', "cost = 30.0\nnode = 1")
    )
    s = pm.load_scenario(write(tmp_path, text))
    assert s == EXPECTED.replace(network="transport", lines=[(0, 1, INF, 1.0)])
    assert s.nodes.tolist() == [0, 1, 1]


def test_hourly_shares_inline_and_from_the_csv(tmp_path: Path) -> None:
    inline = GOOD.replace("demand_share = 0.4", "demand_share = [0.4, 0.25]").replace(
        "demand_share = 0.6", "demand_share = [0.6, 0.75]"
    )
    want = EXPECTED.replace(demand_shares=[[0.4, 0.6], [0.25, 0.75]])
    assert pm.load_scenario(write(tmp_path, inline)) == want
    (tmp_path / "d.csv").write_text("hour,demand,n,s\n0,12.0,0.4,0.6\n1,25.0,0.25,0.75\n")
    split = (
        GOOD.replace("demand_share = 0.4", 'demand_share = "n"')
        .replace("demand_share = 0.6", 'demand_share = "s"')
        .replace("values = [12.0, 25.0]", 'csv = "d.csv"')
    )
    assert pm.load_scenario(write(tmp_path, split, "split.toml")) == want
    # a bad share in the CSV: the CSV and its line
    (tmp_path / "d.csv").write_text("hour,demand,n,s\n0,12.0,0.4,0.6\n1,25.0,-0.25,1.25\n")
    with pytest.raises(ValueError) as e:
        pm.load_scenario(tmp_path / "split.toml")
    msg = str(e.value)
    assert msg.startswith(f"{tmp_path / 'd.csv'}: field `nodes[0].demand_share`"), msg
    assert "(line 3)" in msg
    # shares of an hour that do not add up to 1: the CSV line of that hour
    (tmp_path / "d.csv").write_text("hour,demand,n,s\n0,12.0,0.4,0.6\n1,25.0,0.5,0.75\n")
    with pytest.raises(ValueError) as e:
        pm.load_scenario(tmp_path / "split.toml")
    msg = str(e.value)
    assert msg.startswith(f"{tmp_path / 'd.csv'}: field `nodes.demand_share`"), msg
    assert "(line 3)" in msg and "add up to 1" in msg


NO_NODES = (
    "[[generators]]\n"  # 1
    "capacity = 30.0\n"  # 2
    "cost = 5.0\n"  # 3
    "\n"  # 4
    "[demand]\n"  # 5
    "values = [12.0, 25.0]\n"  # 6
)


@pytest.mark.parametrize(
    "text, field, line",
    [
        (NO_NODES.replace("cost = 5.0", 'cost = 5.0\nnode = "north"'), "generators[0].node", 4),
        (NO_NODES.replace("cost = 5.0", "cost = 5.0\nnode = 0"), "generators[0].node", 4),
        (NO_NODES + "[[storage]]\npower = 1.0\nenergy = 2.0\nnode = 0\n", "storage[0].node", 10),
        (NO_NODES + "[[lines]]\nfrom = 0\nto = 1\ncapacity = 1.0\n", "lines[0].from", 8),
        (
            "[market]\ndemand_bids = [[1.0, 0.1]]\ndemand_bid_nodes = [0]\n" + NO_NODES,
            "market.demand_bid_nodes[0]",
            3,
        ),
    ],
)
def test_a_node_in_a_file_without_nodes(tmp_path: Path, text: str, field: str, line: int) -> None:
    p = write(tmp_path, text)
    with pytest.raises(ValueError) as e:
        pm.load_scenario(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}: field `{field}` (line {line}): "), msg
    assert "no [[nodes]] tables" in msg


@pytest.mark.parametrize(
    "old, new, field, line, needle",
    [
        # unknown node names: the valid ones are listed
        ('node = "south"\n\n[[storage]]', 'node = "west"\n\n[[storage]]', "generators[1].node", 29,
         "the nodes are: 'north', 'south'"),
        ('to = "south"', 'to = "West"', "lines[0].to", 17, "is not the name of a node"),
        ('energy = 10.0\nnode = "south"', 'energy = 10.0\nnode = "sud"', "storage[0].node", 34,
         "the nodes are: 'north', 'south'"),
        ('demand_bid_nodes = ["south"]', 'demand_bid_nodes = ["east"]',
         "market.demand_bid_nodes[0]", 5, "is not the name of a node"),
        # indices and types
        ('node = "north"', "node = 2", "generators[0].node", 24, "node index 2 is not in [0, 2)"),
        ('node = "north"', "node = -1", "generators[0].node", 24, "is not in [0, 2)"),
        ('node = "north"', "node = 1.0", "generators[0].node", 24, "got a float"),
        ('node = "north"', "node = true", "generators[0].node", 24, "got a boolean"),
        ('demand_bid_nodes = ["south"]', 'demand_bid_nodes = "south"',
         "market.demand_bid_nodes", 5, "must be an array"),
        # [[lines]]
        ('from = "north"\n', "", "lines[0].from", 15, "is missing"),
        ('to = "south"\n', "", "lines[0].to", 15, "is missing"),
        ("capacity = 10.0\n", "", "lines[0].capacity", 15, "`inf` for no limit"),
        ("reactance = 0.5\n", "", "lines[0].reactance", 15, 'network = "dc" needs'),
        ("capacity = 10.0", 'capacity = "10"', "lines[0].capacity", 18, "must be a number"),
        ("capacity = 10.0", "capacity = -1.0", "lines[0].capacity", 18, "must be >= 0"),
        ("reactance = 0.5", "reactance = 0.0", "lines[0].reactance", 19, "must be finite and > 0"),
        ('to = "south"', 'to = "north"', "lines[0].to", 17, "two different nodes"),
        ("reactance = 0.5", "reactance = 0.5\nlength = 3.0", "lines[0].length", 15,
         "unknown field"),
        # [[nodes]]
        ('name = "south"', 'name = "north"', "nodes[1].name", 12,
         "also the name of nodes[0]; node names must be unique"),
        ('name = "south"\n', "", "nodes[1].name", 11, "is missing"),
        ('name = "south"', "name = 2", "nodes[1].name", 12, "must be a string"),
        ('name = "south"', 'name = " "', "nodes[1].name", 12, "is empty"),
        ("demand_share = 0.6", "demand_share = true", "nodes[1].demand_share", 13,
         "must be a number"),
        ("demand_share = 0.6", 'demand_share = "s"', "nodes[1].demand_share", 13,
         "no `csv` file"),
        ("demand_share = 0.6", "demand_share = {a = 1}", "nodes[1].demand_share", 13,
         "got a table"),
        ("demand_share = 0.6", "demand_share = []", "nodes[1].demand_share", 13,
         "got an array"),
        ("demand_share = 0.6", "demand_share = [0.6, 0.75]", "nodes[1].demand_share", 13,
         "is per hour but nodes[0].demand_share is a number"),
        ("demand_share = 0.4", "demand_share = [0.4, 0.25]", "nodes[1].demand_share", 13,
         "is a number but nodes[0].demand_share is per hour"),
        ("demand_share = 0.6", "demand_share = [0.6, 'x']", "nodes[1].demand_share[1]", 13,
         "must be a number"),
        ("demand_share = 0.6\n", "", "nodes[1].demand_share", 11, "is missing"),
        ("demand_share = 0.4\n", "", "nodes[0].demand_share", 7, "nodes[1] has one"),
        ("demand_share = 0.6", "demand_share = 0.7", "nodes.demand_share", 9, "add up to 1"),
        ("demand_share = 0.6", "demand_share = -0.6", "nodes[1].demand_share", 13, ">= 0"),
        ("demand_share = 0.6", "share = 0.6", "nodes[1].share", 11, "unknown field"),
        # [market]
        ('network = "dc"', 'network = "mesh"', "market.network", 2, "unknown network"),
        ('demand_bid_nodes = ["south"]', 'demand_bid_nodes = ["south", "north"]',
         "market.demand_bid_nodes", 5, "one node per demand bid"),
    ],
)  # fmt: skip
def test_malformed_network_names_file_field_line(
    tmp_path: Path, old: str, new: str, field: str, line: int, needle: str
) -> None:
    assert GOOD.count(old) == 1, old
    p = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(ValueError) as e:
        pm.load_scenario(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}: field `{field}` (line {line}): "), msg
    assert needle in msg, msg


def test_errors_do_not_quote_an_unknown_node_name(tmp_path: Path) -> None:
    secret = "s3cr3t-zone-name"
    p = write(tmp_path, GOOD.replace('node = "north"', f'node = "{secret}"'))
    with pytest.raises(ValueError) as e:
        pm.load_scenario(p)
    assert secret not in str(e.value) and "'north', 'south'" in str(e.value)


def test_hourly_share_length_and_hour(tmp_path: Path) -> None:
    text = GOOD.replace("demand_share = 0.4", "demand_share = [0.4, 0.25, 0.5]")
    text = text.replace("demand_share = 0.6", "demand_share = [0.6, 0.75, 0.5]")
    with pytest.raises(
        ValueError, match=r"field `nodes\[0\]\.demand_share` \(line 9\): has 3 hours"
    ):
        pm.load_scenario(write(tmp_path, text))
    text = GOOD.replace("demand_share = 0.4", "demand_share = [0.4, 1.25]")
    text = text.replace("demand_share = 0.6", "demand_share = [0.6, -0.25]")
    with pytest.raises(ValueError) as e:
        pm.load_scenario(write(tmp_path, text))
    assert str(e.value).startswith(f"{tmp_path / 'grid.toml'}: field `nodes[1].demand_share[1]`")
    assert "(line 13)" in str(e.value)


def test_disconnected_grid_names_the_lines(tmp_path: Path) -> None:
    text = GOOD.replace("[[lines]]", '[[nodes]]\nname = "island"\ndemand_share = 0.0\n\n[[lines]]')
    with pytest.raises(ValueError) as e:
        pm.load_scenario(write(tmp_path, text))
    msg = str(e.value)
    assert msg.startswith(f"{tmp_path / 'grid.toml'}: field `lines` (line 19): "), msg
    assert "connected" in msg


def test_shares_are_needed_with_two_nodes_not_one(tmp_path: Path) -> None:
    text = GOOD.replace("demand_share = 0.4\n", "").replace("demand_share = 0.6\n", "")
    with pytest.raises(ValueError) as e:
        pm.load_scenario(write(tmp_path, text))
    msg = str(e.value)
    assert msg.startswith(f"{tmp_path / 'grid.toml'}: field `nodes[0].demand_share` (line 7): ")
    assert "a market of 2 nodes needs" in msg
    one = '[market]\nnetwork = "dc"\n[[nodes]]\nname = "only"\n' + NO_NODES.replace(
        "cost = 5.0", 'cost = 5.0\nnode = "only"'
    )
    s = pm.load_scenario(write(tmp_path, one, "one.toml"))
    assert s.node_names == ["only"] and s.demand_shares is None and s.num_nodes == 1
    s.save(tmp_path / "saved.toml")
    assert pm.Scenario.load(tmp_path / "saved.toml") == s


def test_nodes_must_be_tables(tmp_path: Path) -> None:
    p = write(tmp_path, 'nodes = ["north"]\n' + NO_NODES)
    with pytest.raises(ValueError, match=r"field `nodes\[0\]` \(line 1\): must be a table"):
        pm.load_scenario(p)
    p = write(tmp_path, "nodes = []\n" + NO_NODES)
    with pytest.raises(ValueError, match=r"field `nodes` \(line 1\): must be one or more"):
        pm.load_scenario(p)


# --- text: byte-order mark, escapes ------------------------------------------------------------


def test_bom_and_escaped_node_names(tmp_path: Path) -> None:
    """A BOM is dropped; `\\U` and `\\u` escapes name the same node as the
    character itself, as an editor may write either."""
    text = (
        GOOD.replace('name = "north"', 'name = "\\U0001F32Cn\\u00f6rd"')
        .replace('from = "north"', 'from = "\U0001f32cn\u00f6rd"')
        .replace('node = "north"', 'node = "\\U0001f32cnörd"')
    )
    p = tmp_path / "bom.toml"
    p.write_text("\ufeff" + text, encoding="utf-8")
    assert p.read_bytes()[:3] == b"\xef\xbb\xbf"
    s = pm.load_scenario(p)
    assert s == EXPECTED.replace(node_names=["\U0001f32cn\u00f6rd", "south"])
    # and an unknown name lists the real one, escaped the way repr escapes it
    p.write_text("\ufeff" + text.replace('to = "south"', 'to = "nord"'), encoding="utf-8")
    with pytest.raises(ValueError) as e:
        pm.load_scenario(p)
    assert "(line 17)" in str(e.value) and "'\U0001f32cn\u00f6rd', 'south'" in str(e.value)


def test_unprintable_node_names_are_escaped_and_round_trip(tmp_path: Path) -> None:
    names = ["a\u200bb", "c\x07d", "e\U000e0001f"]
    s = pm.Scenario(
        **base(),
        network="transport",
        node_names=names,
        nodes=[0, 1, 2],
        lines=[(0, 1, 5.0, 1.0), (1, 2, 5.0, 1.0)],
        demand_shares=[0.2, 0.3, 0.5],
    )
    s.save(tmp_path / "u.toml")
    text = (tmp_path / "u.toml").read_text(encoding="utf-8")
    assert "\\u200b" in text and "\\u0007" in text and "\\U000e0001" in text
    assert pm.load_scenario(tmp_path / "u.toml") == s


# --- the shipped example and an episode -------------------------------------------------------


def test_two_zones_example() -> None:
    s = pm.load_scenario(EXAMPLES / "two_zones.toml")
    assert s.network == "transport" and s.node_names == ["north", "south"]
    assert s.num_lines == 1 and s.nodes.tolist() == [0, 0, 1, 1]
    assert s.availability is not None and s.availability[:, 0].min() < 0.5
    # without noise and with bids at cost, the line binds at the evening peak only
    env = pm.MarketEnv(s.replace(demand_noise=0.0), seed=0)
    env.reset()
    for _ in range(s.t):
        env.step(np.zeros((s.num_agents, 2), np.float32))
    rec = env.episode_record()
    congested = [h for h in range(s.t) if rec["congestion_rent"][h] > 0]
    assert congested == [17, 18, 19]
    np.testing.assert_array_equal(rec["node_prices"][18], [20.0, 60.0])
    np.testing.assert_array_equal(rec["flows"][18], [65.0])
    assert rec["node_prices"][3][0] == rec["node_prices"][3][1]


@pytest.mark.parametrize("name", ["dc_bids_at_nodes", "storage_at_a_node"])
def test_loaded_network_runs_an_episode(tmp_path: Path, name: str) -> None:
    SCENARIOS[name].save(tmp_path / "e.toml")
    s = pm.load_scenario(tmp_path / "e.toml")
    env = pm.MarketEnv(s, seed=3)
    env.reset()
    for h in range(s.t):
        _, rewards, term, trunc, info = env.step(np.zeros((s.num_agents, 2), np.float32))
        assert np.all(np.isfinite(rewards))
        assert info["node_prices"].shape == (s.num_nodes,)
        assert info["flows"].shape == (s.num_lines,)
        assert bool(term or trunc) == (h == s.t - 1)
    # the same episode as the scenario that was saved
    env2 = pm.MarketEnv(SCENARIOS[name], seed=3)
    env2.reset()
    for _ in range(s.t):
        env2.step(np.zeros((s.num_agents, 2), np.float32))
    np.testing.assert_array_equal(env.episode_record()["prices"], env2.episode_record()["prices"])
