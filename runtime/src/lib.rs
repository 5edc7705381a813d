//! # seam-runtime
//!
//! Loads a Seam bundle, verifies it before touching the GPU, and runs it through
//! wgpu on Vulkan, Metal, DX12 — or on machines without a GPU through Mesa's
//! lavapipe. It never depends on the compiler, the frontends, egg or petgraph, so
//! an app can embed it alone.
//!
//! - [`bundle`]: the versioned bundle format (reader with full verification, writer);
//! - [`files`]: atomic file writes that never replace a file unasked.

pub mod bundle;
pub mod files;
