//! Rotary position embedding, rotate-half convention (Llama): for `x[T, H, Dh]`
//! and integer positions `pos[T]`, the pair `(i, i + Dh/2)` of every head rotates
//! by `pos · theta^(−2i/Dh)`:
//! `out_i = x_i·cos − x_{i+Dh/2}·sin`, `out_{i+Dh/2} = x_{i+Dh/2}·cos + x_i·sin`.
//!
//! Bindings `x`, `pos` (i32), `out`. Sizes `tokens`, `heads`, `head_dim` (even).
//! One invocation per pair.

use crate::error::ShaderError;
use crate::kernel::{Dim, Grid, Kernel};
use crate::limits::DeviceLimits;
use crate::wgsl::{f32_literal, KernelBuilder, ScalarType};

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
    let w = limits.clamp_workgroup(256);
    let mut kb = KernelBuilder::new("rope", w);
    kb.size("tokens", Dim::Dynamic)
        .size("heads", heads)
        .size("head_dim", head_dim);
    kb.input("x", ScalarType::F32)
        .input("pos", ScalarType::I32)
        .output("out", ScalarType::F32);
    let body = format!(
        "let i = group * {w}u + lidx;\n\
         let half = HEAD_DIM / 2u;\n\
         if (i >= TOKENS * HEADS * half) {{ return; }}\n\
         let p = i % half;\n\
         let th = i / half;\n\
         let t = th / HEADS;\n\
         let base = th * HEAD_DIM;\n\
         let freq = exp2(-(2.0 * f32(p) / f32(HEAD_DIM)) * {log2theta});\n\
         let ang = f32(pos[t]) * freq;\n\
         let c = cos(ang);\n\
         let s = sin(ang);\n\
         let x0 = x[base + p];\n\
         let x1 = x[base + p + half];\n\
         out[base + p] = x0 * c - x1 * s;\n\
         out[base + p + half] = x1 * c + x0 * s;\n",
        log2theta = f32_literal(theta.log2())
    );
    Ok(kb.finish(&body, Grid::linear(&["tokens", "heads", "head_dim"], 2 * w)))
}
