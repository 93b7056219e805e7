"""Argument checks shared by the Python fronts.

The action and seed checks are the core's (``_core.check_actions``,
``_core.check_seed``), so every front gives the same message and exception
for the same bad input; this module adds what only Python fronts take (seed
lists with None entries, reset masks). Every check runs before any state
(RNG, buffers, pending actions) is touched, so that a call that fails
changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from powermarket._core import check_actions, check_seed

_REAL_KINDS = "biuf"


def check_seeds(seed: Any, m: int, arg: str = "seed") -> int | list[int | None] | None:
    """One seed for the batch, or a sequence of ``m`` seeds (entries may be None)."""
    if seed is None or isinstance(seed, (bool, np.bool_, int, np.integer)):
        return check_seed(seed, arg)
    if isinstance(seed, (str, bytes)) or not isinstance(seed, (Sequence, np.ndarray)):
        raise ValueError(
            f"{arg} must be None, an int in [0, 2**64) or a list of {m} such ints, got {seed!r}"
        )
    items = list(seed)
    if len(items) != m:
        raise ValueError(
            f"{arg}: a list of seeds needs {m} entries (one per env), got {len(items)}"
        )
    return [check_seed(s, f"{arg}[{i}]") for i, s in enumerate(items)]


def real_array(x: Any, arg: str) -> np.ndarray:
    """``x`` as an array of real numbers (bool, int or float); TypeError otherwise."""
    if isinstance(x, np.ma.MaskedArray):
        raise TypeError(f"{arg} must be real numbers, got a masked array")
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{arg} must be real numbers, got {x!r}")
    try:
        a = np.asarray(x)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{arg} must be real numbers, got {x!r}: {e}") from e
    if a.dtype.kind not in _REAL_KINDS:
        raise TypeError(f"{arg} must be real numbers, got dtype {a.dtype} ({_short(x)})")
    return a


def check_mask(mask: Any, m: int, arg: str = "reset_mask") -> np.ndarray | None:
    """A (m,) mask as bool: any non-zero value (NaN included) is true."""
    if mask is None:
        return None
    a = real_array(mask, arg)
    if a.shape != (m,):
        raise ValueError(f"{arg} must have shape ({m},), got {a.shape}")
    return a != 0


def actions_f32(
    x: Any,
    shape: tuple[int, ...],
    arg: str,
    where: Callable[[tuple[int, ...]], str | None] | None = None,
    flatten: bool = False,
) -> np.ndarray:
    """Actions as float32, clipped to the action box in float64 first: the
    core's check (``_core.check_actions``). ``where(index)`` names the agent
    (and market) of a non-finite entry at ``index`` (the last axis, the
    component, is not passed)."""
    return check_actions(x, list(shape), arg, where, flatten)


def _short(x: Any) -> str:
    r = repr(x)
    return r if len(r) <= 80 else r[:77] + "..."
