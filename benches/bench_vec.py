"""Many markets per call: pm.VecMarketEnv against Python loops over single markets.

Run: ``make bench`` or ``.venv/bin/python benches/bench_vec.py`` (``--quick`` for
a smoke run of a few seconds). For each market size N, in this one process and
interleaved in rounds so that a noisy neighbour hits all alike:

- ``pm.VecMarketEnv`` for each M, with ``num_threads=1`` and with all cores;
- ``pm.MarketEnv`` stepped in a Python loop over M markets (small M only: its
  cost per env-step does not depend on M);
- Gymnasium ``SyncVectorEnv`` over ``gymnasium.make("powermarket/Market-v0")``
  (one learner, N-1 built-in truthful opponents stepped in Rust; small M only);
- the NumPy/numba baseline env (benches/numba_baseline.py), one market at a time.

An env-step is one market cleared for one hour; an agent-step is one generator
of one market for one hour (N per env-step). Medians over rounds; "vs baseline"
is the median of per-round ratios. Peak RSS is printed at the end.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
import warnings
from collections.abc import Callable

import gymnasium
import numba
import numpy as np
from _common import calibrate, machine, table, timed
from numba_baseline import BaselineMarketEnv, compare_episode

import powermarket as pm

REF = "baseline"


def random_actions(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """float32 actions of ``shape + (2,)`` inside the action box."""
    a0 = rng.uniform(0.0, 0.5, shape)
    a1 = rng.uniform(-3.0, 3.0, shape)
    return np.stack([a0, a1], axis=-1).astype(np.float32)


def rate(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k"
    return f"{x:.0f}"


class Contender:
    """A timed unit of work (``unit()``) worth ``env_steps`` env-steps."""

    def __init__(self, name: str, m: int, unit: Callable[[], None], env_steps: int) -> None:
        self.name, self.m, self.unit, self.env_steps = name, m, unit, env_steps
        self.reps = 1
        self.samples: list[float] = []  # seconds per env-step, one per round

    def run(self, reps: int) -> float:
        return timed(self.unit, reps)

    def calibrate(self, target_s: float) -> None:
        self.reps = calibrate(self.unit, target_s)

    def sample(self) -> None:
        self.samples.append(self.run(self.reps) / (self.reps * self.env_steps))

    @property
    def per_step(self) -> float:
        return statistics.median(self.samples)


def vec_contender(scenario, m: int, threads: int | None, acts: list, seed: int) -> Contender:
    env = pm.VecMarketEnv(scenario, num_envs=m, seed=seed, num_threads=threads)
    env.reset()
    step, pool, k = env.step, acts, len(acts)
    i = [0]

    def unit() -> None:
        step(pool[i[0] % k])
        i[0] += 1

    label = "1 thread" if threads == 1 else f"{env.num_threads} threads"
    return Contender(f"VecMarketEnv {label}", m, unit, m)


def loop_contender(scenario, m: int, acts: np.ndarray, seed: int) -> Contender:
    """M MarketEnv in a Python loop; one unit = one episode of all M markets."""
    envs = [pm.MarketEnv(scenario, seed=seed + i) for i in range(m)]
    steps = [np.ascontiguousarray(a) for a in acts]

    def unit() -> None:
        for e in envs:
            e.reset()
        for a in steps:
            for e in envs:
                e.step(a)

    return Contender("MarketEnv Python loop", m, unit, m * len(steps))


def sync_contender(scenario, m: int, acts: list, seed: int) -> Contender:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = gymnasium.vector.SyncVectorEnv(
            [
                (lambda i=i: gymnasium.make("powermarket/Market-v0", scenario=scenario, seed=i))
                for i in range(seed, seed + m)
            ]
        )
        env.reset(seed=seed)
    step, pool, k = env.step, acts, len(acts)
    i = [0]

    def unit() -> None:
        step(pool[i[0] % k])
        i[0] += 1

    return Contender("gymnasium SyncVectorEnv", m, unit, m)


def ref_contender(scenario, acts: np.ndarray, seed: int) -> Contender:
    env = BaselineMarketEnv.from_scenario(scenario, seed=seed)
    steps = [np.ascontiguousarray(a) for a in acts]

    def unit() -> None:
        env.reset()
        for a in steps:
            env.step(a)

    return Contender(REF, 1, unit, len(steps))


def check_semantics(rng: np.random.Generator, n: int) -> None:
    """Before timing: the baseline agrees with MarketEnv, and VecMarketEnv market i
    seeded with the list entry seed + i with MarketEnv(seed=seed + i), over an episode
    and a bit (docs/semantics.md, seeding)."""
    s = pm.Scenario.default(n=n)
    quiet = s.replace(demand_noise=0.0)
    acts = random_actions(rng, (s.t, n))
    compare_episode(
        pm.MarketEnv(quiet, tie_rule="index", seed=0),
        BaselineMarketEnv.from_scenario(quiet, seed=0),
        acts,
    )
    m, seed = 3, 11
    vec = pm.VecMarketEnv(s, num_envs=m, seed=[seed + i for i in range(m)], num_threads=1)
    singles = [pm.MarketEnv(s, seed=seed + i) for i in range(m)]
    obs, _ = vec.reset()
    for i, e in enumerate(singles):
        np.testing.assert_array_equal(obs[i], e.reset()[0])
    for h in range(s.t + 2):
        a = random_actions(rng, (m, n))
        obs, rew, term, _, _ = vec.step(a)
        for i, e in enumerate(singles):
            o, r, te, _, _ = e.step(a[i])
            if te:
                o, _ = e.reset()
            assert te == term[i], (h, i)
            np.testing.assert_array_equal(obs[i], o)
            np.testing.assert_array_equal(rew[i], r)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smoke run: small grid, short rounds")
    ap.add_argument("--envs", type=int, nargs="+", default=[1, 64, 1024, 4096])
    ap.add_argument("--sizes", type=int, nargs="+", default=[5, 50, 200])
    ap.add_argument("--small-m", type=int, default=64, help="M of the Python-loop baselines")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--round-s", type=float, default=0.1, help="seconds per contender per round")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.quick:
        args.envs, args.sizes, args.rounds, args.round_s = [64, 4096], [5, 200], 3, 0.02
    rng = np.random.default_rng(args.seed)
    all_threads = os.cpu_count() or 1
    t_start = time.perf_counter()

    results: dict[int, list[Contender]] = {}
    for n in args.sizes:
        check_semantics(rng, n)
        scenario = pm.Scenario.default(n=n, t=24)
        episode = random_actions(rng, (scenario.t, n))
        cs = [ref_contender(scenario, episode, args.seed)]
        small = sorted({m for m in args.envs if m <= args.small_m} | {args.small_m})
        for m in small:
            cs.append(loop_contender(scenario, m, episode, args.seed))
        small_acts = [random_actions(rng, (args.small_m,)) for _ in range(4)]
        cs.append(sync_contender(scenario, args.small_m, small_acts, args.seed))
        for m in args.envs:
            pool = [random_actions(rng, (m, n)) for _ in range(2 if m * n > 100_000 else 4)]
            for threads in (1, None):
                cs.append(vec_contender(scenario, m, threads, pool, args.seed))
        for c in cs:
            c.calibrate(args.round_s)
        for _ in range(args.rounds):
            for c in cs:
                c.sample()
        results[n] = cs

    def vs_ref(n: int, c: Contender) -> float:
        ref = results[n][0]
        return statistics.median(r / x for r, x in zip(ref.samples, c.samples, strict=True))

    def find(n: int, name_start: str, m: int) -> Contender | None:
        for c in results.get(n, []):
            if c.name.startswith(name_start) and c.m == m:
                return c
        return None

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {machine()}; numba {numba.__version__}, numpy {np.__version__}")
    print(f"load average (1, 5, 15 min) at the end: {load}")
    print(
        f"{args.rounds} interleaved rounds of ~{args.round_s} s per contender; medians over "
        "rounds; vs baseline = median of per-round ratios (per env-step)\n"
    )
    print("## VecMarketEnv (env-steps/s = markets x hours per second; agent-steps/s = x N)\n")
    rows = []
    for n, cs in results.items():
        for m in args.envs:
            one = find(n, "VecMarketEnv 1 thread", m)
            many = next(
                c for c in cs if c.name.startswith("VecMarketEnv") and c.m == m and c is not one
            )
            rows.append(
                [
                    n,
                    m,
                    rate(1 / one.per_step),
                    rate(n / one.per_step),
                    f"{vs_ref(n, one):,.0f}x",
                    rate(1 / many.per_step),
                    rate(n / many.per_step),
                    f"{many.per_step / n * 1e9:.1f}",
                    f"{vs_ref(n, many):,.0f}x",
                ]
            )
    print(
        table(
            [
                "N",
                "M",
                "1 thread env-steps/s",
                "1 thread agent-steps/s",
                "1 thread vs baseline",
                f"{all_threads} threads env-steps/s",
                f"{all_threads} threads agent-steps/s",
                f"{all_threads} threads ns/agent-step",
                f"{all_threads} threads vs baseline",
            ],
            rows,
        )
    )

    print("\n## One market at a time from Python (cost per env-step, independent of M)\n")
    rows = []
    for n, cs in results.items():
        for c in cs:
            if c.name.startswith("VecMarketEnv"):
                continue
            rows.append(
                [
                    n,
                    c.name,
                    c.m,
                    f"{c.per_step * 1e6:.2f}",
                    rate(1 / c.per_step),
                    rate(n / c.per_step),
                    "1x" if c.name == REF else f"{vs_ref(n, c):.1f}x",
                ]
            )
    print(
        table(
            ["N", "contender", "M", "µs/env-step", "env-steps/s", "agent-steps/s", "vs baseline"],
            rows,
        )
    )
    print(
        "\nSyncVectorEnv: env-steps count whole markets (the learner's step clears all N "
        "generators, N-1 of them truthful opponents in Rust)."
    )

    print("\n## Targets (shown, not asserted)\n")
    m_big = max(args.envs)
    big5 = find(5, f"VecMarketEnv {all_threads} threads", m_big) if all_threads > 1 else None
    big5 = big5 or find(5, "VecMarketEnv 1 thread", m_big)
    if big5 is not None:
        eps = 1 / big5.per_step
        ratio = vs_ref(5, big5)
        print(
            f"- env-steps/s at N=5, M={m_big}, {big5.name}: {rate(eps)}/s "
            f"(target >= 5 M/s: {'met' if eps >= 5e6 else 'NOT met'})"
        )
        print(
            f"- vs baseline at N=5, M={m_big}: {ratio:,.0f}x "
            f"(target >= 50x: {'met' if ratio >= 50 else 'NOT met'})"
        )
    else:
        print("- N=5 not in --sizes: no env-steps/s target")
    for label in ("1 thread", f"{all_threads} threads"):
        lo, hi = find(5, f"VecMarketEnv {label}", m_big), find(200, f"VecMarketEnv {label}", m_big)
        if lo is None or hi is None:
            continue
        scaling = statistics.median(
            (b / 200) / (a / 5) for a, b in zip(lo.samples, hi.samples, strict=True)
        )
        print(
            f"- per-agent cost N=200 / N=5 at M={m_big}, {label}: "
            f"{hi.per_step / 200 * 1e9:.1f} ns / {lo.per_step / 5 * 1e9:.1f} ns = {scaling:.2f} "
            f"(target <= 2: {'met' if scaling <= 2 else 'NOT met'})"
        )
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS: {rss_mib:.0f} MiB; wall time {time.perf_counter() - t_start:.1f} s")


if __name__ == "__main__":
    main()
