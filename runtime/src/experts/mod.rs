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
//!   access knowing the rest of the sequence (the trace simulator);
//! - on the device, [`ExpertOffload`] (given when loading a bundle) keeps at
//!   most `resident` experts of each MoE layer in device slots: a run reads
//!   each layer's routing back (a pre-gating router's for every layer at once,
//!   before the first MoE layer), makes the layer's experts resident through
//!   this same cache (uploading misses and prefetches into slots), rewrites the
//!   layer's block table from experts to slots and runs its expert kernels
//!   unchanged; [`ExpertStats`] counts what that did.
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

mod block_table;
mod cache;
mod counters;
mod future;
mod key;
mod layout;
mod offload;
mod policy;
mod replay;
mod resident;
#[cfg(test)]
mod tests;

pub use cache::{Access, CacheError, ExpertCache, Load, Outcome};
pub use counters::Counters;
pub use future::{Future, KnownFuture};
pub use key::ExpertKey;
pub use offload::ExpertOffload;
pub use policy::{Belady, Lookahead, Lru, Policy, PolicyKind, Resident, UnknownPolicy};
pub use replay::Replay;
pub use resident::ExpertStats;

pub(crate) use block_table::BlockTable;
pub(crate) use layout::{HostExperts, OffloadLayout};
pub(crate) use resident::ResidentExperts;
