//! What each parameter is to the model, read off its uses: the weight of a
//! product (and which product: the LM head, a router, an expert stack of a
//! `moe`, a modality stack of a `grouped_matmul`, any other), or something
//! else (an embedding table, a norm).

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
    /// Only ever an expert stack `[E, K, N]` of a `moe` (`w_gate`, `w_up`,
    /// `w_down`); its shared expert's weights are [`ParamRole::Linear`].
    Expert,
    /// Only ever the id-selected stack `[E, K, N]` of a `grouped_matmul` (a
    /// Mixture-of-Transformers projection). Stored `f32`: the grouped product
    /// has no kernel for block formats yet, so another format asked for it is
    /// reported as a fallback.
    Grouped,
    /// Anything else (gathered rows, a norm scale, a bias): stays `f32`.
    Other,
}

impl ParamRole {
    /// Whether a weight in this role may be stored in a block format.
    pub fn is_product_weight(self) -> bool {
        self != ParamRole::Other
    }
}

/// The operands of `moe` that are expert stacks.
pub const MOE_EXPERT_OPERANDS: std::ops::Range<usize> = 3..6;

/// The operand of `grouped_matmul` that is its stack of matrices.
const GROUPED_STACK_OPERAND: usize = 2;

/// The operands of `moe` that are its shared expert's gate, up and down.
const MOE_SHARED_OPERANDS: std::ops::Range<usize> = 6..9;

/// The role of every param of `model`, in declaration order. A param used in
/// several ways takes the most restrictive role (`Other` over the rest; then
/// `Grouped`, `Router`, `Expert`, `LmHead`, `Linear`).
pub fn param_roles(model: &Model) -> Vec<ParamRole> {
    let mut roles: Vec<Option<ParamRole>> = vec![None; model.params.len()];
    for f in &model.functions {
        for (i, instr) in f.body.iter().enumerate() {
            let weight_operands = match instr.op {
                Op::MatMul | Op::MatMulAdd => 1..2,
                Op::GatedMatMul { .. } => 1..3,
                _ => 0..0,
            };
            let is_moe = matches!(instr.op, Op::Moe { .. });
            let is_grouped = matches!(instr.op, Op::GroupedMatMul);
            for (pos, o) in instr.operands.iter().enumerate() {
                let Operand::Param(p) = *o else { continue };
                let rank = model.param(p).ty.rank();
                let role = match (is_moe, rank) {
                    (true, 3) if MOE_EXPERT_OPERANDS.contains(&pos) => ParamRole::Expert,
                    (false, 3) if is_grouped && pos == GROUPED_STACK_OPERAND => ParamRole::Grouped,
                    (true, 2) if MOE_SHARED_OPERANDS.contains(&pos) => ParamRole::Linear,
                    (false, 2) if weight_operands.contains(&pos) => {
                        let result = instr.results[0];
                        if f.outputs.contains(&result) {
                            ParamRole::LmHead
                        } else if read_by_router(f, i, result) {
                            ParamRole::Router
                        } else {
                            ParamRole::Linear
                        }
                    }
                    _ => ParamRole::Other,
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
        ParamRole::Other => 5,
        ParamRole::Grouped => 4,
        ParamRole::Router => 3,
        ParamRole::Expert => 2,
        ParamRole::LmHead => 1,
        ParamRole::Linear => 0,
    };
    if rank(a) >= rank(b) {
        a
    } else {
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expert_stacks_are_experts_and_a_shared_expert_is_linear() {
        let source = include_str!("../../../examples/readme_moe.seam");
        let (model, _) = seam_ir::text::parse(source).unwrap();
        let roles = param_roles(&model);
        let role = |name: &str| {
            let i = model.params.iter().position(|p| p.name == name).unwrap();
            roles[i]
        };
        assert_eq!(role("layers.0.experts.w_gate"), ParamRole::Expert);
        assert_eq!(role("layers.0.experts.w_up"), ParamRole::Expert);
        assert_eq!(role("layers.3.experts.w_down"), ParamRole::Expert);
        assert_eq!(role("layers.0.shared.w_gate"), ParamRole::Linear);
        assert_eq!(role("layers.0.shared.w_down"), ParamRole::Linear);
        assert_eq!(role("layers.0.wq"), ParamRole::Linear);
        assert_eq!(role("embed"), ParamRole::Other);
        assert_eq!(role("layers.0.mlp_norm"), ParamRole::Other);
    }

    #[test]
    fn modality_stacks_are_grouped_and_their_norms_other() {
        let source = include_str!("../../../examples/mot.seam");
        let (model, _) = seam_ir::text::parse(source).unwrap();
        let roles = param_roles(&model);
        let role = |name: &str| {
            let i = model.params.iter().position(|p| p.name == name).unwrap();
            roles[i]
        };
        assert_eq!(role("layers.0.wq"), ParamRole::Grouped);
        assert_eq!(role("layers.0.mlp.w_gate"), ParamRole::Grouped);
        assert_eq!(role("layers.0.attn_norm"), ParamRole::Other);
        assert_eq!(role("embed"), ParamRole::Other);
    }
}
