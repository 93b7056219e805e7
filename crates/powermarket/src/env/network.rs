//! The network part of a step: the hour's node demands and node bids, the
//! clearing on the network ([`crate::network`]) or, for a copper plate of
//! several nodes, on one price, and the node prices that settle each offer.
//! The rules are in `docs/semantics.md` ("Networks").

use super::{Market, Scratch};
use crate::clearing::{clear_elastic_unchecked, group_bids, spread_served, Clearing, DemandCurve};
use crate::error::{MarketError, Result};
use crate::network::{clear_network_unchecked, NetWorkspace, Network, NetworkOut, NodalBids};
use crate::scenario::Scenario;

/// What a networked market knows of its network.
#[derive(Clone, Debug)]
pub struct Grid {
    /// The checked network; `None` for a copper plate of several nodes.
    pub net: Option<Network>,
    /// Nodes Z.
    pub z: usize,
    /// Lines L.
    pub lines: usize,
    /// The node of each agent (A values).
    pub node_of: Vec<usize>,
    /// Share of each node's demand that is inelastic (Z values).
    inelastic: Vec<f64>,
    /// The scenario's demand bids: (price clipped to the cap and floor,
    /// share of its node's demand, node).
    bids: Vec<(f64, f64, usize)>,
}

impl Grid {
    /// The grid of a validated networked scenario (`None` otherwise).
    pub fn new(s: &Scenario, rules: &crate::clearing::Rules) -> Result<Option<Self>> {
        if !s.networked() {
            return Ok(None);
        }
        let z = s.z();
        Ok(Some(Grid {
            net: s.grid()?,
            z,
            lines: s.lines.len(),
            node_of: (0..s.agents()).map(|a| s.node_of(a)).collect(),
            inelastic: (0..z).map(|node| s.inelastic_share_at(node)).collect(),
            bids: s
                .demand_bids
                .iter()
                .enumerate()
                .map(|(k, &(p, share))| (rules.clip(p), share, s.bid_node(k)))
                .collect(),
        }))
    }

    /// Flows reported per hour: L values (zeros on a copper plate).
    pub fn flows_len(&self) -> usize {
        self.lines
    }
}

/// Per-step memory of a networked market.
#[derive(Clone, Debug, Default)]
pub struct GridScratch {
    ws: NetWorkspace,
    /// Each node's demand, then its inelastic part, MW (Z values).
    node_demand: Vec<f64>,
    /// The node of each offer of the book.
    offer_nodes: Vec<usize>,
    bid_prices: Vec<f64>,
    bid_quantities: Vec<f64>,
    bid_nodes: Vec<usize>,
    /// Node prices of the hour, €/MWh (Z values).
    pub prices: Vec<f64>,
    /// Line flows of the hour, MW (L values).
    pub flows: Vec<f64>,
    shed: Vec<f64>,
    /// Congestion rent of the hour, €/h.
    pub congestion_rent: f64,
    group_of: Vec<u32>,
    served_g: Vec<f64>,
    copper_groups: Vec<(f64, f64)>,
    /// What the memory was reserved for: (offers, bids, nodes, lines).
    sized_for: Option<(usize, usize, usize, usize)>,
}

/// What the memory of a step of `m` depends on: (offers in the book, bids,
/// nodes, lines); `None` without a grid.
fn sizes_of(m: &Market) -> Option<(usize, usize, usize, usize)> {
    m.grid.as_ref().map(|g| {
        (
            m.offers() + m.storage_blocks(),
            g.bids.len() + m.storage_blocks(),
            g.z,
            g.lines,
        )
    })
}

impl GridScratch {
    /// Memory for a step of `m`, allocated fallibly (no-op without a grid).
    pub fn try_for(m: &Market, what: &'static str) -> Result<Self> {
        let mut g = GridScratch::default();
        let Some((book, bids, z, lines)) = sizes_of(m) else {
            return Ok(g);
        };
        g.sized_for = sizes_of(m);
        let fail = |bytes: usize| MarketError::Memory { what, bytes };
        fn reserve<T>(v: &mut Vec<T>, n: usize, fail: impl Fn(usize) -> MarketError) -> Result<()> {
            v.try_reserve_exact(n)
                .map_err(|_| fail(n.saturating_mul(std::mem::size_of::<T>())))
        }
        reserve(&mut g.node_demand, z, fail)?;
        reserve(&mut g.offer_nodes, book, fail)?;
        reserve(&mut g.bid_prices, bids, fail)?;
        reserve(&mut g.bid_quantities, bids, fail)?;
        reserve(&mut g.bid_nodes, bids, fail)?;
        reserve(&mut g.group_of, bids, fail)?;
        reserve(&mut g.served_g, bids, fail)?;
        reserve(&mut g.copper_groups, bids, fail)?;
        g.prices = crate::error::try_zeros(z, what)?;
        g.flows = crate::error::try_zeros(lines, what)?;
        g.shed = crate::error::try_zeros(z, what)?;
        g.ws.try_reserve(book, bids, z, lines)?;
        Ok(g)
    }

    /// True when sized for a step of `m` (a thread's scratch may have
    /// served another market before).
    pub fn fits(&self, m: &Market) -> bool {
        self.sized_for == sizes_of(m)
    }
}

/// Clear hour `t` of a networked market whose offers are in `sc` (prices
/// clipped; the book is the generator offers, then the storage discharge
/// blocks), against the realised total demand `demand`. Writes the
/// dispatch (`sc.cleared`), one bid group per bid with its served MW
/// (`sc.groups`, `sc.served`: the scenario's bids, then the storage charge
/// blocks, whose group index is set in `sc.sto.charging`), the node prices,
/// flows and congestion rent (`sc.grid`). Returns the clearing (its price
/// the demand-weighted mean of the node prices) and the unserved inelastic
/// demand, MW, summed over the nodes.
pub(crate) fn clear_hour(
    m: &Market,
    grid: &Grid,
    t: usize,
    demand: f64,
    sc: &mut Scratch,
) -> Result<(Clearing, f64)> {
    let s = &m.scenario;
    let (n, k) = (m.n(), m.segments());
    let len = m.offers() + sc.sto.discharging.len();
    let g = &mut sc.grid;
    g.node_demand.clear();
    g.node_demand
        .extend((0..grid.z).map(|node| demand * s.demand_share(t, node)));
    // Bids: the scenario's (a share of their node's demand), then the charge blocks.
    sc.groups.clear();
    g.bid_nodes.clear();
    for &(p, share, node) in &grid.bids {
        sc.groups.push((p, share * g.node_demand[node]));
        g.bid_nodes.push(node);
    }
    for (b, slot) in sc.sto.charging.iter_mut() {
        let i = *b as usize;
        *slot = sc.groups.len() as u32;
        sc.groups
            .push((sc.sto.bids[i] + 0.0, -sc.sto.quantities[i]));
        g.bid_nodes.push(grid.node_of[n + i / k]);
    }
    let weights_total: f64 = g.node_demand.iter().sum();
    for (d, &share) in g.node_demand.iter_mut().zip(&grid.inelastic) {
        *d *= share;
    }
    g.bid_prices.clear();
    g.bid_quantities.clear();
    for &(p, q) in sc.groups.iter() {
        g.bid_prices.push(p);
        g.bid_quantities.push(q);
    }
    sc.served.clear();
    sc.served.resize(sc.groups.len(), 0.0);
    let (shortfall, total) = match &grid.net {
        Some(net) => {
            g.offer_nodes.clear();
            g.offer_nodes
                .extend((0..m.offers()).map(|j| grid.node_of[j / k]));
            for &b in &sc.sto.discharging {
                g.offer_nodes.push(grid.node_of[n + b as usize / k]);
            }
            let r = clear_network_unchecked(
                &sc.bids[..len],
                &sc.offered[..len],
                &g.offer_nodes,
                &g.node_demand,
                net,
                Some(NodalBids {
                    prices: &g.bid_prices,
                    quantities: &g.bid_quantities,
                    nodes: &g.bid_nodes,
                }),
                &m.rules,
                &mut g.ws,
                NetworkOut {
                    prices: &mut g.prices,
                    cleared: &mut sc.cleared[..len],
                    flows: &mut g.flows,
                    served: &mut sc.served,
                    shed: &mut g.shed,
                },
            )?;
            g.congestion_rent = r.congestion_rent;
            (r.shortfall, sc.cleared[..len].iter().sum::<f64>())
        }
        None => {
            // A copper plate of several nodes: one clearing of every offer
            // against the nodes' inelastic demand and every bid.
            let inelastic = crate::network::total_demand(&g.node_demand);
            group_bids(
                &g.bid_prices,
                &g.bid_quantities,
                &mut g.copper_groups,
                &mut g.group_of,
            )?;
            g.served_g.clear();
            g.served_g.resize(g.copper_groups.len(), 0.0);
            let c = clear_elastic_unchecked(
                &sc.bids[..len],
                &sc.offered[..len],
                &DemandCurve {
                    inelastic,
                    groups: &g.copper_groups,
                },
                &m.rules,
                &mut sc.ws,
                &mut sc.cleared[..len],
                &mut g.served_g,
            );
            spread_served(
                &g.bid_quantities,
                &g.group_of,
                &g.copper_groups,
                &g.served_g,
                &mut sc.served,
            );
            g.prices.fill(c.price);
            g.flows.fill(0.0);
            g.congestion_rent = 0.0;
            (super::shortfall(inelastic, &c), c.total)
        }
    };
    let price = mean_price(&g.prices, weights_total, grid, s, t, demand);
    Ok((
        Clearing {
            price,
            total,
            shortage: shortfall > 0.0,
        },
        shortfall,
    ))
}

/// The demand-weighted mean of the node prices, `sum_z p_z D_z / sum_z
/// D_z` with `D_z` each node's (whole) demand; exactly `p` when every node
/// price is `p`.
fn mean_price(prices: &[f64], total: f64, grid: &Grid, s: &Scenario, t: usize, demand: f64) -> f64 {
    let first = prices[0];
    if prices.iter().all(|&p| p == first) {
        return first;
    }
    let weighted: f64 = (0..grid.z)
        .map(|node| prices[node] * (demand * s.demand_share(t, node)))
        .sum();
    weighted / total
}

/// The price an offer or bid of agent `a` is settled at: its node's price
/// on a networked market, else the clearing price `price`.
#[inline]
pub(crate) fn price_of(m: &Market, g: &GridScratch, price: f64, a: usize) -> f64 {
    match &m.grid {
        Some(grid) => g.prices[grid.node_of[a]],
        None => price,
    }
}

/// The volume-weighted average price paid of a networked hour: under
/// uniform pricing with one price at every node (the clearing price
/// `price`), that price exactly, as on the copper plate; otherwise
/// `sum(paid x) / sum(x)` (`price` when nothing cleared).
pub(crate) fn average_paid(
    m: &Market,
    node_prices: &[f64],
    paid: &[f64],
    cleared: &[f64],
    price: f64,
) -> f64 {
    let one_price = node_prices.iter().all(|&p| p == price);
    if one_price && m.rules.mechanism == crate::clearing::Mechanism::Uniform {
        price
    } else {
        crate::clearing::average_paid(paid, cleared, price)
    }
}
