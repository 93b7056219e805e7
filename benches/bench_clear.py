"""powermarket.clear against a numba build of the classic clearing, side by side.

Run: ``make bench`` or ``.venv/bin/python benches/bench_clear.py``. The machine
may be shared and noisy, so the contenders are interleaved: each round times a
block of calls of numba, ``pm.clear`` (pro_rata) and ``pm.clear`` (index), in
a rotating order, and the table reports the median time per call over the
rounds and the median of the per-round ratios (numba / powermarket).

Two data modes: ``same`` calls every contender on one problem over and over
(the branch predictor can learn it); ``varied`` cycles through ``--sets``
pre-generated random problems, one per call, which is closer to use in an
environment and is the mode the speed targets refer to. Both modes run the
same Python loop, so their loop overhead (counted against every contender
alike) is the same.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numba
import numpy as np

import powermarket as pm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine, table  # noqa: E402
from numba_baseline import classic_clear as numba_clear  # noqa: E402

Problem = tuple[np.ndarray, np.ndarray, float]


def problems(rng: np.random.Generator, n: int, k: int) -> list[Problem]:
    """``k`` random problems of ``n`` offers (uniform prices and quantities, demand 60%)."""
    out = []
    for _ in range(k):
        bids = rng.uniform(0.0, 100.0, n)
        qty = rng.uniform(0.0, 10.0, n)
        out.append((bids, qty, float(0.6 * qty.sum())))
    return out


def check(sets: list[Problem]) -> None:
    """All three contenders give the same answer on every problem, before any timing."""
    for bids, qty, demand in sets:
        p_nb, x_nb, _ = numba_clear(bids, qty, demand)
        p_ix, x_ix = pm.clear(bids, qty, demand, tie_rule="index")
        p_pr, x_pr = pm.clear(bids, qty, demand)
        assert p_nb == p_ix == p_pr, (p_nb, p_ix, p_pr)
        assert np.allclose(x_nb, x_ix, rtol=1e-12, atol=1e-12)
        assert np.allclose(x_nb, x_pr, rtol=1e-12, atol=1e-12)


def _run_numba(sets, reps):
    f = numba_clear
    t = time.perf_counter()
    for _ in range(reps):
        for b, q, d in sets:
            f(b, q, d)
    return time.perf_counter() - t


def _run_pro_rata(sets, reps):
    f = pm.clear
    t = time.perf_counter()
    for _ in range(reps):
        for b, q, d in sets:
            f(b, q, d)
    return time.perf_counter() - t


def _run_index(sets, reps):
    f = pm.clear
    t = time.perf_counter()
    for _ in range(reps):
        for b, q, d in sets:
            f(b, q, d, tie_rule="index")
    return time.perf_counter() - t


CONTENDERS = {"numba": _run_numba, "pro_rata": _run_pro_rata, "index": _run_index}


def interleaved(sets, rounds: int, block_s: float) -> dict[str, list[float]]:
    """Seconds per call of each contender, one sample per round, in rotating order."""
    calls = len(sets)
    for run in CONTENDERS.values():  # warm up (and JIT/cache load)
        run(sets, 1)
    # Block size from the slowest contender, the same for all of them.
    slowest = max(run(sets, 3) / (3 * calls) for run in CONTENDERS.values())
    reps = max(1, int(block_s / (slowest * calls)))
    names = list(CONTENDERS)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            samples[name].append(CONTENDERS[name](sets, reps) / (reps * calls))
    return samples


def _quartiles(xs: list[float]) -> tuple[float, float, float]:
    q1, q2, q3 = statistics.quantiles(xs, n=4)
    return q1, q2, q3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[5, 10, 20, 50, 100, 200])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sets", type=int, default=64, help="problems cycled in varied mode")
    ap.add_argument("--rounds", type=int, default=101)
    ap.add_argument("--block-ms", type=float, default=1.0, help="time per contender per round")
    ap.add_argument("--modes", nargs="+", default=["varied", "same"], choices=["varied", "same"])
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    rows = []
    for mode in args.modes:
        for n in args.sizes:
            varied = problems(rng, n, args.sets)
            check(varied)
            # Same loop length in both modes; "same" repeats one problem object.
            sets = varied if mode == "varied" else [varied[0]] * args.sets
            s = interleaved(sets, args.rounds, args.block_ms * 1e-3)
            med = {k: statistics.median(v) for k, v in s.items()}
            cells = [mode, n] + [f"{med[k] * 1e6:.3f}" for k in CONTENDERS]
            for name in ("pro_rata", "index"):
                ratios = [a / b for a, b in zip(s["numba"], s[name], strict=True)]
                q1, q2, q3 = _quartiles(ratios)
                cells.append(f"{q2:.2f}x ({q1:.2f}-{q3:.2f})")
            rows.append(cells)
    print(f"machine: {machine()}; numba {numba.__version__}, numpy {np.__version__}")
    print(
        f"{args.rounds} interleaved rounds of ~{args.block_ms:g} ms per contender; "
        "µs per call from Python = median over rounds (includes the same Python loop "
        "overhead for all); speedup = median of per-round numba/powermarket ratios "
        "(interquartile range). Targets refer to the varied mode.\n"
    )
    print(
        table(
            [
                "data",
                "N",
                "numba classic µs",
                "pm.clear pro_rata µs",
                "pm.clear index µs",
                "speedup pro_rata",
                "speedup index",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
