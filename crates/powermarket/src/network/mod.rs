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
pub mod simplex;
mod topology;

pub use batch::{clear_network_batch, NetworkBatch, NetworkBatchOut};
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

/// A line capacity the LP can hold: infinity becomes twice the sum of
/// every absolute term (no acyclic flow reaches it).
fn finite_cap(capacity: f64, terms: &[f64]) -> f64 {
    if capacity.is_finite() {
        capacity
    } else {
        2.0 * terms.iter().map(|v| v.abs()).sum::<f64>() + 1.0
    }
}

/// A value within a relative 1e-9 of a bound, put on it.
fn snap(v: f64, lo: f64, hi: f64) -> f64 {
    let tol = 1e-9 * (1.0 + lo.abs().max(if hi.is_finite() { hi.abs() } else { 0.0 }));
    if (v - lo).abs() <= tol {
        lo
    } else if hi.is_finite() && (v - hi).abs() <= tol {
        hi
    } else {
        v.max(lo).min(hi)
    }
}

fn snap_flow(f: f64, capacity: f64) -> f64 {
    if capacity.is_finite() {
        snap(f, -capacity, capacity)
    } else {
        f
    }
}

/// Column offsets of the LP: offers, bids, shed, lines.
struct Columns {
    bids: usize,
    shed: usize,
    lines: usize,
}

fn columns(n: usize, b: usize, z: usize) -> Columns {
    Columns {
        bids: n,
        shed: n + b,
        lines: n + b + z,
    }
}

/// The price of shedding load: the shortage price (cap, else
/// `shortage_price`), raised to the highest clipped offer or bid price, so
/// that serving inelastic demand comes first. Without either, the highest
/// clipped offer or bid price `hi` under `"transport"` and on a radial
/// `"dc"` grid (where no node's price exceeds it), and `hi +
/// DC_VOLL_SPREAD x (hi - lo)` on a meshed `"dc"` grid, with `lo` the
/// lowest: loop flows can price a node above every offer, and load the grid
/// can serve must not be shed for that.
fn shed_price(clipped: &[f64], bid_prices: &[f64], rules: &Rules, net: &Network) -> f64 {
    let looped = net.model() == Model::Dc && !net.radial();
    let (lo, hi) = clipped
        .iter()
        .chain(bid_prices)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &p| {
            (lo.min(p), hi.max(p))
        });
    match rules.price_cap.or(rules.shortage_price) {
        Some(v) => v.max(hi),
        None if looped => default_dc_voll(lo, hi),
        None => hi,
    }
}

/// The LP's cost of shedding one MW: `v` raised by a hair (1e-10 relative
/// to the largest price magnitude, ten times the simplex's optimality
/// tolerance), so that an offer or bid priced exactly `v` anywhere is used
/// before load is shed. Prices set by shedding are reported at `v` itself.
fn shed_cost(v: f64, clipped: &[f64], bid_prices: &[f64]) -> f64 {
    let scale = clipped
        .iter()
        .chain(bid_prices)
        .fold(v.abs(), |m, &p| m.max(p.abs()));
    v + 1e-10 * (1.0 + scale)
}

/// How far above the highest offer or bid price the shedding price of a
/// `"dc"` network without a cap or shortage price lies, in multiples of the
/// spread of those prices.
pub const DC_VOLL_SPREAD: f64 = 10.0;

/// The shedding price of a `"dc"` network without a cap or shortage
/// price, given the lowest and highest clipped offer or bid prices.
pub fn default_dc_voll(lo: f64, hi: f64) -> f64 {
    hi + DC_VOLL_SPREAD * (hi - lo)
}

/// The LP's start values of the offers' and the nodes' shedding columns.
#[derive(Clone, Copy)]
struct Start<'a> {
    offer: &'a [f64],
    shed: &'a [f64],
}

/// The dispatch columns of the LP, in column order: the offers (cost the
/// clipped offer price, up to their quantity), the bids (value the bid
/// price) and each node's shed load (cost `v`), each with the LP column
/// `col(node, sign)` of its node: the two models differ only in that column.
/// `costs` is (clipped offer prices, bid prices, `v`).
#[allow(clippy::too_many_arguments)]
fn push_dispatch<I: IntoIterator<Item = f64>>(
    lp: &mut Lp,
    costs: (&[f64], &[f64], f64),
    start: Start<'_>,
    quantities: &[f64],
    nodes: &[usize],
    db: &NodalBids<'_>,
    demand: &[f64],
    col: impl Fn(usize, f64) -> I,
) {
    let (offer_prices, bid_prices, v) = costs;
    for (i, (&q, &node)) in quantities.iter().zip(nodes).enumerate() {
        let j = lp.push(offer_prices[i], 0.0, q, col(node, 1.0));
        lp.init[j] = start.offer[i];
    }
    for ((&p, &q), &node) in bid_prices.iter().zip(db.quantities).zip(db.nodes) {
        lp.push(-p, 0.0, q, col(node, -1.0));
    }
    for (node, &d) in demand.iter().enumerate() {
        let j = lp.push(v, 0.0, d, col(node, 1.0));
        lp.init[j] = start.shed[node];
    }
}

/// Build and solve the LP: raw node prices (the duals) go to `out.prices`,
/// flows to `out.flows`, and the LP values stay in `ws.simplex.x`
/// (offers, bids, shed first, as [`columns`] lays them out).
///
/// Both models start from a feasible point (every node serves its own
/// demand from its own offers in merit order and sheds the rest; no flow),
/// so there is no phase 1. Under the DC model the line
/// rows are added lazily: the LP starts with the lines the copper-plate
/// dispatch overloads (in `out.flows` on entry) and adds any line the
/// solution overloads, until none is (each round solves afresh); the lines
/// left out are not binding, so their duals are zero.
#[allow(clippy::too_many_arguments)]
fn solve_lp(
    quantities: &[f64],
    nodes: &[usize],
    demand: &[f64],
    net: &Network,
    db: NodalBids<'_>,
    rules: &Rules,
    ws: &mut NetWorkspace,
    out: &mut NetworkOut<'_>,
) -> Result<()> {
    let (n, b, z) = (quantities.len(), db.prices.len(), net.nodes());
    let cols = columns(n, b, z);
    let v = shed_price(&ws.clipped, &ws.bid_prices, rules, net);
    // Every absolute term, for the finite stand-in of an unlimited line.
    let scale: f64 = quantities.iter().sum::<f64>()
        + demand.iter().sum::<f64>()
        + db.quantities.iter().sum::<f64>();
    let big = 2.0 * scale + 1.0;
    // The start: each node serves its own demand from its own offers in
    // merit order and sheds the rest (no flow, no bid): feasible under both
    // models, and much nearer the optimum than shedding everything.
    group_by_node(nodes, z, &mut ws.by_node, &mut ws.start);
    ws.start_offer.clear();
    ws.start_offer.resize(n, 0.0);
    ws.start_shed.clear();
    ws.start_shed.extend_from_slice(demand);
    for (node, &d) in demand.iter().enumerate() {
        let local = &mut ws.by_node[ws.start[node]..ws.start[node + 1]];
        let clipped = &ws.clipped;
        local.sort_by(|&a, &b| clipped[a].total_cmp(&clipped[b]).then(a.cmp(&b)));
        let mut left = d;
        for &i in local.iter() {
            if left <= 0.0 {
                break;
            }
            let take = quantities[i].min(left);
            ws.start_offer[i] = take;
            left = (left - take).max(0.0);
        }
        ws.start_shed[node] = left;
    }
    let cap_of = |line: &Line| {
        if line.capacity.is_finite() {
            line.capacity
        } else {
            big
        }
    };
    if net.model() == Model::Transport {
        let lp = &mut ws.lp;
        lp.reset(z);
        lp.b.copy_from_slice(demand);
        let unit = |k: usize, s: f64| (0..z).map(move |r| if r == k { s } else { 0.0 });
        let start = Start {
            offer: &ws.start_offer,
            shed: &ws.start_shed,
        };
        let costs = (
            &ws.clipped[..],
            &ws.bid_prices[..],
            shed_cost(v, &ws.clipped, &ws.bid_prices),
        );
        push_dispatch(lp, costs, start, quantities, nodes, &db, demand, unit);
        for line in net.lines() {
            let cap = cap_of(line);
            let col = (0..z).map(|r| {
                if r == line.from {
                    -1.0
                } else if r == line.to {
                    1.0
                } else {
                    0.0
                }
            });
            let j = lp.push(0.0, -cap, cap, col);
            // Free at zero: the start needs no flow at a limit.
            lp.init[j] = 0.0;
        }
        ws.crash.clear();
        ws.crash.extend((0..z).map(|node| cols.shed + node));
        ws.simplex
            .solve(lp, true, Some(&ws.crash))
            .map_err(|e| e.into_error("the dispatch LP"))?;
        let x = &ws.simplex.x;
        for (l, (f, line)) in out.flows.iter_mut().zip(net.lines()).enumerate() {
            *f = snap_flow(x[cols.lines + l], line.capacity) + 0.0;
        }
        out.prices.copy_from_slice(&ws.simplex.y[..z]);
        return Ok(());
    }
    // DC: the lines the copper plate overloads first.
    ws.active.clear();
    for (l, (f, line)) in out.flows.iter().zip(net.lines()).enumerate() {
        if f.abs() > line.capacity {
            ws.active.push(l);
        }
    }
    loop {
        let k = ws.active.len();
        let lp = &mut ws.lp;
        // Row 0: the balance of the grid; row 1 + i: active line i's flow
        // equals its PTDF row times the injections.
        lp.reset(1 + k);
        lp.b[0] = total_demand(demand);
        for (i, &l) in ws.active.iter().enumerate() {
            let row = net.ptdf_row(l);
            lp.b[1 + i] = row.iter().zip(demand).map(|(a, d)| a * d).sum();
        }
        let active = &ws.active;
        let at = |node: usize, s: f64| {
            std::iter::once(s).chain(active.iter().map(move |&l| s * net.ptdf_row(l)[node]))
        };
        let start = Start {
            offer: &ws.start_offer,
            shed: &ws.start_shed,
        };
        let costs = (
            &ws.clipped[..],
            &ws.bid_prices[..],
            shed_cost(v, &ws.clipped, &ws.bid_prices),
        );
        push_dispatch(lp, costs, start, quantities, nodes, &db, demand, at);
        for (i, &l) in active.iter().enumerate() {
            let cap = cap_of(&net.lines()[l]);
            let j = lp.push(
                0.0,
                -cap,
                cap,
                (0..=k).map(move |r| if r == 1 + i { -1.0 } else { 0.0 }),
            );
            lp.init[j] = 0.0;
        }
        // The start: node 0 (the reference: a zero PTDF column) sheds in
        // the basis, and the active lines' flows (all zero).
        ws.crash.clear();
        ws.crash.push(cols.shed);
        ws.crash.extend((0..k).map(|i| cols.lines + i));
        ws.simplex
            .solve(lp, true, Some(&ws.crash))
            .map_err(|e| e.into_error("the dispatch LP"))?;
        // Flows of every line from the LP's injections.
        let x = &ws.simplex.x;
        for (node, &d) in demand.iter().enumerate() {
            ws.inj[node] = x[cols.shed + node] - d;
        }
        for (i, &node) in nodes.iter().enumerate() {
            ws.inj[node] += x[i];
        }
        for (j, &node) in db.nodes.iter().enumerate() {
            ws.inj[node] -= x[cols.bids + j];
        }
        net.flows_of(&ws.inj, out.flows);
        for (i, &l) in ws.active.iter().enumerate() {
            out.flows[l] = x[cols.lines + i];
        }
        let before = ws.active.len();
        for (l, (f, line)) in out.flows.iter().zip(net.lines()).enumerate() {
            let tol = 1e-9 * (1.0 + line.capacity);
            if f.abs() > line.capacity + tol && !ws.active.contains(&l) {
                ws.active.push(l);
            }
        }
        if ws.active.len() == before {
            break;
        }
    }
    for (f, line) in out.flows.iter_mut().zip(net.lines()) {
        *f = snap_flow(*f, line.capacity) + 0.0;
    }
    let y = &ws.simplex.y;
    for (node, p) in out.prices.iter_mut().enumerate() {
        *p = y[0]
            + ws.active
                .iter()
                .enumerate()
                .map(|(i, &l)| net.ptdf_row(l)[node] * y[1 + i])
                .sum::<f64>();
    }
    Ok(())
}

/// Per-node dispatch from the LP's node totals, the prices and the flows.
#[allow(clippy::too_many_arguments)]
fn dispatch_by_node(
    quantities: &[f64],
    nodes: &[usize],
    demand: &[f64],
    net: &Network,
    db: NodalBids<'_>,
    rules: &Rules,
    ws: &mut NetWorkspace,
    out: NetworkOut<'_>,
) -> Result<NetworkClearing> {
    let (n, b, z) = (quantities.len(), db.prices.len(), net.nodes());
    let cols = columns(n, b, z);
    let v = shed_price(&ws.clipped, &ws.bid_prices, rules, net);
    let x = &ws.simplex.x;
    // Exact prices where a node has a variable strictly inside its bounds.
    ws.fixed.clear();
    ws.fixed.resize(z, None);
    let inside = |j: usize, hi: f64| {
        let xj = x[j];
        let tol = 1e-9 * (1.0 + hi.abs());
        ws.simplex.is_basic(j) && xj > tol && xj < hi - tol
    };
    for i in 0..n {
        if inside(i, quantities[i]) {
            ws.fixed[nodes[i]] = Some(ws.clipped[i]);
        }
    }
    for k in 0..b {
        if inside(cols.bids + k, db.quantities[k]) {
            ws.fixed[db.nodes[k]] = Some(ws.bid_prices[k]);
        }
    }
    for (node, &d) in demand.iter().enumerate() {
        if inside(cols.shed + node, d) {
            ws.fixed[node] = Some(v);
        }
    }
    if net.model() == Model::Transport {
        // Zones: nodes joined by lines strictly inside their limits share
        // one price.
        ws.zone.clear();
        ws.zone.extend(0..z);
        fn root(zone: &mut [usize], mut a: usize) -> usize {
            while zone[a] != a {
                zone[a] = zone[zone[a]];
                a = zone[a];
            }
            a
        }
        for (f, line) in out.flows.iter().zip(net.lines()) {
            if f.abs() < line.capacity {
                let (a, c) = (root(&mut ws.zone, line.from), root(&mut ws.zone, line.to));
                if a != c {
                    ws.zone[a.max(c)] = a.min(c);
                }
            }
        }
        for node in 0..z {
            if let Some(p) = ws.fixed[node] {
                let r = root(&mut ws.zone, node);
                if ws.fixed[r].is_none() {
                    ws.fixed[r] = Some(p);
                }
            }
        }
        for node in 0..z {
            let r = root(&mut ws.zone, node);
            if let Some(p) = ws.fixed[r] {
                out.prices[node] = p;
            }
        }
    } else {
        for (p, f) in out.prices.iter_mut().zip(&ws.fixed) {
            if let Some(f) = f {
                *p = *f;
            }
        }
    }
    for p in out.prices.iter_mut() {
        *p += 0.0;
    }
    // Group offers and bids by node (counting sort, index order within).
    group_by_node(nodes, z, &mut ws.by_node, &mut ws.start);
    group_by_node(db.nodes, z, &mut ws.bids_by_node, &mut ws.bid_start);
    let x = &ws.simplex.x;
    for node in 0..z {
        let offers = &ws.by_node[ws.start[node]..ws.start[node + 1]];
        let local_bids = &ws.bids_by_node[ws.bid_start[node]..ws.bid_start[node + 1]];
        let generation: f64 = offers.iter().map(|&i| snap(x[i], 0.0, quantities[i])).sum();
        let mut served_total: f64 = local_bids
            .iter()
            .map(|&k| snap(x[cols.bids + k], 0.0, db.quantities[k]))
            .sum();
        let mut shed = snap(x[cols.shed + node], 0.0, demand[node]);
        // Shedding while serving a bid at the same node (both at price V):
        // serve the inelastic demand first.
        let swap = shed.min(served_total);
        shed -= swap;
        served_total -= swap;
        // Offers: the node's total output (and what it sheds) by the
        // copper-plate rule and tie rule.
        let need = generation + shed;
        if offers.is_empty() {
            out.shed[node] = need;
        } else {
            ws.local_b.clear();
            ws.local_q.clear();
            for &i in offers {
                ws.local_b.push(ws.clipped[i]);
                ws.local_q.push(quantities[i]);
            }
            ws.local_c.clear();
            ws.local_c.resize(offers.len(), 0.0);
            let c = clearing::clear_unchecked(
                &ws.local_b,
                &ws.local_q,
                need,
                rules,
                &mut ws.ws,
                &mut ws.local_c,
            );
            for (&i, &q) in offers.iter().zip(&ws.local_c) {
                out.cleared[i] = q;
            }
            out.shed[node] = if c.shortage {
                (need - c.total).max(0.0)
            } else {
                0.0
            };
        }
        // Bids: from the highest price down, pro rata within a price.
        let (lo, hi) = (ws.bid_start[node], ws.bid_start[node + 1]);
        serve_bids(
            &mut ws.bids_by_node[lo..hi],
            &ws.bid_prices,
            db.quantities,
            served_total,
            out.served,
        );
    }
    let congestion_rent = out
        .flows
        .iter()
        .zip(net.lines())
        .map(|(f, line)| f.abs() * (out.prices[line.to] - out.prices[line.from]).abs())
        .sum();
    Ok(NetworkClearing {
        congestion_rent,
        shortfall: out.shed.iter().sum(),
        congested: true,
    })
}

/// Items `0..nodes.len()` grouped by node: `order[start[z]..start[z + 1]]`
/// are those at node z, in index order.
fn group_by_node(nodes: &[usize], z: usize, order: &mut Vec<usize>, start: &mut Vec<usize>) {
    start.clear();
    start.resize(z + 1, 0);
    for &k in nodes {
        start[k + 1] += 1;
    }
    for node in 0..z {
        start[node + 1] += start[node];
    }
    order.clear();
    order.resize(nodes.len(), 0);
    // start[k] is the cursor of node k, then shifted back by one node.
    for (i, &k) in nodes.iter().enumerate() {
        order[start[k]] = i;
        start[k] += 1;
    }
    for node in (1..=z).rev() {
        start[node] = start[node - 1];
    }
    start[0] = 0;
}

/// Serve `total` MW to the bids `local` (indices, sorted here by price,
/// highest first) from the highest price down; the bids of the price where
/// it runs out share the rest pro rata.
fn serve_bids(
    local: &mut [usize],
    prices: &[f64],
    quantities: &[f64],
    total: f64,
    served: &mut [f64],
) {
    local.sort_by(|&a, &b| prices[b].total_cmp(&prices[a]).then(a.cmp(&b)));
    let mut left = total;
    let mut i = 0;
    while i < local.len() {
        let top = prices[local[i]];
        let mut j = i;
        let mut group = 0.0;
        while j < local.len() && prices[local[j]] == top {
            group += quantities[local[j]];
            j += 1;
        }
        let tol = 1e-9 * (1.0 + group);
        let full = left >= group - tol;
        let share = if full || group <= 0.0 {
            1.0
        } else {
            (left / group).max(0.0)
        };
        for &k in &local[i..j] {
            served[k] = if full {
                quantities[k]
            } else {
                quantities[k] * share
            };
        }
        left = (left - group).max(0.0);
        i = j;
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
