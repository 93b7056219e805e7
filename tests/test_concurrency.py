"""Concurrency and fork: no hang, no NaN, no dead thread pool (issue 8, items 1 and 12).

Every scenario runs in a child Python process under a timeout (the watchdog):
a hang fails the test instead of blocking the suite, and a crash shows up as a
non-zero exit code. Each child prints ``OK`` only after its own checks pass.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

WATCHDOG_S = 60


def run_child(code: str, timeout: float = WATCHDOG_S) -> str:
    try:
        proc = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"hang: the child did not finish within {timeout} s (watchdog)")
    assert proc.returncode == 0, (
        f"rc={proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    )
    assert proc.stdout.strip().endswith("OK"), proc.stdout[-2000:]
    return proc.stdout


@pytest.mark.parametrize("tie_rule", ["pro_rata", "index"])
def test_writer_thread_scribbling_actions_during_step(tie_rule):
    run_child(
        f"""
        import sys, threading, time
        import numpy as np
        import powermarket as pm

        sys.setswitchinterval(1e-6)
        m, n = 2048, 5
        env = pm.VecMarketEnv(pm.Scenario.default(n=n), m, seed=0, num_threads=2,
                              tie_rule={tie_rule!r})
        env.reset()
        actions = np.zeros((m, n, 2), np.float32)
        stop = threading.Event()
        rng = np.random.default_rng(0)
        garbage = rng.standard_normal((m, n, 2)).astype(np.float32) * 1e30
        garbage[::7, :, 1] = np.nan
        garbage[::11, :, 0] = np.inf

        def scribble():
            k = 0
            while not stop.is_set():
                if k % 3 == 0:
                    actions[...] = np.nan
                elif k % 3 == 1:
                    np.copyto(actions, garbage)
                else:
                    actions[...] = 0.25
                k += 1

        writer = threading.Thread(target=scribble)
        writer.start()
        ok = rejected = 0
        deadline = time.monotonic() + 8
        try:
            while time.monotonic() < deadline:
                try:
                    obs, rewards, term, trunc, info = env.step(actions)
                except ValueError as e:
                    assert "finite" in str(e), e
                    rejected += 1
                    continue
                assert np.isfinite(rewards).all() and np.isfinite(obs).all()
                assert np.isfinite(info["price"]).all() and np.isfinite(info["cleared"]).all()
                ok += 1
        finally:
            stop.set()
            writer.join()
        assert ok > 0 and rejected > 0, (ok, rejected)
        print(ok, rejected)
        print("OK")
        """
    )


@pytest.mark.parametrize("tie_rule", ["pro_rata", "index"])
def test_writer_thread_scribbling_inputs_during_clear_batch(tie_rule):
    run_child(
        f"""
        import sys, threading, time
        import numpy as np
        import powermarket as pm

        sys.setswitchinterval(1e-6)
        m, n = 4096, 40
        rng = np.random.default_rng(1)
        bids = rng.uniform(0, 100, (m, n))
        qty = rng.uniform(0, 5, (m, n))
        demand = np.full(m, 90.0)
        clean = (bids.copy(), qty.copy())
        stop = threading.Event()

        def scribble():
            k = 0
            while not stop.is_set():
                if k % 2:
                    bids[::3] = np.nan
                    qty[1::5] = -1.0
                    demand[::2] = np.inf
                else:
                    bids[...] = clean[0]
                    qty[...] = clean[1]
                    demand[...] = 90.0
                k += 1

        writer = threading.Thread(target=scribble)
        writer.start()
        ok = rejected = 0
        deadline = time.monotonic() + 8
        try:
            while time.monotonic() < deadline:
                try:
                    prices, cleared = pm.clear_batch(bids, qty, demand, tie_rule={tie_rule!r})
                except ValueError:
                    rejected += 1
                    continue
                assert np.isfinite(prices).all() and np.isfinite(cleared).all()
                assert (cleared >= 0).all()
                ok += 1
        finally:
            stop.set()
            writer.join()
        assert ok + rejected > 0
        print(ok, rejected)
        print("OK")
        """
    )


def test_fork_after_stepping_child_steps_within_seconds():
    run_child(
        """
        import os, select, time
        import numpy as np
        import powermarket as pm

        m, n = 4096, 5
        env = pm.VecMarketEnv(pm.Scenario.default(n=n), m, seed=3, num_threads=2)
        env.reset()
        acts = np.full((m, n, 2), 0.3, np.float32)
        for _ in range(3):
            env.step(acts)  # the shared pool is running before the fork
        big = np.ones((8192, 8))
        pm.clear_batch(big, big, np.full(8192, 4.0))
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                out = env.step(acts, copy=True)
                prices, _ = pm.clear_batch(big, big, np.full(8192, 4.0))
                fresh = pm.VecMarketEnv(pm.Scenario.default(n=n), m, seed=3, num_threads=2)
                fresh.reset()
                fresh.step(acts)
                os.write(write, out[1].tobytes() + prices.tobytes())
                os._exit(0)
            except BaseException:
                os._exit(1)
        os.close(write)
        ready, _, _ = select.select([read], [], [], 30)
        if not ready:
            os.kill(pid, 9)
            raise SystemExit("the forked child did not step within 30 s")
        data = b""
        while chunk := os.read(read, 1 << 16):
            data += chunk
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        mine = env.step(acts, copy=True)
        prices, _ = pm.clear_batch(big, big, np.full(8192, 4.0))
        assert data == mine[1].tobytes() + prices.tobytes()
        print("OK")
        """
    )


def test_async_vector_env_with_fork_context():
    run_child(
        """
        import gymnasium
        import numpy as np
        import powermarket as pm

        # Use the shared pool in the parent first: the children are forked after.
        v = pm.VecMarketEnv(pm.Scenario.default(n=5), 2048, seed=0, num_threads=2)
        v.reset()
        v.step(np.zeros((2048, 5, 2), np.float32))

        def maker(i):
            return lambda: gymnasium.make("powermarket/Market-v0", opponents="random", seed=i)

        fns = [maker(i) for i in range(3)]
        env = gymnasium.vector.AsyncVectorEnv(fns, context="fork")
        ref = gymnasium.vector.SyncVectorEnv(fns)
        try:
            env.reset_async(seed=[4, 5, 6])
            obs, _ = env.reset_wait(timeout=30)
            robs, _ = ref.reset(seed=[4, 5, 6])
            assert np.array_equal(obs, robs)
            rng = np.random.default_rng(0)
            for _ in range(30):
                a = rng.uniform([0, -5], [1, 5], (3, 2)).astype(np.float32)
                env.step_async(a)
                got = env.step_wait(timeout=30)
                want = ref.step(a)
                for x, y in zip(got[:4], want[:4]):
                    assert np.array_equal(x, y)
        finally:
            env.close(terminate=True)
            ref.close()
        print("OK")
        """
    )
