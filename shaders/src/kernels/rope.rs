//! Rotary position embedding, rotate-half convention (Llama): for `x[T, H, Dh]`
//! and integer positions `pos[T]`, the pair `(i, i + Dh/2)` of every head rotates
//! by `pos · theta^(−2i/Dh)`:
//! `out_i = x_i·cos − x_{i+Dh/2}·sin`, `out_{i+Dh/2} = x_{i+Dh/2}·cos + x_i·sin`.
//!
//! Bindings `x`, `pos` (i32), `out`. Sizes `tokens`, `heads`, `head_dim` (even).
//! One invocation per pair.

use crate::error::ShaderError;
use crate::wgsl::{f32_literal, wgsl, KernelBuilder, ScalarType, WgslWriter};
use seam_core::DeviceLimits;
use seam_core::{Dim, Grid, Kernel};

/// Generates the RoPE kernel for base `theta`.
pub fn rope(
    theta: f32,
    heads: Dim,
    head_dim: Dim,
    limits: &DeviceLimits,
) -> Result<Kernel, ShaderError> {
    if let Some(d) = head_dim.fixed() {
        if d % 2 != 0 || d == 0 {
            return Err(ShaderError::config(
                "rope",
                "head_dim must be even and positive",
            ));
        }
    }
    if theta.is_nan() || theta <= 0.0 {
        return Err(ShaderError::config("rope", "theta must be positive"));
    }
    let workgroup = limits.clamp_workgroup(256);
    let mut kb = KernelBuilder::new("rope", workgroup);
    kb.size("tokens", Dim::Dynamic)
        .size("heads", heads)
        .size("head_dim", head_dim);
    kb.input("x", ScalarType::F32)
        .input("pos", ScalarType::I32)
        .output("out", ScalarType::F32);
    let mut w = WgslWriter::new();
    wgsl!(w, "let i = group * {workgroup}u + lidx;");
    w.line("let half = HEAD_DIM / 2u;");
    w.line("if (i >= TOKENS * HEADS * half) { return; }");
    w.line("let p = i % half;");
    w.line("let th = i / half;");
    w.line("let t = th / HEADS;");
    w.line("let base = th * HEAD_DIM;");
    wgsl!(
        w,
        "let freq = exp2(-(2.0 * f32(p) / f32(HEAD_DIM)) * {});",
        f32_literal(theta.log2())
    );
    w.line("let ang = f32(pos[t]) * freq;");
    w.line("let c = cos(ang);");
    w.line("let s = sin(ang);");
    w.line("let x0 = x[base + p];");
    w.line("let x1 = x[base + p + half];");
    w.line("out[base + p] = x0 * c - x1 * s;");
    w.line("out[base + p + half] = x1 * c + x0 * s;");
    let grid = Grid::linear(&["tokens", "heads", "head_dim"], 2 * workgroup);
    Ok(kb.finish(&w.finish(), grid))
}
