//! The action of an agent, declared once: the box, the names of its
//! components, the agent names, and the checks every front runs (through
//! `_core`), so that the same bad input gets the same message everywhere.

use crate::error::{MarketError, Result};

/// Lower bounds of the action box, per component: `[a0, a1]`.
pub const ACTION_LOW: [f32; 2] = [0.0, -10.0];
/// Upper bounds of the action box, per component.
pub const ACTION_HIGH: [f32; 2] = [1.0, 10.0];
/// What each component means, as error messages name it.
pub const COMPONENTS: [&str; 2] = ["a0 (withheld share)", "a1 (price action)"];

/// Name of agent `i` as every front shows it.
pub fn agent_name(i: usize) -> String {
    format!("gen_{i}")
}

/// The agent index of a name from [`agent_name`], if it is one.
pub fn agent_index(name: &str) -> Option<usize> {
    let digits = name.strip_prefix("gen_")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Where an agent's action lives: "gen_3", or "gen_3 in market 2".
pub fn agent_place(agent: usize, market: Option<usize>) -> String {
    match market {
        Some(m) => format!("{} in market {m}", agent_name(agent)),
        None => agent_name(agent),
    }
}

/// The message for a non-finite action value: `arg`, where it is (`who`),
/// which component, and the value.
pub fn not_finite_message(arg: &str, who: Option<&str>, component: usize, value: f64) -> String {
    let at = who.map(|w| format!(" for {w}")).unwrap_or_default();
    format!(
        "{arg}{at}: {} must be finite, got {value}",
        COMPONENTS[component % 2]
    )
}

/// Value `x` of component `c` clipped to the box if finite; NaN and
/// infinities stay, for [`first_non_finite`] to report.
#[inline]
pub fn clipped(c: usize, x: f64) -> f64 {
    if x.is_finite() {
        x.max(ACTION_LOW[c] as f64).min(ACTION_HIGH[c] as f64)
    } else {
        x
    }
}

/// [`clipped`] over a flat array, in place (value `j` is component `j % 2`).
pub fn clip_to_box(values: &mut [f64]) {
    for (j, x) in values.iter_mut().enumerate() {
        *x = clipped(j % 2, *x);
    }
}

/// Index of the first NaN or infinity.
pub fn first_non_finite<T: Copy + Into<f64>>(values: &[T]) -> Option<usize> {
    values.iter().position(|&x| !x.into().is_finite())
}

/// Check that a flat action array of `agents` x `segments` blocks is finite;
/// the error names the agent and the component.
pub fn check_finite(actions: &[f32], segments: usize) -> Result<()> {
    match first_non_finite(actions) {
        None => Ok(()),
        Some(k) => Err(MarketError::BadAction {
            agent: k / (2 * segments),
            market: None,
            component: k % 2,
            value: actions[k] as f64,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_names_round_trip_and_reject_lookalikes() {
        assert_eq!(agent_index(&agent_name(12)), Some(12));
        for bad in ["gen_", "gen_-1", "gen_1a", "sto_0", "gen_ 1", "gen_+1"] {
            assert_eq!(agent_index(bad), None, "{bad}");
        }
    }

    #[test]
    fn clipping_keeps_non_finite_values_for_the_check() {
        let mut v = [2.0, -1e300, f64::NAN, 5.0, -3.0, f64::INFINITY];
        clip_to_box(&mut v);
        assert_eq!(&v[..2], &[1.0, -10.0]);
        assert!(v[2].is_nan());
        assert_eq!(&v[3..5], &[5.0, 0.0]);
        assert_eq!(first_non_finite(&v), Some(2));
    }

    #[test]
    fn the_error_names_agent_block_and_component() {
        let mut a = [0.0f32; 12]; // 2 agents x 3 blocks
        a[9] = f32::NAN; // agent 1, block 1, a1
        let e = check_finite(&a, 3).unwrap_err().to_string();
        assert_eq!(
            e,
            "actions for gen_1: a1 (price action) must be finite, got NaN"
        );
        let e = check_finite(&a, 3).unwrap_err().in_market(4).to_string();
        assert_eq!(
            e,
            "actions for gen_1 in market 4: a1 (price action) must be finite, got NaN"
        );
    }
}
