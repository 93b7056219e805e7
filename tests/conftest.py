"""Helpers shared by the tests (imported as ``from conftest import ...``).

- :func:`load_example`: an example script of ``examples/`` as a module;
- :func:`random_actions`: (N, 2) float32 actions from one of three mixes;
- ``PER_OFFER_RECORD_KEYS``: the episode-record arrays with one value per offer.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
# The episode-record arrays that hold one value per offer: (T, N), or (T, N, K).
PER_OFFER_RECORD_KEYS = ("bids", "offered", "cleared", "paid")


def load_example(name: str):
    """``examples/<name>.py`` imported as a module (registered in sys.modules,
    so that pickling and worker processes can find what it defines)."""
    spec = importlib.util.spec_from_file_location(f"pm_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def random_actions(rng: np.random.Generator, n: int, mix: str = "wide") -> np.ndarray:
    """(n, 2) float32 actions ``[a0, a1]``:

    - ``"box"``: inside the box, a1 in [-3, 3];
    - ``"wide"``: partly outside the box (they must be clipped);
    - ``"edges"``: the box interior, its edges, exact zeros and far-out values.
    """
    if mix == "box":
        a0, a1 = rng.uniform(0.0, 1.0, n), rng.uniform(-3.0, 3.0, n)
    elif mix == "wide":
        a0, a1 = rng.uniform(-0.3, 1.3, n), rng.uniform(-12.0, 12.0, n)
    elif mix == "edges":
        kind0 = rng.integers(0, 5, n)
        a0 = np.select(
            [kind0 == 0, kind0 == 1, kind0 == 2, kind0 == 3],
            [rng.uniform(0, 1, n), rng.uniform(-0.5, 1.5, n), np.zeros(n), np.ones(n)],
            default=rng.choice([0.25, 0.5, -0.3, 1.7], n),
        )
        kind1 = rng.integers(0, 5, n)
        a1 = np.select(
            [kind1 == 0, kind1 == 1, kind1 == 2, kind1 == 3],
            [
                rng.uniform(-3, 3, n),
                rng.uniform(-15, 15, n),
                np.zeros(n),
                rng.choice([-10, 10], n),
            ],
            default=rng.choice([-12.0, 12.0, 0.5, -0.5, 1e3], n),
        )
    else:
        raise ValueError(f"mix must be 'box', 'wide' or 'edges', got {mix!r}")
    return np.stack([a0, a1], axis=1).astype(np.float32)
