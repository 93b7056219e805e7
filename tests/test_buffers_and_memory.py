"""Output buffers and memory: no Python memory touched while the GIL is released, sizes that
cannot be allocated are errors, tampered buffers are replaced, never written behind the
user's back.

Shared helpers are in conftest.py; the stateful machines in test_stateful.py,
the writer-thread and fork tests in test_concurrency.py.
"""

from __future__ import annotations

import copy
import pickle
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    assert_same_step,
    run_python,
    same,
    step_copy,
    vec_actions,
)

import powermarket as pm

ENV_ID = "powermarket/Market-v0"
ROOT = Path(__file__).resolve().parents[1]


# --- no Python memory used while the GIL is released ------------------------------------


def test_actions_aliasing_the_cleared_buffer_act_like_a_copy():
    # cleared (M, N) float64 has the bytes of (M, N, 2) float32 actions.
    m, n = 4, 3
    sc = pm.Scenario.default(n=n, t=6).replace(demand_noise=0.0)
    env, twin = pm.VecMarketEnv(sc, m, seed=3), pm.VecMarketEnv(sc, m, seed=3)
    env.reset()
    twin.reset()
    rng = np.random.default_rng(0)
    first = vec_actions(rng, m, n)
    _, _, _, _, info = env.step(first)
    step_copy(twin, first)
    for _ in range(8):
        alias = info["cleared"].view(np.float32).reshape(m, n, 2)
        given = alias.copy()
        if not np.isfinite(given).all():
            break
        expected = step_copy(twin, given)
        out = env.step(alias)
        info = out[4]
        assert_same_step(
            (out[0], out[1], out[2], out[3], {k: np.array(v) for k, v in info.items()}), expected
        )


# --- sizes that cannot be allocated are errors, not aborts ------------------------------


@pytest.mark.parametrize(
    "code",
    [
        "pm.MarketEnv(pm.Scenario.default(n=10**5, t=10**5))",
        "pm.VecMarketEnv(pm.Scenario.default(n=60000), observer='basic')",
        "pm.VecMarketEnv(pm.Scenario.default(n=5), num_envs=2**45)",
    ],
)
def test_huge_sizes_raise_instead_of_aborting(code):
    proc = run_python(
        "import powermarket as pm\n"
        f"try:\n    {code}\nexcept (MemoryError, ValueError) as e:\n"
        "    print('RAISED', type(e).__name__, e)\n"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "RAISED" in proc.stdout, proc.stdout


# --- tampered output buffers: reallocated, never a panic --------------------------------


def _tamper(kind: str, arr: np.ndarray) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if kind == "strides":
            arr.strides = (0,) * arr.ndim
        elif kind == "writeable":
            arr.flags.writeable = False
        elif kind == "resize":
            if not arr.flags.owndata:
                pytest.skip("the returned buffer is a view: NumPy cannot resize it")
            arr.resize((1,), refcheck=False)
        elif kind == "dtype":
            arr.dtype = np.uint8
        elif kind == "shape":
            if arr.ndim == 1:
                pytest.skip("a 1-D buffer reshaped to its own shape is not tampered with")
            arr.shape = (arr.size,)


@pytest.mark.parametrize("kind", ["strides", "writeable", "resize", "dtype", "shape"])
@pytest.mark.parametrize("which", ["obs", "rewards", "terminated", "price", "cleared"])
def test_tampered_buffers_are_replaced_and_left_alone(kind, which):
    m, n = 3, 2
    sc = pm.Scenario.default(n=n, t=3)
    env, twin = pm.VecMarketEnv(sc, m, seed=5), pm.VecMarketEnv(sc, m, seed=5)
    env.reset()
    twin.reset()
    rng = np.random.default_rng(1)
    a = vec_actions(rng, m, n)
    out = env.step(a)
    step_copy(twin, a)
    pick = {"obs": out[0], "rewards": out[1], "terminated": out[2]}
    target = pick.get(which, out[4].get(which))
    _tamper(kind, target)
    before = (target.shape, target.strides, target.dtype, target.flags.writeable)
    snapshot = target.tobytes() if target.strides and all(target.strides) else None
    for _ in range(5):
        a = vec_actions(rng, m, n)
        got = env.step(a)
        want = step_copy(twin, a)
        assert_same_step(
            (got[0], got[1], got[2], got[3], {k: np.array(v) for k, v in got[4].items()}), want
        )
    # The user's array is left as the user made it.
    assert (target.shape, target.strides, target.dtype, target.flags.writeable) == before
    if snapshot is not None:
        assert target.tobytes() == snapshot


def test_writeable_false_is_not_overridden():
    env = pm.VecMarketEnv(pm.Scenario.default(n=2, t=3), 2, seed=0)
    obs, _ = env.reset()
    obs.flags.writeable = False
    kept = obs.copy()
    env.step(np.zeros((2, 2, 2), np.float32))
    assert not obs.flags.writeable
    assert same(obs, kept)


def test_copy_or_pickle_during_a_step_is_a_runtime_error_not_a_panic():

    v = pm.VecMarketEnv(pm.Scenario.default(n=50, t=24), num_envs=20000, seed=0, num_threads=1)
    v.reset()
    a = np.zeros((20000, 50, 2), np.float32)
    errors: list[BaseException] = []
    t = threading.Thread(target=v.step, args=(a,))
    t.start()
    while t.is_alive():
        for op in (pickle.dumps, copy.copy, copy.deepcopy, lambda e: e.hours):
            try:
                op(v)
            except BaseException as e:  # noqa: BLE001 - a PanicException is a BaseException
                errors.append(e)
    t.join()
    assert all(type(e) is RuntimeError and "thread" in str(e) for e in errors), errors
