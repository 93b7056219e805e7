"""Plots of the market (needs the ``plot`` extra: matplotlib).

- :func:`merit_order`: the supply curve of one hour with demand and the clearing point;
- :func:`episode`: clearing price and dispatch per generator over an episode,
  from ``MarketEnv.episode_record()``;
- :func:`render`: the figure behind the envs' ``render_mode="rgb_array"`` / ``"human"``.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _pyplot(interactive: bool = False):
    try:
        import matplotlib

        if not interactive:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - depends on the extra
        raise ImportError(
            "powermarket.plot needs matplotlib: pip install 'powermarket[plot]'"
        ) from e
    return plt


def merit_order(
    bids: Any,
    quantities: Any,
    demand: float,
    *,
    price: float | None = None,
    ax: Any = None,
    label: str | None = None,
    color: str | None = None,
):
    """Draw the merit-order (supply) curve of one hour and its clearing point.

    Offers are stacked by ascending price; the vertical line is the demand
    (MW) and the marker the clearing point. ``price`` defaults to the
    clearing price computed by :func:`powermarket.clear`. Returns the axes.
    """
    from powermarket import clear

    b = np.asarray(bids, dtype=np.float64)
    q = np.asarray(quantities, dtype=np.float64)
    if price is None:
        price, _ = clear(b, q, float(demand))
    if ax is None:
        _, ax = _pyplot().subplots(figsize=(6, 4))
    order = np.argsort(b, kind="stable")
    cum = np.concatenate([[0.0], np.cumsum(q[order])])
    steps = np.concatenate([b[order], b[order][-1:]])
    ax.step(cum, steps, where="post", label=label or "supply (offers)", color=color)
    ax.axvline(demand, color="grey", linestyle="--", linewidth=1)
    ax.plot([demand], [price], "o", color=color or "black")
    ax.set_xlabel("cumulative offered quantity (MW)")
    ax.set_ylabel("price (€/MWh)")
    ax.set_title(f"merit order: demand {demand:.1f} MW, price {price:.2f} €/MWh")
    return ax


def episode(record: dict, *, axes: Any = None, agent_names: list[str] | None = None):
    """Clearing price (top) and dispatch per generator (bottom, stacked) per hour.

    ``record`` is ``MarketEnv.episode_record()``. Returns the two axes.
    """
    prices = np.asarray(record["prices"])
    cleared = np.asarray(record["cleared"])
    if cleared.ndim == 3:  # (hours, N, K) with K offer blocks: each generator's total
        cleared = cleared.sum(axis=2)
    demand = np.asarray(record["demand"])
    hours = np.arange(len(prices))
    if axes is None:
        _, axes = _pyplot().subplots(2, 1, figsize=(7, 5), sharex=True)
    top, bottom = axes
    top.plot(hours, prices, marker=".", color="tab:red")
    top.set_ylabel("price (€/MWh)")
    top.set_title("clearing price and dispatch")
    n = cleared.shape[1] if cleared.ndim == 2 else 0
    names = agent_names or [f"gen_{i}" for i in range(n)]
    if len(hours):
        bottom.stackplot(hours, cleared.T, labels=names, step="post", alpha=0.8)
        bottom.step(hours, demand, where="post", color="black", linewidth=1, label="demand")
    bottom.set_xlabel("hour")
    bottom.set_ylabel("dispatch (MW)")
    if 0 < n <= 10 and len(hours):
        bottom.legend(loc="upper left", fontsize="small", ncol=2)
    return top, bottom


def render(market: Any, mode: str):
    """Render a ``MarketEnv``'s episode so far: ``"rgb_array"`` returns an
    (H, W, 3) uint8 image, ``"human"`` shows the figure and returns None."""
    plt = _pyplot(interactive=mode == "human")
    fig, axes = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    episode(market.episode_record(), axes=axes)
    fig.tight_layout()
    if mode == "human":
        plt.show(block=False)
        plt.pause(0.001)
        return None
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return image
