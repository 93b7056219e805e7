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


def make_env(config: dict) -> ParallelPettingZooEnv:
    """Env factory for RLlib: ``config`` holds ``parallel_env`` keyword arguments."""
    cfg = dict(config)
    n, t, batteries = cfg.pop("n", 5), cfg.pop("t", 24), cfg.pop("batteries", 0)
    scenario = pm.Scenario.default(n=n, t=t)
    if batteries:
        # SustainGym-sized batteries: 20 MW, 80 MWh each.
        scenario = scenario.replace(storage=[pm.Storage(power=20, energy=80)] * batteries)
    return ParallelPettingZooEnv(pm.parallel_env(scenario, **cfg))


def build_config(args: argparse.Namespace) -> PPOConfig:
    agents = [f"gen_{i}" for i in range(args.generators)]
    agents += [f"sto_{u}" for u in range(args.batteries)]
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
        .environment(
            ENV_NAME,
            env_config={
                "n": args.generators,
                "t": 24,
                "batteries": args.batteries,
                "seed": args.seed,
            },
        )
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
