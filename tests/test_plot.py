"""powermarket.plot and the envs' render modes."""

from __future__ import annotations

import numpy as np
import pytest

import powermarket as pm

pytest.importorskip("matplotlib")


def test_merit_order_marks_the_clearing_price():
    import matplotlib

    matplotlib.use("Agg")
    from powermarket import plot

    bids, qty = np.array([30.0, 10.0, 20.0]), np.array([10.0, 10.0, 10.0])
    ax = plot.merit_order(bids, qty, 15.0)
    # The marker sits at (demand, clearing price) = (15, 20).
    x, y = ax.lines[-1].get_data()
    assert (float(x[0]), float(y[0])) == (15.0, 20.0)
    # The supply curve steps through the sorted offers.
    xs, ys = ax.lines[0].get_data()
    assert list(xs) == [0.0, 10.0, 20.0, 30.0]
    assert list(ys[:3]) == [10.0, 20.0, 30.0]


def test_episode_plot_uses_the_record():
    import matplotlib

    matplotlib.use("Agg")
    from powermarket import plot

    env = pm.MarketEnv(seed=1)
    env.reset()
    for _ in range(5):
        env.step(np.zeros((5, 2), np.float32))
    top, _ = plot.episode(env.episode_record())
    _, prices = top.lines[0].get_data()
    np.testing.assert_array_equal(prices, env.episode_record()["prices"])


def test_rgb_array_render_of_each_front():
    import gymnasium

    single = gymnasium.make("powermarket/Market-v0", render_mode="rgb_array")
    single.reset(seed=0)
    single.step(single.action_space.sample())
    frame = single.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    assert frame.std() > 0  # not a blank image

    par = pm.parallel_env(render_mode="rgb_array", seed=0)
    par.reset()
    par.step({a: np.zeros(2, np.float32) for a in par.agents})
    assert par.render().shape == frame.shape


def test_bad_render_mode_is_rejected():
    with pytest.raises(ValueError, match="render_mode"):
        pm.parallel_env(render_mode="video")
