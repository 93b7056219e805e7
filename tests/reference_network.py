"""The network clearing's LP, built independently in NumPy and solved by HiGHS
through ``scipy.optimize.linprog(method="highs")``.

It shares no code with the core. The DC model is written in angle form
(a voltage angle per node, ``f_l = (theta_from - theta_to) / x_l``), not with
the PTDF the core uses, so both the formulation and the solver differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog


@dataclass
class LpResult:
    prices: np.ndarray  # (Z,) duals of the node balances
    cleared: np.ndarray  # (N,)
    served: np.ndarray  # (B,)
    shed: np.ndarray  # (Z,)
    flows: np.ndarray  # (L,)
    cost: float  # optimal objective


def clip(p, cap, floor):
    p = np.asarray(p, dtype=float)
    if floor is not None:
        p = np.maximum(p, floor)
    if cap is not None:
        p = np.minimum(p, cap)
    return p


def voll_model(model, z, lines):
    """The model as the shedding price sees it: "dc" on a meshed DC grid
    (more than Z - 1 lines), else "transport" (no loop flows)."""
    meshed = len(np.asarray(lines, float).reshape(-1, 4)) > z - 1
    return "dc" if model == "dc" and meshed else "transport"


def shed_price(offer_prices, bid_prices, cap, shortage_price, model="dc"):
    """docs/semantics.md: the shortage price (cap, else shortage_price),
    raised to the highest clipped offer or bid price; without either, that
    highest price under "transport" (and on a radial DC grid: pass
    `voll_model(...)`), and on a meshed "dc" grid the highest plus 10 x the
    spread of the clipped offer and bid prices."""
    prices = np.concatenate([np.asarray(offer_prices, float), np.asarray(bid_prices, float)])
    hi, lo = float(np.max(prices)), float(np.min(prices))
    given = cap if cap is not None else shortage_price
    if given is not None:
        return max(given, hi)
    return hi + 10.0 * (hi - lo) if model == "dc" else hi


def objective(
    result_cleared, result_served, result_shed, bids, demand_bids, cap, floor, shortage, model="dc"
):
    """The LP objective of a dispatch (offer cost - bid value + shed x V)."""
    c = clip(bids, cap, floor)
    bp = clip(demand_bids[0], cap, floor) if demand_bids is not None else np.zeros(0)
    v = shed_price(c, bp, cap, shortage, model)
    cost = float(c @ result_cleared) + v * float(np.sum(result_shed))
    if demand_bids is not None:
        cost -= float(bp @ result_served)
    return cost


def solve(
    bids,
    quantities,
    nodes,
    demand,
    lines,
    *,
    model="dc",
    demand_bids=None,
    price_cap=None,
    price_floor=None,
    shortage_price=None,
    least_shedding=False,
) -> LpResult:
    """The LP's optimum (HiGHS). With ``least_shedding``, the dispatch is
    then the optimal one that sheds the least load (a second LP: minimise the
    shedding over the optimal face), so that shedding gives way to
    offers and bids priced at V at every node, as docs/semantics.md intends
    ("serving inelastic demand always comes first"); the prices stay the
    first LP's duals."""
    bids = np.asarray(bids, float)
    q = np.asarray(quantities, float)
    nodes = np.asarray(nodes, int)
    demand = np.asarray(demand, float)
    lines = np.asarray(lines, float).reshape(-1, 4)
    n, z, nl = len(bids), len(demand), len(lines)
    c_off = clip(bids, price_cap, price_floor)
    if demand_bids is not None:
        bp = clip(demand_bids[0], price_cap, price_floor)
        bq = np.asarray(demand_bids[1], float)
        bn = np.asarray(demand_bids[2], int)
    else:
        bp, bq, bn = np.zeros(0), np.zeros(0), np.zeros(0, int)
    b = len(bp)
    v = shed_price(c_off, bp, price_cap, shortage_price, voll_model(model, z, lines))
    frm, to = lines[:, 0].astype(int), lines[:, 1].astype(int)
    cap = lines[:, 2]
    n_theta = z if model == "dc" else 0
    ncol = n + b + z + nl + n_theta
    cost = np.concatenate([c_off, -bp, np.full(z, v), np.zeros(nl + n_theta)])
    bounds = (
        [(0.0, qi) for qi in q]
        + [(0.0, d) for d in bq]
        + [(0.0, d) for d in demand]
        + [(-c if np.isfinite(c) else None, c if np.isfinite(c) else None) for c in cap]
        + [(0.0, 0.0)] * min(n_theta, 1)
        + [(None, None)] * max(n_theta - 1, 0)
    )
    # Node balances: generation - bids + shed - out + in = demand.
    a_bal = np.zeros((z, ncol))
    a_bal[nodes, np.arange(n)] = 1.0
    if b:
        np.add.at(a_bal, (bn, n + np.arange(b)), -1.0)
    a_bal[np.arange(z), n + b + np.arange(z)] = 1.0
    col_f = n + b + z + np.arange(nl)
    np.add.at(a_bal, (frm, col_f), -1.0)
    np.add.at(a_bal, (to, col_f), 1.0)
    rows, rhs = [a_bal], [demand]
    if model == "dc" and nl:
        # f_l - (theta_from - theta_to) / x_l = 0.
        a_kvl = np.zeros((nl, ncol))
        a_kvl[np.arange(nl), col_f] = 1.0
        col_t = n + b + z + nl
        np.add.at(a_kvl, (np.arange(nl), col_t + frm), -1.0 / lines[:, 3])
        np.add.at(a_kvl, (np.arange(nl), col_t + to), 1.0 / lines[:, 3])
        rows.append(a_kvl)
        rhs.append(np.zeros(nl))
    res = linprog(
        cost,
        A_eq=np.vstack(rows),
        b_eq=np.concatenate(rhs),
        bounds=bounds,
        method="highs",
    )
    assert res.status == 0, res.message
    x = res.x
    shed_cols = slice(n + b, n + b + z)
    if least_shedding and np.sum(x[shed_cols]) > 0.0:
        # The optimal face: a column with a non-zero reduced cost stays at
        # its bound in every optimum (complementary slackness with these
        # duals); over the rest, minimise the shedding.
        face = list(bounds)
        lower, upper = res.lower.marginals, res.upper.marginals
        for j, (lo, hi) in enumerate(bounds):
            tol = 1e-9 * (1.0 + abs(cost[j]))
            if lower[j] > tol and lo is not None:
                face[j] = (lo, lo)
            elif upper[j] < -tol and hi is not None:
                face[j] = (hi, hi)
        least = np.zeros(ncol)
        least[shed_cols] = 1.0
        again = linprog(
            least,
            A_eq=np.vstack(rows),
            b_eq=np.concatenate(rhs),
            bounds=face,
            method="highs",
        )
        assert again.status == 0, again.message
        before, after = np.sum(x[shed_cols]), np.sum(again.x[shed_cols])
        if after < before - 1e-7 * (1.0 + before):
            x = again.x
    return LpResult(
        prices=np.asarray(res.eqlin.marginals[:z], float),
        cleared=x[:n],
        served=x[n : n + b],
        shed=x[n + b : n + b + z],
        flows=x[n + b + z : n + b + z + nl],
        cost=float(res.fun),
    )


def ptdf(z, lines):
    """(L, Z) PTDF from the reactances, reference node 0 (pseudo-inverse of
    the Laplacian: independent of the core's elimination)."""
    lines = np.asarray(lines, float).reshape(-1, 4)
    frm, to, x = lines[:, 0].astype(int), lines[:, 1].astype(int), lines[:, 3]
    inc = np.zeros((len(lines), z))
    inc[np.arange(len(lines)), frm] = 1.0
    inc[np.arange(len(lines)), to] = -1.0
    lap = inc.T @ (inc / x[:, None])
    theta = np.linalg.pinv(lap)
    theta = theta - theta[0]  # withdrawn at node 0
    return (inc / x[:, None]) @ theta


def is_optimal_dual(prices, flows, lines, model, *, tol=1e-6):
    """True when `prices` are node-balance duals consistent with `flows`: equal
    across unsaturated lines (transport), or equal to a common price minus
    sign-constrained PTDF multiples of the saturated lines (DC). Together with
    complementary slackness of the offers, bids and shedding (checked by the
    caller) and an optimal dispatch, these are optimal LP duals."""
    from scipy.optimize import nnls

    prices = np.asarray(prices, float)
    lines = np.asarray(lines, float).reshape(-1, 4)
    z = len(prices)
    scale = 1.0 + np.max(np.abs(prices))
    cap = lines[:, 2]
    finite = np.isfinite(cap)
    sat = finite & (
        np.abs(flows) >= np.where(finite, cap - 1e-7 * (1 + np.where(finite, cap, 0)), 0)
    )
    sign = np.sign(flows)
    if model == "transport":
        frm, to = lines[:, 0].astype(int), lines[:, 1].astype(int)
        diff = prices[to] - prices[frm]
        ok_free = np.all(np.abs(diff[~sat]) <= tol * scale)
        ok_sat = np.all(diff[sat] * sign[sat] >= -tol * scale)
        return bool(ok_free and ok_sat)
    p = ptdf(z, lines)
    cols = [np.ones(z), -np.ones(z)] + [-sign[k] * p[k] for k in np.flatnonzero(sat)]
    a = np.stack(cols, axis=1)
    _, resid = nnls(a, prices)
    return bool(resid <= tol * scale * np.sqrt(z))
