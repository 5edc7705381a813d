//! Building the IR graph of a [`Spec`]: its parameters, each with its
//! checkpoint source, declared as the transformer blocks of [`crate::nn`],
//! which then emit `forward(ids[tokens]) -> logits[tokens, vocab]` and, with a
//! KV cache, also `prefill(ids[tokens])` and `decode(ids[1])`.

use seam_ir::{Model, ParamId};

use super::arch::{AttentionSpec, Family, MlpSpec, RouterSpec, Spec};
use super::declarer::Declarer;
use super::names::{self, LayerNames};
use super::weights::{ExpertPart, Source};
use crate::builder::{BuildError, ModelBuilder};
use crate::nn::{
    Attention, AttentionShape, DecoderLayer, DecoderModel, ExpertChoice, GatedMlp, Linear, Mlp,
    MoeMlp, PreGatingRouter, QkNorm, RmsNorm, SharedExpert, StepShape, TopK,
};

/// Declares the `nn.Linear` whose checkpoint tensors are `{weight, bias}`
/// (the weight stored `[in, out]` in the IR).
fn declare_linear(
    d: &mut Declarer,
    weight: String,
    bias: Option<String>,
    i: u64,
    o: u64,
) -> Linear {
    Linear {
        weight: d.param(&[i, o], Source::Linear(weight)),
        bias: bias.map(|b| d.param(&[o], Source::Direct(b))),
    }
}

/// Declares the RMSNorm weight `name` `[width]`.
fn declare_norm(d: &mut Declarer, name: String, width: u64, eps: f32) -> RmsNorm {
    RmsNorm {
        weight: d.param(&[width], Source::Direct(name)),
        eps,
    }
}

/// Declares one attention block's projections (and OLMoE's q/k norms).
fn declare_attention(d: &mut Declarer, n: &LayerNames, spec: AttentionSpec) -> Attention {
    let q_width = spec.heads * spec.head_dim;
    let kv_width = spec.kv_heads * spec.head_dim;
    let mut linear = |proj: &str, bias: bool, i: u64, o: u64| {
        let bias = bias.then(|| n.attn(proj, "bias"));
        declare_linear(d, n.attn(proj, "weight"), bias, i, o)
    };
    let q = linear("q_proj", spec.qkv_bias, spec.d_model, q_width);
    let k = linear("k_proj", spec.qkv_bias, spec.d_model, kv_width);
    let v = linear("v_proj", spec.qkv_bias, spec.d_model, kv_width);
    let o = linear("o_proj", spec.o_bias, q_width, spec.d_model);
    let qk_norm = spec.qk_norm.then(|| QkNorm {
        q: d.param(&[q_width], Source::Direct(n.attn("q_norm", "weight"))),
        k: d.param(&[kv_width], Source::Direct(n.attn("k_norm", "weight"))),
        eps: spec.eps,
    });
    Attention {
        shape: AttentionShape {
            heads: spec.heads,
            kv_heads: spec.kv_heads,
            head_dim: spec.head_dim,
            rope_theta: spec.rope_theta,
            scale: Some(1.0 / (spec.head_dim as f32).sqrt()),
        },
        q,
        k,
        v,
        o,
        qk_norm,
    }
}

/// Declares a SwiGLU MLP from `[gate, up, down]` weight names (and bias names when given).
fn declare_gated_mlp(
    d: &mut Declarer,
    weights: [String; 3],
    biases: Option<[String; 3]>,
    dm: u64,
    ffn: u64,
) -> GatedMlp {
    let [bg, bu, bd] = biases.map_or([None, None, None], |b| b.map(Some));
    let [wg, wu, wd] = weights;
    GatedMlp {
        gate: declare_linear(d, wg, bg, dm, ffn),
        up: declare_linear(d, wu, bu, dm, ffn),
        down: declare_linear(d, wd, bd, ffn, dm),
    }
}

/// Declares `[E, D, F]`, `[E, D, F]`, `[E, F, D]` stacked expert weights, read
/// per expert or, failing that, from transformers 5.x's fused tensors.
fn declare_experts(d: &mut Declarer, n: &LayerNames, e: u64, dm: u64, ffn: u64) -> [ParamId; 3] {
    let names: Vec<[String; 3]> = (0..e).map(|i| n.expert(i)).collect();
    let [gate_up, down] = n.fused_experts();
    let fused = [
        (gate_up.clone(), ExpertPart::Gate),
        (gate_up, ExpertPart::Up),
        (down, ExpertPart::Down),
    ];
    let dims = [[e, dm, ffn], [e, dm, ffn], [e, ffn, dm]];
    std::array::from_fn(|j| {
        let per_expert = Source::Experts(names.iter().map(|w| w[j].clone()).collect());
        let (tensor, part) = fused[j].clone();
        let fused = Source::FusedExperts { tensor, part };
        d.param(
            &dims[j],
            Source::Either(Box::new(per_expert), Box::new(fused)),
        )
    })
}

/// Declares the MLP of one layer.
fn declare_mlp(d: &mut Declarer, n: &LayerNames, spec: &MlpSpec, dm: u64) -> Mlp {
    let proj = |kind: &str| ["gate_proj", "up_proj", "down_proj"].map(|p| n.mlp(p, kind));
    match *spec {
        MlpSpec::Dense { ffn, bias } => Mlp::Dense(declare_gated_mlp(
            d,
            proj("weight"),
            bias.then(|| proj("bias")),
            dm,
            ffn,
        )),
        MlpSpec::Routed {
            experts,
            k,
            ffn,
            renorm,
            gated_shared,
        } => {
            let router = Source::Either(
                Box::new(Source::Linear(n.router())),
                Box::new(Source::Linear(n.router_v5())),
            );
            let router = d.param(&[dm, experts], router);
            let experts = declare_experts(d, n, experts, dm, ffn);
            let shared = gated_shared.map(|fs| SharedExpert::SigmoidGated {
                mlp: declare_gated_mlp(d, n.shared_expert(), None, dm, fs),
                gate: d.param(&[dm, 1], Source::Linear(n.shared_expert_gate())),
            });
            let top_k = TopK::softmax_topk(k as usize, renorm);
            Mlp::Moe(MoeMlp::swiglu(
                ExpertChoice::InLayer { router, top_k },
                experts,
                shared,
            ))
        }
        MlpSpec::PreGated {
            experts,
            ffn,
            shared,
        } => Mlp::Moe(MoeMlp::swiglu(
            ExpertChoice::PreGated,
            declare_experts(d, n, experts, dm, ffn),
            shared.map(|fs| {
                SharedExpert::InMoe(declare_gated_mlp(d, n.shared_expert(), None, dm, fs))
            }),
        )),
    }
}

/// Declares decoder layer `index`, its values named under `prefix`.
fn declare_layer(
    d: &mut Declarer,
    n: &LayerNames,
    prefix: String,
    index: usize,
    attn: AttentionSpec,
    mlp: &MlpSpec,
) -> DecoderLayer {
    let attn_norm = declare_norm(d, n.input_norm(), attn.d_model, attn.eps);
    let attention = declare_attention(d, n, attn);
    let mlp_norm = declare_norm(d, n.post_attention_norm(), attn.d_model, attn.eps);
    DecoderLayer {
        prefix,
        index,
        attn_norm,
        attn: attention,
        mlp_norm,
        mlp: declare_mlp(d, n, mlp, attn.d_model),
    }
}

/// Declares Read-ME's router: embedding, one dense decoder layer, norm, and a
/// head making one top-1 decision per token (weight 1) that every layer uses.
fn declare_router(d: &mut Declarer, r: &RouterSpec, vocab: u64) -> PreGatingRouter {
    let n = LayerNames::new(names::ROUTER_LAYER, Family::ReadMe);
    let dm = r.attn.d_model;
    let embed = d.param(&[vocab, dm], Source::Direct(names::ROUTER_EMBED.into()));
    let dense = MlpSpec::Dense {
        ffn: r.ffn,
        bias: false,
    };
    let layer = declare_layer(
        d,
        &n,
        PreGatingRouter::PREFIX.to_string(),
        0,
        r.attn,
        &dense,
    );
    let norm = declare_norm(d, names::ROUTER_NORM.into(), dm, r.attn.eps);
    let head = d.param(&[dm, r.experts], Source::Linear(names::ROUTER_HEAD.into()));
    PreGatingRouter {
        embed,
        layer,
        norm,
        heads: vec![head],
        top_k: TopK::top1(),
    }
}

/// Builds the model of `spec` named `name` — with `kv_cache: Some(max_seq_len)`
/// also `prefill` and `decode` over a KV cache of that many positions, and
/// with `max_batch` too the batched `step` over KV pools of that many
/// sequences; returns it with the checkpoint source of every param, in
/// declaration order.
pub(crate) fn build(
    spec: &Spec,
    name: &str,
    kv_cache: Option<u64>,
    max_batch: Option<u64>,
) -> Result<(Model, Vec<Source>), BuildError> {
    let mut d = Declarer {
        m: ModelBuilder::new(name),
        sources: Vec::new(),
    };
    let tokens = d.m.dim("tokens", spec.max_tokens);
    let (kv_len, step) = StepShape::declare(&mut d.m, kv_cache, max_batch);
    let dm = spec.attn.d_model;
    let router = spec
        .router
        .as_ref()
        .map(|r| declare_router(&mut d, r, spec.vocab));
    let embed = d.param(&[spec.vocab, dm], Source::Direct(names::EMBED.into()));
    let layers = spec
        .mlps
        .iter()
        .enumerate()
        .map(|(l, mlp)| {
            let n = LayerNames::new(names::layer(l), spec.family);
            declare_layer(&mut d, &n, format!("l{l}"), l, spec.attn, mlp)
        })
        .collect();
    let norm = declare_norm(&mut d, names::FINAL_NORM.into(), dm, spec.attn.eps);
    let head_source = if spec.tie_embeddings {
        names::EMBED
    } else {
        names::LM_HEAD
    };
    // Named `lm_head` even when tied: the tied copy is a param of its own.
    let lm_head = d.named(
        "lm_head".into(),
        &[dm, spec.vocab],
        Source::Linear(head_source.into()),
    );
    let decoder = DecoderModel {
        router,
        embed,
        layers,
        norm,
        lm_head,
    };
    let Declarer { mut m, sources } = d;
    decoder.add_functions(&mut m, &tokens, kv_len.as_ref(), step.as_ref())?;
    Ok((m.finish()?, sources))
}
