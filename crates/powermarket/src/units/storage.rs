//! Storage units (batteries): what a unit can bid and offer in an hour, how
//! its state of charge moves, and what it earns.
//!
//! A unit has a power rating `P` (MW, for charging and discharging alike),
//! an energy capacity `E` (MWh), efficiencies `eta_c` and `eta_d`, and a
//! state of charge `soc` (MWh) kept in `[soc_min E, soc_max E]`. Each hour
//! it submits K blocks `[a0, a1]` from `[-1, 1] x [-10, 10]`: `a0 > 0`
//! offers to discharge `a0 P / K` MW, `a0 < 0` bids to charge `|a0| P / K`
//! MW, both at `reference_price + tanh(a1) * max_bid_delta` (`a1` with the
//! linear price action; clipped to the
//! cap and floor). Every rule here is stated in `docs/semantics.md`
//! ("Storage units").

use crate::error::{MarketError, Result};

/// Lower bounds of a storage unit's action box, per component: `[a0, a1]`.
pub const STORAGE_ACTION_LOW: [f32; 2] = [-1.0, -10.0];
/// Upper bounds of a storage unit's action box.
pub const STORAGE_ACTION_HIGH: [f32; 2] = [1.0, 10.0];

/// Relative slack of the SoC bounds: a state of charge that float rounding
/// takes past a bound by less than this times E is put back on the bound.
pub const SOC_SLACK: f64 = 1e-9;

macro_rules! storage_fields {
    ($( $(#[$doc:meta])* $name:ident : $ty:ty = $default:expr; )*) => {
        /// One storage unit of a scenario.
        #[derive(Clone, Debug, PartialEq)]
        pub struct Storage {
            $( $(#[$doc])* pub $name: $ty, )*
            /// Optional display name.
            pub name: Option<String>,
        }

        /// The numeric fields of [`Storage`] and their defaults (`None`:
        /// required, or derived when the field is optional), in order.
        pub const STORAGE_FIELDS: &[(&str, Option<f64>, bool)] = &[
            $( (stringify!($name), $default, <$ty as StorageValue>::OPTIONAL), )*
        ];

        /// Where a storage field is in a scenario, as errors name it:
        /// `"storage.power"`.
        pub fn field_path(name: &str) -> &'static str {
            match name {
                $( stringify!($name) => concat!("storage.", stringify!($name)), )*
                _ => "storage",
            }
        }

        impl Storage {
            /// The value of numeric field `name` (`None` when it is unset or
            /// unknown).
            pub fn get(&self, name: &str) -> Option<f64> {
                match name {
                    $( stringify!($name) => self.$name.get(), )*
                    _ => None,
                }
            }

            /// Set numeric field `name` (`None`: derived, for optional fields).
            pub fn set(&mut self, name: &str, value: Option<f64>) -> Result<()> {
                match name {
                    $( stringify!($name) => <$ty as StorageValue>::put(&mut self.$name, stringify!($name), value), )*
                    other => Err(MarketError::UnknownName {
                        arg: "storage field",
                        value: other.to_string(),
                        valid: STORAGE_FIELDS.iter().map(|f| f.0).collect::<Vec<_>>().join(", "),
                    }),
                }
            }

            /// A unit of `power` MW and `energy` MWh, every other field at
            /// its default.
            pub fn new(power: f64, energy: f64) -> Self {
                let mut s = Storage { $( $name: Default::default(), )* name: None };
                for &(field, default, _) in STORAGE_FIELDS {
                    if default.is_some() {
                        s.set(field, default).expect("a declared field");
                    }
                }
                s.power = power;
                s.energy = energy;
                s
            }
        }
    };
}

/// The two kinds of numeric storage field: required numbers and optional
/// (derived when unset) ones.
pub trait StorageValue {
    const OPTIONAL: bool;
    fn get(&self) -> Option<f64>;
    fn put(&mut self, field: &str, value: Option<f64>) -> Result<()>;
}

impl StorageValue for f64 {
    const OPTIONAL: bool = false;
    fn get(&self) -> Option<f64> {
        Some(*self)
    }
    fn put(&mut self, field: &str, value: Option<f64>) -> Result<()> {
        match value {
            Some(v) => {
                *self = v;
                Ok(())
            }
            None => Err(MarketError::Invalid {
                arg: "storage",
                message: format!("field `{field}` needs a number, got None"),
            }),
        }
    }
}

impl StorageValue for Option<f64> {
    const OPTIONAL: bool = true;
    fn get(&self) -> Option<f64> {
        *self
    }
    fn put(&mut self, _field: &str, value: Option<f64>) -> Result<()> {
        *self = value;
        Ok(())
    }
}

storage_fields! {
    /// Power rating for charging and discharging, MW (> 0).
    power: f64 = None;
    /// Energy capacity E, MWh (> 0).
    energy: f64 = None;
    /// Share of the energy bought that is stored, in (0, 1].
    efficiency_charge: f64 = Some(0.95);
    /// Share of the energy taken from storage that is sold, in (0, 1].
    efficiency_discharge: f64 = Some(0.95);
    /// State of charge at the start of an episode, share of E.
    soc_initial: f64 = Some(0.5);
    /// Lowest state of charge, share of E.
    soc_min: f64 = Some(0.0);
    /// Highest state of charge, share of E.
    soc_max: f64 = Some(1.0);
    /// Cost per MWh of throughput (charge plus discharge), €/MWh (>= 0).
    cost: f64 = Some(0.0);
    /// The price its price action is centred on, €/MWh; `None`: the mean
    /// generator cost.
    reference_price: Option<f64> = None;
    /// Value of the energy stored at the end of an episode, €/MWh; `None`:
    /// the reference price.
    terminal_value: Option<f64> = None;
}

/// Largest |value| of a storage unit's money and energy fields, relative
/// to nothing: 2^50 (so that products and sums over an episode stay far
/// inside the float64 range).
pub const MAX_STORAGE_VALUE: f64 = (1u64 << 50) as f64;

impl Storage {
    /// Check the unit; the error names the unit (`sto_u`, agent `agent`)
    /// and the field.
    pub fn validate(&self, u: usize, agent: usize) -> Result<()> {
        let bad = |field: &str, message: String| {
            Err(
                MarketError::scenario(field_path(field), format!("sto_{u}: `{field}` {message}"))
                    .at_agent(agent),
            )
        };
        for &(field, _, _) in STORAGE_FIELDS {
            if let Some(v) = self.get(field) {
                if !v.is_finite() || v.abs() > MAX_STORAGE_VALUE {
                    return bad(
                        field,
                        format!("must be finite and at most 2^50 in size, got {v}"),
                    );
                }
            }
        }
        for (field, v) in [("power", self.power), ("energy", self.energy)] {
            if v <= 0.0 {
                return bad(field, format!("must be > 0, got {v}"));
            }
        }
        // P / E is an observation feature: it must stay a float32.
        if self.power / self.energy > MAX_STORAGE_VALUE {
            return bad(
                "energy",
                format!(
                    "is too small for the power: power / energy must be at most 2^50, got \
                     {} / {}",
                    self.power, self.energy
                ),
            );
        }
        for (field, v) in [
            ("efficiency_charge", self.efficiency_charge),
            ("efficiency_discharge", self.efficiency_discharge),
        ] {
            if !(v > 0.0 && v <= 1.0) {
                return bad(field, format!("must be in (0, 1], got {v}"));
            }
        }
        for (field, v) in [
            ("soc_min", self.soc_min),
            ("soc_max", self.soc_max),
            ("soc_initial", self.soc_initial),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return bad(
                    field,
                    format!("must be in [0, 1] (a share of energy), got {v}"),
                );
            }
        }
        if self.soc_min > self.soc_max {
            return bad(
                "soc_min",
                format!(
                    "must be <= soc_max ({}), got {}",
                    self.soc_max, self.soc_min
                ),
            );
        }
        if !(self.soc_min..=self.soc_max).contains(&self.soc_initial) {
            return bad(
                "soc_initial",
                format!(
                    "must be in [soc_min, soc_max] = [{}, {}], got {}",
                    self.soc_min, self.soc_max, self.soc_initial
                ),
            );
        }
        if self.cost < 0.0 {
            return bad("cost", format!("must be >= 0, got {}", self.cost));
        }
        Ok(())
    }

    /// The reference price, €/MWh, with `mean_cost` the mean generator cost.
    pub fn reference(&self, mean_cost: f64) -> f64 {
        self.reference_price.unwrap_or(mean_cost)
    }

    /// The terminal value, €/MWh.
    pub fn terminal(&self, mean_cost: f64) -> f64 {
        self.terminal_value.unwrap_or(self.reference(mean_cost))
    }

    /// State of charge at the start of an episode, MWh.
    pub fn soc0(&self) -> f64 {
        self.soc_initial * self.energy
    }

    /// Most it can discharge (sell) this hour from `soc`, MW:
    /// `min(P, (soc - soc_min E) eta_d)`, at least 0.
    #[inline]
    pub fn max_discharge(&self, soc: f64) -> f64 {
        ((soc - self.soc_min * self.energy) * self.efficiency_discharge)
            .min(self.power)
            .max(0.0)
    }

    /// Most it can charge (buy) this hour from `soc`, MW:
    /// `min(P, (soc_max E - soc) / eta_c)`, at least 0.
    #[inline]
    pub fn max_charge(&self, soc: f64) -> f64 {
        ((self.soc_max * self.energy - soc) / self.efficiency_charge)
            .min(self.power)
            .max(0.0)
    }

    /// The state of charge after discharging `d` and charging `c` MW for an
    /// hour: `soc + eta_c c - d / eta_d`, put back into `[soc_min E,
    /// soc_max E]` (only float rounding can take it out: `d` and `c` are
    /// within [`Storage::max_discharge`] and [`Storage::max_charge`]).
    #[inline]
    pub fn next_soc(&self, soc: f64, d: f64, c: f64) -> f64 {
        let next = soc + self.efficiency_charge * c - d / self.efficiency_discharge;
        next.max(self.soc_min * self.energy)
            .min(self.soc_max * self.energy)
    }
}

/// Cut a unit's signed block quantities (MW; > 0 discharge offers, < 0
/// charge bids) at `prices` to what its state of charge allows: the
/// discharge offers, in merit order (price ascending, then block index),
/// keep at most `dmax` MW in total; the charge bids, in the buyer's merit
/// order (price descending, then block index), at most `cmax` MW.
pub fn limit_blocks(prices: &[f64], quantities: &mut [f64], dmax: f64, cmax: f64) {
    let k = quantities.len();
    if k == 1 {
        let q = &mut quantities[0];
        *q = if *q > 0.0 { q.min(dmax) } else { q.max(-cmax) };
        return;
    }
    // K is small: an insertion sort of the block indices by price, on the
    // stack for up to 16 blocks.
    let mut stack = [0usize; 16];
    let mut heap = Vec::new();
    let order: &mut [usize] = if k <= stack.len() {
        &mut stack[..k]
    } else {
        heap.resize(k, 0);
        &mut heap
    };
    for (j, o) in order.iter_mut().enumerate() {
        *o = j;
    }
    for a in 1..k {
        let mut b = a;
        while b > 0 && prices[order[b - 1]] > prices[order[b]] {
            order.swap(b - 1, b);
            b -= 1;
        }
    }
    let mut left = dmax;
    for &j in order.iter() {
        if quantities[j] > 0.0 {
            quantities[j] = quantities[j].min(left);
            left = (left - quantities[j]).max(0.0);
        }
    }
    // Buyers: highest price first, then block index (a stable reversal).
    // -0.0 and 0.0 are one price (as in the bid groups).
    order.sort_by(|&a, &b| {
        (prices[b] + 0.0)
            .total_cmp(&(prices[a] + 0.0))
            .then(a.cmp(&b))
    });
    let mut left = cmax;
    for &j in order.iter() {
        if quantities[j] < 0.0 {
            quantities[j] = quantities[j].max(-left);
            left = (left + quantities[j]).max(0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_table() {
        let s = Storage::new(20.0, 80.0);
        assert_eq!(s.efficiency_charge, 0.95);
        assert_eq!(s.soc_initial, 0.5);
        assert_eq!(s.soc_max, 1.0);
        assert_eq!(s.reference_price, None);
        assert_eq!(s.terminal(30.0), 30.0);
        assert!(s.validate(0, 5).is_ok());
    }

    #[test]
    fn limits_follow_the_soc() {
        let s = Storage::new(20.0, 80.0);
        // 40 MWh stored: discharge limited by power, charge too.
        assert_eq!(s.max_discharge(40.0), 20.0);
        assert_eq!(s.max_charge(40.0), 20.0);
        // 5 MWh stored: 4.75 MW can be sold; 2 MWh of room: 2 / 0.95 bought.
        assert!((s.max_discharge(5.0) - 4.75).abs() < 1e-12);
        assert!((s.max_charge(78.0) - 2.0 / 0.95).abs() < 1e-12);
        let next = s.next_soc(78.0, 0.0, 2.0 / 0.95);
        assert!((next - 80.0).abs() < 1e-12);
    }

    #[test]
    fn blocks_are_cut_in_merit_order() {
        // Discharge offers at 30 and 10 (block 1 first), charge bids at 5 and 40.
        let prices = [30.0, 10.0, 5.0, 40.0];
        let mut q = [5.0, 5.0, -5.0, -5.0];
        limit_blocks(&prices, &mut q, 7.0, 6.0);
        assert_eq!(q, [2.0, 5.0, -1.0, -5.0]);
    }

    #[test]
    fn validation_names_unit_and_field() {
        let mut s = Storage::new(20.0, 80.0);
        s.efficiency_charge = 1.5;
        let e = s.validate(1, 6).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("sto_1") && text.contains("efficiency_charge"),
            "{text}"
        );
        let mut s = Storage::new(20.0, 80.0);
        s.soc_initial = 0.1;
        s.soc_min = 0.2;
        assert!(s
            .validate(0, 0)
            .unwrap_err()
            .to_string()
            .contains("soc_initial"));
        assert!(Storage::new(-1.0, 1.0).validate(0, 0).is_err());
        let e = Storage::new(1e10, 1e-300).validate(0, 0).unwrap_err();
        assert!(e.to_string().contains("too small for the power"), "{e}");
    }
}
