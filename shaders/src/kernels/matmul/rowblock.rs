//! The scalar row-blocked core: every invocation loads the block's `a` values
//! itself — the same rows for every invocation, so the loads are
//! workgroup-uniform (on a CPU device such as lavapipe, scalar loads broadcast
//! to all SIMD lanes) — and accumulates in registers; the K loop is unrolled
//! `unroll` times. No workgroup memory, no barriers.

use crate::error::ShaderError;
use crate::wgsl::{wgsl, WgslWriter};
use seam_core::Kernel;

use super::accumulators::{declare_accumulators, write_accumulate, write_b_loads};
use super::blocked::{
    check_split, declare, grid, open_transposed_part, write_block_start, write_columns,
    write_padded_row_output, write_part_k_range, write_row_pair, write_stores, BindingTypes,
    OutputStore, RowBlockedSpec, RowSource, SCALARS,
};
use super::layout::BLayout;
use super::tile::RowTile;

/// Every binding holds `f32`s.
const TYPES: BindingTypes = BindingTypes {
    a: SCALARS,
    b: SCALARS,
    addend: SCALARS,
    out: SCALARS,
};

/// Generates the kernel of `spec` with the scalar tile `tile`.
pub(crate) fn generate(spec: &RowBlockedSpec, tile: RowTile) -> Result<Kernel, ShaderError> {
    check(spec, &tile)?;
    let kb = declare(spec, tile.workgroup, &TYPES);
    let mut w = WgslWriter::new();
    write_row_offsets(&mut w, spec, &tile);
    write_columns(&mut w, "col0", tile.cols, tile.workgroup, "N");
    let mats = spec.epilogue.mats();
    declare_accumulators(&mut w, mats, tile.rows, tile.cols, "f32", "0.0");
    match spec.b.layout {
        BLayout::RowMajor => write_row_major_k_loops(&mut w, spec, &tile),
        BLayout::Transposed => write_transposed_k_loops(&mut w, spec, &tile),
    }
    let index = |r: u32, j: u32| format!("o_{r}_off + n_{j}");
    let store = OutputStore {
        index: &index,
        limit: "N",
        zero: "0.0",
        vec4: false,
    };
    write_stores(&mut w, spec, tile.rows, tile.cols, &store);
    let col_block = tile.workgroup * tile.cols;
    Ok(kb.finish(&w.finish(), grid(spec, col_block, tile.rows)))
}

/// Refuses empty tiles, more than 128 accumulators and splits the core cannot read.
fn check(spec: &RowBlockedSpec, tile: &RowTile) -> Result<(), ShaderError> {
    let bad = |r: &str| Err(ShaderError::config(&spec.name, r.to_string()));
    if tile.rows == 0 || tile.cols == 0 || tile.workgroup == 0 || tile.unroll == 0 {
        return bad("tile sizes must be positive");
    }
    if tile.rows * tile.cols * spec.epilogue.mats().len() as u32 > 128 {
        return bad("more than 128 accumulators per invocation");
    }
    check_split(spec, tile.workgroup * tile.cols, 1)
}

/// The invocation's first column `col0`, the block `rb`, the batch entry `bat`
/// and, per output row `r`: `ok_{r}` (whether it is stored), `a_{r}_off` (where
/// its `a` row starts, clamped in range) and `o_{r}_off` (where its output row
/// starts).
fn write_row_offsets(w: &mut WgslWriter, spec: &RowBlockedSpec, tile: &RowTile) {
    let rows = tile.rows;
    wgsl!(w, "let lane = lid.x;");
    wgsl!(
        w,
        "let col0 = wid.x * {}u + lane;",
        tile.workgroup * tile.cols
    );
    wgsl!(w, "let rb = wid.y;");
    let batched = spec.batch.is_some();
    if batched {
        wgsl!(w, "let bat = wid.z;");
    }
    write_block_start(w, &spec.rows, rows);
    match &spec.rows {
        RowSource::Direct { .. } => {
            let a_offset = if batched { "bat * M * K" } else { "0u" };
            wgsl!(w, "let a_boff = {a_offset};");
            let out_offset = if batched { "bat * M * N" } else { "0u" };
            wgsl!(w, "let out_boff = {out_offset};");
            for r in 0..rows {
                wgsl!(w, "let ok_{r} = m0 + {r}u < M;");
                wgsl!(w, "let a_{r}_off = a_boff + min(m0 + {r}u, M - 1u) * K;");
                wgsl!(w, "let o_{r}_off = out_boff + (m0 + {r}u) * N;");
            }
        }
        RowSource::MoePairs { .. } => {
            for r in 0..rows {
                write_row_pair(w, r, rows);
                wgsl!(w, "let a_{r}_off = select(0u, p_{r} / TOPK, ok_{r}) * K;");
                wgsl!(w, "let o_{r}_off = (rb * {rows}u + {r}u) * N;");
            }
        }
        RowSource::MoePairsToTokens { .. } => {
            for r in 0..rows {
                write_row_pair(w, r, rows);
                wgsl!(w, "let t_{r} = select(0u, p_{r} / TOPK, ok_{r});");
                wgsl!(w, "let a_{r}_off = t_{r} * K;");
                wgsl!(w, "let o_{r}_off = t_{r} * N;");
            }
        }
        RowSource::MoePadded | RowSource::MoePaddedToTokens { .. } => {
            for r in 0..rows {
                wgsl!(w, "let a_{r}_off = (rb * {rows}u + {r}u) * K;");
                write_padded_row_output(w, &spec.rows, r, rows, &format!("o_{r}_off"));
            }
        }
    }
}

/// The K loops over a row-major `b[(experts|batch)·K, N]`, part by part: part
/// `p` of a split holds stored rows `[p·rows_per_part, (p+1)·rows_per_part)`.
fn write_row_major_k_loops(w: &mut WgslWriter, spec: &RowBlockedSpec, tile: &RowTile) {
    wgsl!(w, "let row0 = {} * K;", spec.b_matrix());
    for part in 0..spec.b.split.parts {
        wgsl!(w, "{{");
        write_part_k_range(w, &spec.b.split, part);
        let b_index = |k: &str, j: u32| format!("(prow + {k}) * N + nc_{j}");
        write_unrolled_k_loop(w, spec, tile, part, ("k_lo", "k_hi"), &b_index);
        wgsl!(w, "}}");
    }
}

/// The K loops over a transposed `b[(experts|batch)·N, K]`: with a split, only
/// the part holding this workgroup's columns (uniform, checked) runs.
fn write_transposed_k_loops(w: &mut WgslWriter, spec: &RowBlockedSpec, tile: &RowTile) {
    wgsl!(w, "let nrow0 = {} * N;", spec.b_matrix());
    let split = &spec.b.split;
    for part in 0..split.parts {
        open_transposed_part(w, split, part, tile.workgroup * tile.cols);
        let first_row = u64::from(part) * u64::from(split.rows_per_part);
        for j in 0..tile.cols {
            wgsl!(w, "let bt_{j} = (nrow0 + nc_{j} - {first_row}u) * K;");
        }
        let b_index = |k: &str, j: u32| format!("bt_{j} + {k}");
        write_unrolled_k_loop(w, spec, tile, part, ("0u", "K"), &b_index);
        wgsl!(w, "}}");
    }
}

/// `var k` running over `[start, end)`: a loop of `unroll` steps, then one of
/// single steps for the rest. `b_index(k, j)` is the element of `b` at `k` for
/// column `j`.
fn write_unrolled_k_loop(
    w: &mut WgslWriter,
    spec: &RowBlockedSpec,
    tile: &RowTile,
    part: u32,
    (start, end): (&str, &str),
    b_index: &dyn Fn(&str, u32) -> String,
) {
    let unroll = tile.unroll;
    wgsl!(w, "var k = {start};");
    wgsl!(w, "for (; k + {unroll}u <= {end}; k += {unroll}u) {{");
    for step in 0..unroll {
        write_k_step(w, spec, tile, part, &format!("k + {step}u"), b_index);
    }
    wgsl!(w, "}}");
    wgsl!(w, "for (; k < {end}; k += 1u) {{");
    write_k_step(w, spec, tile, part, "k", b_index);
    wgsl!(w, "}}");
}

/// One k step: loads the `b` values of every column, then each row's `a`
/// value, and accumulates their products.
fn write_k_step(
    w: &mut WgslWriter,
    spec: &RowBlockedSpec,
    tile: &RowTile,
    part: u32,
    k: &str,
    b_index: &dyn Fn(&str, u32) -> String,
) {
    let mats = spec.epilogue.mats();
    let parts = (part, spec.b.split.parts);
    wgsl!(w, "{{");
    write_b_loads(w, mats, parts, tile.cols, &|j| b_index(k, j));
    for r in 0..tile.rows {
        wgsl!(w, "let x_{r} = a[a_{r}_off + {k}];");
        write_accumulate(w, mats, r, tile.cols, &|acc, value| {
            format!("fma(x_{r}, {value}, {acc})")
        });
    }
    wgsl!(w, "}}");
}
