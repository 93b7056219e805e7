"""pm.clear_network against scipy.optimize.linprog(method="highs") on the same
LP, per hour, on an RTS-24-sized grid (24 nodes, 33 offers, 38 lines).

Run: ``.venv/bin/python benches/bench_network.py`` (``--hours`` hours of
varying demand; ``--quick`` for a smoke run). For each hour both contenders
clear the same problem; the table reports the median time per hour of
each, their ratio, and the largest price difference (they must agree: the
run stops if they do not, where the LP's prices are unique).

Contenders, interleaved per hour:
- ``pm.clear_network`` called from Python (array conversion, validation,
  the PTDF and the clearing included);
- ``pm.clear_network_batch`` over all hours at once (per hour);
- ``linprog``: HiGHS on the LP built in NumPy (``tests/reference_network.py``,
  the test oracle, in the angle form); the build is timed apart, and the
  ratio is against the solve alone, which favours HiGHS.

The grid is synthetic, not the IEEE data: a random spanning tree of 24
nodes plus 15 meshing lines (38 in all), line limits drawn so that some
bind at the peak, and 33 offers with prices of 5-120 €/MWh.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

import powermarket as pm

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
from _common import machine, table  # noqa: E402
from reference_network import solve  # noqa: E402


def rts24_like(rng: np.random.Generator):
    z, n_lines, n_offers = 24, 38, 33
    pairs = [(int(rng.integers(0, k)), k) for k in range(1, z)]
    seen = {tuple(sorted(p)) for p in pairs}
    while len(pairs) < n_lines:
        a, b = (int(v) for v in rng.choice(z, 2, replace=False))
        if tuple(sorted((a, b))) not in seen:
            seen.add(tuple(sorted((a, b))))
            pairs.append((a, b))
    lines = np.array(
        [[a, b, rng.uniform(80.0, 400.0), rng.uniform(0.02, 0.2)] for a, b in pairs], dtype=float
    )
    nodes = rng.integers(0, z, n_offers)
    prices = rng.uniform(5.0, 120.0, n_offers)
    quantities = rng.uniform(50.0, 400.0, n_offers)
    shares = rng.dirichlet(np.ones(z))
    return lines, nodes, prices, quantities, shares


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hours", type=int, default=200)
    ap.add_argument("--seed", type=int, default=24)
    ap.add_argument("--quick", action="store_true", help="a smoke run (20 hours)")
    args = ap.parse_args()
    hours = 20 if args.quick else args.hours
    rng = np.random.default_rng(args.seed)
    lines, nodes, prices, quantities, shares = rts24_like(rng)
    total_cap = quantities.sum()
    # A daily shape between 35 % and 80 % of capacity, with noise.
    level = 0.575 + 0.225 * np.sin(np.linspace(0, 2 * np.pi * hours / 24, hours))
    demand = (level * total_cap)[:, None] * shares[None, :]
    demand *= rng.uniform(0.9, 1.1, demand.shape)
    bids = prices[None, :] * rng.uniform(0.9, 1.3, (hours, len(prices)))
    qs = np.tile(quantities, (hours, 1))
    cap = 300.0
    print(f"# bench_network: {machine()}")
    print(f"# grid: 24 nodes, {len(lines)} lines, {len(nodes)} offers; {hours} hours; cap {cap}")
    rows = []
    for model in ("transport", "dc"):
        t_pm, t_lp, t_build, diffs, congested = [], [], [], [], 0
        for h in range(hours):
            args_h = (bids[h], qs[h], nodes, demand[h], lines)
            # Warm up and check agreement.
            out = pm.clear_network(*args_h, model=model, price_cap=cap)
            reps = 20
            t0 = time.perf_counter()
            for _ in range(reps):
                pm.clear_network(*args_h, model=model, price_cap=cap)
            t_pm.append((time.perf_counter() - t0) / reps)
            t0 = time.perf_counter()
            ref = solve(*args_h, model=model, price_cap=cap)
            t_build.append(time.perf_counter() - t0)
            # The solve alone: linprog on prebuilt arrays (the reference's
            # own build is then excluded by subtracting a build-only pass).
            t_lp.append(linprog_only(args_h, model, cap))
            congested += int(np.ptp(out[0]) > 1e-9)
            d = float(np.max(np.abs(out[0] - ref.prices)))
            if ref.shed.sum() == 0 and out[0].max() < cap:
                diffs.append(d)
                if d > 1e-6 * cap:
                    raise SystemExit(f"{model} hour {h}: prices differ by {d}")
        t0 = time.perf_counter()
        pm.clear_network_batch(bids, qs, nodes, demand, lines, model=model, price_cap=cap)
        t_batch = (time.perf_counter() - t0) / hours
        med_pm, med_lp = statistics.median(t_pm), statistics.median(t_lp)
        rows.append(
            [
                model,
                f"{congested}/{hours}",
                f"{med_pm * 1e6:.1f}",
                f"{t_batch * 1e6:.1f}",
                f"{med_lp * 1e6:.1f}",
                f"{statistics.median(t_build) * 1e6:.0f}",
                f"{med_lp / med_pm:.1f}x",
                f"{max(diffs) if diffs else 0.0:.1e}",
            ]
        )
    print(
        table(
            [
                "model",
                "congested hours",
                "clear_network µs/h",
                "batch µs/h",
                "linprog solve µs/h",
                "linprog build+solve µs/h",
                "ratio (solve / clear_network)",
                "max |Δprice|",
            ],
            rows,
        )
    )


def linprog_only(args_h, model, cap) -> float:
    """Seconds of one ``linprog`` call on the reference LP, arrays prebuilt."""
    import reference_network as ref
    from scipy.optimize import linprog

    captured = {}

    def capture(c, **kw):
        captured.update(c=c, **kw)
        return real(c, **kw)

    real = ref.linprog
    ref.linprog = capture
    try:
        solve(*args_h, model=model, price_cap=cap)
    finally:
        ref.linprog = real
    c = captured.pop("c")
    t0 = time.perf_counter()
    linprog(c, **captured)
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
