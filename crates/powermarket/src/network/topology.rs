//! The grid of one clearing: nodes, lines, the model, and the PTDF.

use crate::error::{MarketError, Result};
use std::str::FromStr;

/// How line flows follow from the node injections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub enum Model {
    /// Flows are free variables within each line's capacity (an NTC /
    /// transport model, as zonal market coupling uses): no loop flows.
    Transport,
    /// DC power flow: flows are PTDF x injections, the PTDF from the
    /// reactances (nodal pricing).
    #[default]
    Dc,
}

impl Model {
    pub const NAMES: [&'static str; 2] = ["transport", "dc"];

    pub fn name(self) -> &'static str {
        match self {
            Model::Transport => "transport",
            Model::Dc => "dc",
        }
    }
}

impl FromStr for Model {
    type Err = MarketError;

    fn from_str(name: &str) -> Result<Self> {
        match name {
            "transport" => Ok(Model::Transport),
            "dc" => Ok(Model::Dc),
            other => Err(MarketError::UnknownName {
                arg: "model",
                value: other.to_string(),
                valid: Self::NAMES.join(", "),
            }),
        }
    }
}

/// Which market a scenario clears: one copper plate, or a network of nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub enum NetworkKind {
    /// One price for the whole market; lines are not used.
    #[default]
    Copper,
    /// Zonal coupling over lines of limited capacity ([`Model::Transport`]).
    Transport,
    /// Nodal pricing under DC power flow ([`Model::Dc`]).
    Dc,
}

impl NetworkKind {
    pub const NAMES: [&'static str; 3] = ["copper", "transport", "dc"];

    pub fn name(self) -> &'static str {
        match self {
            NetworkKind::Copper => "copper",
            NetworkKind::Transport => "transport",
            NetworkKind::Dc => "dc",
        }
    }

    /// The flow model of the network clearing (`None`: the copper plate).
    pub fn model(self) -> Option<Model> {
        match self {
            NetworkKind::Copper => None,
            NetworkKind::Transport => Some(Model::Transport),
            NetworkKind::Dc => Some(Model::Dc),
        }
    }
}

impl FromStr for NetworkKind {
    type Err = MarketError;

    fn from_str(name: &str) -> Result<Self> {
        match name {
            "copper" => Ok(NetworkKind::Copper),
            "transport" => Ok(NetworkKind::Transport),
            "dc" => Ok(NetworkKind::Dc),
            other => Err(MarketError::UnknownName {
                arg: "network",
                value: other.to_string(),
                valid: Self::NAMES.join(", "),
            }),
        }
    }
}

/// One line: power flows from `from` to `to` when positive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Line {
    pub from: usize,
    pub to: usize,
    /// Capacity in MW (either direction); `f64::INFINITY` for no limit.
    pub capacity: f64,
    /// Reactance (any unit: only ratios matter); ignored by the transport model.
    pub reactance: f64,
}

/// A checked network: `z` nodes, connected by its lines.
#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    z: usize,
    lines: Vec<Line>,
    model: Model,
    /// Power transfer distribution factors, (L, Z) row-major, reference
    /// node 0: the flow on line l per MW injected at node z and withdrawn at
    /// node 0. Under the transport model these are the DC factors with unit
    /// reactances (a first guess of a feasible flow; exact on a radial grid).
    ptdf: Vec<f64>,
    radial: bool,
}

fn line_err(line: usize, column: &'static str, message: String) -> MarketError {
    MarketError::BadLine {
        line,
        column,
        message,
    }
}

/// A node index given as a float: an integer in `[0, z)`.
pub fn node_index(arg: &'static str, index: usize, value: f64, z: usize) -> Result<usize> {
    if value.is_finite() && value.fract() == 0.0 && value >= 0.0 && value < z as f64 {
        Ok(value as usize)
    } else {
        Err(MarketError::BadNode {
            arg,
            index,
            value,
            nodes: z,
        })
    }
}

/// Node indices given as floats (see [`node_index`]), into `out`.
pub fn node_indices(arg: &'static str, values: &[f64], z: usize) -> Result<Vec<usize>> {
    let mut out = Vec::new();
    out.try_reserve_exact(values.len())
        .map_err(|_| MarketError::Memory {
            what: arg,
            bytes: values.len().saturating_mul(8),
        })?;
    for (i, &v) in values.iter().enumerate() {
        out.push(node_index(arg, i, v, z)?);
    }
    Ok(out)
}

/// Most nodes of a network: the dense PTDF costs O(Z^3) to build.
pub const MAX_NODES: usize = 1024;
/// Most lines of a network.
pub const MAX_LINES: usize = 16384;

impl Network {
    /// Check and build a network of `z` nodes from rows
    /// `[from, to, capacity, reactance]`.
    ///
    /// Errors (each naming the line and column): a node index that is not
    /// an integer in `[0, z)`, a line from a node to itself, a capacity that
    /// is NaN or negative (`inf` means no limit), under `"dc"` a reactance
    /// that is not finite and > 0; and a network that is not connected
    /// (islands are refused, not cleared separately); more than
    /// [`MAX_NODES`] nodes or [`MAX_LINES`] lines.
    pub fn new(z: usize, rows: &[[f64; 4]], model: Model) -> Result<Self> {
        if z == 0 {
            return Err(MarketError::Empty { arg: "demand" });
        }
        if z > MAX_NODES {
            return Err(MarketError::Invalid {
                arg: "demand",
                message: format!(
                    "a network has at most {MAX_NODES} nodes (the dense PTDF is O(Z^3)), got {z}"
                ),
            });
        }
        if rows.len() > MAX_LINES {
            return Err(MarketError::Invalid {
                arg: "lines",
                message: format!(
                    "a network has at most {MAX_LINES} lines, got {}",
                    rows.len()
                ),
            });
        }
        let mut lines = Vec::new();
        lines
            .try_reserve_exact(rows.len())
            .map_err(|_| MarketError::Memory {
                what: "lines",
                bytes: rows.len().saturating_mul(std::mem::size_of::<Line>()),
            })?;
        for (l, r) in rows.iter().enumerate() {
            let end = |column: &'static str, v: f64| -> Result<usize> {
                node_index(column, l, v, z).map_err(|_| {
                    line_err(
                        l,
                        column,
                        format!("must be an integer node index in [0, {z}), got {v}"),
                    )
                })
            };
            let from = end("from", r[0])?;
            let to = end("to", r[1])?;
            if from == to {
                return Err(line_err(
                    l,
                    "to",
                    format!("a line must join two different nodes, got {from} -> {to}"),
                ));
            }
            let capacity = r[2];
            if capacity.is_nan() || capacity < 0.0 {
                return Err(line_err(
                    l,
                    "capacity",
                    format!("must be >= 0 MW (inf for no limit), got {capacity}"),
                ));
            }
            let reactance = r[3];
            if model == Model::Dc && !(reactance.is_finite() && reactance > 0.0) {
                return Err(line_err(
                    l,
                    "reactance",
                    format!("must be finite and > 0 under model=\"dc\", got {reactance}"),
                ));
            }
            lines.push(Line {
                from,
                to,
                capacity,
                reactance,
            });
        }
        check_connected(z, &lines)?;
        let unit = model == Model::Transport;
        let ptdf = ptdf(z, &lines, unit)?;
        let radial = lines.len() + 1 == z;
        Ok(Network {
            z,
            lines,
            model,
            ptdf,
            radial,
        })
    }

    pub fn nodes(&self) -> usize {
        self.z
    }

    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    pub fn model(&self) -> Model {
        self.model
    }

    /// True for a tree (L = Z - 1): flows follow from injections alone.
    pub fn radial(&self) -> bool {
        self.radial
    }

    /// PTDF row of line `l` (length Z).
    pub fn ptdf_row(&self, l: usize) -> &[f64] {
        &self.ptdf[l * self.z..(l + 1) * self.z]
    }

    /// Flows of the injections `inj` (Z, summing to about 0) through the
    /// PTDF, into `flows` (L).
    pub fn flows_of(&self, inj: &[f64], flows: &mut [f64]) {
        for (l, f) in flows.iter_mut().enumerate() {
            *f = self
                .ptdf_row(l)
                .iter()
                .zip(inj)
                .map(|(a, b)| a * b)
                .sum::<f64>()
                + 0.0;
        }
    }
}

/// Every node reachable from node 0.
fn check_connected(z: usize, lines: &[Line]) -> Result<()> {
    let mut parent: Vec<usize> = (0..z).collect();
    fn root(parent: &mut [usize], mut a: usize) -> usize {
        while parent[a] != a {
            parent[a] = parent[parent[a]];
            a = parent[a];
        }
        a
    }
    for line in lines {
        let (a, b) = (root(&mut parent, line.from), root(&mut parent, line.to));
        if a != b {
            parent[a.max(b)] = a.min(b);
        }
    }
    for node in 1..z {
        if root(&mut parent, node) != root(&mut parent, 0) {
            return Err(MarketError::Invalid {
                arg: "lines",
                message: format!(
                    "the network must be connected, but node {node} is not reachable from \
                     node 0 (islands are not cleared together: clear each island in its own call)"
                ),
            });
        }
    }
    Ok(())
}

/// The (L, Z) PTDF with reference node 0: solve the reduced susceptance
/// system `B' theta = e_z` for every node z != 0 (Gauss-Jordan with partial
/// pivoting), then `ptdf[l, z] = (theta_from - theta_to) / x_l`.
fn ptdf(z: usize, lines: &[Line], unit: bool) -> Result<Vec<f64>> {
    let nl = lines.len();
    let mut out = crate::error::try_zeros::<f64>(nl.saturating_mul(z), "lines")?;
    if z <= 1 || nl == 0 {
        return Ok(out);
    }
    let k = z - 1;
    // [B' | I], k x 2k.
    let w = 2 * k;
    let mut mat = crate::error::try_zeros::<f64>(k.saturating_mul(w), "lines")?;
    let susceptance = |line: &Line| if unit { 1.0 } else { 1.0 / line.reactance };
    for line in lines {
        let s = susceptance(line);
        for (a, b) in [(line.from, line.to), (line.to, line.from)] {
            if a > 0 {
                mat[(a - 1) * w + (a - 1)] += s;
                if b > 0 {
                    mat[(a - 1) * w + (b - 1)] -= s;
                }
            }
        }
    }
    for i in 0..k {
        mat[i * w + k + i] = 1.0;
    }
    for c in 0..k {
        let mut piv = c;
        for i in c + 1..k {
            if mat[i * w + c].abs() > mat[piv * w + c].abs() {
                piv = i;
            }
        }
        let p = mat[piv * w + c];
        if !(p.abs() > 0.0 && p.is_finite()) {
            return Err(MarketError::Invalid {
                arg: "lines",
                message: "the susceptance matrix is singular (reactances of very different \
                          magnitudes?)"
                    .into(),
            });
        }
        if piv != c {
            for j in 0..w {
                mat.swap(c * w + j, piv * w + j);
            }
        }
        for j in 0..w {
            mat[c * w + j] /= p;
        }
        for i in 0..k {
            let f = mat[i * w + c];
            if i != c && f != 0.0 {
                for j in 0..w {
                    let v = mat[c * w + j];
                    mat[i * w + j] -= f * v;
                }
            }
        }
    }
    // theta of node a (a >= 1) for a unit injection at node b (b >= 1):
    // inverse[a - 1][b - 1].
    let theta = |a: usize, b: usize| {
        if a == 0 || b == 0 {
            0.0
        } else {
            mat[(a - 1) * w + k + (b - 1)]
        }
    };
    for (l, line) in lines.iter().enumerate() {
        let s = susceptance(line);
        for node in 1..z {
            let v = s * (theta(line.from, node) - theta(line.to, node));
            out[l * z + node] = v;
        }
    }
    if out.iter().any(|v| !v.is_finite()) {
        return Err(MarketError::Invalid {
            arg: "lines",
            message: "the PTDF is not finite (reactances of very different magnitudes?)".into(),
        });
    }
    Ok(out)
}
