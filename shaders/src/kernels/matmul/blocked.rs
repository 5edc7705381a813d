//! What the two register-blocked, barrier-free cores — scalar loads
//! ([`super::rowblock`]) and subgroup broadcasts ([`super::subgroup`]) — share:
//! the kernel specification (shared with `matmul`, GEMV and the grouped MoE
//! expert kernels), its checks, and the pieces of WGSL both write the same way:
//! declarations, the block's row guard, column indices, the parts of a split
//! weight, the stores and the grid.
//!
//! A workgroup owns `rows` output rows (the same rows for every invocation) and
//! `workgroup · cols` output columns (`vec4` groups of columns for the subgroup
//! core with a row-major `b`); invocation `l` owns columns `n0 + l + j·workgroup`
//! for `j < cols`, so neighbouring lanes read neighbouring elements of `b`.

use crate::error::ShaderError;
use crate::split::WeightSplit;
use crate::wgsl::{wgsl, KernelBuilder, WgslWriter, ACTIVATIONS};
use seam_core::{Dim, Grid, GridDim};

use super::accumulators::acc;
use super::config::MatmulConfig;
use super::epilogue::Epilogue;
use super::layout::BLayout;
use super::parts::{part_binding, part_rows};
use super::tile::{RowTile, SubgroupTile};

/// Where the rows of the left operand come from.
#[derive(Clone, Debug)]
pub(crate) enum RowSource {
    /// Row `i` of `a[m, k]` (batched by `wid.z` when the product is batched).
    Direct { m: Dim },
    /// MoE gate/up: workgroup `y` is a block of the expert-sorted, padded pair
    /// list; binding `block_expert[y]` names its expert (or `NONE`), binding
    /// `pairs[y·rows + r]` the pair `t·topk + j` (or `NONE` for padding); the row
    /// read is `x[t]`. Padding rows store zeros.
    MoePairs { topk: Dim, tokens: Dim },
    /// MoE down: rows `y·rows + r` of the padded activations directly; the
    /// expert from `block_expert[y]`.
    MoePadded,
    /// MoE down for top-1 routing with weight 1: rows as [`RowSource::MoePadded`],
    /// but output row `y·rows + r` is stored at token `pairs[y·rows + r] / topk`
    /// (padding rows store nothing), so the result is in token order.
    MoePaddedToTokens { topk: Dim, tokens: Dim },
    /// Grouped matmul (top-1, weight 1): rows as [`RowSource::MoePairs`], but
    /// output row `r` is stored at the pair's token `pairs[y·rows + r] / topk`
    /// (padding rows store nothing), so the result is in token order.
    MoePairsToTokens { topk: Dim, tokens: Dim },
}

impl RowSource {
    /// Whether the kernel binds the plan's pair list (`pairs`) and sizes `tokens`, `topk`.
    pub(crate) fn reads_pairs(&self) -> bool {
        matches!(
            self,
            RowSource::MoePairs { .. }
                | RowSource::MoePaddedToTokens { .. }
                | RowSource::MoePairsToTokens { .. }
        )
    }

    /// Whether workgroup `y` is a block of the MoE plan (binding `block_expert`,
    /// size `blocks`) rather than `rows` rows of `a`.
    pub(crate) fn is_moe_block(&self) -> bool {
        !matches!(self, RowSource::Direct { .. })
    }
}

/// The right operand(s).
#[derive(Clone, Debug)]
pub(crate) struct BSpec {
    /// How each matrix is stored.
    pub layout: BLayout,
    /// How the stored rows are cut across bindings.
    pub split: WeightSplit,
    /// One matrix per batch entry (`b[batch, …]`).
    pub batched: bool,
    /// One matrix per expert (`b[E, …]`, selected by the block's expert).
    pub experts: Option<Dim>,
}

/// A full specification of one row-blocked kernel.
#[derive(Clone, Debug)]
pub(crate) struct RowBlockedSpec {
    /// The kernel's name.
    pub name: String,
    /// The core and its tile.
    pub tile: BlockTile,
    /// Where the left operand's rows come from.
    pub rows: RowSource,
    /// Output columns.
    pub n: Dim,
    /// The contracted dimension.
    pub k: Dim,
    /// Batch count when `a` and `out` are batched (by `wid.z`).
    pub batch: Option<Dim>,
    /// The right operand(s).
    pub b: BSpec,
    /// What is stored (two right operands, gate and up, when gated).
    pub epilogue: Epilogue,
}

impl RowBlockedSpec {
    /// The spec of the plain product `cfg` with `tile`, named `matmul_{tag}`
    /// plus the weight layout, split and epilogue.
    pub(crate) fn for_matmul(cfg: &MatmulConfig, tag: &str, tile: BlockTile) -> Self {
        RowBlockedSpec {
            name: format!("matmul_{tag}{}", cfg.name_suffix()),
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
            epilogue: cfg.epilogue,
        }
    }

    /// Which stored matrix of `b` this workgroup reads: the block's expert, the
    /// batch entry, or the only one.
    pub(crate) fn b_matrix(&self) -> &'static str {
        if self.b.experts.is_some() {
            "e"
        } else if self.b.batched {
            "bat"
        } else {
            "0u"
        }
    }
}

/// Which row-blocked core generates the kernel.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum BlockTile {
    /// Scalar loads, every invocation loads the rows' `a` values itself.
    Scalar(RowTile),
    /// Subgroup-broadcast of `a`, `vec4` loads ([`super::subgroup`]).
    Subgroup(SubgroupTile),
}

/// The sentinel for "no expert / no pair" in the MoE index buffers.
pub(crate) const NONE: &str = "0xffffffffu";

/// Checks the weight split against the layout (shared by both cores): parts of
/// a row-major `b` hold a multiple of `row_multiple` rows; a transposed `b`
/// keeps each workgroup's columns (`col_block` of them) — or, per expert, each
/// expert — inside one part.
pub(crate) fn check_split(
    spec: &RowBlockedSpec,
    col_block: u32,
    row_multiple: u32,
) -> Result<(), ShaderError> {
    let bad = |r: &str| Err(ShaderError::config(&spec.name, r.to_string()));
    let split = &spec.b.split;
    if split.parts == 0 {
        return bad("a weight split needs at least one part");
    }
    if split.parts == 1 {
        return Ok(());
    }
    if spec.b.batched {
        return bad("a batched right operand cannot be split across bindings");
    }
    match spec.b.layout {
        BLayout::RowMajor if split.rows_per_part % row_multiple != 0 => Err(ShaderError::config(
            &spec.name,
            format!("split rows_per_part must be a multiple of {row_multiple}"),
        )),
        BLayout::Transposed if spec.b.experts.is_some() => {
            if matches!(spec.n, Dim::Fixed(n) if n > 0 && split.rows_per_part % n == 0) {
                Ok(())
            } else {
                bad("a split of transposed per-expert weights needs whole experts per part")
            }
        }
        BLayout::Transposed if split.rows_per_part % col_block != 0 => {
            bad("a transposed split needs rows_per_part to be a multiple of the column block")
        }
        _ => Ok(()),
    }
}

/// The WGSL types of the bindings (`array<f32>` or `array<vec4<f32>>`).
pub(crate) struct BindingTypes {
    /// The left operand `a`.
    pub a: &'static str,
    /// Every part of every right operand.
    pub b: &'static str,
    /// The addend `r` of an add epilogue.
    pub addend: &'static str,
    /// The output.
    pub out: &'static str,
}

/// A binding of `f32` elements.
pub(crate) const SCALARS: &str = "array<f32>";
/// A binding of `vec4<f32>` elements (the same bytes as [`SCALARS`]).
pub(crate) const VEC4S: &str = "array<vec4<f32>>";

/// The kernel's sizes, bindings and helper items, in the order both cores
/// declare them: sizes (`m` or `tokens`, `topk`; `n`, `k`; `batch`; `experts`;
/// `blocks`), then `a`, `block_expert`, `pairs`, the right operands' parts, `r`
/// and `out`.
pub(crate) fn declare(
    spec: &RowBlockedSpec,
    workgroup: u32,
    types: &BindingTypes,
) -> KernelBuilder {
    let mut kb = KernelBuilder::new(&spec.name, workgroup);
    match &spec.rows {
        RowSource::Direct { m } => {
            kb.size("m", *m);
        }
        RowSource::MoePairs { topk, tokens }
        | RowSource::MoePaddedToTokens { topk, tokens }
        | RowSource::MoePairsToTokens { topk, tokens } => {
            kb.size("tokens", *tokens).size("topk", *topk);
        }
        RowSource::MoePadded => {}
    }
    kb.size("n", spec.n).size("k", spec.k);
    if let Some(batch) = spec.batch {
        kb.size("batch", batch);
    }
    if let Some(experts) = spec.b.experts {
        kb.size("experts", experts);
    }
    if spec.rows.is_moe_block() {
        kb.size("blocks", Dim::Dynamic);
    }
    kb.input_typed("a", types.a);
    if spec.rows.is_moe_block() {
        kb.input_typed("block_expert", "array<u32>");
    }
    if spec.rows.reads_pairs() {
        kb.input_typed("pairs", "array<u32>");
    }
    let parts = spec.b.split.parts;
    for mat in spec.epilogue.mats() {
        for part in 0..parts {
            kb.input_typed(&part_binding(mat, part, parts), types.b);
        }
    }
    if spec.epilogue.adds() {
        kb.input_typed("r", types.addend);
    }
    kb.output_typed("out", types.out);
    if spec.epilogue.gated().is_some() {
        kb.item(ACTIVATIONS);
    }
    kb
}

/// The block's first lines: for rows of `a`, return on an empty `a` and set
/// `m0`, the first row; for an MoE block, return past the plan's last block or
/// on a block without an expert, and set `e`, its expert.
pub(crate) fn write_block_start(w: &mut WgslWriter, source: &RowSource, rows: u32) {
    if source.is_moe_block() {
        wgsl!(w, "if (rb >= BLOCKS) {{ return; }}");
        wgsl!(w, "let e = block_expert[rb];");
        wgsl!(w, "if (e >= EXPERTS) {{ return; }}");
    } else {
        wgsl!(w, "if (M == 0u) {{ return; }}");
        wgsl!(w, "let m0 = rb * {rows}u;");
    }
}

/// `p_{r}`, the pair of the block's row `r`, and `ok_{r}`, whether it is a real
/// pair rather than padding.
pub(crate) fn write_row_pair(w: &mut WgslWriter, r: u32, rows: u32) {
    wgsl!(w, "let p_{r} = pairs[rb * {rows}u + {r}u];");
    wgsl!(w, "let ok_{r} = p_{r} < TOKENS * TOPK;");
}

/// For the MoE down projections, `ok_{r}` and `out_offset`, where output row `r`
/// of the block is stored: its token's row when storing in token order, else
/// its padded row.
pub(crate) fn write_padded_row_output(
    w: &mut WgslWriter,
    source: &RowSource,
    r: u32,
    rows: u32,
    out_offset: &str,
) {
    if source.reads_pairs() {
        write_row_pair(w, r, rows);
        wgsl!(
            w,
            "let {out_offset} = select(0u, p_{r} / TOPK, ok_{r}) * N;"
        );
    } else {
        wgsl!(w, "let ok_{r} = true;");
        wgsl!(w, "let {out_offset} = (rb * {rows}u + {r}u) * N;");
    }
}

/// The invocation's output columns `n_{j}` (from `first`, strided by the
/// workgroup) and `nc_{j}`, the same clamped below `limit` for loads.
pub(crate) fn write_columns(
    w: &mut WgslWriter,
    first: &str,
    cols: u32,
    workgroup: u32,
    limit: &str,
) {
    for j in 0..cols {
        wgsl!(w, "let n_{j} = {first} + {}u;", j * workgroup);
        wgsl!(w, "let nc_{j} = min(n_{j}, {limit} - 1u);");
    }
}

/// For a row-major `b` whose matrix starts at stored row `row0`: the k range
/// `[k_lo, k_hi)` that part `part` holds and `prow`, the part's row of `k = 0`.
pub(crate) fn write_part_k_range(w: &mut WgslWriter, split: &WeightSplit, part: u32) {
    if split.parts == 1 {
        wgsl!(w, "let k_lo = 0u;");
        wgsl!(w, "let k_hi = K;");
        wgsl!(w, "let prow = row0;");
    } else {
        let (lo, hi) = part_rows(split, part);
        wgsl!(w, "let k_lo = min(K, max(row0, {lo}u) - row0);");
        wgsl!(w, "let k_hi = min(K, max(row0, {hi}u) - row0);");
        wgsl!(w, "let prow = row0 - {lo}u;");
    }
}

/// For a transposed `b` whose matrix starts at stored row `nrow0`: opens the
/// scope of part `part`, entered only by the workgroups whose `col_block`
/// columns it holds (unconditionally without a split).
pub(crate) fn open_transposed_part(
    w: &mut WgslWriter,
    split: &WeightSplit,
    part: u32,
    col_block: u32,
) {
    if split.parts == 1 {
        wgsl!(w, "{{");
    } else {
        let (lo, hi) = part_rows(split, part);
        wgsl!(
            w,
            "if (nrow0 + wid.x * {col_block}u >= {lo}u && nrow0 + wid.x * {col_block}u < {hi}u) {{"
        );
    }
}

/// How the outputs are stored.
pub(crate) struct OutputStore<'a> {
    /// The `out` element (or `vec4`) of output row `r`, column `j`.
    pub index: &'a dyn Fn(u32, u32) -> String,
    /// The bound of `n_{j}`.
    pub limit: &'a str,
    /// The value stored for a padding row.
    pub zero: &'a str,
    /// Whether each accumulator is a `vec4` of four outputs.
    pub vec4: bool,
}

/// Applies the epilogue to every accumulator and stores it: rows that are not
/// stored are skipped, except MoE padding rows, which store `zero`.
pub(crate) fn write_stores(
    w: &mut WgslWriter,
    spec: &RowBlockedSpec,
    rows: u32,
    cols: u32,
    store: &OutputStore,
) {
    let pad_zero = matches!(spec.rows, RowSource::MoePairs { .. });
    let (limit, zero) = (store.limit, store.zero);
    for r in 0..rows {
        for j in 0..cols {
            let index = (store.index)(r, j);
            let addend = match spec.epilogue {
                Epilogue::AddResidual => index.clone(),
                _ => format!("n_{j}"),
            };
            let value = spec
                .epilogue
                .value(|mat| acc(mat, r, j), store.vec4, &addend);
            if pad_zero {
                wgsl!(
                    w,
                    "if (n_{j} < {limit}) {{ out[{index}] = select({zero}, {value}, ok_{r}); }}"
                );
            } else {
                wgsl!(
                    w,
                    "if (ok_{r} && n_{j} < {limit}) {{ out[{index}] = {value}; }}"
                );
            }
        }
    }
}

/// The dispatch grid: `col_block` columns per workgroup along x, blocks of
/// `rows` rows (or MoE blocks) along y, batch entries along z.
pub(crate) fn grid(spec: &RowBlockedSpec, col_block: u32, rows: u32) -> Grid {
    let x = GridDim::ceil("n", col_block);
    let y = if spec.rows.is_moe_block() {
        GridDim::ceil("blocks", 1)
    } else {
        GridDim::ceil("m", rows)
    };
    let z = if spec.batch.is_some() {
        GridDim::ceil("batch", 1)
    } else {
        GridDim::one()
    };
    Grid::xyz(x, y, z)
}
