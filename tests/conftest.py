"""Helpers shared by the tests (imported as ``from conftest import ...``).

- :func:`load_example`: an example script of ``examples/`` as a module;
- :func:`random_actions`: (N, 2) float32 actions from one of three mixes;
- ``PER_OFFER_RECORD_KEYS``: the episode-record arrays with one value per offer.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import gymnasium
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ENV_ID = "powermarket/Market-v0"
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


def random_actions(
    rng: np.random.Generator, n: int, mix: str = "wide", a1_high: float = 10.0
) -> np.ndarray:
    """(n, 2) float32 actions ``[a0, a1]`` for a price-action box
    ``[-a1_high, a1_high]`` (10 for ``"tanh"``, 1 for ``"linear"``; the a1
    values below are for 10 and scale with it):

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
    if a1_high != 10.0:
        a1 = a1 * (a1_high / 10.0)
    return np.stack([a0, a1], axis=1).astype(np.float32)


def same(a, b) -> bool:
    """Bit-identical arrays: same dtype, shape and bytes."""
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def step_copy(env, actions):
    """A batched step's result with every array copied (the env reuses its buffers)."""
    obs, rewards, terminated, truncated, info = env.step(actions, copy=True)
    return obs, rewards, terminated, truncated, {k: np.array(v) for k, v in info.items()}


def assert_same_step(x, y) -> None:
    """Two batched steps' results are bit-identical (``final_obs`` where it is set)."""
    for a, b in zip(x[:4], y[:4], strict=True):
        assert same(a, b)
    assert x[4].keys() == y[4].keys()
    for key in x[4]:
        if key == "final_obs":
            m = x[4]["_final_obs"]
            assert same(x[4][key][m], y[4][key][m])
        else:
            assert same(x[4][key], y[4][key])


def vec_actions(rng, m: int, n: int) -> np.ndarray:
    """(m, n, 2) float32 actions inside the box."""
    return np.stack([rng.uniform(0, 1, (m, n)), rng.uniform(-3, 3, (m, n))], axis=-1).astype(
        np.float32
    )


def run_python(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``code`` run by a fresh Python process (for aborts and fork)."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout
    )


def gym_vector(num_envs=3, **kw):
    """The Gymnasium vector env (random opponents unless given), unwrapped."""
    kw.setdefault("opponents", "random")
    return gymnasium.make_vec(
        ENV_ID, num_envs=num_envs, vectorization_mode="vector_entry_point", **kw
    ).unwrapped


def vector_trace(env, steps=30):
    """Observations, rewards and prices of ``steps`` fixed-action steps of a vector env."""
    out = []
    for h in range(steps):
        acts = np.full((env.num_envs, 2), [0.2, 0.1 * (h % 7)], np.float32)
        obs, rew, *_, info = env.step(acts)
        out.append((obs.copy(), rew.copy(), info["price"].copy()))
    return out


def assert_same_traces(a, b) -> None:
    """Two :func:`vector_trace` results are bit-identical."""
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x, y, strict=True):
            assert same(u, v)


def episode_demands(env, m):
    """The realised demand of each of a batch's ``m`` markets."""
    return [env.episode_demand(i) for i in range(m)]
