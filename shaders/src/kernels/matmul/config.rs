//! [`MatmulConfig`]: one matrix product to generate.

use crate::error::ShaderError;
use crate::split::WeightSplit;
use seam_core::DeviceLimits;
use seam_core::Dim;

use super::epilogue::Epilogue;
use super::layout::BLayout;
use super::variant::MatmulVariant;

/// A matrix product to generate.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MatmulConfig {
    /// Rows of `a` and `out`.
    pub m: Dim,
    /// Columns of `b` and `out`.
    pub n: Dim,
    /// The contracted dimension.
    pub k: Dim,
    /// Batch count when `a` and `out` are batched (`[batch, M, …]`).
    pub batch: Option<Dim>,
    /// Whether `b` is batched too (`[batch, K, N]`); otherwise shared.
    pub b_batched: bool,
    /// How `b` is stored.
    pub b_layout: BLayout,
    /// How `b` is cut across bindings.
    pub b_split: WeightSplit,
    /// The implementation.
    pub variant: MatmulVariant,
    /// What is stored.
    pub epilogue: Epilogue,
}

impl MatmulConfig {
    /// An unbatched product with a row-major `b` in one binding, variant chosen
    /// for `limits`.
    pub fn new(m: Dim, n: Dim, k: Dim, limits: &DeviceLimits) -> Self {
        MatmulConfig {
            m,
            n,
            k,
            batch: None,
            b_batched: false,
            b_layout: BLayout::RowMajor,
            b_split: WeightSplit::whole(u32::MAX),
            variant: MatmulVariant::for_device(limits, n, k, BLayout::RowMajor),
            epilogue: Epilogue::None,
        }
    }

    /// The same product with `epilogue`. A batched right operand takes no gated
    /// epilogue (checked when generating).
    pub fn with_epilogue(mut self, epilogue: Epilogue) -> Self {
        self.epilogue = epilogue;
        self
    }

    /// The same product with `b` stored as `layout`, the variant re-chosen.
    /// On CPU devices a transposed weight (`[N, K]`) is markedly faster.
    pub fn with_layout(mut self, layout: BLayout, limits: &DeviceLimits) -> Self {
        self.b_layout = layout;
        self.variant = MatmulVariant::for_device(limits, self.n, self.k, layout);
        self
    }

    /// A GEMV-style product for at most `max_rows` (≤ 8) rows with `b` stored
    /// transposed (`[N, K]`), split across bindings as `limits` require
    /// (`offset_align`: the device's storage-offset alignment, for sub-range
    /// binding of one buffer).
    pub fn gemv(
        max_rows: u32,
        n: u32,
        k: u32,
        limits: &DeviceLimits,
        offset_align: u64,
    ) -> Result<Self, ShaderError> {
        let variant = MatmulVariant::gemv(
            limits,
            max_rows,
            Dim::Fixed(n),
            Dim::Fixed(k),
            BLayout::Transposed,
        );
        let col_block = match variant {
            MatmulVariant::RowBlocked(t) => t.workgroup * t.cols,
            MatmulVariant::SubgroupBlocked(t) => t.workgroup * t.cols,
            MatmulVariant::Tiled(t) => t.block,
        };
        let split = WeightSplit::plan(
            n,
            u64::from(k) * 4,
            limits.max_storage_buffer_binding_size,
            col_block,
            offset_align,
        )?;
        Ok(MatmulConfig {
            m: Dim::Dynamic,
            n: Dim::Fixed(n),
            k: Dim::Fixed(k),
            batch: None,
            b_batched: false,
            b_layout: BLayout::Transposed,
            b_split: split,
            variant,
            epilogue: Epilogue::None,
        })
    }

    /// The kernel-name suffix every variant ends with: `_bt` for a transposed
    /// weight, `_p{parts}` for a split one, then the epilogue's tag.
    pub(crate) fn name_suffix(&self) -> String {
        let layout = if self.b_layout == BLayout::Transposed {
            "_bt"
        } else {
            ""
        };
        let split = if self.b_split.parts > 1 {
            format!("_p{}", self.b_split.parts)
        } else {
            String::new()
        };
        format!("{layout}{split}{}", self.epilogue.tag())
    }
}
