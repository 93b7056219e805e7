"""MAPPO and IPPO from BenchMARL on the powermarket task (needs the
``benchmarl`` extra: ``pip install "powermarket[benchmarl]"``).

``powermarket.benchmarl.MarketTask.DEFAULT.get_task()`` is the default market
(5 generators, 24 hours) with ``price_action="linear"`` (BenchMARL's
TanhNormal policies already squash into the box). The experiment settings
follow ``examples/train_torchrl_ppo.py`` where BenchMARL has the same knob:
64 markets per batch (``on_policy_n_envs_per_worker``), one episode of each
per iteration, 4 epochs of 4 minibatches (16 minibatch iterations), learning
rate 5e-3, two 16-unit tanh layers, gamma 0.99, lambda 0.95, no entropy
bonus, shared policy parameters.

BenchMARL counts **frames** as steps of the batched env: one frame is one
hour of one market, ``N`` agent-steps. ``--steps`` is in agent-steps and is
converted (``max_n_frames = steps / N``).

Run: ``python examples/train_benchmarl.py`` (``--smoke`` for a few seconds,
``--algorithm mappo`` or ``ippo`` for one of them). For each algorithm it
prints the learned vs truthful reward per generator, ``agent-steps/s`` and the
NashConv of the final deterministic policy (``analysis.exploitability``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from benchmarl.algorithms import IppoConfig, MappoConfig
from benchmarl.experiment import Experiment, ExperimentConfig
from benchmarl.models.mlp import MlpConfig
from tensordict import TensorDict
from torchrl.envs.utils import ExplorationType, set_exploration_type

import powermarket as pm
from powermarket import analysis
from powermarket.benchmarl import MarketTask

ALGORITHMS = {"mappo": MappoConfig, "ippo": IppoConfig}


@dataclass
class Config:
    """Learner settings (the defaults are the ones ``benches/bench_train.py`` uses)."""

    steps: int = 2_000_000  # agent-steps (frames x generators)
    markets: int = 64
    epochs: int = 4
    minibatches: int = 4
    lr: float = 5e-3
    gamma: float = 0.99
    lmbda: float = 0.95
    hidden: int = 16
    seed: int = 0
    threads: int | None = None  # torch threads (None: torch's default)


def experiment(
    algorithm: str, cfg: Config, save_folder: str, task_config: dict | None = None
) -> Experiment:
    """A BenchMARL experiment of ``algorithm`` ("mappo" or "ippo") on the
    powermarket task (``task_config``: :data:`powermarket.benchmarl.DEFAULT_CONFIG` keys)."""
    task = MarketTask.DEFAULT.get_task(task_config)
    n, t = task.scenario.n, task.scenario.t
    frames_per_batch = cfg.markets * t  # one episode of every market
    ex = ExperimentConfig.get_from_yaml()
    ex.sampling_device = ex.train_device = ex.buffer_device = "cpu"
    ex.share_policy_params = True
    ex.prefer_continuous_actions = True
    ex.gamma = cfg.gamma
    ex.lr = cfg.lr
    ex.adam_eps = 1e-8
    ex.clip_grad_norm = True
    ex.clip_grad_val = 1.0
    ex.max_n_iters = None
    ex.max_n_frames = max(frames_per_batch, cfg.steps // n)
    ex.on_policy_collected_frames_per_batch = frames_per_batch
    ex.on_policy_n_envs_per_worker = cfg.markets
    ex.on_policy_n_minibatch_iters = cfg.epochs
    ex.on_policy_minibatch_size = frames_per_batch // cfg.minibatches
    ex.evaluation = False
    ex.render = False
    ex.loggers = []
    ex.create_json = False
    ex.save_folder = save_folder
    ex.checkpoint_interval = 0
    ex.checkpoint_at_end = False
    ex.keep_checkpoints_num = None
    algo = ALGORITHMS[algorithm].get_from_yaml()
    algo.lmbda = cfg.lmbda
    algo.entropy_coef = 0.0
    model = MlpConfig(num_cells=[cfg.hidden, cfg.hidden], layer_class=torch.nn.Linear,
                      activation_class=torch.nn.Tanh)  # fmt: skip
    return Experiment(
        task=task,
        algorithm_config=algo,
        model_config=model,
        critic_model_config=model,
        seed=cfg.seed,
        config=ex,
    )


def train(algorithm: str, cfg: Config, task_config: dict | None = None) -> tuple[Experiment, dict]:
    """Run the experiment; returns it and stats (agent-steps, seconds, the
    last iteration's mean episode return per agent)."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    with tempfile.TemporaryDirectory() as folder:
        exp = experiment(algorithm, cfg, folder, task_config)
        start = time.perf_counter()
        exp.run()
        seconds = time.perf_counter() - start
    n = exp.task.scenario.n
    return exp, {
        "agent_steps": exp.total_frames * n,
        "seconds": seconds,
        "train_reward": float(exp.mean_return),
    }


def greedy(exp: Experiment) -> Callable[[np.ndarray], np.ndarray]:
    """The policy's deterministic action: (N, D) observations to (N, 2) actions."""
    policy = exp.policy

    def act(obs: np.ndarray) -> np.ndarray:
        td = TensorDict(
            {("agents", "observation"): torch.from_numpy(np.asarray(obs, np.float32))[None]},
            batch_size=[1],
        )
        with torch.no_grad(), set_exploration_type(ExplorationType.DETERMINISTIC):
            return policy(td).get(("agents", "action"))[0].numpy()

    return act


def evaluate(
    scenario: pm.Scenario,
    act: Callable[[np.ndarray], np.ndarray] | None,
    episodes: int = 64,
    seed: int = 10_000,
) -> np.ndarray:
    """Mean episode reward per generator of ``act`` (None: truthful bidding)."""
    env = pm.MarketEnv(scenario, seed=seed)
    total = np.zeros(scenario.n)
    zeros = np.zeros((scenario.n, 2), np.float32)
    for _ in range(episodes):
        obs, _ = env.reset()
        for _ in range(scenario.t):
            obs, rewards, *_ = env.step(zeros if act is None else act(obs))
            total += rewards / episodes
    return total


def parse(argv: list[str] | None) -> tuple[argparse.Namespace, Config]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    d = Config()
    ap.add_argument("--algorithm", choices=["both", *ALGORITHMS], default="both")
    ap.add_argument("--steps", type=int, default=d.steps, help="agent-steps to train for")
    ap.add_argument("--markets", type=int, default=d.markets, help="markets stepped at once (M)")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--generators", type=int, default=5)
    ap.add_argument("--lr", type=float, default=d.lr)
    ap.add_argument("--hidden", type=int, default=d.hidden)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--smoke", action="store_true", help="a tiny run (seconds)")
    args = ap.parse_args(argv)
    for name in ("steps", "markets", "hidden", "generators"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    cfg = Config(steps=args.steps, markets=args.markets, lr=args.lr, hidden=args.hidden,
                 seed=args.seed, threads=args.threads)  # fmt: skip
    if args.smoke:
        cfg.steps, cfg.markets = 3 * 16 * 24 * 3, 16
    return args, cfg


def main(argv: list[str] | None = None) -> str:
    args, cfg = parse(argv)
    n = 3 if args.smoke else args.generators
    task_config = {"n_generators": n, "hours": 24}
    algorithms = list(ALGORITHMS) if args.algorithm == "both" else [args.algorithm]
    out = []
    for name in algorithms:
        exp, stats = train(name, cfg, task_config)
        scenario = exp.task.scenario
        learned = evaluate(scenario, greedy(exp), seed=cfg.seed + 10_000)
        truthful = evaluate(scenario, None, seed=cfg.seed + 10_000)
        rate = stats["agent_steps"] / stats["seconds"]
        lines = [
            f"BenchMARL {name.upper()}: {stats['agent_steps']} agent-steps in "
            f"{stats['seconds']:.1f} s ({cfg.markets} markets, {os.cpu_count()} cores)",
            f"{'generator':>9} {'reward':>8} {'truthful':>9}",
        ]
        for j in range(n):
            lines.append(f"{'gen_' + str(j):>9} {learned[j]:8.3f} {truthful[j]:9.3f}")
        lines.append(f"{'mean':>9} {learned.mean():8.3f} {truthful.mean():9.3f}")
        lines.append(f"agent-steps/s: {rate:,.0f}")
        grid = analysis.default_grid(21, 41, scenario=scenario)
        x = analysis.exploitability(
            scenario, greedy(exp), grid=grid, seed=20_000, episodes=4 if args.smoke else 16
        )
        lines.append(
            f"NashConv {x['nash_conv_eur_per_day']:.1f} €/day "
            f"({x['nash_conv']:.4f} in reward units)"
        )
        out.append("\n".join(lines))
        print(out[-1])
    return "\n\n".join(out)


if __name__ == "__main__":
    main()
