//! The device layer under [`crate::Runtime`]: for kernel tests, benchmarks and
//! device tools, not needed by an app that runs bundles.
//!
//! - [`Gpu::new`] picks an adapter ([`DeviceOptions`], Vulkan preferred,
//!   `WGPU_BACKEND` honoured) and [`list_adapters`] lists them;
//!   [`Gpu::shader_limits`] gives the generators the device's limits.
//! - [`Gpu::pipeline`] compiles a [`seam_core::Kernel`]; [`PipelineCache`]
//!   builds each distinct kernel once.
//! - [`Gpu::create_buffer`], [`Gpu::upload`], [`Gpu::read`] manage buffers;
//!   [`GpuBuffer::slice`] binds a sub-range (one part of a split weight);
//!   [`Gpu::memory`] reports the device memory held ([`DeviceMemory`]).
//! - [`Gpu::batch`] records many dispatches; [`Batch::finish`] gives a
//!   [`Recorded`] submitted as one command buffer with one compute pass by
//!   [`Gpu::run`] / [`Gpu::submit`] / [`Gpu::run_timed`].
//!
//! Every device failure (out of memory, validation, device loss, failed map)
//! comes back as a [`crate::Error`]; error scopes and an uncaptured-error
//! handler keep wgpu from panicking.
//!
//! Thread safety: [`Gpu`], [`GpuBuffer`], [`KernelPipeline`] and [`Recorded`]
//! are `Send + Sync` (wgpu's device, queue and resources are, on native back
//! ends); a [`Batch`] borrows its [`Gpu`] and is built on one thread.

mod adapter;
mod batch;
mod buffers;
mod gpu;
mod grid_budget;
mod memory;
mod pipeline;
mod submit;
mod workgroup_memory;

pub use adapter::{list_adapters, AdapterSummary, DeviceOptions};
pub use batch::{Batch, Recorded};
pub use buffers::{BufferView, GpuBuffer};
pub use gpu::Gpu;
pub use grid_budget::MAX_WORKGROUPS_PER_DISPATCH;
pub use memory::DeviceMemory;
pub use pipeline::{KernelPipeline, PipelineCache};
/// The wgpu version the device layer is built on (for [`DeviceOptions`]'
/// backends and power preference, and [`Gpu::device`]).
pub use wgpu;
