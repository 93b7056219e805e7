//! The step outputs of [`super::VecMarketEnv`], declared once.
//!
//! The table in [`outputs!`] below is the only place an output is named:
//! the owned memory ([`VecOutputs`]), the per-market rows a step writes
//! ([`OutRows`]), the length checks, the split across threads
//! ([`OutRows::chunks`]) and the table the binding loops over to publish to
//! NumPy and to pickle ([`OUTPUTS`], [`VecOutputs::columns`]) are generated
//! from it. Adding an output is one line there plus the line of the step
//! kernel that writes it.

use crate::error::{checked_size, try_zeros, MarketError, Result, Zeroable};

/// The element type of an output, as NumPy names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F64,
    Bool,
}

impl Dtype {
    /// NumPy's name of the dtype.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
            Dtype::Bool => "bool",
        }
    }
}

/// How many values an output has per market.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Width {
    /// One value per market: shape (M,).
    One,
    /// One per agent: (M, N).
    Agents,
    /// One observation row per agent: (M, N, D).
    Obs,
    /// One per storage unit: (M, S).
    Storage,
    /// One per node of a networked market: (M, Z); none otherwise.
    Nodes,
    /// One per line of a networked market: (M, L); none otherwise.
    Lines,
    /// One per networked market: (M,); none otherwise.
    Network,
}

/// Where the Python `step` puts an output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// Item `i` of the returned `(obs, rewards, terminated, truncated, info)`.
    Tuple(usize),
    /// `info[key]`.
    Info(&'static str),
}

/// Which rows of an output a step writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rows {
    /// Every market's.
    All,
    /// Only those of markets whose episode ended this step (`terminated`);
    /// the rest keep what they held.
    Ended,
}

/// One row of the output table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputSpec {
    /// The field name (and the key of the pickled state).
    pub name: &'static str,
    pub dtype: Dtype,
    pub width: Width,
    pub place: Place,
    pub rows: Rows,
}

/// The sizes that turn a [`Width`] into a number of values per market.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizes {
    /// Agents per market (A = N + S).
    pub n: usize,
    /// Storage units per market.
    pub s: usize,
    /// Observation features per agent.
    pub d: usize,
    /// Nodes of a networked market (0 otherwise).
    pub z: usize,
    /// Lines of a networked market (0 otherwise).
    pub l: usize,
    /// True on a networked market.
    pub networked: bool,
}

impl Sizes {
    /// Values per market of an output of `width`.
    pub fn per_market(self, width: Width) -> usize {
        match width {
            Width::One => 1,
            Width::Agents => self.n,
            Width::Obs => self.n * self.d,
            Width::Storage => self.s,
            Width::Nodes => self.z,
            Width::Lines => self.l,
            Width::Network => self.networked as usize,
        }
    }

    /// The shape of an output of `width` over `m` markets.
    pub fn shape(self, m: usize, width: Width) -> Vec<usize> {
        match width {
            Width::One => vec![m],
            Width::Agents => vec![m, self.n],
            Width::Obs => vec![m, self.n, self.d],
            Width::Storage => vec![m, self.s],
            Width::Nodes => vec![m, self.z],
            Width::Lines => vec![m, self.l],
            Width::Network => vec![if self.networked { m } else { 0 }],
        }
    }
}

/// Element types of outputs.
pub trait OutputElem: Zeroable + Send + Sync + 'static {
    const DTYPE: Dtype;
}
impl OutputElem for f32 {
    const DTYPE: Dtype = Dtype::F32;
}
impl OutputElem for f64 {
    const DTYPE: Dtype = Dtype::F64;
}
impl OutputElem for bool {
    const DTYPE: Dtype = Dtype::Bool;
}

/// An output's memory, typed by its dtype.
pub enum Column<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
    Bool(&'a [bool]),
}

/// An output's memory, writable.
pub enum ColumnMut<'a> {
    F32(&'a mut [f32]),
    F64(&'a mut [f64]),
    Bool(&'a mut [bool]),
}

/// Typed access to a column from the generated code.
pub trait ColumnOf: OutputElem + Sized {
    fn column(s: &[Self]) -> Column<'_>;
    fn column_mut(s: &mut [Self]) -> ColumnMut<'_>;
}
macro_rules! column_of {
    ($($t:ty => $v:ident),*) => {$(
        impl ColumnOf for $t {
            fn column(s: &[Self]) -> Column<'_> {
                Column::$v(s)
            }
            fn column_mut(s: &mut [Self]) -> ColumnMut<'_> {
                ColumnMut::$v(s)
            }
        }
    )*};
}
column_of!(f32 => F32, f64 => F64, bool => Bool);

/// `s` cut into pieces of `grain` markets of `per` values each; an empty
/// slice (an output that is skipped) gives empty pieces.
fn pieces<T>(s: &mut [T], per: usize, grain: usize) -> std::slice::ChunksMut<'_, T> {
    s.chunks_mut((per * grain).max(1))
}

macro_rules! outputs {
    ($( $(#[$doc:meta])* $name:ident : $ty:ty, $width:ident, $rows:ident, $place:expr; )*) => {
        /// The outputs of a step over M markets, in memory the caller owns.
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct VecOutputs {
            $( $(#[$doc])* pub $name: Vec<$ty>, )*
        }

        /// The rows of a range of markets in every output, written by a step.
        /// An empty `obs` means that observations are not written (see
        /// [`super::VecMarketEnv::observe`]).
        #[derive(Debug)]
        pub struct OutRows<'a> {
            $( $(#[$doc])* pub $name: &'a mut [$ty], )*
        }

        /// The output table, in the order of the fields.
        pub const OUTPUTS: &[OutputSpec] = &[
            $( OutputSpec {
                name: stringify!($name),
                dtype: <$ty as OutputElem>::DTYPE,
                width: Width::$width,
                place: $place,
                rows: Rows::$rows,
            }, )*
        ];

        impl VecOutputs {
            /// Zeroed outputs for `m` markets of `sizes`, allocated fallibly
            /// (an error naming `num_envs`). With `obs == false` the
            /// observation output is left empty.
            pub fn new(m: usize, sizes: Sizes, obs: bool) -> Result<Self> {
                Ok(VecOutputs { $(
                    $name: if obs || stringify!($name) != "obs" {
                        try_zeros(
                            checked_size(m, sizes.per_market(Width::$width), "num_envs")?,
                            "num_envs",
                        )?
                    } else {
                        Vec::new()
                    },
                )* })
            }

            /// Every output, in table order.
            pub fn columns(&self) -> Vec<(&'static OutputSpec, Column<'_>)> {
                let mut specs = OUTPUTS.iter();
                vec![$( (specs.next().expect("one spec per field"), <$ty as ColumnOf>::column(&self.$name)), )*]
            }

            /// Every output, writable, in table order.
            pub fn columns_mut(&mut self) -> Vec<(&'static OutputSpec, ColumnMut<'_>)> {
                let mut specs = OUTPUTS.iter();
                vec![$( (specs.next().expect("one spec per field"), <$ty as ColumnOf>::column_mut(&mut self.$name)), )*]
            }

            /// Rows of all markets.
            pub fn rows(&mut self) -> OutRows<'_> {
                OutRows { $( $name: &mut self.$name, )* }
            }
        }

        impl<'a> OutRows<'a> {
            /// Every output holds `m` markets of `sizes` (an empty `obs` is
            /// allowed); the error names the output and its shape.
            pub fn check(&self, m: usize, sizes: Sizes) -> Result<()> {
                $(
                    let want = m * sizes.per_market(Width::$width);
                    let got = self.$name.len();
                    if got != want && !(stringify!($name) == "obs" && got == 0) {
                        return Err(MarketError::Shape {
                            arg: stringify!($name),
                            expected: crate::error::shape_str(&sizes.shape(m, Width::$width)),
                            got: format!("{got} values"),
                        });
                    }
                )*
                Ok(())
            }

            /// Pieces of `grain` markets each (the last may be shorter), for
            /// threads.
            pub fn chunks(self, grain: usize, sizes: Sizes) -> impl Iterator<Item = OutRows<'a>> {
                // Field names are not hygienic: `terminated` is the (M,) flag.
                let count = self.terminated.len().div_ceil(grain.max(1));
                $( let mut $name = pieces(self.$name, sizes.per_market(Width::$width), grain); )*
                (0..count).map(move |_| OutRows { $( $name: $name.next().unwrap_or_default(), )* })
            }
        }
    };
}

// name: element type, width per market, rows written, where Python gets it.
outputs! {
    /// (M, N, D) observations (for markets that just ended, the first
    /// observation of their next episode); empty when they are written
    /// from the state instead.
    obs: f32, Obs, All, Place::Tuple(0);
    /// (M, N) rewards.
    rewards: f32, Agents, All, Place::Tuple(1);
    /// (M,) the episode ended this step.
    terminated: bool, One, All, Place::Tuple(2);
    /// (M,) always false: episodes end by termination only.
    truncated: bool, One, All, Place::Tuple(3);
    /// (M, N, D) the last observation of markets that ended this step; rows
    /// of other markets are left as they were.
    final_obs: f32, Obs, Ended, Place::Info("final_obs");
    /// (M,) which rows of `final_obs` were written this step.
    final_mask: bool, One, All, Place::Info("_final_obs");
    /// (M,) clearing price, €/MWh.
    price: f64, One, All, Place::Info("price");
    /// (M,) demand of the hour, MW.
    demand: f64, One, All, Place::Info("demand");
    /// (M,) unserved inelastic demand, MW.
    shortfall: f64, One, All, Place::Info("shortfall");
    /// (M,) volume-weighted average paid price, €/MWh.
    average_paid: f64, One, All, Place::Info("average_paid");
    /// (M, A) cleared quantity (all blocks of an agent; a storage unit's
    /// net sale, discharge minus charge), MW.
    cleared: f64, Agents, All, Place::Info("cleared");
    /// (M, S) state of charge of each storage unit after the step (for a
    /// market that just ended, the last state of that episode), MWh.
    soc: f64, Storage, All, Place::Info("soc");
    /// (M, Z) node prices of a networked market, €/MWh.
    node_prices: f64, Nodes, All, Place::Info("node_prices");
    /// (M, L) line flows of a networked market, MW.
    flows: f64, Lines, All, Place::Info("flows");
    /// (M,) congestion rent of a networked market, €/h.
    congestion_rent: f64, Network, All, Place::Info("congestion_rent");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_every_field_once_in_order() {
        let names: Vec<&str> = OUTPUTS.iter().map(|o| o.name).collect();
        let mut out = VecOutputs::new(
            2,
            Sizes {
                n: 3,
                s: 1,
                d: 4,
                z: 0,
                l: 0,
                networked: false,
            },
            true,
        )
        .unwrap();
        let cols: Vec<&str> = out.columns_mut().iter().map(|(s, _)| s.name).collect();
        assert_eq!(names, cols);
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
        assert_eq!(out.price.len(), 2);
        assert_eq!(out.cleared.len(), 6);
        assert_eq!(out.final_obs.len(), 24);
    }

    #[test]
    fn chunks_cover_every_market_once() {
        let sizes = Sizes {
            n: 3,
            s: 0,
            d: 2,
            z: 0,
            l: 0,
            networked: false,
        };
        let mut out = VecOutputs::new(7, sizes, false).unwrap();
        let pieces: Vec<OutRows<'_>> = out.rows().chunks(3, sizes).collect();
        assert_eq!(pieces.len(), 3);
        let markets: Vec<usize> = pieces.iter().map(|p| p.price.len()).collect();
        assert_eq!(markets, [3, 3, 1]);
        assert!(pieces.iter().all(|p| p.obs.is_empty()));
        assert_eq!(pieces[2].final_obs.len(), 6);
        for (i, p) in pieces.into_iter().enumerate() {
            p.price.fill(i as f64);
        }
        assert_eq!(out.price, [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0]);
    }

    #[test]
    fn a_wrong_length_names_the_output() {
        let sizes = Sizes {
            n: 2,
            s: 0,
            d: 2,
            z: 0,
            l: 0,
            networked: false,
        };
        let mut out = VecOutputs::new(3, sizes, true).unwrap();
        out.cleared.pop();
        let e = out.rows().check(3, sizes).unwrap_err().to_string();
        assert!(e.contains("cleared") && e.contains("(3, 2)"), "{e}");
    }
}
