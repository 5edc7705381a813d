//! The register-blocked, barrier-free matrix-product core shared by `matmul`,
//! GEMV and the grouped MoE expert kernels.
//!
//! A workgroup owns `rows` output rows (the same rows for every invocation, so
//! the left operand's loads are workgroup-uniform: on a CPU device such as
//! lavapipe they become scalar loads broadcast to all SIMD lanes) and
//! `workgroup · cols` output columns; invocation `l` owns columns
//! `n0 + l + j·workgroup` for `j < cols`, so the lanes of one SIMD group read
//! neighbouring elements of a `b` row. Accumulators live in registers; the K loop
//! is unrolled `unroll` times. No workgroup memory, no barriers.

use std::fmt::Write as _;

use crate::error::ShaderError;
use crate::kernel::{Dim, Grid, GridDim, Kernel};
use crate::split::WeightSplit;
use crate::wgsl::{KernelBuilder, ScalarType, ACTIVATIONS};

use super::matmul::{BLayout, Epilogue, RowTile, SubgroupTile};

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
}

impl RowSource {
    /// Whether the kernel binds the plan's pair list (`pairs`) and sizes `tokens`, `topk`.
    pub(crate) fn reads_pairs(&self) -> bool {
        matches!(
            self,
            RowSource::MoePairs { .. } | RowSource::MoePaddedToTokens { .. }
        )
    }
}

/// The right operand(s).
#[derive(Clone, Debug)]
pub(crate) struct BSpec {
    pub layout: BLayout,
    pub split: WeightSplit,
    /// One matrix per batch entry (`b[batch, …]`).
    pub batched: bool,
    /// One matrix per expert (`b[E, …]`, selected by the block's expert).
    pub experts: Option<Dim>,
}

/// A full specification of one row-blocked kernel.
#[derive(Clone, Debug)]
pub(crate) struct RowBlockedSpec {
    pub name: String,
    pub tile: BlockTile,
    pub rows: RowSource,
    pub n: Dim,
    pub k: Dim,
    pub batch: Option<Dim>,
    pub b: BSpec,
    /// What is stored (two right operands, gate and up, when gated).
    pub epilogue: Epilogue,
}

/// Which row-blocked core generates the kernel.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum BlockTile {
    /// Scalar loads, every invocation loads the rows' `a` values itself.
    Scalar(RowTile),
    /// Subgroup-broadcast of `a`, `vec4` loads ([`super::sgblock`]).
    Subgroup(SubgroupTile),
}

/// The sentinel for "no expert / no pair" in the MoE index buffers.
pub(crate) const NONE: &str = "0xffffffffu";

fn check(spec: &RowBlockedSpec, t: &RowTile) -> Result<(), ShaderError> {
    let bad = |r: &str| Err(ShaderError::config(&spec.name, r.to_string()));
    if t.rows == 0 || t.cols == 0 || t.workgroup == 0 || t.unroll == 0 {
        return bad("tile sizes must be positive");
    }
    if t.rows * t.cols * spec.epilogue.mats().len() as u32 > 128 {
        return bad("more than 128 accumulators per invocation");
    }
    check_split(spec, t.workgroup * t.cols, 1)
}

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
    let p = &spec.b.split;
    if p.parts == 0 {
        return bad("a weight split needs at least one part");
    }
    if p.parts == 1 {
        return Ok(());
    }
    if spec.b.batched {
        return bad("a batched right operand cannot be split across bindings");
    }
    match spec.b.layout {
        BLayout::RowMajor if p.rows_per_part % row_multiple != 0 => Err(ShaderError::config(
            &spec.name,
            format!("split rows_per_part must be a multiple of {row_multiple}"),
        )),
        BLayout::Transposed if spec.b.experts.is_some() => {
            if matches!(spec.n, Dim::Fixed(n) if n > 0 && p.rows_per_part % n == 0) {
                Ok(())
            } else {
                bad("a split of transposed per-expert weights needs whole experts per part")
            }
        }
        BLayout::Transposed if p.rows_per_part % col_block != 0 => {
            bad("a transposed split needs rows_per_part to be a multiple of the column block")
        }
        _ => Ok(()),
    }
}

/// Generates the kernel with the spec's core.
pub(crate) fn generate(spec: &RowBlockedSpec) -> Result<Kernel, ShaderError> {
    match spec.tile {
        BlockTile::Scalar(t) => generate_scalar(spec, t),
        BlockTile::Subgroup(t) => super::sgblock::generate(spec, &t),
    }
}

fn generate_scalar(spec: &RowBlockedSpec, t: RowTile) -> Result<Kernel, ShaderError> {
    check(spec, &t)?;
    let (rr, cc, wg) = (t.rows, t.cols, t.workgroup);
    let parts = spec.b.split.parts;
    let mut kb = KernelBuilder::new(&spec.name, wg);
    match &spec.rows {
        RowSource::Direct { m } => {
            kb.size("m", *m);
        }
        RowSource::MoePairs { topk, tokens } | RowSource::MoePaddedToTokens { topk, tokens } => {
            kb.size("tokens", *tokens).size("topk", *topk);
        }
        RowSource::MoePadded => {}
    }
    kb.size("n", spec.n).size("k", spec.k);
    if let Some(b) = spec.batch {
        kb.size("batch", b);
    }
    if let Some(e) = spec.b.experts {
        kb.size("experts", e);
    }
    if !matches!(spec.rows, RowSource::Direct { .. }) {
        kb.size("blocks", Dim::Dynamic);
    }
    kb.input("a", ScalarType::F32);
    if !matches!(spec.rows, RowSource::Direct { .. }) {
        kb.input("block_expert", ScalarType::U32);
    }
    if spec.rows.reads_pairs() {
        kb.input("pairs", ScalarType::U32);
    }
    let mats = spec.epilogue.mats();
    let part_name = |mat: &str, p: u32| {
        if parts == 1 {
            mat.to_string()
        } else {
            format!("{mat}_{p}")
        }
    };
    for mat in mats {
        for p in 0..parts {
            kb.input(&part_name(mat, p), ScalarType::F32);
        }
    }
    if spec.epilogue.adds() {
        kb.input("r", ScalarType::F32);
    }
    kb.output("out", ScalarType::F32);
    if spec.epilogue.gated().is_some() {
        kb.item(ACTIVATIONS);
    }

    let mut s = String::new();
    let _ = writeln!(s, "let lane = lid.x;");
    let _ = writeln!(s, "let col0 = wid.x * {}u + lane;", wg * cc);
    let _ = writeln!(s, "let rb = wid.y;");
    // Batch offsets.
    let batched = spec.batch.is_some();
    if batched {
        let _ = writeln!(s, "let bat = wid.z;");
    }
    // Row set-up (workgroup-uniform).
    match &spec.rows {
        RowSource::Direct { .. } => {
            let _ = writeln!(s, "if (M == 0u) {{ return; }}");
            let _ = writeln!(s, "let m0 = rb * {rr}u;");
            let a_boff = if batched { "bat * M * K" } else { "0u" };
            let _ = writeln!(s, "let a_boff = {a_boff};");
            let out_boff = if batched { "bat * M * N" } else { "0u" };
            let _ = writeln!(s, "let out_boff = {out_boff};");
            for r in 0..rr {
                let _ = writeln!(s, "let ok_{r} = m0 + {r}u < M;");
                let _ = writeln!(s, "let a_{r}_off = a_boff + min(m0 + {r}u, M - 1u) * K;");
                let _ = writeln!(s, "let o_{r}_off = out_boff + (m0 + {r}u) * N;");
            }
        }
        RowSource::MoePairs { .. } => {
            let _ = writeln!(s, "if (rb >= BLOCKS) {{ return; }}");
            let _ = writeln!(s, "let e = block_expert[rb];");
            let _ = writeln!(s, "if (e >= EXPERTS) {{ return; }}");
            for r in 0..rr {
                let _ = writeln!(s, "let p_{r} = pairs[rb * {rr}u + {r}u];");
                let _ = writeln!(s, "let ok_{r} = p_{r} < TOKENS * TOPK;");
                let _ = writeln!(s, "let a_{r}_off = select(0u, p_{r} / TOPK, ok_{r}) * K;");
                let _ = writeln!(s, "let o_{r}_off = (rb * {rr}u + {r}u) * N;");
            }
        }
        RowSource::MoePadded | RowSource::MoePaddedToTokens { .. } => {
            let _ = writeln!(s, "if (rb >= BLOCKS) {{ return; }}");
            let _ = writeln!(s, "let e = block_expert[rb];");
            let _ = writeln!(s, "if (e >= EXPERTS) {{ return; }}");
            for r in 0..rr {
                let _ = writeln!(s, "let a_{r}_off = (rb * {rr}u + {r}u) * K;");
                if spec.rows.reads_pairs() {
                    let _ = writeln!(s, "let p_{r} = pairs[rb * {rr}u + {r}u];");
                    let _ = writeln!(s, "let ok_{r} = p_{r} < TOKENS * TOPK;");
                    let _ = writeln!(s, "let o_{r}_off = select(0u, p_{r} / TOPK, ok_{r}) * N;");
                } else {
                    let _ = writeln!(s, "let ok_{r} = true;");
                    let _ = writeln!(s, "let o_{r}_off = (rb * {rr}u + {r}u) * N;");
                }
            }
        }
    }
    // Columns.
    for j in 0..cc {
        let _ = writeln!(s, "let n_{j} = col0 + {}u;", j * wg);
        let _ = writeln!(s, "let nc_{j} = min(n_{j}, N - 1u);");
    }
    // Which stored rows of b this workgroup starts at.
    let base_row = if spec.b.experts.is_some() {
        "e"
    } else if spec.b.batched {
        "bat"
    } else {
        "0u"
    };
    // Accumulators.
    for mat in mats {
        for r in 0..rr {
            for j in 0..cc {
                let _ = writeln!(s, "var {}: f32 = 0.0;", acc(mat, r, j));
            }
        }
    }
    let step = |kk: &str, part: &str, idx: &dyn Fn(u32) -> String| -> String {
        let mut x = String::from("{\n");
        for mat in mats {
            for j in 0..cc {
                let _ = writeln!(
                    x,
                    "let {}_{j} = {}[{}];",
                    val(mat),
                    pname(mat, part),
                    idx(j)
                );
            }
        }
        for r in 0..rr {
            let _ = writeln!(x, "let x_{r} = a[a_{r}_off + {kk}];");
            for mat in mats {
                for j in 0..cc {
                    let ac = acc(mat, r, j);
                    let _ = writeln!(x, "{ac} = fma(x_{r}, {}_{j}, {ac});", val(mat));
                }
            }
        }
        x.push_str("}\n");
        x
    };
    let u = t.unroll;
    match spec.b.layout {
        BLayout::RowMajor => {
            // b stored as [rows = (experts|batch)·K, N]; part p holds rows
            // [p·RP, (p+1)·RP). The K loop runs part by part.
            let rp = spec.b.split.rows_per_part;
            let _ = writeln!(s, "let row0 = {base_row} * K;");
            for p in 0..parts {
                let part = if parts == 1 {
                    String::new()
                } else {
                    format!("_{p}")
                };
                if parts == 1 {
                    let _ = writeln!(s, "{{\nlet k_lo = 0u;\nlet k_hi = K;\nlet prow = row0;");
                } else {
                    let lo = u64::from(p) * u64::from(rp);
                    let hi = lo + u64::from(rp);
                    let _ = writeln!(
                        s,
                        "{{\nlet k_lo = min(K, max(row0, {lo}u) - row0);\nlet k_hi = min(K, max(row0, {hi}u) - row0);\nlet prow = row0 - {lo}u;",
                        lo = lo.min(u64::from(u32::MAX)),
                        hi = hi.min(u64::from(u32::MAX))
                    );
                }
                let _ = writeln!(s, "var k = k_lo;");
                let _ = writeln!(s, "for (; k + {u}u <= k_hi; k += {u}u) {{");
                for q in 0..u {
                    let kk = format!("k + {q}u");
                    let idx = |j: u32| format!("(prow + {kk}) * N + nc_{j}");
                    s.push_str(&step(&kk, &part, &idx));
                }
                let _ = writeln!(s, "}}");
                let _ = writeln!(s, "for (; k < k_hi; k += 1u) {{");
                let idx = |j: u32| format!("(prow + k) * N + nc_{j}");
                s.push_str(&step("k", &part, &idx));
                let _ = writeln!(s, "}}\n}}");
            }
        }
        BLayout::Transposed => {
            // b stored as [rows = (experts|batch)·N, K]; with a split, the part
            // holding this workgroup's columns is uniform (checked above).
            let rp = spec.b.split.rows_per_part;
            let _ = writeln!(s, "let nrow0 = {base_row} * N;");
            for p in 0..parts {
                let part = if parts == 1 {
                    String::new()
                } else {
                    format!("_{p}")
                };
                let lo = u64::from(p) * u64::from(rp);
                if parts == 1 {
                    let _ = writeln!(s, "{{");
                } else {
                    let hi = lo + u64::from(rp);
                    let _ = writeln!(
                        s,
                        "if (nrow0 + wid.x * {blk}u >= {lo}u && nrow0 + wid.x * {blk}u < {hi}u) {{",
                        blk = wg * cc,
                        lo = lo.min(u64::from(u32::MAX)),
                        hi = hi.min(u64::from(u32::MAX)),
                    );
                }
                for j in 0..cc {
                    let _ = writeln!(s, "let bt_{j} = (nrow0 + nc_{j} - {lo}u) * K;");
                }
                let _ = writeln!(s, "var k = 0u;");
                let _ = writeln!(s, "for (; k + {u}u <= K; k += {u}u) {{");
                for q in 0..u {
                    let kk = format!("k + {q}u");
                    let idx = |j: u32| format!("bt_{j} + {kk}");
                    s.push_str(&step(&kk, &part, &idx));
                }
                let _ = writeln!(s, "}}");
                let _ = writeln!(s, "for (; k < K; k += 1u) {{");
                let idx = |j: u32| format!("bt_{j} + k");
                s.push_str(&step("k", &part, &idx));
                let _ = writeln!(s, "}}\n}}");
            }
        }
    }
    // Epilogue and stores.
    let pad_zero = matches!(spec.rows, RowSource::MoePairs { .. });
    for r in 0..rr {
        for j in 0..cc {
            let r_index = match spec.epilogue {
                Epilogue::AddResidual => format!("o_{r}_off + n_{j}"),
                _ => format!("n_{j}"),
            };
            let v = spec.epilogue.value(|mat| acc(mat, r, j), false, &r_index);
            if pad_zero {
                let _ = writeln!(
                    s,
                    "if (n_{j} < N) {{ out[o_{r}_off + n_{j}] = select(0.0, {v}, ok_{r}); }}"
                );
            } else {
                let _ = writeln!(
                    s,
                    "if (ok_{r} && n_{j} < N) {{ out[o_{r}_off + n_{j}] = {v}; }}"
                );
            }
        }
    }

    let x = GridDim::ceil("n", wg * cc);
    let y = match spec.rows {
        RowSource::Direct { .. } => GridDim::ceil("m", rr),
        _ => GridDim::ceil("blocks", 1),
    };
    let z = if batched {
        GridDim::ceil("batch", 1)
    } else {
        GridDim::one()
    };
    Ok(kb.finish(&s, Grid::xyz(x, y, z)))
}

/// The accumulator of output row `r`, column group `j` for right operand `mat`.
pub(crate) fn acc(mat: &str, r: u32, j: u32) -> String {
    match mat {
        "b_gate" => format!("g_{r}_{j}"),
        "b_up" => format!("u_{r}_{j}"),
        _ => format!("c_{r}_{j}"),
    }
}

/// The name of a loaded right-operand value of `mat`.
pub(crate) fn val(mat: &str) -> &'static str {
    match mat {
        "b_gate" => "wg",
        "b_up" => "wu",
        _ => "w",
    }
}

fn pname(mat: &str, part: &str) -> String {
    format!("{mat}{part}")
}
