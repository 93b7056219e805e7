"""powermarket: a fast multi-agent electricity-market bidding environment.

The Rust core clears a uniform-price day-ahead market in merit order and runs
the reset/step loop; Python sees the standard fronts:

- :func:`clear` / :func:`clear_batch`: the clearing itself;
- :class:`MarketEnv`: one market, arrays in and out (the fastest single path);
- :func:`parallel_env`: a PettingZoo ``ParallelEnv``;
- ``gymnasium.make("powermarket/Market-v0")``: one learner against fixed opponents;
- :class:`VecMarketEnv`: many markets per call, with Gymnasium and SB3 adapters;
- :func:`load_scenario` / :func:`save_scenario`: a :class:`Scenario` as a TOML file.
"""

from powermarket._core import (
    OBSERVERS,
    TIE_RULES,
    ActionError,
    MarketEnv,
    Scenario,
    ScenarioError,
    VecMarketEnv,
    __version__,
    clear,
    clear_batch,
)
from powermarket.gymnasium import register_envs as _register_envs
from powermarket.pettingzoo import MarketParallelEnv, parallel_env
from powermarket.scenario_files import load as load_scenario
from powermarket.scenario_files import save as save_scenario
from powermarket.storage import Storage

__all__ = [
    "OBSERVERS",
    "TIE_RULES",
    "ActionError",
    "MarketEnv",
    "MarketParallelEnv",
    "Scenario",
    "ScenarioError",
    "Storage",
    "VecMarketEnv",
    "__version__",
    "clear",
    "clear_batch",
    "load_scenario",
    "parallel_env",
    "save_scenario",
]

_register_envs()
