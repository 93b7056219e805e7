"""Grids from pandapower and PyPSA (powermarket.grid, docs/grids.md).

Integration tests: pandapower and PyPSA come with `make test-integration`
(the `grid` extra); every test here is skipped without them. The
differential tests clear one hour of an imported grid with
``pm.clear_network`` and compare the node prices and the cost with the
grid library's own DC optimal power flow on the same grid.
"""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest

import powermarket as pm
from powermarket import grid

pytestmark = pytest.mark.integration

# Shedding strictly dearer than every offer: pandapower's and PyPSA's OPFs do
# not shed load, and with the default V (= the highest offer) shedding ties
# with the dearest offer, so the LP optimum would not be unique.
SHORTAGE = 1e4


def _pp():
    pytest.importorskip("pandapower")
    import pandapower as pp
    import pandapower.networks as pn

    return pp, pn


def _clear_hour(kw: dict, hour: int = 0, quantities=None):
    shares = np.asarray(kw["demand_shares"], dtype=float)
    if shares.ndim == 2:
        shares = shares[hour]
    node_demand = kw["demand"][hour] * shares
    q = np.asarray(kw["capacities"] if quantities is None else quantities, dtype=float)
    prices, cleared, flows = pm.clear_network(
        bids=np.asarray(kw["costs"], dtype=float),
        quantities=q,
        nodes=np.asarray(kw["nodes"]),
        demand=node_demand,
        lines=np.asarray(kw["lines"], dtype=float).reshape(-1, 4),
        model="dc",
        shortage_price=SHORTAGE,
    )
    cost = float(np.dot(kw["costs"], cleared))
    return prices, cleared, flows, cost


def _linear_opf_net(net):
    """Make pandapower's OPF the LP the market clears: linear costs (cp1 only),
    no minimum outputs. The imported costs are cp1 either way."""
    net.poly_cost["cp0_eur"] = 0.0
    net.poly_cost["cp2_eur_per_mw2"] = 0.0
    for table in ("ext_grid", "gen", "sgen"):
        if len(net[table]):
            net[table]["min_p_mw"] = 0.0
    return net


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))


# ---------------------------------------------------------------------------
# pandapower: what the import holds


@pytest.mark.parametrize("case", ["case6ww", "case24_ieee_rts"])
def test_pandapower_case_totals(case: str) -> None:
    pp, pn = _pp()
    net = getattr(pn, case)()
    g = grid.extract_pandapower(net)
    kw = g.kwargs

    assert len(kw["node_names"]) == len(net.bus) == int(net.bus.in_service.sum())
    assert kw["node_names"] == [str(n) for n in net.bus.name]  # unique names kept
    units = [
        (table, idx)
        for table in ("ext_grid", "gen", "sgen")
        for idx, row in net[table].iterrows()
        if row.in_service and row.max_p_mw > 0
    ]
    assert g.generators == units
    assert len(kw["capacities"]) == len(units) == len(kw["costs"]) == len(kw["nodes"])
    cap = sum(float(net[t].at[i, "max_p_mw"]) for t, i in units)
    assert sum(kw["capacities"]) == pytest.approx(cap, rel=1e-12)
    held = sum(
        float(net[t].max_p_mw.sum()) for t in ("ext_grid", "gen", "sgen") if "max_p_mw" in net[t]
    )
    assert sum(kw["capacities"]) == pytest.approx(held, rel=1e-12)  # condensers hold 0 MW
    # costs: cp1 of each unit's poly_cost row
    for (t, i), c in zip(units, kw["costs"], strict=True):
        row = net.poly_cost[(net.poly_cost.et == t) & (net.poly_cost.element == i)]
        assert c == float(row.cp1_eur_per_mw.iloc[0])
    # demand: 24 flat hours of the snapshot total, shared as the loads are
    total = float(net.load.p_mw.sum())
    assert kw["demand"] == [pytest.approx(total, rel=1e-12)] * 24
    per_bus = net.load.groupby("bus").p_mw.sum()
    node_load = np.asarray(kw["demand_shares"]) * total
    for b, p in per_bus.items():
        assert node_load[g.node_of_bus[b]] == pytest.approx(p, rel=1e-12)
    assert sum(kw["demand_shares"]) == pytest.approx(1.0, abs=1e-12)
    assert len(kw["lines"]) == len(net.line) + len(net.trafo)
    assert all(x > 0 and c > 0 for _, _, c, x in kw["lines"])
    if case == "case24_ieee_rts":  # the synchronous condenser (max_p_mw = 0) is left out
        assert ("gen", 3, "no capacity (0.0 MW)") in g.skipped


@pytest.mark.parametrize("case", ["case6ww", "case24_ieee_rts"])
def test_pandapower_dc_opf_differential(case: str) -> None:
    pp, pn = _pp()
    net = _linear_opf_net(getattr(pn, case)())
    if case == "case24_ieee_rts":
        # Two more binding limits; line 9 (bus 7's only line) a little wider,
        # else bus 7's 300 MW less its 125 MW load meet its 175 MW limit
        # exactly and its price is not unique.
        net.line.loc[[17, 22], "max_i_ka"] *= 0.6
        net.line.loc[9, "max_i_ka"] *= 1.1
    g = grid.extract_pandapower(net)
    prices, cleared, flows, cost = _clear_hour(g.kwargs)

    pp.rundcopp(net, delta=1e-12)
    assert net.OPF_converged
    lam = np.array([net.res_bus.lam_p.loc[group[0]] for group in g.buses])
    assert _rel(prices, lam) < 1e-6
    assert cost == pytest.approx(float(net.res_cost), rel=1e-6)
    ref_flows = np.concatenate(
        [net.res_line.p_from_mw.to_numpy(), net.res_trafo.p_hv_mw.to_numpy()]
    )
    np.testing.assert_allclose(flows, ref_flows, rtol=0, atol=1e-5)
    # congestion: some limit binds and the prices differ between nodes
    caps = np.asarray(g.kwargs["lines"])[:, 2]
    assert np.any(np.abs(np.abs(flows) - caps) < 1e-6)
    assert np.ptp(prices) > 0.1


def _hand_net(pp):
    """Two voltage levels, a loop through both transformers, and every rule
    the import has: fused buses, out-of-service and switched-out branches, an
    out-of-service bus, an empty island, a condenser, a non-controllable sgen
    without a cost row, a parallel line with a loading limit, an LV tap, shunts."""
    net = pp.create_empty_network(sn_mva=10.0)
    h1 = pp.create_bus(net, 110.0, name="h1")
    h2 = pp.create_bus(net, 110.0, name="h2")
    l1 = pp.create_bus(net, 20.0, name="l1")
    l2 = pp.create_bus(net, 20.0, name="l2")
    l2b = pp.create_bus(net, 20.0, name="l2b")
    pp.create_bus(net, 20.0, name="iso")
    off = pp.create_bus(net, 20.0, name="off", in_service=False)
    pp.create_switch(net, l2, l2b, et="b", closed=True)
    pp.create_line_from_parameters(net, h1, h2, 10.0, 0.1, 0.4, 0.0, 0.3)
    pp.create_line_from_parameters(net, h1, h2, 10.0, 0.1, 0.4, 0.0, 0.3, in_service=False)
    pp.create_line_from_parameters(
        net, l1, l2b, 2.0, 0.2, 0.35, 0.0, 0.2, parallel=2, max_loading_percent=80.0
    )
    switched = pp.create_line_from_parameters(net, l1, l2, 1.0, 0.2, 0.35, 0.0, 1.0)
    pp.create_switch(net, l1, switched, et="l", closed=False)
    pp.create_line_from_parameters(net, l1, off, 1.0, 0.2, 0.35, 0.0, 1.0)
    pp.create_transformer_from_parameters(net, h1, l1, 40.0, 110.0, 20.0, 0.4, 12.0, 0.0, 0.0)
    pp.create_transformer_from_parameters(
        net, h2, l2, 25.0, 110.0, 21.0, 0.3, 10.0, 0.0, 0.0,
        tap_side="lv", tap_neutral=0, tap_min=-5, tap_max=5, tap_step_percent=1.5,
        tap_pos=-2, tap_changer_type="Ratio",
    )  # fmt: skip
    pp.create_ext_grid(net, h1, max_p_mw=200.0, min_p_mw=0.0)
    pp.create_gen(net, l2, 10.0, max_p_mw=30.0, min_p_mw=0.0, controllable=True)
    pp.create_gen(net, l2, 0.0, max_p_mw=0.0, min_p_mw=0.0, controllable=True)
    pp.create_sgen(net, h2, 5.0, controllable=False)
    pp.create_sgen(net, off, 5.0, controllable=False)
    pp.create_load(net, l2b, 40.0, controllable=False)
    pp.create_load(net, l1, 12.0, controllable=False)
    pp.create_load(net, h2, 8.0, controllable=False)
    pp.create_shunt(net, h2, q_mvar=1.0, p_mw=0.5, step=2)  # 1 MW of load at h2
    pp.create_shunt(net, l1, q_mvar=3.0, p_mw=0.0)  # reactive only: nothing
    pp.create_poly_cost(net, 0, "ext_grid", cp1_eur_per_mw=30.0)
    pp.create_poly_cost(net, 0, "gen", cp1_eur_per_mw=55.0)
    return net


def test_pandapower_rules_on_a_hand_built_net() -> None:
    pp, _ = _pp()
    net = _hand_net(pp)
    g = grid.extract_pandapower(net, demand=[0.5, 1.0, 1.5])
    kw = g.kwargs
    assert kw["node_names"] == ["h1", "h2", "l1", "l2"]
    assert g.buses == [[0], [1], [2], [3, 4]]
    assert g.generators == [("ext_grid", 0), ("gen", 0), ("sgen", 0)]
    assert kw["capacities"] == [200.0, 30.0, 5.0]
    assert kw["costs"] == [30.0, 55.0, 0.0]
    assert kw["nodes"] == [0, 3, 1]
    assert g.lines == [("line", 0), ("line", 2), ("trafo", 0), ("trafo", 1)]
    assert kw["demand"] == pytest.approx([30.5, 61.0, 91.5])
    assert kw["demand_shares"] == pytest.approx([0.0, 9 / 61, 12 / 61, 40 / 61])
    reasons = {(t, i): r for t, i, r in g.skipped}
    assert reasons[("line", 1)] == "out of service"
    assert reasons[("line", 3)] == "open switch"
    assert reasons[("line", 4)] == "at an out-of-service bus"
    assert reasons[("gen", 1)].startswith("no capacity")
    assert reasons[("bus", 5)] == "an island without load or generation"
    # per-unit reactances on sn_mva = 10: line x_ohm * 10 / 110^2; trafo vk on
    # its rating, referred to the bus voltage through the tap
    x_line = 10.0 * 0.4 * 10.0 / 110.0**2
    assert kw["lines"][0][3] == pytest.approx(x_line, rel=1e-12)
    assert kw["lines"][1][2] == pytest.approx(0.8 * 0.2 * 2 * 20.0 * np.sqrt(3.0), rel=1e-12)
    z = 0.12 * 10.0 / 40.0
    assert kw["lines"][2][3] == pytest.approx(np.sqrt(z**2 - (0.004 * 10 / 40) ** 2), rel=1e-12)

    prices, _, flows, cost = _clear_hour(kw, hour=1)
    pp.rundcopp(net, delta=1e-12)
    assert net.OPF_converged
    lam = net.res_bus.lam_p.to_numpy()
    assert _rel(prices, lam[[0, 1, 2, 3]]) < 1e-6
    assert lam[4] == pytest.approx(lam[3], rel=1e-9)  # the fused bus
    assert cost == pytest.approx(float(net.res_cost), rel=1e-6)
    assert np.ptp(prices) > 1.0
    # the LV tap matters here: at neutral the prices move by far more than 1e-6
    net2 = _hand_net(pp)
    net2.trafo.loc[1, "tap_pos"] = 0
    prices2, *_ = _clear_hour(grid.extract_pandapower(net2).kwargs)
    assert _rel(prices2, prices) > 1e-3


def test_pandapower_refusals() -> None:
    pp, pn = _pp()
    net = pn.case6ww()
    net.ext_grid["max_p_mw"] = np.nan
    with pytest.raises(ValueError, match=r"net.ext_grid\[0\].*max_p_mw"):
        grid.extract_pandapower(net)

    net = pn.case6ww()
    net.load["controllable"] = True
    with pytest.raises(ValueError, match=r"net.load\[0\].*controllable"):
        grid.extract_pandapower(net)

    net = pn.case6ww()  # bus 5 cut off, with its 70 MW load: two islands
    net.line.loc[net.line.from_bus.eq(5) | net.line.to_bus.eq(5), "in_service"] = False
    with pytest.raises(ValueError, match=r"islands.*net.bus\[5\]"):
        grid.extract_pandapower(net)

    net = _hand_net(pp)
    pp.create_pwl_cost(net, 0, "sgen", [[0, 5, 40.0]])
    with pytest.raises(ValueError, match=r"net.sgen\[0\].*piecewise"):
        grid.extract_pandapower(net)

    net = _hand_net(pp)
    net.trafo.loc[1, "tap_step_degree"] = 5.0
    with pytest.raises(ValueError, match=r"net.trafo\[1\].*phase-shifting"):
        grid.extract_pandapower(net)

    net = _hand_net(pp)
    pp.create_storage(net, 2, p_mw=0.0, max_e_mwh=10.0)
    with pytest.raises(ValueError, match=r"net.storage\[0\]"):
        grid.extract_pandapower(net)

    net = _hand_net(pp)
    with pytest.raises(ValueError, match="multipliers"):
        grid.extract_pandapower(net, demand=[[1.0, 2.0]])
    with pytest.raises(ValueError, match="network"):
        grid.extract_pandapower(net, network="ac")


def test_missing_library_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    for mod in ("pandapower", "pypsa"):
        monkeypatch.setitem(sys.modules, mod, None)  # import raises ImportError
    with pytest.raises(ImportError, match=r'pip install "powermarket\[grid\]"'):
        grid.from_pandapower(object())
    with pytest.raises(ImportError, match=r'pip install "powermarket\[grid\]"'):
        grid.from_pypsa(object())


# ---------------------------------------------------------------------------
# PyPSA


def _pypsa_loop(pypsa, p_max_pu=None):
    """Three buses in a loop of two lines and a transformer (tap 1.05), a
    cheap and a dear generator, a load that grows over three snapshots."""
    n = pypsa.Network()
    n.set_snapshots(range(3))
    for b in ("a", "b", "c"):
        n.add("Bus", b, v_nom=220.0)
    n.add("Generator", "cheap", bus="a", p_nom=300.0, marginal_cost=20.0)
    if p_max_pu is not None:
        n.generators_t.p_max_pu["cheap"] = p_max_pu
    n.add("Generator", "dear", bus="b", p_nom=400.0, marginal_cost=50.0)
    n.add("Load", "load", bus="c", p_set=[150.0, 200.0, 260.0])
    n.add("Line", "ab", bus0="a", bus1="b", x=12.0, s_nom=500.0)
    n.add("Line", "bc", bus0="b", bus1="c", x=20.0, s_nom=500.0)
    n.add("Transformer", "ac", bus0="a", bus1="c", x=0.2, s_nom=100.0, s_max_pu=0.5, tap_ratio=1.05)
    return n


def _optimize(n) -> None:
    pytest.importorskip("highspy")
    logging.getLogger("linopy").setLevel(logging.WARNING)
    logging.getLogger("pypsa").setLevel(logging.WARNING)
    status, condition = n.optimize(solver_name="highs")
    assert status == "ok", (status, condition)


@pytest.mark.parametrize("hourly_availability", [False, True])
def test_pypsa_differential(hourly_availability: bool) -> None:
    pypsa = pytest.importorskip("pypsa")
    n = _pypsa_loop(pypsa, [1.0, 0.9, 0.8] if hourly_availability else None)
    g = grid.extract_pypsa(n)
    kw = g.kwargs
    assert kw["node_names"] == ["a", "b", "c"]
    assert g.generators == [("Generator", "cheap"), ("Generator", "dear")]
    assert kw["capacities"] == [300.0, 400.0] and kw["costs"] == [20.0, 50.0]
    assert kw["demand"] == [150.0, 200.0, 260.0]
    assert np.asarray(kw["demand_shares"]).tolist() == [[0.0, 0.0, 1.0]] * 3
    # x in ohm on v_nom (1 MVA base); transformer x on s_nom, times the tap
    assert [row[3] for row in kw["lines"]] == pytest.approx(
        [12.0 / 220.0**2, 20.0 / 220.0**2, 0.2 / 100.0 * 1.05], rel=1e-12
    )
    avail = np.asarray(kw.get("availability", np.ones((3, 2))))
    assert avail[:, 0].tolist() == ([1.0, 0.9, 0.8] if hourly_availability else [1.0] * 3)

    _optimize(n)
    total = 0.0
    for t in range(3):
        q = np.asarray(kw["capacities"]) * avail[t]
        prices, _, flows, cost = _clear_hour(kw, hour=t, quantities=q)
        ref = n.buses_t.marginal_price.iloc[t][kw["node_names"]].to_numpy()
        assert _rel(prices, ref) < 1e-6
        ref_flows = np.concatenate(
            [n.lines_t.p0.iloc[t].to_numpy(), n.transformers_t.p0.iloc[t].to_numpy()]
        )
        np.testing.assert_allclose(flows, ref_flows, rtol=0, atol=1e-6)
        total += cost
    assert total == pytest.approx(float(n.objective), rel=1e-6)
    # the transformer limit binds in the later hours: prices differ
    assert np.ptp(prices) > 1.0


def test_pypsa_refusals_and_snapshots() -> None:
    pypsa = pytest.importorskip("pypsa")
    n = _pypsa_loop(pypsa)
    g = grid.extract_pypsa(n, snapshots=[1, 2])
    assert g.kwargs["demand"] == [200.0, 260.0]
    with pytest.raises(ValueError, match="snapshots"):
        grid.extract_pypsa(n, snapshots=[7])

    n.add("Link", "hvdc", bus0="a", bus1="c", p_nom=50.0)
    with pytest.raises(ValueError, match=r"network.links\['hvdc'\].*not supported"):
        grid.extract_pypsa(n)

    n = _pypsa_loop(pypsa)
    n.generators.loc["dear", "p_nom_extendable"] = True
    with pytest.raises(ValueError, match=r"generators\['dear'\].*extendable"):
        grid.extract_pypsa(n)

    n = _pypsa_loop(pypsa)
    n.generators_t.marginal_cost["dear"] = [50.0, 51.0, 52.0]
    with pytest.raises(ValueError, match=r"generators\['dear'\].*marginal cost"):
        grid.extract_pypsa(n)

    n = _pypsa_loop(pypsa)
    n.transformers.loc["ac", "s_nom"] = 0.0
    with pytest.raises(ValueError, match=r"transformers\['ac'\].*reactance"):
        grid.extract_pypsa(n)

    n = _pypsa_loop(pypsa)  # a second island with a load
    n.add("Bus", "d", v_nom=20.0)
    n.add("Load", "far", bus="d", p_set=5.0)
    with pytest.raises(ValueError, match=r"islands.*bus 'd'"):
        grid.extract_pypsa(n)

    n = _pypsa_loop(pypsa)  # an empty island is dropped
    n.add("Bus", "e", v_nom=20.0)
    g = grid.extract_pypsa(n)
    assert g.kwargs["node_names"] == ["a", "b", "c"]
    assert ("Bus", "e", "an island without load or generation") in g.skipped


def test_pypsa_line_types_on_a_copy() -> None:
    pypsa = pytest.importorskip("pypsa")
    n = pypsa.Network()
    n.set_snapshots(range(2))
    n.add("Bus", "a", v_nom=380.0)
    n.add("Bus", "b", v_nom=380.0)
    n.add("Generator", "g", bus="a", p_nom=100.0, marginal_cost=10.0)
    n.add("Load", "l", bus="b", p_set=50.0)
    kind = "Al/St 240/40 4-bundle 380.0"
    n.add("Line", "ab", bus0="a", bus1="b", type=kind, length=100.0, s_nom=1000.0)
    x = grid.extract_pypsa(n).kwargs["lines"][0][3]
    assert float(n.lines.at["ab", "x"]) == 0.0  # the network passed in is unchanged
    x_ohm = float(n.line_types.at[kind, "x_per_length"]) * 100.0
    assert x == pytest.approx(x_ohm / 380.0**2, rel=1e-12)


# ---------------------------------------------------------------------------
# Scenarios and an episode (networked Scenario fields of the core)


def test_from_pandapower_scenario_and_episode(tmp_path) -> None:
    pp, pn = _pp()
    net = pn.case24_ieee_rts()
    net.line.loc[[17, 22], "max_i_ka"] *= 0.6
    mult = 0.8 + 0.3 * np.sin(np.linspace(0.0, np.pi, 24))
    sc = grid.from_pandapower(
        net, demand=mult, demand_noise=0.0, max_bid_delta=20.0, shortage_price=SHORTAGE
    )
    g = grid.extract_pandapower(net, demand=mult)
    assert sc.network == "dc"
    assert sc.num_nodes == 24 and sc.num_lines == 38
    np.testing.assert_array_equal(np.asarray(sc.lines), np.asarray(g.kwargs["lines"]))
    assert pm.Scenario.from_dict(sc.to_dict()) == sc
    sc.save(tmp_path / "rts.toml")
    assert pm.Scenario.load(tmp_path / "rts.toml", allow_outside=True) == sc
    assert sc.n == len(g.kwargs["capacities"]) == 32
    assert sc.max_bid_delta == 20.0
    np.testing.assert_allclose(sc.demand, float(net.load.p_mw.sum()) * mult, rtol=1e-12)
    node_demand = np.asarray(sc.node_demand)
    assert node_demand.shape == (24, 24)
    per_bus = net.load.groupby("bus").p_mw.sum()
    for b, p in per_bus.items():
        np.testing.assert_allclose(node_demand[:, g.node_of_bus[b]], p * mult, rtol=1e-9)
    assert list(sc.node_names) == [str(b) for b in net.bus.name]
    assert list(sc.nodes) == g.kwargs["nodes"]

    env = pm.MarketEnv(sc, seed=0)
    env.reset(seed=0)
    actions = np.zeros((sc.n, 2), dtype=np.float32)
    steps = 0
    done = False
    while not done:
        _, rewards, terminated, truncated, info = env.step(actions)
        done = bool(terminated or truncated)
        steps += 1
        assert np.all(np.isfinite(rewards))
        if steps == 1:  # zero actions offer every capacity at cost: the hour clears as imported
            prices, _, flows, _ = _clear_hour(g.kwargs, hour=0)
            np.testing.assert_allclose(info["node_prices"], prices, rtol=1e-12)
            np.testing.assert_allclose(info["flows"], flows, rtol=1e-12, atol=1e-9)
            assert np.ptp(prices) > 1.0
        assert np.asarray(info["node_prices"]).shape == (24,)
        assert np.asarray(info["flows"]).shape == (38,)
        assert info["congestion_rent"] >= 0.0
    assert steps == 24
    rec = env.episode_record()
    assert np.asarray(rec["node_prices"]).shape == (24, 24)
    assert np.asarray(rec["flows"]).shape == (24, 38)


def test_from_pypsa_scenario_and_episode() -> None:
    pypsa = pytest.importorskip("pypsa")
    n = _pypsa_loop(pypsa, [1.0, 0.9, 0.8])
    sc = grid.from_pypsa(n, demand_noise=0.0)
    assert sc.num_nodes == 3 and sc.num_lines == 3 and sc.n == 2
    np.testing.assert_allclose(sc.demand, [150.0, 200.0, 260.0])
    np.testing.assert_allclose(np.asarray(sc.node_demand)[:, 2], [150.0, 200.0, 260.0])
    np.testing.assert_allclose(np.asarray(sc.node_demand)[:, :2], 0.0)
    env = pm.MarketEnv(sc, seed=1)
    env.reset(seed=1)
    for _ in range(3):
        *_, info = env.step(np.zeros((2, 2), dtype=np.float32))
    assert np.asarray(env.episode_record()["node_prices"]).shape == (3, 3)
    assert sc.network == "dc"
    assert grid.from_pypsa(n, network="transport").network == "transport"
    np.testing.assert_array_equal(grid.from_pypsa(n, costs=[1.0, 2.0]).costs, [1.0, 2.0])
    np.testing.assert_allclose(np.asarray(sc.availability)[:, 0], [1.0, 0.9, 0.8])
