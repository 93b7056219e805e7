"""The main job: generators learn to bid by iterated best response (IBR), and
the result is checked against a computed equilibrium.

Default market (5 generators, 24 hours, noisy demand). Each generator's policy
is a table: for every hour and every demand bin (1 MW wide, read from the
observation's demand feature), one action ``[withheld share, price action]``;
a cell it has not learned plays the nearest learned bin of the same hour. The
policy is open-loop in the hour: it is told the hour of the episode, and reads
the demand from its observation.

Learning (round-robin IBR by sampling the env): in each round, generator 0,
1, ..., N-1 in turn learns while the others stay frozen. The learner tries
every action of the 21 x 41 grid (withheld share x price action) in every
hour of ``draws`` training markets, stepped at once by
``powermarket.VecMarketEnv`` with the same demand draws for every candidate
(common random numbers), and also plays its current policy there. In each
(hour, demand bin) cell it keeps the candidate with the best mean env reward
over the cell's markets, if that beats its current policy there. The training
markets are the same every round, so the rounds are best-response dynamics
of one sampled game; they stop when no learner changes a cell, when NashConv
falls below 2 % of the total learned reward, or at the round limit.

After every round the profile is scored with ``powermarket.analysis.exploitability``
on fresh evaluation episodes (demand draws never used in training): each
generator's regret is what it could still gain by changing its bid in any
hour to the best of the 21 x 41 grid, the others' bids held as played;
NashConv is the sum.

At the end, on the same evaluation markets, it compares three outcomes: the
learned bids, the competitive one (everyone at cost) and the equilibrium
computed by ``powermarket.analysis.equilibrium`` for each market's realised
demand: price by hour and per-generator profit (€ per day, at the prices the
env paid each generator). It saves a figure to ``outputs/demo.png``: the
three price curves, the merit order at the peak, and NashConv by round.

Run: ``make demo`` (or ``.venv/bin/python examples/demo.py --seed 0``). With
``--scenario PATH`` the same job runs on a scenario file, e.g.
``examples/scenarios/graf_duopoly.toml``; ``--scenario advanced`` runs it on
easy_marl's advanced week (``Scenario.advanced()``: wind, solar, ramp limits
and costs, 168 hours) with the ``market_v2`` observer (no equilibrium there:
``analysis.equilibrium`` refuses ramps). A scenario with storage units is
refused with the reason: an hour-by-hour best response cannot value a
battery, whose earnings come through its state of charge in later hours.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

import powermarket as pm
from powermarket import analysis

# Stop the IBR rounds once NashConv is below this share of the total learned reward (€).
NASHCONV_TARGET = 0.02
BIN_MW = 1.0  # width of a demand bin of the policy tables


@dataclass
class Budget:
    rounds: int  # the round limit
    draws: int  # training markets (demand draws) per candidate, x 24 / T for T > 24 (>= 4)
    eval_markets: int  # episodes of the final comparison
    regret_episodes: int  # episodes scored by analysis.exploitability after each round


BUDGETS = {
    "full": Budget(rounds=8, draws=64, eval_markets=32, regret_episodes=16),
    "quick": Budget(rounds=2, draws=24, eval_markets=4, regret_episodes=4),
}


class TablePolicies:
    """One table per generator: an action for every (hour, demand bin).

    ``table`` (T, B, N, 2) float32, ``learned`` (T, B, N) bool; the demand
    feature ``obs[..., 0]`` (demand / demand_scale) falls in bin
    ``floor((x - lo) / width)``. A cell not learned plays the nearest learned
    bin of the same hour (the lower one on ties), else truthful ``[0, 0]``.
    """

    def __init__(self, n: int, t: int, lo: float, hi: float, width: float) -> None:
        self.n, self.t, self.lo, self.width = n, t, lo, width
        self.bins = max(1, int(np.ceil((hi - lo) / width)) + 1)
        self.table = np.zeros((t, self.bins, n, 2), dtype=np.float32)  # zeros = truthful
        self.learned = np.zeros((t, self.bins, n), dtype=bool)
        self.filled = self.table.copy()

    def bin_of(self, x: np.ndarray) -> np.ndarray:
        return np.clip(((x - self.lo) / self.width).astype(np.int64), 0, self.bins - 1)

    def refresh(self) -> None:
        """Recompute ``filled``: unlearned cells copy the nearest learned bin."""
        self.filled = self.table.copy()
        idx = np.arange(self.bins)
        for h in range(self.t):
            for i in range(self.n):
                known = np.flatnonzero(self.learned[h, :, i])
                if len(known) == 0:
                    continue
                pos = np.clip(np.searchsorted(known, idx), 1, max(1, len(known) - 1))
                left = known[np.maximum(pos - 1, 0)]
                right = known[np.minimum(pos, len(known) - 1)]
                near = np.where(np.abs(idx - left) <= np.abs(right - idx), left, right)
                self.filled[h, :, i] = self.table[h, near, i]

    def act(self, h: int, obs: np.ndarray) -> np.ndarray:
        """Actions (M, N, 2) for the observations (M, N, D) of hour ``h``."""
        b = self.bin_of(obs[:, 0, 0])
        return self.filled[h % self.t, b]

    def policy(self):
        """A policy of one market for ``analysis.exploitability``: it is called
        once per hour, T times per episode (the hour is a counter)."""
        calls = [0]

        def act(obs: np.ndarray) -> np.ndarray:
            h = calls[0] % self.t
            calls[0] += 1
            return self.act(h, obs[None])[0]

        return act


def training_pass(
    scenario: pm.Scenario,
    pol: TablePolicies,
    j: int,
    cands: np.ndarray,
    seeds: list[int],
    observer: str,
) -> int:
    """Learner ``j`` best-responds cell by cell on the training markets; returns
    the number of cells it changed."""
    g, k, t = len(cands), len(seeds), scenario.t
    m = (g + 1) * k  # every candidate on every draw, then the current policy
    env = pm.VecMarketEnv(scenario, num_envs=m, observer=observer, seed=seeds * (g + 1))
    obs, _ = env.reset()
    fixed = np.repeat(cands, k, axis=0)  # (g * k, 2)
    reward = np.empty((t, m))
    bins = np.empty((t, k), dtype=np.int64)
    for h in range(t):
        bins[h] = pol.bin_of(obs[:k, 0, 0])
        actions = pol.act(h, obs).copy()
        actions[: g * k, j] = fixed
        obs, r, *_ = env.step(actions)
        reward[h] = r[:, j]
    changed = 0
    for h in range(t):
        r = reward[h].reshape(g + 1, k)
        for b in np.unique(bins[h]):
            rows = bins[h] == b
            mean = r[:, rows].mean(axis=1)
            best = int(np.argmax(mean[:g]))
            if mean[best] > mean[g] + 1e-12 * max(1.0, abs(mean[g])):
                if not (pol.learned[h, b, j] and np.array_equal(pol.table[h, b, j], cands[best])):
                    changed += 1
                pol.table[h, b, j] = cands[best]
            else:
                pol.table[h, b, j] = pol.filled[h, b, j]  # the current play is kept
            pol.learned[h, b, j] = True
    pol.refresh()
    return changed


def draws_for(scenario: pm.Scenario, budget: Budget) -> int:
    """Training markets: ``budget.draws``, times 24 / T for long horizons (>= 4)."""
    return max(4, budget.draws * 24 // max(24, scenario.t))


def score(scenario: pm.Scenario, pol: TablePolicies, episodes: int, seed: int, observer: str):
    """Regret and NashConv of the current profile (powermarket.analysis)."""
    return analysis.exploitability(
        scenario,
        pol.policy(),
        grid=analysis.default_grid(21, 41),
        seed=seed * 1_000_003 + 11,
        episodes=episodes,
        observer=observer,
    )


def per(scenario: pm.Scenario) -> str:
    """What the € amounts are per: a day (an episode of the default market;
    else 24 / T times the episode's amount, as in analysis.exploitability)."""
    return "day" if scenario.t == 24 else f"day (24/{scenario.t} x episode)"


def share_of(x: dict) -> float:
    total = x["played_reward"].sum()
    return x["nash_conv"] / total if total > 0 else float("inf")


def learn(
    scenario: pm.Scenario, budget: Budget, seed: int, quiet: bool, observer: str
) -> tuple[TablePolicies, list[dict]]:
    """IBR rounds until no learner changes a cell, NashConv < NASHCONV_TARGET
    x total learned reward, or the round limit. Returns the policies and the
    exploitability of each round (round 0: everyone truthful)."""
    n = scenario.n
    lo, hi = pm.MarketEnv(scenario, observer=observer).observation_bounds()
    pol = TablePolicies(
        n, scenario.t, float(lo[0, 0]), float(hi[0, 0]), BIN_MW / scenario.demand_scale
    )
    w, a = analysis.default_grid(21, 41)
    cands = np.stack(np.meshgrid(w, a, indexing="ij"), axis=-1).reshape(-1, 2).astype(np.float32)
    seeds = [seed * 1_000_003 + 101 + k for k in range(draws_for(scenario, budget))]
    bar = tqdm(total=budget.rounds * n, desc="IBR", unit="turn", disable=quiet, mininterval=0.5)
    x = score(scenario, pol, budget.regret_episodes, seed, observer)
    history: list[dict] = [x]  # round 0: everyone truthful, the start
    share = share_of(x)
    bar.write(
        f"round 0: NashConv {x['nash_conv_eur_per_day']:9.1f} €/{per(scenario)} = "
        + (f"{100 * share:5.1f} % of the total reward" if np.isfinite(share) else "(no reward)")
        + " (everyone truthful, the start)"
    )
    for rnd in range(budget.rounds):
        changed = 0
        for j in range(n):
            changed += training_pass(scenario, pol, j, cands, seeds, observer)
            bar.update(1)
            bar.set_postfix(round=rnd + 1, learner=f"gen_{j}")
        x = score(scenario, pol, budget.regret_episodes, seed, observer)
        history.append(x)
        share = share_of(x)
        bar.write(
            f"round {rnd + 1}: NashConv {x['nash_conv_eur_per_day']:9.1f} €/{per(scenario)} = "
            f"{100 * share:5.1f} % of the total learned reward "
            f"({x['played_reward_eur_per_day'].sum():.1f} €/{per(scenario)}); "
            f"{changed} cells changed"
        )
        if share < NASHCONV_TARGET:
            bar.write(f"NashConv below {100 * NASHCONV_TARGET:.0f} %: stopping")
            break
        if changed == 0:
            bar.write("no learner changed a cell: the sampled game is at an equilibrium")
            break
    bar.close()
    return pol, history


def play(scenario: pm.Scenario, act, seed: int, episodes: int, observer: str) -> dict:
    """``episodes`` episodes of ``MarketEnv``; ``act(h, obs)`` gives the (N, 2)
    actions. Returns per episode the price (E, T), the demand (E, T), each
    generator's profit at the price the env paid it, ``sum_t (paid - cost) x``
    (E, N) €, and its env reward (E, N)."""
    env = pm.MarketEnv(scenario, observer=observer, seed=seed)
    t, n = scenario.t, scenario.n
    out = {k: np.zeros((episodes, t)) for k in ("price", "demand")}
    out |= {k: np.zeros((episodes, n)) for k in ("profit", "reward")}
    for e in range(episodes):
        obs, _ = env.reset()
        for h in range(t):
            obs, r, *_ = env.step(act(h, obs))
            out["reward"][e] += r
        rec = env.episode_record()
        out["price"][e], out["demand"][e] = rec["prices"], rec["demand"]
        out["profit"][e] = ((rec["paid"] - scenario.costs) * rec["cleared"]).sum(axis=0)
    return out


def compare(scenario: pm.Scenario, pol: TablePolicies, budget: Budget, seed: int, observer: str):
    """Learned, competitive and equilibrium outcomes on the same evaluation
    markets (the same demand draws)."""
    eval_seed = seed * 1_000_003 + 7
    e = budget.eval_markets
    learned = play(scenario, lambda h, o: pol.act(h, o[None])[0], eval_seed, e, observer)
    zeros = np.zeros((scenario.n, 2), np.float32)
    truthful = play(scenario, lambda h, o: zeros, eval_seed, e, observer)
    res = {"learned": learned, "competitive": truthful, "equilibrium": None}
    try:
        eq = analysis.equilibrium(scenario, demand=learned["demand"], seed=seed)
    except ValueError as err:  # ramps: not supported by the solver yet
        res["equilibrium_error"] = str(err)
        return res
    actions = eq["actions"]
    # Replay the equilibrium profile of each market in the env (profits at paid prices).
    env = pm.MarketEnv(scenario, observer=observer, seed=eval_seed)
    equilibrium = {k: np.zeros_like(v) for k, v in learned.items()}
    for k in range(e):
        env.reset()
        for h in range(scenario.t):
            _, r, *_ = env.step(actions[k, h])
            equilibrium["reward"][k] += r
        rec = env.episode_record()
        np.testing.assert_allclose(rec["demand"], learned["demand"][k])
        equilibrium["price"][k], equilibrium["demand"][k] = rec["prices"], rec["demand"]
        equilibrium["profit"][k] = ((rec["paid"] - scenario.costs) * rec["cleared"]).sum(axis=0)
    res["equilibrium"] = equilibrium
    res["equilibrium_solver"] = eq
    return res


def print_tables(scenario: pm.Scenario, res: dict, regret: dict) -> None:
    learned, comp, eq = res["learned"], res["competitive"], res["equilibrium"]
    unit = per(scenario)
    print()
    print(f"Mean over {learned['price'].shape[0]} evaluation markets (the same demand draws):")
    if eq is None:
        print(f"equilibrium: not computed ({res['equilibrium_error']})")
    cols = ["competitive", "learned"] + (["equilibrium"] if eq is not None else [])
    rows = {"competitive": comp, "learned": learned, "equilibrium": eq}
    if scenario.t <= 24:
        header = f"{'hour':>4} {'demand':>7} " + " ".join(f"{c:>12}" for c in cols)
        print("clearing price by hour, €/MWh:")
        print(header)
        print("-" * len(header))
        for h in range(scenario.t):
            print(
                f"{h:4d} {learned['demand'][:, h].mean():7.1f} "
                + " ".join(f"{rows[c]['price'][:, h].mean():12.2f}" for c in cols)
            )
        print("-" * len(header))
    print(
        "mean clearing price, €/MWh: "
        + ", ".join(f"{c} {rows[c]['price'].mean():.2f}" for c in cols)
    )
    print()
    header = (
        f"{'generator':>9} {'cost':>7} " + " ".join(f"{c:>12}" for c in cols) + f" {'regret':>9}"
    )
    print(f"profit per generator, € per {unit} (at the prices the env paid):")
    print(header)
    print("-" * len(header))
    for j in range(scenario.n):
        print(
            f"{'gen_' + str(j):>9} {scenario.costs[j]:7.2f} "
            + " ".join(f"{rows[c]['profit'][:, j].mean() * scale(scenario):12.1f}" for c in cols)
            + f" {regret['regret_eur_per_day'][j]:9.1f}"
        )
    print("-" * len(header))
    print(
        f"{'total':>9} {'':>7} "
        + " ".join(f"{rows[c]['profit'].sum(axis=1).mean() * scale(scenario):12.1f}" for c in cols)
        + f" {regret['nash_conv_eur_per_day']:9.1f}"
    )
    print(
        f"NashConv (sum of regrets): {regret['nash_conv_eur_per_day']:.1f} €/{unit} = "
        f"{100 * share_of(regret):.1f} % of the total learned reward"
    )
    print(
        "competitive: everyone bids its capacity at cost; learned: the IBR tables; "
        "equilibrium: analysis.equilibrium on each market's realised demand; regret: what "
        f"each generator could still gain (€/{unit}, reward incl. penalties) by the best of "
        "21 x 41 (withheld, price) bids in each hour, the others as played."
    )


def scale(scenario: pm.Scenario) -> float:
    """€ per episode to € per day (the unit of analysis.exploitability): 24 / T."""
    return 24.0 / max(1, scenario.t)


def save_figure(
    scenario: pm.Scenario,
    pol: TablePolicies,
    res: dict,
    history: list[dict],
    path: str,
    seed: int,
    observer: str,
):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from powermarket import plot

    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(17, 4.5))
    hours = np.arange(scenario.t)
    dots = scenario.t <= 48
    curves = [("competitive", "competitive (at cost)", "s"), ("learned", "learned bids", "o")]
    if res["equilibrium"] is not None:
        curves.append(("equilibrium", "equilibrium (analysis.equilibrium)", "^"))
    for key, label, marker in curves:
        ax1.plot(
            hours,
            res[key]["price"].mean(axis=0),
            marker=marker if dots else None,
            label=label,
        )
    ax1.set_xlabel("hour")
    ax1.set_ylabel("mean clearing price (€/MWh)")
    ax1.set_title("clearing price by hour")
    ax1.legend()
    # Merit order at the peak hour of one market, learned vs truthful.
    env = pm.MarketEnv(scenario, observer=observer, seed=seed)
    obs, _ = env.reset()
    for h in range(scenario.t):
        obs, *_ = env.step(pol.act(h, obs[None])[0])
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
    rounds = np.arange(len(history))
    share = [100 * share_of(x) for x in history]
    ax3.plot(rounds, share, marker="o", label="NashConv / total learned reward")
    ax3.axhline(100 * NASHCONV_TARGET, linestyle="--", color="grey", label="2 % (stop)")
    ax3.axhline(5.0, linestyle=":", color="tab:red", label="5 %")
    ax3.set_xlabel("IBR round (0: everyone truthful)")
    ax3.set_ylabel("% of the total learned reward")
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
        "24 hours). € amounts are per day (24 / T times the episode's).",
    )
    ap.add_argument(
        "--observer",
        default=None,
        choices=pm.OBSERVERS,
        help="what the env observes (the tables read its demand feature); default:\n"
        "market_v2 for --scenario advanced, else simple",
    )
    args = ap.parse_args(argv)
    start = time.perf_counter()
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
        if scenario.s:
            raise SystemExit(
                f"demo: {args.scenario} has {scenario.s} storage unit(s); the IBR demo learns "
                "a best response hour by hour (each cell of its policy table is chosen for "
                "its own hour's reward), which cannot value a battery: what a unit earns by "
                "charging now comes back in later hours, through its state of charge. Train "
                "storage with the PettingZoo, Gymnasium (agent='sto_0') or TorchRL fronts "
                "(examples/rllib_ppo.py --batteries 1), and score it with "
                "analysis.arbitrage_value"
            )
    observer = args.observer or ("market_v2" if args.scenario == "advanced" else "simple")
    budget = BUDGETS[args.budget]
    print(f"powermarket {pm.__version__}: {scenario}, observer {observer!r}")
    print(
        f"IBR: up to {budget.rounds} rounds x {scenario.n} learners; each learner tries the "
        f"21 x 41 grid in every hour of {draws_for(scenario, budget)} training markets; stop "
        "when NashConv "
        f"< {100 * NASHCONV_TARGET:.0f} % of the total learned reward"
    )
    pol, history = learn(scenario, budget, args.seed, args.quiet, observer)
    res = compare(scenario, pol, budget, args.seed, observer)
    print_tables(scenario, res, history[-1])
    save_figure(scenario, pol, res, history, args.out, args.seed, observer)
    print(f"\nfigure: {args.out}   ({time.perf_counter() - start:.1f} s)")
    return {"policies": pol, "results": res, "path": args.out, "exploitability": history}


if __name__ == "__main__":
    main()
