"""PPO with PufferLib's ``pufferl`` on :class:`powermarket.pufferlib.MarketPufferEnv`
(needs the ``pufferlib`` extra: ``pip install "powermarket[pufferlib]"``).

Every generator of every market is one PufferLib agent (``markets * N`` rows)
sharing one Gaussian policy (two 16-unit tanh layers for the mean, a
state-independent std, a separate critic of the same shape: the networks of
``examples/train_torchrl_ppo.py``), trained by ``pufferl.PuffeRL``: one
``evaluate`` fills ``bptt_horizon`` steps of every agent (one episode by
default), one ``train`` runs ``--epochs`` passes of ``--minibatches``
minibatches over it.

The market uses ``price_action="linear"``: PufferLib samples a Gaussian and
clips it to the action box, so the box should be where the policy's unit
scale lives ([-1, 1]); under the default ``"tanh"`` box, a1 in [-10, 10],
most samples would land on the flat ends of ``tanh``. ``pufferl`` clamps
rewards to [-1, 1]: the default market's per-step rewards are far inside
(see ``MarketPufferEnv``'s ``reward_scale`` otherwise).

Run: ``python examples/train_pufferlib.py`` (``--smoke`` for a few seconds).
It prints the learned vs truthful reward per generator, ``agent-steps/s``, and
the NashConv of the final deterministic policy (its mean action) from
``powermarket.analysis.exploitability``.

Importing ``pufferlib.pufferl`` turns every ``RuntimeWarning`` into an error
and turns torch distributions' argument validation on, for the whole
process; :func:`import_pufferl` restores both after the import.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

import powermarket as pm
from powermarket import analysis
from powermarket.pufferlib import MarketPufferEnv


def import_pufferl() -> Any:
    """``pufferlib.pufferl``, imported without its process-wide side effects:
    ``warnings.filterwarnings("error", category=RuntimeWarning)``, and
    torch distributions' argument validation turned on (which breaks
    TorchRL 0.11's ``TanhNormal``, and so BenchMARL, in the same process)."""
    saved = list(warnings.filters)
    validate = torch.distributions.Distribution._validate_args
    from pufferlib import pufferl

    warnings.filters[:] = saved
    torch.distributions.Distribution.set_default_validate_args(validate)
    return pufferl


@dataclass
class Config:
    """Learner settings (the defaults are the ones ``benches/bench_train.py`` uses)."""

    steps: int = 2_000_000  # agent-steps (markets x hours x generators)
    markets: int = 64
    epochs: int = 4
    minibatches: int = 4
    lr: float = 5e-3
    gamma: float = 0.99
    lmbda: float = 0.95
    clip: float = 0.2
    entropy: float = 0.0
    hidden: int = 16
    seed: int = 0
    threads: int | None = None  # torch threads (None: torch's default)
    quiet: bool = True  # no pufferl dashboard


def mlp(n_in: int, n_out: int, hidden: int, out_gain: float) -> nn.Sequential:
    layers = [nn.Linear(n_in, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, n_out)]
    for layer, gain in zip(layers, (2**0.5, 2**0.5, out_gain), strict=True):
        nn.init.orthogonal_(layer.weight, gain)
        nn.init.zeros_(layer.bias)
    return nn.Sequential(layers[0], nn.Tanh(), layers[1], nn.Tanh(), layers[2])


class Policy(nn.Module):
    """PufferLib's policy interface: ``forward_eval(obs, state) -> (Normal, value)``."""

    def __init__(self, env: MarketPufferEnv, hidden: int) -> None:
        super().__init__()
        d = env.single_observation_space.shape[0]
        a = env.single_action_space.shape[0]
        self.mean = mlp(d, a, hidden, out_gain=0.01)
        self.log_std = nn.Parameter(torch.zeros(1, a))
        self.value = mlp(d, 1, hidden, out_gain=1.0)

    def forward_eval(self, obs: torch.Tensor, state: Any = None):
        loc = self.mean(obs)
        dist = torch.distributions.Normal(loc, self.log_std.exp().expand_as(loc))
        return dist, self.value(obs)

    def forward(self, obs: torch.Tensor, state: Any = None):
        return self.forward_eval(obs, state)


def puffer_config(cfg: Config, env: MarketPufferEnv, data_dir: str) -> dict[str, Any]:
    """The ``pufferl`` train config for ``cfg`` (``pufferlib-core`` ships no
    config files, so every key it reads is set here)."""
    horizon = env.vec.horizon
    batch = env.num_agents * horizon
    return {
        "env": "powermarket",
        "seed": cfg.seed,
        "torch_deterministic": True,
        "device": "cpu",
        "cpu_offload": False,
        "compile": False,
        "compile_mode": "default",
        "compile_fullgraph": False,
        "precision": "float32",
        "optimizer": "adam",
        "learning_rate": cfg.lr,
        "adam_beta1": 0.9,
        "adam_beta2": 0.999,
        "adam_eps": 1e-8,
        "anneal_lr": False,
        "total_timesteps": cfg.steps,
        "batch_size": batch,
        "bptt_horizon": horizon,
        "minibatch_size": batch // cfg.minibatches,
        "max_minibatch_size": batch // cfg.minibatches,
        "update_epochs": cfg.epochs,
        "gamma": cfg.gamma,
        "gae_lambda": cfg.lmbda,
        "clip_coef": cfg.clip,
        "vf_coef": 0.5,
        "vf_clip_coef": 10.0,
        "ent_coef": cfg.entropy,
        "max_grad_norm": 1.0,
        "prio_alpha": 0.0,
        "prio_beta0": 1.0,
        "vtrace_rho_clip": 1.0,
        "vtrace_c_clip": 1.0,
        "checkpoint_interval": 10**9,
        "data_dir": data_dir,
        "use_rnn": False,
    }


def quiet_trainer(pufferl: Any) -> type:
    """``PuffeRL`` without its terminal dashboard."""

    class Quiet(pufferl.PuffeRL):
        def print_dashboard(self, *args: Any, **kwargs: Any) -> None:
            pass

    return Quiet


def train(scenario: pm.Scenario, cfg: Config) -> tuple[Policy, dict]:
    """Train; returns the policy and stats (agent-steps, seconds, the last
    episodes' mean return per agent)."""
    pufferl = import_pufferl()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    env = MarketPufferEnv(scenario, num_envs=cfg.markets, seed=cfg.seed)
    policy = Policy(env, cfg.hidden)
    trainer_cls = quiet_trainer(pufferl) if cfg.quiet else pufferl.PuffeRL
    with tempfile.TemporaryDirectory() as data_dir:
        trainer = trainer_cls(puffer_config(cfg, env, data_dir), env, policy)
        returns: list[float] = []
        start = time.perf_counter()
        try:
            while trainer.global_step < cfg.steps:
                stats = trainer.evaluate()
                if stats.get("episode_return"):
                    returns = list(stats["episode_return"])
                trainer.train()
        finally:
            trainer.utilization.stop()  # its monitoring thread would keep the process alive
        seconds = time.perf_counter() - start
    return policy, {
        "agent_steps": trainer.global_step,
        "seconds": seconds,
        "train_reward": float(np.mean(returns)) if returns else float("nan"),
    }


def greedy(policy: Policy) -> Callable[[np.ndarray], np.ndarray]:
    """The policy's mean action: (N, D) observations to (N, 2) actions."""

    def act(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return policy.mean(torch.from_numpy(np.asarray(obs, np.float32))).numpy()

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


def nash_conv(scenario: pm.Scenario, act: Callable, episodes: int = 16) -> dict:
    """``analysis.exploitability`` of ``act`` on the scenario's default grid."""
    grid = analysis.default_grid(21, 41, scenario=scenario)
    return analysis.exploitability(scenario, act, grid=grid, seed=20_000, episodes=episodes)


def parse(argv: list[str] | None) -> tuple[argparse.Namespace, Config]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    d = Config()
    ap.add_argument("--steps", type=int, default=d.steps, help="agent-steps to train for")
    ap.add_argument("--markets", type=int, default=d.markets, help="markets stepped at once (M)")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--generators", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=d.epochs)
    ap.add_argument("--minibatches", type=int, default=d.minibatches)
    ap.add_argument("--lr", type=float, default=d.lr)
    ap.add_argument("--hidden", type=int, default=d.hidden)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--dashboard", action="store_true", help="show pufferl's dashboard")
    ap.add_argument("--smoke", action="store_true", help="a tiny run (seconds)")
    args = ap.parse_args(argv)
    for name in ("steps", "markets", "epochs", "minibatches", "hidden", "generators"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    cfg = Config(
        steps=args.steps,
        markets=args.markets,
        epochs=args.epochs,
        minibatches=args.minibatches,
        lr=args.lr,
        hidden=args.hidden,
        seed=args.seed,
        threads=args.threads,
        quiet=not args.dashboard,
    )
    if args.smoke:
        cfg.steps, cfg.markets = 3 * 16 * 24 * 3, 16
    return args, cfg


def main(argv: list[str] | None = None) -> str:
    args, cfg = parse(argv)
    n = 3 if args.smoke else args.generators
    scenario = pm.Scenario.default(n=n, t=24).replace(price_action="linear")
    policy, stats = train(scenario, cfg)
    rate = stats["agent_steps"] / stats["seconds"]
    learned = evaluate(scenario, greedy(policy), seed=cfg.seed + 10_000)
    truthful = evaluate(scenario, None, seed=cfg.seed + 10_000)
    lines = [
        f"PufferLib PPO: {stats['agent_steps']} agent-steps in {stats['seconds']:.1f} s "
        f"({cfg.markets} markets, {os.cpu_count()} cores)",
        f"{'generator':>9} {'reward':>8} {'truthful':>9}",
    ]
    for j in range(n):
        lines.append(f"{'gen_' + str(j):>9} {learned[j]:8.3f} {truthful[j]:9.3f}")
    lines.append(f"{'mean':>9} {learned.mean():8.3f} {truthful.mean():9.3f}")
    lines.append(f"agent-steps/s: {rate:,.0f}")
    x = nash_conv(scenario, greedy(policy), episodes=4 if args.smoke else 16)
    lines.append(
        f"NashConv {x['nash_conv_eur_per_day']:.1f} €/day ({x['nash_conv']:.4f} in reward units)"
    )
    table = "\n".join(lines)
    print(table)
    return table


if __name__ == "__main__":
    main()
