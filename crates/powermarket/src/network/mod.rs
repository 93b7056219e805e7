//! Network clearing: welfare-maximising dispatch with a balance at each node
//! and line limits, priced at the duals of the node balances.
//!
//! One hour is the LP (quantities in MW, prices in €/MWh)
//!
//! ```text
//! min  sum_i c_i x_i - sum_k v_k s_k + V sum_z u_z
//! s.t. sum_{i at z} x_i - sum_{k at z} s_k + u_z - D_z = (net export of z)   for every node z
//!      -cap_l <= f_l <= cap_l                                                 for every line l
//!      0 <= x_i <= q_i,  0 <= s_k <= d_k,  0 <= u_z <= D_z
//! ```
//!
//! with `c_i`, `v_k` the offer and bid prices clipped to the cap and floor,
//! `u_z` the load shed at node z at the price `V` (the shortage price, raised
//! to the highest clipped offer or bid price when below it), and the net
//! export of node z `sum_{l from z} f_l - sum_{l to z} f_l` with free flows
//! ([`Model::Transport`]) or `f = PTDF (injections)` ([`Model::Dc`]). The
//! network must be connected (islands are refused).
//!
//! The clearing runs in three steps:
//! 1. **Fast path.** The copper-plate clearing of every offer against the
//!    total demand and every bid ([`crate::clearing`]), with the flows it
//!    implies (the PTDF; under the transport model on a meshed grid, a
//!    feasibility LP when the unit-reactance flows exceed a limit). When
//!    they are within every limit, that is the result, bit for bit, at one
//!    price at every node.
//! 2. **The LP** otherwise, by the dense bounded simplex of [`simplex`].
//!    Prices are the duals of the node balances in the final basis; where a
//!    node has a variable strictly inside its bounds (its marginal offer,
//!    bid or shedding), its price is that variable's price exactly, and under
//!    the transport model that exact price spreads over the nodes joined by
//!    unsaturated lines.
//! 3. **Per-node dispatch.** With the LP's node totals fixed, each node's
//!    offers share their total by the copper-plate rule and the tie rule
//!    (so offers of one price at one node split by `pro_rata` or `index`,
//!    as in the copper plate), and its bids share theirs from the highest
//!    price down, pro rata within a price.

mod batch;
mod dispatch;
mod lp;
pub mod simplex;
mod topology;

pub use batch::{clear_network_batch, NetworkBatch, NetworkBatchOut};
use dispatch::dispatch_by_node;
pub use lp::{default_dc_voll, DC_VOLL_SPREAD};
use lp::{finite_cap, shed_price, snap_flow, solve_lp};
pub use topology::{
    node_index, node_indices, Line, Model, Network, NetworkKind, MAX_LINES, MAX_NODES,
};

use crate::clearing::{
    self, clear_elastic_unchecked, group_bids, spread_served, validate_bids, validate_demand_total,
    DemandCurve, Rules, Workspace,
};
use crate::error::{MarketError, Result};
use simplex::{Failure, Lp, Simplex};

/// Demand bids with the node of each.
#[derive(Clone, Copy, Debug)]
pub struct NodalBids<'a> {
    pub prices: &'a [f64],
    pub quantities: &'a [f64],
    pub nodes: &'a [usize],
}

/// Where a network clearing writes: prices (Z), cleared (N), flows (L),
/// served (B) and the load shed at each node (Z).
pub struct NetworkOut<'a> {
    pub prices: &'a mut [f64],
    pub cleared: &'a mut [f64],
    pub flows: &'a mut [f64],
    pub served: &'a mut [f64],
    pub shed: &'a mut [f64],
}

/// A summary of one network clearing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NetworkClearing {
    /// `sum_l |flow_l| * |price_to - price_from|`, €/h (>= 0).
    pub congestion_rent: f64,
    /// Inelastic demand not served, MW (the sum of the shed load).
    pub shortfall: f64,
    /// True when the LP ran (the copper-plate dispatch broke a line limit).
    pub congested: bool,
}

/// Reusable memory of the network clearing.
#[derive(Clone, Debug, Default)]
pub struct NetWorkspace {
    ws: Workspace,
    clipped: Vec<f64>,
    bid_prices: Vec<f64>,
    groups: Vec<(f64, f64)>,
    group_of: Vec<u32>,
    served_g: Vec<f64>,
    inj: Vec<f64>,
    lp: Lp,
    simplex: Simplex,
    /// Offers grouped by node: `by_node[start[z]..start[z + 1]]`.
    by_node: Vec<usize>,
    start: Vec<usize>,
    bids_by_node: Vec<usize>,
    bid_start: Vec<usize>,
    local_b: Vec<f64>,
    local_q: Vec<f64>,
    local_c: Vec<f64>,
    zone: Vec<usize>,
    fixed: Vec<Option<f64>>,
    /// The LP's start: each offer's output and each node's shedding.
    start_offer: Vec<f64>,
    start_shed: Vec<f64>,
    /// Offers the copper-plate workspace was sized for.
    ws_offers: usize,
    /// The crash basis of the LP, and the lines in it (DC).
    crash: Vec<usize>,
    active: Vec<usize>,
}

impl NetWorkspace {
    /// Reserve, fallibly, everything a clearing of `n` offers, `b` bids, `z`
    /// nodes and `l` lines needs, so that clearing it allocates no more.
    pub fn try_reserve(&mut self, n: usize, b: usize, z: usize, l: usize) -> Result<()> {
        fn more<T>(v: &mut Vec<T>, len: usize) -> Result<()> {
            v.try_reserve(len.saturating_sub(v.len()))
                .map_err(|_| MarketError::Memory {
                    what: "the network clearing",
                    bytes: len.saturating_mul(std::mem::size_of::<T>()),
                })
        }
        let cols = n + b + z + l;
        let rows = z.max(l + 1);
        let size = |a: usize, c: usize| {
            a.checked_mul(c).ok_or(MarketError::Memory {
                what: "the network clearing",
                bytes: usize::MAX,
            })
        };
        if n > self.ws_offers {
            self.ws = Workspace::try_with_capacity(n, "bids")?;
            self.ws_offers = n;
        }
        more(&mut self.clipped, n)?;
        more(&mut self.bid_prices, b)?;
        more(&mut self.groups, b)?;
        more(&mut self.group_of, b)?;
        more(&mut self.served_g, b)?;
        more(&mut self.inj, z)?;
        more(&mut self.by_node, n)?;
        more(&mut self.start, z + 1)?;
        more(&mut self.bids_by_node, b)?;
        more(&mut self.bid_start, z + 1)?;
        more(&mut self.local_b, n)?;
        more(&mut self.local_q, n)?;
        more(&mut self.local_c, n)?;
        more(&mut self.zone, z)?;
        more(&mut self.fixed, z)?;
        more(&mut self.crash, rows)?;
        more(&mut self.start_offer, n)?;
        more(&mut self.start_shed, z)?;
        more(&mut self.active, l)?;
        self.lp.try_reserve(rows, cols, size(rows, cols)?)?;
        self.simplex.try_reserve(rows, cols, size(rows, rows)?)?;
        Ok(())
    }
}

/// The total inelastic demand: the node demands added in node order.
pub fn total_demand(demand: &[f64]) -> f64 {
    demand.iter().fold(0.0, |a, &d| a + d)
}

/// Check one network clearing problem (the first bad value is reported).
pub fn validate(
    bids: &[f64],
    quantities: &[f64],
    nodes: &[usize],
    demand: &[f64],
    net: &Network,
    demand_bids: Option<NodalBids<'_>>,
    rules: &Rules,
) -> Result<()> {
    let z = net.nodes();
    if demand.len() != z {
        return Err(MarketError::LengthMismatch {
            arg: "demand",
            other: "the network's nodes",
            got: demand.len(),
            expected: z,
        });
    }
    for (index, &d) in demand.iter().enumerate() {
        if !d.is_finite() {
            return Err(MarketError::NotFinite {
                arg: "demand",
                index,
                value: d,
            });
        }
        if d < 0.0 {
            return Err(MarketError::Negative {
                arg: "demand",
                index,
                value: d,
            });
        }
    }
    let total = total_demand(demand);
    if !total.is_finite() {
        return Err(MarketError::Invalid {
            arg: "demand",
            message: "the node demands add up beyond the float64 range".into(),
        });
    }
    clearing::validate(bids, quantities, total, rules)?;
    // The LP's stand-in for an unlimited line is 2 x (every MW) + 1.
    if !(4.0 * (quantities.iter().sum::<f64>() + total)).is_finite() {
        return Err(MarketError::Invalid {
            arg: "quantities",
            message: "the offered quantities and the demand add up beyond the float64 range; \
                      use quantities of ordinary magnitudes"
                .into(),
        });
    }
    if nodes.len() != bids.len() {
        return Err(MarketError::LengthMismatch {
            arg: "nodes",
            other: "bids",
            got: nodes.len(),
            expected: bids.len(),
        });
    }
    if let Some(index) = nodes.iter().position(|&k| k >= z) {
        return Err(MarketError::BadNode {
            arg: "nodes",
            index,
            value: nodes[index] as f64,
            nodes: z,
        });
    }
    if let Some(db) = demand_bids {
        if db.quantities.len() != db.prices.len() {
            return Err(MarketError::LengthMismatch {
                arg: "demand_bids quantities",
                other: "demand_bids prices",
                got: db.quantities.len(),
                expected: db.prices.len(),
            });
        }
        if db.nodes.len() != db.prices.len() {
            return Err(MarketError::LengthMismatch {
                arg: "demand_bids nodes",
                other: "demand_bids prices",
                got: db.nodes.len(),
                expected: db.prices.len(),
            });
        }
        validate_bids(db.prices, db.quantities)?;
        validate_demand_total(total, db.quantities)?;
        if !(4.0 * (total + db.quantities.iter().sum::<f64>())).is_finite() {
            return Err(MarketError::Invalid {
                arg: "demand_bids",
                message: "the demand and the bids add up beyond the float64 range".into(),
            });
        }
        if let Some(index) = db.nodes.iter().position(|&k| k >= z) {
            return Err(MarketError::BadNode {
                arg: "demand_bids nodes",
                index,
                value: db.nodes[index] as f64,
                nodes: z,
            });
        }
    }
    Ok(())
}

fn check_out(out: &NetworkOut<'_>, n: usize, z: usize, l: usize, b: usize) -> Result<()> {
    for (arg, got, expected) in [
        ("prices", out.prices.len(), z),
        ("cleared", out.cleared.len(), n),
        ("flows", out.flows.len(), l),
        ("served", out.served.len(), b),
        ("shed", out.shed.len(), z),
    ] {
        if got != expected {
            return Err(MarketError::LengthMismatch {
                arg,
                other: "the problem",
                got,
                expected,
            });
        }
    }
    Ok(())
}

/// Validate, then clear one hour on the network (see the module docs).
#[allow(clippy::too_many_arguments)]
pub fn clear_network(
    bids: &[f64],
    quantities: &[f64],
    nodes: &[usize],
    demand: &[f64],
    net: &Network,
    demand_bids: Option<NodalBids<'_>>,
    rules: &Rules,
    ws: &mut NetWorkspace,
    out: NetworkOut<'_>,
) -> Result<NetworkClearing> {
    validate(bids, quantities, nodes, demand, net, demand_bids, rules)?;
    let nb = demand_bids.map_or(0, |d| d.prices.len());
    check_out(&out, bids.len(), net.nodes(), net.lines().len(), nb)?;
    ws.try_reserve(bids.len(), nb, net.nodes(), net.lines().len())?;
    clear_network_unchecked(
        bids,
        quantities,
        nodes,
        demand,
        net,
        demand_bids,
        rules,
        ws,
        out,
    )
}

/// [`clear_network`] on a problem that passed [`validate`] with outputs of
/// the right lengths. Errors only when the LP fails (which the tests never
/// see; it would be a bug).
#[allow(clippy::too_many_arguments)]
pub fn clear_network_unchecked(
    bids: &[f64],
    quantities: &[f64],
    nodes: &[usize],
    demand: &[f64],
    net: &Network,
    demand_bids: Option<NodalBids<'_>>,
    rules: &Rules,
    ws: &mut NetWorkspace,
    out: NetworkOut<'_>,
) -> Result<NetworkClearing> {
    debug_assert!(validate(bids, quantities, nodes, demand, net, demand_bids, rules).is_ok());
    let empty = NodalBids {
        prices: &[],
        quantities: &[],
        nodes: &[],
    };
    let db = demand_bids.unwrap_or(empty);
    let total = total_demand(demand);
    // 1. The copper plate.
    ws.clipped.clear();
    ws.clipped.extend_from_slice(bids);
    rules.clip_all(&mut ws.clipped);
    ws.bid_prices.clear();
    ws.bid_prices.extend_from_slice(db.prices);
    rules.clip_all(&mut ws.bid_prices);
    group_bids(
        &ws.bid_prices,
        db.quantities,
        &mut ws.groups,
        &mut ws.group_of,
    )?;
    ws.served_g.clear();
    ws.served_g.resize(ws.groups.len(), 0.0);
    let curve = DemandCurve {
        inelastic: total,
        groups: &ws.groups,
    };
    let c = clear_elastic_unchecked(
        &ws.clipped,
        quantities,
        &curve,
        rules,
        &mut ws.ws,
        out.cleared,
        &mut ws.served_g,
    );
    spread_served(
        db.quantities,
        &ws.group_of,
        &ws.groups,
        &ws.served_g,
        out.served,
    );
    // Shed load of a copper-plate shortage: shared in proportion to demand.
    let shortfall = if c.shortage {
        (total - c.total).max(0.0)
    } else {
        0.0
    };
    for (s, &d) in out.shed.iter_mut().zip(demand) {
        *s = if total > 0.0 && shortfall > 0.0 {
            shortfall * (d / total)
        } else {
            0.0
        };
    }
    let z = net.nodes();
    ws.inj.clear();
    ws.inj.resize(z, 0.0);
    for (node, &d) in demand.iter().enumerate() {
        ws.inj[node] = out.shed[node] - d;
    }
    for (&k, &x) in nodes.iter().zip(out.cleared.iter()) {
        ws.inj[k] += x;
    }
    for (&k, &s) in db.nodes.iter().zip(out.served.iter()) {
        ws.inj[k] -= s;
    }
    if copper_flows_fit(net, &ws.inj, out.flows, &mut ws.lp, &mut ws.simplex)? {
        // A shortage is priced at the LP's price of shedding load, which is
        // the copper plate's shortage price unless that lies below some
        // offer or bid price.
        let price = if c.shortage {
            shed_price(&ws.clipped, &ws.bid_prices, rules, net)
        } else {
            c.price
        };
        out.prices.fill(price);
        return Ok(NetworkClearing {
            congestion_rent: 0.0,
            shortfall: out.shed.iter().sum(),
            congested: false,
        });
    }
    // 2. The LP.
    let mut out = out;
    solve_lp(quantities, nodes, demand, net, db, rules, ws, &mut out)?;
    // 3. Per-node dispatch.
    dispatch_by_node(quantities, nodes, demand, net, db, rules, ws, out)
}

/// The flows of the copper-plate injections `inj` into `flows`; true when
/// they fit every line.
fn copper_flows_fit(
    net: &Network,
    inj: &[f64],
    flows: &mut [f64],
    lp: &mut Lp,
    simplex: &mut Simplex,
) -> Result<bool> {
    net.flows_of(inj, flows);
    let fits = |flows: &[f64]| {
        flows
            .iter()
            .zip(net.lines())
            .all(|(f, line)| f.abs() <= line.capacity)
    };
    if fits(flows) {
        return Ok(true);
    }
    if net.model() == Model::Dc || net.radial() {
        return Ok(false);
    }
    // Transport on a meshed grid: any flow within the limits will do.
    let z = net.nodes();
    lp.reset(z);
    for (node, &v) in inj.iter().enumerate() {
        lp.b[node] = -v;
    }
    for line in net.lines() {
        let col = (0..z).map(|k| {
            if k == line.from {
                -1.0
            } else if k == line.to {
                1.0
            } else {
                0.0
            }
        });
        let cap = finite_cap(line.capacity, inj);
        let j = lp.push(0.0, -cap, cap, col);
        // From zero flows: no flow moves unless it has to.
        lp.init[j] = 0.0;
    }
    match simplex.solve(lp, false, None) {
        Ok(()) => {
            for (l, (f, line)) in flows.iter_mut().zip(net.lines()).enumerate() {
                *f = snap_flow(simplex.x[l], line.capacity);
            }
            Ok(true)
        }
        Err(Failure::Infeasible) => Ok(false),
        Err(e) => Err(e.into_error("transport flows")),
    }
}

/// The offer prices clipped to the cap and floor, as the last clearing
/// with this workspace used them.
impl NetWorkspace {
    pub fn clipped(&self) -> &[f64] {
        &self.clipped
    }

    /// Simplex iterations of the last LP solve, and the LP's rows and
    /// columns (for benchmarks and tests).
    pub fn lp_stats(&self) -> (usize, usize, usize) {
        (self.simplex.iterations, self.lp.m, self.lp.n)
    }
}

/// What each offer is paid per MWh under `rules.mechanism`: its node's
/// price (uniform) or its own clipped offer price (pay as bid).
pub fn settle(rules: &Rules, prices: &[f64], nodes: &[usize], clipped: &[f64], paid: &mut [f64]) {
    for ((p, &k), c) in paid.iter_mut().zip(nodes).zip(clipped.chunks(1)) {
        rules
            .mechanism
            .settle(prices[k], c, std::slice::from_mut(p));
    }
}

#[cfg(test)]
mod tests;
