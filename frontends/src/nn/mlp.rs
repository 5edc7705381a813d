//! The MLP of a decoder layer: dense or mixture-of-experts.

use seam_ir::ValueId;

use super::{Built, Decision, GatedMlp, MoeMlp};
use crate::builder::{BuildError, FunctionBuilder};

/// The MLP of one decoder layer.
#[derive(Copy, Clone, Debug)]
pub(crate) enum Mlp {
    /// A dense SwiGLU MLP (named `{prefix}.mlp.*`).
    Dense(GatedMlp),
    /// A mixture of experts.
    Moe(MoeMlp),
}

impl Mlp {
    /// Emits the MLP on the normalised input `h` of layer `layer`, named under
    /// `prefix`; `decision` is the pre-gating router's, if any.
    pub(crate) fn emit(
        &self,
        f: &mut FunctionBuilder<'_>,
        prefix: &str,
        layer: usize,
        h: ValueId,
        decision: Option<Decision>,
    ) -> Built {
        match self {
            Mlp::Dense(mlp) => mlp.emit(f, &format!("{prefix}.mlp"), h),
            Mlp::Moe(moe) => {
                let pre_gated = decision.ok_or(BuildError::MissingRouting(layer));
                moe.emit(f, prefix, h, pre_gated)
            }
        }
    }
}
