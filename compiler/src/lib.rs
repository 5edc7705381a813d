//! # seam-compiler
//!
//! Seam's compiler and its command-line tool `seam`. The pipeline is
//! parse → verify → optimize → lower → plan → bundle; today this crate holds the
//! front of it (loading and checking models, reference evaluation) and the CLI.
//! The e-graph optimizer, lowering to WGSL kernels, buffer planning and the bundle
//! writer join as they land.

pub mod cli;
pub mod compile;
pub mod emit;
pub mod external;
pub mod fold;
pub mod load;
pub mod lower;
pub mod optimize;
pub mod plan;
