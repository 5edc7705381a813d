//! Causal grouped-query attention over a slot pool (batched decode):
//! `q[T, Hq, Dh]`, `k[S, L, Hkv, Dh]`, `v[S, L, Hkv, Dh]`, `slot: i32[T]`,
//! `pos: i32[T]` → `out[T, Hq, Dh]`; query `t` attends to rows
//! `0..=pos[t]` of slot `slot[t]`, query head `h` reading kv head
//! `h / (Hq / Hkv)`. A token whose slot or position lies outside the pool
//! gets zeros.
//!
//! The structure of [`super::attention`]: one workgroup per (query, head),
//! whose invocations stride over the query's keys only (`pos[t] + 1` of them,
//! not the slot's `L`) keeping an online softmax, merged through workgroup
//! memory.
//!
//! Bindings `q`, `k`, `v`, `slot`, `pos`, `out`. Sizes `tokens`, `slots`,
//! `slot_len`, `heads`, `kv_heads`, `head_dim` (fixed).

use crate::error::ShaderError;
use crate::wgsl::WgslWriter;
use seam_core::{DeviceLimits, Dim, Kernel};

use super::attention::{builder, check_heads, finish, write_query, AttentionConfig};

/// A pooled attention kernel to generate.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct PooledAttentionConfig {
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

impl PooledAttentionConfig {
    /// A config with the workgroup attention would choose for the device.
    pub fn new(
        scale: Option<f32>,
        heads: Dim,
        kv_heads: Dim,
        head_dim: u32,
        limits: &DeviceLimits,
    ) -> Self {
        let AttentionConfig { workgroup, .. } =
            AttentionConfig::new(true, scale, heads, kv_heads, head_dim, limits);
        PooledAttentionConfig {
            scale,
            heads,
            kv_heads,
            head_dim,
            workgroup,
        }
    }
}

/// Generates the pooled attention kernel.
pub fn pooled_attention(cfg: &PooledAttentionConfig) -> Result<Kernel, ShaderError> {
    let (workgroup, head_dim) = (cfg.workgroup, cfg.head_dim);
    check_heads(
        "pooled_attention",
        workgroup,
        head_dim,
        (cfg.heads, cfg.kv_heads),
    )?;
    let kb = builder(
        format!("pooled_attention_d{head_dim}_w{workgroup}"),
        workgroup,
        (cfg.heads, cfg.kv_heads),
        head_dim,
        &["slots", "slot_len"],
        &["slot", "pos"],
    );
    let mut w = WgslWriter::new();
    write_query(&mut w, head_dim, cfg.scale);
    // Keys 0..=pos[t] of the token's slot; none (zeros out) outside the pool.
    w.line("let s = slot[t];");
    w.line("let p = pos[t];");
    w.line("let inside = s >= 0i && p >= 0i && u32(s) < SLOTS && u32(p) < SLOT_LEN;");
    w.line("let limit = select(0u, u32(p) + 1u, inside);");
    w.line("let base = select(0u, u32(s) * SLOT_LEN, inside);");
    Ok(finish(kb, w, workgroup, head_dim, "(base + j)"))
}
