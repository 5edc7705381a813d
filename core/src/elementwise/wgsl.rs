//! The WGSL helper functions the tables' `wgsl` expressions call.

/// WGSL helpers for the activations, included by every kernel that applies
/// one (the element-wise kernels and the gated-matmul and MoE epilogues).
/// `seam_gelu_erf` uses an erfc approximation with relative error below
/// 1.2e-7 everywhere (Numerical Recipes' `erfcc`), so small negative tails
/// keep their relative accuracy; `seam_tanh` clamps its argument so `tanh`
/// never sees an overflowing `exp`.
pub const WGSL_ACTIVATIONS: &str = r#"fn seam_sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}
fn seam_silu(x: f32) -> f32 {
    return x / (1.0 + exp(-x));
}
fn seam_tanh(x: f32) -> f32 {
    return tanh(clamp(x, -20.0, 20.0));
}
fn seam_erfc(x: f32) -> f32 {
    let z = abs(x);
    let t = 1.0 / (1.0 + 0.5 * z);
    let p = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
        + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
        + t * (-0.82215223 + t * 0.17087277))))))));
    let r = t * exp(p);
    return select(2.0 - r, r, x >= 0.0);
}
fn seam_gelu_erf(x: f32) -> f32 {
    return 0.5 * x * seam_erfc(-x * 0.70710678118654752);
}
fn seam_gelu_tanh(x: f32) -> f32 {
    return 0.5 * x * (1.0 + seam_tanh(0.79788456080286536 * (x + 0.044715 * x * x * x)));
}
"#;
