//! A mixture-of-experts MLP: gated experts run by the grouped `moe` op, with
//! an optional always-on shared expert.

use seam_ir::{DType, GatedAct, Operand, ParamId, RouteMode, TensorType, ValueId};

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
    /// AdaMoE: selection decoupled from weighting. The layer's router picks
    /// the top-`k` experts of `p = softmax(h·router)`; their weights are
    /// `p + h·scale` (an independent scale adapter, `[d_model, experts]`) taken
    /// at the picked experts, not renormalised (`route` mode `take`).
    Adaptive {
        /// `[d_model, experts]`.
        router: ParamId,
        /// The scale adapter, `[d_model, experts]`.
        scale: ParamId,
        /// Experts per token.
        k: usize,
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
    /// The experts' (and an in-`moe` shared expert's) gated activation.
    pub act: GatedAct,
    /// A factor the layer's output is multiplied by (AdaMoE mixes its general
    /// FFN, the shared expert, and the routed experts half and half: 0.5).
    pub output_scale: Option<f32>,
}

impl MoeMlp {
    /// SwiGLU experts, the output unscaled (Mixtral, Qwen2-MoE, OLMoE, Read-ME).
    pub(crate) fn swiglu(
        choice: ExpertChoice,
        experts: [ParamId; 3],
        shared: Option<SharedExpert>,
    ) -> Self {
        MoeMlp {
            choice,
            experts,
            shared,
            act: GatedAct::SwiGlu,
            output_scale: None,
        }
    }

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
            ExpertChoice::Adaptive { router, scale, k } => {
                let logits = f.matmul(&n("router_logits"), h, router)?;
                let probs = f.softmax(&n("router_probs"), logits)?;
                let adapter = f.matmul(&n("scale_adapter"), h, scale)?;
                let scores = f.add(&n("expert_scores"), probs, adapter)?;
                let (ids_name, weights_name) = (n("expert_ids"), n("expert_weights"));
                let names = [ids_name.as_str(), weights_name.as_str()];
                let (ids, weights) =
                    f.route(names, probs, Some(scores.into()), k, RouteMode::Take, false)?;
                Decision { ids, weights }
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
            self.act,
        )?;
        let y = match self.output_scale {
            Some(s) => {
                let scalar = TensorType::new(DType::F32, Vec::<u64>::new());
                let s = f.constant(&n("output_scale"), f64::from(s), scalar)?;
                f.mul(&n("moe_scaled"), y, s)?
            }
            None => y,
        };
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
