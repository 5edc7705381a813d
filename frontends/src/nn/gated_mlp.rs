//! The SwiGLU MLP.

use seam_ir::{Operand, ValueId};

use super::{Built, Linear};
use crate::builder::FunctionBuilder;

/// `down(silu(gate(x)) * up(x))`: a dense MLP, or the shared expert of a MoE layer.
#[derive(Copy, Clone, Debug)]
pub(crate) struct GatedMlp {
    /// `[d_model, ffn]`.
    pub gate: Linear,
    /// `[d_model, ffn]`.
    pub up: Linear,
    /// `[ffn, d_model]`.
    pub down: Linear,
}

impl GatedMlp {
    /// Emits the MLP on `x`, named under `prefix` (the result is `{prefix}.down`).
    pub(crate) fn emit(&self, f: &mut FunctionBuilder<'_>, prefix: &str, x: ValueId) -> Built {
        let n = |suffix: &str| format!("{prefix}.{suffix}");
        let g = self.gate.emit(f, &n("gate"), x)?;
        let g = f.silu(&n("gate_act"), g)?;
        let u = self.up.emit(f, &n("up"), x)?;
        let h = f.mul(&n("gated"), g, u)?;
        self.down.emit(f, &n("down"), h)
    }

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
