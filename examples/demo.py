"""The main job: generators learn to bid by iterated best response (IBR).

Default market (5 generators, 24 hours). Each generator has a small linear
policy (observation -> [withheld share, price action]). In turn, one generator
learns with CMA-ES (the ``cma`` package) while the others stay frozen; a
candidate policy is scored by its mean episode reward over many markets
stepped at once by ``powermarket.VecMarketEnv``. A learner keeps its new policy
only if it beats both its old policy and truthful bidding on a fixed set of
evaluation markets, so every turn is a real best-response step.

After every round the profile is scored with ``powermarket.analysis.exploitability``:
each generator's regret is what it could still gain by changing its bid in any
hour to the best of a 21 x 41 grid of (withheld share, price action) pairs,
the others' bids held as played; NashConv is the sum. The rounds stop when
NashConv falls below 2 % of the total learned reward (profit less
the bid penalty, in € per day), or at the round limit.

At the end the script prints, per generator, its marginal cost, its learned
mean markup, its profit when everyone plays the learned policies against its
profit when it alone bids truthfully (and when everyone does), and its regret
in € per day, plus the mean clearing price against the competitive price (all
bids at cost). It saves a figure to ``outputs/demo.png``: price by hour, the
merit order at the peak, and NashConv by round.

Run: ``make demo`` (or ``.venv/bin/python examples/demo.py --seed 0``). With
``--scenario PATH`` the same job runs on a scenario file, e.g.
``examples/scenarios/four_plants_day.toml``; ``--scenario advanced`` runs it
on easy_marl's advanced week (``Scenario.advanced()``: wind, solar, ramp
limits and costs, 168 hours) with the ``market_v2`` observer, which shows each
generator its load factor and ramp window.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass

import cma
import numpy as np
from tqdm import tqdm

import powermarket as pm
from powermarket import analysis

OBSERVER = "simple"
# Stop the IBR rounds once NashConv is below this share of the total learned reward (€).
NASHCONV_TARGET = 0.02


@dataclass
class Budget:
    rounds: int  # the round limit
    generations: int
    popsize: int
    markets_per_candidate: int
    eval_markets: int
    regret_episodes: int  # episodes scored by analysis.exploitability after each round


BUDGETS = {
    "full": Budget(
        rounds=6,
        generations=25,
        popsize=16,
        markets_per_candidate=32,
        eval_markets=512,
        regret_episodes=16,
    ),
    "quick": Budget(
        rounds=1,
        generations=3,
        popsize=6,
        markets_per_candidate=4,
        eval_markets=32,
        regret_episodes=2,
    ),
}


class LinearPolicies:
    """One linear policy per generator: action = obs @ W + b, params (D + 1) * 2."""

    def __init__(self, n: int, d: int) -> None:
        self.n, self.d = n, d
        self.params = np.zeros((n, self.size), dtype=np.float64)  # zeros = truthful

    @property
    def size(self) -> int:
        return (self.d + 1) * 2

    @staticmethod
    def act(obs: np.ndarray, params: np.ndarray) -> np.ndarray:
        """Actions (M, N, 2) for obs (M, N, D) and per-market params (M, N, (D+1)*2)."""
        m, n, d = obs.shape
        w = params[..., : d * 2].reshape(m, n, d, 2)
        b = params[..., d * 2 :]
        return (np.einsum("mnd,mnda->mna", obs, w) + b).astype(np.float32)


def run_episodes(
    scenario: pm.Scenario, params: np.ndarray, seed: int, *, threads: int | None = None
) -> dict[str, np.ndarray]:
    """One episode in each of M markets with per-market params (M, N, P).

    Returns per-market totals: reward (M, N), profit (M, N) in €, mean price
    (M,), mean markup (M, N) in €/MWh, and the mean price per hour (T,).
    """
    m, n, _ = params.shape
    env = pm.VecMarketEnv(scenario, num_envs=m, observer=OBSERVER, seed=seed, num_threads=threads)
    obs, _ = env.reset()
    costs = scenario.costs
    delta = scenario.max_bid_delta
    t_len = scenario.t
    reward = np.zeros((m, n))
    profit = np.zeros((m, n))
    markup = np.zeros((m, n))
    price_by_hour = np.zeros(t_len)
    for h in range(t_len):
        actions = LinearPolicies.act(obs, params)
        obs, r, _, _, info = env.step(actions)
        reward += r
        price = info["price"]
        profit += (price[:, None] - costs[None, :]) * info["cleared"]
        markup += np.tanh(np.clip(actions[..., 1], -10, 10).astype(np.float64)) * delta
        price_by_hour[h] = price.mean()
    return {
        "reward": reward,
        "profit": profit,
        "markup": markup / t_len,
        "price_by_hour": price_by_hour,
    }


def tile(policies: np.ndarray, m: int) -> np.ndarray:
    return np.broadcast_to(policies, (m,) + policies.shape).copy()


def score(scenario: pm.Scenario, pol: LinearPolicies, budget: Budget, seed: int) -> dict:
    """Regret and NashConv of the current profile (powermarket.analysis)."""
    params = pol.params.copy()

    def policy(obs: np.ndarray) -> np.ndarray:
        return LinearPolicies.act(obs[None], params[None])[0]

    return analysis.exploitability(
        scenario,
        policy,
        grid=analysis.default_grid(21, 41),
        seed=seed * 1_000_003 + 11,
        episodes=budget.regret_episodes,
        observer=OBSERVER,
    )


def per(scenario: pm.Scenario) -> str:
    """What the € amounts are per: an episode, which is a day on the default market."""
    return "day" if scenario.t == 24 else f"episode ({scenario.t} h)"


def learn(
    scenario: pm.Scenario, budget: Budget, seed: int, quiet: bool
) -> tuple[LinearPolicies, list[dict]]:
    """IBR rounds until NashConv < NASHCONV_TARGET x total learned reward, or
    the round limit. Returns the policies and the exploitability of each round."""
    n = scenario.n
    probe = pm.MarketEnv(scenario, observer=OBSERVER)
    pol = LinearPolicies(n, probe.obs_dim)
    eval_seed = seed * 1_000_003 + 7
    k = budget.markets_per_candidate
    total = budget.rounds * n * budget.generations
    bar = tqdm(total=total, desc="IBR (CMA-ES)", unit="gen", disable=quiet, mininterval=0.5)
    gen_seed = seed * 7919 + 1
    history: list[dict] = []
    for rnd in range(budget.rounds):
        for j in range(n):
            es = cma.CMAEvolutionStrategy(
                pol.params[j].tolist(),
                0.5,
                {
                    "popsize": budget.popsize,
                    "seed": (seed * 131 + rnd * 17 + j) % (2**31 - 1) + 1,
                    "verbose": -9,
                },
            )
            for _ in range(budget.generations):
                cands = np.array(es.ask())
                m = len(cands) * k
                params = tile(pol.params, m)
                params[:, j] = np.repeat(cands, k, axis=0)
                gen_seed += 1
                out = run_episodes(scenario, params, gen_seed)
                fitness = out["reward"][:, j].reshape(len(cands), k).mean(axis=1)
                es.tell(cands, (-fitness).tolist())
                bar.update(1)
                bar.set_postfix(round=rnd + 1, learner=f"gen_{j}", reward=f"{fitness.max():.3f}")
            # Keep the best of: the new mean, the old policy, truthful bidding.
            options = np.stack([es.result.xfavorite, pol.params[j], np.zeros(pol.size)])
            scores = []
            for cand in options:
                params = tile(pol.params, budget.eval_markets)
                params[:, j] = cand
                scores.append(run_episodes(scenario, params, eval_seed)["reward"][:, j].mean())
            pol.params[j] = options[int(np.argmax(scores))]
        x = score(scenario, pol, budget, seed)
        history.append(x)
        profit = x["played_reward_eur_per_day"].sum()
        share = x["nash_conv_eur_per_day"] / profit if profit > 0 else float("inf")
        bar.write(
            f"round {rnd + 1}: NashConv {x['nash_conv_eur_per_day']:9.1f} €/{per(scenario)} = "
            f"{100 * share:5.1f} % of the total learned reward ({profit:.1f} €/{per(scenario)})"
        )
        if share < NASHCONV_TARGET:
            bar.write(f"NashConv below {100 * NASHCONV_TARGET:.0f} %: stopping")
            break
    bar.close()
    return pol, history


def evaluate(scenario: pm.Scenario, pol: LinearPolicies, budget: Budget, seed: int) -> dict:
    """Learned vs truthful on the same evaluation markets (same demand draws)."""
    n, m = scenario.n, budget.eval_markets
    eval_seed = seed * 1_000_003 + 7
    learned = run_episodes(scenario, tile(pol.params, m), eval_seed)
    truthful = run_episodes(scenario, np.zeros((m, n, pol.size)), eval_seed)
    alone = np.zeros(n)
    alone_reward = np.zeros(n)
    for j in range(n):
        params = tile(pol.params, m)
        params[:, j] = 0.0
        out = run_episodes(scenario, params, eval_seed)
        alone[j] = out["profit"][:, j].mean()
        alone_reward[j] = out["reward"][:, j].mean()
    return {
        "learned": learned,
        "truthful": truthful,
        "deviate_truthful": alone,
        "deviate_truthful_reward": alone_reward,
    }


def print_table(scenario: pm.Scenario, res: dict, regret: dict) -> None:
    learned, truthful = res["learned"], res["truthful"]
    header = (
        f"{'generator':>9} {'cost':>7} {'markup':>8} {'profit':>9} "
        f"{'alone truthful':>15} {'all truthful':>13} {'regret':>8}"
    )
    print()
    print(f"Per generator, mean over the evaluation markets (profit in € per {per(scenario)}):")
    print(header)
    print("-" * len(header))
    for j in range(scenario.n):
        print(
            f"{'gen_' + str(j):>9} {scenario.costs[j]:7.2f} "
            f"{learned['markup'][:, j].mean():8.2f} {learned['profit'][:, j].mean():9.1f} "
            f"{res['deviate_truthful'][j]:15.1f} {truthful['profit'][:, j].mean():13.1f} "
            f"{regret['regret_eur_per_day'][j]:8.1f}"
        )
    p_l = learned["price_by_hour"].mean()
    p_c = truthful["price_by_hour"].mean()
    print("-" * len(header))
    print(
        f"mean clearing price: learned {p_l:.2f} €/MWh vs competitive {p_c:.2f} €/MWh "
        f"({(p_l / p_c - 1) * 100:+.1f} %)"
    )
    print(
        f"NashConv (sum of regrets): {regret['nash_conv_eur_per_day']:.1f} €/{per(scenario)} = "
        f"{100 * regret['nash_conv'] / regret['played_reward'].sum():.1f} % of the total "
        "learned reward"
    )
    print(
        "markup: mean learned bid minus cost (€/MWh); alone truthful: its profit if it "
        "alone bid at cost against the others' learned bids; all truthful: everyone at cost; "
        f"regret: what it could still gain (€/{per(scenario)}, reward incl. penalties) by the "
        "best of "
        "21 x 41 (withheld, price) bids in each hour, the others as played."
    )


def save_figure(
    scenario: pm.Scenario,
    pol: LinearPolicies,
    res: dict,
    history: list[dict],
    path: str,
    seed: int,
):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from powermarket import plot

    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(17, 4.5))
    hours = np.arange(scenario.t)
    dots = scenario.t <= 48
    ax1.plot(
        hours, res["learned"]["price_by_hour"], marker="o" if dots else None, label="learned bids"
    )
    ax1.plot(
        hours,
        res["truthful"]["price_by_hour"],
        marker="s" if dots else None,
        label="competitive (at cost)",
    )
    ax1.set_xlabel("hour")
    ax1.set_ylabel("mean clearing price (€/MWh)")
    ax1.set_title("clearing price by hour")
    ax1.legend()
    # Merit order at the peak hour of one market, learned vs truthful.
    env = pm.MarketEnv(scenario, observer=OBSERVER, seed=seed)
    obs, _ = env.reset()
    for _ in range(scenario.t):
        actions = LinearPolicies.act(obs[None], pol.params[None])[0]
        obs, *_ = env.step(actions)
    rec = env.episode_record()
    peak = int(np.argmax(rec["demand"]))
    plot.merit_order(
        rec["bids"][peak], rec["offered"][peak], rec["demand"][peak], ax=ax2, label="learned offers"
    )
    plot.merit_order(
        scenario.costs,
        scenario.capacities * rec["availability"][peak],  # available capacity
        rec["demand"][peak],
        ax=ax2,
        label="truthful offers",
        color="tab:green",
    )
    ax2.set_title(
        f"merit order at the peak hour ({peak}:00)"
        if scenario.t <= 24
        else f"merit order at the peak hour (hour {peak})"
    )
    ax2.legend()
    rounds = np.arange(1, len(history) + 1)
    nash_conv = [x["nash_conv_eur_per_day"] for x in history]
    target = [NASHCONV_TARGET * x["played_reward_eur_per_day"].sum() for x in history]
    ax3.plot(rounds, nash_conv, marker="o", label="NashConv (sum of regrets)")
    ax3.plot(rounds, target, linestyle="--", color="grey", label="2 % of the total learned reward")
    ax3.set_xlabel("IBR round")
    ax3.set_ylabel(f"€ per {per(scenario)}")
    ax3.set_xticks(rounds)
    ax3.set_ylim(bottom=0)
    ax3.set_title("distance to equilibrium: NashConv by round")
    ax3.legend()
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seed", type=int, default=0, help="makes the whole run deterministic")
    ap.add_argument("--budget", choices=sorted(BUDGETS), default="full")
    ap.add_argument("--out", default="outputs/demo.png", help="where to save the figure")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    ap.add_argument(
        "--scenario",
        default=None,
        metavar="PATH",
        help="a scenario file (TOML, see examples/scenarios/), or `advanced` for\n"
        "Scenario.advanced(); default: the easy_marl default market (5 generators,\n"
        "24 hours). € amounts are per episode.",
    )
    ap.add_argument(
        "--observer",
        default=None,
        choices=pm.OBSERVERS,
        help="what the policies see; default: market_v2 for --scenario advanced, else simple",
    )
    args = ap.parse_args(argv)
    start = time.perf_counter()
    global OBSERVER
    if args.scenario is None:
        scenario = pm.Scenario.default(n=5, t=24)
    elif args.scenario == "advanced":
        scenario = pm.Scenario.advanced()
    else:
        scenario = pm.load_scenario(args.scenario)
        if scenario.segments != 1:
            raise SystemExit(
                f"demo: {args.scenario} has segments={scenario.segments}; the IBR demo learns "
                "and scores one [withheld share, price action] offer per generator, so it "
                "needs segments = 1 (train multi-block offers with the PettingZoo, Gymnasium "
                "or TorchRL fronts instead)"
            )
    OBSERVER = args.observer or ("market_v2" if args.scenario == "advanced" else "simple")
    budget = BUDGETS[args.budget]
    print(f"powermarket {pm.__version__}: {scenario}, observer {OBSERVER!r}")
    print(
        f"IBR: up to {budget.rounds} rounds x {scenario.n} learners x {budget.generations} "
        f"CMA-ES generations, {budget.popsize} candidates x {budget.markets_per_candidate} "
        f"markets each; stop when NashConv < {100 * NASHCONV_TARGET:.0f} % of the total "
        "learned reward"
    )
    pol, history = learn(scenario, budget, args.seed, args.quiet)
    res = evaluate(scenario, pol, budget, args.seed)
    print_table(scenario, res, history[-1])
    save_figure(scenario, pol, res, history, args.out, args.seed)
    print(f"\nfigure: {args.out}   ({time.perf_counter() - start:.1f} s)")
    return {"policies": pol, "results": res, "path": args.out, "exploitability": history}


if __name__ == "__main__":
    main()
