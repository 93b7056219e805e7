"""TorchRL front: :class:`MarketEnv`, an ``EnvBase`` over :class:`powermarket.VecMarketEnv`.

Needs the ``torchrl`` extra (``pip install "powermarket[torchrl]"``). The env is
batched like the Rust core: ``batch_size == [M]`` markets, and the N generators
of a market are one more axis, grouped under ``"agents"`` as in TorchRL's
multi-agent conventions (VMAS, PettingZoo wrappers)::

    from powermarket.torchrl import MarketEnv

    env = MarketEnv(num_envs=4096, seed=0)
    data = env.rollout(24)                      # random actions, batch [4096, 24]
    data["next", "agents", "reward"].shape      # [4096, 24, 5, 1]

Keys (M markets, N generators, D observation features):

- ``("agents", "observation")`` [M, N, D] float32, bounded by the observer's
  true per-feature bounds;
- ``("agents", "action")`` [M, N, 2] (or [M, N, K, 2] with ``segments``
  K > 1) float32 in ``[0, 1] x [-10, 10]`` (withheld share, price action;
  the core clips to that box);
- ``("agents", "reward")`` [M, N, 1] float32;
- ``"done"``, ``"terminated"``, ``"truncated"`` [M, 1] bool: a market's
  generators end their episode together, after T hours.

**Storage units.** In a scenario with S storage units the agents form two
groups, as TorchRL's multi-agent conventions do for agents of different
specs: ``"agents"`` holds the N generators, exactly as above, and
``"storage"`` the S units, with ``("storage", "observation")`` [M, S, D],
``("storage", "action")`` [M, S, 2] (or [M, S, K, 2]) in ``[-1, 1] x [-10,
10]`` (signed power share, price action) and ``("storage", "reward")`` [M, S,
1]. ``group_map`` lists both, so a shared generator policy and a storage
policy train side by side.

**Episode ends.** ``VecMarketEnv`` resets a market in the same step in which
it ends. TorchRL instead expects an env to stop at the end of an episode and
to be reset through ``"_reset"``. This env presents the TorchRL convention on
top of the core's: the step that ends a market returns its *last*
observation (``info["final_obs"]`` of the core) with ``done`` set, and keeps
the first observation of the next episode, which the core has already drawn.
A later ``reset`` of that market (``"_reset"`` true, as
``step_and_maybe_reset``, ``rollout`` and the collectors do) hands that
observation over without calling the core again, so the markets' random
streams, and therefore the episodes, are exactly those of a ``VecMarketEnv``
stepped with the same seed and actions. Stepping while a market is done and
not yet reset raises ``RuntimeError`` and changes nothing.

**Seeding.** Market ``i`` uses the run's ``seed`` as ``VecMarketEnv`` does.
``set_seed(s)`` takes effect at the next ``reset``, which then reseeds the
markets it resets (as ``VecMarketEnv.reset(seed=s)``), so
``set_seed(s); reset()`` gives the same episodes as ``VecMarketEnv(seed=s)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Bounded, Categorical, Composite, Unbounded
from torchrl.envs import EnvBase

from powermarket._core import VecMarketEnv, check_seed, check_steppable
from powermarket._spaces import agent_action_spaces, agent_names

__all__ = ["MarketEnv"]

_DONE_KEYS = ("done", "terminated", "truncated")


def _device_arg(device: Any) -> torch.device:
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must name a torch device, got {device!r}") from err


def _action_of(tensordict: TensorDictBase, group: str = "agents") -> torch.Tensor:
    """The ``(group, "action")`` tensor of a step's input, or a ValueError
    saying what is missing (not an error from inside TensorDict or TorchRL)."""
    try:
        action = tensordict.get((group, "action"), None)
    except (KeyError, TypeError, AttributeError):
        action = None
    if not isinstance(action, torch.Tensor):
        got = "nothing" if action is None else type(action).__name__
        keys = sorted(str(k) for k in tensordict.keys(include_nested=True, leaves_only=True))
        raise ValueError(
            f"step: the tensordict needs the actions as a tensor at ('{group}', 'action') "
            f"(shape [num_envs, agents of the group, 2], or [..., K, 2] with segments), got "
            f"{got}; its entries are: {', '.join(keys) if keys else 'none'} "
            "(env.rand_action(td) or a policy writes the actions)"
        )
    return action


class MarketEnv(EnvBase):
    """M markets of one scenario as one TorchRL env with ``batch_size [M]``.

    Constructed like :class:`powermarket.VecMarketEnv` (``scenario``,
    ``num_envs``, ``observer``, ``seed``, ``num_threads``, ``tie_rule``) plus
    the torch ``device`` of the data (the markets themselves always run on
    the CPU, in the Rust core). See the module docstring for the keys and for
    how episode ends and seeds map onto TorchRL's conventions.
    """

    def __init__(
        self,
        scenario: Any = None,
        num_envs: int = 1,
        observer: str = "simple",
        seed: int | None = None,
        num_threads: int | None = None,
        tie_rule: str = "pro_rata",
        device: Any = "cpu",
    ) -> None:
        device = _device_arg(device)
        vec = VecMarketEnv(
            scenario,
            num_envs=num_envs,
            observer=observer,
            seed=seed,
            num_threads=num_threads,
            tie_rule=tie_rule,
        )
        m, n, d = vec.num_envs, vec.num_agents, vec.obs_dim
        super().__init__(device=device, batch_size=torch.Size([m]))
        self._vec = vec
        self._m, self._n, self._d = m, n, d
        self._on_cpu = self.device.type == "cpu"
        # Markets that ended in the last step, were reset by the core in that
        # same step, and wait for TorchRL's reset; ``_next_obs`` holds the
        # first observation of their new episode (rows where pending).
        self._pending = np.zeros(m, dtype=bool)
        self._num_pending = 0
        self._next_obs: torch.Tensor | None = None
        self._seed: int | None = None
        self._started = False
        sc = self._vec.scenario
        self.agent_names = agent_names(sc.n, sc.s)
        # The groups and their agents' columns: the generators, then the
        # storage units (only when there are some).
        self._groups = [("agents", slice(0, sc.n))]
        if sc.s:
            self._groups.append(("storage", slice(sc.n, sc.n + sc.s)))
        self.group_map = {g: self.agent_names[cols] for g, cols in self._groups}
        self._make_specs()

    # -- specs -------------------------------------------------------------

    def _make_specs(self) -> None:
        m, d, dev = self._m, self._d, self.device
        low, high = self._vec.observation_bounds()  # (A, D) each
        # Each agent's box: generators', then storage units' (A, *block).
        boxes = agent_action_spaces(self._vec.scenario)
        box_low = np.stack([b.low for b in boxes])
        box_high = np.stack([b.high for b in boxes])
        self._action_block = boxes[0].shape  # (2,), or (K, 2) with K segments
        self._action_low: dict[str, torch.Tensor] = {}
        self._action_span: dict[str, torch.Tensor] = {}
        obs_specs, action_specs, reward_specs = {}, {}, {}
        for group, cols in self._groups:
            k = cols.stop - cols.start
            shape = (m, k, *self._action_block)
            obs_specs[group] = Composite(
                observation=Bounded(
                    low=torch.as_tensor(low[cols]).expand(m, k, d).clone(),
                    high=torch.as_tensor(high[cols]).expand(m, k, d).clone(),
                    shape=(m, k, d),
                    dtype=torch.float32,
                    device=dev,
                ),
                shape=(m, k),
                device=dev,
            )
            action_specs[group] = Composite(
                action=Bounded(
                    low=torch.as_tensor(box_low[cols]).expand(*shape).clone(),
                    high=torch.as_tensor(box_high[cols]).expand(*shape).clone(),
                    shape=shape,
                    dtype=torch.float32,
                    device=dev,
                ),
                shape=(m, k),
                device=dev,
            )
            reward_specs[group] = Composite(
                reward=Unbounded(shape=(m, k, 1), dtype=torch.float32, device=dev),
                shape=(m, k),
                device=dev,
            )
            self._action_low[group] = torch.as_tensor(box_low[cols], device=dev)
            self._action_span[group] = torch.as_tensor(box_high[cols] - box_low[cols], device=dev)
        self.full_observation_spec = Composite(obs_specs, shape=(m,), device=dev)
        self.full_action_spec = Composite(action_specs, shape=(m,), device=dev)
        self.full_reward_spec = Composite(reward_specs, shape=(m,), device=dev)
        self.full_done_spec = Composite(
            {
                key: Categorical(n=2, shape=(m, 1), dtype=torch.bool, device=dev)
                for key in _DONE_KEYS
            },
            shape=(m,),
            device=dev,
        )

    # -- properties ----------------------------------------------------------

    @property
    def num_envs(self) -> int:
        """M, the number of markets (the batch size)."""
        return self._m

    @property
    def num_agents(self) -> int:
        """The number of agents per market: N generators plus S storage units."""
        return self._n

    @property
    def obs_dim(self) -> int:
        """D, the number of observation features per generator."""
        return self._d

    @property
    def horizon(self) -> int:
        """T, hours per episode."""
        return self._vec.horizon

    @property
    def scenario(self):
        """The scenario (a copy)."""
        return self._vec.scenario

    @property
    def observer(self) -> str:
        return self._vec.observer

    @property
    def tie_rule(self) -> str:
        return self._vec.tie_rule

    @property
    def num_threads(self) -> int:
        return self._vec.num_threads

    @property
    def vec_env(self) -> VecMarketEnv:
        """The underlying :class:`powermarket.VecMarketEnv` (for reading, e.g. demand)."""
        return self._vec

    # -- EnvBase hooks ---------------------------------------------------------

    def _set_seed(self, seed: int | None) -> None:
        # Validated here so that a bad seed changes no state; applied by the
        # next reset (see the module docstring).
        self._seed = check_seed(seed)

    def _out(self, t: torch.Tensor) -> torch.Tensor:
        return t if self._on_cpu else t.to(self.device, non_blocking=True)

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs: Any) -> TensorDictBase:
        kwargs.pop("set_state", None)
        if kwargs:
            raise ValueError(
                f"reset: unexpected keyword arguments {sorted(kwargs)} (seed through set_seed)"
            )
        m = self._m
        mask = None
        if tensordict is not None:
            reset = tensordict.get("_reset", None)
            if reset is not None:
                if reset.numel() != m:
                    raise ValueError(
                        f"_reset must hold one flag per market ({m}), got shape "
                        f"{tuple(reset.shape)}"
                    )
                mask = reset.reshape(m).to("cpu", torch.bool).numpy()
        if mask is None:
            mask = np.ones(m, dtype=bool)
        seed = self._seed
        if seed is None and self._started:
            # Pending markets were already reset by the core: hand their
            # first observation over instead of drawing a new episode.
            from_stash = mask & self._pending
            fresh = mask & ~self._pending
        else:
            from_stash = np.zeros(m, dtype=bool)
            fresh = mask
        obs: torch.Tensor | None = None
        if fresh.any():
            view, _ = self._vec.reset(seed=seed, mask=None if fresh.all() else fresh)
            obs = torch.from_numpy(view).clone()
            self._seed = None
            self._started = True
        if from_stash.any():
            assert self._next_obs is not None
            if obs is None:
                obs = self._next_obs
            else:
                rows = torch.from_numpy(from_stash)
                obs[rows] = self._next_obs[rows]
        if obs is None:  # nothing to reset
            obs = torch.zeros((m, self._n, self._d), dtype=torch.float32)
        self._pending &= ~mask
        self._num_pending = int(self._pending.sum())
        if not self._num_pending:
            self._next_obs = None
        done = torch.from_numpy(self._pending.copy()).unsqueeze(-1)
        groups = {
            group: TensorDict(
                {"observation": self._out(obs[:, cols])},
                batch_size=(m, cols.stop - cols.start),
                device=self.device,
            )
            for group, cols in self._groups
        }
        return TensorDict(
            {
                **groups,
                "done": self._out(done),
                "terminated": self._out(done.clone()),
                "truncated": self._out(torch.zeros_like(done)),
            },
            batch_size=(m,),
            device=self.device,
        )

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        partial = tensordict.get("_step", None)
        if partial is not None and not bool(partial.all()):
            raise ValueError("_step: partial steps are not supported; step all markets at once")
        if not self._started:
            check_steppable(None, self._vec.horizon)
        if self._num_pending:
            ended = np.flatnonzero(self._pending)
            raise RuntimeError(
                f"{self._num_pending} market(s) are done (first: {ended[:5].tolist()}): reset "
                "them (the '_reset' entry, or step_and_maybe_reset) before stepping"
            )
        actions = [_action_of(tensordict, group) for group, _ in self._groups]
        action = actions[0] if len(actions) == 1 else torch.cat(actions, dim=1)
        if action.requires_grad:
            action = action.detach()
        if action.device.type != "cpu":
            action = action.cpu()
        # Copies (numpy's, single-threaded): TorchRL keeps every step's data.
        obs, rewards, terminated, truncated, info = self._vec.step(action.numpy())
        ended = info["_final_obs"]
        m = self._m
        if ended.any():
            # Present the last observation of ended markets; keep the first
            # observation of their next episode for the coming reset.
            self._next_obs = torch.from_numpy(obs.copy())
            self._pending = ended.copy()
            self._num_pending = int(self._pending.sum())
            next_obs = np.where(ended[:, None, None], info["final_obs"], obs)
        else:
            next_obs = obs.copy()
        term = torch.from_numpy(terminated[:, None].copy())
        trunc = torch.from_numpy(truncated[:, None].copy())
        one = len(self._groups) == 1

        def part(a: np.ndarray, cols: slice) -> torch.Tensor:
            # One group: the whole (already copied) array; else its columns.
            return torch.from_numpy(a if one else np.ascontiguousarray(a[:, cols]))

        groups = {
            group: TensorDict(
                {
                    "observation": self._out(part(next_obs, cols)),
                    "reward": self._out(torch.from_numpy(rewards[:, cols, None].copy())),
                },
                batch_size=(m, cols.stop - cols.start),
                device=self.device,
            )
            for group, cols in self._groups
        }
        return TensorDict(
            {
                **groups,
                "done": self._out(term | trunc),
                "terminated": self._out(term),
                "truncated": self._out(trunc),
            },
            batch_size=(m,),
            device=self.device,
        )

    def rand_action(self, tensordict: TensorDictBase | None = None) -> TensorDictBase:
        """Uniform random actions in the action box, written to ``("agents", "action")``.

        The same distribution as the spec's ``rand()``, drawn from torch's
        global generator, without materialising per-market bounds each call.
        """
        if tensordict is None:
            tensordict = TensorDict(batch_size=self.batch_size, device=self.device)
        for group, cols in self._groups:
            shape = (self._m, cols.stop - cols.start, *self._action_block)
            low, span = self._action_low[group], self._action_span[group]
            action = torch.rand(shape, device=self.device) * span + low
            tensordict.set((group, "action"), action)
        return tensordict
