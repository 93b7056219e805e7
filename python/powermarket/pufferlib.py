"""A native PufferLib environment over :class:`powermarket.VecMarketEnv`
(``pip install "powermarket[pufferlib]"``, which brings ``pufferlib-core``).

:class:`MarketPufferEnv` is a ``pufferlib.PufferEnv``: ``M`` markets of ``N``
generators are ``M * N`` flat agents, row ``m * N + i`` is agent ``gen_i`` of
market ``m``. It steps all markets in one call of the Rust core and copies
each output once into PufferLib's shared buffers (``buf``), so it works as it
is with ``pufferlib.vector.make(MarketPufferEnv, backend=pufferlib.vector.PufferEnv)``
(or the ``Serial`` / ``Multiprocessing`` backends, which pass ``buf`` and
``seed``) and with ``pufferlib.pufferl.PuffeRL``.

- **Spaces.** ``single_action_space`` is the scenario's action box (with storage
  units, the box that holds every kind's actions), flat:
  ``(2,)``, or ``(2K,)`` with ``segments`` K > 1 (block-major, ``[a0, a1]``
  per block), because PufferLib's policies decode one flat vector.
  ``single_observation_space`` is one ``Box`` for every agent: per feature,
  the lowest lower bound and the highest upper bound over the ``N`` agents'
  true bounds (``VecMarketEnv.observation_bounds()``), so every observation
  lies inside it.
- **Dones.** Per agent: every agent of a market is terminal at its last hour
  and the market restarts in the same step (the core's same-step reset), so
  the observation returned with ``terminals`` set is already the next
  episode's first one, as PufferLib expects. ``truncations`` stay False.
- **Infos.** Only at episode ends, never per step (``pufferl`` logs every
  scalar it is given): a list with one dict per step in which markets ended,
  ``{"episode_return": ..., "episode_length": T, "mean_price": ...,
  "episodes": k, "return": {"gen_0": ..., ...}}`` (means over the ``k``
  markets that ended), plus ``"nash_conv"`` (NashConv of market 0's played
  episode on the default deviation grid, ``analysis.exploitability_of_play``)
  when ``nash_conv=True``.
- **Rewards** are the env's, float32. ``pufferl`` clamps rewards to
  [-1, 1]; the env's rewards are scaled so that an episode's return is of
  order 1 (each step's reward is ``profit * 20 / (D_max c_max T)``), which on
  the presets keeps each step well inside [-1, 1]. A scenario with a large
  ``lol_penalty``, ``bid_penalty`` or a price cap far above costs can leave
  it: pass ``reward_scale`` (a factor applied before the rewards are
  written) to bring it back.

Use ``Scenario(..., price_action="linear")`` with PufferLib's Gaussian
policies: they sample around 0 with unit scale and clip to the box, which
under the default ``"tanh"`` box (a1 in [-10, 10]) wastes most of it on the
flat ends of ``tanh``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pufferlib
from gymnasium import spaces

from powermarket import VecMarketEnv
from powermarket._spaces import action_bounds, agent_names

__all__ = ["MarketPufferEnv"]


def _view(a: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
    """``a`` reshaped without a copy (a buffer PufferLib reads back)."""
    v = a.reshape(shape)
    if not np.shares_memory(v, a):
        raise ValueError(f"buf[{name!r}] must be a C-contiguous array, got strides {a.strides}")
    return v


class MarketPufferEnv(pufferlib.PufferEnv):
    """``num_envs`` markets of ``scenario`` (default ``Scenario.default()``)
    as ``num_envs * N`` PufferLib agents; ``buf`` is PufferLib's shared
    buffers (None: allocate them). ``seed`` is the base seed of the markets
    (market i: key ``seed``, stream i, as in :class:`VecMarketEnv`), used at
    the first reset unless ``reset`` is given another. ``num_threads`` is
    passed to :class:`VecMarketEnv`."""

    def __init__(
        self,
        scenario: Any = None,
        num_envs: int = 64,
        observer: str = "simple",
        seed: int | None = 0,
        buf: dict[str, np.ndarray] | None = None,
        *,
        nash_conv: bool = False,
        reward_scale: float = 1.0,
        num_threads: int | None = None,
        tie_rule: str = "pro_rata",
    ) -> None:
        if not (isinstance(reward_scale, int | float) and np.isfinite(reward_scale)):
            raise ValueError(f"reward_scale must be a finite number, got {reward_scale!r}")
        self.vec = VecMarketEnv(
            scenario,
            num_envs=num_envs,
            observer=observer,
            seed=seed,
            num_threads=num_threads,
            tie_rule=tie_rule,
        )
        sc = self.vec.scenario
        if nash_conv and sc.availability_noise > 0:
            raise ValueError(
                "nash_conv=True needs a scenario without availability_noise (the score replays "
                f"the scenario's load factors), got availability_noise={sc.availability_noise}"
            )
        m, n, d, k = self.vec.num_envs, self.vec.num_agents, self.vec.obs_dim, sc.segments
        self.num_markets, self.agents_per_market = m, n
        self.num_agents = m * n
        low, high = self.vec.observation_bounds()
        self.single_observation_space = spaces.Box(
            low.min(axis=0), high.max(axis=0), shape=(d,), dtype=np.float32
        )
        alow, ahigh = action_bounds(sc.price_action, storage=sc.s > 0)
        self.single_action_space = spaces.Box(
            np.tile(alow, k), np.tile(ahigh, k), shape=(2 * k,), dtype=np.float32
        )
        self._action_shape = (m, n, 2) if k == 1 else (m, n, k, 2)
        self._names = agent_names(sc.n, sc.s)
        self._seed = seed
        self._reward_scale = float(reward_scale)
        self._nash_conv = bool(nash_conv)
        self._returns = np.zeros((m, n), np.float64)
        self._price_sum = np.zeros(m, np.float64)
        self._played: list[np.ndarray] = []  # market 0's actions this episode
        self._demand: list[float] = []  # and its realised demand
        self._grid: Any = None
        self.render_mode = None
        super().__init__(buf)
        # Per-market views of PufferLib's flat buffers (written in place).
        self._obs = _view(self.observations, (m, n, d), "observations")
        self._rew = _view(self.rewards, (m, n), "rewards")
        self._term = _view(self.terminals, (m, n), "terminals")
        self._trunc = _view(self.truncations, (m, n), "truncations")

    @property
    def scenario(self) -> Any:
        """The scenario of every market (a copy)."""
        return self.vec.scenario

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Reset every market (``seed``: the base seed; None: the constructor's
        at the first reset, then continue the markets' RNG streams)."""
        if seed is None and self._seed is not None:
            seed, self._seed = self._seed, None
        obs, _ = self.vec.reset(seed=seed)
        np.copyto(self._obs, obs)
        self.rewards.fill(0.0)
        self.terminals.fill(False)
        self.truncations.fill(False)
        self._returns.fill(0.0)
        self._price_sum.fill(0.0)
        self._played.clear()
        self._demand.clear()
        return self.observations, []

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """One hour in every market: ``actions`` (M*N, 2) or (M*N, 2K) float32."""
        a = np.asarray(actions)
        if a.size != int(np.prod(self._action_shape)):
            raise ValueError(
                f"actions must have shape ({self.num_agents}, {self.single_action_space.shape[0]}) "
                f"(num_envs * N agents), got {a.shape}"
            )
        a = a.reshape(self._action_shape)
        if self._nash_conv:
            self._played.append(np.array(a[0], dtype=np.float32))
        obs, rew, term, trunc, info = self.vec.step(a)
        np.copyto(self._obs, obs)
        if self._reward_scale == 1.0:
            np.copyto(self._rew, rew)
        else:
            np.multiply(rew, self._reward_scale, out=self._rew)
        np.copyto(self._term, term[:, None])
        np.copyto(self._trunc, trunc[:, None])
        self._returns += rew
        self._price_sum += info["price"]
        if self._nash_conv:
            self._demand.append(float(info["demand"][0]))
        if not term.any():
            return self.observations, self.rewards, self.terminals, self.truncations, []
        return (
            self.observations,
            self.rewards,
            self.terminals,
            self.truncations,
            [self._episode_info(term)],
        )

    def _episode_info(self, ended: np.ndarray) -> dict[str, Any]:
        """The summary of the markets that just ended; their sums restart."""
        t = self.vec.horizon
        returns = self._returns[ended]
        out: dict[str, Any] = {
            "episode_return": float(returns.mean()),
            "episode_length": t,
            "mean_price": float(self._price_sum[ended].mean() / t),
            "episodes": int(ended.sum()),
            "return": dict(zip(self._names, returns.mean(axis=0).tolist(), strict=True)),
        }
        if self._nash_conv and ended[0] and len(self._played) == t:
            out["nash_conv"] = self._score_market_0()
        if ended[0]:
            self._played.clear()
            self._demand.clear()
        self._returns[ended] = 0.0
        self._price_sum[ended] = 0.0
        return out

    def _score_market_0(self) -> float:
        from powermarket import analysis

        sc = self.vec.scenario
        if self._grid is None:
            self._grid = analysis.default_grid(scenario=sc)
        x = analysis.exploitability_of_play(
            sc,
            np.stack(self._played)[None],
            np.array(self._demand)[None],
            grid=self._grid,
            tie_rule=self.vec.tie_rule,
        )
        return float(x["nash_conv"])

    def close(self) -> None:
        """Nothing to release (the markets are freed with the object)."""
