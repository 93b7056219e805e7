"""Errors carry their place as attributes, and every front gives the same
exception and message for the same bad input."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import powermarket as pm
from powermarket import ActionError, ScenarioError

SC = pm.Scenario.default(n=3, t=4)


@pytest.mark.parametrize(
    ("kwargs", "field", "agent", "hour"),
    [
        (dict(capacities=[10.0, -1.0, 5.0]), "capacities", 1, None),
        (dict(costs=[1.0, 2.0, np.inf]), "costs", 2, None),
        (dict(demand=[5.0, 5.0, np.nan, 5.0]), "demand", None, 2),
        (dict(availability=[[1.0, 1.0, 1.0]] * 3 + [[1.0, 1.5, 1.0]]), "availability", 1, 3),
        (dict(ramp_limits=[0.5, -0.1, 0.5]), "ramp_limits", 1, None),
        (dict(mechanism="dutch"), "mechanism", None, None),
        (dict(segments=0), "segments", None, None),
        (dict(price_cap=10.0, price_floor=20.0), "price_floor", None, None),
    ],
)
def test_a_scenario_error_names_its_field_agent_and_hour(kwargs, field, agent, hour):
    base = dict(capacities=[10.0, 10.0, 10.0], costs=[1.0, 2.0, 3.0], demand=[5.0] * 4)
    with pytest.raises(ScenarioError) as err:
        pm.Scenario(**{**base, **kwargs})
    e = err.value
    assert isinstance(e, ValueError)
    assert (e.field, e.agent, e.hour, e.market) == (field, agent, hour, None)
    assert e.reason and e.reason in str(e)


def test_replace_reports_the_replaced_field():
    with pytest.raises(ScenarioError) as err:
        SC.replace(demand_noise=-1.0)
    assert err.value.field == "demand_noise"


def test_an_action_error_names_agent_market_component_and_value():
    env = pm.MarketEnv(SC, seed=0)
    env.reset()
    a = np.zeros((3, 2), np.float32)
    a[2, 1] = np.nan
    with pytest.raises(ActionError) as err:
        env.step(a)
    e = err.value
    assert (e.agent, e.market, e.component) == (2, None, "a1") and np.isnan(e.value)
    vec = pm.VecMarketEnv(SC, num_envs=4, seed=0)
    vec.reset()
    a = np.zeros((4, 3, 2), np.float32)
    a[3, 1, 0] = -np.inf
    with pytest.raises(ActionError) as err:
        vec.step(a)
    e = err.value
    assert (e.agent, e.market, e.component, e.value) == (1, 3, "a0", -np.inf)
    assert "gen_1 in market 3" in str(e)


def _single(**kw):
    return gymnasium.make("powermarket/Market-v0", scenario=SC, seed=0, **kw).unwrapped


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_the_same_bad_action_reads_the_same_in_every_one_market_front(bad):
    """gen_0 plays a non-finite price action: MarketEnv, PettingZoo and the
    Gymnasium single env (built-in and callable opponents) raise the same
    exception with the same message."""
    messages = []
    env = pm.MarketEnv(SC, seed=0)
    env.reset()
    a = np.zeros((3, 2), np.float32)
    a[0, 1] = bad
    with pytest.raises(ActionError) as err:
        env.step(a)
    messages.append(str(err.value))
    pz = pm.parallel_env(SC, seed=0)
    pz.reset()
    acts = {name: np.zeros(2, np.float32) for name in pz.agents}
    acts["gen_0"] = a[0]
    with pytest.raises(ActionError) as err:
        pz.step(acts)
    messages.append(str(err.value))
    for opponents in ["truthful", lambda obs: np.zeros((2, 2))]:
        single = _single(opponents=opponents)
        single.reset(seed=0)
        with pytest.raises(ActionError) as err:
            single.step(a[0])
        messages.append(str(err.value))
    assert len(set(messages)) == 1, messages
    want = "a1 (price action) must be finite, got " + ("NaN" if np.isnan(bad) else "inf")
    assert messages[0] == f"actions for gen_0: {want}"


@pytest.mark.parametrize("seed", [True, -1, 2**64, 1.5, "1"])
def test_a_bad_seed_is_the_same_exception_in_every_front(seed):
    kinds = []
    for make in [
        lambda: pm.MarketEnv(SC, seed=seed),
        lambda: pm.VecMarketEnv(SC, num_envs=2, seed=seed),
        lambda: pm.parallel_env(SC, seed=seed),
        lambda: gymnasium.make("powermarket/Market-v0", scenario=SC, seed=seed),
    ]:
        with pytest.raises((TypeError, ValueError)) as err:
            make()
        kinds.append(type(err.value))
        assert "seed" in str(err.value)
    assert len(set(kinds)) == 1, kinds
    assert kinds[0] is (TypeError if seed is True else ValueError)


def test_step_before_reset_reads_the_same_in_every_front():
    messages = set()
    with pytest.raises(RuntimeError) as err:
        pm.MarketEnv(SC, seed=0).step(np.zeros((3, 2)))
    messages.add(str(err.value))
    with pytest.raises(RuntimeError) as err:
        pm.parallel_env(SC, seed=0).step({})
    messages.add(str(err.value))
    with pytest.raises(RuntimeError) as err:
        _single().step(np.zeros(2))
    messages.add(str(err.value))
    from powermarket.gymnasium import MarketVectorEnv

    with pytest.raises(RuntimeError) as err:
        MarketVectorEnv(2, scenario=SC, seed=0).step(np.zeros((2, 2)))
    messages.add(str(err.value))
    assert messages == {"step() called before reset(): call reset() first"}
