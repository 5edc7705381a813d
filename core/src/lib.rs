//! # seam-core
//!
//! The vocabulary every other Seam crate speaks, defined once: the IR, the
//! compiler, the kernel library and the runtime all import these types instead
//! of keeping mirrors of their own. It depends on nothing heavier than
//! `thiserror` and `libm`, so the runtime can use it without pulling in the
//! compiler side.

#![warn(missing_docs)]

pub mod elementwise;

pub use elementwise::{BinaryFn, UnaryFn, WGSL_ACTIVATIONS};
