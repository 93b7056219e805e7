//! The one error type of the core. Every message names the argument, the
//! agent or market, and the offending value, so the Python layer can pass it
//! through unchanged.

use thiserror::Error;

/// Everything that can go wrong in the core. `Misuse` variants map to
/// `RuntimeError` in Python, all others to `ValueError`.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum MarketError {
    /// A value that must be finite is NaN or infinite.
    #[error("{arg}[{index}] must be finite, got {value}")]
    NotFinite {
        arg: &'static str,
        index: usize,
        value: f64,
    },
    /// A value that must be >= 0 is negative.
    #[error("{arg}[{index}] must be >= 0, got {value}")]
    Negative {
        arg: &'static str,
        index: usize,
        value: f64,
    },
    /// A scalar argument (demand, shortage price, ...) is out of its domain.
    #[error("{arg} {requirement}, got {value}")]
    BadScalar {
        arg: &'static str,
        requirement: &'static str,
        value: f64,
    },
    /// Two arrays that must have the same length do not.
    #[error(
        "length mismatch: {arg} has length {got}, expected {expected} (the length of {other})"
    )]
    LengthMismatch {
        arg: &'static str,
        other: &'static str,
        got: usize,
        expected: usize,
    },
    /// An array that must not be empty is.
    #[error("{arg} must not be empty")]
    Empty { arg: &'static str },
    /// A wrongly shaped array.
    #[error("{arg} must have shape {expected}, got {got}")]
    Shape {
        arg: &'static str,
        expected: String,
        got: String,
    },
    /// A non-finite action component (0: a0, 1: a1) of one agent, in one
    /// market of a batch.
    #[error("{}", crate::env::action::not_finite_message("actions", Some(&crate::env::action::agent_place(*.agent, *.generators, *.market)), crate::env::action::kind_of(*.agent, *.generators).0, *.component, *.value))]
    BadAction {
        /// The agent on the agent axis (generators, then storage units).
        agent: usize,
        /// Generators N of the market (to name the agent).
        generators: usize,
        market: Option<usize>,
        component: usize,
        value: f64,
    },
    /// A scenario field is invalid; `agent` and `hour` locate the bad
    /// value where there is one (the message says it in words too).
    #[error("scenario field `{field}`: {message}")]
    Scenario {
        field: &'static str,
        agent: Option<usize>,
        hour: Option<usize>,
        message: String,
    },
    /// An unknown name for an enumerated option.
    #[error("unknown {arg} {value:?}; valid values are: {valid}")]
    UnknownName {
        arg: &'static str,
        value: String,
        valid: String,
    },
    /// An error in one market of a batch.
    #[error("market {market}: {source}")]
    InMarket {
        market: usize,
        #[source]
        source: Box<MarketError>,
    },
    /// An argument that is invalid for a reason the message states.
    #[error("{arg}: {message}")]
    Invalid { arg: &'static str, message: String },
    /// An allocation sized by the caller's input failed.
    #[error("{what}: cannot allocate {bytes} bytes")]
    Memory { what: &'static str, bytes: usize },
    /// The API was used out of order (step before reset, step after the end).
    #[error("{0}")]
    Misuse(String),
}

impl MarketError {
    /// True for errors that are misuse of the API rather than bad values.
    pub fn is_misuse(&self) -> bool {
        match self {
            MarketError::Misuse(_) => true,
            MarketError::InMarket { source, .. } => source.is_misuse(),
            _ => false,
        }
    }

    /// True for failed allocations (MemoryError in Python).
    pub fn is_memory(&self) -> bool {
        match self {
            MarketError::Memory { .. } => true,
            MarketError::InMarket { source, .. } => source.is_memory(),
            _ => false,
        }
    }

    /// A scenario error of `field`, not located further.
    pub fn scenario(field: &'static str, message: impl Into<String>) -> Self {
        MarketError::Scenario {
            field,
            agent: None,
            hour: None,
            message: message.into(),
        }
    }

    /// The same scenario error, located at agent `i`.
    pub fn at_agent(mut self, i: usize) -> Self {
        if let MarketError::Scenario { agent, .. } = &mut self {
            *agent = Some(i);
        }
        self
    }

    /// The same scenario error, located at hour `h`.
    pub fn at_hour(mut self, h: usize) -> Self {
        if let MarketError::Scenario { hour, .. } = &mut self {
            *hour = Some(h);
        }
        self
    }

    /// Attach a market index (for batched calls).
    pub fn in_market(self, market: usize) -> MarketError {
        match self {
            MarketError::BadAction {
                agent,
                generators,
                component,
                value,
                ..
            } => MarketError::BadAction {
                agent,
                generators,
                market: Some(market),
                component,
                value,
            },
            other => MarketError::InMarket {
                market,
                source: Box::new(other),
            },
        }
    }
}

/// A shape as Python prints it: `(3,)`, `(2, 5)`.
pub fn shape_str(shape: &[usize]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

pub use crate::env::action::agent_name;

pub type Result<T> = std::result::Result<T, MarketError>;

/// Element types whose all-zero bit pattern is a valid zero value.
///
/// # Safety
/// Implement it only for types that are not zero-sized and for which every
/// all-zero byte pattern is a valid value: [`try_zeros`] hands such memory
/// out as initialised values.
pub unsafe trait Zeroable: Copy {}
// SAFETY: for each of these, all-zero bytes are the value 0 (0.0, false),
// and none is zero-sized.
unsafe impl Zeroable for f64 {}
unsafe impl Zeroable for f32 {}
unsafe impl Zeroable for usize {}
unsafe impl Zeroable for bool {}
unsafe impl Zeroable for u8 {}

/// A vector of `n` zeros, or an error instead of an abort when the memory
/// cannot be had. `what` names the argument that sized it. The memory comes
/// from the zeroing allocator, so pages are touched only when written.
pub fn try_zeros<T: Zeroable>(n: usize, what: &'static str) -> Result<Vec<T>> {
    const {
        assert!(
            std::mem::size_of::<T>() > 0,
            "Zeroable types are not zero-sized"
        )
    };
    if n == 0 {
        return Ok(Vec::new());
    }
    let bytes = n.saturating_mul(std::mem::size_of::<T>());
    let layout =
        std::alloc::Layout::array::<T>(n).map_err(|_| MarketError::Memory { what, bytes })?;
    // SAFETY: the layout has a non-zero size (n > 0, T is not zero-sized);
    // all-zero bytes are a valid T (Zeroable); the Vec takes ownership of a
    // block allocated by the global allocator with T's layout, length and
    // capacity n.
    unsafe {
        let ptr = std::alloc::alloc_zeroed(layout) as *mut T;
        if ptr.is_null() {
            return Err(MarketError::Memory { what, bytes });
        }
        Ok(Vec::from_raw_parts(ptr, n, n))
    }
}

/// `a * b`, or an error naming `what` when the product overflows.
pub fn checked_size(a: usize, b: usize, what: &'static str) -> Result<usize> {
    a.checked_mul(b).ok_or(MarketError::Memory {
        what,
        bytes: usize::MAX,
    })
}
