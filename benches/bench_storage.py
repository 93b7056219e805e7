"""Cost of storage units in ``VecMarketEnv`` (issue: storage units).

Each contender steps a market with and without batteries, on one thread,
side by side in one process; rounds interleave the contenders and the table
gives the median cost per env-step (one market stepped one hour) and its
ratio to the same market without storage. The target is at most 1.5x for
N = 5 generators and S = 1 battery. Before timing, each variant is checked
against ``MarketEnv`` (market 0 equals it bit for bit), so a wrong result
cannot be fast.

    python benches/bench_storage.py            # M = 4096
    python benches/bench_storage.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
from _common import calibrate, check_vec_against_market_env, machine, table, timed

import powermarket as pm


def battery(power: float = 20.0, energy: float = 80.0) -> pm.Storage:
    return pm.Storage(power=power, energy=energy)


def variants() -> list[tuple[str, pm.Scenario, pm.Scenario]]:
    """(name, market with storage, the same market without)."""
    five = pm.Scenario.default(n=5)
    fifty = pm.Scenario.default(n=50)
    return [
        ("N=5, S=1", five.replace(storage=[battery()]), five),
        ("N=5, S=1, K=2", five.replace(storage=[battery()], segments=2), five.replace(segments=2)),
        (
            "N=5, S=1, pay_as_bid",
            *(s.replace(mechanism="pay_as_bid") for s in (five.replace(storage=[battery()]), five)),
        ),
        ("N=50, S=5", fifty.replace(storage=[battery(4, 16)] * 5), fifty),
    ]


def actions(rng: np.random.Generator, m: int, s: pm.Scenario, count: int) -> list[np.ndarray]:
    """Generators withhold up to half at cost +- a markup; storage units
    charge or discharge (a0 in [-1, 1]) at prices around their reference."""
    k = s.segments
    block = (2,) if k == 1 else (k, 2)
    out = []
    for _ in range(count):
        a = np.empty((m, s.num_agents, *block), np.float32)
        a[:, : s.n, ..., 0] = rng.uniform(0.0, 0.5, a[:, : s.n, ..., 0].shape)
        a[:, s.n :, ..., 0] = rng.uniform(-1.0, 1.0, a[:, s.n :, ..., 0].shape)
        a[..., 1] = rng.uniform(-3.0, 3.0, a[..., 1].shape)
        out.append(a)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smoke run: small M, short rounds")
    ap.add_argument("--envs", type=int, default=4096)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--round-s", type=float, default=0.15)
    args = ap.parse_args()
    if args.quick:
        args.envs, args.rounds, args.round_s = 64, 2, 0.01
    rng = np.random.default_rng(0)
    print(f"machine: {machine()}")
    print(
        f"VecMarketEnv, M={args.envs}, 1 thread; median of {args.rounds} interleaved rounds "
        f"of ~{args.round_s} s per contender\n"
    )
    cases = []
    for name, with_storage, without in variants():
        pair = []
        for s in (with_storage, without):
            acts = actions(rng, args.envs, s, 48)
            check_vec_against_market_env(s, acts)
            env = pm.VecMarketEnv(s, num_envs=args.envs, seed=0, num_threads=1)
            env.reset()
            i = [0]

            def unit(env=env, acts=acts, i=i) -> None:
                env.step(acts[i[0] % len(acts)])
                i[0] += 1

            pair.append([unit, calibrate(unit, args.round_s), []])
        cases.append((name, pair))
    for _ in range(args.rounds):
        for _, pair in cases:
            for unit, reps, samples in pair:
                samples.append(timed(unit, reps) / (reps * args.envs))
    rows = []
    for name, (with_s, without) in cases:
        a, b = statistics.median(with_s[2]), statistics.median(without[2])
        rows.append([name, f"{a * 1e9:.0f}", f"{b * 1e9:.0f}", f"{a / b:.2f}x"])
    print("ns per env-step (one market, one hour), with and without storage")
    print(table(["market", "with storage", "without", "ratio"], rows))


if __name__ == "__main__":
    main()
