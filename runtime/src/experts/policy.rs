//! Eviction policies: one [`Policy`] interface, three policies ([`Lru`],
//! [`Belady`], [`Lookahead`]), chosen by name through [`PolicyKind`].

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use super::{ExpertKey, KnownFuture};

/// An expert resident in a layer's slot, as a [`Policy`] sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resident {
    /// The expert.
    pub key: ExpertKey,
    /// The cache's clock at its last use (or at its load, if not used since).
    pub last_use: u64,
}

/// How a cache picks the expert to evict, and whether it prefetches.
pub trait Policy: fmt::Debug + Send + Sync {
    /// The policy's name (`lru`, `belady`, `lookahead`).
    fn name(&self) -> &'static str;
    /// The index into `residents` (never empty: every one of them is a
    /// candidate) of the expert to evict, knowing `future`.
    fn victim(&self, residents: &[Resident], future: &dyn KnownFuture) -> usize;
    /// How many upcoming accesses of the known future the cache considers for
    /// prefetching after each access; 0 (the default) prefetches nothing.
    fn prefetch_window(&self) -> usize {
        0
    }
}

/// Least recently used: evicts the resident whose last use is oldest.
#[derive(Clone, Copy, Debug, Default)]
pub struct Lru;

impl Policy for Lru {
    fn name(&self) -> &'static str {
        "lru"
    }

    fn victim(&self, residents: &[Resident], _future: &dyn KnownFuture) -> usize {
        least_recent(residents.iter().enumerate())
    }
}

/// Belady's lookahead eviction: evicts the resident whose next use in the
/// known future is farthest; one never used again counts as farthest, and
/// ties (several never used again) go to the least recently used.
#[derive(Clone, Copy, Debug, Default)]
pub struct Belady;

impl Policy for Belady {
    fn name(&self) -> &'static str {
        "belady"
    }

    fn victim(&self, residents: &[Resident], future: &dyn KnownFuture) -> usize {
        farthest_next_use(residents, future)
    }
}

/// [`Belady`] eviction plus prefetch: after each access the cache walks the
/// next `window` accesses of the known future, in order, and brings each
/// expert that is not resident into its layer — into a free slot, or in place
/// of the resident that [`Belady`] would evict when that resident's next use
/// is strictly farther than the prefetched expert's (never used again counts
/// as farthest). The expert of the access just made is never displaced.
#[derive(Clone, Copy, Debug)]
pub struct Lookahead {
    window: usize,
}

impl Lookahead {
    /// The window used when none is given: 16 upcoming accesses.
    pub const DEFAULT_WINDOW: usize = 16;

    /// Prefetches from the next `window` accesses of the known future.
    pub fn new(window: usize) -> Self {
        Lookahead { window }
    }
}

impl Default for Lookahead {
    fn default() -> Self {
        Lookahead::new(Lookahead::DEFAULT_WINDOW)
    }
}

impl Policy for Lookahead {
    fn name(&self) -> &'static str {
        "lookahead"
    }

    fn victim(&self, residents: &[Resident], future: &dyn KnownFuture) -> usize {
        farthest_next_use(residents, future)
    }

    fn prefetch_window(&self) -> usize {
        self.window
    }
}

/// The index of the least recently used among `candidates` (index, resident).
fn least_recent<'a>(candidates: impl Iterator<Item = (usize, &'a Resident)>) -> usize {
    candidates
        .min_by_key(|(_, r)| r.last_use)
        .map_or(0, |(i, _)| i)
}

/// Belady's choice: the farthest next use, ties by least recent use.
fn farthest_next_use(residents: &[Resident], future: &dyn KnownFuture) -> usize {
    let next: Vec<Option<usize>> = residents.iter().map(|r| future.next_use(r.key)).collect();
    let far = next.iter().map(|n| n.unwrap_or(usize::MAX)).max();
    let tied = residents
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(next[*i].unwrap_or(usize::MAX)) == far);
    least_recent(tied)
}

/// A policy by name: `lru`, `belady` or `lookahead`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyKind {
    /// [`Lru`].
    Lru,
    /// [`Belady`].
    Belady,
    /// [`Lookahead`].
    Lookahead,
}

impl PolicyKind {
    /// Every policy, in the order `lru`, `belady`, `lookahead`.
    pub const ALL: [PolicyKind; 3] = [PolicyKind::Lru, PolicyKind::Belady, PolicyKind::Lookahead];

    /// The policy, prefetching (for `lookahead`) from the next
    /// `prefetch_window` accesses; the window means nothing to the others.
    pub fn build(self, prefetch_window: usize) -> Box<dyn Policy> {
        match self {
            PolicyKind::Lru => Box::new(Lru),
            PolicyKind::Belady => Box::new(Belady),
            PolicyKind::Lookahead => Box::new(Lookahead::new(prefetch_window)),
        }
    }

    /// The name, as [`FromStr`] reads it.
    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::Lru => "lru",
            PolicyKind::Belady => "belady",
            PolicyKind::Lookahead => "lookahead",
        }
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A policy name that is none of `lru`, `belady`, `lookahead`.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("unknown cache policy `{0}` (expected one of: lru, belady, lookahead)")]
pub struct UnknownPolicy(pub String);

impl FromStr for PolicyKind {
    type Err = UnknownPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PolicyKind::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownPolicy(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experts::Future;

    fn resident(expert: u32, last_use: u64) -> Resident {
        Resident {
            key: ExpertKey::new(0, expert),
            last_use,
        }
    }

    #[test]
    fn names_round_trip() {
        for p in PolicyKind::ALL {
            assert_eq!(p.name().parse::<PolicyKind>(), Ok(p));
            assert_eq!(p.build(4).name(), p.name());
        }
        let err = "LRU".parse::<PolicyKind>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown cache policy `LRU` (expected one of: lru, belady, lookahead)"
        );
    }

    #[test]
    fn belady_breaks_ties_between_never_used_again_by_lru() {
        let residents = [resident(1, 5), resident(2, 3), resident(3, 4)];
        let soon = [ExpertKey::new(0, 2)];
        assert_eq!(Belady.victim(&residents, &Future::new(&soon)), 2);
        assert_eq!(Belady.victim(&residents, &Future::default()), 1);
        assert_eq!(Lru.victim(&residents, &Future::new(&soon)), 1);
    }

    #[test]
    fn only_lookahead_prefetches() {
        assert_eq!(Lru.prefetch_window(), 0);
        assert_eq!(Belady.prefetch_window(), 0);
        assert_eq!(Lookahead::default().prefetch_window(), 16);
    }
}
