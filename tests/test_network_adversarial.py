"""Trying to break the network surface of the env: bad field values,
``replace`` combinations, pickling, VecMarketEnv threads, shortages behind a
line, pay-as-bid, price cap and floor, and DC loop prices outside the offer
range. Every failure must be a clear Python exception naming the argument
(never a panic, a hang or a silent wrong answer) and a failed call changes
no state. The defects this run found are fixed; their tests stay (for
example ``test_vec_env_scratch_follows_the_network``, which runs a batch of
one layout after another in a fresh process).
"""

from __future__ import annotations

import copy
import pickle
import textwrap

import gymnasium as gym
import numpy as np
import pytest
from conftest import run_python, same

import powermarket as pm
from powermarket.gymnasium import ENV_ID

T = 6
BASE = pm.Scenario.default(n=3, t=T)  # 50 MW each at 20, 30, 40 EUR/MWh
TWO = dict(
    network="transport",
    node_names=["n", "s"],
    nodes=[0, 0, 1],
    lines=[(0, 1, 10.0, 0.1)],
    demand_shares=[0.3, 0.7],
)
DC3 = dict(
    network="dc",
    node_names=["a", "b", "c"],
    nodes=[0, 1, 2],
    lines=[(0, 1, 25.0, 0.1), (1, 2, 40.0, 0.2), (0, 2, 15.0, 0.1)],
    demand_shares=[0.2, 0.3, 0.5],
)


def two(**kw) -> pm.Scenario:
    return BASE.replace(**{**TWO, **kw})


def zeros(sc: pm.Scenario, lead=()) -> np.ndarray:
    block = (2,) if sc.segments == 1 else (sc.segments, 2)
    return np.zeros((*lead, sc.num_agents, *block), np.float32)


# ---------------------------------------------------------------- bad fields

BAD_FIELDS = [
    # nodes
    (dict(nodes=[0, 0, 2]), r"`nodes`: gen_2: node 2 is not one of the 2 nodes"),
    (dict(nodes=[0, -1, 1]), r"nodes\[1\] must be an integer node index.*got -1"),
    (dict(nodes=[0, 0.5, 1]), r"nodes\[1\] must be an integer node index.*got 0\.5"),
    (dict(nodes=[0, float("nan"), 1]), r"nodes\[1\].*got NaN"),
    (dict(nodes=[0, float("inf"), 1]), r"nodes\[1\].*got inf"),
    (dict(nodes=[0, 2**40, 1]), r"nodes\[1\].*got 1099511627776"),
    (dict(nodes=[0, 1]), r"`nodes`: has 2 values; give one node per agent \(3"),
    (dict(nodes=[[0, 1, 1]]), r"nodes must be 1-D, got shape \(1, 3\)"),
    (dict(nodes=1), r"nodes must be 1-D, got shape \(\)"),
    # demand shares
    (
        dict(demand_shares=[float("nan"), 1.0]),
        r"`demand_shares`: node 0: .*finite and >= 0, got NaN",
    ),
    (dict(demand_shares=[float("inf"), 0.0]), r"`demand_shares`: node 0: .*got inf"),
    (dict(demand_shares=[-0.5, 1.5]), r"`demand_shares`: node 0: .*got -0\.5"),
    (dict(demand_shares=[0.3, 0.6]), r"`demand_shares`: the shares must add up to 1, got 0\.8999"),
    (dict(demand_shares=[0.3, 0.7 + 1e-8]), r"`demand_shares`: the shares must add up to 1"),
    (dict(demand_shares=[0.3, 0.3, 0.4]), r"`demand_shares`: has 3 values; expected Z = 2"),
    (dict(demand_shares=[[0.3, 0.7]] * 5), r"demand_shares must be \(Z,\) or \(T, Z\) with T = 6"),
    (dict(demand_shares=[[0.3, 0.7]] * 5 + [[0.5, 0.6]]), r"shares in hour 5 must add up to 1"),
    (dict(demand_shares=np.full((6, 2, 1), 0.5)), r"demand_shares must be 2-D"),
    (dict(demand_shares=[]), r"`demand_shares`: has 0 values"),
    (dict(demand_shares=None), r"`demand_shares`: a market of 2 nodes needs the share"),
    # lines
    (dict(lines=[(0, 0, 10.0, 0.1)]), r"`lines`: lines\[0\] to: a line must join two different"),
    (dict(lines=[(0, 1, 10.0, 0.1), (1, 1, 5.0, 0.1)]), r"lines\[1\] to: .*1 -> 1"),
    (dict(lines=[]), r"`lines`: .*connected, but node 1 is not reachable from node 0"),
    (dict(lines=[(0, 1, -5.0, 0.1)]), r"lines\[0\] capacity: must be >= 0 MW.*got -5"),
    (dict(lines=[(0, 1, float("nan"), 0.1)]), r"lines\[0\] capacity: .*got NaN"),
    (dict(lines=[(0, 0.5, 10.0, 0.1)]), r"lines\[0\] to: must be an integer node index.*0\.5"),
    (dict(lines=[(0, 2, 10.0, 0.1)]), r"lines\[0\] to: .*got 2"),
    (dict(lines=[(-1, 1, 10.0, 0.1)]), r"lines\[0\] from: .*got -1"),
    (dict(lines=[(float("nan"), 1, 10.0, 0.1)]), r"lines\[0\] from: .*got NaN"),
    (dict(lines=[(0, 1, 10.0)]), r"lines must have shape \(L, 4\).*got \(1, 3\)"),
    (dict(lines=[0, 1, 10.0, 0.1]), r"lines must be 2-D, got shape \(4,\)"),
    (dict(network="dc", lines=[(0, 1, 10.0, float("nan"))]), r"reactance: must be finite"),
    (dict(network="dc", lines=[(0, 1, 10.0, 0.0)]), r"lines\[0\] reactance: .*got 0"),
    (dict(network="dc", lines=[(0, 1, 10.0, -0.1)]), r"lines\[0\] reactance: .*got -0\.1"),
    (dict(network="dc", lines=[(0, 1, 10.0, float("inf"))]), r"lines\[0\] reactance: .*got inf"),
    # node names
    (dict(node_names=["a", "a"]), r"`node_names`: nodes 0 and 1 are both named \"a\""),
    (dict(node_names=["", "b"]), r"`node_names`: node 0 has an empty name"),
    (dict(node_names=[" ", "b"]), r"`node_names`: node 0 has an empty name"),
    (dict(node_names=[1, 2]), r"node_names: node 0 must be a string, got 1"),
    (dict(node_names="ab"), r"node_names must be a list of strings, got the string 'ab'"),
    (dict(node_names=["a", "b", "c"]), r"`demand_shares`: has 2 values; expected Z = 3"),
    (dict(node_names=[f"x{i}" for i in range(5000)]), r"`node_names`: .*at most 1024 nodes"),
    # network
    (dict(network="ac"), r"`network`: unknown network \"ac\"; valid values are: copper"),
    (dict(network=1), r"`network` must be a string"),
    # demand bids at nodes
    (dict(demand_bid_nodes=[1]), r"`demand_bid_nodes`: has 1 values; give one node per demand"),
    (dict(demand_bids=[(50.0, 0.2)], demand_bid_nodes=[2]), r"bid 0: node 2 is not one of"),
    (dict(demand_bids=[(50.0, 0.2)], demand_bid_nodes=[-1]), r"demand_bid_nodes\[0\].*got -1"),
    (dict(demand_bids=[(50.0, 0.2)], demand_bid_nodes=[0.5]), r"demand_bid_nodes\[0\].*0\.5"),
    (
        dict(demand_bids=[(50.0, 0.6), (40.0, 0.6)], demand_bid_nodes=[1, 1]),
        r"`demand_bids`: shares at node 1 must sum to at most 1, got 1\.2",
    ),
    (dict(demand_bids=[(50.0, 0.6), (40.0, 0.6)]), r"shares at node 0 must sum to at most 1"),
    # (T, Z) demand
    (dict(demand=np.full((6, 2), 20.0)), r"a \(T, Z\) demand gives each node's demand; do not"),
    (
        dict(demand=np.array([[0.0, 0.0]] + [[10.0, 20.0]] * 5), demand_shares=...),
        r"`demand`: hour 0 must be finite and > 0, got 0",
    ),
    (
        dict(demand=np.array([[np.nan, 20.0]] * 6), demand_shares=...),
        r"`demand`: hour 0, node 0: a node's demand must be finite and >= 0, got NaN",
    ),
    (dict(demand=np.zeros((6, 0)), demand_shares=...), r"demand of shape \(T, 0\)"),
]


@pytest.mark.parametrize(("fields", "match"), BAD_FIELDS)
def test_a_bad_network_field_is_a_value_error_naming_it(fields, match):
    fields = {k: v for k, v in {**TWO, **fields}.items() if v is not Ellipsis}
    s = two()
    before = s.to_dict()
    with pytest.raises(ValueError, match=match):
        BASE.replace(**fields)
    with pytest.raises(ValueError, match=match):
        s.replace(**fields)
    assert s.to_dict() == before  # a failed replace changes nothing
    d = BASE.to_dict()
    d.update(fields)
    with pytest.raises(ValueError, match=match):
        pm.Scenario.from_dict(d)


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        (dict(nodes=["0", 0, 1]), r"nodes must be real numbers, got an array of dtype <U"),
        (dict(nodes=[0, 2**64, 1]), r"nodes must be real numbers, got an array of dtype object"),
        (dict(nodes=[0, 1j, 1]), r"nodes must be real numbers, got an array of dtype complex"),
        (dict(demand_shares="abc"), r"demand_shares must be numbers"),
        (dict(lines="x"), r"lines must be numbers"),
    ],
)
def test_a_field_of_the_wrong_type_is_a_type_error_naming_it(fields, match):
    with pytest.raises(TypeError, match=match):
        two(**fields)


def test_edge_values_that_are_accepted_and_what_they_mean():
    # integral floats and bools are node indices, as numpy and pm.clear_network read them
    assert two(nodes=[0, 1.0, 1]).nodes.tolist() == [0, 1, 1]
    assert two(nodes=[True, False, True]).nodes.tolist() == [1, 0, 1]
    # shares within 1e-9 of 1 are kept as given
    assert two(demand_shares=[0.3, 0.7 + 1e-10]).demand_shares[1] == 0.7 + 1e-10
    # no limit; and a line of capacity 0 joins nothing (each node on its own)
    assert two(lines=[(0, 1, np.inf, 0.1)]).lines[0, 2] == np.inf
    e = pm.MarketEnv(two(lines=[(0, 1, 0.0, 0.1)], demand_noise=0.0), seed=0)
    e.reset()
    info = e.step(zeros(e.scenario))[4]
    assert info["flows"].tolist() == [0.0] and info["node_prices"].tolist() == [20.0, 40.0]
    # names filled in when a networked scenario gives none
    assert two(node_names=None).node_names == ["node_0", "node_1"]
    s = pm.Scenario(
        [50, 50], [10, 20], [30.0, 30.0], network="dc", lines=[(0, 1, 5, 1), (1, 2, 5, 1)],
        demand_shares=[0.5, 0.5, 0.0],
    )  # fmt: skip
    assert s.node_names == ["node_0", "node_1", "node_2"] and s.num_nodes == 3
    # a (T, Z) demand is hourly totals and shares
    s = two(demand=np.array([[10.0, 20.0]] * 6), demand_shares=None)
    assert s.demand.tolist() == [30.0] * 6 and s.demand_shares.shape == (6, 2)
    np.testing.assert_array_equal(s.node_demand, [[10.0, 20.0]] * 6)


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        (dict(nodes=[0, 10**6]), r"`nodes`: a network has at most 1024 nodes; .*implies 1000001"),
        (dict(nodes=[0, 3]), r"`demand_shares`: a market of 4 nodes needs the share"),
    ],
)
def test_implied_node_counts_are_checked(fields, match):
    with pytest.raises(ValueError, match=match):
        pm.Scenario([50, 50], [10, 20], [30.0, 30.0], **fields)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        (dict(lines=[(0, 1e9, 5, 1)]), "lines"),
        (dict(demand_bids=[(5, 0.1)], demand_bid_nodes=[4e9]), "demand_bid_nodes"),
    ],
)
def test_implied_node_count_errors_name_the_field_that_implies_them(fields, field):
    with pytest.raises(ValueError, match=rf"`{field}`"):
        pm.Scenario([50, 50], [10, 20], [30.0, 30.0], **fields)


def test_a_negative_node_demand_names_demand():
    with pytest.raises(ValueError, match=r"`demand`"):
        two(demand=np.array([[-10.0, 20.0]] * 6), demand_shares=None)


def test_a_nan_reactance_under_transport_is_refused_or_round_trips():
    try:
        s = two(lines=[(0, 1, 10.0, float("nan"))])
    except ValueError as e:
        assert "reactance" in str(e)
        return
    assert s == s
    assert pickle.loads(pickle.dumps(s)) == s and pm.Scenario.from_dict(s.to_dict()) == s


# ---------------------------------------------------------------- replace


def test_replace_combinations():
    s = two(demand_shares=np.array([[0.3, 0.7]] * 6))
    # a demand of another T with (T, Z) shares: refused, naming the shares
    with pytest.raises(ValueError, match=r"demand_shares must be \(Z,\) or \(T, Z\) with T = 4"):
        s.replace(demand=[50.0] * 4)
    assert s.replace(demand=[50.0] * 4, demand_shares=[0.5, 0.5]).t == 4
    # a new (T, Z) demand brings its own shares, even of another T
    np.testing.assert_array_equal(s.replace(demand=np.full((4, 2), 20.0)).demand_shares, 0.5)
    with pytest.raises(ValueError, match=r"`demand_shares`: has 12 values; expected Z = 2"):
        s.replace(demand=np.full((4, 3), 20.0))
    # the network alone
    assert s.replace(network="dc").network == "dc"
    c = s.replace(network="copper")
    assert (c.network, c.num_nodes, c.num_lines) == ("copper", 2, 1)
    # storage added: one node per agent is needed again
    with pytest.raises(ValueError, match=r"`nodes`: has 3 values; give one node per agent \(4"):
        s.replace(storage=[pm.Storage(power=5, energy=10)])
    s4 = s.replace(storage=[pm.Storage(power=5, energy=10)], nodes=[0, 0, 1, 1])
    assert s4.nodes.tolist() == [0, 0, 1, 1] and s4.replace(storage=[], nodes=[0, 0, 1]) == s
    with pytest.raises(ValueError, match=r"`nodes`: has 3 values.*\(4: the 4 generators"):
        s.replace(capacities=[50] * 4, costs=[10, 20, 30, 40])
    assert s.replace(nodes=[]).nodes.tolist() == [0, 0, 0]
    off = dict(network="copper", node_names=[], nodes=[], lines=[], demand_shares=None)
    assert s.replace(**off) == BASE
    for sc in (s, s4, two(), BASE.replace(**DC3)):
        assert pm.Scenario.from_dict(sc.to_dict()) == sc
        assert pickle.loads(pickle.dumps(sc)) == sc and copy.deepcopy(sc) == sc


# ---------------------------------------------------------------- files


def test_a_networked_scenario_round_trips_through_a_file(tmp_path):
    s = two()
    s.save(tmp_path / "s.toml")
    assert pm.Scenario.load(tmp_path / "s.toml") == s


def test_saving_demand_bid_nodes_works_or_names_the_field(tmp_path):
    s = two(demand_bids=[(50.0, 0.2)], demand_bid_nodes=[1])
    try:
        s.save(tmp_path / "s.toml")
    except (TypeError, ValueError) as e:
        assert "demand_bid_nodes" in str(e)
        return
    assert pm.Scenario.load(tmp_path / "s.toml") == s


# ---------------------------------------------------------------- stepping


@pytest.mark.parametrize("network", ["transport", "dc"])
def test_one_node_networks_equal_the_copper_plate(network):
    """network != 'copper' with one node: networked outputs, today's market."""
    outs = []
    for net in ("copper", network):
        sc = BASE.replace(network=net)
        e = pm.MarketEnv(sc, seed=3, observer="market")
        e.reset()
        rng = np.random.default_rng(0)
        out = []
        for _ in range(T):
            o, r, _, _, info = e.step(rng.uniform(-1, 1, (3, 2)).astype(np.float32))
            out.append((o, r, info["price"]))
            if net != "copper":
                assert info["node_prices"].tolist() == [info["price"]]
                assert info["flows"].shape == (0,) and info["congestion_rent"] == 0.0
        outs.append(out)
    for x, y in zip(*outs, strict=True):
        assert same(x[0], y[0]) and same(x[1], y[1]) and x[2] == y[2]


@pytest.mark.parametrize(
    ("rules", "south_price"),
    [(dict(price_cap=300.0), 300.0), (dict(shortage_price=500.0), 500.0)],
)
def test_a_shortage_behind_a_line_prices_the_node_and_penalises_the_total(rules, south_price):
    """Every generator in the north, 70% of demand in the south, 10 MW of line:
    the south sheds, is priced at the cap or shortage price, and every agent
    pays the loss-of-load penalty on the total unserved demand."""
    sc = two(nodes=[0, 0, 0], demand_noise=0.0, lol_penalty=2.0, **rules)
    e = pm.MarketEnv(sc, seed=0)
    e.reset()
    per_mw = []
    for h in range(T):
        _, r, _, _, info = e.step(zeros(sc))
        d = sc.demand[h]
        south, north = 0.7 * d, 0.3 * d
        assert info["node_prices"][1] == south_price
        assert info["flows"].tolist() == [10.0]
        assert info["shortfall"] == pytest.approx(south - 10.0, rel=1e-12)
        assert info["congestion_rent"] == pytest.approx(10.0 * (south_price - 20.0))
        want = (north * info["node_prices"][0] + south * south_price) / d
        assert info["price"] == pytest.approx(want, rel=1e-12)
        # gen_0 (cost 20) serves the north and the line at its bid: no profit,
        # so its reward is the penalty alone, shared by every agent
        assert r[0] == r[1] == r[2] < 0
        per_mw.append(r[0] / (sc.lol_penalty * info["shortfall"]))
    np.testing.assert_allclose(per_mw, per_mw[0], rtol=1e-6)


@pytest.mark.parametrize("model", ["transport", "dc"])
def test_load_that_can_be_served_is_not_shed(model):
    lines = np.array([(0, 1, 10.0, 1.0), (0, 2, 0.0, 1.0)])
    prices, cleared, flows = pm.clear_network(
        [85.0], [8.0], [0], [0.0, 1.0, 1.0], lines, model=model
    )
    assert cleared.tolist() == [1.0] and flows.tolist() == [1.0, 0.0]
    sc = pm.Scenario(
        [8.0], [85.0], [2.0] * 3, network=model, node_names=["g", "ok", "cut"], nodes=[0],
        lines=lines, demand_shares=[0.0, 0.5, 0.5], demand_noise=0.0,
    )  # fmt: skip
    e = pm.MarketEnv(sc, seed=0)
    e.reset()
    assert e.step(np.zeros((1, 2), np.float32))[4]["shortfall"] == 1.0


def test_a_dc_loop_serves_the_load_it_can_without_a_shortage_price():
    prices, cleared, flows = pm.clear_network(
        [20.0, 40.0], [200.0, 200.0], [0, 1], [0.0, 0.0, 100.0], np.array(LOOP["lines"])
    )
    assert cleared.sum() == pytest.approx(100.0)


def test_pay_as_bid_pays_each_offer_its_bid_and_uniform_its_node_price():
    acts = np.array([[0.0, 0.2], [0.0, -0.3], [0.0, 0.1]], np.float32)
    for mech in ("pay_as_bid", "uniform"):
        sc = two(mechanism=mech, demand_noise=0.0)
        e = pm.MarketEnv(sc, seed=0)
        e.reset()
        for _ in range(T):
            e.step(acts)
        rec = e.episode_record()
        cleared = rec["cleared"] > 0
        want = rec["bids"] if mech == "pay_as_bid" else rec["node_prices"][:, sc.nodes]
        assert same(rec["paid"][cleared], want[cleared])
        assert np.any(rec["node_prices"][:, 0] != rec["node_prices"][:, 1])


def test_price_cap_and_floor_bound_every_node_price():
    sc = two(price_floor=25.0, price_cap=35.0, demand_noise=0.0)
    e = pm.MarketEnv(sc, seed=0, observer="market")
    lo, hi = e.observation_bounds()
    obs, _ = e.reset()
    rng = np.random.default_rng(1)
    for _ in range(T):
        obs, _, _, _, info = e.step(rng.uniform(-1, 1, (3, 2)).astype(np.float32) * [1, 8])
        assert np.all((info["node_prices"] >= 25.0) & (info["node_prices"] <= 35.0))
        assert (obs >= lo).all() and (obs <= hi).all()
    rec = e.episode_record()
    assert np.all((rec["bids"] >= 25.0) & (rec["bids"] <= 35.0))


LOOP = dict(
    network="dc",
    node_names=["a", "b", "c"],
    nodes=[0, 1, 2],
    lines=[(0, 1, 1000.0, 1.0), (1, 2, 1000.0, 1.0), (0, 2, 40.0, 1.0)],
    demand_shares=[0.0, 0.0, 1.0],
)


def test_a_dc_loop_prices_a_node_beyond_every_offer_and_obs_stay_in_bounds():
    """Cheap a, dearer b, load at c, a tight a-c line: c's LMP is 2 x 40 - 20 =
    60, above every offer (cost + max_bid_delta = 45); the "market" observer's
    price feature is unbounded under "dc" and holds that price. (A shortage
    price above 60 is needed: see test_load_that_can_be_served_is_not_shed.)"""
    sc = pm.Scenario(
        [200.0, 200.0, 1.0], [20.0, 40.0, 40.0], [100.0] * 2, max_bid_delta=5.0,
        demand_noise=0.0, shortage_price=500.0, **LOOP,
    )  # fmt: skip
    for observer in pm.OBSERVERS:
        e = pm.MarketEnv(sc, seed=0, observer=observer)
        lo, hi = e.observation_bounds()
        obs, _ = e.reset()
        for _ in range(2):
            obs, _, _, _, info = e.step(np.zeros((3, 2), np.float32))
            assert (obs >= lo).all() and (obs <= hi).all(), observer
        assert info["shortfall"] == 0.0
        assert info["node_prices"][2] == pytest.approx(60.0, rel=1e-9)
        assert info["node_prices"][2] > max(sc.costs) + sc.max_bid_delta
        assert info["flows"][2] == pytest.approx(40.0)
        if observer in ("market", "market_v2"):
            assert obs[2, 4] == pytest.approx(60.0 / 40.0, rel=1e-6)
            assert hi[2, 4] == np.finfo(np.float32).max
            # under "transport" the feature keeps its finite bound
            t_hi = pm.MarketEnv(sc.replace(network="transport"), observer=observer)
            assert np.isfinite(t_hi.observation_bounds()[1][:, 4]).all()


def test_failed_calls_change_no_state():
    sc = two(storage=[pm.Storage(power=10, energy=20)], nodes=[0, 0, 1, 1])
    env, twin = pm.MarketEnv(sc, seed=2), pm.MarketEnv(sc, seed=2)
    env.reset()
    twin.reset()
    rng = np.random.default_rng(0)
    bad = zeros(sc)
    bad[3, 0] = np.nan
    for _h in range(T):
        with pytest.raises(pm.ActionError, match=r"sto_0: a0.*NaN"):
            env.step(bad)
        with pytest.raises(ValueError, match=r"\(4, 2\)"):
            env.step(np.zeros((3, 2), np.float32))
        a = rng.uniform(-1, 1, (4, 2)).astype(np.float32)
        x, y = env.step(a), twin.step(a)
        assert same(x[0], y[0]) and same(x[1], y[1])
        assert same(x[4]["node_prices"], y[4]["node_prices"])
    with pytest.raises(RuntimeError):
        env.step(zeros(sc))  # the episode is over
    assert same(env.episode_record()["flows"], twin.episode_record()["flows"])

    # the vector env: a raising opponent callable rolls everything back
    calls = {"n": 0}

    def steady(obs):
        return np.array([-0.5, 0.5], np.float32)

    def flaky(obs):
        calls["n"] += 1
        if calls["n"] == 3:  # the second step's first market
            raise KeyError("boom")
        return steady(obs)

    kw = dict(scenario=sc, agent=0, seed=5, num_envs=2, vectorization_mode="vector_entry_point")
    venv = gym.make_vec(ENV_ID, opponents=["truthful", ("markup", 5.0), flaky], **kw).unwrapped
    ref = gym.make_vec(ENV_ID, opponents=["truthful", ("markup", 5.0), steady], **kw).unwrapped
    venv.reset(seed=5)
    ref.reset(seed=5)
    a = np.zeros((2, 2), np.float32)
    x, y = venv.step(a), ref.step(a)
    saved = venv._last_prices.copy()
    with pytest.raises(KeyError, match="boom"):
        venv.step(a)
    assert same(venv._last_prices, saved)
    for _ in range(T):
        x, y = venv.step(a), ref.step(a)
        assert same(x[0], y[0]) and same(x[1], y[1])
        assert same(x[4]["node_prices"], y[4]["node_prices"])


# ---------------------------------------------------------------- vector, threads, pickles


@pytest.mark.parametrize("fields", [TWO, DC3])
def test_many_markets_and_threads_give_one_answer(fields):
    sc = BASE.replace(**fields, segments=2)
    m = 97
    runs = []
    for threads in (1, 2, 3):
        vec = pm.VecMarketEnv(sc, num_envs=m, seed=11, num_threads=threads)
        vec.reset()
        rng = np.random.default_rng(3)
        out = []
        for _ in range(T + 2):
            a = rng.uniform(-0.2, 1.2, (m, 3, 2, 2)).astype(np.float32)
            obs, rew, _, _, info = vec.step(a)
            out += [obs.copy(), rew.copy(), info["node_prices"].copy(), info["flows"].copy()]
            out.append(info["congestion_rent"].copy())
        runs.append(out)
    for other in runs[1:]:
        assert all(same(x, y) for x, y in zip(runs[0], other, strict=True))
    # and market i equals a MarketEnv of the same seed and stream (spot check)
    vec = pm.VecMarketEnv(sc, num_envs=m, seed=[100 + i for i in range(m)], num_threads=2)
    vec.reset()
    singles = {i: pm.MarketEnv(sc, seed=100 + i) for i in (0, 50, 96)}
    for e in singles.values():
        e.reset()
    rng = np.random.default_rng(4)
    for _ in range(T):
        a = rng.uniform(-0.2, 1.2, (m, 3, 2, 2)).astype(np.float32)
        _, rew, _, _, info = vec.step(a)
        for i, e in singles.items():
            _, r, _, _, inf = e.step(a[i])
            assert same(r, rew[i]) and same(inf["node_prices"], info["node_prices"][i])
            assert same(inf["flows"], info["flows"][i])


def test_pickles_mid_episode_continue_as_the_original():
    sc = BASE.replace(
        **{**DC3, "storage": [pm.Storage(power=10, energy=20)], "nodes": [0, 1, 2, 2]}
    )
    sc = sc.replace(demand_shares=np.tile([0.2, 0.3, 0.5], (T, 1)))
    env = pm.MarketEnv(sc, seed=1, observer="market_v2")
    vec = pm.VecMarketEnv(sc, num_envs=3, seed=1, observer="market_v2", num_threads=2)
    pz = pm.parallel_env(sc, seed=1, observer="market_v2")
    g = gym.make(
        ENV_ID, scenario=sc, agent="sto_0", opponents=[("markup", 3.0)] * 3 + [None], seed=1
    ).unwrapped
    env.reset()
    vec.reset()
    pz.reset(seed=1)
    g.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(2):
        a = rng.uniform(-1, 1, (3, 4, 2)).astype(np.float32)
        env.step(a[0])
        vec.step(a)
        pz.step(dict(zip(pz.agents, a[0], strict=True)))
        g.step(a[0, 3])
    for obj in (env, vec, pz, g):
        clone = pickle.loads(pickle.dumps(obj))
        deep = copy.deepcopy(obj)
        a = rng.uniform(-1, 1, (3, 4, 2)).astype(np.float32)
        if obj is vec:
            outs = [o.step(a) for o in (obj, clone, deep)]
        elif obj is pz:
            outs = [o.step(dict(zip(o.agents, a[0], strict=True))) for o in (obj, clone, deep)]
            outs = [(x[0]["sto_0"], x[1]["sto_0"], x[4]["sto_0"]["node_prices"]) for x in outs]
        elif obj is g:
            outs = [o.step(a[0, 3]) for o in (obj, clone, deep)]
        else:
            outs = [o.step(a[0]) for o in (obj, clone, deep)]
        for x in outs[1:]:
            assert same(outs[0][0], x[0]) and same(outs[0][1], x[1])
            if obj is pz:
                assert same(outs[0][2], x[2])
            else:
                assert same(outs[0][4]["node_prices"], x[4]["node_prices"])


def test_opponents_take_node_prices():
    """_core.Opponents: one price, Z node prices, or (M, Z) for a batch."""
    sc = two(storage=[pm.Storage(power=10, energy=20)], nodes=[0, 0, 1, 1])
    ops = pm._core.Opponents(["truthful"] * 3 + [("arbitrage", 30.0, 38.0)], 50.0, scenario=sc)
    a = np.zeros((4, 2), np.float32)
    ops.fill(a, 0, [20.0, 40.0])  # the unit at node 1 sees 40: it sells
    assert a[3, 0] == 1.0
    ops.fill(a, 0, [40.0, 20.0])
    assert a[3, 0] == -1.0
    ops.fill(a, 0, 40.0)  # one price: every agent sees it
    assert a[3, 0] == 1.0
    batch = pm._core.Opponents(
        ["truthful"] * 3 + [("arbitrage", 30.0, 38.0)], 50.0, num_markets=2, scenario=sc
    )
    b = np.zeros((2, 4, 2), np.float32)
    batch.fill_batch(b, 0, [20.0, 40.0, 40.0, 20.0])
    assert b[:, 3, 0].tolist() == [1.0, -1.0]
    with pytest.raises(ValueError, match=r"last_prices: expected one per market \(2\)"):
        batch.fill_batch(b, 0, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="last_price must be a float or a sequence"):
        ops.fill(a, 0, "x")
    assert pickle.loads(pickle.dumps(ops)).fill(a, 0, [40.0, 20.0]) is None and a[3, 0] == -1.0


def test_the_vector_env_resets_the_node_prices_of_the_markets_it_resets():
    sc = two(storage=[pm.Storage(power=10, energy=20)], nodes=[0, 0, 1, 1])
    venv = gym.make_vec(
        ENV_ID, num_envs=3, vectorization_mode="vector_entry_point", scenario=sc, agent=0,
        opponents=["truthful"] * 3 + [("arbitrage", 30.0, 38.0)], seed=0,
    ).unwrapped  # fmt: skip
    venv.reset(seed=0)
    assert venv._last_prices.shape == (3, 2) and np.isnan(venv._last_prices).all()
    venv.step(np.zeros((3, 2), np.float32))
    assert np.isfinite(venv._last_prices).all()
    venv.reset(options={"reset_mask": np.array([True, False, True])})
    assert np.isnan(venv._last_prices[[0, 2]]).all() and np.isfinite(venv._last_prices[1]).all()


SCRATCH = textwrap.dedent(
    """
    import numpy as np, powermarket as pm
    base = pm.Scenario.default(n=3, t=6)
    tri = dict(network="dc", node_names=["a", "b", "c"], nodes=[0, 1, 2],
               demand_shares=[0.2, 0.3, 0.5])
    path = base.replace(**tri, lines=[(0, 1, 25.0, 0.1), (1, 2, 40.0, 0.2)])
    loop = base.replace(**tri, lines=[(0, 1, 25.0, 0.1), (1, 2, 40.0, 0.2), (0, 2, 15.0, 0.1)])
    two = dict(node_names=["n", "s"], nodes=[0, 0, 1], demand_shares=[0.3, 0.7])
    copper = base.replace(**two, network="copper")
    transport = base.replace(**two, network="transport", lines=[(0, 1, 10.0, 0.1)])
    first, second = {FIRST}, {SECOND}
    x = np.zeros((1, 3, 2), np.float32)
    v = pm.VecMarketEnv(first, num_envs=1, seed=0)
    v.reset()
    v.step(x)
    v = pm.VecMarketEnv(second, num_envs=1, seed=0)
    v.reset()
    e = pm.MarketEnv(second, seed=0)
    e.reset()
    a, b = v.step(x)[4], e.step(x[0])[4]
    assert np.array_equal(a["flows"][0], b["flows"]), (a["flows"], b["flows"])
    assert np.array_equal(a["node_prices"][0], b["node_prices"]), (a, b)
    print("ok")
    """
)


@pytest.mark.parametrize(
    ("first", "second"), [("copper", "transport"), ("path", "loop"), ("loop", "path")]
)
def test_vec_env_scratch_follows_the_network(first, second):
    out = run_python(SCRATCH.replace("{FIRST}", first).replace("{SECOND}", second))
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-600:]


def test_analysis_takes_networks_and_plots_draw_them():
    from powermarket import analysis

    sc = two()
    c = analysis.competitive(sc)
    assert np.asarray(c["node_prices"]).shape == (sc.t, sc.num_nodes)
    pytest.importorskip("matplotlib")
    from powermarket import plot

    e = pm.MarketEnv(sc, seed=0)
    e.reset()
    e.step(zeros(sc))
    assert plot.render(e, "rgb_array").ndim == 3


@pytest.mark.parametrize(
    ("fields", "width"),
    [(dict(network="copper"), 2), (dict(node_names=[], nodes=[], lines=[], demand_shares=None), 1)],
)
def test_the_vector_env_passes_node_prices_of_every_networked_layout(fields, width):
    """A copper plate of two nodes and a one-node transport network are
    networked too: the opponents get (M, Z) node prices."""
    sc = two(**fields)
    venv = gym.make_vec(
        ENV_ID, num_envs=2, vectorization_mode="vector_entry_point", scenario=sc, agent=0,
        opponents="truthful", seed=0,
    ).unwrapped  # fmt: skip
    venv.reset(seed=0)
    _, _, _, _, info = venv.step(np.zeros((2, 2), np.float32))
    assert venv._last_prices.shape == (2, width)
    assert same(venv._last_prices, info["node_prices"])


@pytest.mark.parametrize("network", ["transport", "dc"])
def test_lines_that_never_bind_give_the_copper_plate_of_the_same_nodes(network):
    """Bit for bit (docs/semantics.md, 'Copper plate first'), storage, blocks
    and demand bids at nodes included; only the flows differ (0 on copper).
    With a cap: without one, a meshed "dc" grid prices a shortage above the
    copper plate's (its shedding price is raised for loop flows)."""
    base = BASE.replace(segments=2, storage=[pm.Storage(power=10, energy=20)], price_cap=300.0)
    fields = dict(
        node_names=["n", "s", "w"],
        nodes=[0, 1, 2, 1],
        lines=[(0, 1, np.inf, 0.1), (1, 2, np.inf, 0.3), (0, 2, 1e6, 0.2)],
        demand_shares=[0.2, 0.5, 0.3],
        demand_bids=[(60.0, 0.2), (45.0, 0.1)],
        demand_bid_nodes=[1, 2],
    )
    runs = []
    for net in ("copper", network):
        e = pm.MarketEnv(base.replace(network=net, **fields), seed=3, observer="market_v2")
        out = [e.reset()[0]]
        rng = np.random.default_rng(0)
        for _ in range(T):
            o, r, *_ = e.step(rng.uniform(-1, 1, (4, 2, 2)).astype(np.float32))
            out += [o, r]
        runs.append((out, e.episode_record()))
    (x, rx), (y, ry) = runs
    assert all(same(a, b) for a, b in zip(x, y, strict=True))
    assert rx.keys() == ry.keys()
    assert all(same(rx[k], ry[k]) for k in rx if k != "flows")
    assert not rx["flows"].any() and ry["flows"].any()


def test_an_unbounded_price_feature_passes_gymnasium_check_env():
    """Under "dc" the "market" observer's price feature spans float32's range."""
    sc = BASE.replace(**DC3)
    g = gym.make(ENV_ID, scenario=sc, agent=0, observer="market", seed=0).unwrapped
    assert g.observation_space.high[4] == np.finfo(np.float32).max
    from gymnasium.utils.env_checker import check_env

    check_env(g, skip_render_check=True)
    assert np.isfinite(g.observation_space.sample()).all()


@pytest.mark.integration  # stable-baselines3 and torchrl (make test-integration)
def test_an_unbounded_price_feature_passes_sb3_and_torchrl_checks():
    pytest.importorskip("stable_baselines3")
    pytest.importorskip("torchrl")
    from stable_baselines3.common.env_checker import check_env as sb3_check_env
    from torchrl.envs.utils import check_env_specs

    from powermarket.torchrl import MarketEnv as TorchMarketEnv

    sc = BASE.replace(**DC3)
    sb3_check_env(gym.make(ENV_ID, scenario=sc, agent=0, observer="market", seed=0).unwrapped)
    t = TorchMarketEnv(sc, num_envs=2, seed=0, observer="market")
    check_env_specs(t)
    assert t.rollout(T + 2)["agents", "observation"].isfinite().all()
