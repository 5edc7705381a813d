//! A decoder-only MoE transformer with a choice of routing: Read-ME's decoupled
//! pre-gating router, its per-layer top-k generalisation, Mixtral's in-layer
//! routers, or AdaMoE's router with a decoupled scale adapter.

use seam_ir::{Function, GatedAct, Instr, Model, Operand, ValueId};

use super::params::{
    declare_gated_mlp, declare_gated_weights, declare_layer, declare_norm, f32_param, LayerShape,
};
use crate::builder::{BuildError, ModelBuilder};
use crate::nn::{
    DecoderLayer, DecoderModel, ExpertChoice, Mlp, MoeMlp, PreGatingRouter, SharedExpert,
    StepShape, TopK,
};

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
    /// AdaMoE: selection decoupled from weighting. Each layer's router picks the
    /// top-`k` experts of `p = softmax(h·router)`; their weights come from an
    /// independent scale adapter, `p + h·scale_adapter` taken at the picked
    /// experts (not renormalised). The experts are GeGLU, and the layer's output
    /// is half its general FFN (the shared expert) plus half the routed experts.
    Adaptive(usize),
}

impl Routing {
    /// The experts' gated activation: GeGLU for AdaMoE, SwiGLU otherwise.
    pub fn expert_act(&self) -> GatedAct {
        match self {
            Routing::Adaptive(_) => GatedAct::GeGlu,
            _ => GatedAct::SwiGlu,
        }
    }

    /// Whether a decoupled router makes every layer's choice before the
    /// backbone runs (the model then has a `route` entry point beside `step`).
    pub fn is_pre_gated(&self) -> bool {
        matches!(
            self,
            Routing::PreGatedShared(_) | Routing::PreGatedPerLayer(..)
        )
    }
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
    /// With [`MoeTransformerConfig::kv_cache`] and `Some(max_batch)`, the
    /// model also has the batched `step` over KV pools of that many sequences.
    pub max_batch: Option<u64>,
}

/// The sequences the examples' KV pools hold ([`MoeTransformerConfig::with_kv_cache`]).
pub const EXAMPLE_MAX_BATCH: u64 = 4;

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
        max_batch: None,
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
        max_batch: None,
    }
}

/// An AdaMoE-shaped model (`examples/adamoe.seam`): 2 layers, d=256, 8 GeGLU
/// experts of 256 chosen top-2 by each layer's router and weighted by its scale
/// adapter, and a general FFN of 512 as the shared expert.
pub fn adamoe() -> MoeTransformerConfig {
    MoeTransformerConfig {
        name: "adamoe".into(),
        layers: 2,
        ffn: 256,
        routing: Routing::Adaptive(2),
        ..readme_moe()
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

impl MoeTransformerConfig {
    /// The same model with a KV cache of up to `max_seq_len` positions, and
    /// the batched `step` over pools of [`EXAMPLE_MAX_BATCH`] sequences, named
    /// `{name}_kv` (`examples/mixtral_tiny_kv.seam`, `examples/readme_moe_kv.seam`).
    pub fn with_kv_cache(mut self, max_seq_len: u64) -> Self {
        self.name = format!("{}_kv", self.name);
        self.kv_cache = Some(max_seq_len);
        self.max_batch = Some(EXAMPLE_MAX_BATCH);
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
        let (kv_len, step) = StepShape::declare(&mut m, self.kv_cache, self.max_batch);
        let decoder = DecoderModel {
            router: self.declare_router(&mut m),
            embed: f32_param(&mut m, "embed", &[self.vocab, self.d_model]),
            layers: (0..self.layers)
                .map(|l| self.declare_layer(&mut m, l))
                .collect(),
            norm: declare_norm(&mut m, "norm", self.d_model, self.eps),
            lm_head: f32_param(&mut m, "lm_head", &[self.d_model, self.vocab]),
        };
        decoder.add_functions(&mut m, &tokens, kv_len.as_ref(), step.as_ref())?;
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

    /// The shape of a layer `d_model` wide with these heads.
    fn layer_shape(&self, d_model: u64, heads: u64, kv_heads: u64) -> LayerShape {
        LayerShape {
            d_model,
            heads,
            kv_heads,
            rope_theta: self.rope_theta,
            eps: self.eps,
        }
    }

    /// Declares the decoupled router's params (`router.*`), if the routing has one.
    fn declare_router(&self, m: &mut ModelBuilder) -> Option<PreGatingRouter> {
        let (rc, top_k, head_names) = match self.routing {
            Routing::PreGatedShared(rc) => (
                rc,
                TopK::top1(),
                vec![format!("{}.head", PreGatingRouter::PREFIX)],
            ),
            Routing::PreGatedPerLayer(rc, k) => (
                rc,
                TopK::softmax_topk(k, true),
                (0..self.layers)
                    .map(|l| format!("{}.head.{l}", PreGatingRouter::PREFIX))
                    .collect(),
            ),
            Routing::InLayer(_) | Routing::Adaptive(_) => return None,
        };
        let p = PreGatingRouter::PREFIX;
        let d = rc.d_model;
        let embed = f32_param(m, &format!("{p}.embed"), &[self.vocab, d]);
        let shape = self.layer_shape(d, rc.heads, rc.heads);
        let layer = declare_layer(m, p, p.to_string(), 0, shape, |m| {
            Mlp::Dense(declare_gated_mlp(m, &format!("{p}.mlp"), d, rc.ffn))
        });
        Some(PreGatingRouter {
            embed,
            layer,
            norm: declare_norm(m, &format!("{p}.norm"), d, self.eps),
            heads: head_names
                .iter()
                .map(|n| f32_param(m, n, &[d, self.experts]))
                .collect(),
            top_k,
        })
    }

    /// Declares backbone layer `l`'s params (`layers.{l}.*`).
    fn declare_layer(&self, m: &mut ModelBuilder, l: usize) -> DecoderLayer {
        let p = format!("layers.{l}");
        let d = self.d_model;
        let shape = self.layer_shape(d, self.heads, self.kv_heads);
        declare_layer(m, &p, format!("l{l}"), l, shape, |m| {
            let choice = match self.routing {
                Routing::InLayer(k) => ExpertChoice::InLayer {
                    router: f32_param(m, &format!("{p}.router"), &[d, self.experts]),
                    top_k: TopK::softmax_topk(k, true),
                },
                Routing::Adaptive(k) => ExpertChoice::Adaptive {
                    router: f32_param(m, &format!("{p}.router"), &[d, self.experts]),
                    scale: f32_param(m, &format!("{p}.scale_adapter"), &[d, self.experts]),
                    k,
                },
                Routing::PreGatedShared(_) | Routing::PreGatedPerLayer(..) => {
                    ExpertChoice::PreGated
                }
            };
            let experts =
                declare_gated_weights(m, &format!("{p}.experts"), &[self.experts], d, self.ffn);
            let shared = self
                .shared_ffn
                .map(|fs| SharedExpert::InMoe(declare_gated_mlp(m, &format!("{p}.shared"), d, fs)));
            Mlp::Moe(MoeMlp {
                choice,
                experts,
                shared,
                act: self.routing.expert_act(),
                output_scale: matches!(self.routing, Routing::Adaptive(_)).then_some(0.5),
            })
        })
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
