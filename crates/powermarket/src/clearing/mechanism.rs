//! Settlement mechanisms: what each cleared offer is paid.
//!
//! Dispatch (who clears how much) is the same under every mechanism; a
//! mechanism only sets the price paid per MWh of each offer. Each one is a
//! [`Settlement`] in its own file ([`super::uniform`], [`super::pay_as_bid`]);
//! [`Mechanism`] names them and is parsed once, here.

use super::pay_as_bid::PayAsBid;
use super::uniform::Uniform;
use crate::error::{MarketError, Result};
use std::str::FromStr;

/// How a mechanism pays the offers of one clearing.
pub trait Settlement {
    /// The price paid per MWh of offer `j` (`paid[j]`), given the clearing
    /// price and the (limit-clipped) offer prices. Written for every offer,
    /// cleared or not.
    fn settle(&self, price: f64, offer_prices: &[f64], paid: &mut [f64]);

    /// Volume-weighted average paid price, €/MWh, of a settled clearing:
    /// `sum(paid * cleared) / sum(cleared)`, or the clearing price when
    /// nothing cleared ([`average_paid`]).
    fn average(&self, price: f64, paid: &[f64], cleared: &[f64]) -> f64 {
        average_paid(paid, cleared, price)
    }
}

/// The settlement mechanism of a market.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub enum Mechanism {
    /// Every cleared MWh is paid the clearing price.
    #[default]
    Uniform,
    /// Every cleared MWh is paid its own offer price.
    PayAsBid,
}

impl Mechanism {
    pub const NAMES: [&'static str; 2] = ["uniform", "pay_as_bid"];

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Uniform => "uniform",
            Mechanism::PayAsBid => "pay_as_bid",
        }
    }

    /// The mechanism's settlement rule.
    pub fn settlement(self) -> &'static dyn Settlement {
        match self {
            Mechanism::Uniform => &Uniform,
            Mechanism::PayAsBid => &PayAsBid,
        }
    }

    /// Shorthand for `self.settlement().settle(..)`.
    #[inline]
    pub fn settle(self, price: f64, offer_prices: &[f64], paid: &mut [f64]) {
        self.settlement().settle(price, offer_prices, paid)
    }
}

impl FromStr for Mechanism {
    type Err = MarketError;

    fn from_str(name: &str) -> Result<Self> {
        match name {
            "uniform" => Ok(Mechanism::Uniform),
            "pay_as_bid" => Ok(Mechanism::PayAsBid),
            other => Err(MarketError::UnknownName {
                arg: "mechanism",
                value: other.to_string(),
                valid: Self::NAMES.join(", "),
            }),
        }
    }
}

/// Volume-weighted average paid price, €/MWh: `sum(paid * x) / sum(x)`, or
/// `fallback` when nothing cleared.
pub fn average_paid(paid: &[f64], cleared: &[f64], fallback: f64) -> f64 {
    let (mut value, mut volume) = (0.0, 0.0);
    for (&p, &x) in paid.iter().zip(cleared) {
        value += p * x;
        volume += x;
    }
    if volume > 0.0 {
        value / volume
    } else {
        fallback
    }
}
