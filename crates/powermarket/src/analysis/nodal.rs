//! Market power at the nodes of a networked scenario: how much of each
//! node's demand the suppliers can reach through the lines, and who is
//! pivotal there ([`super::market_power`]'s per-node part).
//!
//! **Reachable supply.** In hour `t` supplier `j` (a generator, or a storage
//! unit when the record has its state of charge) at node `z(j)` can sell at
//! most its available capacity `A_tj`. The supply that can reach node `z`,
//! `F_tz`, is the maximum flow from the suppliers to `z`: a source feeds
//! every node `y` up to `sum_{j at y} A_tj` (node `z`'s own suppliers feed
//! it directly), and every line carries up to its capacity in either
//! direction (the transport model's limits). Without supplier `i`,
//! `F_tz^{-i}` is the same maximum flow with `A_ti` removed.
//!
//! Under the `"dc"` model the flows follow the PTDF, so what can actually
//! reach `z` is at most `F_tz`: the indices here are upper bounds of the
//! supply, and a supplier flagged pivotal is pivotal under DC too. On a
//! copper plate of several nodes the lines are not used: `F_tz` is all the
//! supply.
//!
//! The other nodes' demand is not subtracted (as the system-wide RSI does
//! not subtract anything either): `F_tz` is what could reach `z` if every
//! other node's demand were served from elsewhere.

use super::try_vec;
use crate::error::Result;
use crate::scenario::Scenario;

/// The per-node metrics of a networked scenario's episode (T hours, Z
/// nodes, A suppliers), row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct NodePower {
    /// Nodes Z.
    pub z: usize,
    /// Demand at each node, `D_tz = demand[t] * share[t mod T, z]`, MW, (T, Z).
    pub node_demand: Vec<f64>,
    /// Reachable supply `F_tz`, MW, (T, Z) (module docs).
    pub reachable: Vec<f64>,
    /// Residual supply index of each supplier at its own node `z(i)`,
    /// `F_{t,z(i)}^{-i} / D_{t,z(i)}` (`+inf` when that node's demand is 0),
    /// (T, A).
    pub local_rsi: Vec<f64>,
    /// `local_rsi < 1`: node `z(i)`'s demand cannot be met without `i`, (T, A).
    pub local_pivotal: Vec<bool>,
    /// The node's residual supply index, `min_j F_tz^{-j} / D_tz` over
    /// every supplier `j` (at any node; `+inf` when `D_tz = 0`), (T, Z).
    pub node_rsi: Vec<f64>,
    /// `node_rsi < 1`: some supplier, at the node or behind a line, is
    /// pivotal for the node's demand, (T, Z).
    pub node_pivotal: Vec<bool>,
    /// Lerner index at the generator's own node price,
    /// `(p_{t,z(i)} - c_i) / p_{t,z(i)}` where `x_ti > 0` and the price is
    /// > 0, else NaN, (T, N); `None` without node prices.
    pub lerner: Option<Vec<f64>>,
}

/// Edmonds–Karp maximum flow on a small undirected graph, reusing memory.
/// Arcs come in pairs (`e`, `e ^ 1`); a line is a pair of arcs of its
/// capacity each, a source arc's partner has capacity 0.
#[derive(Default)]
struct MaxFlow {
    head: Vec<usize>,
    cap: Vec<f64>,
    flow: Vec<f64>,
    /// Arcs leaving each node: `out[start[v]..start[v + 1]]`.
    start: Vec<usize>,
    out: Vec<usize>,
    /// The arc each node was reached by in the last search.
    via: Vec<usize>,
    queue: Vec<usize>,
}

impl MaxFlow {
    /// The graph of `z` nodes and the source (node `z`): `lines` as pairs
    /// of arcs, then one source arc per node (capacities set by [`Self::solve`]).
    /// `lines` are the scenario's `[from, to, capacity, reactance]` rows
    /// (checked: node indices in `[0, z)`, capacities >= 0).
    fn new(z: usize, lines: &[[f64; 4]]) -> Result<Self> {
        let arcs = 2 * (lines.len() + z);
        let mut g = MaxFlow {
            head: try_vec("scenario", arcs, 0usize)?,
            cap: try_vec("scenario", arcs, 0.0)?,
            flow: try_vec("scenario", arcs, 0.0)?,
            start: try_vec("scenario", z + 2, 0usize)?,
            out: try_vec("scenario", arcs, 0usize)?,
            via: try_vec("scenario", z + 1, usize::MAX)?,
            queue: try_vec("scenario", z + 1, 0usize)?,
        };
        let mut tail = try_vec("scenario", arcs, 0usize)?;
        for (l, &[from, to, c, _]) in lines.iter().enumerate() {
            let (from, to) = (from as usize, to as usize);
            (tail[2 * l], g.head[2 * l], g.cap[2 * l]) = (from, to, c);
            (tail[2 * l + 1], g.head[2 * l + 1], g.cap[2 * l + 1]) = (to, from, c);
        }
        for y in 0..z {
            let e = 2 * (lines.len() + y);
            (tail[e], g.head[e]) = (z, y);
            (tail[e + 1], g.head[e + 1]) = (y, z);
        }
        for &v in &tail {
            g.start[v + 1] += 1;
        }
        for v in 0..=z {
            g.start[v + 1] += g.start[v];
        }
        let mut fill = try_vec("scenario", z + 2, 0usize)?;
        fill.copy_from_slice(&g.start);
        for (e, &v) in tail.iter().enumerate() {
            g.out[fill[v]] = e;
            fill[v] += 1;
        }
        Ok(g)
    }

    /// The source arc of node `y`.
    fn source_arc(&self, y: usize) -> usize {
        self.cap.len() - 2 * (self.via.len() - 1) + 2 * y
    }

    /// The maximum flow into `sink` from the source, whose arc to node `y`
    /// has capacity `supply[y]`; residual capacities below `eps` count as 0.
    fn solve(&mut self, supply: &[f64], sink: usize, eps: f64) -> f64 {
        let source = self.via.len() - 1;
        for (y, &s) in supply.iter().enumerate() {
            let e = self.source_arc(y);
            self.cap[e] = s;
        }
        self.flow.fill(0.0);
        let mut total = 0.0;
        loop {
            // Breadth-first search for a shortest augmenting path.
            self.via.fill(usize::MAX);
            self.queue.clear();
            self.queue.push(source);
            self.via[source] = usize::MAX - 1;
            let mut k = 0;
            while k < self.queue.len() && self.via[sink] == usize::MAX {
                let v = self.queue[k];
                k += 1;
                for &e in &self.out[self.start[v]..self.start[v + 1]] {
                    let w = self.head[e];
                    if self.via[w] == usize::MAX && self.cap[e] - self.flow[e] > eps {
                        self.via[w] = e;
                        self.queue.push(w);
                    }
                }
            }
            if self.via[sink] == usize::MAX {
                return total;
            }
            let mut push = f64::INFINITY;
            let mut v = sink;
            while v != source {
                let e = self.via[v];
                push = push.min(self.cap[e] - self.flow[e]);
                v = self.head[e ^ 1];
            }
            if !push.is_finite() {
                // Only reachable with an infinite supply, which the checks exclude.
                return f64::INFINITY;
            }
            let mut v = sink;
            while v != source {
                let e = self.via[v];
                self.flow[e] += push;
                self.flow[e ^ 1] -= push;
                v = self.head[e ^ 1];
            }
            total += push;
        }
    }
}

/// The inputs of one hour of [`node_power`].
pub(super) struct Hour<'a> {
    pub h: usize,
    pub demand: f64,
    /// Available capacity of each supplier, MW (A values).
    pub avail: &'a [f64],
}

/// Memory and results of the per-node metrics.
pub(super) struct Nodal {
    out: NodePower,
    /// The node of each supplier.
    node_of: Vec<usize>,
    /// Per node: the supply at it.
    supply: Vec<f64>,
    cut: Vec<f64>,
    graph: Option<MaxFlow>,
    /// Flow on each node's source arc in the full maximum flow.
    used: Vec<f64>,
    a: usize,
}

impl Nodal {
    /// Memory for `t` hours of `a` suppliers of networked scenario `s`
    /// (`n` generators; node Lerner indices when `with_lerner`).
    pub(super) fn new(s: &Scenario, t: usize, a: usize, with_lerner: bool) -> Result<Self> {
        let z = s.z();
        let tz = super::checked_size("prices", &[t, z])?;
        let ta = super::checked_size("prices", &[t, a])?;
        let tn = super::checked_size("prices", &[t, s.n()])?;
        let graph = match s.network.model() {
            Some(_) => Some(MaxFlow::new(z, &s.lines)?),
            None => None,
        };
        let mut node_of = try_vec("scenario", a, 0usize)?;
        for (j, z) in node_of.iter_mut().enumerate() {
            *z = s.node_of(j);
        }
        Ok(Nodal {
            out: NodePower {
                z,
                node_demand: try_vec("prices", tz, 0.0)?,
                reachable: try_vec("prices", tz, 0.0)?,
                local_rsi: try_vec("prices", ta, 0.0)?,
                local_pivotal: try_vec("prices", ta, false)?,
                node_rsi: try_vec("prices", tz, 0.0)?,
                node_pivotal: try_vec("prices", tz, false)?,
                lerner: if with_lerner {
                    Some(try_vec("prices", tn, f64::NAN)?)
                } else {
                    None
                },
            },
            node_of,
            supply: try_vec("scenario", z, 0.0)?,
            cut: try_vec("scenario", z, 0.0)?,
            graph,
            used: try_vec("scenario", z, 0.0)?,
            a,
        })
    }

    /// The metrics of one hour.
    pub(super) fn hour(&mut self, s: &Scenario, hr: &Hour<'_>) {
        let (z, a, h) = (self.out.z, self.a, hr.h);
        self.supply.fill(0.0);
        for (j, &x) in hr.avail.iter().enumerate() {
            self.supply[self.node_of[j]] += x;
        }
        let total: f64 = self.supply.iter().sum();
        let eps = 1e-12 * total.max(1.0);
        for node in 0..z {
            let d = hr.demand * s.demand_share(h % s.t(), node);
            let at = h * z + node;
            self.out.node_demand[at] = d;
            // The full reachable supply, and the flow each node sends.
            let full = match &mut self.graph {
                None => {
                    self.used.copy_from_slice(&self.supply);
                    total
                }
                Some(g) => {
                    let f = g.solve(&self.supply, node, eps);
                    for (y, u) in self.used.iter_mut().enumerate() {
                        *u = g.flow[g.source_arc(y)];
                    }
                    f
                }
            };
            self.out.reachable[at] = full;
            let mut lowest = f64::INFINITY;
            for j in 0..a {
                let (y, own) = (self.node_of[j], hr.avail[j]);
                // Removing j changes nothing while its node's source arc has
                // room to spare for all of it.
                let without = if own <= 0.0 || self.used[y] <= self.supply[y] - own {
                    full
                } else {
                    match &mut self.graph {
                        None => total - own,
                        Some(g) => {
                            self.cut.copy_from_slice(&self.supply);
                            self.cut[y] = (self.cut[y] - own).max(0.0);
                            g.solve(&self.cut, node, eps)
                        }
                    }
                };
                let rsi = if d > 0.0 { without / d } else { f64::INFINITY };
                lowest = lowest.min(rsi);
                if y == node {
                    self.out.local_rsi[h * a + j] = rsi;
                    self.out.local_pivotal[h * a + j] = rsi < 1.0;
                }
            }
            self.out.node_rsi[at] = lowest;
            self.out.node_pivotal[at] = lowest < 1.0;
        }
    }

    /// The Lerner index of hour `h` at the node prices `prices` (Z values).
    pub(super) fn lerner(&mut self, s: &Scenario, h: usize, cleared: &[f64], prices: &[f64]) {
        let n = s.n();
        if let Some(l) = &mut self.out.lerner {
            for i in 0..n {
                let p = prices[self.node_of[i]];
                if cleared[i] > 0.0 && p > 0.0 {
                    l[h * n + i] = (p - s.costs[i]) / p;
                }
            }
        }
    }

    pub(super) fn finish(self) -> NodePower {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_flow_of_a_small_grid() {
        // 0 -- 1 (cap 30), 1 -- 2 (cap 10), 0 -- 2 (cap 5); supplies 100, 0, 7.
        let lines = [
            [0.0, 1.0, 30.0, 1.0],
            [1.0, 2.0, 10.0, 1.0],
            [0.0, 2.0, 5.0, 1.0],
        ];
        let mut g = MaxFlow::new(3, &lines).unwrap();
        let supply = [100.0, 0.0, 7.0];
        // Into 2: its own 7, 10 through 1 and 5 direct.
        assert_eq!(g.solve(&supply, 2, 1e-12), 22.0);
        // Into 1: 30 from 0 and 10 from 2 (7 of 2's own, 3 more from 0 via 2).
        assert_eq!(g.solve(&supply, 1, 1e-12), 40.0);
        assert_eq!(g.solve(&supply, 0, 1e-12), 107.0);
        let inf = [[0.0, 1.0, f64::INFINITY, 1.0]];
        let mut g = MaxFlow::new(2, &inf).unwrap();
        assert_eq!(g.solve(&[3.0, 4.0], 1, 1e-12), 7.0);
    }
}
