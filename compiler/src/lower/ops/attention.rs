//! RoPE and causal grouped-query attention, over a sequence or a slot pool.

use seam_core::SizeExpr;
use seam_ir::Instr;
use seam_shaders::kernels::attention::{attention as attention_kernel, AttentionConfig};
use seam_shaders::kernels::pooled_attention::{
    pooled_attention as pooled_attention_kernel, PooledAttentionConfig,
};
use seam_shaders::kernels::rope::rope as rope_kernel;

use crate::lower::{dims_of, kdim, LowerCx, LowerError};

/// Lowers `rope(x[T, H, Dh], pos[T])`.
pub(crate) fn rope(cx: &mut LowerCx<'_>, instr: &Instr, theta: f32) -> Result<(), LowerError> {
    let (x, pos) = (instr.operands[0], instr.operands[1]);
    cx.scalar(instr, cx.ty(x).dtype)?;
    if cx.ty(pos).dtype != seam_ir::DType::I32 {
        return Err(cx.unsupported(instr, "positions must be i32"));
    }
    let d = dims_of(cx.ty(x));
    let kernel = rope_kernel(theta, kdim(&d[1]), kdim(&d[2]), &cx.target.limits);
    let (args, out) = cx.operands_and_result(instr);
    let sizes = vec![
        ("tokens", d[0].clone()),
        ("heads", d[1].clone()),
        ("head_dim", d[2].clone()),
    ];
    cx.step(instr, kernel, args, vec![out], sizes)
}

/// Lowers `attention(q[T, Hq, Dh], k[S, Hkv, Dh], v[S, Hkv, Dh])`.
pub(crate) fn attention(
    cx: &mut LowerCx<'_>,
    instr: &Instr,
    causal: bool,
    scale: Option<f32>,
) -> Result<(), LowerError> {
    let (qd, kd, head_dim) = query_and_keys(cx, instr)?;
    let cfg = AttentionConfig::new(
        causal,
        scale,
        kdim(&qd[1]),
        kdim(&kd[1]),
        head_dim,
        &cx.target.limits,
    );
    let (args, out) = cx.operands_and_result(instr);
    let sizes = vec![
        ("tokens", qd[0].clone()),
        ("kv_len", kd[0].clone()),
        ("heads", qd[1].clone()),
        ("kv_heads", kd[1].clone()),
    ];
    cx.step(instr, attention_kernel(&cfg), args, vec![out], sizes)
}

/// Lowers `pooled_attention(q[T, Hq, Dh], k[S, L, Hkv, Dh], v[S, L, Hkv, Dh],
/// slot[T], pos[T])`.
pub(crate) fn pooled_attention(
    cx: &mut LowerCx<'_>,
    instr: &Instr,
    scale: Option<f32>,
) -> Result<(), LowerError> {
    let (qd, kd, head_dim) = query_and_keys(cx, instr)?;
    let cfg = PooledAttentionConfig::new(
        scale,
        kdim(&qd[1]),
        kdim(&kd[2]),
        head_dim,
        &cx.target.limits,
    );
    let (args, out) = cx.operands_and_result(instr);
    let sizes = vec![
        ("tokens", qd[0].clone()),
        ("slots", kd[0].clone()),
        ("slot_len", kd[1].clone()),
        ("heads", qd[1].clone()),
        ("kv_heads", kd[2].clone()),
    ];
    cx.step(instr, pooled_attention_kernel(&cfg), args, vec![out], sizes)
}

/// The dims of an attention op's query (operand 0) and keys (operand 1), and
/// its head dim, which must be static.
fn query_and_keys(
    cx: &LowerCx<'_>,
    instr: &Instr,
) -> Result<(Vec<SizeExpr>, Vec<SizeExpr>, u32), LowerError> {
    let (q, k) = (instr.operands[0], instr.operands[1]);
    cx.scalar(instr, cx.ty(q).dtype)?;
    let (qd, kd) = (dims_of(cx.ty(q)), dims_of(cx.ty(k)));
    let head_dim = qd[2]
        .as_const()
        .and_then(|h| u32::try_from(h).ok())
        .ok_or_else(|| cx.unsupported(instr, "the head dim must be static"))?;
    Ok((qd, kd, head_dim))
}
