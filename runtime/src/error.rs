//! The runtime's one error type. Device failures (no adapter, out of memory,
//! validation, device loss, failed maps) become values of [`Error`] as well
//! as unusable bundles and inputs; nothing panics.

use thiserror::Error;

use seam_bundle::BundleError;

use crate::generate::SamplingError;

/// Why loading or running a bundle, or a device operation, failed.
#[derive(Debug, Error)]
pub enum Error {
    /// The bundle is unusable (verified before any GPU work).
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// No adapter matched the options.
    #[error("no GPU adapter found for backends {backends}{}", filter.as_ref().map(|f| format!(" with a name containing `{f}`")).unwrap_or_default())]
    NoAdapter {
        /// The backends searched.
        backends: String,
        /// The name filter, if any.
        filter: Option<String>,
    },
    /// The adapter refused to create a device.
    #[error("could not create a device on `{adapter}`: {message}")]
    RequestDevice {
        /// The adapter's name.
        adapter: String,
        /// wgpu's message.
        message: String,
    },
    /// The device ran out of memory.
    #[error("out of device memory during {context}: {message}")]
    OutOfMemory {
        /// What was being done.
        context: String,
        /// wgpu's message.
        message: String,
    },
    /// wgpu reported a validation error (a bug in Seam or misuse of the API).
    #[error("validation error during {context}: {message}")]
    Validation {
        /// What was being done.
        context: String,
        /// wgpu's message.
        message: String,
    },
    /// wgpu reported an internal error (e.g. a shader the driver could not compile).
    #[error("internal device error during {context}: {message}")]
    Internal {
        /// What was being done.
        context: String,
        /// wgpu's message.
        message: String,
    },
    /// A run asked to reuse a cache the bundle does not have, or one that
    /// holds no value yet in this session.
    #[error("{0}")]
    Cache(String),
    /// The device was lost; it cannot be used any more.
    #[error("device lost: {0}")]
    DeviceLost(String),
    /// Mapping a buffer for reading failed, or waiting for the device failed.
    #[error("reading back `{label}` failed: {message}")]
    Readback {
        /// The buffer's label.
        label: String,
        /// What went wrong.
        message: String,
    },
    /// A size the bundle declares could not be evaluated for this run.
    #[error("cannot evaluate size: {0}")]
    SizeExpr(#[from] seam_core::SizeExprError),
    /// A kernel could not be launched with the given sizes.
    #[error(transparent)]
    Launch(#[from] seam_core::LaunchError),
    /// A kernel's WGSL declares workgroup memory that cannot be sized.
    #[error("kernel `{kernel}`: {message}")]
    Shader {
        /// The kernel.
        kernel: String,
        /// What cannot be sized.
        message: String,
    },
    /// A kernel declares more `var<workgroup>` memory than the device allows.
    #[error("kernel `{kernel}` declares {bytes} bytes of workgroup memory; the device allows {limit} (max_compute_workgroup_storage_size)")]
    WorkgroupMemory {
        /// The kernel.
        kernel: String,
        /// Bytes declared.
        bytes: u64,
        /// The device's limit.
        limit: u32,
    },
    /// A dispatch would launch more workgroups than
    /// [`crate::device::MAX_WORKGROUPS_PER_DISPATCH`].
    #[error("kernel `{kernel}`: a grid of {grid:?} is {workgroups} workgroups; one dispatch may launch at most {limit}")]
    GridBudget {
        /// The kernel.
        kernel: String,
        /// Workgroups along x, y, z.
        grid: [u32; 3],
        /// Their product.
        workgroups: u64,
        /// The budget.
        limit: u64,
    },
    /// The buffers passed to a dispatch do not match the kernel's bindings.
    #[error("kernel `{kernel}`: {message}")]
    Binding {
        /// The kernel.
        kernel: String,
        /// What is wrong.
        message: String,
    },
    /// A buffer request was invalid (too large, size not a multiple of 4, data
    /// that does not fit).
    #[error("buffer `{label}`: {message}")]
    Buffer {
        /// The buffer's label.
        label: String,
        /// What is wrong.
        message: String,
    },
    /// The bundle has no entry point of this name.
    #[error("the bundle has no entry point `{name}` (it has: {available})")]
    UnknownEntry {
        /// The name asked for.
        name: String,
        /// The names it has.
        available: String,
    },
    /// An entry point of one model was run on a session of another.
    #[error("entry point `{name}` belongs to another model than the session's")]
    ForeignEntry {
        /// The entry point's name.
        name: String,
    },
    /// A run would grow the session's states past their capacity.
    #[error("the sequence is full: {stored} position(s) in the sequence + {adding} new exceed the maximum {max} (the bound of `{dim}`; compile with a larger --max-seq-len, or reset the session)")]
    SequenceFull {
        /// The states' length dim.
        dim: String,
        /// Positions stored before the run.
        stored: u64,
        /// Positions the run would append.
        adding: u64,
        /// The capacity.
        max: u64,
    },
    /// The model's experts cannot be kept in host memory as asked (a bundle
    /// without expert records, a stack split across bindings, a cache that
    /// refused).
    #[error("expert offload: {0}")]
    Experts(String),
    /// The bundle's weights exceed the device memory granted to them
    /// ([`crate::ModelOptions::weight_budget`]).
    #[error("the bundle's weights need {needed} bytes on the device, over the budget of {budget}: keep experts in host memory (--resident-experts) or shard the model over several devices (seam compile --tensor-parallel N)")]
    WeightBudget {
        /// Bytes the weights would take.
        needed: u64,
        /// The budget.
        budget: u64,
    },
    /// The bundle is one rank of a shard set, and the session does not run
    /// with that set's ranks.
    #[error("{0}")]
    Shard(String),
    /// A reduction across ranks failed (a rank timed out, disagreed or left).
    #[error("reduction across ranks: {0}")]
    Collective(#[from] crate::collective::CollectiveError),
    /// A follower could not read rank 0's control message
    /// ([`crate::serving::Engine::follow`]).
    #[error("control message from rank 0: {0}")]
    Control(#[from] crate::serving::ControlError),
    /// Sampling settings or logits are unusable.
    #[error(transparent)]
    Sampling(#[from] SamplingError),
    /// The inputs do not fit the entry point, or a tensor's data does not fit
    /// its shape.
    #[error("bad input: {0}")]
    Input(String),
}

impl Error {
    /// Converts a wgpu error caught by an error scope.
    pub(crate) fn from_wgpu(context: &str, e: wgpu::Error) -> Self {
        let context = context.to_string();
        match e {
            wgpu::Error::OutOfMemory { source } => Error::OutOfMemory {
                context,
                message: source.to_string(),
            },
            wgpu::Error::Validation { description, .. } => Error::Validation {
                context,
                message: description,
            },
            wgpu::Error::Internal { description, .. } => Error::Internal {
                context,
                message: description,
            },
        }
    }
}
