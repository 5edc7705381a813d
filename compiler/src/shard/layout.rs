//! How a value or parameter is held across the ranks, and which part of a
//! split dimension each rank holds.

use seam_ir::{Dim, TensorType};

/// A dimension cut into `blocks` equal contiguous blocks, dealt to the ranks:
/// rank `r` holds `max(blocks / N, 1)` blocks from block `r · blocks / N`. With
/// `blocks` a multiple of `N` the ranks hold disjoint parts; with `blocks` a
/// divisor of `N` each block is held by `N / blocks` ranks (key/value heads
/// fewer than the ranks are replicated so, as Megatron does).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Split {
    /// The split axis.
    pub axis: usize,
    /// How many blocks the axis is cut into.
    pub blocks: u64,
}

impl Split {
    /// Whether `blocks` can be dealt to `ranks` ranks (a multiple or a divisor).
    pub(crate) fn deals(blocks: u64, ranks: u64) -> bool {
        blocks > 0 && (blocks % ranks == 0 || ranks % blocks == 0)
    }

    /// How many blocks each of `ranks` ranks holds.
    fn per_rank(self, ranks: u64) -> u64 {
        (self.blocks / ranks).max(1)
    }

    /// The size each rank holds of a dimension of `size`.
    pub(crate) fn local(self, size: u64, ranks: u64) -> u64 {
        size / self.blocks * self.per_rank(ranks)
    }

    /// The range `start..end` rank `rank` holds of a dimension of `size`.
    pub(crate) fn range(self, size: u64, rank: u64, ranks: u64) -> (u64, u64) {
        let block = size / self.blocks;
        let first = rank * self.blocks / ranks;
        (first * block, (first + self.per_rank(ranks)) * block)
    }

    /// The same split on another axis.
    pub(crate) fn on(self, axis: usize) -> Split {
        Split { axis, ..self }
    }
}

/// How a value is held across the ranks.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Every rank holds all of it.
    Whole,
    /// Every rank holds its part of a split dimension.
    Split(Split),
    /// Every rank holds a partial sum; the value is their sum.
    Partial,
    /// An `all_reduce_start` of a partial sum, to be waited for.
    Pending,
}

/// `ty` with the split axis at its rank-local size, or `None` where that
/// axis is not a static dimension dividing into the split's blocks.
pub(crate) fn local_type(ty: &TensorType, layout: Layout, ranks: u64) -> Option<TensorType> {
    let Layout::Split(split) = layout else {
        return Some(ty.clone());
    };
    let mut local = ty.clone();
    let dim = local.shape.0.get_mut(split.axis)?;
    let size = dim.as_static()?;
    if size % split.blocks != 0 {
        return None;
    }
    *dim = Dim::Static(split.local(size, ranks));
    Some(local)
}
