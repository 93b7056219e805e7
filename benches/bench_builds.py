"""Two builds of powermarket side by side: is a change slower on the default market?

Run: ``.venv/bin/python benches/bench_builds.py --baseline DIR`` where ``DIR``
holds another build's ``powermarket/_core*.so`` (for example
``pip install --no-deps --target DIR baseline.whl`` after ``maturin build``
in a checkout of the baseline commit). Both native modules are loaded in this
one process (the baseline as ``baseline_pm._core``) and timed interleaved in
rounds (A, B, A, B, ...), so a noisy neighbour hits them alike. Cases, on
``Scenario.default()`` (5 generators, 24 hours): a ``MarketEnv`` episode
(reset + 24 steps, ``observer="simple"`` and ``"market"``) and one
``VecMarketEnv`` step of 1024 markets (one thread, and the pool). The table
gives the median seconds over rounds and the median of the per-round ratios
(this build / baseline; above 1 is slower).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _common import calibrate, machine, table, timed

import powermarket as pm


def load_baseline(folder: Path):
    so = sorted((folder / "powermarket").glob("_core*.so"))
    if not so:
        sys.exit(f"no powermarket/_core*.so under {folder}")
    spec = importlib.util.spec_from_file_location("baseline_pm._core", so[0])
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def cases(core) -> dict[str, Callable[[], None]]:
    s = core.Scenario.default()
    rng = np.random.default_rng(0)
    acts = [
        np.stack([rng.uniform(0, 0.5, 5), rng.uniform(-3, 3, 5)], 1).astype(np.float32)
        for _ in range(24)
    ]
    out = {}
    for observer in ("simple", "market"):
        env = core.MarketEnv(s, observer=observer, seed=0)

        def episode(env=env) -> None:
            env.reset()
            for a in acts:
                env.step(a)

        out[f"MarketEnv episode ({observer})"] = episode
    m = 1024
    va = np.stack([rng.uniform(0, 0.5, (m, 5)), rng.uniform(-3, 3, (m, 5))], -1)
    va = va.astype(np.float32)
    for threads in (1, None):
        vec = core.VecMarketEnv(s, num_envs=m, seed=0, num_threads=threads)
        vec.reset()
        out[f"VecMarketEnv step, M={m} (threads={threads or 'pool'})"] = lambda vec=vec: vec.step(
            va
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--baseline", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--target", type=float, default=0.1, help="seconds per timed block")
    args = ap.parse_args()
    base = cases(load_baseline(args.baseline))
    this = cases(pm._core)
    rows = []
    for name in this:
        k = calibrate(this[name], args.target)
        a, b = [], []
        for _ in range(args.rounds):
            a.append(timed(base[name], k) / k)
            b.append(timed(this[name], k) / k)
        ratio = statistics.median(y / x for x, y in zip(a, b, strict=True))
        rows.append(
            [
                name,
                f"{statistics.median(a) * 1e6:.1f}",
                f"{statistics.median(b) * 1e6:.1f}",
                f"{ratio:.3f}",
            ]
        )
    print(f"machine: {machine()}; {args.rounds} interleaved rounds")
    print(table(["case", "baseline µs", "this build µs", "ratio (median)"], rows))


if __name__ == "__main__":
    main()
