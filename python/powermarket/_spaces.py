"""The spaces and names every front shares, built from the core's declarations
(``_core.action_box``, ``_core.STORAGE_ACTION_LOW``/``HIGH``, ``_core.agent_name``)."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from powermarket import _core

ACTION_LOW = np.array(_core.ACTION_LOW, dtype=np.float32)
ACTION_HIGH = np.array(_core.ACTION_HIGH, dtype=np.float32)
STORAGE_ACTION_LOW = np.array(_core.STORAGE_ACTION_LOW, dtype=np.float32)
STORAGE_ACTION_HIGH = np.array(_core.STORAGE_ACTION_HIGH, dtype=np.float32)


def action_bounds(
    price_action: str = "tanh", storage: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)`` of one agent's ``[a0, a1]``: ``a0`` by the agent's kind
    (``[0, 1]``, or ``[-1, 1]`` for a storage unit), ``a1`` by the scenario's
    ``price_action`` (``[-10, 10]`` for ``"tanh"``, ``[-1, 1]`` for ``"linear"``)."""
    low, high = (np.array(b, dtype=np.float32) for b in _core.action_box(price_action))
    if storage:
        low[0], high[0] = STORAGE_ACTION_LOW[0], STORAGE_ACTION_HIGH[0]
    return low, high


def action_shape(segments: int = 1) -> tuple[int, ...]:
    """One agent's action shape: ``(2,)``, or ``(K, 2)`` with K offer blocks."""
    return (2,) if segments == 1 else (segments, 2)


def action_space(
    segments: int = 1, storage: bool = False, price_action: str = "tanh"
) -> spaces.Box:
    """One agent's action box, one row per offer block when ``segments`` K > 1
    (shape ``(K, 2)``): a generator's ``[withheld share, price action]`` in
    ``[0, 1] x [-10, 10]``, or with ``storage`` a storage unit's ``[signed
    power share, price action]`` in ``[-1, 1] x [-10, 10]``; the price action
    lies in ``[-1, 1]`` instead with ``price_action="linear"``."""
    shape = action_shape(segments)
    low, high = action_bounds(price_action, storage)
    return spaces.Box(
        np.broadcast_to(low, shape).copy(),
        np.broadcast_to(high, shape).copy(),
        dtype=np.float32,
    )


def shared_action_space(scenario: _core.Scenario) -> spaces.Box:
    """One box for every agent of ``scenario`` (for the fronts with a single
    action space): a generator's box without storage units; with them, the
    box that holds every kind's actions, ``[-1, 1] x [-10, 10]``, in which a
    generator's ``a0`` is clipped to ``[0, 1]`` by the step."""
    return action_space(scenario.segments, scenario.s > 0, scenario.price_action)


def agent_action_spaces(scenario: _core.Scenario) -> list[spaces.Box]:
    """Each agent's action box, generators then storage units."""
    k, n = scenario.segments, scenario.n
    pa = scenario.price_action
    return [action_space(k, i >= n, pa) for i in range(scenario.num_agents)]


def agent_names(n: int, s: int = 0) -> list[str]:
    """``["gen_0", ..., "gen_{n-1}", "sto_0", ..., "sto_{s-1}"]``."""
    return [_core.agent_name(i, n) for i in range(n + s)]


def check_render_mode(render_mode: str | None, modes: list[str]) -> None:
    """ValueError unless ``render_mode`` is None or one of ``modes``."""
    if render_mode is not None and render_mode not in modes:
        raise ValueError(f"render_mode must be None or one of {modes}, got {render_mode!r}")
