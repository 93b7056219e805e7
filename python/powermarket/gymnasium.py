"""Gymnasium fronts: one learning generator against fixed opponents.

- :class:`MarketSingleAgentEnv` (``gymnasium.make("powermarket/Market-v0")``);
- :class:`MarketVectorEnv`, a ``gymnasium.vector.VectorEnv`` of many such
  markets over :class:`powermarket.VecMarketEnv`
  (``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")``).

Opponents are given by ``opponents=``:

- a built-in strategy for all of them, computed in Rust: ``"truthful"``
  (whole capacity at cost), ``"random"`` (uniform actions), ``("constant", a0, a1)``
  or ``("markup", eur_per_mwh)``;
- one batched callable ``f(obs) -> actions`` taking the opponents' observations
  ``(N-1, D)`` (``(M, N-1, D)`` in the vector env) and returning their actions;
- a list with one entry per agent (N entries, the learner's is ignored, or N-1
  entries for the opponents in order): built-in specs or per-agent callables
  ``f(obs (D,)) -> action (2,)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from powermarket._core import MarketEnv, Opponents, VecMarketEnv
from powermarket.pettingzoo import action_space, check_render_mode

ENV_ID = "powermarket/Market-v0"
_OPPONENT_SEED_SALT = 0x6F70706F6E656E74  # opponents' RNG: seed ^ salt


def register_envs() -> None:
    """Register ``powermarket/Market-v0`` with Gymnasium (done on import)."""
    if ENV_ID in gymnasium.registry:
        return
    gymnasium.register(
        id=ENV_ID,
        entry_point="powermarket.gymnasium:MarketSingleAgentEnv",
        vector_entry_point="powermarket.gymnasium:MarketVectorEnv",
        disable_env_checker=False,
    )


def _is_spec(x: Any) -> bool:
    return isinstance(x, str) or (isinstance(x, tuple) and bool(x) and isinstance(x[0], str))


class _OpponentPlan:
    """Parsed ``opponents=`` argument for a market of ``n`` agents and one learner."""

    def __init__(self, opponents: Any, n: int, agent: int, max_bid_delta: float) -> None:
        self.n, self.agent = n, agent
        others = [i for i in range(n) if i != agent]
        self.others = np.array(others, dtype=np.intp)
        self.batched: Callable | None = None
        self.per_agent: dict[int, Callable] = {}
        specs: list[Any] = ["truthful"] * n
        if _is_spec(opponents):
            specs = [opponents] * n
        elif callable(opponents):
            self.batched = opponents
        elif isinstance(opponents, Sequence):
            items = list(opponents)
            if len(items) == n:
                pairs = list(enumerate(items))
            elif len(items) == n - 1:
                pairs = list(zip(others, items, strict=True))
            else:
                raise ValueError(
                    f"opponents: a list needs {n} entries (one per agent) or {n - 1} "
                    f"(one per opponent), got {len(items)}"
                )
            for i, item in pairs:
                if i == agent:
                    continue
                if callable(item):
                    self.per_agent[i] = item
                elif _is_spec(item):
                    specs[i] = item
                else:
                    raise ValueError(f"opponents: entry for gen_{i} is not a strategy: {item!r}")
        else:
            raise ValueError(
                "opponents must be a strategy name/tuple, a callable or a list, "
                f"got {type(opponents).__name__}"
            )
        specs[agent] = "truthful"
        self.rust = Opponents(specs, max_bid_delta)

    def reseed(self, seed: int) -> None:
        self.rust.reseed((seed ^ _OPPONENT_SEED_SALT) & 0xFFFFFFFFFFFFFFFF)

    def checkpoint(self) -> Opponents:
        """The built-in strategies' state (RNG included), to undo a failed step."""
        return self.rust.__deepcopy__({})

    def rollback(self, saved: Opponents) -> None:
        self.rust = saved

    def fill(self, actions: np.ndarray, obs: np.ndarray) -> None:
        """Write the opponents' actions into ``actions`` ((N, 2) or (M, N, 2))."""
        if actions.ndim == 2:
            self.rust.fill(actions, self.agent)
        else:
            self.rust.fill_batch(actions, self.agent)
        if self.batched is not None:
            out = np.asarray(self.batched(obs[..., self.others, :]), dtype=np.float32)
            expected = obs.shape[:-2] + (len(self.others), 2)
            if out.shape != expected:
                raise ValueError(
                    f"opponents: the batched callable returned shape {out.shape}, "
                    f"expected {expected}"
                )
            actions[..., self.others, :] = out
        for i, f in self.per_agent.items():
            a = np.asarray(f(obs[..., i, :]), dtype=np.float32)
            try:
                actions[..., i, :] = a
            except ValueError as e:
                raise ValueError(
                    f"opponents: callable for gen_{i} returned shape {a.shape}, expected (2,)"
                ) from e


def _agent_index(agent: int | str, n: int) -> int:
    if isinstance(agent, str):
        if not agent.startswith("gen_") or not agent[4:].isdigit():
            raise ValueError(f"agent must be an index or 'gen_<i>', got {agent!r}")
        agent = int(agent[4:])
    if isinstance(agent, bool) or not (isinstance(agent, (int, np.integer)) and 0 <= agent < n):
        raise ValueError(f"agent must be in [0, {n}) (or 'gen_0'..'gen_{n - 1}'), got {agent!r}")
    return int(agent)


class MarketSingleAgentEnv(gymnasium.Env):
    """One learning generator (``agent``) in a market whose other generators
    follow ``opponents`` (see the module docstring).

    Observation: the learner's features, ``Box`` with true per-feature bounds.
    Action: ``Box([0, -10], [1, 10])``, ``[withheld share, price action]``.
    Reward: the learner's reward as a Python float. Episodes last T hours and
    end with ``terminated=True``.
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
        scenario: Any = None,
        agent: int | str = 0,
        opponents: Any = "truthful",
        observer: str = "simple",
        seed: int | None = None,
        tie_rule: str = "pro_rata",
        render_mode: str | None = None,
    ) -> None:
        check_render_mode(render_mode, self.metadata["render_modes"])
        self.market = MarketEnv(scenario, observer=observer, seed=seed, tie_rule=tie_rule)
        n = self.market.num_agents
        self.agent = _agent_index(agent, n)
        self.plan = _OpponentPlan(opponents, n, self.agent, self.market.scenario.max_bid_delta)
        if seed is not None:
            self.plan.reseed(seed)
        low, high = self.market.observation_bounds()
        self.observation_space = spaces.Box(low[self.agent], high[self.agent], dtype=np.float32)
        self.action_space = action_space()
        self.render_mode = render_mode
        self._obs: np.ndarray | None = None
        self._actions = np.zeros((n, 2), dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        obs, info = self.market.reset(seed=seed)
        if seed is not None:
            self.plan.reseed(seed)
        self._obs = obs
        return obs[self.agent], info

    def step(self, action):
        if self._obs is None:
            raise RuntimeError("step() called before reset(): call reset() first")
        a = np.asarray(action, dtype=np.float32).reshape(-1)
        if a.shape != (2,):
            raise ValueError(
                f"action for gen_{self.agent} must have 2 values [a0, a1], got shape "
                f"{np.shape(action)}"
            )
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action for gen_{self.agent} must be finite, got {a.tolist()}")
        if self.market.t is not None and self.market.t >= self.market.horizon:
            raise RuntimeError("step() called after the episode ended: call reset()")
        # A failed step (e.g. an opponent callable returning NaN) must leave
        # no trace, so the opponents' RNG is rolled back on error.
        saved = self.plan.checkpoint()
        try:
            self.plan.fill(self._actions, self._obs)
            self._actions[self.agent] = a
            obs, rewards, terminated, truncated, info = self.market.step(self._actions)
        except Exception:
            self.plan.rollback(saved)
            raise
        self._obs = obs
        info["cleared"] = float(info["cleared"][self.agent])
        if self.render_mode == "human":
            self.render()
        return obs[self.agent], float(rewards[self.agent]), bool(terminated), bool(truncated), info

    def render(self):
        if self.render_mode is None:
            return None
        from powermarket import plot

        return plot.render(self.market, self.render_mode)


class MarketVectorEnv(VectorEnv):
    """``num_envs`` single-learner markets stepped in one native call.

    Same semantics as :class:`MarketSingleAgentEnv`, batched on
    :class:`powermarket.VecMarketEnv`: same-step autoreset
    (``metadata["autoreset_mode"] == AutoresetMode.SAME_STEP``); the last
    observation of a finished market is in ``info["final_obs"]`` where
    ``info["_final_obs"]`` is true. Market ``i`` is seeded ``seed + i``.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(
        self,
        num_envs: int = 1,
        scenario: Any = None,
        agent: int | str = 0,
        opponents: Any = "truthful",
        observer: str = "simple",
        seed: int | None = None,
        tie_rule: str = "pro_rata",
        num_threads: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None:
            raise ValueError("MarketVectorEnv does not render; use render_mode=None")
        self.vec = VecMarketEnv(
            scenario,
            num_envs=num_envs,
            observer=observer,
            seed=seed,
            num_threads=num_threads,
            tie_rule=tie_rule,
        )
        n = self.vec.num_agents
        self.num_envs = num_envs
        self.agent = _agent_index(agent, n)
        self.plan = _OpponentPlan(opponents, n, self.agent, self.vec.scenario.max_bid_delta)
        if seed is not None:
            self.plan.reseed(seed)
        low, high = self.vec.observation_bounds()
        self.single_observation_space = spaces.Box(
            low[self.agent], high[self.agent], dtype=np.float32
        )
        self.single_action_space = action_space()
        self.observation_space = gymnasium.vector.utils.batch_space(
            self.single_observation_space, num_envs
        )
        self.action_space = gymnasium.vector.utils.batch_space(self.single_action_space, num_envs)
        self.render_mode = None
        self._obs: np.ndarray | None = None
        self._actions = np.zeros((num_envs, n, 2), dtype=np.float32)

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None):
        if isinstance(seed, (list, tuple)):
            seed = seed[0] if seed else None
        if seed is not None:
            self._np_random, self._np_random_seed = gymnasium.utils.seeding.np_random(seed)
            self.plan.reseed(seed)
        mask = None if options is None else options.get("reset_mask")
        obs, _ = self.vec.reset(seed=seed, mask=mask)
        self._obs = obs
        return obs[:, self.agent].copy(), {}

    def step(self, actions):
        if self._obs is None:
            raise RuntimeError("step() called before reset(): call reset() first")
        a = np.asarray(actions, dtype=np.float32)
        if a.shape != (self.num_envs, 2):
            raise ValueError(
                f"actions must have shape ({self.num_envs}, 2), got {a.shape}"
            )
        bad = np.argwhere(~np.isfinite(a))
        if len(bad):
            m, k = bad[0]
            raise ValueError(
                f"actions for gen_{self.agent} in market {m}: "
                f"{'a0' if k == 0 else 'a1'} must be finite, got {a[m, k]}"
            )
        saved = self.plan.checkpoint()
        try:
            self.plan.fill(self._actions, self._obs)
            self._actions[:, self.agent] = a
            obs, rewards, terminated, truncated, info = self.vec.step(self._actions)
        except Exception:
            self.plan.rollback(saved)
            raise
        self._obs = obs
        every = np.ones(self.num_envs, dtype=bool)
        out_info: dict[str, Any] = {
            "price": info["price"].copy(),
            "demand": info["demand"].copy(),
            "shortfall": info["shortfall"].copy(),
            "cleared": info["cleared"][:, self.agent].copy(),
        }
        for key in list(out_info):
            out_info["_" + key] = every
        mask = info["_final_obs"]
        if mask.any():
            final = np.empty(self.num_envs, dtype=object)
            for i in np.flatnonzero(mask):
                final[i] = info["final_obs"][i, self.agent].copy()
            out_info["final_obs"] = final
            out_info["_final_obs"] = mask.copy()
            # The last step's info of the markets that ended is this step's.
            out_info["final_info"] = {
                key: value for key, value in out_info.items() if "final" not in key
            }
            out_info["_final_info"] = mask.copy()
        return (
            obs[:, self.agent].copy(),
            rewards[:, self.agent].astype(np.float64),
            terminated.copy(),
            truncated.copy(),
            out_info,
        )

    def close_extras(self, **kwargs) -> None:
        pass
