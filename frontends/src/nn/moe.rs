//! A mixture-of-experts MLP: SwiGLU experts run by the grouped `moe` op, with
//! an optional always-on shared expert.

use seam_ir::{GatedAct, Operand, ParamId, ValueId};

use super::{Built, Decision, GatedMlp, TopK};
use crate::builder::{BuildError, FunctionBuilder};

/// Where a MoE layer's decision comes from.
#[derive(Copy, Clone, Debug)]
pub(crate) enum ExpertChoice {
    /// The layer routes its own normalised input: `{prefix}.router_logits =
    /// h·router` (`router` `[d_model, experts]`), then `top_k`.
    InLayer {
        /// `[d_model, experts]`.
        router: ParamId,
        /// The choice made from the logits.
        top_k: TopK,
    },
    /// The decision is made before the backbone runs, by a pre-gating router,
    /// and passed in.
    PreGated,
}

/// The always-on expert of a MoE layer.
#[derive(Copy, Clone, Debug)]
pub(crate) enum SharedExpert {
    /// An operand of the `moe` op, added with weight 1.
    InMoe(GatedMlp),
    /// Emitted beside the op and scaled by `sigmoid(h·gate)` (Qwen2-MoE).
    SigmoidGated {
        /// The expert.
        mlp: GatedMlp,
        /// `[d_model, 1]`.
        gate: ParamId,
    },
}

/// The parameters of one MoE MLP.
#[derive(Copy, Clone, Debug)]
pub(crate) struct MoeMlp {
    /// How tokens are routed.
    pub choice: ExpertChoice,
    /// Stacked expert weights: gate and up `[experts, d_model, ffn]`, down
    /// `[experts, ffn, d_model]`.
    pub experts: [ParamId; 3],
    /// The shared expert, if any.
    pub shared: Option<SharedExpert>,
}

impl MoeMlp {
    /// Emits the MLP on the normalised input `h`, named under `prefix`; a
    /// [`ExpertChoice::PreGated`] layer uses `pre_gated`, the router's decision
    /// (or the error to report when there is none).
    pub(crate) fn emit(
        &self,
        f: &mut FunctionBuilder<'_>,
        prefix: &str,
        h: ValueId,
        pre_gated: Result<Decision, BuildError>,
    ) -> Built {
        let n = |suffix: &str| format!("{prefix}.{suffix}");
        let d = match self.choice {
            ExpertChoice::InLayer { router, top_k } => {
                let logits = f.matmul(&n("router_logits"), h, router)?;
                top_k.emit(f, [&n("expert_ids"), &n("expert_weights")], logits)?
            }
            ExpertChoice::PreGated => pre_gated?,
        };
        let in_moe = match self.shared {
            Some(SharedExpert::InMoe(mlp)) => Some(mlp.moe_operands()),
            _ => None,
        };
        let y = f.moe(
            &n("moe"),
            [h.into(), d.ids.into(), d.weights.into()],
            self.experts.map(Operand::from),
            in_moe,
            GatedAct::SwiGlu,
        )?;
        let Some(SharedExpert::SigmoidGated { mlp, gate }) = self.shared else {
            return Ok(y);
        };
        let s = mlp.emit(f, &n("shared"), h)?;
        let g = f.matmul(&n("shared_gate"), h, gate)?;
        let g = f.sigmoid(&n("shared_gate_act"), g)?;
        let s = f.mul(&n("shared_gated"), g, s)?;
        f.add(&n("moe_total"), y, s)
    }
}
