//! A decoupled pre-gating router (Read-ME): its own one-layer causal
//! transformer over its own token embedding, which never reads the backbone's
//! hidden states, so every expert decision is known before the backbone runs.

use seam_ir::{ParamId, ValueId};

use super::{Decision, DecoderLayer, KvCache, RmsNorm, Tokens, TopK};
use crate::builder::{BuildError, FunctionBuilder};

/// The parameters of a pre-gating router.
#[derive(Clone, Debug)]
pub(crate) struct PreGatingRouter {
    /// Its token embedding `[vocab, width]`.
    pub embed: ParamId,
    /// Its dense decoder layer (prefix [`PreGatingRouter::PREFIX`]).
    pub layer: DecoderLayer,
    /// The norm after the layer.
    pub norm: RmsNorm,
    /// Its heads `[width, experts]`: one shared by every backbone layer, or one per layer.
    pub heads: Vec<ParamId>,
    /// The choice each head makes.
    pub top_k: TopK,
}

impl PreGatingRouter {
    /// The prefix of the router's values and cache states.
    pub(crate) const PREFIX: &'static str = "router";

    /// Emits the router over the tokens `ids`; returns one decision per head
    /// (`expert_ids`, `expert_weights`, suffixed `.{l}` when there is a head per layer).
    pub(crate) fn emit(
        &self,
        f: &mut FunctionBuilder<'_>,
        tokens: Tokens<'_>,
        ids: ValueId,
        cache: Option<KvCache>,
    ) -> Result<Vec<Decision>, BuildError> {
        let n = |suffix: &str| format!("{}.{suffix}", Self::PREFIX);
        let x = f.gather(&n("x"), self.embed, ids)?;
        let x = self.layer.emit(f, tokens, x, None, cache)?;
        let h = self.norm.emit(f, &n("out"), x)?;
        let single = self.heads.len() == 1;
        self.heads
            .iter()
            .enumerate()
            .map(|(l, &head)| {
                let tag = if single {
                    String::new()
                } else {
                    format!(".{l}")
                };
                let logits = f.matmul(&n(&format!("logits{tag}")), h, head)?;
                let names = [format!("expert_ids{tag}"), format!("expert_weights{tag}")];
                self.top_k.emit(f, [&names[0], &names[1]], logits)
            })
            .collect()
    }
}
