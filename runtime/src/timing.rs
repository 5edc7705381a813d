//! What a run measures, and what it returns with its outputs.

use std::time::Duration;

use crate::tensor::HostTensor;

/// What a run measures besides its wall time
/// ([`crate::Session::run_with`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Timing {
    /// Wall time only: one submission, no timestamp queries.
    #[default]
    Wall,
    /// Also the device time of the compute pass, where the device supports
    /// timestamps.
    Device,
    /// Each dispatch timed: where the time goes. Where the device writes
    /// timestamps inside a compute pass, the run is one submission as usual
    /// with a timestamp between dispatches (each timed where it runs among
    /// the others); otherwise each dispatch is submitted and timed on its own
    /// (then every dispatch also pays a submission: [`RunTiming::submits`]
    /// is the dispatch count). For profiling only.
    PerDispatch,
}

/// A run's outputs and what it measured.
#[derive(Clone, Debug)]
pub struct RunOutput {
    /// The entry point's outputs in signature order (states excluded).
    pub tensors: Vec<HostTensor>,
    /// Time and dispatch counts.
    pub timing: RunTiming,
}

/// What one run measured.
#[derive(Clone, Debug)]
pub struct RunTiming {
    /// Wall time of upload, submission, wait and read-back.
    pub wall: Duration,
    /// Device time of the compute pass(es), with [`Timing::Device`] or
    /// [`Timing::PerDispatch`] where timestamps are supported.
    pub device: Option<Duration>,
    /// Dispatches submitted.
    pub dispatches: usize,
    /// Submissions (command buffers) in the run.
    pub submits: usize,
    /// Each dispatch's time, with [`Timing::PerDispatch`]; empty otherwise.
    pub per_dispatch: Vec<DispatchTiming>,
}

/// What one dispatch took ([`Timing::PerDispatch`]).
#[derive(Clone, Debug)]
pub struct DispatchTiming {
    /// The kernel's name.
    pub kernel: String,
    /// Wall time of its submission and wait when it was submitted on its
    /// own; its device time when it was timed inside the run's pass.
    pub wall: Duration,
    /// Device time of its compute pass, where timestamps are supported.
    pub device: Option<Duration>,
}
