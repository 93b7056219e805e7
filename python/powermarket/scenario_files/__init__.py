"""Scenario files: a market in TOML, its hourly series inline or in a CSV beside it.

A file holds the market rules, the fleet table and the demand series::

    description = "optional text"

    [market]                  # every key optional; defaults as pm.Scenario(...)
    max_bid_delta = 50.0      # €/MWh
    bid_penalty = 0.01
    lol_penalty = 1.0
    demand_noise = 0.05
    shortage_price = 3000.0   # €/MWh; omit it for "the highest offer price"
    availability_noise = 0.0  # per-episode AR(1) perturbation of load factors
    segments = 1              # offer blocks per generator (an int)
    mechanism = "uniform"     # or "pay_as_bid"
    price_action = "tanh"     # or "linear": a1 in [-1, 1], bid = cost + a1 * max_bid_delta
    price_cap = 4000.0        # €/MWh; omit for no cap
    price_floor = -500.0      # €/MWh; omit for no floor
    demand_bids = [[45.0, 0.1], [30.0, 0.05]]  # [price, share of demand] pairs
    network = "dc"            # or "transport", or "copper" (the default: one price)
    demand_bid_nodes = ["north", "south"]  # the node of each demand bid (missing: node 0)

    [[nodes]]                 # optional: one table per node, in node order
    name = "north"            # unique, not blank
    demand_share = 0.4        # share of each hour's demand, or one per hour:
    # demand_share = [0.4, 0.45, 0.5], or the name of a column of the demand CSV

    [[lines]]                 # one table per line between two nodes
    from = "north"            # a node's name or index
    to = "south"
    capacity = 40.0           # MW, either direction; `inf` for no limit
    reactance = 0.1           # required with network = "dc"; else missing: 1 (unused)

    [[generators]]            # one table per generator, in agent order
    name = "nuclear"          # optional, for the reader
    node = "north"            # optional: its node's name or index (missing: node 0)
    capacity = 40.0           # MW
    cost = 10.0               # €/MWh
    ramp_limit = 0.25         # optional: share of capacity per hour (missing: 1, no limit)
    ramp_cost = 1.0           # optional: € per MW of change (missing: 0)
    availability = [1.0, 0.9, 0.8]  # optional: load factors per hour (missing: all 1)
    # ... or the name of a column of the demand CSV: availability = "wind_lf"

    [demand]                  # MW per hour: inline ...
    values = [60.0, 55.0, 70.0]
    # ... or in a CSV beside this file (header row, one row per hour):
    # csv = "week.csv"
    # column = "demand"       # optional, default "demand"

:func:`load` reads one (``pm.load_scenario`` / ``pm.Scenario.load``) and
:func:`save` writes one (``pm.save_scenario`` / ``scenario.save``). Floats are
written with ``repr``, so ``load(save(s)) == s`` exactly. A malformed file is a
``ValueError`` naming the file, the field and, where there is one, the line.

A CSV named by the file must lie in the file's folder or below it (after
resolving ``..`` and symbolic links); ``load(path, allow_outside=True)`` lifts
this for files the caller trusts. Error messages quote a CSV's column names,
never its other contents. Both files may start with a UTF-8 byte-order mark.

Networks: without ``[[nodes]]`` the market has one node, and a ``node`` key (or
``[[lines]]``, or ``demand_bid_nodes``) is an error. With ``[[nodes]]``, every
node has a ``demand_share`` (a single node may leave it out), all as numbers or
all per hour. ``save`` writes nodes by name; a ``[[storage]]`` table takes
``node`` too.

The package: ``_tables.py`` (the field tables and what reading needs),
``_read.py`` (``load``), ``_network.py`` (the ``[[nodes]]`` and ``[[lines]]``
tables and the node keys), ``_write.py`` (``save``).
"""

from __future__ import annotations

from powermarket.scenario_files._read import load, tomllib
from powermarket.scenario_files._write import save

__all__ = ["load", "save", "tomllib"]
