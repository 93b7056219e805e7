"""The benchmark scripts still run (tiny sizes). Each one first checks that the
contenders agree (numba vs pm.clear, reference env vs MarketEnv, VecMarketEnv
vs MarketEnv), so a semantic drift fails here, not only a crash."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("numba")
BENCHES = Path(__file__).resolve().parents[1] / "benches"


def _run(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(BENCHES / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_bench_clear_runs():
    out = _run("bench_clear.py", "--sizes", "5", "64", "--rounds", "3", "--sets", "4")
    assert "| varied | 64 |" in out and "| same | 5 |" in out


def test_bench_env_runs():
    out = _run("bench_env.py", "--sizes", "5", "--rounds", "2", "--round-s", "0.01")
    assert "MarketEnv vs baseline at N=5" in out


def test_bench_vec_runs():
    out = _run("bench_vec.py", "--quick")
    assert "env-steps/s at N=5, M=4096" in out and "peak RSS" in out


def test_bench_design_runs():
    out = _run("bench_design.py", "--quick")
    assert "| 10 demand bids |" in out and "| segments K=4 |" in out


def test_bench_storage_runs():
    out = _run("bench_storage.py", "--quick")
    assert "| N=5, S=1 |" in out and "| N=50, S=5 |" in out


def test_bench_builds_runs(tmp_path):
    """Against a copy of this very build, every ratio is a positive number
    within 10x of 1 (so the two modules really were both timed; the bound is
    wide because a loaded machine swings short timings by 2-3x)."""
    import powermarket._core as core

    (tmp_path / "powermarket").mkdir()
    so = Path(core.__file__)
    (tmp_path / "powermarket" / so.name).write_bytes(so.read_bytes())
    common = ["--baseline", str(tmp_path), "--rounds", "3", "--target", "0.002"]
    one = _run("bench_builds.py", *common, "--only", "MarketEnv episode (simple)")
    rows = [line for line in one.splitlines() if line.startswith("| MarketEnv episode (simple)")]
    assert len(rows) == 1
    assert 0.1 < float(rows[0].split("|")[4]) < 10.0
    many = _run("bench_builds.py", *common, "--wide", "--only", "N=5 ", "--processes", "2")
    rows = [line for line in many.splitlines() if line.startswith("| clear ")]
    assert len(rows) == 4 and "2 processes" in many
    for row in rows:
        median, span = row.split("|")[4:6]
        lo, hi = (float(x) for x in span.split("-"))
        assert 0.1 < lo <= float(median) <= hi < 10.0


def test_the_numba_baseline_agrees_with_the_core():
    """The benchmarks' baseline (benches/numba_baseline.py, not an oracle: the
    oracle is tests/reference.py) runs the same market as MarketEnv, so the
    speed-ups compare like with like. Checked here once, on random episodes."""
    import numpy as np

    import powermarket as pm

    sys.path.insert(0, str(BENCHES))
    try:
        from numba_baseline import BaselineMarketEnv, compare_episode
    finally:
        sys.path.remove(str(BENCHES))
    rng = np.random.default_rng(0)
    for n in (2, 5, 13):
        scenario = pm.Scenario.default(n=n, t=24).replace(demand_noise=0.0)
        actions = rng.uniform([0.0, -3.0], [1.0, 3.0], size=(24, n, 2)).astype(np.float32)
        env = pm.MarketEnv(scenario, tie_rule="index", seed=0)
        compare_episode(env, BaselineMarketEnv.from_scenario(scenario, 1), actions)
