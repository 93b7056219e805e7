//! Scoring bidding results: the competitive benchmark, market-power metrics,
//! exploitability (NashConv) of a played profile, pure-strategy Nash
//! equilibria of a one-hour auction, and the Cournot equilibrium.
//!
//! Every function is a pure function of its inputs (no Python, no global
//! state). The exact definitions are in `docs/semantics.md` (section 10).
//!
//! - [`competitive`]: everyone offers full capacity at cost;
//! - [`market_power`]: RSI, pivotal suppliers, HHI, Lerner index, markups;
//! - [`exploitability`]: per-hour best-response gain of each agent on a grid
//!   of deviations, others held as played (the hot loop: every deviation of
//!   every agent in every hour is cleared);
//! - [`equilibrium`]: an approximate pure equilibrium of the per-hour game
//!   on the same grid, by best-response dynamics (reusing the exploitability
//!   scoring);
//! - [`pure_nash`]: every pure equilibrium of a uniform-price auction in
//!   which each generator offers its full capacity at a grid price;
//! - [`cournot`]: quantity competition with linear inverse demand.

mod competitive;
mod cournot;
mod equilibrium;
mod exploit;
mod metrics;
mod nash;
#[cfg(test)]
mod network_tests;
mod nodal;
mod storage_dp;

pub use competitive::{competitive, Competitive};
pub use cournot::cournot;
pub use equilibrium::{
    equilibrium, Equilibrium, Options as EquilibriumOptions, Profile, EQUILIBRIUM_MAX_CLEARINGS,
};
pub use exploit::{
    eur_per_day, exploitability, exploitability_with, Exploitability, Grid, DEFAULT_SOC_GRID,
    MAX_WORK as MAX_EXPLOIT_WORK,
};
pub use metrics::{
    market_power, market_power_at_nodes, market_power_with_storage, MarketPower, StorageRecord,
};
pub use nash::{pure_nash, PureNash, MAX_PROFILES};
pub use nodal::NodePower;

use crate::error::{MarketError, Result};

/// The error for a result that does not fit in memory (a ValueError in
/// Python that names the argument and the size).
fn too_large(arg: &'static str, size: f64) -> MarketError {
    MarketError::Memory {
        what: arg,
        bytes: (size * 8.0).min(usize::MAX as f64) as usize,
    }
}

/// The product of `dims`, or an error naming `arg` when it overflows.
fn checked_size(arg: &'static str, dims: &[usize]) -> Result<usize> {
    dims.iter().try_fold(1usize, |acc, &d| {
        acc.checked_mul(d)
            .ok_or_else(|| too_large(arg, dims.iter().map(|&d| d as f64).product()))
    })
}

/// `len` copies of `fill`, allocated fallibly: an error naming `arg` instead
/// of an abort when memory runs out.
fn try_vec<T: Clone>(arg: &'static str, len: usize, fill: T) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| too_large(arg, len as f64))?;
    v.resize(len, fill);
    Ok(v)
}

/// Every value of `v` is finite; the error names `arg` and the index.
fn check_finite(arg: &'static str, v: &[f64]) -> Result<()> {
    match v.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(MarketError::NotFinite {
            arg,
            index,
            value: v[index],
        }),
        None => Ok(()),
    }
}

/// Every value of `v` is finite and >= 0.
fn check_non_negative(arg: &'static str, v: &[f64]) -> Result<()> {
    check_finite(arg, v)?;
    match v.iter().position(|&x| x < 0.0) {
        Some(index) => Err(MarketError::Negative {
            arg,
            index,
            value: v[index],
        }),
        None => Ok(()),
    }
}

/// Run `f`, whose rayon calls go to the crate's shared, fork-safe pool
/// ([`crate::pool`]); if no pool can be started, on the calling thread.
fn in_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    match crate::pool::shared() {
        Ok(pool) => pool.install(f),
        Err(_) => f(),
    }
}
