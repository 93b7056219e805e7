"""Type stubs for the compiled core (crates/powermarket-py)."""

from collections.abc import Callable, Sequence
from os import PathLike
from typing import Any, final, overload

import numpy as np
import numpy.typing as npt

__version__: str

_F32 = npt.NDArray[np.float32]
_F64 = npt.NDArray[np.float64]
_Bools = npt.NDArray[np.bool_]

_DemandBids = tuple[npt.ArrayLike, npt.ArrayLike]

@overload
def clear(
    bids: npt.ArrayLike,
    quantities: npt.ArrayLike,
    demand: float,
    *,
    tie_rule: str = "pro_rata",
    shortage_price: float | None = None,
    demand_bids: None = None,
    price_cap: float | None = None,
    price_floor: float | None = None,
    mechanism: None = None,
) -> tuple[float, _F64]: ...
@overload
def clear(
    bids: npt.ArrayLike,
    quantities: npt.ArrayLike,
    demand: float,
    *,
    tie_rule: str = "pro_rata",
    shortage_price: float | None = None,
    demand_bids: _DemandBids | None = None,
    price_cap: float | None = None,
    price_floor: float | None = None,
    mechanism: str | None = None,
) -> tuple[Any, ...]: ...
@overload
def clear_batch(
    bids: npt.ArrayLike,
    quantities: npt.ArrayLike,
    demand: npt.ArrayLike,
    *,
    tie_rule: str = "pro_rata",
    shortage_price: float | None = None,
    demand_bids: None = None,
    price_cap: float | None = None,
    price_floor: float | None = None,
    mechanism: None = None,
) -> tuple[_F64, _F64]: ...
@overload
def clear_batch(
    bids: npt.ArrayLike,
    quantities: npt.ArrayLike,
    demand: npt.ArrayLike,
    *,
    tie_rule: str = "pro_rata",
    shortage_price: float | None = None,
    demand_bids: _DemandBids | None = None,
    price_cap: float | None = None,
    price_floor: float | None = None,
    mechanism: str | None = None,
) -> tuple[Any, ...]: ...

_NodalBids = tuple[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike]

NETWORK_MODELS: tuple[str, ...]

def clear_network(
    bids: npt.ArrayLike,
    quantities: npt.ArrayLike,
    nodes: npt.ArrayLike,
    demand: npt.ArrayLike,
    lines: npt.ArrayLike,
    *,
    model: str = "dc",
    demand_bids: _NodalBids | None = None,
    price_cap: float | None = None,
    price_floor: float | None = None,
    shortage_price: float | None = None,
    mechanism: str | None = None,
    tie_rule: str = "pro_rata",
) -> tuple[_F64, ...]: ...
def clear_network_batch(
    bids: npt.ArrayLike,
    quantities: npt.ArrayLike,
    nodes: npt.ArrayLike,
    demand: npt.ArrayLike,
    lines: npt.ArrayLike,
    *,
    model: str = "dc",
    demand_bids: _NodalBids | None = None,
    price_cap: float | None = None,
    price_floor: float | None = None,
    shortage_price: float | None = None,
    mechanism: str | None = None,
    tie_rule: str = "pro_rata",
) -> tuple[_F64, ...]: ...

@final
class Scenario:
    def __new__(
        cls,
        capacities: npt.ArrayLike,
        costs: npt.ArrayLike,
        demand: npt.ArrayLike,
        *,
        max_bid_delta: float = 50.0,
        bid_penalty: float = 0.01,
        lol_penalty: float = 1.0,
        demand_noise: float = 0.05,
        shortage_price: float | None = None,
        segments: int | None = None,
        demand_bids: Sequence[tuple[float, float]] | None = None,
        mechanism: str | None = None,
        price_cap: float | None = None,
        price_floor: float | None = None,
        availability: npt.ArrayLike | None = None,
        availability_noise: float = 0.0,
        ramp_limits: npt.ArrayLike | None = None,
        ramp_costs: npt.ArrayLike | None = None,
        storage: Sequence[Any] | None = None,
        price_action: str | None = None,
        network: str | None = None,
        node_names: Sequence[str] | None = None,
        nodes: npt.ArrayLike | None = None,
        lines: npt.ArrayLike | None = None,
        demand_shares: npt.ArrayLike | None = None,
        demand_bid_nodes: npt.ArrayLike | None = None,
    ) -> Scenario: ...
    @staticmethod
    def default(n: int | None = None, t: int | None = None) -> Scenario: ...
    @staticmethod
    def two_zones(t: int | None = None) -> Scenario: ...
    @staticmethod
    def three_nodes(t: int | None = None) -> Scenario: ...
    @staticmethod
    def from_pandapower(net: Any, **kwargs: Any) -> Any: ...
    @staticmethod
    def from_pypsa(network: Any, **kwargs: Any) -> Any: ...
    @property
    def network(self) -> str: ...
    @property
    def node_names(self) -> list[str]: ...
    @property
    def num_nodes(self) -> int: ...
    @property
    def num_lines(self) -> int: ...
    @property
    def nodes(self) -> npt.NDArray[np.int64]: ...
    @property
    def demand_bid_nodes(self) -> npt.NDArray[np.int64]: ...
    @property
    def lines(self) -> _F64: ...
    @property
    def demand_shares(self) -> _F64 | None: ...
    @property
    def node_demand(self) -> _F64: ...
    @staticmethod
    def with_battery(n: int | None = None, t: int | None = None) -> Scenario: ...
    @staticmethod
    def competitive(
        n: int | None = None, t: int | None = None, competition_rate: int | None = None
    ) -> Scenario: ...
    @staticmethod
    def weekly(n: int | None = None) -> Scenario: ...
    @staticmethod
    def advanced() -> Scenario: ...
    @staticmethod
    def load(path: str | PathLike[str], *, allow_outside: bool = False) -> Scenario: ...
    def save(
        self, path: str | PathLike[str], *, csv: bool = False, description: str | None = None
    ) -> None: ...
    @staticmethod
    def from_dict(d: dict[str, Any]) -> Scenario: ...
    def to_dict(self) -> dict[str, Any]: ...
    def replace(self, **changes: Any) -> Scenario: ...
    @property
    def n(self) -> int: ...
    @property
    def s(self) -> int: ...
    @property
    def num_agents(self) -> int: ...
    @property
    def storage(self) -> list[Any]: ...
    @property
    def storage_reference_prices(self) -> list[float]: ...
    @property
    def t(self) -> int: ...
    @property
    def capacities(self) -> _F64: ...
    @property
    def costs(self) -> _F64: ...
    @property
    def demand(self) -> _F64: ...
    @property
    def max_bid_delta(self) -> float: ...
    @property
    def bid_penalty(self) -> float: ...
    @property
    def lol_penalty(self) -> float: ...
    @property
    def demand_noise(self) -> float: ...
    @property
    def shortage_price(self) -> float | None: ...
    @property
    def segments(self) -> int: ...
    @property
    def demand_bids(self) -> list[tuple[float, float]]: ...
    @property
    def mechanism(self) -> str: ...
    @property
    def price_action(self) -> str: ...
    @property
    def price_cap(self) -> float | None: ...
    @property
    def price_floor(self) -> float | None: ...
    def euphemia_limits(self) -> Scenario: ...
    @property
    def availability(self) -> _F64 | None: ...
    @property
    def availability_noise(self) -> float: ...
    @property
    def ramp_limits(self) -> _F64 | None: ...
    @property
    def ramp_costs(self) -> _F64 | None: ...
    @property
    def demand_scale(self) -> float: ...
    @property
    def cost_scale(self) -> float: ...
    @property
    def capacity_scale(self) -> float: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]: ...

@final
class MarketEnv:
    def __new__(
        cls,
        scenario: Scenario | dict[str, Any] | None = None,
        observer: str = "simple",
        seed: int | None = None,
        tie_rule: str = "pro_rata",
    ) -> MarketEnv: ...
    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[_F32, dict[str, Any]]: ...
    def step(self, actions: npt.ArrayLike) -> tuple[_F32, _F32, bool, bool, dict[str, Any]]: ...
    def step_dict(
        self, actions: dict[str, Any], agents: list[str]
    ) -> tuple[
        dict[str, _F32],
        dict[str, float],
        dict[str, bool],
        dict[str, bool],
        dict[str, dict[str, Any]],
    ]: ...
    def step_single(
        self,
        action: Any,
        agent: int,
        opponents: Opponents,
        given: npt.ArrayLike | None = None,
        mask: npt.ArrayLike | None = None,
    ) -> tuple[_F32, float, bool, bool, dict[str, Any]]: ...
    def observe(self) -> _F32: ...
    def episode_record(self) -> dict[str, npt.NDArray[Any]]: ...
    def observation_bounds(self) -> tuple[_F32, _F32]: ...
    @property
    def demand(self) -> _F64: ...
    @property
    def availability(self) -> _F64: ...
    @property
    def num_agents(self) -> int: ...
    @property
    def obs_dim(self) -> int: ...
    @property
    def horizon(self) -> int: ...
    @property
    def t(self) -> int | None: ...
    @property
    def observer(self) -> str: ...
    @property
    def tie_rule(self) -> str: ...
    @property
    def scenario(self) -> Scenario: ...
    def __copy__(self) -> MarketEnv: ...
    def __deepcopy__(self, memo: Any) -> MarketEnv: ...
    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]: ...

@final
class Opponents:
    def __new__(
        cls,
        strategies: list[Any],
        max_bid_delta: float,
        seed: int | None = None,
        num_markets: int | None = None,
        scenario: Scenario | None = None,
    ) -> Opponents: ...
    def reseed(self, seed: int | Sequence[int], mask: npt.ArrayLike | None = None) -> None: ...
    @property
    def price_action(self) -> str: ...
    @property
    def num_markets(self) -> int: ...
    def fill(
        self, actions: _F32, skip: int, last_price: float | Sequence[float] | None = None
    ) -> None: ...
    def fill_batch(
        self, actions: _F32, skip: int, last_prices: Sequence[float] | None = None
    ) -> None: ...
    def __copy__(self) -> Opponents: ...
    def __deepcopy__(self, memo: Any) -> Opponents: ...
    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]: ...

@final
class VecMarketEnv:
    def __new__(
        cls,
        scenario: Scenario | dict[str, Any] | None = None,
        num_envs: int | None = None,
        observer: str = "simple",
        seed: int | Sequence[int] | None = None,
        num_threads: int | None = None,
        tie_rule: str = "pro_rata",
    ) -> VecMarketEnv: ...
    def reset(
        self,
        seed: int | Sequence[int] | None = None,
        mask: npt.ArrayLike | None = None,
        options: dict[str, Any] | None = None,
        copy: bool = False,
    ) -> tuple[_F32, dict[str, Any]]: ...
    def step(
        self, actions: npt.ArrayLike, copy: bool = False
    ) -> tuple[_F32, _F32, _Bools, _Bools, dict[str, Any]]: ...
    def episode_demand(self, i: int) -> _F64: ...
    def episode_availability(self, i: int) -> _F64: ...
    def observation_bounds(self) -> tuple[_F32, _F32]: ...
    @property
    def hours(self) -> npt.NDArray[np.int64]: ...
    @property
    def num_envs(self) -> int: ...
    @property
    def num_agents(self) -> int: ...
    @property
    def obs_dim(self) -> int: ...
    @property
    def horizon(self) -> int: ...
    @property
    def num_threads(self) -> int: ...
    @property
    def observer(self) -> str: ...
    @property
    def tie_rule(self) -> str: ...
    @property
    def scenario(self) -> Scenario: ...
    def __copy__(self) -> VecMarketEnv: ...
    def __deepcopy__(self, memo: Any) -> VecMarketEnv: ...
    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]: ...

PURE_NASH_MAX_PROFILES: int
EXPLOITABILITY_MAX_WORK: int
EXPLOITABILITY_SOC_GRID: int
EQUILIBRIUM_MAX_CLEARINGS: int

OBSERVERS: tuple[str, ...]
TIE_RULES: tuple[str, ...]
MECHANISMS: tuple[str, ...]
PRICE_ACTIONS: tuple[str, ...]

class ScenarioError(ValueError):
    field: str
    reason: str
    agent: int | None
    hour: int | None
    market: int | None

class ActionError(ValueError):
    agent: int | None
    market: int | None
    component: str
    value: float

ACTION_LOW: tuple[float, float]
ACTION_HIGH: tuple[float, float]
ACTION_COMPONENTS: tuple[str, str]
STORAGE_ACTION_LOW: tuple[float, float]
STORAGE_ACTION_HIGH: tuple[float, float]
STORAGE_FEATURES: tuple[str, ...]
STORAGE_FIELDS: tuple[tuple[str, float | None, bool], ...]

def action_box(price_action: str = "tanh") -> tuple[tuple[float, float], tuple[float, float]]: ...
def check_storage(unit: Any) -> None: ...
def check_actions(
    actions: Any,
    shape: list[int] | tuple[int, ...],
    arg: str = "actions",
    where: Callable[[tuple[int, ...]], str | None] | None = None,
    flatten: bool = False,
) -> _F32: ...
def check_seed(seed: Any, arg: str = "seed") -> int | None: ...
def check_steppable(hour: int | None, horizon: int) -> None: ...
def agent_name(i: int, n: int | None = None) -> str: ...
def agent_index(name: str, n: int | None = None, s: int = 0) -> int | None: ...
def competitive(
    scenario: Scenario | dict[str, Any] | None,
    demand: npt.ArrayLike | None = None,
    *,
    tie_rule: str = "pro_rata",
) -> dict[str, _F64]: ...
def market_power(
    scenario: Scenario | dict[str, Any] | None,
    bids: npt.ArrayLike,
    cleared: npt.ArrayLike,
    prices: npt.ArrayLike,
    demand: npt.ArrayLike,
    availability: npt.ArrayLike | None = None,
    *,
    soc: npt.ArrayLike | None = None,
    discharge: npt.ArrayLike | None = None,
) -> dict[str, npt.NDArray[Any]]: ...
def exploitability_of_play(
    scenario: Scenario | dict[str, Any] | None,
    actions: npt.ArrayLike,
    demand: npt.ArrayLike,
    withheld: npt.ArrayLike,
    price_action: npt.ArrayLike,
    *,
    tie_rule: str = "pro_rata",
    availability: npt.ArrayLike | None = None,
    soc_grid: int | None = None,
) -> dict[str, Any]: ...
def equilibrium(
    scenario: Scenario | dict[str, Any] | None,
    demand: npt.ArrayLike,
    withheld: npt.ArrayLike,
    price_action: npt.ArrayLike,
    *,
    tie_rule: str = "pro_rata",
    max_moves: int = 100,
    tol: float = 0.01,
    seed: int | None = None,
    starts: int = 1,
) -> dict[str, Any]: ...
def pure_nash(
    prices_grid: npt.ArrayLike,
    capacities: npt.ArrayLike,
    costs: npt.ArrayLike,
    demand: float,
    *,
    price_cap: float | None = None,
) -> dict[str, Any]: ...
def cournot(
    a: float, b: float, costs: npt.ArrayLike, capacities: npt.ArrayLike
) -> tuple[float, _F64]: ...
def _restore_market_env(
    scenario: Scenario, observer: str, tie_rule: str, state: dict[str, Any]
) -> MarketEnv: ...
def _restore_opponents(state: dict[str, Any]) -> Opponents: ...

VEC_OUTPUTS: tuple[tuple[str, str, str, str | None], ...]
SCENARIO_FIELDS: tuple[tuple[str, str, str, str, float | None], ...]

def _restore_vec_market_env(state: dict[str, Any]) -> VecMarketEnv: ...
