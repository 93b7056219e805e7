//! How the price action `a1` becomes a bid: the one place that maps it.
//!
//! - `"tanh"` (the default, easy_marl's): `a1` in [-10, 10], the bid is
//!   `c_i + tanh(a1) * max_bid_delta`.
//! - `"linear"`: `a1` in [-1, 1], the bid is `c_i + a1 * max_bid_delta`. It
//!   suits policies that already squash their output into a box (a
//!   TanhNormal over [-1, 1]), where a second `tanh` would flatten most of
//!   the samples onto the ends.
//!
//! Both share the withheld share `a0` in [0, 1]; only the box of `a1` and
//! its mapping differ. [`PriceAction::low`] and [`PriceAction::high`] are the
//! action box every front declares.

use super::action::{ACTION_HIGH, ACTION_LOW};
use crate::error::{MarketError, Result};
use std::str::FromStr;

/// The mapping of the price action `a1` to a bid markup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub enum PriceAction {
    /// `a1` in [-10, 10], markup `tanh(a1) * max_bid_delta`.
    #[default]
    Tanh,
    /// `a1` in [-1, 1], markup `a1 * max_bid_delta`.
    Linear,
}

impl PriceAction {
    pub const NAMES: [&'static str; 2] = ["tanh", "linear"];

    pub fn name(self) -> &'static str {
        match self {
            PriceAction::Tanh => "tanh",
            PriceAction::Linear => "linear",
        }
    }

    /// Lower bounds of the action box `[a0, a1]`.
    pub const fn low(self) -> [f32; 2] {
        match self {
            PriceAction::Tanh => ACTION_LOW,
            PriceAction::Linear => [ACTION_LOW[0], -1.0],
        }
    }

    /// Upper bounds of the action box `[a0, a1]`.
    pub const fn high(self) -> [f32; 2] {
        match self {
            PriceAction::Tanh => ACTION_HIGH,
            PriceAction::Linear => [ACTION_HIGH[0], 1.0],
        }
    }

    /// `a1` clipped to the box.
    #[inline(always)]
    fn clip(self, a1: f32) -> f64 {
        (a1 as f64).clamp(self.low()[1] as f64, self.high()[1] as f64)
    }

    /// The markup of price action `a1` as a share of `max_bid_delta`, in
    /// [-1, 1]: `tanh(a1)` or `a1`, after clipping `a1` to the box.
    #[inline(always)]
    pub fn share(self, a1: f32) -> f64 {
        match self {
            PriceAction::Tanh => crate::fastmath::tanh(self.clip(a1)),
            PriceAction::Linear => self.clip(a1),
        }
    }

    /// [`PriceAction::share`] of two actions at once (the same bits as two
    /// calls: [`crate::fastmath::tanh2`]).
    #[inline(always)]
    pub fn share2(self, a: f32, b: f32) -> (f64, f64) {
        match self {
            PriceAction::Tanh => crate::fastmath::tanh2(self.clip(a), self.clip(b)),
            PriceAction::Linear => (self.clip(a), self.clip(b)),
        }
    }

    /// The price action whose share is `x` (clipped to [-1, 1]), inside the
    /// box: `atanh(x)` clipped to [-10, 10], or `x`.
    pub fn from_share(self, x: f64) -> f32 {
        let x = x.clamp(-1.0, 1.0);
        let (lo, hi) = (self.low()[1] as f64, self.high()[1] as f64);
        match self {
            PriceAction::Tanh => x.atanh().clamp(lo, hi) as f32,
            PriceAction::Linear => x as f32,
        }
    }
}

impl FromStr for PriceAction {
    type Err = MarketError;

    fn from_str(name: &str) -> Result<Self> {
        match name {
            "tanh" => Ok(PriceAction::Tanh),
            "linear" => Ok(PriceAction::Linear),
            other => Err(MarketError::UnknownName {
                arg: "price_action",
                value: other.to_string(),
                valid: Self::NAMES.join(", "),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for n in PriceAction::NAMES {
            assert_eq!(n.parse::<PriceAction>().unwrap().name(), n);
        }
        let e = "cubic".parse::<PriceAction>().unwrap_err().to_string();
        assert!(e.contains("price_action") && e.contains("cubic") && e.contains("linear"));
    }

    #[test]
    fn tanh_is_the_old_mapping_and_linear_is_the_identity_on_its_box() {
        let t = PriceAction::Tanh;
        for a in [-20.0f32, -10.0, -0.3, 0.0, 0.7, 3.0, 10.0, 1e30] {
            let want = crate::fastmath::tanh((a as f64).clamp(-10.0, 10.0));
            assert_eq!(t.share(a).to_bits(), want.to_bits(), "{a}");
        }
        let l = PriceAction::Linear;
        assert_eq!(l.low(), [0.0, -1.0]);
        assert_eq!(l.high(), [1.0, 1.0]);
        assert_eq!(l.share(0.25), 0.25);
        assert_eq!(l.share(-3.0), -1.0);
        assert_eq!(l.share(2.0), 1.0);
        assert_eq!(l.share2(0.5, -0.5), (0.5, -0.5));
        let (a, b) = t.share2(0.5, -12.0);
        assert_eq!(
            (a.to_bits(), b.to_bits()),
            (t.share(0.5).to_bits(), t.share(-12.0).to_bits())
        );
    }

    #[test]
    fn from_share_inverts_share_inside_the_box() {
        for x in [-1.0, -0.5, 0.0, 0.2, 1.0] {
            assert!(
                (PriceAction::Linear.share(PriceAction::Linear.from_share(x)) - x).abs() < 1e-7
            );
        }
        assert!((PriceAction::Tanh.share(PriceAction::Tanh.from_share(0.2)) - 0.2).abs() < 1e-6);
        assert_eq!(PriceAction::Tanh.from_share(1.0), 10.0);
    }
}
