//! The network of a scenario: its nodes, where agents, demand and demand
//! bids sit, its lines, and their checks. The clearing is
//! [`crate::network`]'s; the rules are in `docs/semantics.md` ("Networks").

use super::{Scenario, SHARE_SUM_SLACK};
use crate::env::action::agent_name;
use crate::error::{MarketError, Result};
use crate::network::{Model, Network, NetworkKind, MAX_NODES};

impl Scenario {
    /// Number of nodes Z (1 without node names).
    pub fn z(&self) -> usize {
        self.node_names.len().max(1)
    }

    /// True when the market clears on a network of nodes: more than one
    /// node, or a network model other than the copper plate.
    pub fn networked(&self) -> bool {
        self.z() > 1 || self.network != NetworkKind::Copper
    }

    /// The node of agent `a` (generators, then storage units).
    #[inline]
    pub fn node_of(&self, a: usize) -> usize {
        self.nodes.get(a).copied().unwrap_or(0)
    }

    /// The node of demand bid `k`.
    #[inline]
    pub fn bid_node(&self, k: usize) -> usize {
        self.demand_bid_nodes.get(k).copied().unwrap_or(0)
    }

    /// Share of hour `t`'s demand at node `z` (1 with one node).
    #[inline]
    pub fn demand_share(&self, t: usize, z: usize) -> f64 {
        match &self.demand_shares {
            None => 1.0,
            Some(sh) if sh.len() == self.z() => sh[z],
            Some(sh) => sh[t * self.z() + z],
        }
    }

    /// The checked network of a scenario whose lines are used
    /// (`network` other than `"copper"`); `None` for the copper plate.
    /// Errors name the field `lines`.
    pub fn grid(&self) -> Result<Option<Network>> {
        match self.network.model() {
            None => Ok(None),
            Some(model) => self.build_grid(model).map(Some),
        }
    }

    fn build_grid(&self, model: Model) -> Result<Network> {
        Network::new(self.z(), &self.lines, model).map_err(|e| match e {
            MarketError::Memory { .. } => e,
            other => MarketError::scenario("lines", other.to_string()),
        })
    }

    /// Check the network fields: names, nodes, shares and lines.
    pub(super) fn validate_network(&self) -> Result<()> {
        let err = |field: &'static str, message: String| Err(MarketError::scenario(field, message));
        let z = self.z();
        if self.node_names.len() > MAX_NODES {
            return err(
                "node_names",
                format!(
                    "a network has at most {MAX_NODES} nodes, got {}",
                    self.node_names.len()
                ),
            );
        }
        for (i, name) in self.node_names.iter().enumerate() {
            if name.trim().is_empty() {
                return err("node_names", format!("node {i} has an empty name"));
            }
            if let Some(j) = self.node_names[..i].iter().position(|m| m == name) {
                return err(
                    "node_names",
                    format!("nodes {j} and {i} are both named {name:?}; names must be unique"),
                );
            }
        }
        let (n, a) = (self.n(), self.agents());
        if !self.nodes.is_empty() && self.nodes.len() != a {
            return err(
                "nodes",
                format!(
                    "has {} values; give one node per agent ({a}: the {n} generators, then \
                     the {} storage units) or none (every agent at node 0)",
                    self.nodes.len(),
                    self.s()
                ),
            );
        }
        for (i, &k) in self.nodes.iter().enumerate() {
            if k >= z {
                return Err(MarketError::scenario(
                    "nodes",
                    format!(
                        "{}: node {k} is not one of the {z} nodes (0 to {})",
                        agent_name(i, n),
                        z - 1
                    ),
                )
                .at_agent(i));
            }
        }
        let b = self.demand_bids.len();
        if !self.demand_bid_nodes.is_empty() && self.demand_bid_nodes.len() != b {
            return err(
                "demand_bid_nodes",
                format!(
                    "has {} values; give one node per demand bid ({b}) or none (every bid \
                     at node 0)",
                    self.demand_bid_nodes.len()
                ),
            );
        }
        if let Some(k) = self.demand_bid_nodes.iter().position(|&k| k >= z) {
            return err(
                "demand_bid_nodes",
                format!(
                    "bid {k}: node {} is not one of the {z} nodes (0 to {})",
                    self.demand_bid_nodes[k],
                    z - 1
                ),
            );
        }
        self.validate_shares()?;
        // Under "transport" and "copper" the reactance is unused, but it is
        // kept (for `replace(network="dc")`) and must be a number.
        if let Some(l) = self.lines.iter().position(|r| !r[3].is_finite()) {
            return err(
                "lines",
                format!(
                    "lines[{l}] reactance: must be finite, got {}",
                    self.lines[l][3]
                ),
            );
        }
        if self.network.model().is_some() || !self.lines.is_empty() {
            // Under the copper plate the lines are kept (for `replace`) but
            // still checked, as a transport network would check them.
            self.build_grid(self.network.model().unwrap_or(Model::Transport))?;
        }
        Ok(())
    }

    fn validate_shares(&self) -> Result<()> {
        let err = |message: String| Err(MarketError::scenario("demand_shares", message));
        let (z, t) = (self.z(), self.t());
        let Some(sh) = &self.demand_shares else {
            if z > 1 {
                return err(format!(
                    "a market of {z} nodes needs the share of demand at each node: Z = {z} \
                     values, or (T, Z) = ({t}, {z}) for shares that change by the hour"
                ));
            }
            return Ok(());
        };
        if sh.len() != z && Some(sh.len()) != t.checked_mul(z) {
            return err(format!(
                "has {} values; expected Z = {z} (one per node) or T x Z = {t} x {z}",
                sh.len()
            ));
        }
        for (h, row) in sh.chunks_exact(z).enumerate() {
            let mut total = 0.0;
            for (node, &v) in row.iter().enumerate() {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(MarketError::scenario(
                        "demand_shares",
                        format!("node {node}: a share must be finite and >= 0, got {v}"),
                    )
                    .at_hour(h));
                }
                total += v;
            }
            if (total - 1.0).abs() > SHARE_SUM_SLACK {
                let at = if sh.len() == z {
                    String::new()
                } else {
                    format!(" in hour {h}")
                };
                return Err(MarketError::scenario(
                    "demand_shares",
                    format!("the shares{at} must add up to 1, got {total}"),
                )
                .at_hour(h));
            }
        }
        Ok(())
    }
}
