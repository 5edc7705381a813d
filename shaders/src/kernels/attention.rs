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

use crate::error::ShaderError;
use crate::wgsl::{f32_literal, wgsl, workgroup_reduce, KernelBuilder, ScalarType, WgslWriter};
use seam_core::{DeviceLimits, KernelProfile};
use seam_core::{Dim, Grid, Kernel};

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
        AttentionConfig {
            causal,
            scale,
            heads,
            kv_heads,
            head_dim,
            workgroup: workgroup_for(head_dim, limits),
        }
    }
}

/// Invocations per (query, head) on this device: a power of two whose partial
/// accumulators (`head_dim` floats each) fit half the workgroup memory.
fn workgroup_for(head_dim: u32, limits: &DeviceLimits) -> u32 {
    let want = match limits.profile() {
        KernelProfile::CpuLike => 8,
        KernelProfile::GpuTiled => 32,
    };
    let fit = (limits.workgroup_storage_bytes / 2) / (head_dim.max(1) * 4);
    prev_pow2(limits.clamp_workgroup(want.min(fit.max(1))))
}

/// Checks what every attention kernel needs: a power-of-two workgroup, a
/// positive head dim, and kv heads dividing the query heads.
pub(super) fn check_heads(
    kernel: &str,
    workgroup: u32,
    head_dim: u32,
    (heads, kv_heads): (Dim, Dim),
) -> Result<(), ShaderError> {
    if workgroup == 0 || !workgroup.is_power_of_two() || head_dim == 0 {
        return Err(ShaderError::config(
            kernel,
            "workgroup must be a power of two and head_dim positive",
        ));
    }
    if let (Some(h), Some(kvh)) = (heads.fixed(), kv_heads.fixed()) {
        if kvh == 0 || h % kvh != 0 {
            return Err(ShaderError::config(kernel, "kv_heads must divide heads"));
        }
    }
    Ok(())
}

/// Generates the attention kernel.
pub fn attention(cfg: &AttentionConfig) -> Result<Kernel, ShaderError> {
    let (workgroup, head_dim) = (cfg.workgroup, cfg.head_dim);
    check_heads("attention", workgroup, head_dim, (cfg.heads, cfg.kv_heads))?;
    let name = format!(
        "attention{}_d{head_dim}_w{workgroup}",
        if cfg.causal { "_causal" } else { "" }
    );
    let kb = builder(
        name,
        workgroup,
        (cfg.heads, cfg.kv_heads),
        head_dim,
        &["kv_len"],
        &[],
    );
    let mut w = WgslWriter::new();
    write_query(&mut w, head_dim, cfg.scale);
    if cfg.causal {
        w.line(
            "let limit = select(0u, min(KV_LEN, t + KV_LEN + 1u - TOKENS), t + KV_LEN + 1u > TOKENS);",
        );
    } else {
        w.line("let limit = KV_LEN;");
    }
    Ok(finish(kb, w, workgroup, head_dim, "j"))
}

/// A builder for an attention kernel with sizes `tokens`, the dynamic
/// `positions`, `heads`, `kv_heads` and `head_dim` (fixed), and bindings `q`,
/// `k`, `v`, the i32 `indices` (one per token) and `out`.
pub(super) fn builder(
    name: String,
    workgroup: u32,
    (heads, kv_heads): (Dim, Dim),
    head_dim: u32,
    positions: &[&str],
    indices: &[&str],
) -> KernelBuilder {
    let mut kb = KernelBuilder::new(name, workgroup);
    kb.size("tokens", Dim::Dynamic);
    for p in positions {
        kb.size(p, Dim::Dynamic);
    }
    kb.size("heads", heads)
        .size("kv_heads", kv_heads)
        .size("head_dim", Dim::Fixed(head_dim));
    for b in ["q", "k", "v"] {
        kb.input(b, ScalarType::F32);
    }
    for b in indices {
        kb.input(b, ScalarType::I32);
    }
    kb.output("out", ScalarType::F32);
    kb
}

/// The workgroup's query `t` and head `qh`, its kv head, the scaled query `qv`
/// (`scale` defaulting to `1/sqrt(head_dim)`) and the zeroed accumulator `acc`.
/// The caller then defines `limit`, the number of keys the query sees.
pub(super) fn write_query(w: &mut WgslWriter, head_dim: u32, scale: Option<f32>) {
    let scale = scale.unwrap_or(1.0 / (head_dim as f32).sqrt());
    w.line("let qh = group % HEADS;");
    w.line("let t = group / HEADS;");
    w.line("if (t >= TOKENS) { return; }");
    w.line("let kvh = qh / (HEADS / KV_HEADS);");
    wgsl!(w, "let qoff = (t * HEADS + qh) * {head_dim}u;");
    wgsl!(w, "var qv: array<f32, {head_dim}>;");
    wgsl!(w, "var acc: array<f32, {head_dim}>;");
    wgsl!(
        w,
        "for (var d = 0u; d < {head_dim}u; d += 1u) {{ qv[d] = q[qoff + d] * {}; acc[d] = 0.0; }}",
        f32_literal(scale)
    );
}

/// Completes an attention kernel whose body so far ([`write_query`] and a
/// `limit`) is in `w`: the online softmax over keys `0..limit`, key `j` at row
/// `row` (a WGSL expression in `j`) of `k` and `v`, then the merge; one
/// workgroup per (query, head).
pub(super) fn finish(
    mut kb: KernelBuilder,
    mut w: WgslWriter,
    workgroup: u32,
    head_dim: u32,
    row: &str,
) -> Kernel {
    kb.item(workgroup_reduce(workgroup));
    kb.item(format!(
        "var<workgroup> part: array<f32, {}>;",
        workgroup * head_dim
    ));
    write_online_softmax(&mut w, workgroup, head_dim, row);
    write_merge(&mut w, workgroup, head_dim);
    kb.finish(&w.finish(), Grid::linear(&["tokens", "heads"], 1))
}

/// Each invocation's pass over its keys (strided by the workgroup, key `j` at
/// row `row` of `k` and `v`), keeping an online softmax: running max `m`, sum `l` and accumulator `acc`.
fn write_online_softmax(w: &mut WgslWriter, workgroup: u32, head_dim: u32, row: &str) {
    w.line("let neg_inf = bitcast<f32>(0xff800000u);");
    w.line("var m = neg_inf;");
    w.line("var l = 0.0;");
    w.open(format_args!(
        "for (var j = lidx; j < limit; j += {workgroup}u) {{"
    ));
    wgsl!(w, "let koff = ({row} * KV_HEADS + kvh) * {head_dim}u;");
    w.line("var dot = 0.0;");
    wgsl!(
        w,
        "for (var d = 0u; d < {head_dim}u; d += 1u) {{ dot = fma(qv[d], k[koff + d], dot); }}"
    );
    w.line("let mn = max(m, dot);");
    w.line("let corr = exp(m - mn);");
    w.line("let p = exp(dot - mn);");
    w.line("l = l * corr + p;");
    wgsl!(
        w,
        "for (var d = 0u; d < {head_dim}u; d += 1u) {{ acc[d] = fma(p, v[koff + d], acc[d] * corr); }}"
    );
    w.line("m = mn;");
    w.close();
}

/// Merges the invocations' partial states through workgroup memory and
/// stores the normalised output (zeros for a query that sees no key).
fn write_merge(w: &mut WgslWriter, workgroup: u32, head_dim: u32) {
    w.line("let gm = seam_wg_max(m, lidx);");
    w.line("let sc = select(0.0, exp(m - gm), m > neg_inf);");
    w.line("let gl = seam_wg_sum(l * sc, lidx);");
    wgsl!(
        w,
        "for (var d = 0u; d < {head_dim}u; d += 1u) {{ part[lidx * {head_dim}u + d] = acc[d] * sc; }}"
    );
    w.line("workgroupBarrier();");
    w.line("let inv = select(0.0, 1.0 / gl, gl > 0.0);");
    w.open(format_args!(
        "for (var d = lidx; d < {head_dim}u; d += {workgroup}u) {{"
    ));
    w.line("var sum = 0.0;");
    wgsl!(
        w,
        "for (var i = 0u; i < {workgroup}u; i += 1u) {{ sum += part[i * {head_dim}u + d]; }}"
    );
    w.line("out[qoff + d] = sum * inv;");
    w.close();
}
