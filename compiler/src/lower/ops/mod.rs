//! Per-op lowering, one module per kernel family.

mod attention;
mod elementwise;
mod expert_record;
mod linalg;
mod moe;
mod movement;
mod routing;
mod rows;

pub use expert_record::LoweredExperts;
pub(crate) use moe::Plan;

use std::collections::HashMap;

use seam_ir::{Function, Instr, Op, Operand};

use super::{LowerCx, LowerError};

/// The slices of one operand along one axis, when there are several: for the
/// first slice of each group (by body index) the group's body indices, for the
/// others `None` (lowered with the first).
pub(crate) fn slice_groups(func: &Function) -> HashMap<usize, Option<Vec<usize>>> {
    let mut groups: HashMap<(Operand, usize), Vec<usize>> = HashMap::new();
    for (i, instr) in func.body.iter().enumerate() {
        if let (Op::Slice { axis, .. }, [x]) = (&instr.op, instr.operands.as_slice()) {
            groups.entry((*x, *axis)).or_default().push(i);
        }
    }
    let mut out = HashMap::new();
    for group in groups.into_values().filter(|g| g.len() > 1) {
        for &j in &group[1..] {
            out.insert(j, None);
        }
        out.insert(group[0], Some(group));
    }
    out
}

/// Lowers slices of one operand along one axis (see [`slice_groups`]).
pub(crate) fn lower_split(cx: &mut LowerCx<'_>, slices: &[&Instr]) -> Result<(), LowerError> {
    movement::split(cx, slices)
}

/// Lowers one instruction into zero or more dispatches.
pub(crate) fn lower_instr(cx: &mut LowerCx<'_>, instr: &Instr) -> Result<(), LowerError> {
    match &instr.op {
        Op::Reshape => {
            let t = cx.operand(instr.operands[0]);
            cx.alias(instr.results[0], t);
            Ok(())
        }
        Op::AllReduce { .. } | Op::AllReduceStart { .. } if !cx.reduces_in_place(instr) => {
            elementwise::lower(cx, instr)?;
            cx.record_collective(instr)
        }
        Op::AllReduce { .. } | Op::AllReduceStart { .. } | Op::AllReduceWait => {
            let t = cx.operand(instr.operands[0]);
            cx.alias(instr.results[0], t);
            cx.record_collective(instr)
        }
        // Listed op by op (not `is_elementwise()`) so that a new op kind cannot
        // reach the GPU without a lowering decision: the match stays exhaustive.
        // Every element-wise function brings its WGSL from seam-core's tables.
        Op::Const { .. }
        | Op::Iota { .. }
        | Op::Binary(_)
        | Op::Unary(_)
        | Op::Fused { .. }
        | Op::Cast => elementwise::lower(cx, instr),
        Op::Cache { key, refresh } => {
            elementwise::lower(cx, instr)?;
            cx.add_cache(instr, key, *refresh)
        }
        Op::Transpose { perm } => elementwise::transpose(cx, instr, perm),
        Op::MatMul | Op::GatedMatMul { .. } | Op::MatMulAdd => linalg::matmul_instr(cx, instr),
        Op::RmsNorm { .. } | Op::LayerNorm { .. } | Op::Softmax | Op::ReduceSum => {
            rows::lower(cx, instr)
        }
        Op::Concat { axis } => movement::concat(cx, instr, *axis),
        Op::Slice { axis, start, end } => movement::slice(cx, instr, *axis, *start, *end),
        Op::Tail => movement::tail(cx, instr),
        Op::WriteTail => movement::write_tail(cx, instr),
        Op::WriteRows => movement::write_rows(cx, instr),
        Op::Gather => movement::gather(cx, instr),
        Op::Rope { theta } => attention::rope(cx, instr, *theta),
        Op::Attention { causal, scale } => attention::attention(cx, instr, *causal, *scale),
        Op::PooledAttention { scale } => attention::pooled_attention(cx, instr, *scale),
        Op::TopK { k } => routing::topk(cx, instr, *k),
        Op::Route { k, mode, renorm } => routing::route(cx, instr, *k, *mode, *renorm),
        Op::Moe { act } => moe::lower(cx, instr, *act),
        Op::GroupedMatMul => moe::lower_grouped_matmul(cx, instr),
    }
}
