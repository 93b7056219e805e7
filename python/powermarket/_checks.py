"""Argument checks shared by the Python fronts.

Every check runs before any state (RNG, buffers, pending actions) is touched,
so that a call that fails changes nothing. Messages name the argument, the
agent or market, and the value as it was given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

ACTION_LOW = np.array([0.0, -10.0], dtype=np.float64)
ACTION_HIGH = np.array([1.0, 10.0], dtype=np.float64)
COMPONENTS = ("a0 (withheld share)", "a1 (price action)")
SEED_LIMIT = 2**64
_REAL_KINDS = "biuf"


def check_seed(seed: Any, arg: str = "seed") -> int | None:
    """``None`` or an int in ``[0, 2**64)``; bool is a TypeError, anything else a ValueError."""
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)):
        raise TypeError(f"{arg} must be None or an int in [0, 2**64), got {seed!r} (a bool)")
    if not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < SEED_LIMIT:
        raise ValueError(f"{arg} must be None or an int in [0, 2**64), got {seed!r}")
    return int(seed)


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
    where: Callable[[tuple[int, ...]], str | None],
    flatten: bool = False,
) -> np.ndarray:
    """Actions as float32, clipped to the action box in float64 first.

    ``where(index)`` names the agent (and market) of the entry at ``index``
    (the last axis is the component and is not passed). With ``flatten``, any
    array of the right size is reshaped. NaN and infinities
    are a ValueError reporting the value as given; finite values outside
    the box (1e300 included) are clipped.
    """
    given = real_array(x, arg)
    if flatten and given.size == int(np.prod(shape)):
        given = given.reshape(shape)
    if given.shape != shape:
        raise ValueError(f"{arg} must have shape {shape} ([a0, a1] per agent), got {given.shape}")
    wide = given.astype(np.float64)
    bad = np.argwhere(~np.isfinite(wide))
    if len(bad):
        idx = tuple(int(i) for i in bad[0])
        who = where(idx[:-1])
        raise ValueError(
            f"{arg}{' for ' + who if who else ''}: {COMPONENTS[idx[-1]]} must be finite, "
            f"got {given[idx].item()!r}"
        )
    return np.clip(wide, ACTION_LOW, ACTION_HIGH).astype(np.float32)


def _short(x: Any) -> str:
    r = repr(x)
    return r if len(r) <= 80 else r[:77] + "..."
