//! powermarket: a fast multi-agent electricity-market bidding environment.
//!
//! This crate is the pure core: it holds all market logic and knows nothing
//! of Python. [`clearing`] (uniform-price merit order), [`scenario`] (fleet,
//! demand and rules), [`observe`] (feature builders), [`env`] (one market,
//! reset/step, RNG, episode record), [`vec_env`] (many markets stepped in one
//! call) and [`analysis`] (scoring). The crate `powermarket-py` beside it is
//! the PyO3 layer, which only converts, copies inputs, releases the GIL and
//! maps errors.

pub mod analysis;
pub mod clearing;
pub mod env;
pub mod error;
pub mod fastmath;
pub mod network;
pub mod observe;
pub mod opponents;
pub mod pool;
pub mod rng;
pub mod scenario;
pub mod units;
pub mod vec_env;

pub use clearing::{Clearing, Rules, TieRule, Workspace};
pub use env::MarketEnv;
pub use error::{MarketError, Result};
pub use observe::Observer;
pub use scenario::Scenario;
pub use vec_env::VecMarketEnv;
