"""Multi-agent PPO on thousands of markets at once with TorchRL (needs the ``torchrl`` extra).

All generators learn at the same time (simultaneous best response):

- IPPO (default): one policy shared by every generator of every market, fed
  the generator's own observation (its capacity and cost tell generators
  apart; ``--agent-id`` appends a one-hot id), and a per-generator critic on
  the same input;
- MAPPO (``--mappo``): the same shared policy with a centralised critic that
  sees every generator's observation of the market and outputs one value
  per generator.

The loss is TorchRL's ``ClipPPOLoss`` with its ``GAE`` estimator. One
iteration collects ``--horizon`` steps (default: one episode) of ``--markets``
markets on :class:`powermarket.torchrl.MarketEnv` (``M * horizon * N``
agent-steps), then runs ``--epochs`` passes of ``--minibatches`` large
minibatches. Networks are small MLPs that run fast on a CPU.

The defaults (``Config``; ``benches/bench_train.py`` uses them) were chosen
for reward per agent-step at a cost that stays ten times below SB3's: 64
markets per rollout give twice the policy updates of 128 for the same
agent-steps, and 16-unit layers make each update cheap. Each minibatch step
is mostly fixed cost on a CPU, so the update loop avoids what is not needed:
no parameter swapping in the loss (``functional=False``), only the keys the
loss reads, one shuffle per epoch, fused Adam, and the two workarounds below
(``Tanh``, ``Module``).

Run: ``.venv/bin/python examples/train_torchrl_ppo.py`` (``--smoke`` for a
few seconds). It prints the learned vs truthful profit table with
``agent-steps/s``, then scores the final deterministic policy (its mean
action) with ``powermarket.analysis.exploitability``: NashConv in € per day
and as a share of the learned reward, and each generator's learned profit
next to its profit in the equilibrium ``powermarket.analysis.equilibrium``
computes for the same demand draws.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn
from torchrl.envs.utils import ExplorationType, set_exploration_type
from torchrl.modules import IndependentNormal, ProbabilisticActor
from torchrl.objectives import ClipPPOLoss, ValueEstimators

import powermarket as pm
from powermarket import analysis
from powermarket.torchrl import MarketEnv

OBS = ("agents", "observation")
ACTION = ("agents", "action")
LOG_PROB = ("agents", "action_log_prob")
VALUE = ("agents", "state_value")


@dataclass
class Config:
    """Learner settings (the defaults are the ones ``benches/bench_train.py`` uses)."""

    steps: int = 2_000_000  # agent-steps (markets x hours x generators)
    markets: int = 64
    horizon: int | None = None  # steps per rollout; None = one episode (T)
    epochs: int = 4
    minibatches: int = 4
    lr: float = 5e-3
    gamma: float = 0.99
    lmbda: float = 0.95
    clip: float = 0.2
    entropy: float = 0.0
    hidden: int = 16
    mappo: bool = False
    norm_per_agent: bool = True  # advantage statistics per generator (else pooled)
    agent_id: bool = False
    seed: int = 0
    threads: int | None = None  # torch threads (None: torch's default)
    env_threads: int | None = None  # MarketEnv threads (None: all cores)
    log_every: int = 0  # print every k iterations (0: never)


class Tanh(nn.Module):
    """tanh computed as ``2 sigmoid(2x) - 1`` (the same function): torch's CPU
    tanh kernel is about 10x slower than its sigmoid here (torch 2.x, AVX-512),
    and was the largest single cost of an update."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x * 2.0) * 2.0 - 1.0  # tanh(x) = 2 sigmoid(2x) - 1


def mlp(n_in: int, n_out: int, hidden: int, out_gain: float) -> nn.Sequential:
    """Two tanh layers; orthogonal init (gain sqrt 2, output ``out_gain``) as is usual for PPO."""
    layers = [nn.Linear(n_in, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, n_out)]
    for layer, gain in zip(layers, (2**0.5, 2**0.5, out_gain), strict=True):
        nn.init.orthogonal_(layer.weight, gain)
        nn.init.zeros_(layer.bias)
    return nn.Sequential(layers[0], Tanh(), layers[1], Tanh(), layers[2])


class AgentInput(nn.Module):
    """The generator's observation, plus its one-hot id when asked for."""

    def __init__(self, n: int, agent_id: bool) -> None:
        super().__init__()
        self.agent_id = agent_id
        self.register_buffer("eye", torch.eye(n))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if not self.agent_id:
            return obs
        return torch.cat([obs, self.eye.expand(*obs.shape[:-1], -1)], dim=-1)


class Actor(nn.Module):
    """Shared Gaussian policy: per-generator mean, state-independent std (as SB3's)."""

    def __init__(self, n: int, d: int, hidden: int, agent_id: bool) -> None:
        super().__init__()
        self.inp = AgentInput(n, agent_id)
        self.net = mlp(d + (n if agent_id else 0), 2, hidden, out_gain=0.01)
        self.log_std = nn.Parameter(torch.zeros(2))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loc = self.net(self.inp(obs))
        return loc, self.log_std.exp().expand_as(loc)


class Critic(nn.Module):
    """IPPO: V(own observation). MAPPO (``central``): V_i(all observations of the market)."""

    def __init__(self, n: int, d: int, hidden: int, agent_id: bool, central: bool) -> None:
        super().__init__()
        self.central, self.n = central, n
        self.inp = AgentInput(n, agent_id and not central)
        n_in = n * d if central else d + (n if agent_id else 0)
        self.net = mlp(n_in, n if central else 1, hidden, out_gain=1.0)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.central:
            return self.net(obs.flatten(-2)).unsqueeze(-1)  # [..., N, 1]
        return self.net(self.inp(obs))


class Module(TensorDictModule):
    """A ``TensorDictModule`` that writes its output tensors as they are.

    ``TensorDictModule`` passes every output through ``TensorDict.from_any``,
    which (tensordict 0.14) looks ``pandas`` up on ``sys.path`` on each call:
    about 10% of a training iteration here.
    """

    def _write_to_tensordict(self, tensordict, tensors, tensordict_out=None, out_keys=None):
        if out_keys is None:
            out_keys = self.out_keys_source
        if tensordict_out is None:
            tensordict_out = tensordict
        for key, tensor in zip(out_keys, tensors, strict=True):
            if key != "_":
                tensordict_out.set(key, tensor)
        return tensordict_out


def build(env: MarketEnv, cfg: Config) -> tuple[ProbabilisticActor, TensorDictModule]:
    n, d = env.num_agents, env.obs_dim
    actor = ProbabilisticActor(
        Module(
            Actor(n, d, cfg.hidden, cfg.agent_id),
            in_keys=[OBS],
            out_keys=[("agents", "loc"), ("agents", "scale")],
        ),
        in_keys=[("agents", "loc"), ("agents", "scale")],
        out_keys=[ACTION],
        distribution_class=IndependentNormal,
        return_log_prob=True,
        log_prob_key=LOG_PROB,
        default_interaction_type=ExplorationType.RANDOM,
    )
    critic = Module(
        Critic(n, d, cfg.hidden, cfg.agent_id, cfg.mappo), in_keys=[OBS], out_keys=[VALUE]
    )
    return actor, critic


def evaluate(
    scenario: pm.Scenario,
    act: Callable[[np.ndarray], np.ndarray] | None,
    markets: int = 64,
    seed: int = 10_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean episode reward and mean profit (€/day) per generator of ``act``
    ((M, N, D) observations to (M, N, 2) actions; ``None``: truthful bidding,
    everyone at cost) over ``markets`` episodes of ``MarketEnv(seed=seed)``.
    The profit is at the price the env paid each generator:
    ``sum_t (paid - cost) * cleared`` from the episode record."""
    env = pm.MarketEnv(scenario, seed=seed)
    costs = np.asarray(scenario.costs)
    reward = np.zeros(scenario.n)
    profit = np.zeros(scenario.n)
    zeros = np.zeros((scenario.n, 2), np.float32)
    for _ in range(markets):
        obs, _ = env.reset()
        for _ in range(scenario.t):
            actions = zeros if act is None else np.asarray(act(obs[None]), np.float32)[0]
            obs, rewards, *_ = env.step(actions)
            reward += rewards / markets
        rec = env.episode_record()
        profit += ((rec["paid"] - costs) * rec["cleared"]).sum(axis=0) / markets
    return reward, profit * 24.0 / scenario.t


def score_policy(
    scenario: pm.Scenario,
    act: Callable[[np.ndarray], np.ndarray],
    episodes: int = 16,
    seed: int = 20_000,
) -> dict:
    """Score the deterministic policy ``act`` ((M, N, D) -> (M, N, 2)) with
    ``analysis.exploitability`` on ``episodes`` episodes of
    ``MarketEnv(seed=seed)``, and compute the equilibrium
    (``analysis.equilibrium``) of the same demand draws. Returns the
    exploitability dict ``x``, ``share`` (NashConv / learned reward), the
    learned ``profit`` (N,) €/day at the paid prices and the equilibrium's
    ``eq_profit`` (N,) €/day."""
    one = lambda obs: np.asarray(act(obs[None]), np.float32)[0]  # noqa: E731
    x = analysis.exploitability(
        scenario,
        one,
        grid=analysis.default_grid(21, 41, scenario=scenario),
        seed=seed,
        episodes=episodes,
    )
    env = pm.MarketEnv(scenario, seed=seed)  # the same episodes again, for the records
    demand = np.zeros((episodes, scenario.t))
    profit = np.zeros(scenario.n)
    for e in range(episodes):
        obs, _ = env.reset()
        for _ in range(scenario.t):
            obs, *_ = env.step(one(obs))
        rec = env.episode_record()
        demand[e] = rec["demand"]
        profit += ((rec["paid"] - scenario.costs) * rec["cleared"]).sum(axis=0) / episodes
    eq = analysis.equilibrium(scenario, demand=demand)
    return {
        "x": x,
        "share": x["nash_conv"] / x["played_reward"].sum(),
        "profit": profit * 24.0 / scenario.t,
        "eq_profit": eq["profits"],
    }


def distance_to_equilibrium(
    scenario: pm.Scenario,
    act: Callable[[np.ndarray], np.ndarray],
    episodes: int = 16,
    seed: int = 20_000,
) -> str:
    """:func:`score_policy`, printed: NashConv in €/day and % of the learned
    reward, then learned vs equilibrium profit and regret per generator."""
    sc = score_policy(scenario, act, episodes, seed)
    x, profit, eq_profit = sc["x"], sc["profit"], sc["eq_profit"]
    lines = [
        f"distance to equilibrium ({episodes} episodes, 21 x 41 grid): NashConv "
        f"{x['nash_conv_eur_per_day']:.1f} €/day = {100 * sc['share']:.1f} % of the learned "
        "reward",
        f"{'generator':>9} {'learned €':>10} {'equilibrium €':>14} {'regret €':>9}",
    ]
    for j in range(scenario.n):
        lines.append(
            f"{'gen_' + str(j):>9} {profit[j]:10.1f} {eq_profit[j]:14.1f} "
            f"{x['regret_eur_per_day'][j]:9.1f}"
        )
    lines.append(
        f"{'total':>9} {profit.sum():10.1f} {eq_profit.sum():14.1f} "
        f"{x['nash_conv_eur_per_day']:9.1f}"
    )
    return "\n".join(lines)


def greedy(actor: ProbabilisticActor) -> Callable[[np.ndarray], np.ndarray]:
    """The policy's mean action, as a NumPy callable for :func:`evaluate`."""

    def act(obs: np.ndarray) -> np.ndarray:
        td = TensorDict({OBS: torch.from_numpy(obs)}, batch_size=obs.shape[:1])
        with torch.no_grad(), set_exploration_type(ExplorationType.DETERMINISTIC):
            return actor(td).get(ACTION).numpy()

    return act


def train(
    scenario: pm.Scenario,
    cfg: Config,
    callback: Callable[[int, ProbabilisticActor], None] | None = None,
) -> tuple[ProbabilisticActor, dict]:
    """Train; returns the actor and stats (agent-steps, seconds, last rollout's
    mean episode reward). ``callback(agent_steps, actor)`` runs after each
    iteration (its time is counted)."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    env = MarketEnv(scenario, num_envs=cfg.markets, seed=cfg.seed, num_threads=cfg.env_threads)
    n, horizon = env.num_agents, cfg.horizon or env.horizon
    per_iter = cfg.markets * horizon * n
    iters = max(1, round(cfg.steps / per_iter))
    actor, critic = build(env, cfg)
    loss = ClipPPOLoss(
        actor_network=actor,
        critic_network=critic,
        clip_epsilon=cfg.clip,
        entropy_bonus=cfg.entropy > 0,
        entropy_coeff=cfg.entropy,
        normalize_advantage=True,
        normalize_advantage_exclude_dims=(-2,) if cfg.norm_per_agent else (),
        functional=False,  # no parameter swapping per call (no target networks here)
        log_explained_variance=False,
    )
    loss.set_keys(
        reward=("agents", "reward"),
        action=ACTION,
        sample_log_prob=LOG_PROB,
        value=VALUE,
        done=("agents", "done"),
        terminated=("agents", "terminated"),
    )
    loss.make_value_estimator(ValueEstimators.GAE, gamma=cfg.gamma, lmbda=cfg.lmbda)
    params = list(loss.parameters())
    optim = torch.optim.Adam(params, lr=cfg.lr, fused=True)  # one kernel, not a loop per tensor
    batch = cfg.markets * horizon
    mb = max(1, batch // cfg.minibatches)
    keys = loss.tensor_keys
    update_keys = (OBS, ACTION, LOG_PROB, keys.advantage, keys.value_target)

    start = time.perf_counter()
    td = env.reset()
    last_reward = float("nan")
    for it in range(iters):
        steps = []
        with torch.no_grad():
            for _ in range(horizon):
                actor(td)
                out, td = env.step_and_maybe_reset(td)
                steps.append(out)
        data = torch.stack(steps, dim=1)  # [M, horizon]
        for key in ("done", "terminated"):  # per-agent copies of the market's flags
            flag = data.get(("next", key))
            data.set(("next", "agents", key), flag.unsqueeze(-1).expand(*flag.shape[:2], n, 1))
        with torch.no_grad():
            loss.value_estimator(data)
        last_reward = data.get(("next", "agents", "reward")).mean().item() * scenario.t
        # Only what the loss reads, flat over markets x steps.
        flat = data.select(*update_keys).reshape(-1)
        for _ in range(cfg.epochs):
            shuffled = flat[torch.randperm(batch)]  # one gather per epoch; minibatches are views
            for k in range(cfg.minibatches):
                vals = loss(shuffled[k * mb : (k + 1) * mb])
                total = vals["loss_objective"] + vals["loss_critic"]
                if "loss_entropy" in vals.keys():
                    total = total + vals["loss_entropy"]
                optim.zero_grad(set_to_none=True)
                total.backward()
                nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
                optim.step()
        if callback is not None:
            callback((it + 1) * per_iter, actor)
        if cfg.log_every and (it + 1) % cfg.log_every == 0:
            done = (it + 1) * per_iter
            rate = done / (time.perf_counter() - start)
            print(f"iter {it + 1}/{iters}: {done} agent-steps, episode reward "
                  f"{last_reward:.3f}, {rate:,.0f} agent-steps/s")  # fmt: skip
    seconds = time.perf_counter() - start
    stats = {"agent_steps": iters * per_iter, "seconds": seconds, "train_reward": last_reward}
    return actor, stats


def report(name: str, scenario: pm.Scenario, learned, truthful, rate: float) -> str:
    """The learned vs truthful table, with the rate as its last line."""
    lines = [f"{name}: per generator, mean over the evaluation markets (one day)"]
    lines.append(
        f"{'generator':>9} {'cost':>6} {'reward':>8} {'truthful':>9} "
        f"{'profit €':>10} {'truthful €':>11}"
    )
    for j in range(scenario.n):
        lines.append(
            f"{'gen_' + str(j):>9} {scenario.costs[j]:6.2f} {learned[0][j]:8.3f} "
            f"{truthful[0][j]:9.3f} {learned[1][j]:10.1f} {truthful[1][j]:11.1f}"
        )
    lines.append(f"{'mean':>9} {'':>6} {learned[0].mean():8.3f} {truthful[0].mean():9.3f} "
                 f"{learned[1].mean():10.1f} {truthful[1].mean():11.1f}")  # fmt: skip
    lines.append(f"agent-steps/s: {rate:,.0f}")
    return "\n".join(lines)


def parse(argv: list[str] | None) -> tuple[argparse.Namespace, Config]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    d = Config()
    ap.add_argument("--steps", type=int, default=d.steps, help="agent-steps to train for")
    ap.add_argument("--markets", type=int, default=d.markets, help="markets stepped at once (M)")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--smoke", action="store_true", help="a tiny run (seconds)")
    ap.add_argument("--mappo", action="store_true", help="centralised critic (MAPPO)")
    ap.add_argument("--agent-id", action="store_true", help="append a one-hot generator id")
    ap.add_argument("--generators", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=d.epochs)
    ap.add_argument("--minibatches", type=int, default=d.minibatches)
    ap.add_argument("--lr", type=float, default=d.lr)
    ap.add_argument("--gamma", type=float, default=d.gamma)
    ap.add_argument("--hidden", type=int, default=d.hidden)
    ap.add_argument("--entropy", type=float, default=d.entropy)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--log-every", type=int, default=d.log_every)
    args = ap.parse_args(argv)
    for name in ("steps", "markets", "epochs", "minibatches", "hidden", "generators"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    cfg = Config(
        steps=args.steps,
        markets=args.markets,
        epochs=args.epochs,
        minibatches=args.minibatches,
        lr=args.lr,
        gamma=args.gamma,
        hidden=args.hidden,
        entropy=args.entropy,
        mappo=args.mappo,
        agent_id=args.agent_id,
        seed=args.seed,
        threads=args.threads,
        log_every=args.log_every,
    )
    if args.smoke:
        cfg.steps, cfg.markets, cfg.hidden = 3 * 16 * 24 * 3, 16, 16
    return args, cfg


def main(argv: list[str] | None = None) -> str:
    args, cfg = parse(argv)
    scenario = pm.Scenario.default(n=3 if args.smoke else args.generators, t=24)
    actor, stats = train(scenario, cfg)
    rate = stats["agent_steps"] / stats["seconds"]
    learned = evaluate(scenario, greedy(actor), seed=cfg.seed + 10_000)
    truthful = evaluate(scenario, None, seed=cfg.seed + 10_000)
    name = "MAPPO" if cfg.mappo else "IPPO"
    print(f"{name}: {stats['agent_steps']} agent-steps in {stats['seconds']:.1f} s "
          f"({cfg.markets} markets, {os.cpu_count()} cores)")  # fmt: skip
    table = report(name, scenario, learned, truthful, rate)
    print(table)
    scored = distance_to_equilibrium(scenario, greedy(actor), episodes=4 if args.smoke else 16)
    print(scored)
    return table + "\n" + scored


if __name__ == "__main__":
    main()
