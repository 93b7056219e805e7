"""Multi-agent PPO with Ray RLlib on the PettingZoo front (needs the ``rllib`` extra).

Every generator is an RLlib agent (policy per generator, or one shared policy
with ``--shared``). Environments are ``ParallelPettingZooEnv`` wrappers of
``powermarket.parallel_env``, stepped by RLlib's env runners.

Scale-out: by default this starts a local Ray. To use a cluster, start Ray on
the machines (``ray start --head`` on one, ``ray start --address=HEAD:6379`` on
the others) and pass ``--address auto`` (on a cluster node) or
``--address ray://HEAD:10001``; raise ``--env-runners`` to the cores you have.

Run: ``.venv/bin/python examples/rllib_ppo.py --iterations 2 --smoke``.
"""

from __future__ import annotations

import argparse
import time

import ray
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv
from ray.tune.registry import register_env

import powermarket as pm

ENV_NAME = "powermarket_parallel"


NETWORKS = {"two_zones": pm.Scenario.two_zones, "three_nodes": pm.Scenario.three_nodes}


def scenario_of(cfg: dict) -> pm.Scenario:
    """The market of an env config: the default market of ``n`` generators,
    or a networked preset (``network``), plus ``batteries`` storage units."""
    t, network = cfg.get("t", 24), cfg.get("network")
    scenario = NETWORKS[network](t=t) if network else pm.Scenario.default(n=cfg.get("n", 5), t=t)
    batteries = cfg.get("batteries", 0)
    if batteries:
        # SustainGym-sized batteries: 20 MW, 80 MWh each; on a network, at
        # the last node (the importing zone of two_zones, the city of three_nodes).
        storage = [pm.Storage(power=20, energy=80)] * batteries
        if network:
            nodes = [*scenario.nodes.tolist(), *[scenario.num_nodes - 1] * batteries]
            return scenario.replace(storage=storage, nodes=nodes)
        scenario = scenario.replace(storage=storage)
    return scenario


def make_env(config: dict) -> ParallelPettingZooEnv:
    """Env factory for RLlib: ``config`` holds the market (see ``scenario_of``)
    and ``parallel_env`` keyword arguments."""
    scenario = scenario_of(config)
    cfg = {k: v for k, v in config.items() if k not in ("n", "t", "batteries", "network")}
    return ParallelPettingZooEnv(pm.parallel_env(scenario, **cfg))


def build_config(args: argparse.Namespace) -> PPOConfig:
    env_config = {
        "n": args.generators,
        "t": 24,
        "batteries": args.batteries,
        "network": args.network,
        "seed": args.seed,
    }
    agents = pm.parallel_env(scenario_of(env_config)).possible_agents
    if args.shared:
        # One policy per agent kind: generators and storage units have
        # different action boxes, so they cannot share one policy.
        policies = {"generators"} | ({"storage"} if args.batteries else set())

        def mapping(agent_id, episode, **kwargs):
            return "storage" if agent_id.startswith("sto_") else "generators"

    else:
        policies = set(agents)

        def mapping(agent_id, episode, **kwargs):
            return agent_id

    batch = len(agents) * 24 * (2 if args.smoke else 16)
    return (
        PPOConfig()
        .environment(ENV_NAME, env_config=env_config)
        .env_runners(num_env_runners=args.env_runners, num_envs_per_env_runner=1)
        .multi_agent(policies=policies, policy_mapping_fn=mapping)
        .training(train_batch_size_per_learner=batch, minibatch_size=min(batch, 128), num_epochs=2)
        .debugging(seed=args.seed)
    )


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--address", default=None, help="Ray cluster address (default: local Ray)")
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--generators", type=int, default=5)
    ap.add_argument("--env-runners", type=int, default=1)
    ap.add_argument("--batteries", type=int, default=0, help="storage units (20 MW, 80 MWh)")
    ap.add_argument(
        "--shared", action="store_true", help="one policy per agent kind (generators, storage)"
    )
    ap.add_argument(
        "--network",
        choices=sorted(NETWORKS),
        default=None,
        help="a networked preset instead of the default market (--generators is then unused)",
    )
    ap.add_argument("--smoke", action="store_true", help="small batches, for a quick check")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    ray.init(address=args.address, ignore_reinit_error=True, include_dashboard=False)
    register_env(ENV_NAME, make_env)
    algo = build_config(args).build_algo()
    start = time.perf_counter()
    result: dict = {}
    for it in range(args.iterations):
        result = algo.train()
        runners = result.get("env_runners", {})
        ret = runners.get("episode_return_mean", float("nan"))
        steps = runners.get("num_env_steps_sampled_lifetime", float("nan"))
        print(f"iteration {it + 1}: mean episode return (all agents) {ret:.3f}, env steps {steps}")
    print(f"done in {time.perf_counter() - start:.1f} s")
    algo.stop()
    ray.shutdown()
    return result


if __name__ == "__main__":
    main()
