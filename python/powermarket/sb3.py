"""Stable-Baselines3 ``VecEnv`` adapter: every generator of every market is one env.

With M markets of N generators, SB3 sees ``num_envs == M * N`` environments
that share one observation and action space, so a single policy learns for all
generators at once (parameter sharing, as in the seed project's simultaneous
best response). Env ``k`` is generator ``k % N`` of market ``k // N``.

Needs the ``train`` extra (stable-baselines3, which brings torch)::

    from stable_baselines3 import PPO
    from powermarket.sb3 import MarketVecEnv

    venv = MarketVecEnv(num_markets=64, seed=0)
    PPO("MlpPolicy", venv, n_steps=24).learn(50_000)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices

from powermarket._core import VecMarketEnv
from powermarket.pettingzoo import action_space


class MarketVecEnv(VecEnv):
    """``num_markets`` markets on :class:`powermarket.VecMarketEnv`, one SB3 env per agent.

    Observations are copies (SB3 keeps the previous batch while stepping).
    Episodes end together for all agents of a market after T hours; the
    market then resets in the same step and ``infos[k]["terminal_observation"]``
    holds agent ``k``'s last observation. Market ``i`` is seeded ``seed + i``;
    ``seed(s)`` (SB3's API) takes effect at the next ``reset()``.
    """

    def __init__(
        self,
        scenario: Any = None,
        num_markets: int = 1,
        observer: str = "simple",
        seed: int | None = None,
        num_threads: int | None = None,
        tie_rule: str = "pro_rata",
    ) -> None:
        self.vec = VecMarketEnv(
            scenario,
            num_envs=num_markets,
            observer=observer,
            seed=seed,
            num_threads=num_threads,
            tie_rule=tie_rule,
        )
        self.num_markets = num_markets
        self.num_agents = self.vec.num_agents
        self.render_mode = None
        low, high = self.vec.observation_bounds()
        obs_space = spaces.Box(low.min(axis=0), high.max(axis=0), dtype=np.float32)
        super().__init__(num_markets * self.num_agents, obs_space, action_space())
        self._actions: np.ndarray | None = None
        self._started = False

    def _flat(self, a: np.ndarray) -> np.ndarray:
        return a.reshape((self.num_envs,) + a.shape[2:])

    def reset(self) -> np.ndarray:
        seed = self._seeds[0]
        obs, _ = self.vec.reset(seed=seed)
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = [{} for _ in range(self.num_envs)]
        self._started = True
        return self._flat(obs).copy()

    def step_async(self, actions: np.ndarray) -> None:
        a = np.asarray(actions, dtype=np.float32)
        if a.shape != (self.num_envs, 2):
            raise ValueError(f"actions must have shape ({self.num_envs}, 2), got {a.shape}")
        self._actions = a.reshape(self.num_markets, self.num_agents, 2)

    def step_wait(self):
        if self._actions is None:
            raise RuntimeError("step_wait() called without step_async()")
        if not self._started:
            raise RuntimeError("step() called before reset(): call reset() first")
        obs, rewards, terminated, truncated, info = self.vec.step(self._actions)
        self._actions = None
        n = self.num_agents
        dones = np.repeat(terminated | truncated, n)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        ended = np.flatnonzero(info["_final_obs"])
        if len(ended):
            final = info["final_obs"]
            for m in ended:
                for j in range(n):
                    infos[m * n + j] = {
                        "terminal_observation": final[m, j].copy(),
                        "TimeLimit.truncated": bool(truncated[m]),
                    }
        return self._flat(obs).copy(), self._flat(rewards).copy(), dones, infos

    def close(self) -> None:
        pass

    def _count(self, indices: VecEnvIndices) -> int:
        return len(list(self._get_indices(indices)))

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """Attributes are shared by all agents: the adapter's own, once per index."""
        value = getattr(self, attr_name)
        return [value] * self._count(indices)

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Sets a shared attribute on the adapter (all envs at once)."""
        setattr(self, attr_name, value)

    def env_method(
        self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs
    ) -> list[Any]:
        method = getattr(self, method_name)
        return [method(*method_args, **method_kwargs) for _ in range(self._count(indices))]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False] * self._count(indices)

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None] * self.num_envs

    def _get_indices(self, indices: VecEnvIndices) -> Iterable[int]:
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, int):
            return [indices]
        return indices
