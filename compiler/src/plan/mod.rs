//! Buffer planning: give every tensor of a lowered function a device buffer,
//! sharing buffers between tensors whose lifetimes do not overlap.

mod buffers;

pub use buffers::{plan_buffers, BufferPlan, TensorUse};
