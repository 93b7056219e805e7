"""Cost of the market-design features in ``VecMarketEnv`` (issue: segments,
demand bids, pay-as-bid, price cap and floor).

Every contender steps the same scenario with one feature changed, on one
thread, side by side in one process; rounds interleave the contenders and
the table gives the median per-agent-step cost and its ratio to the plain
market (one block, inelastic demand, uniform pricing, no cap). Before timing,
each variant is checked against ``MarketEnv`` (market 0 equals it bit for
bit), so a wrong result cannot be fast.

    python benches/bench_design.py            # N = 5 and 50, M = 4096
    python benches/bench_design.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
from _common import calibrate, check_vec_against_market_env, machine, table, timed

import powermarket as pm

TEN_BIDS = [(20.0 + 5.0 * k, 0.02) for k in range(10)]


def variants(n: int) -> dict[str, pm.Scenario]:
    base = pm.Scenario.default(n=n)
    return {
        "plain (K=1, inelastic, uniform)": base,
        "segments K=2": base.replace(segments=2),
        "segments K=4": base.replace(segments=4),
        "1 demand bid": base.replace(demand_bids=[(35.0, 0.1)]),
        "10 demand bids": base.replace(demand_bids=TEN_BIDS),
        "pay_as_bid": base.replace(mechanism="pay_as_bid"),
        "cap and floor (EUPHEMIA)": base.euphemia_limits(),
        "all: K=4, 10 bids, pay_as_bid, cap": base.replace(
            segments=4, demand_bids=TEN_BIDS, mechanism="pay_as_bid", price_cap=60.0
        ),
    }


def actions(rng: np.random.Generator, m: int, s: pm.Scenario, count: int) -> list[np.ndarray]:
    k = s.segments
    shape = (m, s.n, 2) if k == 1 else (m, s.n, k, 2)
    out = []
    for _ in range(count):
        a0 = rng.uniform(0.0, 0.5, shape[:-1])
        a1 = rng.uniform(-3.0, 3.0, shape[:-1])
        out.append(np.stack([a0, a1], axis=-1).astype(np.float32))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smoke run: small M, short rounds")
    ap.add_argument("--sizes", type=int, nargs="+", default=[5, 50])
    ap.add_argument("--envs", type=int, default=4096)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--round-s", type=float, default=0.15)
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.envs, args.rounds, args.round_s = [5], 64, 2, 0.01
    rng = np.random.default_rng(0)
    print(f"machine: {machine()}")
    print(
        f"VecMarketEnv, M={args.envs}, 1 thread; median of {args.rounds} interleaved rounds "
        f"of ~{args.round_s} s per contender\n"
    )
    for n in args.sizes:
        cases = []
        for name, s in variants(n).items():
            acts = actions(rng, args.envs, s, 48)
            check_vec_against_market_env(s, acts)
            env = pm.VecMarketEnv(s, num_envs=args.envs, seed=0, num_threads=1)
            env.reset()
            i = [0]

            def unit(env=env, acts=acts, i=i) -> None:
                env.step(acts[i[0] % len(acts)])
                i[0] += 1

            cases.append([name, unit, calibrate(unit, args.round_s), []])
        for _ in range(args.rounds):
            for case in cases:
                _, unit, reps, samples = case
                samples.append(timed(unit, reps) / (reps * args.envs * n))
        base = statistics.median(cases[0][3])
        rows = []
        for name, _, _, samples in cases:
            per = statistics.median(samples)
            rows.append([name, f"{per * 1e9:.1f}", f"{per / base:.2f}x"])
        print(f"N={n}: ns per agent-step (ratio to the plain market)")
        print(table(["variant", "ns / agent-step", "vs plain"], rows))
        print()


if __name__ == "__main__":
    main()
