//! # seam-runtime
//!
//! Loads a Seam bundle, verifies it before touching the GPU, and runs it through
//! wgpu on Vulkan, Metal, DX12 — or on machines without a GPU through Mesa's
//! lavapipe. It depends on wgpu, bytemuck, `seam-core` (the shared vocabulary)
//! and `seam-bundle` (the file format) only: never on the compiler, the kernel
//! generators, the frontends, egg or petgraph, so an app can embed it alone.
//!
//! - [`Runtime`] opens a device ([`DeviceOptions`]) and loads bundles into a
//!   [`Model`], a cheap handle to the compiled kernels and the weights on the
//!   device;
//! - [`Model::entry`] looks an entry point up once, as an [`Entry`];
//! - [`Model::session`] creates a [`Session`], which owns what it needs (an app
//!   keeps a model and its session side by side in one struct), keeps the
//!   model's session states (KV caches) on the device between runs, and runs
//!   entries on [`HostTensor`] inputs: [`Session::run`], or
//!   [`Session::run_with`] and a [`Timing`] for a [`RunOutput`] with its
//!   [`RunTiming`];
//! - [`collective`]: reductions across tensor-parallel ranks (a shard set's
//!   sessions, each given a [`collective::Communicator`]);
//! - [`experts`]: the per-layer device expert cache of a decoupled MoE
//!   model (LRU, Belady and lookahead-prefetch policies);
//! - [`generate`]: token generation with a KV cache (`prefill`, then `decode`
//!   step by step) and seeded greedy / temperature / top-p sampling;
//! - every failure, of the bundle, the inputs or the device, is an [`Error`].
//!
//! ```no_run
//! # fn main() -> Result<(), seam_runtime::Error> {
//! use seam_runtime::{DeviceOptions, HostTensor, Runtime};
//!
//! let runtime = Runtime::new(&DeviceOptions::default())?;
//! let model = runtime.load(std::path::Path::new("out/readme_moe.seamb"))?;
//! let forward = model.entry("forward")?;
//! let mut session = model.session()?;
//! let logits = session.run(&forward, &[HostTensor::from_i32(vec![4], &[1, 2, 3, 4])?])?;
//! # Ok(()) }
//! ```
//!
//! Thread safety: [`Runtime`], [`Model`], [`Entry`], [`Session`] and
//! [`HostTensor`] are `Send + Sync`. Share a model between threads (clone the
//! handle) and give each thread its own session.
//!
//! Below the app-facing API:
//! - [`bundle`]: the versioned bundle format (the `seam-bundle` crate,
//!   re-exported: the reader verifies everything before any GPU work);
//! - [`device`]: the device layer (adapters, buffers, pipelines, recorded
//!   dispatches) for kernel tests, benchmarks and device tools.

#![warn(missing_docs)]

pub mod collective;
pub mod device;
mod entry;
mod error;
pub mod experts;
pub mod generate;
mod model;
mod runtime;
pub mod serving;
mod session;
mod tensor;
mod timing;

pub use seam_bundle as bundle;

pub use device::DeviceOptions;
pub use entry::Entry;
pub use error::Error;
pub use model::{Model, ModelOptions};
pub use runtime::Runtime;
pub use session::{LayerRouting, Sampled, SampledRows, Session};
pub use tensor::HostTensor;
pub use timing::{DispatchTiming, RunOutput, RunTiming, Timing};
