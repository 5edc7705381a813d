//! A decoder-only MoE transformer with a choice of routing: Read-ME's decoupled
//! pre-gating router, its per-layer top-k generalisation, or Mixtral's in-layer routers.

use seam_ir::{
    DType, Dim, Function, GatedAct, Instr, Model, Operand, ParamId, RouteMode, TensorType, ValueId,
};

use super::blocks::{
    add_cached_entry_points, f32_param, AttentionParams, AttentionShape, GatedFfnParams, KvCache,
};
use crate::builder::{BuildError, FunctionBuilder, ModelBuilder};

/// The decoupled router: its own one-layer causal transformer over its own token
/// embedding (it never reads the backbone's hidden states).
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct RouterConfig {
    /// Router width.
    pub d_model: u64,
    /// Router attention heads.
    pub heads: u64,
    /// Router SwiGLU hidden size.
    pub ffn: u64,
}

/// How tokens are routed to experts.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Routing {
    /// Read-ME: the router makes one top-1 decision per token (weight 1) that every
    /// layer uses, so expert `e` is the same path through all layers.
    PreGatedShared(RouterConfig),
    /// The general decoupled form: the router's final hidden state feeds one head
    /// per layer, each making a top-`k` decision (softmax, then top-k, renormalised).
    PreGatedPerLayer(RouterConfig, usize),
    /// Mixtral: each layer routes its own normalised hidden state, top-`k`
    /// (softmax, then top-k, renormalised).
    InLayer(usize),
}

/// Shape and routing of a MoE transformer.
#[derive(Clone, Debug, PartialEq)]
pub struct MoeTransformerConfig {
    /// Model name.
    pub name: String,
    /// Number of layers.
    pub layers: usize,
    /// Hidden size.
    pub d_model: u64,
    /// Query heads.
    pub heads: u64,
    /// Key/value heads (grouped-query attention when fewer than `heads`).
    pub kv_heads: u64,
    /// Hidden size of each expert.
    pub ffn: u64,
    /// Number of experts per layer.
    pub experts: u64,
    /// Hidden size of the always-on shared expert, if any.
    pub shared_ffn: Option<u64>,
    /// Vocabulary size.
    pub vocab: u64,
    /// Upper bound of the `tokens` dim.
    pub max_tokens: u64,
    /// RoPE base.
    pub rope_theta: f32,
    /// RMSNorm epsilon.
    pub eps: f32,
    /// Routing scheme.
    pub routing: Routing,
    /// Write each MoE layer as per-expert dense FFNs scaled by routing masks
    /// (the naive form importers produce, [`seam_ir::expand_moe`]) instead of
    /// the grouped `moe` op.
    pub dense_experts: bool,
    /// With `Some(max_seq_len)`, the model also has `prefill` and `decode`
    /// functions that keep a KV cache per attention block as session state, with
    /// the length dim `kv_len <= max_seq_len`.
    pub kv_cache: Option<u64>,
}

/// The router of the examples: 128 wide, 4 heads, SwiGLU of 256.
const TINY_ROUTER: RouterConfig = RouterConfig {
    d_model: 128,
    heads: 4,
    ffn: 256,
};

/// The Read-ME-shaped example (`examples/readme_moe.seam`): 4 layers, d=256,
/// 8 SwiGLU experts of 512 plus a shared expert, a 128-wide router transformer.
pub fn readme_moe() -> MoeTransformerConfig {
    MoeTransformerConfig {
        name: "readme_moe".into(),
        layers: 4,
        d_model: 256,
        heads: 4,
        kv_heads: 2,
        ffn: 512,
        experts: 8,
        shared_ffn: Some(512),
        vocab: 1024,
        max_tokens: 2048,
        rope_theta: 10000.0,
        eps: 1e-5,
        routing: Routing::PreGatedShared(TINY_ROUTER),
        dense_experts: false,
        kv_cache: None,
    }
}

/// The same backbone with per-layer top-2 decisions from the decoupled router
/// (`examples/pregated_topk.seam`).
pub fn pregated_topk() -> MoeTransformerConfig {
    let mut c = readme_moe();
    c.name = "pregated_topk".into();
    c.routing = Routing::PreGatedPerLayer(TINY_ROUTER, 2);
    c
}

/// A smaller pre-gating model (2 layers, d=128, 4 experts of 256 plus a shared
/// expert, per-layer top-2 heads) whose experts are written as per-expert dense
/// FFNs with routing masks (`examples/pregated_dense.seam`): the optimizer must
/// find the grouped `moe` itself.
pub fn pregated_dense() -> MoeTransformerConfig {
    MoeTransformerConfig {
        name: "pregated_dense".into(),
        layers: 2,
        d_model: 128,
        heads: 4,
        kv_heads: 2,
        ffn: 256,
        experts: 4,
        shared_ffn: Some(256),
        vocab: 512,
        max_tokens: 2048,
        rope_theta: 10000.0,
        eps: 1e-5,
        routing: Routing::PreGatedPerLayer(
            RouterConfig {
                d_model: 64,
                heads: 2,
                ffn: 128,
            },
            2,
        ),
        dense_experts: true,
        kv_cache: None,
    }
}

/// The same backbone with Mixtral's in-layer top-2 routers and no shared expert
/// (`examples/mixtral_tiny.seam`).
pub fn mixtral_tiny() -> MoeTransformerConfig {
    let mut c = readme_moe();
    c.name = "mixtral_tiny".into();
    c.shared_ffn = None;
    c.routing = Routing::InLayer(2);
    c
}

/// Parameters of the decoupled router transformer.
struct RouterParams {
    embed: ParamId,
    attn: AttentionParams,
    mlp_norm: ParamId,
    mlp: GatedFfnParams,
    norm: ParamId,
    heads: Vec<ParamId>,
}

/// Every parameter of the model.
struct ModelParams {
    router: Option<RouterParams>,
    embed: ParamId,
    layers: Vec<LayerParams>,
    norm: ParamId,
    lm_head: ParamId,
}

/// Parameters of one backbone layer.
struct LayerParams {
    attn: AttentionParams,
    mlp_norm: ParamId,
    router: Option<ParamId>,
    experts: GatedFfnParams,
    shared: Option<GatedFfnParams>,
}

impl MoeTransformerConfig {
    /// The same model with a KV cache of up to `max_seq_len` positions, named
    /// `{name}_kv` (`examples/mixtral_tiny_kv.seam`, `examples/readme_moe_kv.seam`).
    pub fn with_kv_cache(mut self, max_seq_len: u64) -> Self {
        self.name = format!("{}_kv", self.name);
        self.kv_cache = Some(max_seq_len);
        self
    }

    /// Builds the model: `forward(%ids: i32[tokens]) -> f32[tokens, vocab]`, and
    /// with [`MoeTransformerConfig::kv_cache`] also
    /// `prefill(%ids: i32[tokens], state caches...)` and
    /// `decode(%ids: i32[1], state caches...)`, which return the logits of the
    /// given tokens, positioned after those already in the cache.
    pub fn build(&self) -> Result<Model, BuildError> {
        let mut m = ModelBuilder::new(&self.name);
        let tokens = m.dim("tokens", self.max_tokens);
        let kv_len = self.kv_cache.map(|max| m.dim("kv_len", max));
        let p = ModelParams {
            router: self.declare_router(&mut m),
            embed: f32_param(&mut m, "embed", &[self.vocab, self.d_model]),
            layers: (0..self.layers)
                .map(|l| self.declare_layer(&mut m, l))
                .collect(),
            norm: f32_param(&mut m, "norm", &[self.d_model]),
            lm_head: f32_param(&mut m, "lm_head", &[self.d_model, self.vocab]),
        };

        let mut f = m.function("forward");
        let ids = f.input("ids", TensorType::new(DType::I32, [tokens.clone()]));
        let pos = f.iota("pos", 0, TensorType::new(DType::I32, [tokens.clone()]))?;
        let logits = self.emit_model(&mut f, &p, &tokens, ids, pos, &[])?;
        f.finish(&[logits]);

        if let Some(kv_len) = &kv_len {
            let declare = |f: &mut FunctionBuilder<'_>| -> Vec<KvCache> {
                let router = p.router.iter().map(|r| ("router".to_string(), &r.attn));
                let layers = p
                    .layers
                    .iter()
                    .enumerate()
                    .map(|(l, lp)| (format!("l{l}"), &lp.attn));
                router
                    .chain(layers)
                    .map(|(prefix, attn)| {
                        let s = attn.shape();
                        KvCache::declare(f, &prefix, s.kv_heads, s.head_dim(), kv_len)
                    })
                    .collect()
            };
            add_cached_entry_points(
                &mut m,
                &tokens,
                kv_len,
                declare,
                |f, rows, ids, pos, caches| self.emit_model(f, &p, rows, ids, pos, caches),
            )?;
        }
        let model = m.finish()?;
        if self.dense_experts {
            let mut dense =
                seam_ir::expand_all_moe(&model).map_err(|e| BuildError::Expand(Box::new(e)))?;
            dense.functions = dense.functions.iter().map(definition_order).collect();
            Ok(dense)
        } else {
            Ok(model)
        }
    }

    /// Emits the whole model over `tokens` rows; `caches` (router's first, then
    /// one per layer) is empty for the cache-free forward.
    fn emit_model(
        &self,
        f: &mut FunctionBuilder<'_>,
        p: &ModelParams,
        tokens: &Dim,
        ids: ValueId,
        pos: ValueId,
        caches: &[KvCache],
    ) -> Result<ValueId, BuildError> {
        let mut caches = caches.iter().copied();
        let decisions = match &p.router {
            Some(r) => self.emit_router(f, r, tokens, ids, pos, caches.next())?,
            None => Vec::new(),
        };
        let mut x = f.gather("x", p.embed, ids)?;
        for (l, lp) in p.layers.iter().enumerate() {
            let decision = decisions.get(l).or(decisions.first()).copied();
            x = self.emit_layer(f, l, lp, tokens, x, pos, decision, caches.next())?;
        }
        let h = f.rms_norm("final_norm", x, p.norm, self.eps)?;
        f.matmul("logits", h, p.lm_head)
    }

    fn attention_shape(&self, d_model: u64, heads: u64, kv_heads: u64) -> AttentionShape {
        AttentionShape {
            d_model,
            heads,
            kv_heads,
            rope_theta: self.rope_theta,
            eps: self.eps,
        }
    }

    fn declare_router(&self, m: &mut ModelBuilder) -> Option<RouterParams> {
        let (rc, per_layer) = match self.routing {
            Routing::PreGatedShared(rc) => (rc, false),
            Routing::PreGatedPerLayer(rc, _) => (rc, true),
            Routing::InLayer(_) => return None,
        };
        let d = rc.d_model;
        let head_names: Vec<String> = if per_layer {
            (0..self.layers)
                .map(|l| format!("router.head.{l}"))
                .collect()
        } else {
            vec!["router.head".to_string()]
        };
        Some(RouterParams {
            embed: f32_param(m, "router.embed", &[self.vocab, d]),
            attn: AttentionParams::declare(
                m,
                "router",
                self.attention_shape(d, rc.heads, rc.heads),
            ),
            mlp_norm: f32_param(m, "router.mlp_norm", &[d]),
            mlp: GatedFfnParams::declare_dense(m, "router.mlp", d, rc.ffn),
            norm: f32_param(m, "router.norm", &[d]),
            heads: head_names
                .iter()
                .map(|n| f32_param(m, n, &[d, self.experts]))
                .collect(),
        })
    }

    fn declare_layer(&self, m: &mut ModelBuilder, l: usize) -> LayerParams {
        let p = format!("layers.{l}");
        let d = self.d_model;
        LayerParams {
            attn: AttentionParams::declare(
                m,
                &p,
                self.attention_shape(d, self.heads, self.kv_heads),
            ),
            mlp_norm: f32_param(m, &format!("{p}.mlp_norm"), &[d]),
            router: matches!(self.routing, Routing::InLayer(_))
                .then(|| f32_param(m, &format!("{p}.router"), &[d, self.experts])),
            experts: GatedFfnParams::declare_experts(
                m,
                &format!("{p}.experts"),
                self.experts,
                d,
                self.ffn,
            ),
            shared: self
                .shared_ffn
                .map(|fs| GatedFfnParams::declare_dense(m, &format!("{p}.shared"), d, fs)),
        }
    }

    /// Emits the router transformer; returns one (ids, weights) decision per
    /// router head (one shared decision for Read-ME, one per layer otherwise).
    fn emit_router(
        &self,
        f: &mut FunctionBuilder<'_>,
        r: &RouterParams,
        tokens: &Dim,
        ids: ValueId,
        pos: ValueId,
        cache: Option<KvCache>,
    ) -> Result<Vec<(ValueId, ValueId)>, BuildError> {
        let x = f.gather("router.x", r.embed, ids)?;
        let x = r.attn.emit(f, "router", tokens, x, pos, cache)?;
        let h = f.rms_norm("router.mlp_in", x, r.mlp_norm, self.eps)?;
        let y = r.mlp.emit_swiglu(f, "router.mlp", h)?;
        let x = f.add("router.mlp_res", x, y)?;
        let h = f.rms_norm("router.out", x, r.norm, self.eps)?;
        let (k, mode, renorm) = match self.routing {
            Routing::PreGatedPerLayer(_, k) => (k, RouteMode::SoftmaxTopk, true),
            _ => (1, RouteMode::TopkSoftmax, false),
        };
        let single = r.heads.len() == 1;
        r.heads
            .iter()
            .enumerate()
            .map(|(l, &head)| {
                let tag = if single {
                    String::new()
                } else {
                    format!(".{l}")
                };
                let logits = f.matmul(&format!("router.logits{tag}"), h, head)?;
                f.route(
                    [&format!("expert_ids{tag}"), &format!("expert_weights{tag}")],
                    logits,
                    None,
                    k,
                    mode,
                    renorm,
                )
            })
            .collect()
    }

    #[allow(clippy::too_many_arguments)]
    fn emit_layer(
        &self,
        f: &mut FunctionBuilder<'_>,
        l: usize,
        p: &LayerParams,
        tokens: &Dim,
        x: ValueId,
        pos: ValueId,
        decision: Option<(ValueId, ValueId)>,
        cache: Option<KvCache>,
    ) -> Result<ValueId, BuildError> {
        let pre = format!("l{l}");
        let n = |suffix: &str| format!("{pre}.{suffix}");
        let x = p.attn.emit(f, &pre, tokens, x, pos, cache)?;
        let h = f.rms_norm(&n("mlp_in"), x, p.mlp_norm, self.eps)?;
        let (ids, weights) = match (self.routing, p.router, decision) {
            (Routing::InLayer(k), Some(router), _) => {
                let logits = f.matmul(&n("router_logits"), h, router)?;
                f.route(
                    [&n("expert_ids"), &n("expert_weights")],
                    logits,
                    None,
                    k,
                    RouteMode::SoftmaxTopk,
                    true,
                )?
            }
            (_, _, Some(d)) => d,
            _ => return Err(BuildError::MissingRouting(l)),
        };
        let y = f.moe(
            &n("moe"),
            [h.into(), ids.into(), weights.into()],
            p.experts.operands(),
            p.shared.as_ref().map(GatedFfnParams::operands),
            GatedAct::SwiGlu,
        )?;
        f.add(&n("mlp_res"), x, y)
    }
}

/// `func` with its values numbered in definition order (inputs, then results
/// in body order), as parsing its text gives them.
fn definition_order(func: &Function) -> Function {
    let mut renumber: Vec<Option<ValueId>> = vec![None; func.values.len()];
    let mut out = Function::new(func.name.clone());
    let mut define = |v: ValueId, out: &mut Function| {
        let value = func.value(v);
        let id = out.add_value(value.name.clone(), value.ty.clone());
        renumber[v.index()] = Some(id);
        id
    };
    for &v in &func.inputs {
        let id = define(v, &mut out);
        out.inputs.push(id);
    }
    for instr in &func.body {
        let results = instr.results.iter().map(|&r| define(r, &mut out)).collect();
        out.body.push(Instr {
            op: instr.op.clone(),
            operands: Vec::new(),
            results,
        });
    }
    let map = |v: ValueId| renumber[v.index()].unwrap_or(v);
    for (instr, orig) in out.body.iter_mut().zip(&func.body) {
        instr.operands = orig
            .operands
            .iter()
            .map(|o| match *o {
                Operand::Value(v) => Operand::Value(map(v)),
                p => p,
            })
            .collect();
    }
    out.outputs = func.outputs.iter().map(|&v| map(v)).collect();
    out
}
