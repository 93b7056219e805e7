//! From the LP's solution to the result: exact prices at marginal nodes,
//! zones of the transport model, and each node's dispatch by the tie rule.

use super::lp::{columns, snap};
use super::*;

/// Per-node dispatch from the LP's node totals, the prices and the flows.
#[allow(clippy::too_many_arguments)]
pub(super) fn dispatch_by_node(
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
pub(super) fn group_by_node(
    nodes: &[usize],
    z: usize,
    order: &mut Vec<usize>,
    start: &mut Vec<usize>,
) {
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
pub(super) fn serve_bids(
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
