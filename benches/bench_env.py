"""One market stepped from Python: powermarket fronts against the NumPy/numba baseline.

Run: ``make bench`` or ``.venv/bin/python benches/bench_env.py``. Times whole
episodes (reset + T=24 steps with pre-built random actions) of

- ``pm.MarketEnv`` (arrays in, arrays out),
- ``pm.parallel_env`` (PettingZoo dicts, pre-built action dicts),
- the Gymnasium single-learner env (one learner, N-1 built-in truthful
  opponents stepped in Rust), as the class itself and as
  ``gymnasium.make("powermarket/Market-v0")`` returns it (with Gymnasium's
  wrappers),
- ``BaselineMarketEnv`` (benches/numba_baseline.py, the easy_marl way),

all in this one process. The contenders run interleaved in rounds (A, B, C, A,
B, C, ...) so that a noisy neighbour hits them alike; the table gives medians
over rounds and the median of the per-round speedups.
"""

from __future__ import annotations

import argparse
import os
import statistics
from collections.abc import Callable

import gymnasium
import numba
import numpy as np
from _common import calibrate, machine, table, timed
from numba_baseline import BaselineMarketEnv, compare_episode

import powermarket as pm

ENV_ID = "powermarket/Market-v0"


def random_actions(rng: np.random.Generator, t: int, n: int) -> np.ndarray:
    """(T, N, 2) float32 actions spread over the whole action box."""
    a0 = rng.uniform(0.0, 1.0, (t, n)) * rng.uniform(0.0, 0.6)
    a1 = rng.uniform(-3.0, 3.0, (t, n))
    return np.stack([a0, a1], axis=-1).astype(np.float32)


def episode_runner(env, steps: list) -> Callable[[], None]:
    """One episode: reset, then one step per pre-built action (array or dict)."""
    reset, step = env.reset, env.step

    def run() -> None:
        reset()
        for a in steps:
            step(a)

    return run


def interleaved(
    runs: dict[str, Callable[[], None]], rounds: int, target_s: float
) -> dict[str, list[float]]:
    """Seconds per episode of each contender, one sample per round, run A, B, C, A, ..."""
    counts = {name: calibrate(run, target_s) for name, run in runs.items()}
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            samples[name].append(timed(run, counts[name]) / counts[name])
    return samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[5, 50])
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--round-s", type=float, default=0.05, help="seconds per contender per round")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)

    rows = []
    targets = []
    for n in args.sizes:
        scenario = pm.Scenario.default(n=n, t=24)
        t = scenario.t
        acts = random_actions(rng, t, n)
        # Same semantics before timing anything: the baseline and MarketEnv
        # (index tie rule, no noise so that the RNGs do not matter) agree.
        quiet = scenario.replace(demand_noise=0.0)
        compare_episode(
            pm.MarketEnv(quiet, tie_rule="index", seed=1),
            BaselineMarketEnv.from_scenario(quiet, seed=1),
            acts,
        )

        steps = [np.ascontiguousarray(a) for a in acts]
        agents = [f"gen_{i}" for i in range(n)]
        dict_steps = [{ag: a[i] for i, ag in enumerate(agents)} for a in acts]
        learner_steps = [np.ascontiguousarray(a[0]) for a in acts]
        runs = {
            "MarketEnv": episode_runner(pm.MarketEnv(scenario, seed=1), steps),
            "PettingZoo": episode_runner(pm.parallel_env(scenario, seed=1), dict_steps),
            "baseline": episode_runner(BaselineMarketEnv.from_scenario(scenario, 1), steps),
            "Gymnasium": episode_runner(
                gymnasium.make(ENV_ID, scenario=scenario, seed=1).unwrapped, learner_steps
            ),
            "Gymnasium make": episode_runner(
                gymnasium.make(ENV_ID, scenario=scenario, seed=1), learner_steps
            ),
        }
        s = interleaved(runs, args.rounds, args.round_s)
        us = {k: statistics.median(v) / t * 1e6 for k, v in s.items()}
        best = {k: min(v) / t * 1e6 for k, v in s.items()}

        def speedup(name: str, samples: dict[str, list[float]] = s) -> float:
            pairs = zip(samples["baseline"], samples[name], strict=True)
            return statistics.median(r / x for r, x in pairs)

        sp_env, sp_pz = speedup("MarketEnv"), speedup("PettingZoo")
        targets.append((n, us["MarketEnv"], sp_env, sp_pz, us["Gymnasium"], us["Gymnasium make"]))
        rows.append(
            [
                n,
                f"{us['MarketEnv']:.2f} ({best['MarketEnv']:.2f})",
                f"{us['PettingZoo']:.2f} ({best['PettingZoo']:.2f})",
                f"{us['baseline']:.2f} ({best['baseline']:.2f})",
                f"{us['Gymnasium']:.2f} ({best['Gymnasium']:.2f})",
                f"{us['Gymnasium make']:.2f} ({best['Gymnasium make']:.2f})",
                f"{1e6 / us['MarketEnv'] / 1e3:,.0f} k",
                f"{1e6 / us['PettingZoo'] / 1e3:,.0f} k",
                f"{1e6 / us['baseline'] / 1e3:,.1f} k",
                f"{sp_env:.1f}x",
                f"{sp_pz:.1f}x",
            ]
        )

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {machine()}; numba {numba.__version__}, numpy {np.__version__}")
    print(f"load average (1, 5, 15 min) at the end: {load}")
    print(
        f"whole episodes (reset + {t} steps, pre-built random actions), {args.rounds} "
        "interleaved rounds; medians over rounds; speedup = median of per-round "
        "baseline / contender; (best) = fastest round\n"
    )
    print(
        table(
            [
                "N",
                "MarketEnv µs/step",
                "PettingZoo µs/step",
                "baseline µs/step",
                "Gymnasium single µs/step",
                "gymnasium.make µs/step",
                "MarketEnv steps/s",
                "PettingZoo steps/s",
                "baseline steps/s",
                "MarketEnv speedup",
                "PettingZoo speedup",
            ],
            rows,
        )
    )
    print("\n## Targets (shown, not asserted)\n")
    for n, t_env, sp_env, sp_pz, t_gym, t_make in targets:
        if n == 5:
            ok = "met" if t_env <= 1.0 else "NOT met"
            print(f"- MarketEnv at N=5: {t_env:.2f} µs/step (target <= 1 µs: {ok})")
            ok = "met" if t_gym <= 1.0 else "NOT met"
            print(
                f"- Gymnasium single-learner at N=5 (built-in opponents): {t_gym:.2f} µs/step "
                f"(target <= 1 µs: {ok}); through gymnasium.make's wrappers {t_make:.2f} µs"
            )
        ok = "met" if sp_env >= 10 else "NOT met"
        print(f"- MarketEnv vs baseline at N={n}: {sp_env:.1f}x (target >= 10x: {ok})")
        ok = "met" if sp_pz >= 4 else "NOT met"
        print(f"- PettingZoo vs baseline at N={n}: {sp_pz:.1f}x (target >= 4x: {ok})")


if __name__ == "__main__":
    main()
