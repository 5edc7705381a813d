//! Expansions of high-level ops into dense IR, which define their meaning.
//!
//! - [`moe`]: `moe` as a per-expert sum of dense gated FFNs.

pub mod moe;

pub use moe::{expand_all_moe, expand_moe, ExpandError};
