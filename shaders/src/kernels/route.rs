//! Top-k and router decisions on the device (no read-back).
//!
//! One invocation per row; selection is `k` passes over the row, each picking
//! the best element strictly after the previous pick in the order "larger value
//! first, lower index first among equals" — so ties go to the lower index, and
//! no scratch memory is needed. NaNs are never selected; when fewer than `k`
//! elements are selectable the remaining slots get index −1 (and value −inf for
//! `topk`, weight 0 for `route`).

use crate::error::ShaderError;
use crate::wgsl::{wgsl, KernelBuilder, ScalarType, WgslWriter};
use seam_core::DeviceLimits;
use seam_core::{Dim, Grid, Kernel, RouteMode};

/// One selection pass: finds `(bv, bi)`, the best element of row
/// `base..base+E` (values from `value`, an expression of `e`) strictly after
/// `(pv, pi)`.
fn write_select_pass(w: &mut WgslWriter, value: &str) {
    w.line("var bv = bitcast<f32>(0xff800000u);");
    w.line("var bi = -1i;");
    w.open("for (var e = 0u; e < E; e += 1u) {");
    wgsl!(w, "let v = {value};");
    w.line("let ie = i32(e);");
    w.line("let after = v < pv || (v == pv && ie > pi);");
    w.line("let better = bi < 0i || v > bv || (v == bv && ie < bi);");
    w.line("if (after && better && v == v) { bv = v; bi = ie; }");
    w.close();
}

/// Declares the sizes `rows` and `e`; writes the invocation's row, where its
/// inputs (`base`) and its `k` outputs (`obase`) start, and the previous pick
/// `(pv, pi)`, before any element.
fn write_row_prologue(
    w: &mut WgslWriter,
    kb: &mut KernelBuilder,
    workgroup: u32,
    k: u32,
    experts: Dim,
) {
    kb.size("rows", Dim::Dynamic).size("e", experts);
    wgsl!(w, "let row = group * {workgroup}u + lidx;");
    w.line("if (row >= ROWS) { return; }");
    w.line("let base = row * E;");
    wgsl!(w, "let obase = row * {k}u;");
    w.line("var pv = bitcast<f32>(0x7f800000u);");
    w.line("var pi = -1i;");
}

/// `values[row, j], indices[row, j]` = the `k` largest of `x[row, :]`, descending.
/// Bindings `x` (f32 `[rows, e]`), `values` (f32 `[rows, k]`), `indices` (i32
/// `[rows, k]`). Sizes `rows`, `e`.
pub fn topk(k: u32, experts: Dim, limits: &DeviceLimits) -> Result<Kernel, ShaderError> {
    if k == 0 {
        return Err(ShaderError::config("topk", "k must be positive"));
    }
    let workgroup = limits.clamp_workgroup(64);
    let mut kb = KernelBuilder::new(format!("topk{k}"), workgroup);
    let mut w = WgslWriter::new();
    write_row_prologue(&mut w, &mut kb, workgroup, k, experts);
    kb.input("x", ScalarType::F32)
        .output("values", ScalarType::F32)
        .output("indices", ScalarType::I32);
    wgsl!(w, "for (var j = 0u; j < {k}u; j += 1u) {{");
    write_select_pass(&mut w, "x[base + e]");
    w.line("values[obase + j] = bv;");
    w.line("indices[obase + j] = bi;");
    w.line("if (bi >= 0i) { pv = bv; pi = bi; }");
    w.line("}");
    Ok(kb.finish(&w.finish(), Grid::linear(&["rows"], workgroup)))
}

/// Router decision per token. Bindings `logits` (f32 `[rows, e]`), for
/// [`RouteMode::Take`] also `scores` (f32 `[rows, e]`), then `ids` (i32
/// `[rows, k]`) and `weights` (f32 `[rows, k]`). Sizes `rows`, `e`. With
/// `renorm` (for [`RouteMode::SoftmaxTopk`]), the k weights are divided by
/// their sum.
pub fn route(
    k: u32,
    mode: RouteMode,
    renorm: bool,
    experts: Dim,
    limits: &DeviceLimits,
) -> Result<Kernel, ShaderError> {
    if k == 0 {
        return Err(ShaderError::config("route", "k must be positive"));
    }
    let workgroup = limits.clamp_workgroup(64);
    let tag = match (mode, renorm) {
        (RouteMode::SoftmaxTopk, true) => "softmax_topk_renorm",
        (mode, _) => mode.name(),
    };
    let mut kb = KernelBuilder::new(format!("route{k}_{tag}"), workgroup);
    let mut w = WgslWriter::new();
    write_row_prologue(&mut w, &mut kb, workgroup, k, experts);
    kb.input("logits", ScalarType::F32);
    if mode == RouteMode::Take {
        kb.input("scores", ScalarType::F32);
    }
    kb.output("ids", ScalarType::I32)
        .output("weights", ScalarType::F32);
    let value = match mode {
        RouteMode::SoftmaxTopk => {
            write_softmax(&mut w);
            "exp(logits[base + e] - mx) * inv"
        }
        _ => "logits[base + e]",
    };
    w.line("var total = 0.0;");
    w.line("var first = 0.0;");
    wgsl!(w, "for (var j = 0u; j < {k}u; j += 1u) {{");
    write_select_pass(&mut w, value);
    w.line("ids[obase + j] = bi;");
    write_weight(&mut w, mode);
    w.line("weights[obase + j] = wv;");
    w.line("total += wv;");
    w.line("if (bi >= 0i) { pv = bv; pi = bi; }");
    w.line("}");
    let normalise = match mode {
        RouteMode::SoftmaxTopk => renorm,
        RouteMode::TopkSoftmax => true,
        RouteMode::Take => false,
    };
    if normalise {
        w.open("if (total > 0.0) {");
        wgsl!(
            w,
            "for (var j = 0u; j < {k}u; j += 1u) {{ weights[obase + j] = weights[obase + j] / total; }}"
        );
        w.close();
    }
    Ok(kb.finish(&w.finish(), Grid::linear(&["rows"], workgroup)))
}

/// The row's softmax: its max `mx` and `inv`, the reciprocal of the sum of
/// exponentials.
fn write_softmax(w: &mut WgslWriter) {
    w.line("var mx = bitcast<f32>(0xff800000u);");
    w.line("for (var e = 0u; e < E; e += 1u) { mx = max(mx, logits[base + e]); }");
    w.line("var se = 0.0;");
    w.line("for (var e = 0u; e < E; e += 1u) { se += exp(logits[base + e] - mx); }");
    w.line("let inv = 1.0 / se;");
}

/// `wv`, the weight of the pick `(bv, bi)` (0 when nothing was selectable).
fn write_weight(w: &mut WgslWriter, mode: RouteMode) {
    match mode {
        RouteMode::SoftmaxTopk => w.line("let wv = select(0.0, bv, bi >= 0i);"),
        RouteMode::TopkSoftmax => {
            // Stable softmax over the selected logits: the first pick is the max.
            w.line("if (j == 0u) { first = bv; }");
            w.line("let wv = select(0.0, exp(bv - first), bi >= 0i);");
        }
        RouteMode::Take => {
            w.line("let wv = select(0.0, scores[base + u32(max(bi, 0i))], bi >= 0i);")
        }
    }
}
