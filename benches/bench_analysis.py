"""Exploitability (NashConv) of a profile: ``powermarket.analysis`` against the
same computation written in NumPy over ``pm.clear_batch``.

Run: ``.venv/bin/python benches/bench_analysis.py``. For N generators, T = 24
hours and a 21 x 41 deviation grid (861 candidate offers per agent and hour),
every deviation of every agent in every hour is cleared:

- ``exploitability``: the whole call, a Python policy (a linear map of the
  observation) stepped through ``MarketEnv`` for the episodes, then the Rust
  scoring with the GIL released;
- ``scoring only``: ``exploitability_of_play`` on the recorded actions;
- ``numpy + clear_batch``: per agent and hour, one ``pm.clear_batch`` call
  over the 861 candidates, rewards and maxima in NumPy.

The contenders are checked to agree first, then run interleaved in rounds;
the table gives medians over rounds (ms per call) and the median of per-round
speedups. Target: N = 5, one episode, under 50 ms.

A second table times ``equilibrium`` (best-response dynamics on the same grid,
the scenario's demand profile, one start) per N, with its moves, the hours
that ended in a grid equilibrium and its NashConv share checked by
``exploitability_of_play``. Target: N = 5, T = 24, 21 x 41, under 1 s.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
from _common import calibrate, machine, table, timed

import powermarket as pm
from powermarket import analysis as pa


def linear_policy(n: int, d: int, seed: int):
    rng = np.random.default_rng(seed)
    w = rng.normal(0.0, 0.5, (n, d, 2))
    b = rng.normal([0.1, 0.3], [0.05, 0.5], (n, 2))
    return lambda obs: (np.einsum("nd,nda->na", obs, w) + b).astype(np.float32)


def rollout(scenario, policy, seed: int, episodes: int) -> tuple[np.ndarray, np.ndarray]:
    env = pm.MarketEnv(scenario, seed=seed)
    n, t = env.num_agents, env.horizon
    actions = np.empty((episodes, t, n, 2), np.float32)
    demand = np.empty((episodes, t))
    for e in range(episodes):
        obs, _ = env.reset()
        for h in range(t):
            a = policy(obs)
            obs, *_ = env.step(a)
            actions[e, h] = a
        demand[e] = env.demand
    return actions, demand


def numpy_regret(scenario, actions, demand, grid) -> np.ndarray:
    """Regret (N,) with pm.clear_batch over the candidates of each agent-hour."""
    withheld, price_action = (np.asarray(g, np.float32).astype(np.float64) for g in grid)
    e_count, t_count, n, _ = actions.shape
    costs, caps = scenario.costs, scenario.capacities
    delta, bp, lol = scenario.max_bid_delta, scenario.bid_penalty, scenario.lol_penalty
    scale = 20.0 / (scenario.demand_scale * scenario.cost_scale * max(1, t_count))
    cand_w, cand_a = np.meshgrid(withheld, price_action, indexing="ij")
    cand_q = (1.0 - np.clip(cand_w.ravel(), 0, 1))[:, None] * caps[None, :]  # (G, N)
    cand_b = costs[None, :] + np.tanh(np.clip(cand_a.ravel(), -10, 10))[:, None] * delta
    g = cand_q.shape[0]
    regret = np.zeros(n)
    for e in range(e_count):
        for h in range(t_count):
            a = actions[e, h].astype(np.float64)
            b = costs + np.tanh(np.clip(a[:, 1], -10, 10)) * delta
            q = (1.0 - np.clip(a[:, 0], 0, 1)) * caps
            d = demand[e, h]
            bids = np.tile(b, (g + 1, 1))
            qs = np.tile(q, (g + 1, 1))
            dem = np.full(g + 1, d)
            for i in range(n):
                bids[1:, i], qs[1:, i] = cand_b[:, i], cand_q[:, i]
                prices, cleared = pm.clear_batch(
                    bids, qs, dem, shortage_price=scenario.shortage_price
                )
                short = np.where(qs.sum(1) < d, np.maximum(d - cleared.sum(1), 0.0), 0.0)
                r = (
                    (prices - costs[i]) * cleared[:, i]
                    - bp * (bids[:, i] - costs[i]) ** 2
                    - lol * short
                ) * scale
                regret[i] += max(r[1:].max(), r[0]) - r[0]
                bids[1:, i], qs[1:, i] = b[i], q[i]
    return regret / e_count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[5, 20])
    ap.add_argument("--episodes", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--grid", type=int, nargs=2, default=[21, 41])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--round-s", type=float, default=0.3, help="seconds per contender per round")
    args = ap.parse_args()
    grid = pa.default_grid(*args.grid)
    g = len(grid[0]) * len(grid[1])
    rows = []
    headline = None
    for n in args.sizes:
        scenario = pm.Scenario.default(n=n, t=24)
        policy = linear_policy(n, pm.MarketEnv(scenario).obs_dim, seed=n)
        for episodes in args.episodes:
            actions, demand = rollout(scenario, policy, 0, episodes)
            full = pa.exploitability(scenario, policy, grid=grid, seed=0, episodes=episodes)
            only = pa.exploitability_of_play(scenario, actions, demand, grid=grid)
            ref = numpy_regret(scenario, actions, demand, grid)
            np.testing.assert_array_equal(full["regret"], only["regret"])
            np.testing.assert_allclose(only["regret"], ref, rtol=1e-6, atol=1e-9)
            runs = {
                "exploitability": lambda s=scenario, p=policy, e=episodes: pa.exploitability(
                    s, p, grid=grid, seed=0, episodes=e
                ),
                "scoring only": lambda s=scenario, a=actions, d=demand: pa.exploitability_of_play(
                    s, a, d, grid=grid
                ),
                "numpy + clear_batch": lambda s=scenario, a=actions, d=demand: numpy_regret(
                    s, a, d, grid
                ),
            }
            counts = {k: calibrate(f, args.round_s) for k, f in runs.items()}
            samples: dict[str, list[float]] = {k: [] for k in runs}
            for _ in range(args.rounds):
                for k, f in runs.items():
                    samples[k].append(timed(f, counts[k]) / counts[k])
            med = {k: statistics.median(v) * 1e3 for k, v in samples.items()}
            speed = statistics.median(
                b / a
                for a, b in zip(
                    samples["exploitability"], samples["numpy + clear_batch"], strict=True
                )
            )
            clears = episodes * 24 * n * g
            rows.append(
                [
                    n,
                    episodes,
                    f"{clears / 1e3:.0f} k",
                    f"{med['exploitability']:.2f}",
                    f"{med['scoring only']:.2f}",
                    f"{med['numpy + clear_batch']:.1f}",
                    f"{speed:.0f}x",
                    f"{med['scoring only'] * 1e6 / clears:.0f}",
                ]
            )
            if n == 5 and episodes == 1:
                headline = med["exploitability"]
    print(f"machine: {machine()}")
    print(f"grid {args.grid[0]} x {args.grid[1]} = {g} deviations per agent and hour, T = 24")
    print()
    print(
        table(
            [
                "N",
                "episodes",
                "clearings",
                "exploitability ms",
                "scoring only ms",
                "numpy + clear_batch ms",
                "speedup",
                "ns per clearing (scoring)",
            ],
            rows,
        )
    )
    if headline is not None:
        verdict = "met" if headline < 50.0 else "NOT met"
        print(
            f"\nN=5, T=24, 21x41 grid, one episode: {headline:.2f} ms (target < 50 ms: {verdict})"
        )
    eq_rows, eq_headline = bench_equilibrium(args, grid)
    print()
    print(
        table(
            ["N", "equilibrium ms", "moves", "exact hours", "NashConv % (exploitability_of_play)"],
            eq_rows,
        )
    )
    if eq_headline is not None:
        verdict = "met" if eq_headline < 1000.0 else "NOT met"
        print(
            f"\nequilibrium, N=5, T=24, 21x41 grid: {eq_headline:.1f} ms (target < 1 s: {verdict})"
        )


def bench_equilibrium(args, grid) -> tuple[list[list], float | None]:
    """Median time of ``pa.equilibrium`` per N, its moves and checked NashConv."""
    rows, headline = [], None
    for n in args.sizes:
        scenario = pm.Scenario.default(n=n, t=24)
        eq = pa.equilibrium(scenario, grid=grid)
        x = pa.exploitability_of_play(
            scenario, eq["actions"][None], scenario.demand[None], grid=grid
        )
        share = x["nash_conv"] / x["played_reward"].sum()
        count = calibrate(lambda s=scenario: pa.equilibrium(s, grid=grid), args.round_s)
        times = [
            timed(lambda s=scenario: pa.equilibrium(s, grid=grid), count) / count
            for _ in range(args.rounds)
        ]
        ms = statistics.median(times) * 1e3
        rows.append([n, f"{ms:.1f}", eq["moves"], eq["exact_hours"], f"{100 * share:.3f}"])
        if n == 5 and tuple(args.grid) == (21, 41):
            headline = ms
    return rows, headline


if __name__ == "__main__":
    main()
