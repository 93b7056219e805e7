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

The contract, where SB3 leaves it open:

- ``seed(s)`` checks ``s`` at once (an int in ``[0, 2**64)``: ValueError or
  TypeError otherwise, and nothing changes) and takes effect at the next
  ``reset()``: market i then uses key s, ChaCha stream i, like
  ``VecMarketEnv(seed=s)``.
- ``step_async(actions)`` checks the actions at once (shape ``(M*N, 2)``, or
  ``(M*N, K, 2)`` with ``segments`` K > 1; real
  numbers, finite; clipped to the box in float64) and keeps them pending; a
  failed ``step_async`` leaves any pending actions as they were.
- ``step_wait()`` consumes the pending actions, whether it succeeds or fails:
  after a failed ``step_wait`` (e.g. stepping before ``reset()``) no market
  has moved, and the next ``step_wait`` raises RuntimeError until
  ``step_async`` is called again; old actions are never re-sent.
  ``reset()`` cancels pending actions.
- ``get_attr``/``set_attr``/``env_method`` act on per-env views: an attribute
  set for some indices is seen by those envs only; one set for every env is
  set on the adapter too. Reads fall back to the adapter's attribute. Indices
  are ints in ``[-num_envs, num_envs)``; anything else is a ValueError
  (TypeError for non-ints) naming ``indices``.
- The adapter pickles and deep-copies mid-episode, RNGs included, so
  ``SubprocVecEnv``-style shipping and Ray work.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices

from powermarket._checks import actions_f32, check_seed
from powermarket._core import VecMarketEnv, agent_name, check_steppable
from powermarket._spaces import action_shape, shared_action_space


class AgentView:
    """What ``get_attr``/``set_attr``/``env_method`` see as SB3 env ``index``:
    generator ``agent`` of market ``market``. Attributes set on a view belong
    to that env; other reads fall back to the adapter."""

    def __init__(self, adapter: MarketVecEnv, index: int) -> None:
        self._adapter = adapter
        self.index = index
        self.market = index // adapter.num_agents
        self.agent = agent_name(index % adapter.num_agents, adapter.vec.scenario.n)

    def episode_demand(self) -> np.ndarray:
        """Realised demand of this env's market in the current episode, MW."""
        return self._adapter.vec.episode_demand(self.market)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_adapter":
            raise AttributeError(name)
        return getattr(self._adapter, name)


class MarketVecEnv(VecEnv):
    """``num_markets`` markets on :class:`powermarket.VecMarketEnv`, one SB3 env per agent.

    Observations are copies (SB3 keeps the previous batch while stepping).
    Episodes end together for all agents of a market after T hours; the
    market then resets in the same step and ``infos[k]["terminal_observation"]``
    holds agent ``k``'s last observation. Seeding, pending actions and the
    attribute methods follow the module docstring.
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
        self.num_markets = self.vec.num_envs
        self.num_agents = self.vec.num_agents
        self.render_mode = None
        count = self.num_markets * self.num_agents
        # The views exist before VecEnv.__init__, which already calls get_attr.
        self._views = [AgentView(self, k) for k in range(count)]
        low, high = self.vec.observation_bounds()
        obs_space = spaces.Box(low.min(axis=0), high.max(axis=0), dtype=np.float32)
        segments = self.vec.scenario.segments
        self._block = action_shape(segments)
        super().__init__(count, obs_space, shared_action_space(self.vec.scenario))
        self._actions: np.ndarray | None = None
        self._pending_seed: int | None = None
        self._started = False

    def _flat(self, a: np.ndarray) -> np.ndarray:
        return a.reshape((self.num_envs,) + a.shape[2:])

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Seed every market at the next ``reset()``: market i gets key ``seed``,
        stream i. ``None`` draws a seed (as SB3 does). Returns the seed per env."""
        seed = check_seed(seed)
        if seed is None:
            seed = int(np.random.randint(0, np.iinfo(np.uint32).max, dtype=np.uint32))
        self._pending_seed = seed
        self._seeds = [seed] * self.num_envs
        return list(self._seeds)

    def set_options(self, options: list[dict] | dict | None = None) -> None:
        """The markets take no reset options: only None or empty dicts are accepted."""
        items = options if isinstance(options, list) else [options]
        if any(o for o in items):
            raise ValueError(
                f"options: MarketVecEnv takes no reset options (use seed()), got {options!r}"
            )
        self._reset_options()

    def reset(self) -> np.ndarray:
        obs, _ = self.vec.reset(seed=self._pending_seed)
        self._pending_seed = None
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = [{} for _ in range(self.num_envs)]
        self._started = True
        self._actions = None
        return self._flat(obs).copy()

    def _where(self, k: int) -> str:
        name = agent_name(k % self.num_agents, self.vec.scenario.n)
        return f"env {k} ({name} in market {k // self.num_agents})"

    def step_async(self, actions: np.ndarray) -> None:
        a = actions_f32(
            actions, (self.num_envs, *self._block), "actions", lambda idx: self._where(idx[0])
        )
        self._actions = a.reshape(self.num_markets, self.num_agents, *self._block)

    def step_wait(self):
        actions, self._actions = self._actions, None
        if actions is None:
            raise RuntimeError("step_wait() called without a pending step_async(actions)")
        if not self._started:
            check_steppable(None, self.vec.horizon)
        obs, rewards, terminated, truncated, info = self.vec.step(actions)
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

    def _indices(self, indices: VecEnvIndices) -> list[int]:
        """Checked env indices (negative ones count from the end)."""
        total = len(self._views)
        if indices is None:
            return list(range(total))
        items = [indices] if isinstance(indices, (int, np.integer)) else indices
        try:
            items = list(items)
        except TypeError:
            raise TypeError(
                f"indices must be None, an int or a sequence of ints, got {indices!r}"
            ) from None
        out = []
        for i in items:
            if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
                raise TypeError(f"indices must be ints, got {i!r}")
            if not -total <= i < total:
                raise ValueError(f"indices: env index {i} out of range for {total} envs")
            out.append(int(i) % total)
        return out

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The attribute as each selected env sees it (its own, else the adapter's)."""
        return [getattr(self._views[k], attr_name) for k in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set the attribute for the selected envs only (for all: on the adapter too)."""
        chosen = self._indices(indices)
        for k in chosen:
            setattr(self._views[k], attr_name, value)
        if set(chosen) == set(range(len(self._views))):
            setattr(self, attr_name, value)

    def env_method(
        self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs
    ) -> list[Any]:
        """Call the method once per selected env, on that env's view."""
        return [
            getattr(self._views[k], method_name)(*method_args, **method_kwargs)
            for k in self._indices(indices)
        ]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False] * len(self._indices(indices))

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None] * self.num_envs

    def _get_indices(self, indices: VecEnvIndices) -> list[int]:
        return self._indices(indices)
