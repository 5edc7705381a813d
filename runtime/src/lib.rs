//! # seam-runtime
//!
//! Loads a Seam bundle, verifies it before touching the GPU, and runs it through
//! wgpu on Vulkan, Metal, DX12 — or on machines without a GPU through Mesa's
//! lavapipe. It depends on wgpu, bytemuck, `seam-core` (the shared vocabulary)
//! and `seam-bundle` (the file format) only: never on the compiler, the kernel
//! generators, the frontends, egg or petgraph, so an app can embed it alone.
//!
//! - [`bundle`]: the versioned bundle format (`seam-bundle`, re-exported);
//! - [`generate`]: token generation with a KV cache (`prefill`, then `decode`
//!   step by step) and seeded greedy / temperature / top-p sampling.
//!
//! - [`Runtime`] opens a device and loads bundles into a [`Model`]; a [`Session`]
//!   runs its entry points on [`HostTensor`] inputs and keeps the model's
//!   session states (KV caches) on the device between runs.
//!
//! The device layer:
//! - [`Gpu::new`] picks an adapter ([`DeviceOptions`], Vulkan preferred,
//!   `WGPU_BACKEND` honoured) and [`list_adapters`] lists them;
//!   [`Gpu::shader_limits`] gives the generators the device's limits.
//! - [`Gpu::pipeline`] compiles a [`seam_core::Kernel`]; [`PipelineCache`]
//!   builds each distinct kernel once.
//! - [`Gpu::create_buffer`], [`Gpu::upload`], [`Gpu::read`] manage buffers;
//!   [`GpuBuffer::slice`] binds a sub-range (one part of a split weight).
//! - [`Gpu::batch`] records many dispatches; [`Batch::finish`] gives a
//!   [`Recorded`] submitted as one command buffer with one compute pass by
//!   [`Gpu::run`] / [`Gpu::submit`] / [`Gpu::run_timed`].
//!
//! Every device error (out of memory, validation, device loss, failed map) comes
//! back as a [`RuntimeError`]; error scopes and an uncaptured-error handler keep
//! wgpu from panicking.

#![warn(missing_docs)]

mod buffers;
mod device;
mod dispatch;
mod error;
pub mod generate;
mod model;
mod pipeline;
mod run_error;
mod session;
mod tensor;

pub use buffers::{BufferView, GpuBuffer};
pub use device::{list_adapters, AdapterSummary, DeviceOptions, Gpu};
pub use dispatch::{Batch, Recorded};
pub use error::RuntimeError;
pub use model::{Model, Runtime};
pub use pipeline::{KernelPipeline, PipelineCache};
pub use run_error::RunError;
pub use seam_bundle as bundle;
pub use session::{RunTiming, Session};
pub use tensor::HostTensor;
pub use wgpu;
