//! A running sequence: its cache slot, how much of it the slot holds, and
//! what it generated.

use super::request::{Finish, Request, RequestId};
use super::routing::{RouteToken, TokenRoute};
use crate::generate::Sampler;

/// A request holding a KV pool slot.
#[derive(Clone, Debug)]
pub(crate) struct Sequence {
    /// The request.
    pub id: RequestId,
    /// Its pool slot.
    pub slot: u32,
    /// Its prompt.
    pub prompt: Vec<i32>,
    /// Positions written to the slot so far.
    pub fed: usize,
    /// The last generated token, fed at the next step (none before the first).
    pub last: Option<i32>,
    /// Tokens generated so far.
    pub generated: usize,
    /// The most tokens to generate.
    pub max_new: usize,
    /// Ids that end it.
    pub stop_ids: Vec<i32>,
    /// Its random stream (one draw per generated token, as when alone).
    pub sampler: Sampler,
    /// Its place in arrival order.
    pub arrival: u64,
    /// Steps in a row that fed other sequences but not this one.
    pub skipped: u32,
    /// The routing of its tokens by position, for an engine that routes
    /// (every token is routed before a step feeds it, so this holds at least
    /// `fed` entries then).
    pub routes: Vec<TokenRoute>,
}

impl Sequence {
    /// `request` admitted into `slot`, its settings already validated.
    pub(crate) fn new(
        id: RequestId,
        slot: u32,
        request: Request,
        sampler: Sampler,
        arrival: u64,
    ) -> Sequence {
        Sequence {
            id,
            slot,
            prompt: request.prompt,
            fed: 0,
            last: None,
            generated: 0,
            max_new: request.max_new_tokens,
            stop_ids: request.stop_ids,
            sampler,
            arrival,
            skipped: 0,
            routes: Vec::new(),
        }
    }

    /// Tokens a step feeds it at most: its decode token, or its next prompt
    /// chunk within `budget`.
    pub(crate) fn next_feed(&self, budget: usize) -> usize {
        match self.prompt_left() {
            0 => usize::from(self.last.is_some()),
            left => left.min(budget),
        }
    }

    /// Its tokens at positions from those routed up to `upto` (not past its
    /// next feed), to route.
    pub(crate) fn unrouted(&self, upto: usize) -> impl Iterator<Item = RouteToken> + '_ {
        (self.routes.len()..upto).filter_map(move |position| {
            let id = match self.prompt.get(position) {
                Some(&id) => id,
                None if position == self.fed => self.last?,
                None => return None,
            };
            Some(RouteToken {
                slot: self.slot,
                position,
                id,
            })
        })
    }

    /// Prompt tokens not yet in the slot.
    pub(crate) fn prompt_left(&self) -> usize {
        self.prompt.len().saturating_sub(self.fed)
    }

    /// Records `token`, generated at this step; returns why the sequence
    /// ends with it, if it does.
    pub(crate) fn push(&mut self, token: i32) -> Option<Finish> {
        self.generated += 1;
        self.last = Some(token);
        if self.stop_ids.contains(&token) {
            Some(Finish::Stop)
        } else if self.generated >= self.max_new {
            Some(Finish::Length)
        } else {
            None
        }
    }
}
