//! A decoder-only transformer: token embedding, a stack of decoder layers
//! (optionally fed by a pre-gating router), final norm and output head; and
//! its entry points, with or without a KV cache.

use seam_ir::{DType, Dim, ParamId, TensorType, ValueId};

use super::{Built, DecoderLayer, KvCache, PoolShape, PreGatingRouter, RmsNorm, Tokens};
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

/// The batched entry point's shape: sequences sampled per step, and the KV
/// pools' slots and positions.
#[derive(Clone, Debug)]
pub(crate) struct StepShape {
    /// `batch`: the rows of logits one step returns (one per sampled sequence).
    pub batch: Dim,
    /// The pools' slots and positions.
    pub pool: PoolShape,
}

impl StepShape {
    /// The `kv_len` dim of a KV cache of `kv_cache` positions, declared in
    /// `m`, and with `max_batch` too, the batched step's shape: a `batch`
    /// dim of that bound and pools of `max_batch` slots by `kv_cache`
    /// positions.
    pub(crate) fn declare(
        m: &mut ModelBuilder,
        kv_cache: Option<u64>,
        max_batch: Option<u64>,
    ) -> (Option<Dim>, Option<StepShape>) {
        let Some(positions) = kv_cache else {
            return (None, None);
        };
        let kv_len = m.dim("kv_len", positions);
        let step = max_batch.map(|slots| StepShape {
            batch: m.dim("batch", slots),
            pool: PoolShape { slots, positions },
        });
        (Some(kv_len), step)
    }
}

impl DecoderModel {
    /// Adds `forward(%ids: i32[tokens]) -> f32[tokens, vocab]` to `m`; with
    /// a `kv_len` dim, `prefill(%ids: i32[tokens])` and `decode(%ids: i32[1])`:
    /// each keeps a KV cache per attention block (the router's first) as
    /// session state and returns the logits of its tokens, positioned after
    /// those already in the cache; and with a `step` shape, the batched
    /// `step(%ids, %slots, %positions: i32[tokens], %rows: i32[batch]) ->
    /// f32[batch, vocab]` over KV pools (the runtime's serving contract):
    /// token `t` of any sequence sits in pool slot `slots[t]` at
    /// `positions[t]`, and the logits are those of the tokens `rows`. With a
    /// pre-gating router and a `step`, also `route` (see
    /// [`DecoderModel::add_route`]).
    pub(crate) fn add_functions(
        &self,
        m: &mut ModelBuilder,
        tokens: &Dim,
        kv_len: Option<&Dim>,
        step: Option<&StepShape>,
    ) -> Result<(), BuildError> {
        let mut f = m.function("forward");
        let ids = f.input("ids", TensorType::new(DType::I32, [tokens.clone()]));
        let pos = f.iota("pos", 0, TensorType::new(DType::I32, [tokens.clone()]))?;
        let x = self.emit(&mut f, Tokens { rows: tokens, pos }, ids, &[])?;
        let logits = self.head(&mut f, x)?;
        f.finish(&[logits]);
        if let Some(kv_len) = kv_len {
            for (name, rows) in [("prefill", tokens.clone()), ("decode", Dim::Static(1))] {
                let mut f = m.function(name);
                let ids = f.input("ids", TensorType::new(DType::I32, [rows.clone()]));
                let caches = self.declare_caches(|a, prefix| {
                    KvCache::declare(&mut f, prefix, a.cache_row(), kv_len)
                });
                let all = f.iota("pos_all", 0, TensorType::new(DType::I32, [kv_len.clone()]))?;
                let pos = f.tail("pos", all, rows.clone())?;
                let x = self.emit(&mut f, Tokens { rows: &rows, pos }, ids, &caches)?;
                let logits = self.head(&mut f, x)?;
                f.finish(&[logits]);
            }
        }
        if let Some(step) = step {
            self.add_step(m, tokens, step)?;
            self.add_route(m, tokens, step)?;
        }
        Ok(())
    }

    /// With a pre-gating router, adds `route(%ids, %slots, %positions:
    /// i32[tokens]) -> (i32[tokens, k], …)`: the router alone over `step`'s
    /// tokens, returning each head's expert ids (one output per head, in
    /// head order: per layer, or one shared by every layer) — the experts
    /// `step` will use for those tokens, known before it runs. It keeps only
    /// the router's pool states (`router.k_pool`, `router.v_pool`, shared
    /// with `step`) and writes each token's keys and values there as `step`
    /// does, so a token routed and later stepped at the same slot and
    /// position is written twice with the same values. Without a pre-gating
    /// router (routers inside the layers) there is no `route`: a layer's
    /// experts are known only once the layers before it have run.
    fn add_route(
        &self,
        m: &mut ModelBuilder,
        tokens: &Dim,
        step: &StepShape,
    ) -> Result<(), BuildError> {
        let Some(router) = &self.router else {
            return Ok(());
        };
        let per_token = || TensorType::new(DType::I32, [tokens.clone()]);
        let mut f = m.function("route");
        let ids = f.input("ids", per_token());
        let slots = f.input("slots", per_token());
        let positions = f.input("positions", per_token());
        let layer = &router.layer;
        let cache = KvCache::declare_pool(
            &mut f,
            &layer.prefix,
            layer.attn.cache_row(),
            step.pool,
            [slots, positions],
        );
        let tokens = Tokens {
            rows: tokens,
            pos: positions,
        };
        let decisions = router.emit(&mut f, tokens, ids, Some(cache))?;
        let outputs: Vec<ValueId> = decisions.iter().map(|d| d.ids).collect();
        f.finish(&outputs);
        Ok(())
    }

    /// Adds the batched `step` (see [`DecoderModel::add_functions`]).
    fn add_step(
        &self,
        m: &mut ModelBuilder,
        tokens: &Dim,
        step: &StepShape,
    ) -> Result<(), BuildError> {
        let per_token = || TensorType::new(DType::I32, [tokens.clone()]);
        let mut f = m.function("step");
        let ids = f.input("ids", per_token());
        let slots = f.input("slots", per_token());
        let positions = f.input("positions", per_token());
        let rows = f.input("rows", TensorType::new(DType::I32, [step.batch.clone()]));
        let caches = self.declare_caches(|a, prefix| {
            KvCache::declare_pool(&mut f, prefix, a.cache_row(), step.pool, [slots, positions])
        });
        let tokens = Tokens {
            rows: tokens,
            pos: positions,
        };
        let x = self.emit(&mut f, tokens, ids, &caches)?;
        let last = f.gather("last", x, rows)?;
        let logits = self.head(&mut f, last)?;
        f.finish(&[logits]);
        Ok(())
    }

    /// Emits the embedding and every layer on the tokens `ids` (the hidden
    /// states before the final norm); `caches` (the router's first, then one
    /// per layer) is empty without a KV cache.
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
        Ok(x)
    }

    /// The final norm and the output head on hidden states `x`.
    fn head(&self, f: &mut FunctionBuilder<'_>, x: ValueId) -> Built {
        let h = self.norm.emit(f, "final_norm", x)?;
        f.matmul("logits", h, self.lm_head)
    }

    /// Declares a cache per attention block (the router's first) with
    /// `declare`, given the block and its prefix.
    fn declare_caches(
        &self,
        mut declare: impl FnMut(&super::Attention, &str) -> KvCache,
    ) -> Vec<KvCache> {
        self.router
            .iter()
            .map(|r| &r.layer)
            .chain(&self.layers)
            .map(|layer| declare(&layer.attn, &layer.prefix))
            .collect()
    }
}
