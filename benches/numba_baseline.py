"""The NumPy/numba baseline market env that the benchmarks compare against.

It has the semantics of ``powermarket.MarketEnv`` (docs/semantics.md, ``tie_rule="index"``)
and is written the way the easy_marl electricity example is: a Python class, the
action of each generator mapped in a per-agent Python loop, a numba-jitted classic
clearing (stable argsort, cumsum, searchsorted), vectorised NumPy rewards, the
``simple`` observation written agent by agent, the episode stored in NumPy arrays,
and demand noise drawn with a NumPy ``Generator`` at every reset.

It is meant to be a fair baseline, not a slow one: buffers are allocated once and
reused, the clearing is compiled. It does not import powermarket.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

ACTION_LOW = (0.0, -10.0)
ACTION_HIGH = (1.0, 10.0)


@numba.njit(cache=True)
def classic_clear(bids, quantities, demand):
    """Uniform-price merit-order clearing, the classic way.

    Returns ``(price, cleared, shortfall)``. The marginal offer is the first one
    (stable sort by price) at which cumulative quantity reaches the demand; in a
    shortage everything clears at the highest offer price.
    """
    order = np.argsort(bids, kind="mergesort")
    q_sorted = quantities[order]
    cum = np.cumsum(q_sorted)
    idx = np.searchsorted(cum, demand, side="left")
    n = bids.shape[0]
    if idx >= n:
        return bids[order[n - 1]], quantities.copy(), max(demand - cum[n - 1], 0.0)
    cleared = np.zeros_like(quantities)
    for j in range(idx):
        cleared[order[j]] = q_sorted[j]
    before = cum[idx - 1] if idx > 0 else 0.0
    cleared[order[idx]] = demand - before
    return bids[order[idx]], cleared, 0.0


def simple_observer(
    obs_buf: np.ndarray,
    demand_t: float,
    capacity: float,
    cost: float,
    t: int,
    demand_scale: float,
    capacity_scale: float,
    cost_scale: float,
) -> np.ndarray:
    """``[D_t/Dmax, K_i/Kmax, c_i/cmax, (t mod 24)/24]`` into one agent's row."""
    obs_buf[0] = demand_t / demand_scale
    obs_buf[1] = capacity / capacity_scale
    obs_buf[2] = cost / cost_scale
    obs_buf[3] = (t % 24) / 24
    return obs_buf


def _positive_or_one(x: float) -> float:
    return float(x) if x > 0 else 1.0


def default_fleet(n: int = 5, t: int = 24) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Capacities, costs and demand of the easy_marl default market."""
    demand = (np.sin(np.linspace(0.0, 2.0 * np.pi, t)) + 1.5) * 50.0
    return np.full(n, 150.0 / n), np.linspace(20.0, 40.0, n), demand


class BaselineMarketEnv:
    """N generators bidding hour by hour into one market (``simple`` observer).

    ``step(actions (N, 2))`` returns ``(obs (N, 4) float32, rewards (N,) float32,
    terminated, truncated, info)`` like ``powermarket.MarketEnv``.
    """

    obs_dim = 4

    def __init__(
        self,
        capacities: Any,
        costs: Any,
        demand_profile: Any,
        *,
        max_bid_delta: float = 50.0,
        bid_penalty: float = 0.01,
        lol_penalty: float = 1.0,
        demand_noise: float = 0.05,
        seed: int | None = None,
    ) -> None:
        self.K = np.asarray(capacities, dtype=np.float64).copy()
        self.c = np.asarray(costs, dtype=np.float64).copy()
        self.base_D_profile = np.asarray(demand_profile, dtype=np.float64).copy()
        self.N = self.K.shape[0]
        self.T = self.base_D_profile.shape[0]
        self.max_bid_delta = float(max_bid_delta)
        self.bid_penalty = float(bid_penalty)
        self.lol_penalty = float(lol_penalty)
        self.demand_noise = float(demand_noise)

        self.demand_scale = _positive_or_one(self.base_D_profile.max())
        self.cost_scale = _positive_or_one(self.c.max())
        self.capacity_scale = _positive_or_one(self.K.max())
        self.reward_scale = 20.0 / (self.demand_scale * self.cost_scale * max(1, self.T))
        self.lower_stochastic_bound = -0.5 * self.base_D_profile.min()
        self.upper_stochastic_bound = max(0.0, 0.5 * (self.K.sum() - self.base_D_profile.max()))

        self.rng = np.random.default_rng(seed)
        self.t: int | None = None
        self.D_profile = self.base_D_profile.copy()
        self.b_all = np.zeros(self.N)
        self.q_all = np.zeros(self.N)
        self.obs = np.zeros((self.N, self.obs_dim), dtype=np.float32)
        self.output = {
            "bids": np.zeros((self.T, self.N)),
            "offered": np.zeros((self.T, self.N)),
            "cleared": np.zeros((self.T, self.N)),
            "rewards": np.zeros((self.T, self.N), dtype=np.float32),
            "prices": np.zeros(self.T),
            "demand": np.zeros(self.T),
        }

    @classmethod
    def from_scenario(cls, scenario: Any, seed: int | None = None) -> BaselineMarketEnv:
        """Build from anything with the fields of ``powermarket.Scenario``."""
        return cls(
            scenario.capacities,
            scenario.costs,
            scenario.demand,
            max_bid_delta=scenario.max_bid_delta,
            bid_penalty=scenario.bid_penalty,
            lol_penalty=scenario.lol_penalty,
            demand_noise=scenario.demand_noise,
            seed=seed,
        )

    def _apply_stochasticity(self) -> None:
        """A fresh demand path: base profile plus clipped Gaussian noise per hour."""
        if self.demand_noise > 0.0:
            shock = self.rng.normal(0.0, self.demand_noise * self.demand_scale, size=self.T)
            np.clip(shock, self.lower_stochastic_bound, self.upper_stochastic_bound, out=shock)
            np.add(self.base_D_profile, shock, out=self.D_profile)
        else:
            self.D_profile[:] = self.base_D_profile

    def _get_obs(self) -> np.ndarray:
        t = self.t
        demand_t = self.D_profile[min(t, self.T - 1)]
        for i in range(self.N):
            simple_observer(
                self.obs[i],
                demand_t,
                self.K[i],
                self.c[i],
                t,
                self.demand_scale,
                self.capacity_scale,
                self.cost_scale,
            )
        return self.obs

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self._apply_stochasticity()
        self.t = 0
        return self._get_obs().copy(), {"demand": float(self.D_profile[0])}

    def _update_agent_action(self, a0: float, a1: float, agent_idx: int) -> None:
        """``q = (1 - a0) K_i``, ``b = c_i + tanh(a1) * max_bid_delta`` (box-clipped)."""
        if not (math.isfinite(a0) and math.isfinite(a1)):
            raise ValueError(f"actions for gen_{agent_idx} must be finite, got {[a0, a1]}")
        a0 = min(max(a0, ACTION_LOW[0]), ACTION_HIGH[0])
        a1 = min(max(a1, ACTION_LOW[1]), ACTION_HIGH[1])
        self.q_all[agent_idx] = (1.0 - a0) * self.K[agent_idx]
        self.b_all[agent_idx] = self.c[agent_idx] + math.tanh(a1) * self.max_bid_delta

    def step(self, actions: np.ndarray):
        if self.t is None or self.t >= self.T:
            raise RuntimeError("step() called before reset() or after the episode ended")
        # One conversion to Python floats, then the per-agent mapping.
        for i, (a0, a1) in enumerate(np.asarray(actions, dtype=np.float32).tolist()):
            self._update_agent_action(a0, a1, i)

        t = self.t
        demand = float(self.D_profile[t])
        price, cleared, shortfall = classic_clear(self.b_all, self.q_all, demand)

        markup = self.b_all - self.c
        profit = (price - self.c) * cleared - self.bid_penalty * markup**2
        rewards = ((profit - self.lol_penalty * shortfall) * self.reward_scale).astype(np.float32)

        out = self.output
        out["bids"][t] = self.b_all
        out["offered"][t] = self.q_all
        out["cleared"][t] = cleared
        out["rewards"][t] = rewards
        out["prices"][t] = price
        out["demand"][t] = demand

        self.t = t + 1
        terminated = self.t >= self.T
        info = {"price": float(price), "demand": demand, "shortfall": shortfall, "cleared": cleared}
        return self._get_obs().copy(), rewards, terminated, False, info

    def episode_record(self) -> dict[str, np.ndarray]:
        h = self.t or 0
        return {k: v[:h].copy() for k, v in self.output.items()}


def compare_episode(pm_env: Any, ref: BaselineMarketEnv, actions: np.ndarray) -> None:
    """Step both envs through one episode of ``actions`` (T, N, 2) and check they agree.

    Meant for ``pm.MarketEnv(tie_rule="index")`` on a noise-free scenario (the two
    RNGs differ). Raises AssertionError on the first disagreement.
    """
    o_pm, _ = pm_env.reset()
    o_ref, _ = ref.reset()
    np.testing.assert_allclose(o_pm, o_ref, rtol=1e-6, atol=1e-7)
    for h, a in enumerate(actions):
        o_pm, r_pm, te_pm, _, i_pm = pm_env.step(a)
        o_ref, r_ref, te_ref, _, i_ref = ref.step(a)
        assert te_pm == te_ref, f"hour {h}: terminated {te_pm} != {te_ref}"
        assert math.isclose(i_pm["price"], i_ref["price"], rel_tol=1e-12, abs_tol=1e-9), h
        assert math.isclose(i_pm["shortfall"], i_ref["shortfall"], abs_tol=1e-9), h
        np.testing.assert_allclose(i_pm["cleared"], i_ref["cleared"], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(r_pm, r_ref, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(o_pm, o_ref, rtol=1e-6, atol=1e-7)
