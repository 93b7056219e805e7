"""Helpers shared by the benchmark scripts: timing and table printing."""

from __future__ import annotations

import gc
import os
import platform
import statistics
import time
import timeit
from collections.abc import Callable


def machine() -> str:
    """One line naming this machine: CPU model, cores, Python."""
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def per_call(fn: Callable[[], object], *, target_s: float = 0.2, repeat: int = 7) -> float:
    """Median seconds per call of ``fn`` over ``repeat`` runs of ~``target_s`` each."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    one = timer.timeit(number) / number
    number = max(1, int(target_s / max(one, 1e-9)))
    return statistics.median(t / number for t in timer.repeat(repeat=repeat, number=number))


def table(headers: list[str], rows: list[list[object]]) -> str:
    """A GitHub-flavoured Markdown table."""
    cells = [[str(c) for c in r] for r in rows]
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---:" for _ in headers) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in cells]
    return "\n".join(out)


def timed(fn: Callable[[], object], reps: int) -> float:
    """Seconds for ``reps`` calls of ``fn`` with the garbage collector off."""
    was = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        return time.perf_counter() - t0
    finally:
        if was:
            gc.enable()


def calibrate(fn: Callable[[], object], target_s: float) -> int:
    """Calls of ``fn`` per timed block so that a block takes about ``target_s``."""
    fn()
    k = 1
    while True:
        dt = timed(fn, k)
        if dt > min(0.02, target_s) or k >= 1 << 20:
            return max(1, round(k * target_s / dt))
        k *= 4


def check_vec_against_market_env(s, acts) -> None:
    """Market 0 of a ``VecMarketEnv`` batch equals ``MarketEnv`` with the same
    seed, bit for bit, over the first ``s.t`` of the (M, ...) actions
    ``acts``: rewards, price, average paid price, (with storage) the
    state of charge and (on a network) the node prices and flows. A
    benchmark runs it before timing, so that a wrong result cannot be fast."""
    import numpy as np

    import powermarket as pm

    vec = pm.VecMarketEnv(s, num_envs=acts[0].shape[0], seed=3, num_threads=1)
    one = pm.MarketEnv(s, seed=3)
    vec.reset()
    one.reset()
    for a in acts[: s.t]:
        _, r, _, _, info = vec.step(a)
        _, r1, _, _, i1 = one.step(a[0])
        assert np.array_equal(r[0], r1) and info["price"][0] == i1["price"]
        assert info["average_paid"][0] == i1["average_paid"]
        if s.s:
            assert np.array_equal(info["soc"][0], i1["soc"])
        if "node_prices" in i1:
            assert np.array_equal(info["node_prices"][0], i1["node_prices"])
            assert np.array_equal(info["flows"][0], i1["flows"])
