//! Errors of loading and running a bundle.

use thiserror::Error;

use seam_bundle::BundleError;

use crate::error::RuntimeError;

/// Why a bundle could not be loaded or run.
#[derive(Debug, Error)]
pub enum RunError {
    /// The bundle is unusable (verified before any GPU work).
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The device failed (out of memory, device lost, validation).
    #[error(transparent)]
    Device(#[from] RuntimeError),
    /// The bundle has no entry point of this name.
    #[error("the bundle has no entry point `{name}` (it has: {available})")]
    UnknownEntry {
        /// The name asked for.
        name: String,
        /// The names it has.
        available: String,
    },
    /// A run would grow the session's states past their capacity.
    #[error("the sequence is full: {stored} position(s) in the sequence + {adding} new exceed the maximum {max} (the bound of `{dim}`; compile with a larger --max-seq-len, or reset the session)")]
    SequenceFull {
        /// The states' length dim.
        dim: String,
        /// Positions stored before the run.
        stored: u64,
        /// Positions the run would append.
        adding: u64,
        /// The capacity.
        max: u64,
    },
    /// Sampling settings or logits are unusable.
    #[error(transparent)]
    Sampling(#[from] crate::generate::SamplingError),
    /// A size the bundle declares could not be evaluated for this run.
    #[error("cannot evaluate size: {0}")]
    SizeExpr(#[from] seam_core::SizeExprError),
    /// The inputs do not fit the entry point.
    #[error("bad input: {0}")]
    Input(String),
}
