"""End-to-end training speed: our TorchRL multi-agent PPO vs the SB3 SBR
example, PufferLib and BenchMARL.

Every contender trains all generators of the default market at once (one
shared policy, simultaneous best response) for the same number of
agent-steps; round ``r`` runs each from seed ``seed + r``:

- **TorchRL** (``torchrl``): ``examples/train_torchrl_ppo.py`` (IPPO,
  ``ClipPPOLoss`` + ``GAE`` on :class:`powermarket.torchrl.MarketEnv`) with
  the settings of its ``Config`` defaults;
- **SB3** (``sb3``): ``examples/train_sb3_ppo.py --mode sbr`` (SB3 PPO on
  :class:`powermarket.sb3.MarketVecEnv`, 64 markets, its own settings);
- **PufferLib** (``pufferlib``): ``examples/train_pufferlib.py``
  (``pufferl.PuffeRL`` on :class:`powermarket.pufferlib.MarketPufferEnv`,
  ``price_action="linear"``);
- **BenchMARL** (``benchmarl_mappo``, ``benchmarl_ippo``):
  ``examples/train_benchmarl.py`` (``powermarket.benchmarl.MarketTask``,
  ``price_action="linear"``).

The PufferLib and BenchMARL examples use the settings of the TorchRL one
where their trainer has the knob (64 markets x one episode per batch, 4
epochs x 4 minibatches, lr 5e-3, 16x16 tanh MLPs, gamma 0.99, lambda 0.95).
Contenders whose package is not installed are left out (``--contenders``
picks them); the PufferLib and BenchMARL ones run in the environment of
``make train-venv`` (torch 2.9.0, torchrl 0.11), which also has TorchRL and SB3,
so all five run side by side with ``.venv-train/bin/python benches/bench_train.py``.

Each run is a fresh subprocess (so torch threads and allocator state do not
leak between contenders), and rounds interleave the contenders. The rate
counts training only (collection and updates, not the evaluation); the table
gives its median over the rounds. Every trained policy is then evaluated
the same way: its mean (deterministic) action on 64 markets for one day
(seed ``seed + r + 10000``); the table gives the mean episode reward per
generator, averaged over the rounds, and the final policy's NashConv as a share
of its reward (``analysis.exploitability`` on 16 days seeded ``seed + r + 20000``,
21 x 41 grid of the scenario's price action), per seed and averaged over
the rounds. The last lines give TorchRL's speed relative to each other
contender (median of the per-round ratios).

Run: ``.venv/bin/python benches/bench_train.py`` (a few minutes) or
``--quick`` (seconds).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, table  # noqa: E402

EVAL_MARKETS = 64
NASHCONV_EPISODES = 16  # episodes analysis.exploitability scores the final policy on


def _example(name: str):
    path = ROOT / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"pm_example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def run_torchrl(steps: int, seed: int, generators: int, quick: bool, threads: int) -> dict:
    import powermarket as pm

    ex = _example("train_torchrl_ppo")
    cfg = ex.Config(steps=steps, seed=seed, threads=threads or None)
    if quick:
        cfg.markets, cfg.hidden = 16, 16
    scenario = pm.Scenario.default(n=generators, t=24)
    actor, stats = ex.train(scenario, cfg)
    reward, _ = ex.evaluate(scenario, ex.greedy(actor), EVAL_MARKETS, seed + 10_000)
    share = ex.score_policy(scenario, ex.greedy(actor), NASHCONV_EPISODES, seed + 20_000)["share"]
    settings = (
        f"IPPO, {cfg.markets} markets x {scenario.t} h per batch, {cfg.epochs} epochs x "
        f"{cfg.minibatches} minibatches, lr {cfg.lr:g}, MLP {cfg.hidden}x{cfg.hidden} tanh, "
        f"gamma {cfg.gamma:g}, lambda {cfg.lmbda:g}, clip {cfg.clip:g}, "
        f"torch threads {__import__('torch').get_num_threads()}"
    )
    return {**stats, "reward": reward.tolist(), "nash_conv_share": share, "settings": settings}


def _batched(one: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """(N, D) -> (N, 2) policy as the (M, N, D) -> (M, N, 2) callable the
    TorchRL example's ``evaluate`` and ``score_policy`` take."""
    return lambda obs: np.stack([one(o) for o in obs])


def run_pufferlib(steps: int, seed: int, generators: int, quick: bool, threads: int) -> dict:
    import powermarket as pm

    tr = _example("train_torchrl_ppo")
    ex = _example("train_pufferlib")
    cfg = ex.Config(steps=steps, seed=seed, threads=threads or None)
    if quick:
        cfg.markets = 16
    scenario = pm.Scenario.default(n=generators, t=24).replace(price_action="linear")
    policy, stats = ex.train(scenario, cfg)
    act = _batched(ex.greedy(policy))
    reward, _ = tr.evaluate(scenario, act, EVAL_MARKETS, seed + 10_000)
    share = tr.score_policy(scenario, act, NASHCONV_EPISODES, seed + 20_000)["share"]
    settings = (
        f"pufferl PPO, price_action linear, {cfg.markets} markets x {scenario.t} h per batch "
        f"(bptt_horizon {scenario.t}), {cfg.epochs} epochs x {cfg.minibatches} minibatches, "
        f"lr {cfg.lr:g}, MLP {cfg.hidden}x{cfg.hidden} tanh, gamma {cfg.gamma:g}, "
        f"lambda {cfg.lmbda:g}, torch threads {__import__('torch').get_num_threads()}"
    )
    return {**stats, "reward": reward.tolist(), "nash_conv_share": share, "settings": settings}


def run_benchmarl(
    algorithm: str, steps: int, seed: int, generators: int, quick: bool, threads: int
) -> dict:
    tr = _example("train_torchrl_ppo")
    ex = _example("train_benchmarl")
    cfg = ex.Config(steps=steps, seed=seed, threads=threads or None)
    if quick:
        cfg.markets = 16
    exp, stats = ex.train(algorithm, cfg, {"n_generators": generators, "hours": 24})
    scenario = exp.task.scenario
    act = _batched(ex.greedy(exp))
    reward, _ = tr.evaluate(scenario, act, EVAL_MARKETS, seed + 10_000)
    share = tr.score_policy(scenario, act, NASHCONV_EPISODES, seed + 20_000)["share"]
    settings = (
        f"{algorithm.upper()}, price_action linear, {cfg.markets} markets x {scenario.t} h "
        f"per batch, {cfg.epochs} epochs x {cfg.minibatches} minibatches, lr {cfg.lr:g}, "
        f"MLP {cfg.hidden}x{cfg.hidden} tanh, gamma {cfg.gamma:g}, lambda {cfg.lmbda:g}, "
        f"torch threads {__import__('torch').get_num_threads()}"
    )
    return {**stats, "reward": reward.tolist(), "nash_conv_share": share, "settings": settings}


def run_sb3(steps: int, seed: int, generators: int, quick: bool, threads: int) -> dict:
    import time

    import torch

    import powermarket as pm

    if threads:
        torch.set_num_threads(threads)
    tr = _example("train_torchrl_ppo")
    sb = _example("train_sb3_ppo")
    scenario = pm.Scenario.default(n=generators, t=24)
    markets = 16 if quick else 64
    t0 = time.perf_counter()
    model = sb.train_sbr(scenario, steps=steps, markets=markets, seed=seed)
    seconds = time.perf_counter() - t0
    d = scenario.n

    def act(obs: np.ndarray) -> np.ndarray:
        flat = obs.reshape(-1, obs.shape[-1])
        action, _ = model.predict(flat, deterministic=True)
        return action.reshape(obs.shape[0], d, 2)

    reward, _ = tr.evaluate(scenario, act, EVAL_MARKETS, seed + 10_000)
    share = tr.score_policy(scenario, act, NASHCONV_EPISODES, seed + 20_000)["share"]
    settings = (
        f"SB3 PPO MlpPolicy (64x64 tanh), {markets} markets, n_steps {scenario.t}, "
        f"batch_size {scenario.t * 8}, 10 epochs, lr 3e-4, torch threads {torch.get_num_threads()}"
    )
    return {
        "agent_steps": int(model.num_timesteps),
        "seconds": seconds,
        "reward": reward.tolist(),
        "nash_conv_share": share,
        "settings": settings,
    }


def run_rollout(quick: bool) -> dict:
    """Random-action rollouts of the TorchRL env at N=5, M=4096 (TorchRL's own
    ``rollout``), and ``VecMarketEnv.step`` alone on the same sizes."""
    import time

    import powermarket as pm
    from powermarket.torchrl import MarketEnv

    m, steps, reps = (64, 24, 2) if quick else (4096, 96, 7)
    scenario = pm.Scenario.default(n=5, t=24)
    env = MarketEnv(scenario, num_envs=m, seed=0)
    env.rollout(24, break_when_any_done=False)
    rates = []
    for _ in range(reps):
        t0 = time.perf_counter()
        env.rollout(steps, break_when_any_done=False)
        rates.append(steps * m * 5 / (time.perf_counter() - t0))
    vec = pm.VecMarketEnv(scenario, num_envs=m, seed=0)
    vec.reset()
    actions = np.random.default_rng(0).uniform(0, 1, (m, 5, 2)).astype(np.float32)
    raw = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(steps):
            vec.step(actions)
        raw.append(steps * m * 5 / (time.perf_counter() - t0))
    return {"markets": m, "torchrl": statistics.median(rates), "vec": statistics.median(raw)}


# contender: (table name, module it needs)
CONTENDERS = {
    "torchrl": ("TorchRL IPPO", "torchrl"),
    "sb3": ("SB3 PPO (SBR)", "stable_baselines3"),
    "pufferlib": ("PufferLib PPO", "pufferlib"),
    "benchmarl_mappo": ("BenchMARL MAPPO", "benchmarl"),
    "benchmarl_ippo": ("BenchMARL IPPO", "benchmarl"),
}


def child(args: argparse.Namespace) -> None:
    if args.child == "rollout":
        print("RESULT " + json.dumps(run_rollout(args.quick)))
        return
    threads = {"torchrl": args.torchrl_threads, "sb3": args.sb3_threads}.get(
        args.child, args.threads
    )
    if threads is None:
        threads = args.threads
    common = (args.steps, args.seed, args.generators, args.quick, threads)
    if args.child.startswith("benchmarl_"):
        out = run_benchmarl(args.child.split("_", 1)[1], *common)
    else:
        fn = {"torchrl": run_torchrl, "sb3": run_sb3, "pufferlib": run_pufferlib}[args.child]
        out = fn(*common)
    print("RESULT " + json.dumps(out))


def spawn(which: str, args: argparse.Namespace, seed: int) -> dict:
    cmd = [sys.executable, __file__, "--child", which, "--steps", str(args.steps)]
    cmd += ["--seed", str(seed), "--generators", str(args.generators)]
    cmd += ["--threads", str(args.threads)]
    for flag, value in (
        ("--torchrl-threads", args.torchrl_threads),
        ("--sb3-threads", args.sb3_threads),
    ):
        if value is not None:
            cmd += [flag, str(value)]
    if args.quick:
        cmd.append("--quick")
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{which} run failed:\n{done.stderr[-3000:]}")
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--steps", type=int, default=750_000, help="agent-steps per run")
    ap.add_argument(
        "--rounds", type=int, default=3, help="runs per contender, with seeds seed .. seed+rounds-1"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--generators", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="tiny runs (seconds)")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads of every contender (0: torch's default, 2 here)",
        # 1: as fast as 2 on an idle machine with the examples' small networks,
        # and 2 collapse (to a tenth) when another process holds the other core.
    )
    ap.add_argument("--torchrl-threads", type=int, default=None, help="override for TorchRL")
    ap.add_argument("--sb3-threads", type=int, default=None, help="override for SB3")
    ap.add_argument(
        "--contenders",
        default=None,
        help=f"comma-separated, from {', '.join(CONTENDERS)} (default: every one installed)",
    )
    ap.add_argument("--child", choices=[*CONTENDERS, "rollout"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args)
        return
    if args.quick:
        args.steps, args.rounds, args.generators = 3 * 16 * 24 * 3, 1, 3
    for name in ("steps", "rounds", "generators"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be >= 1, got {getattr(args, name)}")

    if args.contenders is None:
        chosen = [k for k, (_, mod) in CONTENDERS.items() if importlib.util.find_spec(mod)]
    else:
        chosen = [c.strip() for c in args.contenders.split(",") if c.strip()]
        bad = [c for c in chosen if c not in CONTENDERS]
        if bad or not chosen:
            ap.error(f"--contenders: unknown {bad}; choose from {', '.join(CONTENDERS)}")
    if "torchrl" not in chosen:
        ap.error("--contenders must include torchrl (the ratios are TorchRL's)")

    seeds = f"seeds {args.seed}..{args.seed + args.rounds - 1}"
    names = {k: CONTENDERS[k][0] for k in chosen}
    print(f"# Training speed: {', '.join(names.values())}; {args.steps} agent-steps per run, "
          f"{seeds}")  # fmt: skip
    print(f"machine: {machine()}")
    roll = spawn("rollout", args, args.seed)
    print(f"TorchRL MarketEnv random rollout, N=5, M={roll['markets']}: "
          f"{roll['torchrl'] / 1e6:.2f} M agent-steps/s (VecMarketEnv.step alone: "
          f"{roll['vec'] / 1e6:.2f} M)", flush=True)  # fmt: skip
    runs: dict[str, list[dict]] = {k: [] for k in chosen}
    for r in range(args.rounds):
        order = chosen[r % len(chosen) :] + chosen[: r % len(chosen)]  # rotate who goes first
        for which in order:
            res = spawn(which, args, args.seed + r)
            runs[which].append(res)
            rate = res["agent_steps"] / res["seconds"]
            print(f"round {r + 1} {which}: {rate:,.0f} agent-steps/s, "
                  f"mean reward {np.mean(res['reward']):.3f}, "
                  f"NashConv {100 * res['nash_conv_share']:.1f} %", flush=True)  # fmt: skip

    rates = {k: [r["agent_steps"] / r["seconds"] for r in v] for k, v in runs.items()}
    n = args.generators
    headers = ["contender", "agent-steps", "agent-steps/s (median)", "train s (median)"]
    headers += [f"gen_{j} reward" for j in range(n)] + ["mean reward"]  # means over the seeds
    headers += ["NashConv % (mean)", "NashConv % per seed"]  # analysis.exploitability
    rows = []
    for k, v in runs.items():
        reward = np.mean(np.array([r["reward"] for r in v]), axis=0)
        shares = [100 * r["nash_conv_share"] for r in v]
        rows.append(
            [names[k], v[0]["agent_steps"], f"{statistics.median(rates[k]):,.0f}",
             f"{statistics.median(r['seconds'] for r in v):.1f}"]
            + [f"{x:.3f}" for x in reward] + [f"{reward.mean():.3f}"]
            + [f"{np.mean(shares):.1f}", " / ".join(f"{x:.1f}" for x in shares)]
        )  # fmt: skip
    print()
    print(table(headers, rows))
    print()
    for k, v in runs.items():
        print(f"{names[k]} settings: {v[0]['settings']}")
    means = {k: np.mean([np.mean(r["reward"]) for r in v]) for k, v in runs.items()}
    for k in chosen:
        if k == "torchrl":
            continue
        ratios = [t / o for t, o in zip(rates["torchrl"], rates[k], strict=True)]
        print(f"TorchRL / {names[k]} agent-steps/s (median of per-round ratios): "
              f"{statistics.median(ratios):.2f}x (rounds: "
              f"{', '.join(f'{x:.2f}x' for x in ratios)}); mean reward "
              f"{means['torchrl']:.3f} vs {means[k]:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
