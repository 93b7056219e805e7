"""End-to-end training speed: TorchRL multi-agent PPO vs the SB3 SBR example.

Both train all generators of the default market at once (one shared policy,
simultaneous best response) for the same number of agent-steps; round ``r``
runs both from seed ``seed + r``:

- **TorchRL**: ``examples/train_torchrl_ppo.py`` (IPPO, ``ClipPPOLoss`` +
  ``GAE`` on :class:`powermarket.torchrl.MarketEnv`) with the settings of its
  ``Config`` defaults;
- **SB3**: ``examples/train_sb3_ppo.py --mode sbr`` (SB3 PPO on
  :class:`powermarket.sb3.MarketVecEnv`, 64 markets, its own settings).

Each run is a fresh subprocess (so torch threads and allocator state do not
leak between contenders), and rounds interleave the contenders. The rate
counts training only (collection and updates, not the evaluation); the table
gives its median over the rounds. Both trained policies are then evaluated
the same way: their mean (deterministic) action on 64 markets for one day
(seed ``seed + r + 10000``); the table gives the mean episode reward per
generator, averaged over the rounds, and the final policy's NashConv as a share
of its reward (``analysis.exploitability`` on 16 days seeded ``seed + r + 20000``,
21 x 41 grid), averaged over the rounds. Needs the ``torchrl`` and ``train`` extras.

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


def child(args: argparse.Namespace) -> None:
    if args.child == "rollout":
        out = run_rollout(args.quick)
    else:
        fn = run_torchrl if args.child == "torchrl" else run_sb3
        threads = args.torchrl_threads if args.child == "torchrl" else args.sb3_threads
        out = fn(args.steps, args.seed, args.generators, args.quick, threads)
    print("RESULT " + json.dumps(out))


def spawn(which: str, args: argparse.Namespace, seed: int) -> dict:
    cmd = [sys.executable, __file__, "--child", which, "--steps", str(args.steps)]
    cmd += ["--seed", str(seed), "--generators", str(args.generators)]
    cmd += ["--torchrl-threads", str(args.torchrl_threads), "--sb3-threads", str(args.sb3_threads)]
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
        "--torchrl-threads",
        type=int,
        default=1,
        help="torch threads for TorchRL (0: torch's default, 2 here)",
        # 1: as fast as 2 on an idle machine with the example's small networks,
        # and 2 collapse (to a tenth) when another process holds the other core.
    )
    ap.add_argument(
        "--sb3-threads",
        type=int,
        default=1,
        help="torch threads for SB3 (0: torch's default)",
        # 1: SB3's tiny minibatches run at least as fast on one thread here, and
        # a second thread makes them collapse when the other core is busy.
    )
    ap.add_argument("--child", choices=["torchrl", "sb3", "rollout"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args)
        return
    if args.quick:
        args.steps, args.rounds, args.generators = 3 * 16 * 24 * 3, 1, 3
    for name in ("steps", "rounds", "generators"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be >= 1, got {getattr(args, name)}")

    seeds = f"seeds {args.seed}..{args.seed + args.rounds - 1}"
    print(f"# Training speed: TorchRL IPPO vs SB3 SBR, {args.steps} agent-steps per run, {seeds}")
    print(f"machine: {machine()}")
    roll = spawn("rollout", args, args.seed)
    print(f"TorchRL MarketEnv random rollout, N=5, M={roll['markets']}: "
          f"{roll['torchrl'] / 1e6:.2f} M agent-steps/s (VecMarketEnv.step alone: "
          f"{roll['vec'] / 1e6:.2f} M)", flush=True)  # fmt: skip
    runs: dict[str, list[dict]] = {"torchrl": [], "sb3": []}
    for r in range(args.rounds):
        for which in ("torchrl", "sb3") if r % 2 == 0 else ("sb3", "torchrl"):
            res = spawn(which, args, args.seed + r)
            runs[which].append(res)
            rate = res["agent_steps"] / res["seconds"]
            print(f"round {r + 1} {which}: {rate:,.0f} agent-steps/s, "
                  f"mean reward {np.mean(res['reward']):.3f}", flush=True)  # fmt: skip

    names = {"torchrl": "TorchRL IPPO", "sb3": "SB3 PPO (SBR)"}
    rates = {k: [r["agent_steps"] / r["seconds"] for r in v] for k, v in runs.items()}
    ratios = [t / s for t, s in zip(rates["torchrl"], rates["sb3"], strict=True)]
    n = args.generators
    headers = ["contender", "agent-steps", "agent-steps/s (median)", "train s (median)"]
    headers += [f"gen_{j} reward" for j in range(n)] + ["mean reward"]  # means over the seeds
    headers += ["NashConv % (mean)"]  # analysis.exploitability of the final policy
    rows = []
    for k, v in runs.items():
        reward = np.mean(np.array([r["reward"] for r in v]), axis=0)
        rows.append(
            [names[k], v[0]["agent_steps"], f"{statistics.median(rates[k]):,.0f}",
             f"{statistics.median(r['seconds'] for r in v):.1f}"]
            + [f"{x:.3f}" for x in reward] + [f"{reward.mean():.3f}"]
            + [f"{100 * np.mean([r['nash_conv_share'] for r in v]):.1f}"]
        )  # fmt: skip
    print()
    print(table(headers, rows))
    print()
    for k, v in runs.items():
        print(f"{names[k]} settings: {v[0]['settings']}")
    tr_mean = np.mean([np.mean(r["reward"]) for r in runs["torchrl"]])
    sb_mean = np.mean([np.mean(r["reward"]) for r in runs["sb3"]])
    print(f"speed-up (median of per-round ratios): {statistics.median(ratios):.1f}x "
          f"(rounds: {', '.join(f'{x:.1f}x' for x in ratios)}); "
          f"mean reward TorchRL {tr_mean:.3f} vs SB3 {sb_mean:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
