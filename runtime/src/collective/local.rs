//! [`LocalGroup`]: the ranks of one process, each a thread with its own
//! session, summing through shared memory.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{CollectiveError, Communicator, PendingSum};

/// One rank of an in-process group.
pub struct LocalGroup {
    rank: usize,
    shared: Arc<Shared>,
    timeout: Duration,
}

/// The reductions of the group, by sequence number (every rank starts the
/// same reductions in the same order).
struct Shared {
    size: usize,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Per reduction started by any rank: the partial sum so far, the ranks
    /// in, and the ranks that took the result.
    rounds: Vec<Round>,
    /// The first reduction not yet taken by every rank (older ones dropped).
    base: usize,
    /// Per rank, how many reductions it started.
    started: Vec<usize>,
    broken: Option<String>,
}

struct Round {
    /// Each rank's partial, once it joined.
    parts: Vec<Option<Vec<f32>>>,
    /// Their sum, in rank order (deterministic), once all joined.
    sum: Option<Vec<f32>>,
    taken: usize,
}

impl LocalGroup {
    /// `size` ranks (hand one to each thread), each waiting at most
    /// `timeout` for the others at a reduction.
    pub fn new(size: usize, timeout: Duration) -> Vec<LocalGroup> {
        let shared = Arc::new(Shared {
            size,
            state: Mutex::new(State {
                started: vec![0; size],
                ..State::default()
            }),
            changed: Condvar::new(),
        });
        (0..size)
            .map(|rank| LocalGroup {
                rank,
                shared: Arc::clone(&shared),
                timeout,
            })
            .collect()
    }
}

impl Drop for LocalGroup {
    fn drop(&mut self) {
        // Ranks still waiting on this one fail instead of hanging.
        let mut s = self
            .shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if s.broken.is_none() && std::thread::panicking() {
            s.broken = Some(format!("rank {} panicked", self.rank));
        }
        drop(s);
        self.shared.changed.notify_all();
    }
}

impl Communicator for LocalGroup {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.shared.size
    }

    fn start_sum(&self, partial: Vec<f32>) -> Result<Box<dyn PendingSum>, CollectiveError> {
        let mut s = self
            .shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(why) = &s.broken {
            return Err(CollectiveError::Broken(why.clone()));
        }
        let seq = s.started[self.rank];
        s.started[self.rank] += 1;
        let index = seq - s.base;
        if index == s.rounds.len() {
            s.rounds.push(Round {
                parts: vec![None; self.shared.size],
                sum: None,
                taken: 0,
            });
        }
        let round = &mut s.rounds[index];
        let want = round.parts.iter().flatten().map(Vec::len).next();
        if let Some(want) = want.filter(|&n| n != partial.len()) {
            s.broken = Some(format!(
                "rank {} disagreed on a reduction's size",
                self.rank
            ));
            drop(s);
            self.shared.changed.notify_all();
            return Err(CollectiveError::Mismatch {
                rank: self.rank,
                got: partial.len(),
                want,
            });
        }
        round.parts[self.rank] = Some(partial);
        if round.parts.iter().all(Option::is_some) {
            // Summed in rank order whatever the arrival order.
            let mut parts = round.parts.iter_mut().map(|p| p.take().unwrap_or_default());
            let mut sum = parts.next().unwrap_or_default();
            for p in parts {
                sum.iter_mut().zip(&p).for_each(|(a, b)| *a += b);
            }
            round.sum = Some(sum);
        }
        drop(s);
        self.shared.changed.notify_all();
        Ok(Box::new(Pending {
            shared: Arc::clone(&self.shared),
            seq,
            rank: self.rank,
            timeout: self.timeout,
        }))
    }
}

/// A reduction this rank joined.
struct Pending {
    shared: Arc<Shared>,
    seq: usize,
    rank: usize,
    timeout: Duration,
}

impl PendingSum for Pending {
    fn wait(self: Box<Self>) -> Result<Vec<f32>, CollectiveError> {
        let deadline = Instant::now() + self.timeout;
        let mut s = self
            .shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(why) = &s.broken {
                return Err(CollectiveError::Broken(why.clone()));
            }
            let index = self.seq - s.base;
            if s.rounds[index].sum.is_some() {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                s.broken = Some(format!("rank {} timed out", self.rank));
                drop(s);
                self.shared.changed.notify_all();
                return Err(CollectiveError::Timeout {
                    rank: self.rank,
                    timeout: self.timeout,
                });
            }
            s = self
                .shared
                .changed
                .wait_timeout(s, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        let index = self.seq - s.base;
        let round = &mut s.rounds[index];
        round.taken += 1;
        let sum = round.sum.clone().unwrap_or_default();
        // Drop the rounds every rank has taken.
        while s
            .rounds
            .first()
            .is_some_and(|r| r.taken == self.shared.size)
        {
            s.rounds.remove(0);
            s.base += 1;
        }
        Ok(sum)
    }
}
