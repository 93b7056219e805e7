//! The physics of the agents, below the env and the observers that both use
//! it: what an agent can offer in an hour and how that moves with its state.
//!
//! - [`generator`]: availability (capacity times load factor), the ramp
//!   window around the previous hour's dispatch, ramp costs.

pub mod generator;
