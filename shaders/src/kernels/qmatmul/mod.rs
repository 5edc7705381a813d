//! Products whose right operand is a weight stored in a [`WeightFormat`](seam_core::WeightFormat)
//! (`f32`, `f16`, `bf16`, `q8_0`, `q4_0`, `q4_1`, `q4_k`) in the row-plane
//! layout of [`seam_core::quant`]: `out[M, N] = a[M, K] · W`, row `n` of the
//! stored weight holding output column `n`.
//!
//! Built for decode, where every weight is streamed once per token and memory
//! bandwidth sets the speed: each invocation decodes a chunk of a weight row in
//! registers ([`chunk_elems`] weights: a block, or two `q4_k` sub-blocks),
//! dots it with the matching values of up to `rows` rows of `a` at once and
//! applies each block's scale once per partial dot product; the invocations of
//! one column ([`QuantTile::threads`]) take consecutive chunks, so they read
//! consecutive words, and their partial sums are then reduced. More rows than
//! `rows` are further workgroups along y (prefill works, not at peak).
//!
//! Bindings, in order: `a` (f32 `[M, K]`, read as `vec4`s), `w` (u32 words, `N`
//! rows of `format.row_words(K)`, declared `array<vec4<u32>>` and read 16
//! bytes at a time: rows are padded to whole `vec4`s) — or `w_gate`, `w_up`
//! with a gated [`Epilogue`] —, `r` with an add epilogue (f32, `[N]` or
//! `[M, N]`), `out` (f32 `[M, N]`), then `params`. Sizes: `m`, `n`, `k` (`k`
//! always fixed).
//! Accumulation in f32.
//!
//! The same core generates the grouped MoE expert products (see
//! [`QuantMoeConfig`]): rows of `a` taken through a routing plan, weights read
//! from the block's expert in a stack.

mod config;
mod dequant;
mod grouped;
mod reduce;

pub use config::{QuantMatmulConfig, QuantTile};
use config::{MAX_COL_REPS, MAX_ROWS};
pub use dequant::chunk_elems;
pub use grouped::{moe_down_quant, moe_down_to_tokens_quant, moe_gate_up_quant, QuantMoeConfig};

use seam_core::{Dim, Grid, GridDim, Kernel};

use crate::error::ShaderError;
use crate::kernels::matmul::{acc, write_block_start, Epilogue};
use crate::wgsl::{wgsl, KernelBuilder, WgslWriter, ACTIVATIONS};

use dequant::{helpers, write_chunk, ScaleVectors, SubBlock, WEIGHT_BINDING_TYPE};
use grouped::Grouping;
use reduce::Reduction;

/// Workgroup memory every device offers (WebGPU's minimum).
const WORKGROUP_BYTES: u64 = 16384;

/// Generates the product kernel.
pub fn quant_matmul(cfg: &QuantMatmulConfig) -> Result<Kernel, ShaderError> {
    generate(cfg, &Grouping::Plain, "qmatmul")
}

/// Generates the product `cfg` over the rows `grouping` gives, named
/// `{prefix}_{format}_r…t…c…{epilogue}`.
fn generate(
    cfg: &QuantMatmulConfig,
    grouping: &Grouping,
    prefix: &str,
) -> Result<Kernel, ShaderError> {
    let row_words = check(cfg, grouping.matrices())?;
    let tile = cfg.tile;
    let mats = cfg.epilogue.mats();
    let reduction = Reduction::of(&tile);
    let subgroup = tile.subgroup.map(|s| format!("s{s}")).unwrap_or_default();
    let tag = |n: u32, t: &str| {
        if n > 1 {
            format!("{t}{n}")
        } else {
            String::new()
        }
    };
    let reps = tag(tile.col_reps, "x") + &tag(tile.one_row_reps, "o");
    let name = format!(
        "{prefix}_{}_r{}t{}c{}{reps}{subgroup}{}",
        cfg.format.name(),
        tile.rows,
        tile.threads,
        tile.cols,
        cfg.epilogue.tag()
    );
    let mut kb = KernelBuilder::new(&name, tile.workgroup());
    grouping.declare_row_sizes(&mut kb, cfg.m);
    kb.size("n", cfg.n).size("k", Dim::Fixed(cfg.k));
    kb.input_typed("a", "array<vec4<f32>>");
    grouping.declare_plan(&mut kb);
    for mat in mats {
        kb.input_typed(&weight_binding(mat), WEIGHT_BINDING_TYPE);
    }
    if cfg.epilogue.adds() {
        kb.input_typed("r", "array<f32>");
    }
    kb.output_typed("out", "array<f32>");
    if cfg.epilogue.gated().is_some() {
        kb.item(ACTIVATIONS);
    }
    for helper in helpers(cfg.format) {
        kb.item(helper);
    }
    let accs: Vec<String> = mats
        .iter()
        .flat_map(|mat| {
            (0..tile.rows).flat_map(move |r| (0..tile.col_reps).map(move |j| acc(mat, r, j)))
        })
        .collect();
    if let Some(item) = reduction.item(&tile, accs.len() as u32) {
        kb.item(item);
    }
    let one_row = tile.one_row().filter(|_| grouping.skips_missing_rows());
    if broadcast_lanes(&tile)
        .or(one_row.and_then(|t| broadcast_lanes(&t)))
        .is_some()
    {
        kb.subgroups();
    }
    let mut w = WgslWriter::new();
    if let Some(one) = one_row {
        let one_cfg = QuantMatmulConfig {
            tile: one,
            ..cfg.clone()
        };
        w.open("if (M == 1u) {");
        wgsl!(w, "if (lidx >= {}u) {{ return; }}", one.workgroup());
        write_body(&mut w, &one_cfg, grouping, row_words, &[]);
        wgsl!(w, "return;");
        w.close();
    }
    write_body(&mut w, cfg, grouping, row_words, &accs);
    let grid = Grid::xyz(
        GridDim::ceil("n", tile.cols * tile.col_reps),
        grouping.grid_y(tile.rows),
        GridDim::one(),
    );
    Ok(kb.finish(&w.finish(), grid))
}

/// The kernel's body for `cfg`'s tile: set-up, the chunk loop, the reduction
/// of `accs` (the tile's accumulators, when it has one) and the stores.
fn write_body(
    w: &mut WgslWriter,
    cfg: &QuantMatmulConfig,
    grouping: &Grouping,
    row_words: u64,
    accs: &[String],
) {
    write_setup(w, cfg, grouping, row_words);
    write_chunk_loop(w, cfg, grouping.skips_missing_rows());
    Reduction::of(&cfg.tile).write(w, &cfg.tile, accs);
    write_stores(w, cfg, grouping);
}

/// The binding of right operand `mat` (`b`, `b_gate`, `b_up` in the shared
/// epilogue's terms): `w`, `w_gate`, `w_up`.
fn weight_binding(mat: &str) -> String {
    format!("w{}", mat.strip_prefix('b').unwrap_or(mat))
}

/// Refuses configurations the kernel cannot serve (the weight binding holds
/// `matrices` weights); returns the row's words.
fn check(cfg: &QuantMatmulConfig, matrices: u64) -> Result<u64, ShaderError> {
    let kernel = format!("qmatmul_{}", cfg.format.name());
    let bad = |r: String| Err(ShaderError::config(&kernel, r));
    let tile = cfg.tile;
    let chunk = chunk_elems(cfg.format);
    let Some(row_words) = cfg.format.row_words(u64::from(cfg.k)) else {
        return bad(format!(
            "K = {} is not a positive multiple of the {}-weight block",
            cfg.k,
            cfg.format.block_elems()
        ));
    };
    if cfg.k % chunk != 0 {
        return bad(format!(
            "K = {} is not a multiple of the {chunk}-weight chunk this kernel reads",
            cfg.k
        ));
    }
    if !(1..=MAX_ROWS).contains(&tile.rows) {
        return bad(format!("rows = {} is not in 1..={MAX_ROWS}", tile.rows));
    }
    if !tile.threads.is_power_of_two() || tile.cols == 0 || tile.workgroup() > 1024 {
        return bad(format!(
            "threads = {} (a power of two) × cols = {} must be 1..=1024 invocations",
            tile.threads, tile.cols
        ));
    }
    if !(1..=MAX_COL_REPS).contains(&tile.col_reps) || (tile.col_reps > 1 && tile.rows > 1) {
        return bad(format!(
            "col_reps = {} must be 1..={MAX_COL_REPS}, and 1 with more than one row",
            tile.col_reps
        ));
    }
    if let Some(sg) = tile.subgroup.filter(|s| !s.is_power_of_two()) {
        return bad(format!("subgroup size {sg} is not a power of two"));
    }
    if let Some(one) = tile.one_row() {
        let whole = |n: u32| tile.subgroup.is_none_or(|sg| n % sg == 0);
        if tile.rows == 1
            || tile.threads != 1
            || !(2..=MAX_COL_REPS).contains(&tile.one_row_reps)
            || tile.cols % tile.one_row_reps != 0
            || !whole(one.cols)
        {
            return bad(format!(
                "one_row_reps = {} needs more than one row, one thread per column and \
                 cols = {} a multiple of it in whole subgroups",
                tile.one_row_reps, tile.cols
            ));
        }
    } else if tile.one_row_reps != 1 {
        return bad("one_row_reps = 0".into());
    }
    let accs = tile.rows * cfg.epilogue.mats().len() as u32;
    let shared = Reduction::of(&tile).workgroup_bytes(&tile, accs);
    if shared > WORKGROUP_BYTES {
        return bad(format!(
            "the reduction needs {shared} bytes of workgroup memory (at most {WORKGROUP_BYTES})"
        ));
    }
    if let Dim::Fixed(n) = cfg.n {
        let bytes = matrices * u64::from(n) * row_words * 4;
        if bytes > cfg.max_binding_bytes {
            return bad(format!(
                "the weight is {bytes} bytes, over the {}-byte binding limit",
                cfg.max_binding_bytes
            ));
        }
    }
    Ok(row_words)
}

/// The invocation's thread `t`, per column rep `j` its column `col_{j}` and
/// the first word `wrow_{j}` of its weight row (the column clamped into
/// range), the block `rb` (an MoE block returns early when it has no expert,
/// else sets `e`), each row's guard `ok_{r}`, `vec4` offset `a_{r}` in `a` and
/// output offset `o_{r}`, and the zeroed accumulators.
fn write_setup(w: &mut WgslWriter, cfg: &QuantMatmulConfig, grouping: &Grouping, row_words: u64) {
    let tile = cfg.tile;
    wgsl!(w, "let t = lidx % {}u;", tile.threads);
    for j in 0..tile.col_reps {
        wgsl!(
            w,
            "let col_{j} = wid.x * {}u + {}u + lidx / {}u;",
            tile.cols * tile.col_reps,
            j * tile.cols,
            tile.threads
        );
    }
    wgsl!(w, "let rb = wid.y;");
    write_block_start(w, &grouping.source(cfg.m), tile.rows);
    for j in 0..tile.col_reps {
        wgsl!(
            w,
            "let wrow_{j} = ({}min(col_{j}, N - 1u)) * {row_words}u;",
            grouping.first_row()
        );
    }
    for r in 0..tile.rows {
        grouping.write_row(w, r, tile.rows);
    }
    for mat in cfg.epilogue.mats() {
        for r in 0..tile.rows {
            for j in 0..tile.col_reps {
                wgsl!(w, "var {}: f32 = 0.0;", acc(mat, r, j));
            }
        }
    }
}

/// The loop over the row's chunks, `threads` apart: decode every weight's
/// chunk, load each row's matching `vec4`s of `a` and accumulate (see
/// [`write_chunk_body`]). With one invocation per column and a format whose scales lie
/// in a plane of their own, the loop runs over groups of the blocks one
/// `vec4` of scales covers, loading that `vec4` once per group (a `q4_0`
/// block then costs one load and an eighth instead of two). With
/// `skip_missing`, rows past `M` (a guard uniform over the workgroup) skip
/// their loads and dots, so a tile of 8 rows run on one row (a batched
/// decode step of one sequence) costs about what a one-row tile does.
fn write_chunk_loop(w: &mut WgslWriter, cfg: &QuantMatmulConfig, skip_missing: bool) {
    let chunks = cfg.k / chunk_elems(cfg.format);
    let nb = u64::from(cfg.k) / cfg.format.block_elems();
    let hoisted = ScaleVectors::of(cfg.format, nb).filter(|_| cfg.tile.threads == 1);
    match hoisted {
        Some(scales) => {
            let g = scales.blocks;
            w.open(format_args!(
                "for (var cg = 0u; cg < {}u; cg += 1u) {{",
                chunks.div_ceil(g)
            ));
            for j in 0..cfg.tile.col_reps {
                for mat in cfg.epilogue.mats() {
                    let wrow = format!("wrow_{j}");
                    scales.write_load(w, (&weight_binding(mat), &prefix(mat, j), &wrow));
                }
            }
            w.open(format_args!(
                "for (var cj = 0u; cj < min({g}u, {chunks}u - cg * {g}u); cj += 1u) {{"
            ));
            wgsl!(w, "let ci = cg * {g}u + cj;");
            write_chunk_body(w, cfg, skip_missing, true);
            w.close();
            w.close();
        }
        None => {
            w.open(format_args!(
                "for (var ci = t; ci < {chunks}u; ci += {}u) {{",
                cfg.tile.threads
            ));
            write_chunk_body(w, cfg, skip_missing, false);
            w.close();
        }
    }
}

/// One chunk `ci` (see [`write_chunk_loop`]); `hoisted`: scales from `{p}sv`.
/// Per column rep, the weights' chunks are decoded, then each row loads its
/// values of `a` (at the first rep: several reps only come with one row,
/// whose loads then serve them all) and accumulates, under its guard.
fn write_chunk_body(
    w: &mut WgslWriter,
    cfg: &QuantMatmulConfig,
    skip_missing: bool,
    hoisted: bool,
) {
    let groups = chunk_elems(cfg.format) / 4;
    let nb = u64::from(cfg.k) / cfg.format.block_elems();
    let mats = cfg.epilogue.mats();
    for j in 0..cfg.tile.col_reps {
        let wrow = format!("wrow_{j}");
        let decoded: Vec<Vec<SubBlock>> = mats
            .iter()
            .map(|mat| {
                let at = (weight_binding(mat), prefix(mat, j));
                write_chunk(w, cfg.format, (&at.0, &at.1, &wrow), nb, hoisted)
            })
            .collect();
        for r in 0..cfg.tile.rows {
            let guarded = skip_missing && r > 0;
            if guarded {
                w.open(format_args!("if (ok_{r}) {{"));
            }
            if j == 0 {
                write_a_loads(w, &cfg.tile, r, groups);
            }
            for (mat, subs) in mats.iter().zip(&decoded) {
                for sub in subs {
                    let value = sub_block_dot(sub, &prefix(mat, j), r);
                    wgsl!(w, "{} += {value};", acc(mat, r, j));
                }
            }
            if guarded {
                w.close();
            }
        }
    }
}

/// `x_{r}_{g}`: the `vec4` groups of row `r` of `a` matching the chunk. With
/// one invocation per column and a subgroup size `S`, every lane of a
/// subgroup is at the same chunk, so lane `l` loads group `l` (and `l + S`,
/// …) and `subgroupBroadcast` hands each group to all lanes: on lavapipe,
/// where every load is a per-lane loop, that divides `a`'s loads by `S`.
/// Otherwise each invocation loads its groups itself.
fn write_a_loads(w: &mut WgslWriter, tile: &QuantTile, r: u32, groups: u32) {
    wgsl!(w, "let ab_{r} = a_{r} + ci * {groups}u;");
    match broadcast_lanes(tile) {
        Some(sg) => {
            for i in 0..groups.div_ceil(sg) {
                let last = groups - 1;
                wgsl!(
                    w,
                    "let av_{r}_{i} = a[ab_{r} + min({}u + sgid, {last}u)];",
                    i * sg
                );
            }
            for g in 0..groups {
                wgsl!(
                    w,
                    "let x_{r}_{g} = subgroupBroadcast(av_{r}_{}, {}u);",
                    g / sg,
                    g % sg
                );
            }
        }
        None => {
            for g in 0..groups {
                wgsl!(w, "let x_{r}_{g} = a[ab_{r} + {g}u];");
            }
        }
    }
}

/// The subgroup size when `a`'s loads are shared by broadcasts.
fn broadcast_lanes(tile: &QuantTile) -> Option<u32> {
    tile.subgroup.filter(|_| tile.threads == 1)
}

/// The register prefix of right operand `mat`'s decoded groups at column rep `j`.
fn prefix(mat: &str, j: u32) -> String {
    format!("q{}{j}_", weight_binding(mat))
}

/// `d·Σ a·q + m·Σ a` over one sub-block for row `r`.
fn sub_block_dot(sub: &SubBlock, p: &str, r: u32) -> String {
    let range = sub.first..sub.first + sub.groups;
    let dots: Vec<String> = range
        .clone()
        .map(|g| format!("dot(x_{r}_{g}, {p}{g})"))
        .collect();
    let mut value = match &sub.scale {
        Some(d) => format!("{d} * ({})", dots.join(" + ")),
        None => dots.join(" + "),
    };
    if let Some(m) = &sub.offset {
        let xs: Vec<String> = range.map(|g| format!("x_{r}_{g}")).collect();
        value = format!("{value} + ({m}) * dot({}, vec4<f32>(1.0))", xs.join(" + "));
    }
    value
}

/// Each column's first invocation applies the epilogue and stores each row
/// (gate‖up's padding rows store zeros).
fn write_stores(w: &mut WgslWriter, cfg: &QuantMatmulConfig, grouping: &Grouping) {
    for j in 0..cfg.tile.col_reps {
        w.open(format_args!("if (t == 0u && col_{j} < N) {{"));
        for r in 0..cfg.tile.rows {
            let index = format!("o_{r} + col_{j}");
            let addend = match cfg.epilogue {
                Epilogue::AddResidual => index.clone(),
                _ => format!("col_{j}"),
            };
            let value = cfg.epilogue.value(|mat| acc(mat, r, j), false, &addend);
            if grouping.pads_with_zeros() {
                wgsl!(w, "out[{index}] = select(0.0, {value}, ok_{r});");
            } else {
                wgsl!(w, "if (ok_{r}) {{ out[{index}] = {value}; }}");
            }
        }
        w.close();
    }
}
