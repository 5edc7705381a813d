//! [`Counters`]: what a cache did, per layer and in total.

use std::ops::AddAssign;

/// What a cache (or one layer of it) did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Demand accesses.
    pub accesses: u64,
    /// Accesses that found their expert resident (prefetched ones included).
    pub hits: u64,
    /// Accesses that had to load their expert.
    pub misses: u64,
    /// Experts loaded ahead of their access by prefetch.
    pub prefetches: u64,
    /// Residents displaced, by demand loads and prefetches alike.
    pub evictions: u64,
}

impl Counters {
    /// Hits per access; 0 with no accesses.
    pub fn hit_ratio(&self) -> f64 {
        if self.accesses == 0 {
            0.0
        } else {
            self.hits as f64 / self.accesses as f64
        }
    }
}

impl AddAssign<&Counters> for Counters {
    fn add_assign(&mut self, other: &Counters) {
        self.accesses += other.accesses;
        self.hits += other.hits;
        self.misses += other.misses;
        self.prefetches += other.prefetches;
        self.evictions += other.evictions;
    }
}
