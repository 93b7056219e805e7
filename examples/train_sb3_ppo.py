"""Train bidding generators with Stable-Baselines3 PPO (needs the ``train`` extra).

Two schemes of the seed project:

- ``ibr`` (iterated best response): one generator learns with PPO on the
  Gymnasium single-learner env while the others play their frozen policies,
  in turns. The frozen opponents are one batched callable: each frozen model
  predicts for its generator's observation, deterministic, no gradients.
- ``sbr`` (simultaneous best response): all generators learn at once, sharing
  one PPO policy, on the SB3 ``VecEnv`` adapter (every generator of every
  market is one SB3 env) backed by ``VecMarketEnv``.

Each scheme ends by scoring its final deterministic policy with
``powermarket.analysis.exploitability`` (NashConv in € per day and as a share
of the learned reward) and printing each generator's profit, at the prices
the env paid it, next to its profit in the equilibrium that
``powermarket.analysis.equilibrium`` computes for the same demand draws.

Run: ``.venv/bin/python examples/train_sb3_ppo.py --mode both --smoke`` (under
two minutes on 2 cores) or without ``--smoke`` for a longer run.
"""

from __future__ import annotations

import argparse
import time

import gymnasium
import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv

import powermarket as pm
from powermarket import analysis
from powermarket.sb3 import MarketVecEnv


class FrozenOpponents:
    """Batched opponent callable for the single-learner env: frozen PPO models
    (or truthful bidding where a generator has no model yet)."""

    def __init__(self, models: list[PPO | None], learner: int) -> None:
        self.models = models
        self.others = [i for i in range(len(models)) if i != learner]

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        actions = np.zeros((len(self.others), 2), dtype=np.float32)
        for row, agent in enumerate(self.others):
            model = self.models[agent]
            if model is not None:
                actions[row], _ = model.predict(obs[row], deterministic=True)
        return actions


def evaluate(
    scenario: pm.Scenario, policy_of, episodes: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean episode reward per generator under ``policy_of(agent, obs)`` and
    under truthful bidding, on the same seeds."""
    n = scenario.n
    learned, truthful = np.zeros(n), np.zeros(n)
    for ep in range(episodes):
        for target, act in ((learned, policy_of), (truthful, None)):
            env = pm.MarketEnv(scenario, seed=seed + ep)
            obs, _ = env.reset()
            for _ in range(scenario.t):
                if act is None:
                    actions = np.zeros((n, 2), np.float32)
                else:
                    actions = np.stack([act(i, obs[i]) for i in range(n)]).astype(np.float32)
                obs, rewards, *_ = env.step(actions)
                target += rewards / episodes
    return learned, truthful


def run_ibr(scenario: pm.Scenario, rounds: int, steps: int, envs: int, seed: int) -> None:
    n = scenario.n
    models: list[PPO | None] = [None] * n
    for rnd in range(rounds):
        for j in range(n):
            opponents = FrozenOpponents(models, j)

            def make(k: int, j: int = j, rnd: int = rnd, opponents: FrozenOpponents = opponents):
                return lambda: gymnasium.make(
                    "powermarket/Market-v0",
                    scenario=scenario,
                    agent=j,
                    opponents=opponents,
                    seed=seed + 1000 * rnd + 100 * j + k,
                )

            venv = DummyVecEnv([make(k) for k in range(envs)])
            model = models[j]
            if model is None:
                model = PPO("MlpPolicy", venv, n_steps=scenario.t * 4, batch_size=96, seed=seed)
            else:
                model.set_env(venv)
            model.learn(total_timesteps=steps, reset_num_timesteps=False)
            models[j] = model
            print(f"IBR round {rnd + 1}: gen_{j} trained for {steps} steps")

    def act(i: int, obs: np.ndarray) -> np.ndarray:
        action, _ = models[i].predict(obs, deterministic=True)
        return action

    learned, truthful = evaluate(scenario, act, episodes=4, seed=seed + 10_000)
    report("IBR", scenario, learned, truthful)
    print(distance_to_equilibrium(scenario, act, episodes=4, seed=seed + 20_000))


def train_sbr(scenario: pm.Scenario, steps: int, markets: int, seed: int) -> PPO:
    """One PPO policy shared by all generators of ``markets`` markets, trained
    for ``steps`` agent-steps (``benches/bench_train.py`` times this)."""
    venv = MarketVecEnv(scenario, num_markets=markets, seed=seed)
    model = PPO("MlpPolicy", venv, n_steps=scenario.t, batch_size=scenario.t * 8, seed=seed)
    model.learn(total_timesteps=steps)
    return model


def run_sbr(scenario: pm.Scenario, steps: int, markets: int, seed: int) -> None:
    model = train_sbr(scenario, steps, markets, seed)

    def act(i: int, obs: np.ndarray) -> np.ndarray:
        action, _ = model.predict(obs, deterministic=True)
        return action

    learned, truthful = evaluate(scenario, act, episodes=4, seed=seed + 10_000)
    report("SBR (shared policy)", scenario, learned, truthful)
    print(distance_to_equilibrium(scenario, act, episodes=4, seed=seed + 20_000))


def distance_to_equilibrium(scenario: pm.Scenario, policy_of, episodes: int, seed: int) -> str:
    """Score the deterministic ``policy_of(agent, obs)`` with
    ``analysis.exploitability`` on ``episodes`` episodes of
    ``MarketEnv(seed=seed)``, and compare each generator's profit (at the
    prices the env paid it) with the equilibrium ``analysis.equilibrium``
    finds for the same demand draws. Returns the printed lines."""
    n = scenario.n

    def act(obs: np.ndarray) -> np.ndarray:
        return np.stack([policy_of(i, obs[i]) for i in range(n)]).astype(np.float32)

    x = analysis.exploitability(
        scenario, act, grid=analysis.default_grid(21, 41), seed=seed, episodes=episodes
    )
    env = pm.MarketEnv(scenario, seed=seed)  # the same episodes again, for the records
    demand = np.zeros((episodes, scenario.t))
    profit = np.zeros(n)
    for e in range(episodes):
        obs, _ = env.reset()
        for _ in range(scenario.t):
            obs, *_ = env.step(act(obs))
        rec = env.episode_record()
        demand[e] = rec["demand"]
        profit += ((rec["paid"] - scenario.costs) * rec["cleared"]).sum(axis=0) / episodes
    profit *= 24.0 / scenario.t
    eq = analysis.equilibrium(scenario, demand=demand)
    share = x["nash_conv"] / x["played_reward"].sum()
    lines = [
        f"distance to equilibrium ({episodes} episodes, 21 x 41 grid): NashConv "
        f"{x['nash_conv_eur_per_day']:.1f} €/day = {100 * share:.1f} % of the learned reward",
        f"{'generator':>9} {'learned €':>10} {'equilibrium €':>14} {'regret €':>9}",
    ]
    for j in range(n):
        lines.append(
            f"{'gen_' + str(j):>9} {profit[j]:10.1f} {eq['profits'][j]:14.1f} "
            f"{x['regret_eur_per_day'][j]:9.1f}"
        )
    lines.append(
        f"{'total':>9} {profit.sum():10.1f} {eq['profits'].sum():14.1f} "
        f"{x['nash_conv_eur_per_day']:9.1f}"
    )
    return "\n".join(lines)


def report(name: str, scenario: pm.Scenario, learned: np.ndarray, truthful: np.ndarray) -> None:
    print(f"\n{name}: mean episode reward per generator")
    print(f"{'generator':>9} {'cost':>7} {'learned':>9} {'truthful':>9}")
    for j in range(scenario.n):
        print(f"{'gen_' + str(j):>9} {scenario.costs[j]:7.2f} {learned[j]:9.3f} {truthful[j]:9.3f}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--mode", choices=["ibr", "sbr", "both"], default="both")
    ap.add_argument("--smoke", action="store_true", help="tiny budget (< 2 minutes)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--generators", type=int, default=5)
    args = ap.parse_args(argv)
    start = time.perf_counter()
    scenario = pm.Scenario.default(n=3 if args.smoke else args.generators, t=24)
    if args.mode in ("ibr", "both"):
        run_ibr(
            scenario,
            rounds=1 if args.smoke else 3,
            steps=384 if args.smoke else 20_000,
            envs=2 if args.smoke else 8,
            seed=args.seed,
        )
    if args.mode in ("sbr", "both"):
        run_sbr(
            scenario,
            steps=4096 if args.smoke else 200_000,
            markets=16 if args.smoke else 64,
            seed=args.seed,
        )
    print(f"\ndone in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
