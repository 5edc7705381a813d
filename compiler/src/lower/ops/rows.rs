//! Last-axis row ops: RMSNorm, LayerNorm, softmax and sum.

use seam_core::SizeExpr;
use seam_ir::{Instr, Op};
use seam_shaders::kernels::rowwise::{row_kernel, RowConfig, RowOp};

use crate::lower::{dims_of, kdim, LowerCx, LowerError};

/// Lowers `rms_norm`, `layer_norm`, `softmax` and `reduce_sum`.
pub(crate) fn lower(cx: &mut LowerCx<'_>, instr: &Instr) -> Result<(), LowerError> {
    let x = instr.operands[0];
    let dims = dims_of(cx.ty(x));
    cx.scalar(instr, cx.ty(x).dtype)?;
    let d = dims[dims.len() - 1].clone();
    let rows = SizeExpr::product(dims[..dims.len() - 1].iter().cloned());
    let op = match &instr.op {
        Op::RmsNorm { eps } => RowOp::RmsNorm { eps: *eps },
        Op::LayerNorm { eps } => RowOp::LayerNorm { eps: *eps },
        Op::Softmax => RowOp::Softmax,
        _ => RowOp::Sum,
    };
    let mut cfg = RowConfig::new(op, kdim(&d), &cx.target.limits);
    cfg.rows = kdim(&rows);
    let (args, out) = cx.operands_and_result(instr);
    cx.step(
        instr,
        row_kernel(&cfg),
        args,
        vec![out],
        vec![("rows", rows), ("d", d)],
    )
}
