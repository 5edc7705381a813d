//! Last-axis row kernels: RMSNorm, LayerNorm, softmax and sum. One workgroup
//! per row (the folded group index); invocations stride over the row and
//! combine with a workgroup tree reduction.
//!
//! Bindings: `x` (`[rows, d]`), then `w` (`[d]`, norms) and `b` (`[d]`, layer
//! norm), then `out` (`[rows, d]`, or `[rows]` for the sum). Sizes: `rows`, `d`.

use crate::error::ShaderError;
use crate::wgsl::{f32_literal, wgsl, workgroup_reduce, KernelBuilder, ScalarType, WgslWriter};
use seam_core::{DeviceLimits, KernelProfile};
use seam_core::{Dim, Grid, Kernel};

/// Which row operation.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum RowOp {
    /// `x / sqrt(mean(x²) + eps) · w`.
    RmsNorm {
        /// Added to the mean square.
        eps: f32,
    },
    /// `(x − mean) / sqrt(var + eps) · w + b` (biased variance, two passes).
    LayerNorm {
        /// Added to the variance.
        eps: f32,
    },
    /// `exp(x − max) / Σ exp(x − max)`.
    Softmax,
    /// `Σ x` (the last axis is removed).
    Sum,
}

/// A row kernel to generate.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct RowConfig {
    /// The operation.
    pub op: RowOp,
    /// Number of rows.
    pub rows: Dim,
    /// Row length.
    pub d: Dim,
    /// Invocations per row (a power of two).
    pub workgroup: u32,
}

impl RowConfig {
    /// Dynamic rows, the given row length, and a workgroup suited to the device
    /// (narrow on CPU-like devices, where barriers are costly).
    pub fn new(op: RowOp, d: Dim, limits: &DeviceLimits) -> Self {
        let want = match limits.profile() {
            KernelProfile::CpuLike => 16,
            KernelProfile::GpuTiled => 256,
        };
        RowConfig {
            op,
            rows: Dim::Dynamic,
            d,
            workgroup: prev_pow2(limits.clamp_workgroup(want)),
        }
    }
}

/// The largest power of two not above `x` (1 for 0).
pub(crate) fn prev_pow2(x: u32) -> u32 {
    if x == 0 {
        1
    } else {
        1 << (31 - x.leading_zeros())
    }
}

/// Generates a row kernel.
pub fn row_kernel(cfg: &RowConfig) -> Result<Kernel, ShaderError> {
    let workgroup = cfg.workgroup;
    if workgroup == 0 || !workgroup.is_power_of_two() {
        return Err(ShaderError::config(
            "row",
            "workgroup must be a power of two",
        ));
    }
    let name = match cfg.op {
        RowOp::RmsNorm { .. } => "rms_norm",
        RowOp::LayerNorm { .. } => "layer_norm",
        RowOp::Softmax => "softmax",
        RowOp::Sum => "reduce_sum",
    };
    let mut kb = KernelBuilder::new(format!("{name}_w{workgroup}"), workgroup);
    kb.size("rows", cfg.rows).size("d", cfg.d);
    kb.input("x", ScalarType::F32);
    match cfg.op {
        RowOp::RmsNorm { .. } => {
            kb.input("w", ScalarType::F32);
        }
        RowOp::LayerNorm { .. } => {
            kb.input("w", ScalarType::F32).input("b", ScalarType::F32);
        }
        _ => {}
    }
    kb.output("out", ScalarType::F32);
    kb.item(workgroup_reduce(workgroup));
    let mut w = WgslWriter::new();
    w.line("let row = group;");
    w.line("if (row >= ROWS) { return; }");
    w.line("let base = row * D;");
    write_op(&mut w, cfg.op, workgroup);
    Ok(kb.finish(&w.finish(), Grid::linear(&["rows"], 1)))
}

/// The row's passes: each invocation strides over the row, and the workgroup
/// combines the partial results with a tree reduction.
fn write_op(w: &mut WgslWriter, op: RowOp, workgroup: u32) {
    let strided = |w: &mut WgslWriter, body: &str| {
        wgsl!(
            w,
            "for (var c = lidx; c < D; c += {workgroup}u) {{ {body} }}"
        );
    };
    match op {
        RowOp::RmsNorm { eps } => {
            w.line("var acc = 0.0;");
            strided(w, "let v = x[base + c]; acc = fma(v, v, acc);");
            w.line("let ss = seam_wg_sum(acc, lidx);");
            wgsl!(
                w,
                "let inv = inverseSqrt(ss / f32(D) + {});",
                f32_literal(eps)
            );
            strided(w, "out[base + c] = x[base + c] * inv * w[c];");
        }
        RowOp::LayerNorm { eps } => {
            w.line("var acc = 0.0;");
            strided(w, "acc += x[base + c];");
            w.line("let mean = seam_wg_sum(acc, lidx) / f32(D);");
            w.line("var acc2 = 0.0;");
            strided(w, "let v = x[base + c] - mean; acc2 = fma(v, v, acc2);");
            w.line("let var_ = seam_wg_sum(acc2, lidx) / f32(D);");
            wgsl!(w, "let inv = inverseSqrt(var_ + {});", f32_literal(eps));
            strided(
                w,
                "out[base + c] = (x[base + c] - mean) * inv * w[c] + b[c];",
            );
        }
        RowOp::Softmax => {
            w.line("var mx = bitcast<f32>(0xff800000u);");
            strided(w, "mx = max(mx, x[base + c]);");
            w.line("let m = seam_wg_max(mx, lidx);");
            w.line("var acc = 0.0;");
            strided(w, "acc += exp(x[base + c] - m);");
            w.line("let inv = 1.0 / seam_wg_sum(acc, lidx);");
            strided(w, "out[base + c] = exp(x[base + c] - m) * inv;");
        }
        RowOp::Sum => {
            w.line("var acc = 0.0;");
            strided(w, "acc += x[base + c];");
            w.line("let total = seam_wg_sum(acc, lidx);");
            w.line("if (lidx == 0u) { out[row] = total; }");
        }
    }
}
