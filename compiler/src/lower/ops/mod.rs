//! Per-op lowering, one module per kernel family.

mod attention;
mod elementwise;
mod expert_record;
mod linalg;
mod moe;
mod movement;
mod rotary_split;
mod routing;
mod rows;

pub use expert_record::LoweredExperts;
pub(crate) use moe::Plan;

use std::collections::HashMap;

use seam_ir::{Function, Instr, Op, Operand};

use super::{LowerCx, LowerError};

/// How an instruction is lowered when it is lowered together with others.
pub(crate) enum Grouped {
    /// The first slice of several of one operand along one axis, with the
    /// group's body indices: one `split` (see [`movement::split`]).
    Split(Vec<usize>),
    /// The last instruction of a rotary split (see [`rotary_split`]).
    RotarySplit(rotary_split::RotarySplit),
    /// Lowered with another instruction of its group.
    Member,
}

/// The groups of instructions of `func` lowered together, by body index:
/// rotary splits first, then the slices of one operand along one axis (when
/// there are several) that no rotary split took.
pub(crate) fn groups(func: &Function) -> HashMap<usize, Grouped> {
    let mut out = HashMap::new();
    for g in rotary_split::rotary_splits(func) {
        for &m in &g.members {
            out.insert(m, Grouped::Member);
        }
        out.insert(g.at(), Grouped::RotarySplit(g));
    }
    let mut slices: HashMap<(Operand, usize), Vec<usize>> = HashMap::new();
    for (i, instr) in func.body.iter().enumerate() {
        if let (Op::Slice { axis, .. }, [x]) = (&instr.op, instr.operands.as_slice()) {
            if !out.contains_key(&i) {
                slices.entry((*x, *axis)).or_default().push(i);
            }
        }
    }
    for group in slices.into_values().filter(|g| g.len() > 1) {
        for &j in &group[1..] {
            out.insert(j, Grouped::Member);
        }
        out.insert(group[0], Grouped::Split(group));
    }
    out
}

/// Lowers an instruction group (see [`groups`]); members other than its
/// lowering point lower to nothing.
pub(crate) fn lower_group(cx: &mut LowerCx<'_>, group: &Grouped) -> Result<(), LowerError> {
    match group {
        Grouped::Split(indices) => {
            let slices: Vec<&Instr> = indices.iter().map(|&j| &cx.func.body[j]).collect();
            movement::split(cx, &slices)
        }
        Grouped::RotarySplit(g) => rotary_split::lower(cx, g),
        Grouped::Member => Ok(()),
    }
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
