//! # seam-core
//!
//! The vocabulary every other Seam crate speaks, defined once: the IR, the
//! compiler, the kernel library and the runtime all import these types instead
//! of keeping mirrors of their own. It depends on nothing heavier than
//! `thiserror`, `libm` and `half`, so the runtime can use it without pulling in the
//! compiler side.

#![warn(missing_docs)]

mod dtype;
pub mod elementwise;
pub mod flow;
mod launch;
mod launch_error;
mod limits;
pub mod quant;
mod route_mode;
mod size_expr;

pub use dtype::DType;
pub use elementwise::{BinaryFn, GatedAct, UnaryFn, WGSL_ACTIVATIONS};
pub use launch::{Access, BindingDesc, Dim, Grid, GridDim, GridTerm, Kernel, Launch, SizeDesc};
pub use launch_error::LaunchError;
pub use limits::{DeviceClass, DeviceLimits, KernelProfile};
pub use quant::{GgmlType, QuantError, WeightFormat};
pub use route_mode::RouteMode;
pub use size_expr::{SizeExpr, SizeExprError};
