"""Smoke test of the main job (examples/demo.py) with a tiny budget."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("cma")
pytest.importorskip("matplotlib")

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo.py"


def _load_demo():
    spec = importlib.util.spec_from_file_location("powermarket_demo", DEMO)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def test_demo_learns_and_writes_figure(tmp_path, capsys):
    demo = _load_demo()
    out = tmp_path / "demo.png"
    result = demo.main(["--budget", "quick", "--seed", "3", "--out", str(out), "--quiet"])
    res = result["results"]
    n = res["learned"]["profit"].shape[1]
    last = n - 1  # the last learner: nobody moved after its best-response turn
    learned_reward = res["learned"]["reward"][:, last].mean()
    assert learned_reward >= res["deviate_truthful_reward"][last] - 1e-9
    assert res["learned"]["profit"][:, last].mean() >= res["deviate_truthful"][last] - 1e-6
    # Everyone at cost is the competitive benchmark: nobody bids below it on average.
    assert res["truthful"]["price_by_hour"].min() >= 20.0 - 1e-9
    assert out.exists() and out.stat().st_size > 10_000
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    for j in range(n):
        assert f"gen_{j}" in printed
    assert "mean clearing price" in printed


def test_demo_is_deterministic_for_a_seed(tmp_path):
    demo = _load_demo()
    a = demo.main(["--budget", "quick", "--seed", "5", "--out", str(tmp_path / "a.png"), "--quiet"])
    b = demo.main(["--budget", "quick", "--seed", "5", "--out", str(tmp_path / "b.png"), "--quiet"])
    np.testing.assert_array_equal(a["policies"].params, b["policies"].params)
    np.testing.assert_array_equal(
        a["results"]["learned"]["profit"], b["results"]["learned"]["profit"]
    )


def test_demo_runs_on_a_scenario_file(tmp_path, capsys):
    """--scenario PATH: the same job on a hand-made file (4 plants, a 3000 €/MWh cap)."""
    demo = _load_demo()
    path = DEMO.parent / "scenarios" / "four_plants_day.toml"
    out = tmp_path / "file.png"
    result = demo.main(
        ["--budget", "quick", "--seed", "1", "--out", str(out), "--quiet", "--scenario", str(path)]
    )
    res = result["results"]
    assert res["learned"]["profit"].shape[1] == 4
    # all at cost: the price is some plant's cost (10, 35, 55, 120) or, short, the cap
    prices = res["truthful"]["price_by_hour"]
    assert prices.min() >= 10.0 - 1e-9 and prices.max() <= 3000.0 + 1e-9
    assert out.exists() and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "n=4, t=24" in printed and "gen_3" in printed and "gen_4" not in printed


def test_demo_runs_on_the_advanced_week(tmp_path, capsys):
    """--scenario advanced: the same job on Scenario.advanced() with market_v2."""
    demo = _load_demo()
    out = tmp_path / "advanced.png"
    result = demo.main(
        ["--budget", "quick", "--seed", "2", "--out", str(out), "--quiet", "--scenario", "advanced"]
    )
    res = result["results"]
    assert res["learned"]["profit"].shape[1] == 5
    assert res["truthful"]["price_by_hour"].shape == (168,)
    # all at cost: the price is some plant's cost (0 ... 30), or in a shortage the highest offer
    assert res["truthful"]["price_by_hour"].min() >= 0.0 - 1e-9
    assert res["truthful"]["price_by_hour"].max() <= 30.0 + 1e-9
    assert result["exploitability"][-1]["lower_bound"] is True
    assert out.exists() and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "n=5, t=168" in printed and "'market_v2'" in printed
