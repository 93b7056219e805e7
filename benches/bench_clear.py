"""powermarket.clear against a numba build of the classic clearing, side by side.

Run: ``make bench`` or ``.venv/bin/python benches/bench_clear.py``. Prints a
Markdown table of median microseconds per call (each called from Python on
the same arrays, in this one process) and the speedups.
"""

from __future__ import annotations

import argparse

import numba
import numpy as np

import powermarket as pm
from _common import machine, per_call, table


@numba.njit(cache=True)
def numba_clear(bids, quantities, demand):
    """The classic algorithm: stable argsort, cumsum, searchsorted(side='left')."""
    order = np.argsort(bids, kind="mergesort")
    q_sorted = quantities[order]
    cum = np.cumsum(q_sorted)
    idx = np.searchsorted(cum, demand, side="left")
    n = bids.shape[0]
    if idx >= n:
        return bids[order[n - 1]], quantities.copy()
    cleared = np.zeros_like(quantities)
    for j in range(idx):
        cleared[order[j]] = q_sorted[j]
    before = cum[idx - 1] if idx > 0 else 0.0
    cleared[order[idx]] = demand - before
    return bids[order[idx]], cleared


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[5, 10, 20, 50, 100, 200])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    rows = []
    for n in args.sizes:
        bids = rng.uniform(0.0, 100.0, n)
        qty = rng.uniform(0.0, 10.0, n)
        demand = 0.6 * qty.sum()
        # Same answer from all three before timing anything.
        p_nb, x_nb = numba_clear(bids, qty, demand)
        p_ix, x_ix = pm.clear(bids, qty, demand, tie_rule="index")
        p_pr, _ = pm.clear(bids, qty, demand)
        assert p_nb == p_ix == p_pr and np.allclose(x_nb, x_ix, rtol=1e-12, atol=1e-12)
        t_nb = per_call(lambda: numba_clear(bids, qty, demand))
        t_pr = per_call(lambda: pm.clear(bids, qty, demand))
        t_ix = per_call(lambda: pm.clear(bids, qty, demand, tie_rule="index"))
        rows.append(
            [
                n,
                f"{t_nb * 1e6:.2f}",
                f"{t_pr * 1e6:.2f}",
                f"{t_ix * 1e6:.2f}",
                f"{t_nb / t_pr:.1f}x",
                f"{t_nb / t_ix:.1f}x",
            ]
        )
    print(f"machine: {machine()}; numba {numba.__version__}, numpy {np.__version__}")
    print("median µs per call from Python (lower is better); speedup = numba / powermarket\n")
    print(
        table(
            [
                "N",
                "numba classic",
                "pm.clear pro_rata",
                "pm.clear index",
                "speedup pro_rata",
                "speedup index",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
