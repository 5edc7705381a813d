//! Replaying a recorded sequence of accesses through an [`ExpertCache`], the
//! future of each access being the whole rest of the sequence (what a trace
//! simulator knows).

use std::collections::HashMap;

use super::{CacheError, Counters, ExpertCache, ExpertKey, KnownFuture};

/// A recorded sequence of accesses, indexed so that each access's future (the
/// rest of the sequence) answers [`KnownFuture::next_use`] by binary search.
#[derive(Clone, Debug)]
pub struct Replay {
    accesses: Vec<ExpertKey>,
    positions: HashMap<ExpertKey, Vec<usize>>,
}

impl Replay {
    /// The replay of `accesses`, in order.
    pub fn new(accesses: Vec<ExpertKey>) -> Self {
        let mut positions: HashMap<ExpertKey, Vec<usize>> = HashMap::new();
        for (i, &key) in accesses.iter().enumerate() {
            positions.entry(key).or_default().push(i);
        }
        Replay {
            accesses,
            positions,
        }
    }

    /// The accesses.
    pub fn accesses(&self) -> &[ExpertKey] {
        &self.accesses
    }

    /// The number of layers the accesses touch (the highest layer plus one).
    pub fn layers(&self) -> usize {
        self.accesses
            .iter()
            .map(|k| k.layer as usize + 1)
            .max()
            .unwrap_or(0)
    }

    /// Makes every access through `cache` in order, each knowing the rest of
    /// the sequence as its future, and returns the cache's total counters.
    pub fn run(&self, cache: &mut ExpertCache) -> Result<Counters, CacheError> {
        for (now, &key) in self.accesses.iter().enumerate() {
            cache.access(key, &After { replay: self, now })?;
        }
        Ok(cache.counters())
    }
}

/// The future of access `now` of a [`Replay`]: every access after it.
struct After<'a> {
    replay: &'a Replay,
    now: usize,
}

impl KnownFuture for After<'_> {
    fn next_use(&self, key: ExpertKey) -> Option<usize> {
        let positions = self.replay.positions.get(&key)?;
        let first = positions.partition_point(|&p| p <= self.now);
        positions.get(first).map(|p| p - self.now - 1)
    }

    fn upcoming(&self, position: usize) -> Option<ExpertKey> {
        let at = self.now.checked_add(1)?.checked_add(position)?;
        self.replay.accesses.get(at).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experts::Future;

    #[test]
    fn the_future_of_an_access_is_the_rest_of_the_sequence() {
        let keys: Vec<ExpertKey> = [1, 2, 1, 3, 2]
            .into_iter()
            .map(|e| ExpertKey::new(0, e))
            .collect();
        let replay = Replay::new(keys.clone());
        assert_eq!(replay.layers(), 1);
        for now in 0..keys.len() {
            let after = After {
                replay: &replay,
                now,
            };
            let slice = Future::new(&keys[now + 1..]);
            for e in 0..5 {
                let key = ExpertKey::new(0, e);
                assert_eq!(after.next_use(key), slice.next_use(key), "{now} {e}");
            }
            for p in 0..6 {
                assert_eq!(after.upcoming(p), slice.upcoming(p));
            }
        }
    }
}
