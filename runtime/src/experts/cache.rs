//! [`ExpertCache`]: which experts are resident in which device slot, per layer.

use thiserror::Error;

use super::{Counters, ExpertKey, KnownFuture, Policy, Resident};

/// Why the cache refused.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum CacheError {
    /// A cache of capacity 0 would hold nothing.
    #[error("the cache capacity must be at least 1 expert per layer")]
    ZeroCapacity,
    /// A miss in a layer whose residents are all pinned: more experts are
    /// needed at once than the layer has slots.
    #[error("{key} cannot be loaded: every slot of its layer holds a pinned expert")]
    AllPinned {
        /// The access.
        key: ExpertKey,
    },
    /// An access to a layer the cache was not made for.
    #[error("{key} is outside the cache's {layers} layers")]
    NoSuchLayer {
        /// The access.
        key: ExpertKey,
        /// How many layers the cache has.
        layers: usize,
    },
}

/// An expert loaded into a slot (the device uploads its weights there).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Load {
    /// The expert loaded.
    pub key: ExpertKey,
    /// The slot of its layer it goes into, below the capacity.
    pub slot: usize,
    /// The expert that held the slot, if it was not free.
    pub evicted: Option<ExpertKey>,
}

/// What an access found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The expert was resident (loaded on demand earlier or prefetched).
    Hit {
        /// Its slot.
        slot: usize,
    },
    /// The expert was not resident and was loaded on demand.
    Miss(Load),
}

impl Outcome {
    /// The slot the accessed expert is in now.
    pub fn slot(&self) -> usize {
        match self {
            Outcome::Hit { slot } | Outcome::Miss(Load { slot, .. }) => *slot,
        }
    }
}

/// What one access did: its outcome, then the prefetches it issued, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// The demand access.
    pub outcome: Outcome,
    /// Experts brought in ahead of their use (only a prefetching policy).
    pub prefetches: Vec<Load>,
}

/// A per-layer cache of experts: every layer has `capacity` slots, each
/// holding one expert of that layer; a [`Policy`] picks what to evict (and
/// what to prefetch) from the [`KnownFuture`] the caller gives each access.
///
/// The cache only keeps the books: a device layer turns each [`Access`] into
/// uploads into slots, and a simulator just counts.
#[derive(Debug)]
pub struct ExpertCache {
    policy: Box<dyn Policy>,
    capacity: usize,
    slots: Vec<Vec<Option<Resident>>>,
    counters: Vec<Counters>,
    clock: u64,
}

impl ExpertCache {
    /// An empty cache of `layers` layers holding at most `capacity` experts
    /// each, run by `policy`.
    pub fn new(
        layers: usize,
        capacity: usize,
        policy: Box<dyn Policy>,
    ) -> Result<Self, CacheError> {
        if capacity == 0 {
            return Err(CacheError::ZeroCapacity);
        }
        Ok(ExpertCache {
            policy,
            capacity,
            slots: vec![vec![None; capacity]; layers],
            counters: vec![Counters::default(); layers],
            clock: 0,
        })
    }

    /// The policy.
    pub fn policy(&self) -> &dyn Policy {
        self.policy.as_ref()
    }

    /// Experts per layer.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The number of layers.
    pub fn layers(&self) -> usize {
        self.slots.len()
    }

    /// The counters of `layer` (`None` outside the cache).
    pub fn layer_counters(&self, layer: usize) -> Option<&Counters> {
        self.counters.get(layer)
    }

    /// The counters summed over the layers.
    pub fn counters(&self) -> Counters {
        let mut total = Counters::default();
        for c in &self.counters {
            total += c;
        }
        total
    }

    /// The slot holding `key`, if it is resident.
    pub fn slot_of(&self, key: ExpertKey) -> Option<usize> {
        let layer = self.slots.get(key.layer as usize)?;
        layer.iter().position(|r| r.is_some_and(|r| r.key == key))
    }

    /// Accesses `key` (the layer about to run needs it), knowing `future`:
    /// the accesses after this one. On a miss the expert goes into a free slot
    /// of its layer, or in place of the resident the policy evicts; then a
    /// prefetching policy brings in upcoming experts (see [`Lookahead`]).
    ///
    /// [`Lookahead`]: super::Lookahead
    pub fn access(
        &mut self,
        key: ExpertKey,
        future: &dyn KnownFuture,
    ) -> Result<Access, CacheError> {
        self.access_pinned(key, future, &[])
    }

    /// [`ExpertCache::access`] that never evicts (nor displaces by prefetch)
    /// an expert in `pinned`: a device layer running several experts of a
    /// layer at once pins them all while it makes them resident.
    pub fn access_pinned(
        &mut self,
        key: ExpertKey,
        future: &dyn KnownFuture,
        pinned: &[ExpertKey],
    ) -> Result<Access, CacheError> {
        let layer = self.layer_index(key)?;
        self.clock += 1;
        let clock = self.clock;
        self.counters[layer].accesses += 1;
        let outcome = match self.slot_of(key) {
            Some(slot) => {
                self.counters[layer].hits += 1;
                if let Some(resident) = self.slots[layer][slot].as_mut() {
                    resident.last_use = clock;
                }
                Outcome::Hit { slot }
            }
            None => {
                self.counters[layer].misses += 1;
                let slot = self
                    .free_slot(layer)
                    .or_else(|| self.victim(layer, pinned, future).map(|(slot, _)| slot))
                    .ok_or(CacheError::AllPinned { key })?;
                Outcome::Miss(self.load(key, slot))
            }
        };
        let mut kept = pinned.to_vec();
        kept.push(key);
        let prefetches = self.prefetch(&kept, future);
        Ok(Access {
            outcome,
            prefetches,
        })
    }

    /// The layer of `key` as an index, checked.
    fn layer_index(&self, key: ExpertKey) -> Result<usize, CacheError> {
        let layer = key.layer as usize;
        if layer < self.slots.len() {
            Ok(layer)
        } else {
            Err(CacheError::NoSuchLayer {
                key,
                layers: self.slots.len(),
            })
        }
    }

    /// The first free slot of `layer`.
    fn free_slot(&self, layer: usize) -> Option<usize> {
        self.slots[layer].iter().position(Option::is_none)
    }

    /// The slot and resident of `layer` the policy evicts, `pinned` aside;
    /// `None` when no other resident is there.
    fn victim(
        &self,
        layer: usize,
        pinned: &[ExpertKey],
        future: &dyn KnownFuture,
    ) -> Option<(usize, Resident)> {
        let (slots, candidates): (Vec<usize>, Vec<Resident>) = self.slots[layer]
            .iter()
            .enumerate()
            .filter_map(|(slot, r)| r.map(|r| (slot, r)))
            .filter(|(_, r)| !pinned.contains(&r.key))
            .unzip();
        if candidates.is_empty() {
            return None;
        }
        let i = self.policy.victim(&candidates, future);
        Some((slots[i], candidates[i]))
    }

    /// Puts `key` into `slot` of its layer, counting the eviction.
    fn load(&mut self, key: ExpertKey, slot: usize) -> Load {
        let layer = key.layer as usize;
        let resident = Resident {
            key,
            last_use: self.clock,
        };
        let evicted = self.slots[layer][slot].replace(resident).map(|r| r.key);
        if evicted.is_some() {
            self.counters[layer].evictions += 1;
        }
        Load { key, slot, evicted }
    }

    /// Prefetches from the policy's window of `future`, never displacing
    /// `pinned` (the expert just accessed, and those the caller pinned).
    fn prefetch(&mut self, pinned: &[ExpertKey], future: &dyn KnownFuture) -> Vec<Load> {
        let mut loads = Vec::new();
        for position in 0..self.policy.prefetch_window() {
            let Some(key) = future.upcoming(position) else {
                break;
            };
            let Ok(layer) = self.layer_index(key) else {
                continue;
            };
            if self.slot_of(key).is_some() {
                continue;
            }
            let slot = match self.free_slot(layer) {
                Some(slot) => Some(slot),
                None => self.displaceable(layer, pinned, position, future),
            };
            if let Some(slot) = slot {
                self.counters[layer].prefetches += 1;
                loads.push(self.load(key, slot));
            }
        }
        loads
    }

    /// The slot of `layer` whose resident (other than `pinned`) the policy
    /// would evict, if that resident's next use is farther than `position`.
    fn displaceable(
        &self,
        layer: usize,
        pinned: &[ExpertKey],
        position: usize,
        future: &dyn KnownFuture,
    ) -> Option<usize> {
        let (slot, victim) = self.victim(layer, pinned, future)?;
        let farther = future
            .next_use(victim.key)
            .is_none_or(|next| next > position);
        farther.then_some(slot)
    }
}
