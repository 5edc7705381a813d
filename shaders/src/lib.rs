//! # seam-shaders
//!
//! The WGSL kernel library: one generator per kernel family (matmul, GEMV,
//! element-wise, norms, softmax, data movement, RoPE, attention (over a
//! sequence or a slot pool), top-k routing and
//! the grouped MoE kernels), each specialised by shape, dtype and the device
//! limits read at start-up. Every generator returns a [`Kernel`]: WGSL source,
//! entry point, workgroup size, bindings (all in group 0), the sizes it is
//! parametric in, and its dispatch grid as a function of those sizes.
//!
//! Sizes known at generation time are baked in as constants ([`Dim::Fixed`]);
//! the others ([`Dim::Dynamic`], e.g. the number of tokens) are read at run time
//! from a small uniform `Params` struct — one `u32` per dynamic size, in
//! declaration order — bound after the storage buffers. [`Kernel::launch`] packs
//! it and computes the grid, so one kernel serves every size up to its bound.
//!
//! With the default `validate` feature, [`validate`] parses and checks every
//! module with naga and [`emit`] translates it to SPIR-V, MSL or HLSL. The
//! runtime depends on this crate with `default-features = false`: plain data and
//! generators only, no naga.

#![warn(missing_docs)]

mod error;
pub mod kernels;
mod split;
#[cfg(feature = "validate")]
mod validate;
mod wgsl;

pub use error::ShaderError;
pub use kernels::attention::{attention, AttentionConfig};
pub use kernels::elementwise::{
    binary, cast, elementwise, fill, iota, transpose, transpose_sizes, unary, ElementwiseConfig,
    EwInput, Expr, IndexMap,
};
pub use kernels::matmul::{
    matmul, BLayout, Epilogue, MatmulConfig, MatmulVariant, RowTile, SubgroupTile, TiledTile,
};
pub use kernels::moe::{
    moe_combine, moe_down, moe_down_to_tokens, moe_gate_up, moe_max_blocks, moe_plan, MoeConfig,
};
pub use kernels::movement::{concat, gather, slice, slice_update, split, write_rows};
pub use kernels::pooled_attention::{pooled_attention, PooledAttentionConfig};
pub use kernels::qmatmul::{
    chunk_elems, moe_down_quant, moe_down_to_tokens_quant, moe_gate_up_quant, quant_matmul,
    QuantMatmulConfig, QuantMoeConfig, QuantTile,
};
pub use kernels::rope::rope;
pub use kernels::rotary_split::{rotary_split, PieceDest, PieceRope, SplitPiece};
pub use kernels::route::{route, topk};
pub use kernels::rowwise::{row_kernel, RowConfig, RowOp};
pub use seam_core::{
    Access, BindingDesc, DeviceClass, DeviceLimits, Dim, GatedAct, Grid, GridDim, GridTerm, Kernel,
    KernelProfile, Launch, RouteMode, SizeDesc, WeightFormat,
};

pub use seam_core::{BinaryFn, UnaryFn};
pub use split::WeightSplit;
#[cfg(feature = "validate")]
pub use validate::{emit, spirv_words, validate, Target, Validated};
pub use wgsl::{f32_literal, ScalarType};
