//! One engine driven, the others following: a shard set served from rank
//! 0's requests ([`super::EngineOptions::replicate`]). Rank 0's engine
//! schedules as it would alone; before each run of its session (a `step`,
//! a `route`) it broadcasts a [`Control`] naming the run and its inputs, and
//! the other ranks' engines ([`super::Engine::follow`]) run the same entry
//! on the same inputs, so every rank meets the model's reductions in the
//! same order. Only rank 0 samples: the logits are whole on every rank after
//! the last reduction, and the tokens fed back reach the followers inside
//! the next step's inputs.

use thiserror::Error;

use super::plan::StepPlan;
use super::routing::RouteToken;

/// Why a follower could not read a control message from rank 0.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ControlError {
    /// The message is empty.
    #[error("an empty control message")]
    Empty,
    /// Its first byte names no kind of message.
    #[error("unknown control message kind {0}")]
    UnknownKind(u8),
    /// It ends before the fields its kind and counts announce.
    #[error("a control message of {have} bytes ends before its {need} bytes")]
    Truncated {
        /// The bytes its fields need.
        need: usize,
        /// The bytes it has.
        have: usize,
    },
    /// Bytes follow its last field.
    #[error("{0} bytes follow a control message")]
    Trailing(usize),
    /// A step's token columns (ids, slots, positions) differ in length.
    #[error("a step of {ids} ids, {slots} slots and {positions} positions")]
    Uneven {
        /// Token ids.
        ids: usize,
        /// Their slots.
        slots: usize,
        /// Their positions.
        positions: usize,
    },
}

/// What rank 0 tells the followers, once per run of its session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Control {
    /// Run `step` on these inputs (the plan's `ids`, `slots`, `positions`
    /// and `rows`; its other fields are rank 0's alone and stay empty).
    Step(StepPlan),
    /// Run `route` over these tokens.
    Route(Vec<RouteToken>),
    /// Nothing to run: rank 0 is idle and alive.
    KeepAlive,
    /// Rank 0 stopped serving: stop following.
    Stop,
}

/// The kinds' first bytes.
const STEP: u8 = 1;
const ROUTE: u8 = 2;
const KEEP_ALIVE: u8 = 3;
const STOP: u8 = 4;

impl Control {
    /// The step that runs `plan`'s inputs.
    pub(crate) fn step(plan: &StepPlan) -> Control {
        Control::Step(StepPlan {
            ids: plan.ids.clone(),
            slots: plan.slots.clone(),
            positions: plan.positions.clone(),
            rows: plan.rows.clone(),
            ..StepPlan::default()
        })
    }

    /// The message's bytes: its kind, then for a step four columns and for
    /// a route one column of tokens, each a `u32` count and its `i32`s
    /// (little-endian).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let column = |out: &mut Vec<u8>, values: &mut dyn ExactSizeIterator<Item = i32>| {
            out.extend((values.len() as u32).to_le_bytes());
            values.for_each(|v| out.extend(v.to_le_bytes()));
        };
        match self {
            Control::Step(plan) => {
                out.push(STEP);
                for values in [&plan.ids, &plan.slots, &plan.positions, &plan.rows] {
                    column(&mut out, &mut values.iter().copied());
                }
            }
            Control::Route(tokens) => {
                out.push(ROUTE);
                let flat = tokens
                    .iter()
                    .flat_map(|t| [t.slot as i32, t.position as i32, t.id]);
                column(&mut out, &mut flat.collect::<Vec<_>>().into_iter());
            }
            Control::KeepAlive => out.push(KEEP_ALIVE),
            Control::Stop => out.push(STOP),
        }
        out
    }

    /// Reads a message [`Control::encode`] wrote; refuses anything else
    /// with a [`ControlError`], never panicking.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Control, ControlError> {
        let &kind = bytes.first().ok_or(ControlError::Empty)?;
        let mut reader = Reader { bytes, at: 1 };
        let control = match kind {
            STEP => {
                let ids = reader.column()?;
                let slots = reader.column()?;
                let positions = reader.column()?;
                let rows = reader.column()?;
                if ids.len() != slots.len() || ids.len() != positions.len() {
                    return Err(ControlError::Uneven {
                        ids: ids.len(),
                        slots: slots.len(),
                        positions: positions.len(),
                    });
                }
                Control::Step(StepPlan {
                    ids,
                    slots,
                    positions,
                    rows,
                    ..StepPlan::default()
                })
            }
            ROUTE => {
                let flat = reader.column()?;
                let tokens = flat.chunks_exact(3);
                if !tokens.remainder().is_empty() {
                    return Err(ControlError::Truncated {
                        need: 1 + 4 + 4 * flat.len().next_multiple_of(3),
                        have: bytes.len(),
                    });
                }
                Control::Route(
                    tokens
                        .map(|t| RouteToken {
                            slot: t[0] as u32,
                            position: t[1] as u32 as usize,
                            id: t[2],
                        })
                        .collect(),
                )
            }
            KEEP_ALIVE => Control::KeepAlive,
            STOP => Control::Stop,
            other => return Err(ControlError::UnknownKind(other)),
        };
        match bytes.len() - reader.at {
            0 => Ok(control),
            n => Err(ControlError::Trailing(n)),
        }
    }
}

/// Reads columns from a message.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    /// The next `n` bytes.
    fn take(&mut self, n: usize) -> Result<&[u8], ControlError> {
        let end = self.at.saturating_add(n);
        let taken = self
            .bytes
            .get(self.at..end)
            .ok_or(ControlError::Truncated {
                need: end,
                have: self.bytes.len(),
            })?;
        self.at = end;
        Ok(taken)
    }

    /// A `u32` count and that many `i32`s (the bytes checked before any
    /// allocation, so a corrupt count cannot ask for more memory than the
    /// message holds).
    fn column(&mut self) -> Result<Vec<i32>, ControlError> {
        let count = self.take(4)?;
        let count = u32::from_le_bytes([count[0], count[1], count[2], count[3]]) as usize;
        let values = self.take(count.saturating_mul(4))?;
        Ok(values
            .chunks_exact(4)
            .map(|w| i32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step() -> Control {
        Control::step(&StepPlan {
            ids: vec![5, 6, 7],
            slots: vec![0, 1, 1],
            positions: vec![3, 0, 1],
            rows: vec![0, 2],
            sampled: vec![1, 0],
            fed: vec![(1, 1), (0, 2)],
        })
    }

    fn route() -> Control {
        Control::Route(vec![
            RouteToken {
                slot: 2,
                position: 9,
                id: -1,
            },
            RouteToken {
                slot: 0,
                position: 0,
                id: 127,
            },
        ])
    }

    #[test]
    fn every_kind_round_trips() {
        for control in [
            step(),
            route(),
            Control::Route(vec![]),
            Control::KeepAlive,
            Control::Stop,
        ] {
            assert_eq!(Control::decode(&control.encode()), Ok(control.clone()));
        }
        // A step carries the run's inputs only.
        let Control::Step(plan) = step() else {
            unreachable!()
        };
        assert!(plan.sampled.is_empty() && plan.fed.is_empty());
    }

    #[test]
    fn malformed_messages_are_refused_by_name() {
        assert_eq!(Control::decode(&[]), Err(ControlError::Empty));
        assert_eq!(Control::decode(&[9]), Err(ControlError::UnknownKind(9)));
        let bytes = step().encode();
        assert!(matches!(
            Control::decode(&bytes[..bytes.len() - 1]),
            Err(ControlError::Truncated { .. })
        ));
        let mut long = Control::Stop.encode();
        long.extend([0, 0]);
        assert_eq!(Control::decode(&long), Err(ControlError::Trailing(2)));
        // A count far past the message: refused before allocating.
        let mut huge = vec![STEP];
        huge.extend(u32::MAX.to_le_bytes());
        assert!(matches!(
            Control::decode(&huge),
            Err(ControlError::Truncated { have: 5, .. })
        ));
        // Columns of different lengths.
        let uneven = Control::Step(StepPlan {
            ids: vec![1, 2],
            slots: vec![0],
            positions: vec![0, 1],
            ..StepPlan::default()
        });
        assert_eq!(
            Control::decode(&uneven.encode()),
            Err(ControlError::Uneven {
                ids: 2,
                slots: 1,
                positions: 2
            })
        );
        // A route column not made of whole tokens.
        let mut partial = vec![ROUTE];
        partial.extend(2u32.to_le_bytes());
        partial.extend([0; 8]);
        assert!(matches!(
            Control::decode(&partial),
            Err(ControlError::Truncated { .. })
        ));
    }

    #[test]
    fn no_prefix_or_corruption_panics() {
        for control in [step(), route()] {
            let bytes = control.encode();
            for end in 0..bytes.len() {
                assert!(Control::decode(&bytes[..end]).is_err(), "prefix {end}");
            }
            for at in 0..bytes.len() {
                for flip in [1u8, 0x80, 0xff] {
                    let mut bad = bytes.clone();
                    bad[at] ^= flip;
                    let _ = Control::decode(&bad);
                }
            }
        }
    }
}
