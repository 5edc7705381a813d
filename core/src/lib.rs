//! # seam-core
//!
//! The vocabulary every other Seam crate speaks, defined once: the IR, the
//! compiler, the kernel library and the runtime all import these types instead
//! of keeping mirrors of their own. It depends on nothing heavier than
//! `thiserror` and `libm`, so the runtime can use it without pulling in the
//! compiler side.

#![warn(missing_docs)]

pub mod elementwise;
mod dtype;
mod launch;
mod launch_error;
mod limits;
mod size_expr;

pub use dtype::DType;
pub use elementwise::{BinaryFn, UnaryFn, WGSL_ACTIVATIONS};
pub use launch::{Access, BindingDesc, Dim, Grid, GridDim, GridTerm, Kernel, Launch, SizeDesc};
pub use launch_error::LaunchError;
pub use limits::{DeviceClass, DeviceLimits, KernelProfile};
pub use size_expr::{SizeExpr, SizeExprError};
