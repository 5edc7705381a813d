//! The element-wise functions: every unary and binary function an element-wise
//! op, a `fused` expression or an element-wise kernel can apply.
//!
//! Each function is defined once, in the table of [`UnaryFn`] or [`BinaryFn`]:
//! its name, its `f32` scalar math (the reference the evaluator runs) and the
//! WGSL expression the kernels emit. The IR's element-wise ops, the `fused`
//! expression language, the optimizer's e-graph language and the element-wise
//! kernels all read these tables, so adding a function is one table entry.

mod binary;
mod gated;
mod math;
mod template;
mod unary;
mod wgsl;

pub use binary::BinaryFn;
pub use gated::GatedAct;
pub use unary::UnaryFn;
pub use wgsl::WGSL_ACTIVATIONS;
