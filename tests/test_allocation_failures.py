"""Allocations sized by user input fail with MemoryError naming the argument,
never an abort of the process.

Each case runs in a child process whose address space is capped (RLIMIT_AS),
so that the allocation fails on any machine, however much memory it has, and
an abort (the bug) kills the child instead of the test run.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

resource = pytest.importorskip("resource")

LIMIT = 3 << 30  # 3 GiB of address space for the child


def run_capped(code: str) -> subprocess.CompletedProcess:
    prelude = textwrap.dedent(
        f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, ({LIMIT}, {LIMIT}))
        """
    )
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("env", ["MarketEnv", "VecMarketEnv"])
def test_market_env_too_large_for_memory_raises_memory_error(env) -> None:
    # 4e6 generators x 1024 offer blocks: 32 GiB per offer buffer, far
    # beyond the child's 3 GiB; the scenario itself is ~100 MB.
    proc = run_capped(
        f"""
        import powermarket as pm
        s = pm.Scenario.default(n=4_000_000, t=2).replace(segments=1024)
        try:
            pm.{env}(s, {"num_envs=1, " if env == "VecMarketEnv" else ""}seed=0)
        except MemoryError as e:
            print("MemoryError:", e)
        else:
            print("no error")
        """
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    out = proc.stdout
    assert out.startswith("MemoryError:"), out
    assert "scenario" in out or "num_envs" in out, out


def test_market_env_that_fits_still_steps_after_a_failed_one() -> None:
    proc = run_capped(
        """
        import numpy as np
        import powermarket as pm
        big = pm.Scenario.default(n=4_000_000, t=2).replace(segments=1024)
        try:
            pm.MarketEnv(big, seed=0)
        except MemoryError:
            pass
        s = pm.Scenario.default().replace(segments=3)
        env = pm.MarketEnv(s, seed=0)
        env.reset(seed=0)
        _, r, *_ = env.step(np.zeros((s.n, 3, 2), np.float32))
        print(bool(np.isfinite(r).all()))
        """
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert proc.stdout.strip() == "True"


@pytest.mark.parametrize(("m", "n", "num_threads"), [(1, 60_000, 1), (2, 30_000, 2)])
def test_vec_env_whose_step_memory_does_not_fit_raises_before_stepping(m, n, num_threads) -> None:
    # m markets of n generators x 1000 blocks: the actions (0.5 GB, and the
    # env's copy) fit in the child's 3 GiB, the offer workspace of the
    # threads that step them (about 1 GB each, and more) does not.
    # The step must raise MemoryError with no market stepped, not abort.
    proc = run_capped(
        f"""
        import numpy as np
        import powermarket as pm
        s = pm.Scenario.default(n={n}, t=2).replace(segments=1000, demand_noise=0.0)
        v = pm.VecMarketEnv(s, num_envs={m}, seed=0, num_threads={num_threads})
        v.reset()
        a = np.zeros(({m}, s.n, 1000, 2), np.float32)
        try:
            v.step(a)
        except MemoryError as e:
            print("MemoryError:", e, [int(h) for h in v.hours])
        else:
            print("no error")
        """
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    out = proc.stdout.strip()
    assert out.startswith("MemoryError:") and "scenario (agents x segments)" in out, out
    assert out.endswith(str([0] * m)), out
