"""A BenchMARL task over :class:`powermarket.torchrl.MarketEnv`
(``pip install "powermarket[benchmarl]"``).

``MarketTask.DEFAULT.get_task()`` is the default market (5 generators, 24
hours) with ``price_action="linear"``; ``MarketTask.DEFAULT.get_task(config)``
takes a config dict with any of the keys of :data:`DEFAULT_CONFIG`::

    from benchmarl.algorithms import MappoConfig
    from benchmarl.experiment import Experiment, ExperimentConfig
    from benchmarl.models.mlp import MlpConfig
    from powermarket.benchmarl import MarketTask

    Experiment(
        task=MarketTask.DEFAULT.get_task(),
        algorithm_config=MappoConfig.get_from_yaml(),
        model_config=MlpConfig.get_from_yaml(),
        seed=0,
        config=ExperimentConfig.get_from_yaml(),
    ).run()

It works with every BenchMARL algorithm that supports continuous actions
(the task has no discrete actions): MAPPO, IPPO, MADDPG, IDDPG, MASAC, ISAC.
All generators are one group, ``"agents"``, as the TorchRL env lays them
out (``("agents", "observation")`` is [M, N, D]); in a scenario with storage
units they form a second group, ``"storage"`` ([M, S, D]), so BenchMARL
trains a generator policy and a storage policy together. ``done`` and
``terminated`` are per market, at the root.

**Frames.** BenchMARL counts *frames* as steps of the batched env: one frame
is one hour of one market, i.e. ``N`` agent-steps. ``max_n_frames`` and
``on_policy_collected_frames_per_batch`` are in these units, and
``on_policy_n_envs_per_worker`` is the number of markets stepped at once
(the TorchRL env's ``num_envs``).

**Price action.** BenchMARL's continuous policies are TanhNormal
distributions scaled to the action spec's bounds. Under the default
``price_action="tanh"`` (a1 in [-10, 10]) the env would apply a second
``tanh`` to the squashed sample and most bids would land on the ends of
``c_i ± max_bid_delta``; the task therefore uses ``"linear"`` (a1 in
[-1, 1], bid ``c_i + a1 * max_bid_delta``) unless the config says otherwise.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarl.environments.common import Task, TaskClass

import powermarket as pm
from powermarket.torchrl import MarketEnv

__all__ = ["DEFAULT_CONFIG", "MarketTask", "MarketTaskClass"]

#: The keys a task config may set, and their defaults. ``scenario``: None
#: (``Scenario.default(n_generators, hours)``), a ``Scenario``, a dict from
#: ``Scenario.to_dict()`` or the path of a scenario file; ``price_action``
#: None keeps the scenario's own.
DEFAULT_CONFIG: dict[str, Any] = {
    "scenario": None,
    "n_generators": 5,
    "hours": 24,
    "price_action": "linear",
    "observer": "simple",
    "tie_rule": "pro_rata",
}


def _scenario(config: dict[str, Any]) -> pm.Scenario:
    s = config["scenario"]
    if s is None:
        sc = pm.Scenario.default(n=config["n_generators"], t=config["hours"])
    elif isinstance(s, pm.Scenario):
        sc = s
    elif isinstance(s, dict):
        sc = pm.Scenario.from_dict(s)
    elif isinstance(s, str | Path):
        sc = pm.Scenario.load(s)
    else:
        raise TypeError(
            "task config 'scenario' must be None, a Scenario, a dict or a path, "
            f"got {type(s).__name__}"
        )
    if config["price_action"] is not None:
        sc = sc.replace(price_action=config["price_action"])
    return sc


class MarketTaskClass(TaskClass):
    """The BenchMARL ``TaskClass`` of powermarket: builds
    :class:`powermarket.torchrl.MarketEnv` with ``num_envs`` markets."""

    def __init__(self, name: str, config: dict[str, Any] | None) -> None:
        unknown = set(config or {}) - set(DEFAULT_CONFIG)
        if unknown:
            raise ValueError(
                f"unknown powermarket task config keys {sorted(unknown)}; "
                f"valid keys are {sorted(DEFAULT_CONFIG)}"
            )
        full = {**DEFAULT_CONFIG, **(config or {})}
        super().__init__(name=name, config=full)
        self.scenario = _scenario(full)

    def get_env_fun(
        self, num_envs: int, continuous_actions: bool, seed: int | None, device: Any
    ) -> Callable[[], MarketEnv]:
        if not continuous_actions:
            raise ValueError(
                "the powermarket task has continuous actions only: use an algorithm "
                "that supports them (MAPPO, IPPO, MADDPG, IDDPG, MASAC, ISAC)"
            )
        scenario = self.scenario
        config = copy.deepcopy({k: self.config[k] for k in ("observer", "tie_rule")})
        return lambda: MarketEnv(scenario, num_envs=num_envs, seed=seed, device=device, **config)

    def supports_continuous_actions(self) -> bool:
        return True

    def supports_discrete_actions(self) -> bool:
        return False

    def has_render(self, env: Any) -> bool:
        return False

    def max_steps(self, env: Any) -> int:
        return self.scenario.t

    def group_map(self, env: Any) -> dict[str, list[str]]:
        # The env's groups: the generators ("agents") and, in a scenario
        # with storage units, the units ("storage"): one policy each.
        return {group: list(names) for group, names in env.group_map.items()}

    def observation_spec(self, env: Any) -> Any:
        return env.full_observation_spec_unbatched.clone()

    def info_spec(self, env: Any) -> Any:
        return None

    def state_spec(self, env: Any) -> Any:
        return None

    def action_spec(self, env: Any) -> Any:
        return env.full_action_spec_unbatched

    def action_mask_spec(self, env: Any) -> Any:
        return None

    @staticmethod
    def env_name() -> str:
        return "powermarket"


class MarketTask(Task):
    """The powermarket tasks of BenchMARL: ``DEFAULT`` (configured by a dict,
    :data:`DEFAULT_CONFIG` when none is given; there are no YAML files)."""

    DEFAULT = None

    @staticmethod
    def associated_class() -> type[MarketTaskClass]:
        return MarketTaskClass

    def get_task(self, config: dict[str, Any] | None = None) -> MarketTaskClass:
        return MarketTaskClass(name=self.name, config=config)

    def get_from_yaml(self, path: str | None = None) -> MarketTaskClass:
        """The task from a YAML file of config keys (``path``), or the defaults."""
        if path is None:
            return self.get_task()
        import yaml

        with open(path) as f:
            return self.get_task(yaml.safe_load(f) or {})
