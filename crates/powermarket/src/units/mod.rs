//! The physics of the agents, below the env and the observers that both use
//! it: what an agent can offer in an hour and how that moves with its state.
//!
//! - [`generator`]: availability (capacity times load factor), the ramp
//!   window around the previous hour's dispatch, ramp costs.
//! - [`storage`]: power and energy, the state of charge, efficiencies, and
//!   the cut of a unit's blocks to what its state of charge allows.
//!
//! The agent kinds of a market, in the order of the agent axis, are listed
//! once in [`KINDS`]: their name prefix and action box.

pub mod generator;
pub mod storage;

/// What the fronts need to know of an agent kind.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AgentKind {
    /// Agents are named `{prefix}_{index within the kind}`.
    pub prefix: &'static str,
    /// The action box of one block, `[a0, a1]`.
    pub low: [f32; 2],
    pub high: [f32; 2],
    /// What `a0` means, as error messages name it.
    pub quantity: &'static str,
}

/// The agent kinds in the order of the agent axis: generators, then storage.
pub const KINDS: [AgentKind; 2] = [
    AgentKind {
        prefix: "gen",
        low: [0.0, -10.0],
        high: [1.0, 10.0],
        quantity: "a0 (withheld share)",
    },
    AgentKind {
        prefix: "sto",
        low: storage::STORAGE_ACTION_LOW,
        high: storage::STORAGE_ACTION_HIGH,
        quantity: "a0 (signed power share)",
    },
];
