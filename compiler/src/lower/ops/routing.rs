//! Top-k and router decisions, on the device (no read-back).

use seam_core::SizeExpr;
use seam_ir::{Instr, RouteMode};
use seam_shaders::kernels::route::{route as route_kernel, topk as topk_kernel};

use crate::lower::{dims_of, kdim, whole, LowerCx, LowerError};

/// Lowers `topk(x, k)` over the last axis.
pub(crate) fn topk(cx: &mut LowerCx<'_>, instr: &Instr, k: usize) -> Result<(), LowerError> {
    let x = instr.operands[0];
    if cx.ty(x).dtype != seam_ir::DType::F32 {
        return Err(cx.unsupported(instr, "topk of non-f32 values"));
    }
    let d = dims_of(cx.ty(x));
    let e = d[d.len() - 1].clone();
    let rows = SizeExpr::product(d[..d.len() - 1].iter().cloned());
    let input = cx.operand(x);
    let values = cx.value_tensor(instr.results[0]);
    let indices = cx.value_tensor(instr.results[1]);
    let kernel = topk_kernel(k as u32, kdim(&e), &cx.target.limits);
    let args = vec![whole(input), whole(values), whole(indices)];
    cx.step(
        instr,
        kernel,
        args,
        vec![values, indices],
        vec![("rows", rows), ("e", e)],
    )
}

/// Lowers `route(logits [, scores], k, mode, renorm)`; leading dims are rows.
pub(crate) fn route(
    cx: &mut LowerCx<'_>,
    instr: &Instr,
    k: usize,
    mode: RouteMode,
    renorm: bool,
) -> Result<(), LowerError> {
    let logits = instr.operands[0];
    cx.scalar(instr, cx.ty(logits).dtype)?;
    let d = dims_of(cx.ty(logits));
    let mut args: Vec<_> = instr
        .operands
        .iter()
        .map(|&o| whole(cx.operand(o)))
        .collect();
    let ids = cx.value_tensor(instr.results[0]);
    let weights = cx.value_tensor(instr.results[1]);
    args.push(whole(ids));
    args.push(whole(weights));
    let e = d[d.len() - 1].clone();
    let rows = SizeExpr::product(d[..d.len() - 1].iter().cloned());
    let kernel = route_kernel(k as u32, mode, renorm, kdim(&e), &cx.target.limits);
    let sizes = vec![("rows", rows), ("e", e)];
    cx.step(instr, kernel, args, vec![ids, weights], sizes)
}
