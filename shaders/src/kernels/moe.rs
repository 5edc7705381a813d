//! The grouped, dropless MoE kernels, four dispatches per layer:
//!
//! 1. [`moe_plan`] — one workgroup: counts the (token, slot) pairs per expert,
//!    prefix-sums them into blocks of `rows` pairs (each expert's group padded to
//!    a whole number of blocks, as vLLM's `moe_align_block_size`), and writes,
//!    in token order within each expert (so the result is deterministic):
//!    `block_expert[b]` (the expert of block `b`, or `NONE` = `0xffffffff` past
//!    the last block), `pairs[b·rows + r]` (the pair `t·k + j`, or `NONE` for
//!    padding) and `pair_pos[t·k + j]` (where the pair landed; `NONE` for an id
//!    outside `0..E`, which is dropped).
//! 2. [`moe_gate_up`] — per block, `h = act(x·Wg[e]) * (x·Wu[e])` for its rows,
//!    reading only expert `e`'s weights (the SwiGLU/GeGLU epilogue fused);
//!    padding rows get zeros.
//! 3. [`moe_down`] — per block, `y = h·Wd[e]`.
//! 4. [`moe_combine`] — per token, `out[t] = Σ_j w[t, j]·y[pair_pos[t·k + j]]`
//!    in slot order (+ an optional shared-expert output): no atomics, no float
//!    races.
//!
//! [`grouped_matmul`] reuses the plan of top-1 ids for a plain grouped product
//! (`out[t] = x[t]·W[ids[t]]`, a per-modality projection), reading the rows
//! as 2 does and storing them in token order.
//!
//! The grid of 2 and 3 covers `blocks` = [`moe_max_blocks`] blocks, an upper
//! bound computable without reading the routing back; blocks past the last used
//! one exit at once (llama.cpp-style early exit). Weights are never gathered or
//! copied per token. The row-blocked tile's `rows` must be the same in all of
//! [`moe_plan`], [`moe_gate_up`] and [`moe_down`]: use one [`MoeConfig`].

use crate::error::ShaderError;
use crate::split::WeightSplit;
use crate::wgsl::{wgsl, KernelBuilder, ScalarType, WgslWriter};
use seam_core::{DeviceLimits, KernelProfile};
use seam_core::{Dim, Grid, GridDim, Kernel};

use super::matmul::{
    row_blocked, BLayout, BSpec, BlockTile, Epilogue, MatmulVariant, RowBlockedSpec, RowSource,
    RowTile, NONE,
};
use seam_core::GatedAct;

/// Shapes and tiles shared by the MoE kernels of one layer.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct MoeConfig {
    /// Experts `E`.
    pub experts: u32,
    /// Hidden size `D`.
    pub hidden: u32,
    /// Expert FFN size `F`.
    pub ffn: u32,
    /// The gated activation.
    pub act: GatedAct,
    /// The expert matmuls' variant: [`MatmulVariant::RowBlocked`] or
    /// [`MatmulVariant::SubgroupBlocked`]; its `rows` is the block size.
    pub variant: MatmulVariant,
    /// How the expert weights are stored: row-major (the IR's `[E, D, F]` gate/up
    /// and `[E, F, D]` down) or transposed (`[E, F, D]` gate/up and `[E, D, F]`
    /// down, each output column's weights contiguous — faster on CPU devices).
    pub layout: BLayout,
    /// Split of the stored gate/up weights (rows `E·D`, or `E·F` transposed).
    pub gate_up_split: WeightSplit,
    /// Split of the stored down weights (rows `E·F`, or `E·D` transposed).
    pub down_split: WeightSplit,
}

impl MoeConfig {
    /// Variant, layout and splits chosen for the device: transposed weights and
    /// the subgroup variant where it applies. `offset_align` is the device's
    /// storage-offset alignment (for binding parts as sub-ranges of one buffer).
    pub fn new(
        experts: u32,
        hidden: u32,
        ffn: u32,
        act: GatedAct,
        limits: &DeviceLimits,
        offset_align: u64,
    ) -> Result<Self, ShaderError> {
        let cpu = limits.profile() == KernelProfile::CpuLike;
        let layout = if cpu {
            BLayout::Transposed
        } else {
            BLayout::RowMajor
        };
        let fits =
            |n: u32, k: u32| MatmulVariant::gemv(limits, 4, Dim::Fixed(n), Dim::Fixed(k), layout);
        let variant = match (fits(ffn, hidden), fits(hidden, ffn)) {
            (MatmulVariant::SubgroupBlocked(t), MatmulVariant::SubgroupBlocked(_)) => {
                MatmulVariant::SubgroupBlocked(t)
            }
            _ => MatmulVariant::RowBlocked(RowTile {
                rows: 4,
                cols: 2,
                workgroup: limits.clamp_workgroup(64),
                unroll: 4,
            }),
        };
        Self::with(
            experts,
            hidden,
            ffn,
            act,
            variant,
            layout,
            limits,
            offset_align,
        )
    }

    /// An explicit variant and layout; splits planned for `limits`.
    #[allow(clippy::too_many_arguments)]
    pub fn with(
        experts: u32,
        hidden: u32,
        ffn: u32,
        act: GatedAct,
        variant: MatmulVariant,
        layout: BLayout,
        limits: &DeviceLimits,
        offset_align: u64,
    ) -> Result<Self, ShaderError> {
        let max = limits.max_storage_buffer_binding_size;
        let plan = |n_out: u32, k_in: u32| match layout {
            // Stored [E·k_in, n_out]: K-loop splits; keep parts a multiple of 4 rows.
            BLayout::RowMajor => WeightSplit::plan(
                experts.saturating_mul(k_in),
                u64::from(n_out) * 4,
                max,
                4,
                offset_align,
            ),
            // Stored [E·n_out, k_in]: whole experts per part.
            BLayout::Transposed => WeightSplit::plan(
                experts.saturating_mul(n_out),
                u64::from(k_in) * 4,
                max,
                n_out,
                offset_align,
            ),
        };
        Ok(MoeConfig {
            experts,
            hidden,
            ffn,
            act,
            variant,
            layout,
            gate_up_split: plan(ffn, hidden)?,
            down_split: plan(hidden, ffn)?,
        })
    }

    /// Rows per block (the variant's tile rows).
    pub fn block_rows(&self) -> u32 {
        match self.variant {
            MatmulVariant::RowBlocked(t) => t.rows,
            MatmulVariant::SubgroupBlocked(t) => t.rows,
            MatmulVariant::Tiled(t) => t.block,
        }
    }

    fn tile(&self) -> Result<BlockTile, ShaderError> {
        match self.variant {
            MatmulVariant::RowBlocked(t) => Ok(BlockTile::Scalar(t)),
            MatmulVariant::SubgroupBlocked(t) => Ok(BlockTile::Subgroup(t)),
            MatmulVariant::Tiled(_) => Err(ShaderError::config(
                "moe",
                "the grouped expert kernels are row-blocked only",
            )),
        }
    }
}

/// An upper bound on the blocks the plan can use for `tokens·topk` pairs over
/// `experts` experts with `rows` rows per block: `ceil(T·k / rows) + min(E, T·k)`.
pub fn moe_max_blocks(tokens: u32, topk: u32, experts: u32, rows: u32) -> u32 {
    let pairs = tokens.saturating_mul(topk);
    pairs.div_ceil(rows.max(1)) + experts.min(pairs)
}

/// The routing plan. Bindings `ids` (i32 `[tokens, topk]`), `block_expert` (u32
/// `[blocks]`), `pairs` (u32 `[blocks·rows]`), `pair_pos` (u32 `[tokens·topk]`).
/// Sizes `tokens`, `topk`, `experts`, `blocks`. One workgroup.
pub fn moe_plan(cfg: &MoeConfig, limits: &DeviceLimits) -> Result<Kernel, ShaderError> {
    let e = cfg.experts;
    if e == 0 || cfg.block_rows() == 0 {
        return Err(ShaderError::config(
            "moe_plan",
            "no experts or empty blocks",
        ));
    }
    if u64::from(e) * 8 + 16 > u64::from(limits.workgroup_storage_bytes) {
        return Err(ShaderError::config(
            "moe_plan",
            "too many experts for workgroup memory",
        ));
    }
    let workgroup = limits.clamp_workgroup(64.min(e.next_power_of_two()));
    let rows = cfg.block_rows();
    let mut kb = KernelBuilder::new(format!("moe_plan_e{e}_r{rows}"), workgroup);
    kb.size("tokens", Dim::Dynamic)
        .size("topk", Dim::Dynamic)
        .size("experts", Dim::Fixed(e))
        .size("blocks", Dim::Dynamic);
    kb.input("ids", ScalarType::I32)
        .output("block_expert", ScalarType::U32)
        .output("pairs", ScalarType::U32)
        .output("pair_pos", ScalarType::U32);
    kb.item(format!("var<workgroup> cnt: array<u32, {e}>;"));
    kb.item(format!("var<workgroup> first_block: array<u32, {e}>;"));
    kb.item("var<workgroup> used_blocks: u32;");
    let mut w = WgslWriter::new();
    write_plan(&mut w, workgroup, rows);
    let one = GridDim::one;
    Ok(kb.finish(&w.finish(), Grid::xyz(one(), one(), one())))
}

/// The plan's body for `workgroup` invocations and blocks of `rows` pairs:
/// count the pairs per expert, give each expert its first block, then write
/// each expert's pairs, its padding and its blocks' expert.
fn write_plan(w: &mut WgslWriter, workgroup: u32, rows: u32) {
    w.line("let np = TOKENS * TOPK;");
    w.open(format_args!(
        "for (var e = lidx; e < EXPERTS; e += {workgroup}u) {{"
    ));
    w.line("var c = 0u;");
    w.line("for (var i = 0u; i < np; i += 1u) { if (u32(ids[i]) == e) { c += 1u; } }");
    w.line("cnt[e] = c;");
    w.close();
    w.line("workgroupBarrier();");
    w.open("if (lidx == 0u) {");
    w.line("var b = 0u;");
    wgsl!(
        w,
        "for (var e = 0u; e < EXPERTS; e += 1u) {{ first_block[e] = b; b += (cnt[e] + {}u) / {rows}u; }}",
        rows - 1
    );
    w.line("used_blocks = b;");
    w.close();
    w.line("workgroupBarrier();");
    wgsl!(w, "let cap = BLOCKS * {rows}u;");
    w.open(format_args!(
        "for (var e = lidx; e < EXPERTS; e += {workgroup}u) {{"
    ));
    w.line("let b0 = first_block[e];");
    wgsl!(w, "let nb = (cnt[e] + {}u) / {rows}u;", rows - 1);
    wgsl!(w, "var p = b0 * {rows}u;");
    w.open("for (var i = 0u; i < np; i += 1u) {");
    w.open("if (u32(ids[i]) == e) {");
    wgsl!(
        w,
        "if (p < cap) {{ pairs[p] = i; pair_pos[i] = p; }} else {{ pair_pos[i] = {NONE}; }}"
    );
    w.line("p += 1u;");
    w.close();
    w.close();
    wgsl!(
        w,
        "for (; p < (b0 + nb) * {rows}u; p += 1u) {{ if (p < cap) {{ pairs[p] = {NONE}; }} }}"
    );
    w.line("for (var b = b0; b < b0 + nb; b += 1u) { if (b < BLOCKS) { block_expert[b] = e; } }");
    w.close();
    wgsl!(
        w,
        "for (var b = used_blocks + lidx; b < BLOCKS; b += {workgroup}u) {{ block_expert[b] = {NONE}; }}"
    );
    wgsl!(
        w,
        "for (var i = lidx; i < np; i += {workgroup}u) {{ if (u32(ids[i]) >= EXPERTS) {{ pair_pos[i] = {NONE}; }} }}"
    );
}

/// Gate and up projections of every routed pair with the activation epilogue.
/// Bindings `a` (= `x`, f32 `[tokens, D]`), `block_expert`, `pairs` (from the
/// plan), `b_gate`, `b_up` (f32 `[E, D, F]`, or `[E, F, D]` when
/// [`MoeConfig::layout`] is transposed; `b_gate_0…`, `b_up_0…` when split), `out`
/// (= `h`, f32 `[blocks·rows, F]`). With the subgroup variant `a`, the weights
/// and, for row-major weights, `out` are bound as `vec4` arrays (same bytes). Sizes `tokens`, `topk`, `n`
/// (= F), `k` (= D), `experts`, `blocks`.
pub fn moe_gate_up(cfg: &MoeConfig) -> Result<Kernel, ShaderError> {
    row_blocked(&RowBlockedSpec {
        name: format!("moe_gate_up_{:?}_r{}", cfg.act, cfg.block_rows()).to_lowercase(),
        tile: cfg.tile()?,
        rows: RowSource::MoePairs {
            topk: Dim::Dynamic,
            tokens: Dim::Dynamic,
        },
        n: Dim::Fixed(cfg.ffn),
        k: Dim::Fixed(cfg.hidden),
        batch: None,
        b: BSpec {
            layout: cfg.layout,
            split: cfg.gate_up_split,
            batched: false,
            experts: Some(Dim::Fixed(cfg.experts)),
        },
        epilogue: Epilogue::Gated(cfg.act),
    })
}

/// Down projection of every padded row. Bindings `a` (= `h`, f32
/// `[blocks·rows, F]`), `block_expert`, `b` (f32 `[E, F, D]`, or `[E, D, F]`
/// transposed; `b_0…` when split), `out` (= `y`, f32 `[blocks·rows, D]`). Sizes `n` (= D), `k` (= F), `experts`, `blocks`.
pub fn moe_down(cfg: &MoeConfig) -> Result<Kernel, ShaderError> {
    down(
        cfg,
        format!("moe_down_r{}", cfg.block_rows()),
        RowSource::MoePadded,
        Epilogue::None,
    )
}

/// The down projection of a top-1 MoE whose routing weights are exactly 1,
/// written straight into token order (no combine): the padded row of pair `t`
/// goes to `out[t]`, plus `shared[t]` when `add_shared`. Bindings `a` (= `h`),
/// `block_expert`, `pairs`, `b` (as [`moe_down`]), `r` (= the shared expert's
/// output, f32 `[tokens, D]`, when `add_shared`), `out` (f32 `[tokens, D]`).
/// Sizes `tokens`, `topk` (must be 1 for every token to be written),
/// `n` (= D), `k` (= F), `experts`, `blocks`.
pub fn moe_down_to_tokens(cfg: &MoeConfig, add_shared: bool) -> Result<Kernel, ShaderError> {
    let (epilogue, tag) = if add_shared {
        (Epilogue::AddResidual, "_shared")
    } else {
        (Epilogue::None, "")
    };
    down(
        cfg,
        format!("moe_down_tokens_r{}{tag}", cfg.block_rows()),
        RowSource::MoePaddedToTokens {
            topk: Dim::Dynamic,
            tokens: Dim::Dynamic,
        },
        epilogue,
    )
}

/// The grouped matmul `out[t] = x[t]·W[ids[t]]` over the plan of top-1 ids:
/// each block multiplies its pairs' rows of `x` by its expert's matrix and
/// stores them straight into token order (a per-modality projection,
/// Mixture-of-Transformers). The matrices are the config's "down" stack:
/// `[E, K, N]` row-major, `[E, N, K]` transposed, with `ffn` = `K` and `hidden`
/// = `N`. Bindings `a` (= `x`, f32 `[tokens, K]`), `block_expert`, `pairs`, `b`
/// (`b_0…` when split), `out` (f32 `[tokens, N]`). Sizes `tokens`, `topk`
/// (must be 1), `n`, `k`, `experts`, `blocks`.
pub fn grouped_matmul(cfg: &MoeConfig) -> Result<Kernel, ShaderError> {
    down(
        cfg,
        format!("grouped_matmul_r{}", cfg.block_rows()),
        RowSource::MoePairsToTokens {
            topk: Dim::Dynamic,
            tokens: Dim::Dynamic,
        },
        Epilogue::None,
    )
}

fn down(
    cfg: &MoeConfig,
    name: String,
    rows: RowSource,
    epilogue: Epilogue,
) -> Result<Kernel, ShaderError> {
    row_blocked(&RowBlockedSpec {
        name,
        tile: cfg.tile()?,
        rows,
        n: Dim::Fixed(cfg.hidden),
        k: Dim::Fixed(cfg.ffn),
        batch: None,
        b: BSpec {
            layout: cfg.layout,
            split: cfg.down_split,
            batched: false,
            experts: Some(Dim::Fixed(cfg.experts)),
        },
        epilogue,
    })
}

/// The weighted combine. Bindings `y` (f32 `[blocks·rows, D]`), `weights` (f32
/// `[tokens, topk]`), `pair_pos` (u32 `[tokens·topk]`), optionally `shared_out` (f32
/// `[tokens, D]`, added), `out` (f32 `[tokens, D]`). Sizes `tokens`, `topk`,
/// `d`, `blocks`, `rows` (fixed: the block size).
pub fn moe_combine(
    cfg: &MoeConfig,
    with_shared: bool,
    limits: &DeviceLimits,
) -> Result<Kernel, ShaderError> {
    let workgroup = limits.clamp_workgroup(256);
    let mut kb = KernelBuilder::new(
        format!("moe_combine{}", if with_shared { "_shared" } else { "" }),
        workgroup,
    );
    kb.size("tokens", Dim::Dynamic)
        .size("topk", Dim::Dynamic)
        .size("d", Dim::Fixed(cfg.hidden))
        .size("blocks", Dim::Dynamic)
        .size("rows", Dim::Fixed(cfg.block_rows()));
    kb.input("y", ScalarType::F32)
        .input("weights", ScalarType::F32)
        .input("pair_pos", ScalarType::U32);
    if with_shared {
        kb.input("shared_out", ScalarType::F32);
    }
    kb.output("out", ScalarType::F32);
    let mut w = WgslWriter::new();
    wgsl!(w, "let i = group * {workgroup}u + lidx;");
    w.line("if (i >= TOKENS * D) { return; }");
    w.line("let t = i / D;");
    w.line("let c = i % D;");
    let start = if with_shared { "shared_out[i]" } else { "0.0" };
    wgsl!(w, "var acc = {start};");
    w.open("for (var j = 0u; j < TOPK; j += 1u) {");
    w.line("let p = pair_pos[t * TOPK + j];");
    w.line("if (p < BLOCKS * ROWS) { acc = fma(weights[t * TOPK + j], y[p * D + c], acc); }");
    w.close();
    w.line("out[i] = acc;");
    Ok(kb.finish(&w.finish(), Grid::linear(&["tokens", "d"], workgroup)))
}
