"""The main job (examples/demo.py) with the quick budget: it must learn bids
close to an equilibrium, measured by analysis.exploitability on evaluation
episodes the learner never trained on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from conftest import load_example  # noqa: E402

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo.py"
SCENARIOS = DEMO.parent / "scenarios"


def _share(x: dict) -> float:
    return x["nash_conv"] / x["played_reward"].sum()


def test_demo_learns_near_an_equilibrium_and_writes_figure(tmp_path, capsys):
    demo = load_example("demo")
    out = tmp_path / "demo.png"
    result = demo.main(["--budget", "quick", "--seed", "3", "--out", str(out), "--quiet"])
    history = result["exploitability"]
    # Round 0 is everyone truthful: far from an equilibrium; the learned
    # profile ends within 5 % (the quick run reaches 0.3 % on this seed).
    assert _share(history[0]) > 0.2
    assert _share(history[-1]) < 0.05
    assert np.all(history[-1]["regret"] >= 0.0)
    res = result["results"]
    learned, comp, eq = res["learned"], res["competitive"], res["equilibrium"]
    # Market power: the learned profits are well above the competitive ones,
    # and the learned prices are close to the computed equilibrium's.
    assert learned["profit"].sum(axis=1).mean() > 2.0 * comp["profit"].sum(axis=1).mean()
    assert np.all(comp["price"] >= 20.0 - 1e-9)
    gap = np.abs(learned["price"].mean(axis=0) - eq["price"].mean(axis=0))
    assert gap.mean() < 0.05 * eq["price"].mean(), gap
    assert res["equilibrium_solver"]["converged"]
    assert out.exists() and out.stat().st_size > 10_000
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    for j in range(learned["profit"].shape[1]):
        assert f"gen_{j}" in printed
    assert "round 0: NashConv" in printed and "round 1: NashConv" in printed
    assert "mean clearing price, €/MWh: competitive" in printed and "equilibrium" in printed


def test_demo_is_deterministic_for_a_seed(tmp_path):
    demo = load_example("demo")
    args = ["--budget", "quick", "--seed", "5", "--quiet"]
    a = demo.main([*args, "--out", str(tmp_path / "a.png")])
    b = demo.main([*args, "--out", str(tmp_path / "b.png")])
    np.testing.assert_array_equal(a["policies"].table, b["policies"].table)
    np.testing.assert_array_equal(
        a["results"]["learned"]["profit"], b["results"]["learned"]["profit"]
    )


def test_demo_learns_the_graf_duopoly_price_cap(tmp_path, capsys):
    """Graf et al. (2024): learned from scratch, the price is the cap of 100."""
    demo = load_example("demo")
    out = tmp_path / "graf.png"
    path = SCENARIOS / "graf_duopoly.toml"
    result = demo.main(
        ["--budget", "quick", "--seed", "0", "--out", str(out), "--quiet", "--scenario", str(path)]
    )
    res = result["results"]
    assert np.all(res["learned"]["price"] == 100.0)
    assert np.all(res["equilibrium"]["price"] == 100.0)
    assert np.all(res["competitive"]["price"] == 20.0)
    assert result["exploitability"][0]["nash_conv"] > 0  # truthful is no equilibrium here
    assert result["exploitability"][-1]["nash_conv"] == 0.0


def test_demo_runs_on_a_scenario_file(tmp_path, capsys):
    """--scenario PATH: the same job on a hand-made file (4 plants, a 3000 €/MWh cap)."""
    demo = load_example("demo")
    path = SCENARIOS / "four_plants_day.toml"
    out = tmp_path / "file.png"
    result = demo.main(
        ["--budget", "quick", "--seed", "1", "--out", str(out), "--quiet", "--scenario", str(path)]
    )
    res = result["results"]
    assert res["learned"]["profit"].shape[1] == 4
    # all at cost: the price is some plant's cost (10, 35, 55, 120) or, short, the cap
    prices = res["competitive"]["price"]
    assert prices.min() >= 10.0 - 1e-9 and prices.max() <= 3000.0 + 1e-9
    assert out.exists() and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "n=4, t=24" in printed and "gen_3" in printed and "gen_4" not in printed


def test_demo_runs_on_the_advanced_week(tmp_path, capsys):
    """--scenario advanced: the same job on Scenario.advanced() with market_v2;
    the equilibrium solver refuses ramps and the demo says so."""
    demo = load_example("demo")
    out = tmp_path / "advanced.png"
    result = demo.main(
        ["--budget", "quick", "--seed", "2", "--out", str(out), "--quiet", "--scenario", "advanced"]
    )
    res = result["results"]
    assert res["learned"]["profit"].shape[1] == 5
    assert res["competitive"]["price"].shape[1] == 168
    # all at cost: the price is some plant's cost (0 ... 30), or in a shortage the highest offer
    assert res["competitive"]["price"].min() >= 0.0 - 1e-9
    assert res["competitive"]["price"].max() <= 30.0 + 1e-9
    assert res["equilibrium"] is None and "ramp" in res["equilibrium_error"]
    assert result["exploitability"][-1]["lower_bound"] is True
    assert out.exists() and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "n=5, t=168" in printed and "'market_v2'" in printed


def test_demo_refuses_storage_scenarios_and_says_why(tmp_path):
    """The hour-by-hour IBR cannot value a battery: the demo says so, naming
    the fronts that can train one."""
    demo = load_example("demo")
    path = SCENARIOS / "two_batteries_day.toml"
    with pytest.raises(SystemExit) as e:
        demo.main(["--budget", "quick", "--out", str(tmp_path / "x.png"), "--scenario", str(path)])
    assert "2 storage unit(s)" in str(e.value) and "state of charge" in str(e.value)
