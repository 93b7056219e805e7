//! The action of an agent, declared once: the box, the names of its
//! components, the agent names, and the checks every front runs (through
//! `_core`), so that the same bad input gets the same message everywhere.

use crate::error::{MarketError, Result};
use crate::units::{AgentKind, KINDS};

/// Lower bounds of a generator's action box, per component: `[a0, a1]`
/// (other kinds: [`KINDS`]).
pub const ACTION_LOW: [f32; 2] = KINDS[0].low;
/// Upper bounds of a generator's action box, per component.
pub const ACTION_HIGH: [f32; 2] = KINDS[0].high;
/// What each component of a generator's action means, as error messages
/// name it.
pub const COMPONENTS: [&str; 2] = [KINDS[0].quantity, "a1 (price action)"];

/// The box every kind's actions lie in (the union of the kinds' boxes):
/// what the conversion of an action array clips finite values to, before
/// the step clips each agent's to its own kind's box.
pub const ACTION_HULL_LOW: [f32; 2] = hull(true);
/// Upper bounds of [`ACTION_HULL_LOW`]'s box.
pub const ACTION_HULL_HIGH: [f32; 2] = hull(false);

const fn hull(low: bool) -> [f32; 2] {
    let mut out = if low { KINDS[0].low } else { KINDS[0].high };
    let mut k = 1;
    while k < KINDS.len() {
        let b = if low { KINDS[k].low } else { KINDS[k].high };
        let mut c = 0;
        while c < 2 {
            if (low && b[c] < out[c]) || (!low && b[c] > out[c]) {
                out[c] = b[c];
            }
            c += 1;
        }
        k += 1;
    }
    out
}

/// The kind of agent `i` of a market with `n` generators, and its index
/// within the kind.
pub fn kind_of(i: usize, n: usize) -> (&'static AgentKind, usize) {
    if i < n {
        (&KINDS[0], i)
    } else {
        (&KINDS[1], i - n)
    }
}

/// Name of agent `i` of a market with `n` generators, as every front shows
/// it: `gen_i` for a generator, `sto_u` for storage unit `u = i - n`.
pub fn agent_name(i: usize, n: usize) -> String {
    let (kind, j) = kind_of(i, n);
    format!("{}_{j}", kind.prefix)
}

/// The agent index of a name from [`agent_name`] in a market of `n`
/// generators and `s` storage units, if it is one.
pub fn agent_index(name: &str, n: usize, s: usize) -> Option<usize> {
    let mut first = 0;
    for (kind, count) in KINDS.iter().zip([n, s]) {
        if let Some(digits) = name
            .strip_prefix(kind.prefix)
            .and_then(|r| r.strip_prefix('_'))
        {
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let j: usize = digits.parse().ok()?;
            return (j < count).then_some(first + j);
        }
        first += count;
    }
    None
}

/// Where an agent's action lives: "gen_3", or "sto_0 in market 2".
pub fn agent_place(agent: usize, n: usize, market: Option<usize>) -> String {
    match market {
        Some(m) => format!("{} in market {m}", agent_name(agent, n)),
        None => agent_name(agent, n),
    }
}

/// What component `c` of an action of `kind` means.
pub fn component_name(kind: &AgentKind, c: usize) -> &'static str {
    if c.is_multiple_of(2) {
        kind.quantity
    } else {
        COMPONENTS[1]
    }
}

/// The message for a non-finite action value: `arg`, where it is (`who`),
/// which component of which kind of agent, and the value.
pub fn not_finite_message(
    arg: &str,
    who: Option<&str>,
    kind: &AgentKind,
    component: usize,
    value: f64,
) -> String {
    let at = who.map(|w| format!(" for {w}")).unwrap_or_default();
    format!(
        "{arg}{at}: {} must be finite, got {value}",
        component_name(kind, component)
    )
}

/// Value `x` of component `c` clipped to the hull of the kinds' boxes if
/// finite ([`ACTION_HULL_LOW`]); NaN and infinities stay, for
/// [`first_non_finite`] to report.
#[inline]
pub fn clipped(c: usize, x: f64) -> f64 {
    if x.is_finite() {
        x.max(ACTION_HULL_LOW[c] as f64)
            .min(ACTION_HULL_HIGH[c] as f64)
    } else {
        x
    }
}

/// Value `x` of component `c` of an action of `kind`, clipped to its box.
#[inline(always)]
pub fn clamp_to(kind: &AgentKind, c: usize, x: f32) -> f64 {
    (x as f64).clamp(kind.low[c] as f64, kind.high[c] as f64)
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

/// Check that a flat action array of `agents` x `segments` blocks of a
/// market with `n` generators is finite; the error names the agent and the
/// component.
pub fn check_finite(actions: &[f32], segments: usize, n: usize) -> Result<()> {
    match first_non_finite(actions) {
        None => Ok(()),
        Some(k) => Err(MarketError::BadAction {
            agent: k / (2 * segments),
            generators: n,
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
        assert_eq!(agent_index(&agent_name(12, 20), 20, 0), Some(12));
        assert_eq!(agent_name(12, 10), "sto_2");
        assert_eq!(agent_index("sto_2", 10, 3), Some(12));
        for bad in [
            "gen_", "gen_-1", "gen_1a", "sto_0", "gen_ 1", "gen_+1", "gen_20", "sto_",
        ] {
            assert_eq!(agent_index(bad, 20, 0), None, "{bad}");
        }
        assert_eq!(ACTION_HULL_LOW, [-1.0, -10.0]);
        assert_eq!(ACTION_HULL_HIGH, [1.0, 10.0]);
    }

    #[test]
    fn clipping_keeps_non_finite_values_for_the_check() {
        let mut v = [2.0, -1e300, f64::NAN, 5.0, -3.0, f64::INFINITY];
        clip_to_box(&mut v);
        assert_eq!(&v[..2], &[1.0, -10.0]);
        assert!(v[2].is_nan());
        assert_eq!(&v[3..5], &[5.0, -1.0]);
        assert_eq!(first_non_finite(&v), Some(2));
    }

    #[test]
    fn the_error_names_agent_block_and_component() {
        let mut a = [0.0f32; 12]; // 2 agents x 3 blocks
        a[9] = f32::NAN; // agent 1, block 1, a1
        let e = check_finite(&a, 3, 2).unwrap_err().to_string();
        assert_eq!(
            e,
            "actions for gen_1: a1 (price action) must be finite, got NaN"
        );
        let e = check_finite(&a, 3, 2).unwrap_err().in_market(4).to_string();
        assert_eq!(
            e,
            "actions for gen_1 in market 4: a1 (price action) must be finite, got NaN"
        );
        a[9] = 0.0;
        a[8] = f32::INFINITY; // agent 1 is a storage unit when n = 1
        let e = check_finite(&a, 3, 1).unwrap_err().to_string();
        assert_eq!(
            e,
            "actions for sto_0: a0 (signed power share) must be finite, got inf"
        );
    }
}
