//! Checkpoint tensor names of each architecture (the Hugging Face `state_dict`
//! keys as `save_pretrained` writes them).

use super::arch::Family;

/// The token embedding `[vocab, hidden]`.
pub(crate) const EMBED: &str = "model.embed_tokens.weight";
/// The final RMSNorm weight.
pub(crate) const FINAL_NORM: &str = "model.norm.weight";
/// The output projection `[vocab, hidden]` (absent when tied to the embedding).
pub(crate) const LM_HEAD: &str = "lm_head.weight";

/// Read-ME's router token embedding.
pub(crate) const ROUTER_EMBED: &str = "router.embed_tokens.weight";
/// Read-ME's router final norm.
pub(crate) const ROUTER_NORM: &str = "router.norm.weight";
/// Read-ME's router head `[experts, router_hidden]`.
pub(crate) const ROUTER_HEAD: &str = "router.gate.weight";
/// Read-ME's router transformer layer.
pub(crate) const ROUTER_LAYER: &str = "router.layers.0";

/// The prefix of backbone layer `l`.
pub(crate) fn layer(l: usize) -> String {
    format!("model.layers.{l}")
}

/// Names inside one decoder layer (backbone or Read-ME router) with prefix `p`.
#[derive(Clone, Debug)]
pub(crate) struct LayerNames {
    prefix: String,
    family: Family,
}

impl LayerNames {
    /// The names under `prefix` for `family`.
    pub(crate) fn new(prefix: impl Into<String>, family: Family) -> Self {
        LayerNames {
            prefix: prefix.into(),
            family,
        }
    }

    /// `{p}.{suffix}`.
    pub(crate) fn at(&self, suffix: &str) -> String {
        format!("{}.{suffix}", self.prefix)
    }

    /// An attention tensor: `proj` is `q_proj`, `k_proj`, `v_proj`, `o_proj`,
    /// `q_norm` or `k_norm`; `kind` is `weight` or `bias`.
    pub(crate) fn attn(&self, proj: &str, kind: &str) -> String {
        self.at(&format!("self_attn.{proj}.{kind}"))
    }

    /// The pre-attention norm.
    pub(crate) fn input_norm(&self) -> String {
        self.at("input_layernorm.weight")
    }

    /// The pre-MLP norm.
    pub(crate) fn post_attention_norm(&self) -> String {
        self.at("post_attention_layernorm.weight")
    }

    /// A dense MLP projection (`gate_proj`, `up_proj`, `down_proj`), `kind` `weight` or `bias`.
    pub(crate) fn mlp(&self, proj: &str, kind: &str) -> String {
        self.at(&format!("mlp.{proj}.{kind}"))
    }

    fn moe_block(&self) -> &'static str {
        match self.family {
            Family::Mixtral => "block_sparse_moe",
            _ => "mlp",
        }
    }

    /// The in-layer router `[experts, hidden]`.
    pub(crate) fn router(&self) -> String {
        self.at(&format!("{}.gate.weight", self.moe_block()))
    }

    /// The in-layer router as transformers 5.x names it in memory (Mixtral's
    /// `block_sparse_moe` became `mlp`), written by `save_original_format=False`.
    pub(crate) fn router_v5(&self) -> String {
        self.at("mlp.gate.weight")
    }

    /// transformers 5.x's fused expert tensors: `gate_up_proj` `[E, 2F, D]` and
    /// `down_proj` `[E, D, F]`.
    pub(crate) fn fused_experts(&self) -> [String; 2] {
        ["gate_up_proj", "down_proj"].map(|p| self.at(&format!("mlp.experts.{p}")))
    }

    /// Expert `e`'s gate, up and down projections.
    pub(crate) fn expert(&self, e: u64) -> [String; 3] {
        let (g, u, d) = match self.family {
            Family::Mixtral => ("w1", "w3", "w2"),
            _ => ("gate_proj", "up_proj", "down_proj"),
        };
        let base = format!("{}.experts.{e}", self.moe_block());
        [g, u, d].map(|p| self.at(&format!("{base}.{p}.weight")))
    }

    /// The shared expert's gate, up and down projections.
    pub(crate) fn shared_expert(&self) -> [String; 3] {
        ["gate_proj", "up_proj", "down_proj"]
            .map(|p| self.at(&format!("mlp.shared_expert.{p}.weight")))
    }

    /// Qwen2-MoE's shared-expert gate `[1, hidden]`.
    pub(crate) fn shared_expert_gate(&self) -> String {
        self.at("mlp.shared_expert_gate.weight")
    }
}
