//! [`ExpertOffload`]: how many experts of each MoE layer a model keeps on the
//! device, and the cache policy that chooses them.

use super::{Lookahead, PolicyKind};

/// Keep at most `resident` experts of each MoE layer on the device; the
/// others stay in host memory (the bundle's bytes as read) and are uploaded
/// into a slot when a run needs them, chosen by `policy`. A layer with at
/// most `resident` experts keeps them all on the device, as without offload.
///
/// Outputs are bit for bit those of the all-resident run: the same kernels
/// read the same weights, only from a slot instead of the expert's place in
/// the full stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpertOffload {
    /// Experts of each MoE layer kept on the device (at least 1).
    pub resident: u32,
    /// Which resident expert a load evicts, and whether to prefetch.
    pub policy: PolicyKind,
    /// The upcoming accesses `lookahead` considers for prefetch.
    pub prefetch_window: usize,
}

impl ExpertOffload {
    /// `resident` experts per layer under `policy`, with
    /// [`Lookahead::DEFAULT_WINDOW`] for prefetch.
    pub fn new(resident: u32, policy: PolicyKind) -> Self {
        ExpertOffload {
            resident,
            policy,
            prefetch_window: Lookahead::DEFAULT_WINDOW,
        }
    }
}
