//! Matrix products `a[M, K] · b[K, N]` (optionally batched), with the variant
//! chosen per device: for CPU-like devices barrier-free register blocks — fed by
//! subgroup broadcasts where the device has fixed-size subgroups
//! ([`MatmulVariant::SubgroupBlocked`]), else by scalar loads
//! ([`MatmulVariant::RowBlocked`]) — and shared-memory tiles for GPUs
//! ([`MatmulVariant::Tiled`]). GEMV shapes (few rows) use a row-blocked variant
//! with a few-row tile ([`MatmulConfig::gemv`]) and a transposed weight.
//!
//! Measured on lavapipe (Mesa 25.0.7, 2-core AVX2, see the bench): the
//! subgroup variant with a transposed `b` is the fastest at every shape; the
//! scalar row-blocked variant is 3–10× slower, because this Mesa runs every
//! storage load whose address is not a constant as a per-lane loop with a
//! bounds check per element, so loads, not arithmetic, set the speed.
//!
//! Bindings, in order: `a` (f32, `[batch?, M, K]`), `b` — or `b_0 … b_{P-1}` when
//! the weight is split ([`crate::WeightSplit`]) — (f32, `[batch?, K, N]`, or
//! `[batch?, N, K]` when [`BLayout::Transposed`]); with a gated [`Epilogue`]
//! `b_gate…` then `b_up…` (each like `b`) instead; with an add epilogue `r`
//! (f32, `[N]` or `[batch?, M, N]`); `out` (f32, `[batch?, M, N]`), then
//! `params`. Sizes: `m`, `n`, `k`, and `batch` when batched. Accumulation in f32.
//!
//! One module per concept: the public configuration ([`MatmulConfig`], its
//! [`MatmulVariant`], tiles, [`BLayout`] and [`Epilogue`]), the three generators
//! (`rowblock`, `subgroup`, `tiled`) and what they share (`blocked` for the two
//! register-blocked cores, `accumulators` and `parts` for all three).

mod accumulators;
mod blocked;
mod config;
mod epilogue;
mod layout;
mod parts;
mod rowblock;
mod subgroup;
mod tile;
mod tiled;
mod variant;

pub(crate) use accumulators::acc;
pub(crate) use blocked::{
    write_block_start, write_padded_row_output, write_row_pair, BSpec, BlockTile, RowBlockedSpec,
    RowSource, NONE,
};
pub use config::MatmulConfig;
pub use epilogue::Epilogue;
pub use layout::BLayout;
pub use tile::{RowTile, SubgroupTile, TiledTile};
pub use variant::MatmulVariant;

use crate::error::ShaderError;
use seam_core::Kernel;

/// Generates the matrix-product kernel.
pub fn matmul(cfg: &MatmulConfig) -> Result<Kernel, ShaderError> {
    if cfg.b_batched && cfg.batch.is_none() {
        return Err(ShaderError::config(
            "matmul",
            "b_batched needs a batch size",
        ));
    }
    if cfg.b_batched && cfg.epilogue.gated().is_some() {
        return Err(ShaderError::config(
            "matmul",
            "a gated epilogue needs an unbatched right operand",
        ));
    }
    match cfg.variant {
        MatmulVariant::RowBlocked(tile) => {
            let tag = format!("rb{}x{}_w{}", tile.rows, tile.cols, tile.workgroup);
            row_blocked(&RowBlockedSpec::for_matmul(
                cfg,
                &tag,
                BlockTile::Scalar(tile),
            ))
        }
        MatmulVariant::SubgroupBlocked(tile) => {
            let tag = format!("sg{}x{}_w{}", tile.rows, tile.cols, tile.workgroup);
            row_blocked(&RowBlockedSpec::for_matmul(
                cfg,
                &tag,
                BlockTile::Subgroup(tile),
            ))
        }
        MatmulVariant::Tiled(tile) => tiled::generate(cfg, tile),
    }
}

/// Generates a register-blocked kernel (a product, GEMV or grouped MoE expert
/// kernel) with the core its tile names.
pub(crate) fn row_blocked(spec: &RowBlockedSpec) -> Result<Kernel, ShaderError> {
    match spec.tile {
        BlockTile::Scalar(tile) => rowblock::generate(spec, tile),
        BlockTile::Subgroup(tile) => subgroup::generate(spec, tile),
    }
}
