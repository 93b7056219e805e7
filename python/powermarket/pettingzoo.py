"""PettingZoo ``ParallelEnv`` front: dicts keyed by agent over :class:`MarketEnv`."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from powermarket._core import MarketEnv, check_steppable
from powermarket._spaces import (
    action_shape,
    action_space,
    agent_action_spaces,
    agent_names,
    check_render_mode,
)

__all__ = ["MarketParallelEnv", "parallel_env", "action_shape", "action_space", "agent_names"]


class MarketParallelEnv(ParallelEnv):
    """N generators bidding in one day-ahead market, as a PettingZoo ``ParallelEnv``.

    Agents are ``gen_0 ... gen_{N-1}``. Each hour every agent sends an action
    ``[a0, a1]`` (clipped to ``[0, 1] x [-10, 10]``), or one such row per offer
    block, shape ``(K, 2)``, when the scenario has ``segments`` K > 1; rewards are profits less
    penalties (see ``MarketEnv``). After the last hour all agents terminate
    and are removed from ``agents``.
    """

    metadata = {
        "name": "powermarket_v0",
        "render_modes": ["human", "rgb_array"],
        "is_parallelizable": True,
    }

    def __init__(
        self,
        scenario: Any = None,
        observer: str = "simple",
        seed: int | None = None,
        render_mode: str | None = None,
        tie_rule: str = "pro_rata",
    ) -> None:
        check_render_mode(render_mode, self.metadata["render_modes"])
        self.market = MarketEnv(scenario, observer=observer, seed=seed, tie_rule=tie_rule)
        self.render_mode = render_mode
        scenario = self.market.scenario
        self.possible_agents = agent_names(scenario.n, scenario.s)
        self.agents: list[str] = []
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        self._agent_list = list(self.possible_agents)
        low, high = self.market.observation_bounds()
        self.observation_spaces = {
            a: spaces.Box(low[i], high[i], dtype=np.float32)
            for i, a in enumerate(self.possible_agents)
        }
        self.action_spaces = dict(
            zip(self.possible_agents, agent_action_spaces(scenario), strict=True)
        )

    def observation_space(self, agent: str) -> spaces.Box:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Box:
        return self.action_spaces[agent]

    @property
    def scenario(self):
        return self.market.scenario

    def reset(self, seed: int | None = None, options: dict | None = None):
        obs, _ = self.market.reset(seed=seed)
        self.agents = self.possible_agents[:]
        observations = dict(zip(self.agents, obs, strict=True))
        infos: dict[str, dict] = {a: {} for a in self.agents}
        return observations, infos

    def step(self, actions: dict[str, Any]):
        agents = self.agents
        if not agents:
            check_steppable(self.market.t, self.market.horizon)
        # One native call converts the dicts, steps the market and builds
        # the result dicts (errors name the agent; nothing is stepped).
        out = self.market.step_dict(actions, self._agent_list)
        observations, reward_d, terminations, truncations, infos = out
        terminated = terminations[agents[0]]
        truncated = truncations[agents[0]]
        if terminated or truncated:
            self.agents = []
        if self.render_mode == "human":
            self.render()
        return observations, reward_d, terminations, truncations, infos

    def render(self):
        """``rgb_array``: an (H, W, 3) uint8 image of prices and dispatch so far;
        ``human``: the same figure in a matplotlib window. Needs the ``plot`` extra."""
        if self.render_mode is None:
            return None
        from powermarket import plot

        return plot.render(self.market, self.render_mode)

    def close(self) -> None:
        pass


def parallel_env(
    scenario: Any = None,
    observer: str = "simple",
    seed: int | None = None,
    render_mode: str | None = None,
    tie_rule: str = "pro_rata",
) -> MarketParallelEnv:
    """A PettingZoo ``ParallelEnv`` of one market (see :class:`MarketParallelEnv`)."""
    return MarketParallelEnv(
        scenario, observer=observer, seed=seed, render_mode=render_mode, tie_rule=tie_rule
    )
