//! The LP of one congested hour: its columns (offers, bids, shedding,
//! flows), the shedding price, and its solve by [`super::simplex`].

use super::dispatch::group_by_node;
use super::*;

/// A line capacity the LP can hold: infinity becomes twice the sum of
/// every absolute term (no acyclic flow reaches it).
pub(super) fn finite_cap(capacity: f64, terms: &[f64]) -> f64 {
    if capacity.is_finite() {
        capacity
    } else {
        2.0 * terms.iter().map(|v| v.abs()).sum::<f64>() + 1.0
    }
}

/// A value within a relative 1e-9 of a bound, put on it.
pub(super) fn snap(v: f64, lo: f64, hi: f64) -> f64 {
    let tol = 1e-9 * (1.0 + lo.abs().max(if hi.is_finite() { hi.abs() } else { 0.0 }));
    if (v - lo).abs() <= tol {
        lo
    } else if hi.is_finite() && (v - hi).abs() <= tol {
        hi
    } else {
        v.max(lo).min(hi)
    }
}

pub(super) fn snap_flow(f: f64, capacity: f64) -> f64 {
    if capacity.is_finite() {
        snap(f, -capacity, capacity)
    } else {
        f
    }
}

/// Column offsets of the LP: offers, bids, shed, lines.
pub(super) struct Columns {
    pub(super) bids: usize,
    pub(super) shed: usize,
    pub(super) lines: usize,
}

pub(super) fn columns(n: usize, b: usize, z: usize) -> Columns {
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
pub(super) fn shed_price(clipped: &[f64], bid_prices: &[f64], rules: &Rules, net: &Network) -> f64 {
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
pub(super) fn shed_cost(v: f64, clipped: &[f64], bid_prices: &[f64]) -> f64 {
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
pub(super) struct Start<'a> {
    pub(super) offer: &'a [f64],
    pub(super) shed: &'a [f64],
}

/// The dispatch columns of the LP, in column order: the offers (cost the
/// clipped offer price, up to their quantity), the bids (value the bid
/// price) and each node's shed load (cost `v`), each with the LP column
/// `col(node, sign)` of its node: the two models differ only in that column.
/// `costs` is (clipped offer prices, bid prices, `v`).
#[allow(clippy::too_many_arguments)]
pub(super) fn push_dispatch<I: IntoIterator<Item = f64>>(
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
pub(super) fn solve_lp(
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
