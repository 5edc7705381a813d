//! The device expert cache of a decoupled MoE model (Read-ME): experts live in
//! host memory, and each layer keeps at most `capacity` of them resident in
//! device slots.
//!
//! - [`ExpertKey`]: one cache item, an expert of one layer (capacity is
//!   counted per layer);
//! - [`KnownFuture`] and [`Future`]: what the caller knows of the accesses to
//!   come — for a pre-gating router every layer's choice for the whole step,
//!   for an in-layer router only the current layer's — given to each access;
//! - [`Policy`]: how to evict and whether to prefetch: [`Lru`], [`Belady`]
//!   (farthest next use in the known future, ties by least recent use) and
//!   [`Lookahead`] (Belady plus prefetch), by name through [`PolicyKind`];
//! - [`ExpertCache`]: the per-layer slot table; each [`ExpertCache::access`]
//!   returns an [`Access`] (hit, or miss with the [`Load`] into a slot and the
//!   expert evicted, plus the prefetch loads) for a device layer to turn into
//!   uploads, and keeps [`Counters`] per layer;
//! - [`Replay`]: a recorded access sequence replayed through a cache, each
//!   access knowing the rest of the sequence (the trace simulator).
//!
//! ```
//! use seam_runtime::experts::{ExpertCache, ExpertKey, Future, Outcome, PolicyKind};
//!
//! let mut cache = ExpertCache::new(1, 1, PolicyKind::Belady.build(0))?;
//! let (a, b) = (ExpertKey::new(0, 3), ExpertKey::new(0, 5));
//! let access = cache.access(a, &Future::new(&[b]))?;
//! assert!(matches!(access.outcome, Outcome::Miss(load) if load.slot == 0));
//! let access = cache.access(b, &Future::default())?;
//! assert!(matches!(access.outcome, Outcome::Miss(load) if load.evicted == Some(a)));
//! assert_eq!(cache.counters().misses, 2);
//! # Ok::<(), seam_runtime::experts::CacheError>(())
//! ```

mod cache;
mod counters;
mod future;
mod key;
mod policy;
mod replay;
#[cfg(test)]
mod tests;

pub use cache::{Access, CacheError, ExpertCache, Load, Outcome};
pub use counters::Counters;
pub use future::{Future, KnownFuture};
pub use key::ExpertKey;
pub use policy::{Belady, Lookahead, Lru, Policy, PolicyKind, Resident, UnknownPolicy};
pub use replay::Replay;
