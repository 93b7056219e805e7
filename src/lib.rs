//! powermarket: a fast multi-agent electricity-market bidding environment.
//!
//! The core (this crate without the `python` feature) holds all market logic:
//! [`clearing`] (uniform-price merit order), [`scenario`] (fleet, demand and
//! rules), [`observe`] (feature builders), [`env`] (one market, reset/step,
//! RNG, episode record) and [`vec_env`] (many markets stepped in one call).
//! The `python` feature adds the PyO3 layer, which only converts, validates
//! and releases the GIL.

pub mod analysis;
pub mod clearing;
pub mod env;
pub mod error;
pub mod fastmath;
pub mod observe;
pub mod opponents;
pub mod pool;
pub mod scenario;
pub mod vec_env;

#[cfg(feature = "python")]
mod python;

pub use clearing::{Clearing, Rules, TieRule, Workspace};
pub use env::MarketEnv;
pub use error::{MarketError, Result};
pub use observe::Observer;
pub use scenario::Scenario;
pub use vec_env::VecMarketEnv;
