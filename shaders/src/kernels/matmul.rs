//! Matrix products `a[M, K] · b[K, N]` (optionally batched), with the variant
//! chosen per device: barrier-free register blocks for CPU-like devices
//! ([`MatmulVariant::RowBlocked`]) or shared-memory tiles for GPUs
//! ([`MatmulVariant::Tiled`]). GEMV shapes (few rows) use the row-blocked variant
//! with a [`RowTile::gemv`] tile and preferably a transposed weight.
//!
//! Bindings, in order: `a` (f32, `[batch?, M, K]`), `b` — or `b_0 … b_{P-1}` when
//! the weight is split ([`crate::WeightSplit`]) — (f32, `[batch?, K, N]`, or
//! `[batch?, N, K]` when [`BLayout::Transposed`]), `out` (f32, `[batch?, M, N]`),
//! then `params`. Sizes: `m`, `n`, `k`, and `batch` when batched. Accumulation in f32.

use crate::error::ShaderError;
use crate::kernel::{Dim, Kernel};
use crate::limits::{DeviceLimits, KernelProfile};
use crate::split::WeightSplit;

use super::rowblock::{self, BSpec, RowBlockedSpec, RowSource};
use super::tiled;

/// How the right operand is stored.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum BLayout {
    /// `b[K, N]`, row-major (the IR's layout).
    RowMajor,
    /// `b[N, K]`: each output column's weights are contiguous. The compiler may
    /// repack a weight this way at compile time; GEMV prefers it.
    Transposed,
}

/// Tile of the barrier-free row-blocked variant.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct RowTile {
    /// Output rows per workgroup (held by every invocation).
    pub rows: u32,
    /// Output columns per invocation (strided by the workgroup size).
    pub cols: u32,
    /// Invocations per workgroup (along the columns).
    pub workgroup: u32,
    /// K-loop unroll factor.
    pub unroll: u32,
}

impl RowTile {
    /// The tile measured fastest for large products on lavapipe (see the bench).
    pub fn large() -> Self {
        RowTile {
            rows: 8,
            cols: 2,
            workgroup: 64,
            unroll: 4,
        }
    }

    /// A tile for a GEMV-like product with at most `rows` rows (clamped to 1..=8).
    pub fn gemv(rows: u32) -> Self {
        RowTile {
            rows: rows.clamp(1, 8),
            cols: 2,
            workgroup: 64,
            unroll: 4,
        }
    }
}

/// Tile of the shared-memory variant.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct TiledTile {
    /// Output tile edge per workgroup (rows and columns), a multiple of 16.
    pub block: u32,
    /// K depth of one shared-memory step.
    pub depth: u32,
}

impl Default for TiledTile {
    fn default() -> Self {
        TiledTile {
            block: 64,
            depth: 16,
        }
    }
}

/// Which implementation to generate.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum MatmulVariant {
    /// Barrier-free register blocks with workgroup-uniform `a` loads.
    RowBlocked(RowTile),
    /// 16×16 invocations, shared-memory tiles, 4×4 (block/16 squared) outputs each.
    Tiled(TiledTile),
}

impl MatmulVariant {
    /// The variant suited to the device, given an upper bound on the rows if known.
    pub fn for_device(limits: &DeviceLimits, max_rows: Option<u32>) -> Self {
        let few_rows = matches!(max_rows, Some(m) if m <= 8);
        match (limits.profile(), few_rows) {
            (_, true) => MatmulVariant::RowBlocked(RowTile::gemv(max_rows.unwrap_or(1))),
            (KernelProfile::CpuLike, false) => MatmulVariant::RowBlocked(RowTile::large()),
            (KernelProfile::GpuTiled, false) => MatmulVariant::Tiled(TiledTile::default()),
        }
    }
}

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
            variant: MatmulVariant::for_device(limits, m.fixed()),
        }
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
        let tile = RowTile::gemv(max_rows);
        let split = WeightSplit::plan(
            n,
            u64::from(k) * 4,
            limits.max_storage_buffer_binding_size,
            tile.workgroup * tile.cols,
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
            variant: MatmulVariant::RowBlocked(tile),
        })
    }
}

/// Generates the matrix-product kernel.
pub fn matmul(cfg: &MatmulConfig) -> Result<Kernel, ShaderError> {
    if cfg.b_batched && cfg.batch.is_none() {
        return Err(ShaderError::config("matmul", "b_batched needs a batch size"));
    }
    match cfg.variant {
        MatmulVariant::RowBlocked(tile) => {
            let name = format!(
                "matmul_rb{}x{}_w{}{}{}",
                tile.rows,
                tile.cols,
                tile.workgroup,
                if cfg.b_layout == BLayout::Transposed { "_bt" } else { "" },
                if cfg.b_split.parts > 1 {
                    format!("_p{}", cfg.b_split.parts)
                } else {
                    String::new()
                }
            );
            rowblock::generate(&RowBlockedSpec {
                name,
                tile,
                rows: RowSource::Direct { m: cfg.m },
                n: cfg.n,
                k: cfg.k,
                batch: cfg.batch,
                b: BSpec {
                    layout: cfg.b_layout,
                    split: cfg.b_split,
                    batched: cfg.b_batched,
                    experts: None,
                },
                gated: None,
            })
        }
        MatmulVariant::Tiled(tile) => tiled::generate(cfg, tile),
    }
}
