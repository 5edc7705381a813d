//! What each parameter is to the model, read off its uses: the weight of a
//! product (and which product: the LM head, a router, any other), or
//! something else (an embedding table, a norm, an expert stack).

use seam_ir::{Model, Op, Operand};

/// The part a parameter plays.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ParamRole {
    /// Only ever the right operand `[K, N]` of an unbatched product.
    Linear,
    /// A product weight whose result a function returns (the logits).
    LmHead,
    /// A product weight whose result a `route` or `topk` reads (router logits).
    Router,
    /// Anything else (gathered rows, a norm scale, stacked experts, a bias):
    /// stays `f32`.
    Other,
}

impl ParamRole {
    /// Whether a weight in this role may be stored in a block format.
    pub fn is_product_weight(self) -> bool {
        self != ParamRole::Other
    }
}

/// The role of every param of `model`, in declaration order. A param used in
/// several ways takes the most restrictive role (`Other` over the rest; then
/// `Router`, `LmHead`, `Linear`).
pub fn param_roles(model: &Model) -> Vec<ParamRole> {
    let mut roles: Vec<Option<ParamRole>> = vec![None; model.params.len()];
    for f in &model.functions {
        for (i, instr) in f.body.iter().enumerate() {
            let weight_operands = match instr.op {
                Op::MatMul | Op::MatMulAdd => 1..2,
                Op::GatedMatMul { .. } => 1..3,
                _ => 0..0,
            };
            for (pos, o) in instr.operands.iter().enumerate() {
                let Operand::Param(p) = *o else { continue };
                let unbatched = model.param(p).ty.rank() == 2;
                let role = if weight_operands.contains(&pos) && unbatched {
                    let result = instr.results[0];
                    if f.outputs.contains(&result) {
                        ParamRole::LmHead
                    } else if read_by_router(f, i, result) {
                        ParamRole::Router
                    } else {
                        ParamRole::Linear
                    }
                } else {
                    ParamRole::Other
                };
                let slot = &mut roles[p.index()];
                *slot = Some(slot.map_or(role, |r| most_restrictive(r, role)));
            }
        }
    }
    roles
        .into_iter()
        .map(|r| r.unwrap_or(ParamRole::Other))
        .collect()
}

/// Whether an instruction after `at` that routes (`route`, `topk`) reads `v`.
fn read_by_router(f: &seam_ir::Function, at: usize, v: seam_ir::ValueId) -> bool {
    f.body[at + 1..].iter().any(|instr| {
        matches!(instr.op, Op::Route { .. } | Op::TopK { .. })
            && instr.operands.contains(&Operand::Value(v))
    })
}

fn most_restrictive(a: ParamRole, b: ParamRole) -> ParamRole {
    let rank = |r: ParamRole| match r {
        ParamRole::Other => 3,
        ParamRole::Router => 2,
        ParamRole::LmHead => 1,
        ParamRole::Linear => 0,
    };
    if rank(a) >= rank(b) {
        a
    } else {
        b
    }
}
