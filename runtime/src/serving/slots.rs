//! The KV pool's slots: one per running sequence, handed out lowest first
//! and returned when the sequence ends.

use std::collections::BTreeSet;

/// The free slots of a pool of `capacity`.
#[derive(Clone, Debug)]
pub(crate) struct SlotPool {
    free: BTreeSet<u32>,
}

impl SlotPool {
    /// A pool with every slot `0..capacity` free.
    pub(crate) fn new(capacity: u32) -> SlotPool {
        SlotPool {
            free: (0..capacity).collect(),
        }
    }

    /// Takes the lowest free slot.
    pub(crate) fn take(&mut self) -> Option<u32> {
        self.free.pop_first()
    }

    /// Returns `slot` to the pool.
    pub(crate) fn give_back(&mut self, slot: u32) {
        let fresh = self.free.insert(slot);
        debug_assert!(fresh, "slot {slot} returned twice");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_taken_lowest_first_and_reused() {
        let mut pool = SlotPool::new(3);
        assert_eq!((pool.take(), pool.take()), (Some(0), Some(1)));
        pool.give_back(0);
        assert_eq!(
            (pool.take(), pool.take(), pool.take()),
            (Some(0), Some(2), None)
        );
    }
}
