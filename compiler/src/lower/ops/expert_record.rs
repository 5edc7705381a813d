//! The record of a lowered MoE layer that lets a runtime keep its experts in
//! host memory: where the routing is, which steps read the expert stacks and
//! the plan's block table they read them through (it becomes a
//! `seam_bundle::ExpertLayer`).

use seam_core::SizeExpr;
use seam_ir::{Instr, Operand};

use crate::lower::{LowerCx, Source, TensorId};

/// A lowered MoE layer (see `seam_bundle::ExpertLayer` for what each field
/// means to a runtime); step indices count the function's steps.
#[derive(Clone, Debug)]
pub struct LoweredExperts {
    /// The MoE result's name.
    pub name: String,
    /// Experts of the layer.
    pub experts: u32,
    /// Pairs per block of the plan.
    pub block_rows: u32,
    /// The routing ids tensor.
    pub ids: TensorId,
    /// The number of ids (tokens × choices).
    pub pairs: SizeExpr,
    /// The last step before the plan writing the ids (`None`: an input).
    pub ids_ready: Option<usize>,
    /// The plan step.
    pub plan: usize,
    /// The plan's block table.
    pub block_expert: TensorId,
    /// Blocks of the plan.
    pub blocks: SizeExpr,
    /// One past the last step reading the expert stacks.
    pub experts_end: usize,
    /// The expert stacks' tensors (gate, up, down as packed).
    pub stacks: Vec<TensorId>,
}

/// What the MoE lowering knows of a layer when its last expert step is emitted.
pub(crate) struct ExpertSteps<'a> {
    /// The `moe` instruction (operands 3..6 are the expert stacks).
    pub instr: &'a Instr,
    /// Its experts and block rows.
    pub experts: u32,
    pub block_rows: u32,
    /// The plan step and its tensors.
    pub plan: usize,
    pub block_expert: TensorId,
    pub blocks: SizeExpr,
    /// The number of ids.
    pub pairs: SizeExpr,
}

impl LowerCx<'_> {
    /// Records the MoE layer whose plan is `s.plan` and whose expert steps end
    /// with the last step emitted.
    pub(crate) fn record_experts(&mut self, s: ExpertSteps<'_>) {
        let ids = self.operand(s.instr.operands[1]);
        let ids_ready = self.steps[..s.plan]
            .iter()
            .rposition(|step| step.writes.contains(&ids));
        let experts_end = self.steps.len();
        let stack_params: Vec<_> = s.instr.operands[3..6]
            .iter()
            .filter_map(|o| match o {
                Operand::Param(p) => Some(*p),
                Operand::Value(_) => None,
            })
            .collect();
        let mut stacks = Vec::new();
        for step in &self.steps[s.plan + 1..experts_end] {
            for a in &step.args {
                let is_stack = matches!(self.tensors[a.tensor.0].source,
                    Source::Param(p, _) if stack_params.contains(&p));
                if is_stack && !stacks.contains(&a.tensor) {
                    stacks.push(a.tensor);
                }
            }
        }
        let name = self.result_name(s.instr);
        self.expert_layers.push(LoweredExperts {
            name,
            experts: s.experts,
            block_rows: s.block_rows,
            ids,
            pairs: s.pairs,
            ids_ready,
            plan: s.plan,
            block_expert: s.block_expert,
            blocks: s.blocks,
            experts_end,
            stacks,
        });
    }
}
