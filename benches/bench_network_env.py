"""Cost of a network in ``VecMarketEnv`` (issue: networks).

Each contender steps M markets for one hour, side by side in one process;
rounds interleave the contenders, and the table gives the median
env-steps per second (markets stepped one hour) and the ratio to the
copper-plate default market (``Scenario.default()``, 5 generators). The
target: ``Scenario.two_zones()`` at least a third of the default market's
throughput. Also shown: the same two-zone fleet on one copper plate
(``network="copper"``: what the network itself costs) and the
``"dc"`` loop ``Scenario.three_nodes()``. Actions: every generator
withholds up to half its capacity at cost +- a markup (tanh(a1) with a1 in
[-3, 3]), so lines bind in some hours and not in others. Before timing,
each variant is checked against ``MarketEnv`` (market 0 of the batch
equals it bit for bit, node prices included), so a wrong result cannot be
fast.

    python benches/bench_network_env.py            # M = 4096, one thread and the pool
    python benches/bench_network_env.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
from _common import calibrate, check_vec_against_market_env, machine, table, timed

import powermarket as pm


def variants() -> list[tuple[str, pm.Scenario]]:
    zones = pm.Scenario.two_zones()
    return [
        ("default (copper, N=5)", pm.Scenario.default()),
        ("two_zones on one copper plate (N=4)", zones.replace(network="copper")),
        ("two_zones (transport, N=4)", zones),
        ("three_nodes (dc, N=2)", pm.Scenario.three_nodes()),
    ]


def actions(rng: np.random.Generator, m: int, s: pm.Scenario, count: int) -> list[np.ndarray]:
    out = []
    for _ in range(count):
        a = np.empty((m, s.num_agents, 2), np.float32)
        a[..., 0] = rng.uniform(0.0, 0.5, a[..., 0].shape)
        a[..., 1] = rng.uniform(-3.0, 3.0, a[..., 1].shape)
        out.append(a)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--envs", type=int, default=4096)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    m, rounds = (256, 3) if args.quick else (args.envs, args.rounds)
    rng = np.random.default_rng(0)
    print(machine())
    print(f"M = {m} markets, {rounds} rounds, steps per call = 1 hour of every market\n")
    for threads in (1, None):
        cases = []
        for name, s in variants():
            acts = actions(rng, m, s, 24)
            check_vec_against_market_env(s, acts)
            vec = pm.VecMarketEnv(s, num_envs=m, seed=1, num_threads=threads)
            vec.reset()
            i = [0]

            def step(vec=vec, acts=acts, i=i) -> None:
                vec.step(acts[i[0] % len(acts)])
                i[0] += 1

            cases.append((name, step, calibrate(step, 0.2)))
        times: dict[str, list[float]] = {name: [] for name, _, _ in cases}
        for _ in range(rounds):
            for name, fn, reps in cases:
                times[name].append(timed(fn, reps) / reps)
        base = statistics.median(times[cases[0][0]])
        rows = []
        for name, _, _ in cases:
            t = statistics.median(times[name])
            rows.append([name, f"{m / t / 1e6:.2f} M", f"{base / t:.2f}"])
        label = "one thread" if threads == 1 else f"the pool ({vec.num_threads} threads)"
        print(f"VecMarketEnv.step, {label}")
        print(table(["scenario", "env-steps/s", "vs default"], rows))
        print()


if __name__ == "__main__":
    main()
