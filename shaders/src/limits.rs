//! Device limits and classes, defined in `seam-core` (shared with the runtime).
pub use seam_core::{DeviceClass, DeviceLimits, KernelProfile};
