//! Built-in bidding strategies for the agents a learner plays against
//! (generators and storage units).

use crate::env::PriceAction;
use crate::error::{MarketError, Result};
use crate::rng::RngState;
use rand_chacha::ChaCha8Rng;

mod arbitrage;
mod constant;
mod idle;
mod markup;
mod random;
mod truthful;

use crate::units::{AgentKind, KINDS};

/// What a rule knows when it bids for one block of one agent.
#[derive(Clone, Copy, Debug)]
pub struct RuleCtx<'a> {
    /// The market's `max_bid_delta`, €/MWh.
    pub max_bid_delta: f64,
    /// The market's price action: the box of `a1` and its mapping to a bid.
    pub price_action: PriceAction,
    /// The agent's kind (its action box).
    pub kind: &'a AgentKind,
    /// Its cost (a generator) or reference price (a storage unit), €/MWh.
    pub reference: f64,
    /// The block, and the number of blocks K.
    pub block: usize,
    pub blocks: usize,
    /// The last clearing price of its market (`None` in the first hour).
    pub last_price: Option<f64>,
}

/// A fixed bidding rule: one file per rule, each a type implementing this
/// trait, listed once in the [`strategies!`] registry below.
pub trait Rule: Sized {
    /// Its name in specs (`"truthful"`, `("markup", 5.0)`).
    const NAME: &'static str;
    /// The names of its parameters, in spec order.
    const PARAMS: &'static [&'static str];
    /// The rule of these parameters (as many as `PARAMS`, finite).
    fn from_params(params: &[f64]) -> Self;
    /// Its parameters, in spec order.
    fn params(&self) -> Vec<f64>;
    /// Its action `[a0, a1]` for one block, drawing from `rng` if it is
    /// random.
    fn action(&self, ctx: &RuleCtx<'_>, rng: &mut ChaCha8Rng) -> [f32; 2];
}

macro_rules! strategies {
    ($( $(#[$doc:meta])* $variant:ident => $ty:ty; )*) => {
        /// A fixed bidding rule, expressed as an action `[a0, a1]`.
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub enum Strategy {
            $( $(#[$doc])* $variant($ty), )*
        }

        impl Strategy {
            /// Every rule's name.
            pub const NAMES: &'static [&'static str] = &[$( <$ty>::NAME ),*];

            /// The rule named `name` with `params`; the error says what the
            /// rules are, or that a parameter is not finite.
            pub fn from_spec(name: &str, params: &[f64]) -> Result<Self> {
                $(
                    if name == <$ty>::NAME && params.len() == <$ty>::PARAMS.len() {
                        let s = Strategy::$variant(<$ty>::from_params(params));
                        // Finite as stored (an f32 parameter may overflow).
                        return match s.spec().1.into_iter().find(|p| !p.is_finite()) {
                            Some(value) => Err(MarketError::BadScalar {
                                arg: "opponent",
                                requirement: "parameters must be finite",
                                value,
                            }),
                            None => Ok(s),
                        };
                    }
                )*
                Err(MarketError::Invalid {
                    arg: "opponent",
                    message: format!("expected {}", Self::usage()),
                })
            }

            /// How specs are written: `"truthful", ..., ("markup", eur_per_mwh)`.
            pub fn usage() -> String {
                let specs: Vec<String> = vec![$(
                    if <$ty>::PARAMS.is_empty() {
                        format!("{:?}", <$ty>::NAME)
                    } else {
                        format!("({:?}, {})", <$ty>::NAME, <$ty>::PARAMS.join(", "))
                    }
                ),*];
                let (last, rest) = specs.split_last().expect("at least one rule");
                format!("{} or {last}", rest.join(", "))
            }

            /// An error if a parameter is not finite (a rule built directly,
            /// not by [`Strategy::from_spec`]).
            pub fn validate(&self) -> Result<()> {
                let (name, params) = self.spec();
                Self::from_spec(name, &params).map(|_| ())
            }

            /// `(name, parameters)`: what [`Strategy::from_spec`] reads back.
            pub fn spec(&self) -> (&'static str, Vec<f64>) {
                match self {
                    $( Strategy::$variant(r) => (<$ty>::NAME, r.params()), )*
                }
            }

            #[inline]
            fn action(&self, ctx: &RuleCtx<'_>, rng: &mut ChaCha8Rng) -> [f32; 2] {
                match self {
                    $( Strategy::$variant(r) => r.action(ctx, rng), )*
                }
            }
        }
    };
}

// The registry: one line per rule.
strategies! {
    /// Offer the whole capacity at marginal cost: `[0, 0]`.
    Truthful => truthful::Truthful;
    /// Uniform over the action box, from the strategy set's own RNG.
    Random => random::Random;
    /// The same action every hour.
    Constant => constant::Constant;
    /// Whole capacity at `cost + markup` €/MWh.
    Markup => markup::Markup;
    /// A storage unit that does not trade.
    Idle => idle::Idle;
    /// A storage unit that buys at `buy_below` and sells at `sell_above`.
    Arbitrage => arbitrage::Arbitrage;
}

pub use arbitrage::Arbitrage;
pub use constant::Constant;
pub use idle::Idle;
pub use markup::Markup;
pub use random::Random;
pub use truthful::Truthful;

/// Strategies for every agent (the learner's own slot is skipped), for
/// `num_markets` markets, each with its own RNG so that market i's draws do
/// not depend on how many markets there are.
#[derive(Clone, Debug)]
pub struct Opponents {
    pub strategies: Vec<Strategy>,
    /// The price action of the market the opponents bid in (the box of `a1`);
    /// set by [`Opponents::set_scenario`].
    pub price_action: PriceAction,
    rngs: Vec<ChaCha8Rng>,
    /// Generators among the agents (the rest are storage units), and each
    /// agent's cost or reference price ([`Opponents::in_market`]).
    generators: usize,
    references: Vec<f64>,
    /// The node of each agent of a networked market (empty otherwise): a
    /// rule sees its own node's last price.
    nodes: Vec<usize>,
}

impl Opponents {
    /// Market i's RNG uses key `seed`, stream i (OS entropy when `None`).
    pub fn new(strategies: Vec<Strategy>, seed: Option<u64>, num_markets: usize) -> Result<Self> {
        for s in &strategies {
            s.validate()?;
        }
        if num_markets == 0 {
            return Err(MarketError::Invalid {
                arg: "num_markets",
                message: "must be >= 1, got 0".into(),
            });
        }
        let key = seed.unwrap_or_else(rand::random);
        let mut rngs = Vec::new();
        rngs.try_reserve_exact(num_markets)
            .map_err(|_| MarketError::Memory {
                what: "num_markets",
                bytes: num_markets.saturating_mul(std::mem::size_of::<ChaCha8Rng>()),
            })?;
        rngs.extend((0..num_markets).map(|i| crate::rng::stream_rng(key, i as u64)));
        let generators = strategies.len();
        Ok(Opponents {
            references: vec![0.0; generators],
            price_action: PriceAction::default(),
            strategies,
            rngs,
            generators,
            nodes: Vec::new(),
        })
    }

    /// Generators among the agents, and each agent's cost or reference
    /// price (for pickling; [`Opponents::set_agents`] sets them back).
    pub fn agents(&self) -> (usize, &[f64], &[usize]) {
        (self.generators, &self.references, &self.nodes)
    }

    /// Set what [`Opponents::agents`] returned.
    pub fn set_agents(&mut self, generators: usize, references: Vec<f64>, nodes: Vec<usize>) {
        self.generators = generators;
        self.references = references;
        self.nodes = nodes;
    }

    /// Set the agents to those of scenario `s`: which are storage units,
    /// and each one's cost or reference price (for the rules that bid at a
    /// price). Until then every agent is a generator of cost 0. A no-op
    /// when they are already `s`'s.
    pub fn set_scenario(&mut self, s: &crate::scenario::Scenario) {
        self.price_action = s.price_action;
        let mean = s.mean_cost();
        let refs = s
            .costs
            .iter()
            .copied()
            .chain(s.storage.iter().map(|u| u.reference(mean)));
        let nodes = (0..s.agents())
            .filter(|_| s.networked())
            .map(|a| s.node_of(a));
        if self.generators == s.n()
            && self.references.iter().copied().eq(refs.clone())
            && self.nodes.iter().copied().eq(nodes.clone())
        {
            return;
        }
        self.generators = s.n();
        self.references = refs.collect();
        self.nodes = nodes.collect();
    }

    pub fn num_markets(&self) -> usize {
        self.rngs.len()
    }

    /// Reseed the markets where `mask` is true (all when `None`): market i
    /// with key `seed`, stream i.
    pub fn reseed(&mut self, seed: u64, mask: Option<&[bool]>) -> Result<()> {
        self.check_mask(mask)?;
        for (i, r) in self.rngs.iter_mut().enumerate() {
            if mask.is_none_or(|m| m[i]) {
                *r = crate::rng::stream_rng(seed, i as u64);
            }
        }
        Ok(())
    }

    /// Reseed market i with key `seeds[i]`, stream 0, where `mask` is true.
    pub fn reseed_each(&mut self, seeds: &[u64], mask: Option<&[bool]>) -> Result<()> {
        self.check_mask(mask)?;
        if seeds.len() != self.rngs.len() {
            return Err(MarketError::Shape {
                arg: "seed",
                expected: format!("a list of {} seeds", self.rngs.len()),
                got: format!("{} seeds", seeds.len()),
            });
        }
        for (i, (r, &s)) in self.rngs.iter_mut().zip(seeds).enumerate() {
            if mask.is_none_or(|m| m[i]) {
                *r = crate::rng::stream_rng(s, 0);
            }
        }
        Ok(())
    }

    fn check_mask(&self, mask: Option<&[bool]>) -> Result<()> {
        match mask {
            Some(m) if m.len() != self.rngs.len() => Err(MarketError::Shape {
                arg: "mask",
                expected: format!("({},)", self.rngs.len()),
                got: format!("{} values", m.len()),
            }),
            _ => Ok(()),
        }
    }

    /// Every market's RNG state, for pickling.
    pub fn rng_states(&self) -> Vec<RngState> {
        self.rngs.iter().map(RngState::capture).collect()
    }

    /// Rebuild from [`Opponents::rng_states`].
    pub fn restore(strategies: Vec<Strategy>, states: &[RngState]) -> Result<Self> {
        let mut o = Opponents::new(strategies, Some(0), states.len().max(1))?;
        // The market's agents are set again by the caller (`in_market`).
        if states.is_empty() {
            return Err(MarketError::Invalid {
                arg: "state",
                message: "no RNG states".into(),
            });
        }
        for (r, state) in o.rngs.iter_mut().zip(states) {
            *r = state.restore();
        }
        Ok(o)
    }

    /// Write every agent's action except `skip`'s into `actions`, (A, 2) or
    /// (A, K, 2) with K offer blocks per agent (each block gets the
    /// strategy's action; `Random` draws one per block), drawing from market
    /// `market`'s RNG; `last_prices` are that market's last clearing price
    /// (one value, or the Z node prices of a networked market: each agent
    /// sees its node's; NaN or empty before the first step).
    pub fn fill_market(
        &mut self,
        market: usize,
        actions: &mut [f32],
        skip: usize,
        delta: f64,
        last_prices: &[f64],
    ) {
        let n = self.strategies.len().max(1);
        let per_agent = (actions.len() / n).max(2);
        let rng = &mut self.rngs[market];
        for (i, (agent, s)) in actions
            .chunks_exact_mut(per_agent)
            .zip(&self.strategies)
            .enumerate()
        {
            if i != skip {
                let kind = &KINDS[usize::from(i >= self.generators)];
                let node = if last_prices.len() > 1 {
                    self.nodes.get(i).copied().unwrap_or(0)
                } else {
                    0
                };
                let last_price = last_prices.get(node).copied().filter(|p| !p.is_nan());
                let blocks = per_agent / 2;
                for (block, a) in agent.chunks_exact_mut(2).enumerate() {
                    let ctx = RuleCtx {
                        max_bid_delta: delta,
                        price_action: self.price_action,
                        kind,
                        reference: self.references.get(i).copied().unwrap_or(0.0),
                        block,
                        blocks,
                        last_price,
                    };
                    a.copy_from_slice(&s.action(&ctx, rng));
                }
            }
        }
    }

    /// [`Opponents::fill_market`] for market 0.
    pub fn fill(
        &mut self,
        actions: &mut [f32],
        skip: usize,
        max_bid_delta: f64,
        last_prices: &[f64],
    ) {
        self.fill_market(0, actions, skip, max_bid_delta, last_prices);
    }

    /// Fill (M, A, 2) actions, or (M, A, K, 2) with `segments` K > 1, market
    /// i from RNG i; M must be `num_markets`. `last_prices` (M values, or
    /// (M, Z) node prices of networked markets; NaN before a market's first
    /// step) are the markets' last clearing prices, or empty for none.
    pub fn fill_batch(
        &mut self,
        actions: &mut [f32],
        skip: usize,
        delta: f64,
        segments: usize,
        last_prices: &[f64],
    ) -> Result<()> {
        let n = self.strategies.len();
        let m = self.rngs.len();
        let k = segments.max(1);
        if actions.len() != m * n * k * 2 {
            return Err(MarketError::Shape {
                arg: "actions",
                expected: if k == 1 {
                    format!("({m}, {n}, 2)")
                } else {
                    format!("({m}, {n}, {k}, 2)")
                },
                got: format!("{} values", actions.len()),
            });
        }
        if n == 0 {
            return Ok(());
        }
        let per = last_prices.len() / m.max(1);
        for (i, chunk) in actions.chunks_exact_mut(2 * n * k).enumerate() {
            let last = last_prices.get(i * per..(i + 1) * per).unwrap_or(&[]);
            self.fill_market(i, chunk, skip, delta, last);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_maps_to_bid() {
        let mut o = Opponents::new(
            vec![Strategy::Markup(Markup(10.0)), Strategy::Truthful(Truthful)],
            Some(0),
            1,
        )
        .unwrap();
        let mut a = [9f32; 4];
        o.fill(&mut a, 1, 50.0, &[]);
        assert_eq!(a[0], 0.0);
        assert!(((a[1] as f64).tanh() * 50.0 - 10.0).abs() < 1e-4);
        assert_eq!(&a[2..], &[9.0, 9.0]);
    }

    #[test]
    fn linear_price_action_maps_markup_and_random_into_its_box() {
        let mut o = Opponents::new(
            vec![Strategy::Markup(Markup(10.0)), Strategy::Random(Random)],
            Some(0),
            1,
        )
        .unwrap();
        let mut s = crate::scenario::Scenario::default_preset(2, 4).unwrap();
        s.price_action = PriceAction::Linear;
        o.set_scenario(&s);
        let mut a = [9f32; 4];
        for _ in 0..100 {
            o.fill(&mut a, 9, 50.0, &[]);
            assert_eq!(&a[..2], &[0.0, 0.2]);
            assert!((0.0..=1.0).contains(&a[2]) && (-1.0..=1.0).contains(&a[3]));
        }
    }

    #[test]
    fn random_in_box() {
        let mut o = Opponents::new(vec![Strategy::Random(Random); 3], Some(1), 1).unwrap();
        let mut a = [0f32; 6];
        for _ in 0..100 {
            o.fill(&mut a, 9, 50.0, &[]);
            for p in a.chunks(2) {
                assert!((0.0..=1.0).contains(&p[0]) && (-10.0..=10.0).contains(&p[1]));
            }
        }
    }
}

#[cfg(test)]
mod stream_tests {
    use super::*;

    #[test]
    fn market_draws_do_not_depend_on_the_number_of_markets() {
        let mut one = Opponents::new(vec![Strategy::Random(Random); 2], Some(9), 1).unwrap();
        let mut four = Opponents::new(vec![Strategy::Random(Random); 2], Some(9), 4).unwrap();
        let mut a = [0f32; 4];
        let mut b = [0f32; 16];
        one.fill(&mut a, 9, 50.0, &[]);
        four.fill_batch(&mut b, 9, 50.0, 1, &[]).unwrap();
        assert_eq!(a, b[..4]);
        assert_ne!(b[..4], b[4..8]);
        assert!(four.fill_batch(&mut a, 9, 50.0, 1, &[]).is_err());
    }
}

#[cfg(test)]
mod spec_tests {
    use super::*;

    #[test]
    fn every_rule_reads_back_from_its_spec() {
        for s in [
            Strategy::Truthful(Truthful),
            Strategy::Random(Random),
            Strategy::Constant(Constant([0.25, -3.0])),
            Strategy::Markup(Markup(7.5)),
            Strategy::Idle(Idle),
            Strategy::Arbitrage(Arbitrage {
                buy_below: 20.0,
                sell_above: 40.0,
            }),
        ] {
            let (name, params) = s.spec();
            assert_eq!(Strategy::from_spec(name, &params).unwrap(), s);
        }
        assert_eq!(
            Strategy::NAMES,
            [
                "truthful",
                "random",
                "constant",
                "markup",
                "idle",
                "arbitrage"
            ]
        );
    }

    #[test]
    fn bad_specs_say_what_the_rules_are() {
        let e = Strategy::from_spec("markup", &[]).unwrap_err().to_string();
        assert!(
            e.contains(r#""truthful", "random", ("constant", a0, a1), ("markup", eur_per_mwh), "idle" or ("arbitrage", buy_below, sell_above)"#),
            "{e}"
        );
        // 1e300 does not fit a float32 parameter: not finite as stored.
        assert!(Strategy::from_spec("constant", &[1e300, 0.0]).is_err());
        assert!(Strategy::from_spec("markup", &[f64::NAN]).is_err());
        assert!(Strategy::Markup(Markup(f64::INFINITY)).validate().is_err());
    }
}
