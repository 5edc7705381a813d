//! # seam-compiler
//!
//! Seam's compiler as a library (the `seam` tool is the `seam-cli` crate). The
//! pipeline is parse → verify → optimize → lower → plan → bundle:
//!
//! - [`load`]: reading a model (text or checkpoint) and verifying it;
//! - [`optimize`]: the e-graph optimizer (rule groups, cost model, extraction);
//! - [`fold`]: param-only values folded into packed weights;
//! - [`lower`]: every op to kernel dispatches for a [`lower::Target`];
//! - [`plan`]: lifetime-based buffer reuse;
//! - [`shard`]: tensor-parallel sharding into a shard set of rank weights;
//! - [`emit`]: naga validation and the bundle;
//! - [`external`]: weights referenced in checkpoint files instead of copied;
//! - [`compile`]: the whole pipeline in one call.
//!
//! It links no GPU stack: bundles are written with `seam-bundle`.

pub mod compile;
pub mod emit;
pub mod external;
pub mod fold;
pub mod formats;
pub mod load;
pub mod lower;
pub mod optimize;
pub mod plan;
pub mod shard;
