//! Top-k and router decisions on the device (no read-back).
//!
//! One invocation per row; selection is `k` passes over the row, each picking
//! the best element strictly after the previous pick in the order "larger value
//! first, lower index first among equals" — so ties go to the lower index, and
//! no scratch memory is needed. NaNs are never selected; when fewer than `k`
//! elements are selectable the remaining slots get index −1 (and value −inf for
//! `topk`, weight 0 for `route`).

use std::fmt::Write as _;

use crate::error::ShaderError;
use crate::kernel::{Dim, Grid, Kernel};
use crate::limits::DeviceLimits;
use crate::wgsl::{KernelBuilder, ScalarType};

/// How `route` derives ids and weights (the IR's route modes).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum RouteMode {
    /// `p = softmax(logits)`; ids = top-k of `p`; weights `p[ids]`, divided by
    /// their sum when `renorm`.
    SoftmaxTopk {
        /// Renormalise the k weights to sum to 1.
        renorm: bool,
    },
    /// ids = top-k of `logits`; weights = softmax over the k selected logits.
    TopkSoftmax,
    /// ids = top-k of `logits`; weights = `scores[ids]` (a second input), as is.
    Take,
}

/// WGSL for one selection pass: finds `(bv, bi)`, the best element of row
/// `base..base+E` (values from `val(e)`) strictly after `(pv, pi)`.
fn select_pass(val: &str) -> String {
    format!(
        "var bv = bitcast<f32>(0xff800000u);\n\
         var bi = -1i;\n\
         for (var e = 0u; e < E; e += 1u) {{\n\
         \x20   let v = {val};\n\
         \x20   let ie = i32(e);\n\
         \x20   let after = v < pv || (v == pv && ie > pi);\n\
         \x20   let better = bi < 0i || v > bv || (v == bv && ie < bi);\n\
         \x20   if (after && better && v == v) {{ bv = v; bi = ie; }}\n\
         }}\n"
    )
}

fn row_prologue(kb: &mut KernelBuilder, w: u32, k: u32, experts: Dim) -> String {
    kb.size("rows", Dim::Dynamic).size("e", experts);
    let mut s = String::new();
    let _ = writeln!(s, "let row = group * {w}u + lidx;");
    let _ = writeln!(s, "if (row >= ROWS) {{ return; }}");
    let _ = writeln!(s, "let base = row * E;");
    let _ = writeln!(s, "let obase = row * {k}u;");
    let _ = writeln!(s, "var pv = bitcast<f32>(0x7f800000u);");
    let _ = writeln!(s, "var pi = -1i;");
    s
}

/// `values[row, j], indices[row, j]` = the `k` largest of `x[row, :]`, descending.
/// Bindings `x` (f32 `[rows, e]`), `values` (f32 `[rows, k]`), `indices` (i32
/// `[rows, k]`). Sizes `rows`, `e`.
pub fn topk(k: u32, experts: Dim, limits: &DeviceLimits) -> Result<Kernel, ShaderError> {
    if k == 0 {
        return Err(ShaderError::config("topk", "k must be positive"));
    }
    let w = limits.clamp_workgroup(64);
    let mut kb = KernelBuilder::new(format!("topk{k}"), w);
    let mut s = row_prologue(&mut kb, w, k, experts);
    kb.input("x", ScalarType::F32)
        .output("values", ScalarType::F32)
        .output("indices", ScalarType::I32);
    let _ = writeln!(s, "for (var j = 0u; j < {k}u; j += 1u) {{");
    s.push_str(&select_pass("x[base + e]"));
    let _ = writeln!(s, "values[obase + j] = bv;");
    let _ = writeln!(s, "indices[obase + j] = bi;");
    let _ = writeln!(s, "if (bi >= 0i) {{ pv = bv; pi = bi; }}");
    let _ = writeln!(s, "}}");
    Ok(kb.finish(&s, Grid::linear(&["rows"], w)))
}

/// Router decision per token. Bindings `logits` (f32 `[rows, e]`), for
/// [`RouteMode::Take`] also `scores` (f32 `[rows, e]`), then `ids` (i32
/// `[rows, k]`) and `weights` (f32 `[rows, k]`). Sizes `rows`, `e`.
pub fn route(
    k: u32,
    mode: RouteMode,
    experts: Dim,
    limits: &DeviceLimits,
) -> Result<Kernel, ShaderError> {
    if k == 0 {
        return Err(ShaderError::config("route", "k must be positive"));
    }
    let w = limits.clamp_workgroup(64);
    let tag = match mode {
        RouteMode::SoftmaxTopk { renorm: false } => "softmax_topk",
        RouteMode::SoftmaxTopk { renorm: true } => "softmax_topk_renorm",
        RouteMode::TopkSoftmax => "topk_softmax",
        RouteMode::Take => "take",
    };
    let mut kb = KernelBuilder::new(format!("route{k}_{tag}"), w);
    let mut s = row_prologue(&mut kb, w, k, experts);
    kb.input("logits", ScalarType::F32);
    if mode == RouteMode::Take {
        kb.input("scores", ScalarType::F32);
    }
    kb.output("ids", ScalarType::I32)
        .output("weights", ScalarType::F32);
    let val = match mode {
        RouteMode::SoftmaxTopk { .. } => {
            let _ = writeln!(s, "var mx = bitcast<f32>(0xff800000u);");
            let _ = writeln!(
                s,
                "for (var e = 0u; e < E; e += 1u) {{ mx = max(mx, logits[base + e]); }}"
            );
            let _ = writeln!(s, "var se = 0.0;");
            let _ = writeln!(
                s,
                "for (var e = 0u; e < E; e += 1u) {{ se += exp(logits[base + e] - mx); }}"
            );
            let _ = writeln!(s, "let inv = 1.0 / se;");
            "exp(logits[base + e] - mx) * inv"
        }
        _ => "logits[base + e]",
    };
    let _ = writeln!(s, "var total = 0.0;");
    let _ = writeln!(s, "var first = 0.0;");
    let _ = writeln!(s, "for (var j = 0u; j < {k}u; j += 1u) {{");
    s.push_str(&select_pass(val));
    let _ = writeln!(s, "ids[obase + j] = bi;");
    match mode {
        RouteMode::SoftmaxTopk { .. } => {
            let _ = writeln!(s, "let wv = select(0.0, bv, bi >= 0i);");
        }
        RouteMode::TopkSoftmax => {
            // Stable softmax over the selected logits: the first pick is the max.
            let _ = writeln!(s, "if (j == 0u) {{ first = bv; }}");
            let _ = writeln!(s, "let wv = select(0.0, exp(bv - first), bi >= 0i);");
        }
        RouteMode::Take => {
            let _ = writeln!(
                s,
                "let wv = select(0.0, scores[base + u32(max(bi, 0i))], bi >= 0i);"
            );
        }
    }
    let _ = writeln!(s, "weights[obase + j] = wv;");
    let _ = writeln!(s, "total += wv;");
    let _ = writeln!(s, "if (bi >= 0i) {{ pv = bv; pi = bi; }}");
    let _ = writeln!(s, "}}");
    let normalise = matches!(
        mode,
        RouteMode::SoftmaxTopk { renorm: true } | RouteMode::TopkSoftmax
    );
    if normalise {
        let _ = writeln!(s, "if (total > 0.0) {{");
        let _ = writeln!(
            s,
            "    for (var j = 0u; j < {k}u; j += 1u) {{ weights[obase + j] = weights[obase + j] / total; }}"
        );
        let _ = writeln!(s, "}}");
    }
    Ok(kb.finish(&s, Grid::linear(&["rows"], w)))
}
