"""The spaces and names every front shares, built from the core's declarations
(``_core.action_box``, ``_core.agent_name``)."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from powermarket import _core

#: The action box of the default price action (``"tanh"``).
ACTION_LOW = np.array(_core.ACTION_LOW, dtype=np.float32)
ACTION_HIGH = np.array(_core.ACTION_HIGH, dtype=np.float32)


def action_bounds(price_action: str = "tanh") -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)`` of one agent's ``[a0, a1]`` under the scenario's
    ``price_action``: ``a1`` in [-10, 10] (``"tanh"``) or [-1, 1] (``"linear"``)."""
    low, high = _core.action_box(price_action)
    return np.array(low, dtype=np.float32), np.array(high, dtype=np.float32)


def action_shape(segments: int = 1) -> tuple[int, ...]:
    """One agent's action shape: ``(2,)``, or ``(K, 2)`` with K offer blocks."""
    return (2,) if segments == 1 else (segments, 2)


def action_space(segments: int = 1, price_action: str = "tanh") -> spaces.Box:
    """The per-agent action box: ``[withheld share, price action]``, one row
    per offer block when ``segments`` K > 1 (shape ``(K, 2)``), with the
    price action's bounds (:func:`action_bounds`)."""
    shape = action_shape(segments)
    low, high = action_bounds(price_action)
    return spaces.Box(
        np.broadcast_to(low, shape).copy(),
        np.broadcast_to(high, shape).copy(),
        dtype=np.float32,
    )


def agent_names(n: int) -> list[str]:
    """``["gen_0", ..., "gen_{n-1}"]``."""
    return [_core.agent_name(i) for i in range(n)]


def check_render_mode(render_mode: str | None, modes: list[str]) -> None:
    """ValueError unless ``render_mode`` is None or one of ``modes``."""
    if render_mode is not None and render_mode not in modes:
        raise ValueError(f"render_mode must be None or one of {modes}, got {render_mode!r}")
