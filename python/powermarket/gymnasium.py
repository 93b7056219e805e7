"""Gymnasium fronts: one learning generator against fixed opponents.

- :class:`MarketSingleAgentEnv` (``gymnasium.make("powermarket/Market-v0")``);
- :class:`MarketVectorEnv`, a ``gymnasium.vector.VectorEnv`` of M such
  markets over :class:`powermarket.VecMarketEnv`
  (``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")``).

Opponents are given by ``opponents=``:

- a built-in strategy for all of them, computed in Rust: ``"truthful"``
  (whole capacity at cost), ``"random"`` (uniform actions), ``("constant", a0, a1)``
  or ``("markup", eur_per_mwh)``;
- one **batched callable** ``f(obs) -> actions`` taking the opponents'
  observations, ``(N-1, D)`` in the single env and ``(M, N-1, D)`` in the
  vector env, and returning their actions, ``(N-1, 2)`` or ``(M, N-1, 2)``;
- a list with one entry per agent (N entries, the learner's is ignored, or N-1
  entries for the opponents in order): built-in specs or **per-agent
  callables** ``f(obs (D,)) -> action (2,)``. The contract is the same in both
  envs: the vector env calls a per-agent callable once per market, in market
  order 0 ... M-1, with that market's (D,) observation (use the batched
  callable when speed matters).

What a callable returns is checked like the learner's action: real numbers of
the stated shape (TypeError for complex, str, object, masked arrays; ValueError
for a wrong shape or NaN/inf, naming the agent and the market), clipped to the
action box in float64, then cast to float32.

Random opponents draw from one ChaCha RNG per market, seeded from the env's
seed (``seed ^ _OPPONENT_SEED_SALT``) with the same stream rule as the
markets, so market i of a vector env draws the same opponent actions as a
single env whose seed gives it the same key and stream.

A call that fails (bad seed, mask, options or action; an opponent callable
that raises or returns garbage) changes no state: nothing is reseeded and
the opponents' RNGs are rolled back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from powermarket._checks import actions_f32, check_mask, check_seed, check_seeds
from powermarket._core import (
    VEC_OUTPUTS,
    MarketEnv,
    Opponents,
    VecMarketEnv,
    agent_index,
    agent_name,
    check_steppable,
)
from powermarket._spaces import action_shape, action_space, check_render_mode

ENV_ID = "powermarket/Market-v0"
_OPPONENT_SEED_SALT = 0x6F70706F6E656E74  # opponents' RNG: seed ^ salt
_RESET_OPTIONS = ("reset_mask",)


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


def _salted(seed: int | None) -> int | None:
    return None if seed is None else seed ^ _OPPONENT_SEED_SALT


class _OpponentPlan:
    """Parsed ``opponents=`` argument for ``num_markets`` markets of ``n`` agents
    and one learner (``num_markets=None``: the single env, actions (N, 2))."""

    def __init__(
        self,
        opponents: Any,
        n: int,
        agent: int,
        max_bid_delta: float,
        num_markets: int | None,
        segments: int = 1,
        scenario: Any = None,
    ) -> None:
        self.n, self.agent, self.num_markets = n, agent, num_markets
        self.generators = n if scenario is None else scenario.n
        self.block = action_shape(segments)
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
                    raise ValueError(
                        f"opponents: entry for {agent_name(i, self.generators)} is not a "
                        f"strategy: {item!r}"
                    )
        else:
            raise ValueError(
                "opponents must be a strategy name/tuple, a callable or a list, "
                f"got {type(opponents).__name__}"
            )
        specs[agent] = "truthful"
        self.rust = Opponents(specs, max_bid_delta, num_markets=num_markets or 1, scenario=scenario)

    def reseed(self, seed: int | list[int | None], mask: np.ndarray | None = None) -> None:
        """Reseed the built-in strategies' RNGs from an already checked seed.

        An int gives market i key ``seed ^ salt``, stream i; a list gives
        market i key ``seed[i] ^ salt``, stream 0 (None entries: not reseeded).
        """
        if isinstance(seed, list):
            keep = np.array([s is not None for s in seed])
            if mask is not None:
                keep &= mask
            if not keep.any():
                return
            keys = [0 if s is None else _salted(s) for s in seed]
            self.rust.reseed(keys, mask=None if keep.all() else keep.tolist())
        else:
            self.rust.reseed(_salted(seed), mask=None if mask is None else mask.tolist())

    def checkpoint(self) -> Opponents:
        """The built-in strategies' state (RNGs included), to undo a failed step."""
        return self.rust.__deepcopy__({})

    def rollback(self, saved: Opponents) -> None:
        self.rust = saved

    def _where(self, market: int | None, agent: int) -> str:
        name = agent_name(agent, self.generators)
        return name if market is None else f"{name} in market {market}"

    def python_rows(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The single env's rows that Python callables choose, from the
        observations ``obs`` (N, D): ``(actions (N, *block), mask (N,))``, or
        None when every opponent is built in (the core fills those rows)."""
        if self.batched is None and not self.per_agent:
            return None
        rows = np.zeros((self.n, *self.block), dtype=np.float32)
        mask = np.zeros(self.n, dtype=bool)
        self._callables(rows, obs, vector=False)
        if self.batched is not None:
            mask[self.others] = True
        mask[list(self.per_agent)] = True
        return rows, mask

    def fill(
        self, actions: np.ndarray, obs: np.ndarray, last_prices: np.ndarray | None = None
    ) -> None:
        """Write the opponents' actions into ``actions``: (N, 2) or (M, N, 2), with
        a (K, 2) block per agent in place of (2,) when there are K > 1 segments.
        ``last_prices`` (M,) are the markets' last clearing prices, or (M, Z)
        their node prices on a networked market (a rule sees its own node's);
        NaN before a market's first step, for the rules that look at them."""
        vector = self.num_markets is not None
        if vector:
            prices = None if last_prices is None else last_prices.ravel().tolist()
            self.rust.fill_batch(actions, self.agent, prices)
        else:
            self.rust.fill(actions, self.agent)
        self._callables(actions, obs, vector)

    def _callables(self, actions: np.ndarray, obs: np.ndarray, vector: bool) -> None:
        """Write the Python callables' actions into ``actions``, checked by
        the core's action check (errors name the agent and market)."""
        if self.batched is not None:
            expected = obs.shape[:-2] + (len(self.others), *self.block)
            others = self.others
            agent_axis = 1 if vector else 0

            def where(idx: tuple[int, ...]) -> str:
                return self._where(idx[0] if vector else None, int(others[idx[agent_axis]]))

            out = actions_f32(
                self.batched(obs[..., self.others, :]),
                expected,
                "opponents: the batched callable's actions",
                where,
            )
            # The agent axis is 0 (single) or 1 (vector), whatever the block shape.
            if vector:
                actions[:, others] = out
            else:
                actions[others] = out
        for i, f in self.per_agent.items():
            markets = range(self.num_markets) if vector else [None]
            for m in markets:
                one = obs[i] if m is None else obs[m, i]
                a = actions_f32(
                    f(one),
                    self.block,
                    f"opponents: the action returned by the callable for {self._where(m, i)}",
                )
                if m is None:
                    actions[i] = a
                else:
                    actions[m, i] = a


def _agent_index(agent: int | str, scenario: Any) -> int:
    n, s = scenario.n, scenario.s
    names = f"'gen_0'..'gen_{n - 1}'" + (f" or 'sto_0'..'sto_{s - 1}'" if s else "")
    if isinstance(agent, str):
        index = agent_index(agent, n, s)
        if index is None:
            raise ValueError(f"agent must be an index or one of {names}, got {agent!r}")
        agent = index
    a = n + s
    if isinstance(agent, bool) or not (isinstance(agent, (int, np.integer)) and 0 <= agent < a):
        raise ValueError(f"agent must be in [0, {a}) (or {names}), got {agent!r}")
    return int(agent)


def _check_options(options: Any, allowed: tuple[str, ...]) -> dict:
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise TypeError(f"options must be None or a dict, got {type(options).__name__}")
    unknown = [k for k in options if k not in allowed]
    if unknown:
        valid = ", ".join(allowed) if allowed else "none"
        raise ValueError(f"options: unknown key(s) {unknown!r}; valid keys: {valid}")
    return options


class MarketSingleAgentEnv(gymnasium.Env):
    """One learning generator (``agent``) in a market whose other generators
    follow ``opponents`` (see the module docstring).

    Observation: the learner's features, ``Box`` with true per-feature bounds.
    Action: ``Box([0, -10], [1, 10])``, ``[withheld share, price action]``,
    clipped to the box in float64 (NaN/inf raise ValueError). Reward: the
    learner's reward as a Python float. Episodes last T hours and end with
    ``terminated=True``. ``reset(seed=s)`` seeds the market like
    ``MarketEnv(seed=s)`` and the opponents' RNG with key ``s ^ salt``.
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
        seed = check_seed(seed)
        self.market = MarketEnv(scenario, observer=observer, seed=seed, tie_rule=tie_rule)
        n = self.market.num_agents
        scenario = self.market.scenario
        self.agent = _agent_index(agent, scenario)
        segments = scenario.segments
        self.plan = _OpponentPlan(
            opponents, n, self.agent, scenario.max_bid_delta, None, segments, scenario
        )
        if seed is not None:
            self.plan.reseed(seed)
        low, high = self.market.observation_bounds()
        self.observation_space = spaces.Box(low[self.agent], high[self.agent], dtype=np.float32)
        self.action_space = action_space(segments, self.agent >= scenario.n, scenario.price_action)
        self.render_mode = render_mode
        self._obs: np.ndarray | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        # Check everything first: a failed reset reseeds nothing.
        seed = check_seed(seed)
        _check_options(options, ())
        obs, info = self.market.reset(seed=seed)
        super().reset(seed=seed)
        if seed is not None:
            self.plan.reseed(seed)
        self._obs = obs
        return obs[self.agent], info

    def step(self, action):
        # The core's single-learner step: the built-in opponents fill the rows
        # that no Python callable chooses; a failed step changes nothing.
        given = None
        if self.plan.batched is not None or self.plan.per_agent:
            check_steppable(self.market.t, self.market.horizon)
            given = self.plan.python_rows(self._obs)
        rows, mask = given if given is not None else (None, None)
        out = self.market.step_single(action, self.agent, self.plan.rust, rows, mask)
        self._obs = None if given is None else self._full_obs()
        if self.render_mode == "human":
            self.render()
        return out

    def _full_obs(self) -> np.ndarray:
        """Every agent's observation now (for Python callables)."""
        return self.market.observe()

    def render(self):
        if self.render_mode is None:
            return None
        from powermarket import plot

        return plot.render(self.market, self.render_mode)


# The per-step info outputs of the core's table (the final_* pair is handled apart).
_INFO_OUTPUTS = tuple(
    (key, width)
    for _, _, width, key in VEC_OUTPUTS
    if key is not None and width != "obs" and key != "_final_obs"
)


class MarketVectorEnv(VectorEnv):
    """``num_envs`` single-learner markets stepped in one native call.

    Same semantics as :class:`MarketSingleAgentEnv`, batched on
    :class:`powermarket.VecMarketEnv`: same-step autoreset
    (``metadata["autoreset_mode"] == AutoresetMode.SAME_STEP``); the last
    observation of a finished market is in ``info["final_obs"]`` where
    ``info["_final_obs"]`` is true.

    Seeding: ``seed=s`` (constructor or ``reset``) gives market i the key s
    and its own ChaCha stream i (market 0 equals the single env seeded s);
    ``reset(seed=[s_0, ..., s_{M-1}])`` gives market i key s_i, stream 0, so it
    equals the single env seeded s_i (a None entry: that market is reset
    without reseeding), as Gymnasium's sync mode honours per-env seeds. The
    opponents follow the same rule. ``options={"reset_mask": m}`` resets only
    the markets where ``m`` (M,) is non-zero. The env pickles and deep-copies
    mid-episode, RNGs included.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(
        self,
        num_envs: int = 1,
        scenario: Any = None,
        agent: int | str = 0,
        opponents: Any = "truthful",
        observer: str = "simple",
        seed: int | list[int] | None = None,
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
        seed = check_seeds(seed, self.vec.num_envs)
        n = self.vec.num_agents
        self.num_envs = self.vec.num_envs
        scenario = self.vec.scenario
        self.agent = _agent_index(agent, scenario)
        segments = scenario.segments
        self.plan = _OpponentPlan(
            opponents, n, self.agent, scenario.max_bid_delta, self.num_envs, segments, scenario
        )
        # The opponents' last prices: (M,), or (M, Z) node prices on a
        # networked market (each rule sees its own node's).
        self._networked = scenario.num_nodes > 1 or scenario.network != "copper"
        z = (scenario.num_nodes,) if self._networked else ()
        self._last_prices = np.full((self.num_envs, *z), np.nan)
        if seed is not None:
            self.plan.reseed(seed)
        low, high = self.vec.observation_bounds()
        self.single_observation_space = spaces.Box(
            low[self.agent], high[self.agent], dtype=np.float32
        )
        self.single_action_space = action_space(
            segments, self.agent >= scenario.n, scenario.price_action
        )
        self.observation_space = gymnasium.vector.utils.batch_space(
            self.single_observation_space, self.num_envs
        )
        self.action_space = gymnasium.vector.utils.batch_space(
            self.single_action_space, self.num_envs
        )
        self.render_mode = None
        self._obs: np.ndarray | None = None
        self._actions = np.zeros((self.num_envs, n, *action_shape(segments)), dtype=np.float32)

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict | None = None):
        # Check everything before any RNG is touched: a failed reset changes nothing.
        m = self.num_envs
        seed = check_seeds(seed, m)
        opts = _check_options(options, _RESET_OPTIONS)
        mask = check_mask(opts.get("reset_mask"), m, "options['reset_mask']")
        if isinstance(seed, list):
            given = np.array([s is not None for s in seed])
            reseeded = given if mask is None else given & mask
            plain = ~given if mask is None else ~given & mask
            keys = [0 if s is None else s for s in seed]
            # Markets with a seed are reset with it; the others without one.
            if reseeded.any():
                obs, _ = self.vec.reset(seed=keys, mask=reseeded)
            if plain.any():
                obs, _ = self.vec.reset(mask=plain)
            if not (reseeded.any() or plain.any()):
                obs, _ = self.vec.reset(mask=np.zeros(m, dtype=bool))
        else:
            obs, _ = self.vec.reset(seed=seed, mask=mask)
            if seed is not None:
                self._np_random, self._np_random_seed = gymnasium.utils.seeding.np_random(seed)
        if seed is not None:
            self.plan.reseed(seed, mask)
        self._last_prices[slice(None) if mask is None else mask] = np.nan
        self._obs = obs
        return obs[:, self.agent].copy(), {}

    def step(self, actions):
        if self._obs is None:
            check_steppable(None, self.vec.horizon)

        def where(idx: tuple[int, ...]) -> str:
            return f"{agent_name(self.agent, self.plan.generators)} in market {idx[0]}"

        a = actions_f32(actions, (self.num_envs, *self.plan.block), "actions", where)
        saved = self.plan.checkpoint()
        try:
            self.plan.fill(self._actions, self._obs, self._last_prices)
            self._actions[:, self.agent] = a
            obs, rewards, terminated, truncated, info = self.vec.step(self._actions)
        except BaseException:
            self.plan.rollback(saved)
            raise
        self._obs = obs
        # A market that ended has started its next episode: no last price.
        if self._networked:
            self._last_prices = np.where(terminated[:, None], np.nan, info["node_prices"])
        else:
            self._last_prices = np.where(terminated, np.nan, info["price"])
        every = np.ones(self.num_envs, dtype=bool)
        out_info: dict[str, Any] = {}
        for key, width in _INFO_OUTPUTS:
            if key not in info:  # the storage outputs, in a market without storage
                continue
            out_info[key] = (info[key][:, self.agent] if width == "agent" else info[key]).copy()
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
