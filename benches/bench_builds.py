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
(this build / baseline; above 1 is slower). ``--processes P`` repeats the
comparison in P fresh processes and reports the median ratio over them with
its range (code and data land at other addresses in every process, which
moves sub-microsecond calls by a few percent); ``--only TEXT`` keeps the
cases whose name contains TEXT.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
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


def clear_cases(core) -> dict[str, Callable[[], None]]:
    """``pm.clear`` on 64 rotating problems per size (the rows of ``bench_clear.py``)."""
    rng = np.random.default_rng(1)
    out = {}
    for n in (5, 200):
        for prices in ("varied", "same"):
            probs = []
            for _ in range(64):
                b = rng.uniform(20, 60, n) if prices == "varied" else np.full(n, 35.0)
                q = rng.uniform(0.1, 10, n)
                probs.append((b, q, float(q.sum() * rng.uniform(0.1, 0.95))))
            for rule in ("pro_rata", "index"):
                i = [0]

                def one(probs=probs, rule=rule, i=i) -> None:
                    i[0] = (i[0] + 1) & 63
                    b, q, d = probs[i[0]]
                    core.clear(b, q, d, tie_rule=rule)

                out[f"clear {rule} N={n} {prices}"] = one
    return out


def big_cases(core) -> dict[str, Callable[[], None]]:
    """N = 200: a MarketEnv episode, and a VecMarketEnv step of 4096 markets."""
    s = core.Scenario.default(n=200)
    rng = np.random.default_rng(2)
    acts = [
        np.stack([rng.uniform(0, 0.5, 200), rng.uniform(-3, 3, 200)], 1).astype(np.float32)
        for _ in range(24)
    ]
    env = core.MarketEnv(s, seed=0)

    def episode() -> None:
        env.reset()
        for a in acts:
            env.step(a)

    out: dict[str, Callable[[], None]] = {"MarketEnv episode N=200": episode}
    m = 4096
    va = np.stack([rng.uniform(0, 0.5, (m, 200)), rng.uniform(-3, 3, (m, 200))], -1)
    va = va.astype(np.float32)
    for threads in (1, None):
        vec = core.VecMarketEnv(s, num_envs=m, seed=0, num_threads=threads)
        vec.reset()
        out[f"VecMarketEnv step N=200, M={m} (threads={threads or 'pool'})"] = lambda vec=vec: (
            vec.step(va)
        )
    return out


def cases(core, wide: bool = False) -> dict[str, Callable[[], None]]:
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
    if wide:
        out.update(clear_cases(core))
        out.update(big_cases(core))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--baseline", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--target", type=float, default=0.1, help="seconds per timed block")
    ap.add_argument(
        "--wide",
        action="store_true",
        help="also pm.clear at N = 5 and 200 and the N = 200 envs (the rows of make bench)",
    )
    ap.add_argument("--only", default="", help="run only the cases whose name contains this text")
    ap.add_argument(
        "--processes",
        type=int,
        default=1,
        help="repeat the whole comparison in this many fresh processes (one after the "
        "other) and report the median ratio over them: where the two libraries and the "
        "arrays land in memory differs per process and moves sub-microsecond calls by a "
        "few percent",
    )
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.processes > 1:
        over_processes(args)
        return
    results = compare(args)
    if args.json:
        print(json.dumps(results))
        return
    rows = [
        [name, f"{a * 1e6:.1f}", f"{b * 1e6:.1f}", f"{ratio:.3f}"]
        for name, (a, b, ratio) in results.items()
    ]
    print(f"machine: {machine()}; {args.rounds} interleaved rounds")
    print(table(["case", "baseline µs", "this build µs", "ratio (median)"], rows))


def compare(args: argparse.Namespace) -> dict[str, tuple[float, float, float]]:
    """Per case: median seconds of the baseline and of this build, and the
    median of the per-round ratios."""
    base = cases(load_baseline(args.baseline), args.wide)
    this = cases(pm._core, args.wide)
    out = {}
    for name in (n for n in this if args.only in n):
        k = calibrate(this[name], args.target)
        a, b = [], []
        for _ in range(args.rounds):
            a.append(timed(base[name], k) / k)
            b.append(timed(this[name], k) / k)
        ratio = statistics.median(y / x for x, y in zip(a, b, strict=True))
        out[name] = (statistics.median(a), statistics.median(b), ratio)
    return out


def over_processes(args: argparse.Namespace) -> None:
    """Run the comparison in ``args.processes`` fresh processes, one at a time."""
    cmd = [sys.executable, __file__, "--baseline", str(args.baseline)]
    cmd += ["--rounds", str(args.rounds), "--target", str(args.target), "--only", args.only]
    cmd += ["--wide"] * args.wide + ["--json"]
    runs = [
        json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        for _ in range(args.processes)
    ]
    rows = []
    for name in runs[0]:
        ratios = sorted(r[name][2] for r in runs)
        rows.append(
            [
                name,
                f"{statistics.median(r[name][0] for r in runs) * 1e6:.1f}",
                f"{statistics.median(r[name][1] for r in runs) * 1e6:.1f}",
                f"{statistics.median(ratios):.3f}",
                f"{ratios[0]:.3f}-{ratios[-1]:.3f}",
            ]
        )
    print(f"machine: {machine()}; {args.processes} processes of {args.rounds} interleaved rounds")
    print(
        table(
            ["case", "baseline µs", "this build µs", "ratio (median)", "ratio range"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
