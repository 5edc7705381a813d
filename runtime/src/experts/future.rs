//! The known future: what the caller knows of the accesses to come.
//!
//! A pre-gating router (Read-ME) decides every layer's experts for the whole
//! step before any layer runs, so its caller knows every layer's choice for
//! every token of the current step (and of the steps already routed). An
//! in-layer router knows only the current layer's choices. Either way the
//! caller hands what it knows to [`ExpertCache::access`](super::ExpertCache::access)
//! as a [`KnownFuture`]; an empty future makes `belady` behave as `lru`.

use super::ExpertKey;

/// The upcoming accesses the caller knows of, in the order they will happen,
/// *after* the access being made (position 0 is the next access).
pub trait KnownFuture {
    /// The position of the first upcoming access of `key`, or `None` when
    /// `key` is not used again in the known future.
    fn next_use(&self, key: ExpertKey) -> Option<usize>;
    /// The upcoming access at `position`, or `None` past the known future.
    fn upcoming(&self, position: usize) -> Option<ExpertKey>;
}

/// A [`KnownFuture`] over a slice of upcoming accesses (a step's routing
/// decisions, say); looking a key up scans the slice.
#[derive(Clone, Copy, Debug, Default)]
pub struct Future<'a> {
    accesses: &'a [ExpertKey],
}

impl<'a> Future<'a> {
    /// The future made of `accesses`, in order.
    pub fn new(accesses: &'a [ExpertKey]) -> Self {
        Future { accesses }
    }
}

impl KnownFuture for Future<'_> {
    fn next_use(&self, key: ExpertKey) -> Option<usize> {
        self.accesses.iter().position(|&k| k == key)
    }

    fn upcoming(&self, position: usize) -> Option<ExpertKey> {
        self.accesses.get(position).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_use_is_the_first_position() {
        let a = ExpertKey::new(0, 1);
        let b = ExpertKey::new(1, 1);
        let keys = [a, b, a];
        let f = Future::new(&keys);
        assert_eq!(f.next_use(a), Some(0));
        assert_eq!(f.next_use(b), Some(1));
        assert_eq!(f.next_use(ExpertKey::new(0, 2)), None);
        assert_eq!(f.upcoming(2), Some(a));
        assert_eq!(f.upcoming(3), None);
        assert_eq!(Future::default().next_use(a), None);
    }
}
