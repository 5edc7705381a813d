//! Element types, defined in `seam-core` and re-exported here.
pub use seam_core::DType;
