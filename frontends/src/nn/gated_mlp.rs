//! The SwiGLU MLP.

use seam_ir::{Operand, ValueId};

use super::{Built, Linear, Project};
use crate::builder::FunctionBuilder;

/// `down(silu(gate(x)) * up(x))`: a dense MLP, or the shared expert of a MoE
/// layer. `P` is the projections' kind: [`Linear`], or per-modality weights.
#[derive(Copy, Clone, Debug)]
pub(crate) struct GatedMlp<P = Linear> {
    /// `[d_model, ffn]`.
    pub gate: P,
    /// `[d_model, ffn]`.
    pub up: P,
    /// `[ffn, d_model]`.
    pub down: P,
}

impl<P: Project> GatedMlp<P> {
    /// Emits the MLP on `x`, named under `prefix` (the result is `{prefix}.down`).
    pub(crate) fn emit(&self, f: &mut FunctionBuilder<'_>, prefix: &str, x: ValueId) -> Built {
        let n = |suffix: &str| format!("{prefix}.{suffix}");
        let g = self.gate.project(f, &n("gate"), x)?;
        let g = f.silu(&n("gate_act"), g)?;
        let u = self.up.project(f, &n("up"), x)?;
        let h = f.mul(&n("gated"), g, u)?;
        self.down.project(f, &n("down"), h)
    }
}

impl GatedMlp {
    /// The three weights as the `moe` op's shared-expert operands (biases are
    /// not part of the op).
    pub(crate) fn moe_operands(&self) -> [Operand; 3] {
        [
            self.gate.weight.into(),
            self.up.weight.into(),
            self.down.weight.into(),
        ]
    }
}
