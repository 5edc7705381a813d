//! Scaled dot-product attention with grouped-query heads:
//! `q[T, Hq, Dh]`, `k[S, Hkv, Dh]`, `v[S, Hkv, Dh]` → `out[T, Hq, Dh]`; query head
//! `h` reads kv head `h / (Hq / Hkv)`. With `causal`, query `t` sees keys
//! `s ≤ t + (S − T)` (the queries are the last `T` positions); a query that sees
//! no key gets zeros.
//!
//! One workgroup per (query, head). Its invocations stride over the keys, each
//! keeping an online softmax (running max, sum and a private `Dh` accumulator);
//! the partial states are merged through workgroup memory. `k` and `v` may be the
//! first `S` rows of a larger KV-cache buffer.
//!
//! Bindings `q`, `k`, `v`, `out`. Sizes `tokens`, `kv_len`, `heads`, `kv_heads`,
//! `head_dim` (fixed).

use std::fmt::Write as _;

use crate::error::ShaderError;
use crate::kernel::{Dim, Grid, Kernel};
use crate::limits::{DeviceLimits, KernelProfile};
use crate::wgsl::{f32_literal, workgroup_reduce, KernelBuilder, ScalarType};

use super::rowwise::prev_pow2;

/// An attention kernel to generate.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct AttentionConfig {
    /// Mask future keys.
    pub causal: bool,
    /// Logit scale; `None` is `1/sqrt(head_dim)`.
    pub scale: Option<f32>,
    /// Query heads.
    pub heads: Dim,
    /// Key/value heads (divides `heads`).
    pub kv_heads: Dim,
    /// Head size (baked in: it sizes the per-invocation accumulator).
    pub head_dim: u32,
    /// Invocations per (query, head), a power of two.
    pub workgroup: u32,
}

impl AttentionConfig {
    /// A config with the workgroup chosen for the device.
    pub fn new(
        causal: bool,
        scale: Option<f32>,
        heads: Dim,
        kv_heads: Dim,
        head_dim: u32,
        limits: &DeviceLimits,
    ) -> Self {
        let want = match limits.profile() {
            KernelProfile::CpuLike => 8,
            KernelProfile::GpuTiled => 32,
        };
        // Partial accumulators of all invocations must fit half the workgroup memory.
        let fit = (limits.workgroup_storage_bytes / 2) / (head_dim.max(1) * 4);
        AttentionConfig {
            causal,
            scale,
            heads,
            kv_heads,
            head_dim,
            workgroup: prev_pow2(limits.clamp_workgroup(want.min(fit.max(1)))),
        }
    }
}

/// Generates the attention kernel.
pub fn attention(cfg: &AttentionConfig) -> Result<Kernel, ShaderError> {
    let (w, dh) = (cfg.workgroup, cfg.head_dim);
    if w == 0 || !w.is_power_of_two() || dh == 0 {
        return Err(ShaderError::config(
            "attention",
            "workgroup must be a power of two and head_dim positive",
        ));
    }
    if let (Some(h), Some(kvh)) = (cfg.heads.fixed(), cfg.kv_heads.fixed()) {
        if kvh == 0 || h % kvh != 0 {
            return Err(ShaderError::config(
                "attention",
                "kv_heads must divide heads",
            ));
        }
    }
    let scale = cfg.scale.unwrap_or(1.0 / (dh as f32).sqrt());
    let mut kb = KernelBuilder::new(
        format!(
            "attention{}_d{dh}_w{w}",
            if cfg.causal { "_causal" } else { "" }
        ),
        w,
    );
    kb.size("tokens", Dim::Dynamic)
        .size("kv_len", Dim::Dynamic)
        .size("heads", cfg.heads)
        .size("kv_heads", cfg.kv_heads)
        .size("head_dim", Dim::Fixed(dh));
    kb.input("q", ScalarType::F32)
        .input("k", ScalarType::F32)
        .input("v", ScalarType::F32)
        .output("out", ScalarType::F32);
    kb.item(workgroup_reduce(w));
    kb.item(format!("var<workgroup> part: array<f32, {}>;", w * dh));
    let mut s = String::new();
    let _ = writeln!(s, "let qh = group % HEADS;");
    let _ = writeln!(s, "let t = group / HEADS;");
    let _ = writeln!(s, "if (t >= TOKENS) {{ return; }}");
    let _ = writeln!(s, "let kvh = qh / (HEADS / KV_HEADS);");
    let _ = writeln!(s, "let qoff = (t * HEADS + qh) * {dh}u;");
    let _ = writeln!(s, "var qv: array<f32, {dh}>;");
    let _ = writeln!(s, "var acc: array<f32, {dh}>;");
    let _ = writeln!(
        s,
        "for (var d = 0u; d < {dh}u; d += 1u) {{ qv[d] = q[qoff + d] * {}; acc[d] = 0.0; }}",
        f32_literal(scale)
    );
    if cfg.causal {
        let _ = writeln!(
            s,
            "let limit = select(0u, min(KV_LEN, t + KV_LEN + 1u - TOKENS), t + KV_LEN + 1u > TOKENS);"
        );
    } else {
        let _ = writeln!(s, "let limit = KV_LEN;");
    }
    let _ = writeln!(s, "let neg_inf = bitcast<f32>(0xff800000u);");
    let _ = writeln!(s, "var m = neg_inf;");
    let _ = writeln!(s, "var l = 0.0;");
    let _ = writeln!(s, "for (var j = lidx; j < limit; j += {w}u) {{");
    let _ = writeln!(s, "    let koff = (j * KV_HEADS + kvh) * {dh}u;");
    let _ = writeln!(s, "    var dot = 0.0;");
    let _ = writeln!(
        s,
        "    for (var d = 0u; d < {dh}u; d += 1u) {{ dot = fma(qv[d], k[koff + d], dot); }}"
    );
    let _ = writeln!(s, "    let mn = max(m, dot);");
    let _ = writeln!(s, "    let corr = exp(m - mn);");
    let _ = writeln!(s, "    let p = exp(dot - mn);");
    let _ = writeln!(s, "    l = l * corr + p;");
    let _ = writeln!(
        s,
        "    for (var d = 0u; d < {dh}u; d += 1u) {{ acc[d] = fma(p, v[koff + d], acc[d] * corr); }}"
    );
    let _ = writeln!(s, "    m = mn;");
    let _ = writeln!(s, "}}");
    let _ = writeln!(s, "let gm = seam_wg_max(m, lidx);");
    let _ = writeln!(s, "let sc = select(0.0, exp(m - gm), m > neg_inf);");
    let _ = writeln!(s, "let gl = seam_wg_sum(l * sc, lidx);");
    let _ = writeln!(
        s,
        "for (var d = 0u; d < {dh}u; d += 1u) {{ part[lidx * {dh}u + d] = acc[d] * sc; }}"
    );
    let _ = writeln!(s, "workgroupBarrier();");
    let _ = writeln!(s, "let inv = select(0.0, 1.0 / gl, gl > 0.0);");
    let _ = writeln!(s, "for (var d = lidx; d < {dh}u; d += {w}u) {{");
    let _ = writeln!(s, "    var sum = 0.0;");
    let _ = writeln!(
        s,
        "    for (var i = 0u; i < {w}u; i += 1u) {{ sum += part[i * {dh}u + d]; }}"
    );
    let _ = writeln!(s, "    out[qoff + d] = sum * inv;");
    let _ = writeln!(s, "}}");
    Ok(kb.finish(&s, Grid::linear(&["tokens", "heads"], 1)))
}
