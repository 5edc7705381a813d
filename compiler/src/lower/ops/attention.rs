//! RoPE and causal grouped-query attention.

use seam_ir::Instr;
use seam_shaders::kernels::attention::{attention as attention_kernel, AttentionConfig};
use seam_shaders::kernels::rope::rope as rope_kernel;

use crate::lower::{dims_of, kdim, whole, LowerCx, LowerError};

/// Lowers `rope(x[T, H, Dh], pos[T])`.
pub(crate) fn rope(cx: &mut LowerCx<'_>, instr: &Instr, theta: f32) -> Result<(), LowerError> {
    let (x, pos) = (instr.operands[0], instr.operands[1]);
    cx.scalar(instr, cx.ty(x).dtype)?;
    if cx.ty(pos).dtype != seam_ir::DType::I32 {
        return Err(cx.unsupported(instr, "positions must be i32"));
    }
    let d = dims_of(cx.ty(x));
    let kernel = rope_kernel(theta, kdim(&d[1]), kdim(&d[2]), &cx.target.limits);
    let args = vec![whole(cx.operand(x)), whole(cx.operand(pos))];
    let out = cx.value_tensor(instr.results[0]);
    let mut args = args;
    args.push(whole(out));
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
    let [q, k, v] = [instr.operands[0], instr.operands[1], instr.operands[2]];
    cx.scalar(instr, cx.ty(q).dtype)?;
    let (qd, kd) = (dims_of(cx.ty(q)), dims_of(cx.ty(k)));
    let head_dim = qd[2]
        .as_const()
        .and_then(|h| u32::try_from(h).ok())
        .ok_or_else(|| cx.unsupported(instr, "the head dim must be static"))?;
    let cfg = AttentionConfig::new(
        causal,
        scale,
        kdim(&qd[1]),
        kdim(&kd[1]),
        head_dim,
        &cx.target.limits,
    );
    let args = vec![
        whole(cx.operand(q)),
        whole(cx.operand(k)),
        whole(cx.operand(v)),
    ];
    let out = cx.value_tensor(instr.results[0]);
    let mut args = args;
    args.push(whole(out));
    let sizes = vec![
        ("tokens", qd[0].clone()),
        ("kv_len", kd[0].clone()),
        ("heads", qd[1].clone()),
        ("kv_heads", kd[1].clone()),
    ];
    cx.step(instr, attention_kernel(&cfg), args, vec![out], sizes)
}
