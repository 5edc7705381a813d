//! The shared-memory tiled matrix product for GPUs: 256 invocations (16×16) per
//! workgroup, a `block × block` output tile, `depth`-deep slices of `a` and `b`
//! staged in workgroup memory between two barriers, `(block/16)²` outputs per
//! invocation (strided by 16 so neighbouring invocations touch neighbouring
//! shared-memory words). Same bindings and sizes as [`super::matmul`].

use crate::error::ShaderError;
use crate::wgsl::{wgsl, KernelBuilder, ScalarType, WgslWriter, ACTIVATIONS};
use seam_core::{Grid, GridDim, Kernel};

use super::accumulators::{acc, declare_accumulators, val};
use super::config::MatmulConfig;
use super::epilogue::Epilogue;
use super::layout::BLayout;
use super::parts::{part_binding, part_rows};
use super::tile::TiledTile;

/// Invocations per workgroup (16×16).
const INVOCATIONS: u32 = 256;
/// Invocations along each side of the output tile.
const SIDE: u32 = 16;

/// Generates the tiled kernel of `cfg`.
pub(crate) fn generate(cfg: &MatmulConfig, tile: TiledTile) -> Result<Kernel, ShaderError> {
    check(cfg, tile)?;
    let kb = declare(cfg, tile);
    let mut w = WgslWriter::new();
    write_prologue(&mut w, cfg, tile);
    write_k_loop(&mut w, cfg, tile);
    write_stores(&mut w, cfg, tile);
    let z = if cfg.batch.is_some() {
        GridDim::ceil("batch", 1)
    } else {
        GridDim::one()
    };
    let grid = Grid::xyz(
        GridDim::ceil("n", tile.block),
        GridDim::ceil("m", tile.block),
        z,
    );
    Ok(kb.finish(&w.finish(), grid))
}

/// Refuses tiles that do not divide among the invocations or overflow
/// workgroup memory, and a split batched operand.
fn check(cfg: &MatmulConfig, tile: TiledTile) -> Result<(), ShaderError> {
    let (block, depth) = (tile.block, tile.depth);
    let bad = |reason: &str| Err(ShaderError::config("matmul_tiled", reason));
    if block == 0 || block % SIDE != 0 || depth == 0 || (block * depth) % INVOCATIONS != 0 {
        return bad("block must be a positive multiple of 16 and block·depth a multiple of 256");
    }
    let tiles = 1 + cfg.epilogue.mats().len() as u32;
    if (tiles * block * depth * 4) > 16384 {
        return bad("tiles exceed 16 KiB of workgroup memory");
    }
    if cfg.b_split.parts > 1 && cfg.b_batched {
        return bad("a batched right operand cannot be split across bindings");
    }
    Ok(())
}

/// The kernel's sizes and bindings, the workgroup tiles and, per right operand
/// `mat`, `load_{mat}(row, col, width)`: the element of the stored matrix,
/// read from the part of the split that holds `row`.
fn declare(cfg: &MatmulConfig, tile: TiledTile) -> KernelBuilder {
    let name = format!(
        "matmul_tiled{}x{}{}",
        tile.block,
        tile.depth,
        cfg.name_suffix()
    );
    let mut kb = KernelBuilder::new(&name, INVOCATIONS);
    kb.size("m", cfg.m).size("n", cfg.n).size("k", cfg.k);
    if let Some(batch) = cfg.batch {
        kb.size("batch", batch);
    }
    kb.input("a", ScalarType::F32);
    let mats = cfg.epilogue.mats();
    let parts = cfg.b_split.parts.max(1);
    for mat in mats {
        for part in 0..parts {
            kb.input(&part_binding(mat, part, parts), ScalarType::F32);
        }
    }
    if cfg.epilogue.adds() {
        kb.input("r", ScalarType::F32);
    }
    kb.output("out", ScalarType::F32);
    if cfg.epilogue.gated().is_some() {
        kb.item(ACTIVATIONS);
    }
    let tile_len = tile.block * tile.depth;
    kb.item(format!("var<workgroup> tile_a: array<f32, {tile_len}>;"));
    for mat in mats {
        kb.item(format!(
            "var<workgroup> tile_{mat}: array<f32, {tile_len}>;"
        ));
        let mut load = WgslWriter::new();
        load.open(format_args!(
            "fn load_{mat}(row: u32, col: u32, width: u32) -> f32 {{"
        ));
        for part in 0..parts {
            let (lo, hi) = part_rows(&cfg.b_split, part);
            let element = format!(
                "{}[(row - {lo}u) * width + col]",
                part_binding(mat, part, parts)
            );
            if part + 1 < parts {
                wgsl!(load, "if (row < {hi}u) {{ return {element}; }}");
            } else {
                wgsl!(load, "return {element};");
            }
        }
        load.close();
        kb.item(load.finish());
    }
    kb
}

/// The invocation's place in the tile (`tx`, `ty`), the tile's first output
/// (`m0`, `n0`), the batch offsets and the zeroed accumulators.
fn write_prologue(w: &mut WgslWriter, cfg: &MatmulConfig, tile: TiledTile) {
    let block = tile.block;
    wgsl!(w, "let tx = lidx % {SIDE}u;");
    wgsl!(w, "let ty = lidx / {SIDE}u;");
    wgsl!(w, "let m0 = wid.y * {block}u;");
    wgsl!(w, "let n0 = wid.x * {block}u;");
    let batch = if cfg.batch.is_some() { "wid.z" } else { "0u" };
    wgsl!(w, "let bat = {batch};");
    wgsl!(w, "let a_boff = bat * M * K;");
    wgsl!(w, "let out_boff = bat * M * N;");
    let b_matrix = if cfg.b_batched { "bat" } else { "0u" };
    wgsl!(w, "let b_base = {b_matrix};");
    let per_side = block / SIDE;
    declare_accumulators(w, cfg.epilogue.mats(), per_side, per_side, "f32", "0.0");
}

/// The loop over K in steps of `depth`: stage the slices of `a` and `b` in the
/// workgroup tiles, then accumulate from them, with a barrier after each.
fn write_k_loop(w: &mut WgslWriter, cfg: &MatmulConfig, tile: TiledTile) {
    let (block, depth) = (tile.block, tile.depth);
    let mats = cfg.epilogue.mats();
    w.open(format_args!("for (var k0 = 0u; k0 < K; k0 += {depth}u) {{"));
    for load in 0..block * depth / INVOCATIONS {
        write_stage_a(w, tile, load);
        for mat in mats {
            write_stage_b(w, cfg, tile, mat, load);
        }
    }
    wgsl!(w, "workgroupBarrier();");
    w.open(format_args!(
        "for (var kk = 0u; kk < {depth}u; kk += 1u) {{"
    ));
    let per_side = block / SIDE;
    for i in 0..per_side {
        wgsl!(w, "let x_{i} = tile_a[kk * {block}u + ty + {}u];", i * SIDE);
    }
    for mat in mats {
        for j in 0..per_side {
            let value = val(mat);
            wgsl!(
                w,
                "let {value}_{j} = tile_{mat}[kk * {block}u + tx + {}u];",
                j * SIDE
            );
        }
        for i in 0..per_side {
            for j in 0..per_side {
                let acc = acc(mat, i, j);
                wgsl!(w, "{acc} = fma(x_{i}, {}_{j}, {acc});", val(mat));
            }
        }
    }
    w.close();
    wgsl!(w, "workgroupBarrier();");
    w.close();
}

/// The invocation's `load`-th element of the `a` slice (`tile_a[kk][mm]`, zero
/// outside `a`).
fn write_stage_a(w: &mut WgslWriter, tile: TiledTile, load: u32) {
    let (block, depth) = (tile.block, tile.depth);
    wgsl!(w, "{{ let idx = lidx + {}u;", load * INVOCATIONS);
    wgsl!(w, "  let mm = idx / {depth}u; let kk = idx % {depth}u;");
    wgsl!(
        w,
        "  var v = 0.0; if (m0 + mm < M && k0 + kk < K) {{ v = a[a_boff + (m0 + mm) * K + k0 + kk]; }}"
    );
    wgsl!(w, "  tile_a[kk * {block}u + mm] = v; }}");
}

/// The invocation's `load`-th element of the slice of `mat`
/// (`tile_{mat}[kk][nn]`, zero outside `b`).
fn write_stage_b(w: &mut WgslWriter, cfg: &MatmulConfig, tile: TiledTile, mat: &str, load: u32) {
    let (block, depth) = (tile.block, tile.depth);
    wgsl!(w, "{{ let idx = lidx + {}u;", load * INVOCATIONS);
    match cfg.b_layout {
        BLayout::RowMajor => {
            wgsl!(w, "  let kk = idx / {block}u; let nn = idx % {block}u;");
            wgsl!(
                w,
                "  var v = 0.0; if (n0 + nn < N && k0 + kk < K) {{ v = load_{mat}(b_base * K + k0 + kk, n0 + nn, N); }}"
            );
        }
        BLayout::Transposed => {
            wgsl!(w, "  let nn = idx / {depth}u; let kk = idx % {depth}u;");
            wgsl!(
                w,
                "  var v = 0.0; if (n0 + nn < N && k0 + kk < K) {{ v = load_{mat}(b_base * N + n0 + nn, k0 + kk, K); }}"
            );
        }
    }
    wgsl!(w, "  tile_{mat}[kk * {block}u + nn] = v; }}");
}

/// Applies the epilogue to every accumulator and stores the outputs inside `out`.
fn write_stores(w: &mut WgslWriter, cfg: &MatmulConfig, tile: TiledTile) {
    let per_side = tile.block / SIDE;
    for i in 0..per_side {
        for j in 0..per_side {
            let (row, col) = (i * SIDE, j * SIDE);
            let index = format!("out_boff + (m0 + ty + {row}u) * N + n0 + tx + {col}u");
            let addend = match cfg.epilogue {
                Epilogue::AddResidual => index.clone(),
                _ => format!("n0 + tx + {col}u"),
            };
            let value = cfg.epilogue.value(|mat| acc(mat, i, j), false, &addend);
            wgsl!(
                w,
                "if (m0 + ty + {row}u < M && n0 + tx + {col}u < N) {{ out[{index}] = {value}; }}"
            );
        }
    }
}
