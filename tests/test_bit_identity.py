"""The README's example scenarios give bit-identical episodes across the
market-design and realism changes (segments, demand bids, pay-as-bid, caps,
availability, ramps): every new field defaults to today's market.

The digests below were computed with the build of commit f14d7a4 (before those
changes) running this very code, and are pinned here: a change that moves one
bit of an observation, reward, price or record on these markets fails.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

import powermarket as pm

ROOT = Path(__file__).resolve().parents[1]

PINNED = {
    "clear": "28471e033c981f2b",
    "competitive/market/index": "fef66e59d26b9bee",
    "competitive/market/pro_rata": "428a523f03ceba85",
    "competitive/simple/index": "7ef205859fc8ea2c",
    "competitive/simple/pro_rata": "ac09bfaa79be83a0",
    "default/market/index": "1a6c9df5b574200d",
    "default/market/pro_rata": "f939d100e410f0ed",
    "default/simple/index": "21462d4c9d3e52c7",
    "default/simple/pro_rata": "4616491187d107d1",
    "default_n8/market/index": "ce95ed857a31e91d",
    "default_n8/market/pro_rata": "77a22a55377a8c9e",
    "default_n8/simple/index": "700eefe6cc556aa9",
    "default_n8/simple/pro_rata": "2ed744a97f814c8d",
    "four_plants_day/market/index": "bde4ef86f3603d3b",
    "four_plants_day/market/pro_rata": "2cc67ca5d63c6ed7",
    "four_plants_day/simple/index": "89955d64c273f4ed",
    "four_plants_day/simple/pro_rata": "917e588c0d7506e7",
    "renewable_week/market/index": "31999460fc1de3e6",
    "renewable_week/market/pro_rata": "40c3d222efc5111c",
    "renewable_week/simple/index": "34145d550c4bb7f4",
    "renewable_week/simple/pro_rata": "74187e9e3eaeb99c",
    "weekly/market/index": "da2eaa31c9a8a955",
    "weekly/market/pro_rata": "90a4e5fe5391b567",
    "weekly/simple/index": "e80d01ec6edb0302",
    "weekly/simple/pro_rata": "16f9ac31ecb26f7b",
}


def digest(parts):
    h = hashlib.sha256()
    for p in parts:
        a = np.ascontiguousarray(p)
        h.update(str(a.dtype).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def digests() -> dict[str, str]:
    scen = {
        "default": pm.Scenario.default(),
        "default_n8": pm.Scenario.default(n=8, t=12),
        "competitive": pm.Scenario.competitive(),
        "weekly": pm.Scenario.weekly(),
        "four_plants_day": pm.load_scenario(ROOT / "examples/scenarios/four_plants_day.toml"),
        "renewable_week": pm.load_scenario(ROOT / "examples/scenarios/renewable_week.toml"),
    }
    out = {}
    for name, s in scen.items():
        for observer in ("simple", "market"):
            for tie in ("pro_rata", "index"):
                rng = np.random.default_rng(7)
                env = pm.MarketEnv(s, observer=observer, seed=3, tie_rule=tie)
                parts = []
                for _ in range(2):
                    obs, info = env.reset()
                    parts.append(obs)
                    for _ in range(s.t):
                        a = rng.uniform([-0.2, -12], [1.2, 12], (s.n, 2)).astype(np.float32)
                        obs, r, te, tr, info = env.step(a)
                        parts += [
                            obs,
                            r,
                            np.array([info["price"], info["demand"], info["shortfall"]]),
                            info["cleared"],
                        ]
                    rec = env.episode_record()
                    parts += [
                        rec[k]
                        for k in ("bids", "offered", "cleared", "rewards", "prices", "demand")
                    ]
                vec = pm.VecMarketEnv(s, num_envs=5, observer=observer, seed=11, tie_rule=tie)
                obs, _ = vec.reset()
                parts.append(obs.copy())
                for _ in range(s.t + 3):
                    a = rng.uniform([-0.2, -12], [1.2, 12], (5, s.n, 2)).astype(np.float32)
                    obs, r, te, tr, info = vec.step(a, copy=True)
                    parts += [
                        obs,
                        r,
                        te,
                        info["price"],
                        info["demand"],
                        info["shortfall"],
                        info["cleared"],
                        info["final_obs"][info["_final_obs"]],
                    ]
                out[f"{name}/{observer}/{tie}"] = digest(parts)
    rng = np.random.default_rng(1)
    cl = []
    for n in (1, 5, 50):
        for _ in range(50):
            b = rng.choice([10.0, 20.0, 30.0], n) + rng.integers(0, 2, n) * rng.uniform(0, 5, n)
            q = rng.uniform(0, 10, n)
            d = float(rng.uniform(0, 1.2) * q.sum())
            for tie in ("pro_rata", "index"):
                p, x = pm.clear(b, q, d, tie_rule=tie)
                cl += [np.array([p]), x]
    out["clear"] = digest(cl)
    return out


def test_readme_scenarios_are_bit_identical_to_before_the_new_fields():
    got = digests()
    assert got == PINNED
