//! The steps the Python fronts need beyond [`MarketEnv::step`], in the core
//! so that each has one implementation with Rust tests: the PettingZoo step
//! (one action per named agent) and the Gymnasium single-learner step (one
//! learner; built-in opponents fill the other rows).

use super::action::{agent_index, agent_name};
use super::{MarketEnv, StepInfo};
use crate::error::{MarketError, Result};
use crate::opponents::Opponents;

/// Memory of the front steps, kept between calls so that a step does not
/// allocate.
#[derive(Clone, Debug, Default)]
pub struct FrontScratch {
    actions: Vec<f32>,
    obs: Vec<f32>,
    rewards: Vec<f32>,
}

/// What a front step returns: every agent's observation (N, D) and reward
/// (N,), and the step's info.
#[derive(Debug)]
pub struct Stepped<'a> {
    pub obs: &'a [f32],
    pub rewards: &'a [f32],
    pub info: StepInfo,
}

/// Rows that the caller fills itself in a single-learner step (Python
/// callables): (N, K, 2) actions, used where `mask` is true.
#[derive(Clone, Copy, Debug)]
pub struct GivenRows<'a> {
    pub actions: &'a [f32],
    pub mask: &'a [bool],
}

/// Check that `names` are the agent names of a market of `n` generators
/// and `s` storage units, in index order, each once.
pub fn check_agent_names<'a>(
    names: impl ExactSizeIterator<Item = &'a str>,
    n: usize,
    s: usize,
) -> Result<()> {
    let got = names.len();
    if got != n + s {
        return Err(MarketError::Invalid {
            arg: "agents",
            message: format!("expected {} names, got {got}", n + s),
        });
    }
    for (i, name) in names.enumerate() {
        // "gen_01" parses to 1 but is not the name of agent 1.
        if agent_index(name, n, s) != Some(i) || agent_name(i, n) != name {
            let last = agent_name(n + s - 1, n);
            return Err(MarketError::Invalid {
                arg: "agents",
                message: format!(
                    "must be the agent names in index order (gen_0 ... {last}, each once), \
                     got {name:?} at position {i}"
                ),
            });
        }
    }
    Ok(())
}

impl MarketEnv {
    /// Values per agent in a flat action array: 2 per offer block.
    fn row_len(&self) -> usize {
        2 * self.market().segments()
    }

    /// Step with the actions in `sc.actions` and return the outputs held in `sc`.
    fn step_scratch<'a>(&mut self, sc: &'a mut FrontScratch) -> Result<Stepped<'a>> {
        let (n, d) = (self.num_agents(), self.obs_dim());
        sc.obs.resize(n * d, 0.0);
        sc.rewards.resize(n, 0.0);
        let info = self.step(&sc.actions, &mut sc.obs, &mut sc.rewards)?;
        Ok(Stepped {
            obs: &sc.obs,
            rewards: &sc.rewards,
            info,
        })
    }

    /// The PettingZoo step: `rows[i]` is agent `i`'s action (2K values, K
    /// offer blocks), `None` when the caller has none for it (an error
    /// naming the agent). Nothing changes on error.
    pub fn step_rows<'a>(
        &mut self,
        rows: &[Option<&[f32]>],
        sc: &'a mut FrontScratch,
    ) -> Result<Stepped<'a>> {
        let (n, per) = (self.num_agents(), self.row_len());
        let gens = self.market().n();
        if rows.len() != n {
            return Err(MarketError::Invalid {
                arg: "actions",
                message: format!("expected one action per agent ({n}), got {}", rows.len()),
            });
        }
        sc.actions.clear();
        for (i, row) in rows.iter().enumerate() {
            let row = row.ok_or_else(|| MarketError::Invalid {
                arg: "actions",
                message: format!("no action for agent {}", agent_name(i, gens)),
            })?;
            if row.len() != per {
                return Err(MarketError::Shape {
                    arg: "actions",
                    expected: format!(
                        "{per} values for {} ({})",
                        agent_name(i, gens),
                        if per == 2 {
                            "[a0, a1]".to_string()
                        } else {
                            format!("({}, 2)", per / 2)
                        }
                    ),
                    got: format!("{} values", row.len()),
                });
            }
            sc.actions.extend_from_slice(row);
        }
        self.step_scratch(sc)
    }

    /// The Gymnasium single-learner step: agent `agent` plays `action` (2K
    /// values, already clipped to the box), the rows in `given` are the
    /// caller's (opponent callables), and every other row follows
    /// `opponents`, drawing from its market 0 RNG. Everything is checked
    /// before an opponent draws: on error nothing changes, RNGs included.
    pub fn step_single<'a>(
        &mut self,
        agent: usize,
        action: &[f32],
        given: Option<GivenRows<'_>>,
        opponents: &mut Opponents,
        max_bid_delta: f64,
        sc: &'a mut FrontScratch,
    ) -> Result<Stepped<'a>> {
        let (n, per) = (self.num_agents(), self.row_len());
        let gens = self.market().n();
        if agent >= n {
            return Err(MarketError::Invalid {
                arg: "agent",
                message: format!("must be in [0, {n}), got {agent}"),
            });
        }
        if opponents.strategies.len() != n {
            return Err(MarketError::Invalid {
                arg: "opponents",
                message: format!(
                    "has {} strategies for a market of {n} agents",
                    opponents.strategies.len()
                ),
            });
        }
        if action.len() != per {
            return Err(MarketError::Shape {
                arg: "actions",
                expected: if per == 2 {
                    "(2,)".into()
                } else {
                    format!("({}, 2)", per / 2)
                },
                got: format!("{} values", action.len()),
            });
        }
        super::check_steppable(self.t().unwrap_or(super::NOT_STARTED), self.horizon())?;
        super::action::check_finite(action, per / 2, gens).map_err(|e| relabel(e, agent, gens))?;
        if let Some(g) = given {
            if g.actions.len() != n * per || g.mask.len() != n {
                return Err(MarketError::Shape {
                    arg: "opponents' actions",
                    expected: format!("{} values and {n} flags", n * per),
                    got: format!("{} values and {} flags", g.actions.len(), g.mask.len()),
                });
            }
            for (i, row) in g.actions.chunks_exact(per).enumerate() {
                if g.mask[i] && i != agent {
                    super::action::check_finite(row, per / 2, gens)
                        .map_err(|e| relabel(e, i, gens))?;
                }
            }
        }
        sc.actions.resize(n * per, 0.0);
        opponents.set_scenario(self.scenario());
        opponents.fill(&mut sc.actions, agent, max_bid_delta, self.last_prices());
        if let Some(g) = given {
            for (i, (dst, src)) in sc
                .actions
                .chunks_exact_mut(per)
                .zip(g.actions.chunks_exact(per))
                .enumerate()
            {
                if g.mask[i] && i != agent {
                    dst.copy_from_slice(src);
                }
            }
        }
        sc.actions[agent * per..(agent + 1) * per].copy_from_slice(action);
        self.step_scratch(sc)
    }
}

/// An action error of one agent's row, moved to agent `agent` of a
/// market of `generators` generators.
fn relabel(e: MarketError, agent: usize, generators: usize) -> MarketError {
    match e {
        MarketError::BadAction {
            market,
            component,
            value,
            ..
        } => MarketError::BadAction {
            agent,
            generators,
            market,
            component,
            value,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clearing::TieRule;
    use crate::observe::Observer;
    use crate::opponents::{Random, Strategy, Truthful};
    use crate::scenario::Scenario;

    fn env(segments: usize) -> MarketEnv {
        let mut s = Scenario::default_preset(3, 4).unwrap();
        s.segments = segments;
        let mut e = MarketEnv::new(s, Observer::Market, TieRule::ProRata, Some(5)).unwrap();
        let mut obs = vec![0.0; 3 * e.obs_dim()];
        e.reset(Some(5), &mut obs).unwrap();
        e
    }

    #[test]
    fn the_single_step_equals_a_full_step_with_the_opponents_rows() {
        for k in [1, 3] {
            let strategies = vec![
                Strategy::Random(Random),
                Strategy::Truthful(Truthful),
                Strategy::Random(Random),
            ];
            let mut ops = Opponents::new(strategies.clone(), Some(9), 1).unwrap();
            let mut twin_ops = Opponents::new(strategies, Some(9), 1).unwrap();
            let (mut a, mut b) = (env(k), env(k));
            let mut sc = FrontScratch::default();
            let action: Vec<f32> = (0..2 * k).map(|j| [0.25, -0.5][j % 2]).collect();
            for _ in 0..4 {
                let got = a
                    .step_single(1, &action, None, &mut ops, 50.0, &mut sc)
                    .unwrap();
                let (obs, rewards, price) =
                    (got.obs.to_vec(), got.rewards.to_vec(), got.info.price);
                let mut full = vec![0.0; 3 * 2 * k];
                twin_ops.set_scenario(b.scenario());
                twin_ops.fill(&mut full, 1, 50.0, b.last_prices());
                full[2 * k..4 * k].copy_from_slice(&action);
                let (mut o, mut r) = (vec![0.0; obs.len()], vec![0.0; 3]);
                let info = b.step(&full, &mut o, &mut r).unwrap();
                assert_eq!((obs, rewards, price), (o, r, info.price));
            }
        }
    }

    #[test]
    fn given_rows_replace_the_opponents_and_errors_change_nothing() {
        let mut e = env(1);
        let mut ops = Opponents::new(vec![Strategy::Random(Random); 3], Some(1), 1).unwrap();
        let before = ops.rng_states();
        let mut sc = FrontScratch::default();
        let given = [0.0, 0.0, 0.0, 0.0, 0.5, f32::NAN];
        let mask = [false, false, true];
        let e1 = e
            .step_single(
                0,
                &[0.0, 0.0],
                Some(GivenRows {
                    actions: &given,
                    mask: &mask,
                }),
                &mut ops,
                50.0,
                &mut sc,
            )
            .unwrap_err();
        assert_eq!(
            e1.to_string(),
            "actions for gen_2: a1 (price action) must be finite, got NaN"
        );
        let e2 = e
            .step_single(1, &[f32::INFINITY, 0.0], None, &mut ops, 50.0, &mut sc)
            .unwrap_err();
        assert!(e2.to_string().starts_with("actions for gen_1: a0"), "{e2}");
        assert_eq!(ops.rng_states(), before);
        assert_eq!(e.t(), Some(0));
        let given = [0.0, 0.0, 0.0, 0.0, 1.0, 3.0];
        e.step_single(
            0,
            &[0.0, 0.0],
            Some(GivenRows {
                actions: &given,
                mask: &mask,
            }),
            &mut ops,
            50.0,
            &mut sc,
        )
        .unwrap();
        // Agent 2 withheld everything: it cleared nothing.
        assert_eq!(e.last_cleared()[2], 0.0);
    }

    #[test]
    fn the_dict_step_needs_every_agent_in_order() {
        let mut e = env(1);
        let mut sc = FrontScratch::default();
        let a: &[f32] = &[0.0, 0.0];
        let err = e.step_rows(&[Some(a), None, Some(a)], &mut sc).unwrap_err();
        assert_eq!(err.to_string(), "actions: no action for agent gen_1");
        assert_eq!(e.t(), Some(0));
        let got = e.step_rows(&[Some(a); 3], &mut sc).unwrap();
        assert_eq!(got.rewards.len(), 3);
        assert!(check_agent_names(["gen_0", "gen_1"].into_iter(), 2, 0).is_ok());
        assert!(check_agent_names(["gen_0", "sto_0"].into_iter(), 1, 1).is_ok());
        for bad in [["gen_1", "gen_0"], ["gen_0", "gen_01"], ["gen_0", "gen_0"]] {
            assert!(check_agent_names(bad.into_iter(), 2, 0).is_err(), "{bad:?}");
        }
        assert!(check_agent_names(["gen_0", "gen_1"].into_iter(), 1, 1).is_err());
    }
}
