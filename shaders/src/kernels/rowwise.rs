//! Last-axis row kernels: RMSNorm, LayerNorm, softmax and sum. One workgroup
//! per row (the folded group index); invocations stride over the row and
//! combine with a workgroup tree reduction.
//!
//! Bindings: `x` (`[rows, d]`), then `w` (`[d]`, norms) and `b` (`[d]`, layer
//! norm), then `out` (`[rows, d]`, or `[rows]` for the sum). Sizes: `rows`, `d`.

use std::fmt::Write as _;

use crate::error::ShaderError;
use crate::kernel::{Dim, Grid, Kernel};
use crate::limits::{DeviceLimits, KernelProfile};
use crate::wgsl::{f32_literal, workgroup_reduce, KernelBuilder, ScalarType};

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

pub(crate) fn prev_pow2(x: u32) -> u32 {
    if x == 0 {
        1
    } else {
        1 << (31 - x.leading_zeros())
    }
}

/// Generates a row kernel.
pub fn row_kernel(cfg: &RowConfig) -> Result<Kernel, ShaderError> {
    let w = cfg.workgroup;
    if w == 0 || !w.is_power_of_two() {
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
    let mut kb = KernelBuilder::new(format!("{name}_w{w}"), w);
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
    kb.item(workgroup_reduce(w));
    let mut s = String::new();
    let _ = writeln!(s, "let row = group;");
    let _ = writeln!(s, "if (row >= ROWS) {{ return; }}");
    let _ = writeln!(s, "let base = row * D;");
    let strided = |body: &str| format!("for (var c = lidx; c < D; c += {w}u) {{ {body} }}\n");
    match cfg.op {
        RowOp::RmsNorm { eps } => {
            let _ = writeln!(s, "var acc = 0.0;");
            s.push_str(&strided("let v = x[base + c]; acc = fma(v, v, acc);"));
            let _ = writeln!(s, "let ss = seam_wg_sum(acc, lidx);");
            let _ = writeln!(
                s,
                "let inv = inverseSqrt(ss / f32(D) + {});",
                f32_literal(eps)
            );
            s.push_str(&strided("out[base + c] = x[base + c] * inv * w[c];"));
        }
        RowOp::LayerNorm { eps } => {
            let _ = writeln!(s, "var acc = 0.0;");
            s.push_str(&strided("acc += x[base + c];"));
            let _ = writeln!(s, "let mean = seam_wg_sum(acc, lidx) / f32(D);");
            let _ = writeln!(s, "var acc2 = 0.0;");
            s.push_str(&strided(
                "let v = x[base + c] - mean; acc2 = fma(v, v, acc2);",
            ));
            let _ = writeln!(s, "let var_ = seam_wg_sum(acc2, lidx) / f32(D);");
            let _ = writeln!(s, "let inv = inverseSqrt(var_ + {});", f32_literal(eps));
            s.push_str(&strided(
                "out[base + c] = (x[base + c] - mean) * inv * w[c] + b[c];",
            ));
        }
        RowOp::Softmax => {
            let _ = writeln!(s, "var mx = bitcast<f32>(0xff800000u);");
            s.push_str(&strided("mx = max(mx, x[base + c]);"));
            let _ = writeln!(s, "let m = seam_wg_max(mx, lidx);");
            let _ = writeln!(s, "var acc = 0.0;");
            s.push_str(&strided("acc += exp(x[base + c] - m);"));
            let _ = writeln!(s, "let inv = 1.0 / seam_wg_sum(acc, lidx);");
            s.push_str(&strided("out[base + c] = exp(x[base + c] - m) * inv;"));
        }
        RowOp::Sum => {
            let _ = writeln!(s, "var acc = 0.0;");
            s.push_str(&strided("acc += x[base + c];"));
            let _ = writeln!(s, "let total = seam_wg_sum(acc, lidx);");
            let _ = writeln!(s, "if (lidx == 0u) {{ out[row] = total; }}");
        }
    }
    Ok(kb.finish(&s, Grid::linear(&["rows"], 1)))
}
