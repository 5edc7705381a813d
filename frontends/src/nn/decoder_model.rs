//! A decoder-only transformer: token embedding, a stack of decoder layers
//! (optionally fed by a pre-gating router), final norm and output head; and
//! its entry points, with or without a KV cache.

use seam_ir::{DType, Dim, ParamId, TensorType, ValueId};

use super::{Built, DecoderLayer, KvCache, PreGatingRouter, RmsNorm, Tokens};
use crate::builder::{BuildError, FunctionBuilder, ModelBuilder};

/// Every parameter of a decoder-only transformer.
#[derive(Clone, Debug)]
pub(crate) struct DecoderModel {
    /// The pre-gating router, when the layers' experts are chosen by one.
    pub router: Option<PreGatingRouter>,
    /// The token embedding `[vocab, d_model]`.
    pub embed: ParamId,
    /// The decoder layers.
    pub layers: Vec<DecoderLayer>,
    /// The final norm.
    pub norm: RmsNorm,
    /// The output head `[d_model, vocab]`.
    pub lm_head: ParamId,
}

impl DecoderModel {
    /// Adds `forward(%ids: i32[tokens]) -> f32[tokens, vocab]` to `m` and, with
    /// a `kv_len` dim, `prefill(%ids: i32[tokens])` and `decode(%ids: i32[1])`:
    /// each keeps a KV cache per attention block (the router's first) as
    /// session state and returns the logits of its tokens, positioned after
    /// those already in the cache.
    pub(crate) fn add_functions(
        &self,
        m: &mut ModelBuilder,
        tokens: &Dim,
        kv_len: Option<&Dim>,
    ) -> Result<(), BuildError> {
        let mut f = m.function("forward");
        let ids = f.input("ids", TensorType::new(DType::I32, [tokens.clone()]));
        let pos = f.iota("pos", 0, TensorType::new(DType::I32, [tokens.clone()]))?;
        let logits = self.emit(&mut f, Tokens { rows: tokens, pos }, ids, &[])?;
        f.finish(&[logits]);
        let Some(kv_len) = kv_len else {
            return Ok(());
        };
        for (name, rows) in [("prefill", tokens.clone()), ("decode", Dim::Static(1))] {
            let mut f = m.function(name);
            let ids = f.input("ids", TensorType::new(DType::I32, [rows.clone()]));
            let caches = self.declare_caches(&mut f, kv_len);
            let all = f.iota("pos_all", 0, TensorType::new(DType::I32, [kv_len.clone()]))?;
            let pos = f.tail("pos", all, rows.clone())?;
            let logits = self.emit(&mut f, Tokens { rows: &rows, pos }, ids, &caches)?;
            f.finish(&[logits]);
        }
        Ok(())
    }

    /// Emits the whole model on the tokens `ids`; `caches` (the router's
    /// first, then one per layer) is empty without a KV cache.
    fn emit(
        &self,
        f: &mut FunctionBuilder<'_>,
        tokens: Tokens<'_>,
        ids: ValueId,
        caches: &[KvCache],
    ) -> Built {
        let mut caches = caches.iter().copied();
        let decisions = match &self.router {
            Some(r) => r.emit(f, tokens, ids, caches.next())?,
            None => Vec::new(),
        };
        let mut x = f.gather("x", self.embed, ids)?;
        for (l, layer) in self.layers.iter().enumerate() {
            let decision = decisions.get(l).or(decisions.first()).copied();
            x = layer.emit(f, tokens, x, decision, caches.next())?;
        }
        let h = self.norm.emit(f, "final_norm", x)?;
        f.matmul("logits", h, self.lm_head)
    }

    /// Declares a cache per attention block (the router's first) in `f`.
    fn declare_caches(&self, f: &mut FunctionBuilder<'_>, kv_len: &Dim) -> Vec<KvCache> {
        self.router
            .iter()
            .map(|r| &r.layer)
            .chain(&self.layers)
            .map(|layer| layer.attn.declare_cache(f, &layer.prefix, kv_len))
            .collect()
    }
}
