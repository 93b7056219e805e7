//! The field table of [`super::Scenario`]: the macro that generates the
//! struct, its defaults and the table from one declaration (in `mod.rs`),
//! and the types that describe a field to the bindings and the files.

use crate::clearing::Mechanism;
use crate::env::PriceAction;
use crate::error::{MarketError, Result};

/// The shape of a field's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A float.
    Number,
    /// A float or None.
    OptNumber,
    /// An int >= 0.
    Count,
    /// The name of an option (parsed by the core).
    Name,
    /// One float per generator.
    PerAgent,
    /// One float per generator, or None.
    OptPerAgent,
    /// One float per hour.
    PerHour,
    /// A (T, N) table of floats, or None.
    OptPerHourAgent,
    /// `(float, float)` pairs.
    Pairs,
    /// A list of storage units ([`crate::units::storage::Storage`]).
    Storage,
    /// A list of names.
    Names,
    /// A list of node indices (ints >= 0).
    Nodes,
    /// Lines `[from, to, capacity, reactance]`.
    Lines,
    /// Shares per node, Z or (T, Z) floats, or None.
    Shares,
}

/// Where a scenario file keeps a field.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum InFile {
    /// A key of `[market]`, named as the field.
    Market,
    /// A key of each `[[generators]]` table; `missing` is the value of a
    /// generator without the key (`None`: the key is required).
    Generators {
        key: &'static str,
        missing: Option<f64>,
    },
    /// The `[demand]` table.
    Demand,
    /// The `[[storage]]` tables, one per unit, keyed by the storage fields.
    Storage,
    /// A key of each `[[nodes]]` table.
    Nodes { key: &'static str },
    /// The `node` key of each `[[generators]]` and `[[storage]]` table (an
    /// index or a node name; missing: node 0).
    AgentNodes,
    /// The `[[lines]]` tables (`from`, `to`, `capacity`, `reactance`).
    Lines,
}

/// One row of the field table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
    pub file: InFile,
}

/// A field's value, typed by its [`Kind`].
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Number(f64),
    OptNumber(Option<f64>),
    Count(usize),
    Name(String),
    Numbers(Vec<f64>),
    OptNumbers(Option<Vec<f64>>),
    Pairs(Vec<(f64, f64)>),
    Storage(Vec<crate::units::storage::Storage>),
    Names(Vec<String>),
    Indices(Vec<usize>),
    Lines(Vec<[f64; 4]>),
}

/// The Rust types of fields, and their [`Value`]s.
pub(super) trait FieldType: Sized {
    fn to_value(&self) -> Value;
    fn from_value(field: &'static str, v: Value) -> Result<Self>;
}

fn wrong(field: &'static str, v: &Value) -> MarketError {
    MarketError::scenario(field, format!("has the wrong kind of value: {v:?}"))
}

macro_rules! field_type {
    ($t:ty, $variant:ident) => {
        impl FieldType for $t {
            fn to_value(&self) -> Value {
                Value::$variant(self.clone())
            }
            fn from_value(field: &'static str, v: Value) -> Result<Self> {
                match v {
                    Value::$variant(x) => Ok(x),
                    other => Err(wrong(field, &other)),
                }
            }
        }
    };
}
field_type!(f64, Number);
field_type!(Option<f64>, OptNumber);
field_type!(usize, Count);
field_type!(Vec<f64>, Numbers);
field_type!(Option<Vec<f64>>, OptNumbers);
field_type!(Vec<(f64, f64)>, Pairs);
field_type!(Vec<crate::units::storage::Storage>, Storage);
field_type!(Vec<String>, Names);
field_type!(Vec<usize>, Indices);
field_type!(Vec<[f64; 4]>, Lines);

/// A field holding the name of an option, parsed by the core (`FromStr`).
macro_rules! name_field_type {
    ($t:ty) => {
        impl FieldType for $t {
            fn to_value(&self) -> Value {
                Value::Name(self.name().to_string())
            }
            fn from_value(field: &'static str, v: Value) -> Result<Self> {
                match v {
                    Value::Name(s) => s
                        .parse()
                        .map_err(|e: MarketError| MarketError::scenario(field, e.to_string())),
                    other => Err(wrong(field, &other)),
                }
            }
        }
    };
}
name_field_type!(Mechanism);
name_field_type!(PriceAction);
name_field_type!(crate::network::NetworkKind);

/// Generates `Scenario`, `Scenario::defaults`, `FIELDS`, `Scenario::get`
/// and `Scenario::set` from the field list in `mod.rs`.
macro_rules! scenario_fields {
    ($( $(#[$doc:meta])* $name:ident : $ty:ty = $default:expr, $kind:ident, $file:expr; )*) => {
        /// Fleet, demand and rules of one market. Immutable once validated;
        /// share it between markets by reference.
        #[derive(Clone, Debug, PartialEq)]
        pub struct Scenario {
            $( $(#[$doc])* pub $name: $ty, )*
        }

        /// Every field of [`Scenario`], in declaration order.
        pub const FIELDS: &[Field] = &[
            $( Field { name: stringify!($name), kind: Kind::$kind, file: $file }, )*
        ];

        impl Scenario {
            /// Every field at its default (no generator, no hour: not valid
            /// until the fleet and demand are set).
            pub fn defaults() -> Self {
                Scenario { $( $name: $default, )* }
            }

            /// The value of field `name` (None for an unknown name).
            pub fn get(&self, name: &str) -> Option<Value> {
                use fields::FieldType;
                match name {
                    $( stringify!($name) => Some(self.$name.to_value()), )*
                    _ => None,
                }
            }

            /// Set field `name`; the value must be of the field's kind.
            /// Not validated: call [`Scenario::validate`] after the last.
            pub fn set(&mut self, name: &str, value: Value) -> crate::error::Result<()> {
                use fields::FieldType;
                match name {
                    $( stringify!($name) => {
                        self.$name = <$ty>::from_value(stringify!($name), value)?;
                    } )*
                    other => {
                        return Err(crate::error::MarketError::UnknownName {
                            arg: "scenario field",
                            value: other.to_string(),
                            valid: FIELDS.iter().map(|f| f.name).collect::<Vec<_>>().join(", "),
                        })
                    }
                }
                Ok(())
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Scenario, FIELDS};

    #[test]
    fn every_field_reads_back_what_was_set() {
        let mut s = Scenario::default_preset(3, 4).unwrap();
        let before = s.clone();
        for f in FIELDS {
            let v = s.get(f.name).unwrap();
            s.set(f.name, v).unwrap();
        }
        assert_eq!(s, before);
        s.set("mechanism", Value::Name("pay_as_bid".into()))
            .unwrap();
        assert_eq!(s.mechanism, Mechanism::PayAsBid);
        let e = s.set("segments", Value::Number(2.0)).unwrap_err();
        assert!(e.to_string().contains("segments"), "{e}");
        assert!(s.set("colour", Value::Count(1)).is_err());
        assert!(s.get("colour").is_none());
    }

    #[test]
    fn the_table_lists_each_field_once_with_a_place_in_files() {
        let mut names: Vec<&str> = FIELDS.iter().map(|f| f.name).collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n);
        let fleet = FIELDS
            .iter()
            .filter(|f| matches!(f.file, InFile::Generators { missing: None, .. }))
            .count();
        assert_eq!(
            fleet, 2,
            "capacity and cost are the required generator keys"
        );
    }
}
