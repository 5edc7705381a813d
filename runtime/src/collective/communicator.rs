//! [`Communicator`]: what a session needs of the ranks it runs with.

use std::time::Duration;

use thiserror::Error;

/// Why a reduction failed.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum CollectiveError {
    /// The ranks gave partials of different lengths: they do not run the same
    /// shard set at the same point.
    #[error("rank {rank} gave {got} elements where rank 0 gave {want}: the ranks do not run one shard set in step")]
    Mismatch {
        /// The rank that disagreed.
        rank: usize,
        /// Its element count.
        got: usize,
        /// Rank 0's.
        want: usize,
    },
    /// A rank did not take part within the timeout (it failed, or runs
    /// something else).
    #[error("rank {rank} did not join the reduction within {timeout:?}")]
    Timeout {
        /// This rank.
        rank: usize,
        /// How long it waited.
        timeout: Duration,
    },
    /// Another rank of the group is gone.
    #[error("the group is broken: {0}")]
    Broken(String),
    /// Rank 0 broadcast more than [`super::MAX_BROADCAST`] bytes: refused on
    /// every rank, none of which then waits for the payload.
    #[error("a broadcast of {len} bytes exceeds the limit of {max} bytes")]
    Oversized {
        /// The length rank 0 announced.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A broadcast's header or payload did not hold what rank 0 sends: the
    /// ranks are out of step (one broadcasts while another reduces).
    #[error("a broadcast arrived malformed ({0}): the ranks are out of step")]
    Malformed(String),
}

/// A sum under way; [`PendingSum::wait`] blocks until every rank's partial
/// is in and returns the sum.
pub trait PendingSum: Send {
    /// The element-wise sum of every rank's partial.
    fn wait(self: Box<Self>) -> Result<Vec<f32>, CollectiveError>;
}

/// This process's place among the ranks of a shard set, and the sum across
/// them. Every rank must start the same reductions in the same order.
pub trait Communicator: Send + Sync {
    /// This rank, `0..size`.
    fn rank(&self) -> usize;
    /// How many ranks there are.
    fn size(&self) -> usize;
    /// Starts summing `partial` across the ranks without waiting.
    fn start_sum(&self, partial: Vec<f32>) -> Result<Box<dyn PendingSum>, CollectiveError>;

    /// Sends rank 0's `message` to every rank and returns it on each (the
    /// `message` of other ranks is ignored). Every rank must call it at the
    /// same point of its sequence of collectives. Built from two sums (a
    /// header with the length, then the bytes, two to an element, other
    /// ranks contributing zeros), so it waits at most the timeout of a
    /// reduction, twice; a message over [`super::MAX_BROADCAST`] bytes is
    /// refused on every rank ([`CollectiveError::Oversized`]).
    fn broadcast(&self, message: &[u8]) -> Result<Vec<u8>, CollectiveError> {
        super::broadcast::broadcast(self, message)
    }
}

/// What a session's reductions cost, summed over its runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CollectiveStats {
    /// Reductions run.
    pub reductions: u64,
    /// f32 bytes this rank contributed.
    pub bytes: u64,
    /// Time reading partials back (each waits for the device).
    pub read_back: Duration,
    /// Time blocked waiting for sums: the part of the reductions no
    /// computation hid.
    pub blocked: Duration,
    /// Time between each sum's start and its wait, while the dispatches that
    /// do not read it were submitted (zero for a blocking `all_reduce`).
    pub overlapped: Duration,
}

impl CollectiveStats {
    /// Adds `other`'s counts and times.
    pub fn add(&mut self, other: &CollectiveStats) {
        self.reductions += other.reductions;
        self.bytes += other.bytes;
        self.read_back += other.read_back;
        self.blocked += other.blocked;
        self.overlapped += other.overlapped;
    }
}
