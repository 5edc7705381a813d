//! Building the IR graph of a [`Spec`]: parameters (each with its checkpoint
//! source) first, then `forward(ids[tokens]) -> logits[tokens, vocab]`, and
//! with a KV cache also `prefill(ids[tokens])` and `decode(ids[1])`.
//!
//! One decoder layer is emitted by [`LayerParams::emit`] for every architecture;
//! attention is isolated in [`AttentionParams`] (projections, then
//! [`AttentionParams::attend`], then the output projection); with a cache the
//! attend step is the examples' [`cached_attention`].

use seam_ir::{DType, Dim, GatedAct, Model, Operand, ParamId, RouteMode, TensorType, ValueId};

use super::arch::{AttentionSpec, Family, MlpSpec, RouterSpec, Spec};
use super::names::{self, LayerNames};
use super::weights::{ExpertPart, Source};
use crate::builder::{BuildError, FunctionBuilder, ModelBuilder};
use crate::examples::blocks::{add_cached_entry_points, cached_attention, KvCache};

/// Result of emitting one value.
type Built = Result<ValueId, BuildError>;

/// A model builder that records, for every param it declares, where its values
/// come from in the checkpoint.
struct Declarer {
    m: ModelBuilder,
    sources: Vec<Source>,
}

impl Declarer {
    /// Declares an f32 param named after its source tensor.
    fn param(&mut self, dims: &[u64], source: Source) -> ParamId {
        self.named(param_name(&source), dims, source)
    }

    /// Declares an f32 param of the given name.
    fn named(&mut self, name: String, dims: &[u64], source: Source) -> ParamId {
        self.sources.push(source);
        self.m
            .param(name, TensorType::new(DType::F32, dims.iter().copied()))
    }
}

/// A param's name: its (first) source tensor's, without `.weight`.
fn param_name(source: &Source) -> String {
    match source {
        Source::Direct(n) | Source::Linear(n) => n.trim_end_matches(".weight").to_string(),
        Source::Experts(ns) => stacked_name(&ns[0]),
        Source::FusedExperts { tensor, .. } => tensor.clone(),
        Source::Either(a, _) => param_name(a),
    }
}

/// `…experts.0.gate_proj.weight` → `…experts.gate_proj` (the stacked param's name).
fn stacked_name(first: &str) -> String {
    let base = first.trim_end_matches(".weight");
    let (head, proj) = base.rsplit_once('.').unwrap_or((base, ""));
    let head = head.rsplit_once('.').map_or(head, |(h, _)| h);
    format!("{head}.{proj}")
}

/// An `nn.Linear`: weight stored `[in, out]` in the IR, optional bias.
#[derive(Copy, Clone, Debug)]
struct Linear {
    w: ParamId,
    b: Option<ParamId>,
}

impl Linear {
    /// Declares the linear whose checkpoint tensors are `{weight, bias}`.
    fn declare(d: &mut Declarer, weight: String, bias: Option<String>, i: u64, o: u64) -> Self {
        Linear {
            w: d.param(&[i, o], Source::Linear(weight)),
            b: bias.map(|b| d.param(&[o], Source::Direct(b))),
        }
    }

    /// `x·w (+ b)`.
    fn emit(&self, f: &mut FunctionBuilder<'_>, name: &str, x: ValueId) -> Built {
        let y = f.matmul(name, x, self.w)?;
        match self.b {
            Some(b) => f.add(&format!("{name}.bias"), y, b),
            None => Ok(y),
        }
    }
}

/// The parameters of one attention block.
struct AttentionParams {
    spec: AttentionSpec,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    /// OLMoE's norms over the projected q and k.
    qk_norm: Option<(ParamId, ParamId)>,
}

/// Per-head query, key and value of one attention block, RoPE applied.
pub(crate) struct Qkv {
    /// `[T, Hq, Dh]`.
    pub q: ValueId,
    /// `[T, Hkv, Dh]`.
    pub k: ValueId,
    /// `[T, Hkv, Dh]`.
    pub v: ValueId,
}

impl AttentionParams {
    fn declare(d: &mut Declarer, n: &LayerNames, spec: AttentionSpec) -> Self {
        let q_width = spec.heads * spec.head_dim;
        let kv_width = spec.kv_heads * spec.head_dim;
        let mut lin = |proj: &str, bias: bool, i: u64, o: u64| {
            Linear::declare(
                d,
                n.attn(proj, "weight"),
                bias.then(|| n.attn(proj, "bias")),
                i,
                o,
            )
        };
        let q = lin("q_proj", spec.qkv_bias, spec.d_model, q_width);
        let k = lin("k_proj", spec.qkv_bias, spec.d_model, kv_width);
        let v = lin("v_proj", spec.qkv_bias, spec.d_model, kv_width);
        let o = lin("o_proj", spec.o_bias, q_width, spec.d_model);
        let qk_norm = spec.qk_norm.then(|| {
            (
                d.param(&[q_width], Source::Direct(n.attn("q_norm", "weight"))),
                d.param(&[kv_width], Source::Direct(n.attn("k_norm", "weight"))),
            )
        });
        AttentionParams {
            spec,
            q,
            k,
            v,
            o,
            qk_norm,
        }
    }

    /// Projects the normalised input `h[T, D]` to per-head q, k, v and applies
    /// RoPE at positions `pos[T]`.
    fn project(
        &self,
        f: &mut FunctionBuilder<'_>,
        pre: &str,
        tokens: &Dim,
        h: ValueId,
        pos: ValueId,
    ) -> Result<Qkv, BuildError> {
        let s = self.spec;
        let n = |suffix: &str| format!("{pre}.{suffix}");
        let heads = |h: u64| vec![tokens.clone(), Dim::Static(h), Dim::Static(s.head_dim)];
        let mut q = self.q.emit(f, &n("q"), h)?;
        let mut k = self.k.emit(f, &n("k"), h)?;
        let v = self.v.emit(f, &n("v"), h)?;
        if let Some((qn, kn)) = self.qk_norm {
            q = f.rms_norm(&n("q_norm"), q, qn, s.eps)?;
            k = f.rms_norm(&n("k_norm"), k, kn, s.eps)?;
        }
        let q = f.reshape(&n("q_heads"), q, heads(s.heads))?;
        let k = f.reshape(&n("k_heads"), k, heads(s.kv_heads))?;
        let v = f.reshape(&n("v_heads"), v, heads(s.kv_heads))?;
        Ok(Qkv {
            q: f.rope(&n("q_rot"), q, pos, s.rope_theta)?,
            k: f.rope(&n("k_rot"), k, pos, s.rope_theta)?,
            v,
        })
    }

    /// Causal attention of every query over the keys and values given, or
    /// over the `cache` after appending them to it.
    fn attend(
        &self,
        f: &mut FunctionBuilder<'_>,
        pre: &str,
        qkv: &Qkv,
        cache: Option<KvCache>,
    ) -> Built {
        let scale = 1.0 / (self.spec.head_dim as f32).sqrt();
        cached_attention(f, pre, [qkv.q, qkv.k, qkv.v], cache, Some(scale))
    }

    /// Declares this block's cache (state inputs `{pre}.k_cache`, `{pre}.v_cache`).
    fn declare_cache(&self, f: &mut FunctionBuilder<'_>, pre: &str, kv_len: &Dim) -> KvCache {
        KvCache::declare(f, pre, self.spec.kv_heads, self.spec.head_dim, kv_len)
    }

    /// The whole block on the normalised input `h`: project, attend, output projection.
    fn emit(
        &self,
        f: &mut FunctionBuilder<'_>,
        pre: &str,
        tokens: &Dim,
        h: ValueId,
        pos: ValueId,
        cache: Option<KvCache>,
    ) -> Built {
        let qkv = self.project(f, pre, tokens, h, pos)?;
        let a = self.attend(f, pre, &qkv, cache)?;
        let width = self.spec.heads * self.spec.head_dim;
        let a = f.reshape(
            &format!("{pre}.attn_flat"),
            a,
            vec![tokens.clone(), Dim::Static(width)],
        )?;
        self.o.emit(f, &format!("{pre}.attn_out"), a)
    }
}

/// A SwiGLU MLP `down(silu(gate(x)) * up(x))`.
struct DenseMlp {
    gate: Linear,
    up: Linear,
    down: Linear,
}

impl DenseMlp {
    /// Declares it from `[gate, up, down]` weight names (and bias names when given).
    fn declare(
        d: &mut Declarer,
        w: [String; 3],
        b: Option<[String; 3]>,
        dm: u64,
        ffn: u64,
    ) -> Self {
        let [bg, bu, bd] = b.map_or([None, None, None], |b| b.map(Some));
        let [wg, wu, wd] = w;
        DenseMlp {
            gate: Linear::declare(d, wg, bg, dm, ffn),
            up: Linear::declare(d, wu, bu, dm, ffn),
            down: Linear::declare(d, wd, bd, ffn, dm),
        }
    }

    fn emit(&self, f: &mut FunctionBuilder<'_>, pre: &str, x: ValueId) -> Built {
        let n = |suffix: &str| format!("{pre}.{suffix}");
        let g = self.gate.emit(f, &n("gate"), x)?;
        let g = f.silu(&n("gate_act"), g)?;
        let u = self.up.emit(f, &n("up"), x)?;
        let h = f.mul(&n("gated"), g, u)?;
        self.down.emit(f, &n("down"), h)
    }

    /// The weights as the `moe` op's shared-expert operands (no biases).
    fn moe_operands(&self) -> [Operand; 3] {
        [self.gate.w.into(), self.up.w.into(), self.down.w.into()]
    }
}

/// The MLP of one layer.
enum MlpParams {
    Dense(DenseMlp),
    Routed {
        router: ParamId,
        experts: [ParamId; 3],
        k: usize,
        renorm: bool,
        /// Qwen2-MoE's shared expert and its `[D, 1]` sigmoid gate.
        gated_shared: Option<(DenseMlp, ParamId)>,
    },
    PreGated {
        experts: [ParamId; 3],
        shared: Option<DenseMlp>,
    },
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

impl MlpParams {
    fn declare(d: &mut Declarer, n: &LayerNames, spec: &MlpSpec, dm: u64) -> Self {
        let proj = |kind: &str| ["gate_proj", "up_proj", "down_proj"].map(|p| n.mlp(p, kind));
        match *spec {
            MlpSpec::Dense { ffn, bias } => MlpParams::Dense(DenseMlp::declare(
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
                let gated_shared = gated_shared.map(|fs| {
                    let mlp = DenseMlp::declare(d, n.shared_expert(), None, dm, fs);
                    let gate = d.param(&[dm, 1], Source::Linear(n.shared_expert_gate()));
                    (mlp, gate)
                });
                MlpParams::Routed {
                    router,
                    experts,
                    k: k as usize,
                    renorm,
                    gated_shared,
                }
            }
            MlpSpec::PreGated {
                experts,
                ffn,
                shared,
            } => MlpParams::PreGated {
                experts: declare_experts(d, n, experts, dm, ffn),
                shared: shared.map(|fs| DenseMlp::declare(d, n.shared_expert(), None, dm, fs)),
            },
        }
    }

    /// The MLP on the normalised input `h`; `decision` is Read-ME's shared routing.
    fn emit(
        &self,
        f: &mut FunctionBuilder<'_>,
        pre: &str,
        h: ValueId,
        decision: Option<(ValueId, ValueId)>,
        layer: usize,
    ) -> Built {
        let n = |suffix: &str| format!("{pre}.{suffix}");
        match self {
            MlpParams::Dense(mlp) => mlp.emit(f, &n("mlp"), h),
            MlpParams::Routed {
                router,
                experts,
                k,
                renorm,
                gated_shared,
            } => {
                let logits = f.matmul(&n("router_logits"), h, *router)?;
                let (ids, weights) = f.route(
                    [&n("expert_ids"), &n("expert_weights")],
                    logits,
                    None,
                    *k,
                    RouteMode::SoftmaxTopk,
                    *renorm,
                )?;
                let y = f.moe(
                    &n("moe"),
                    [h.into(), ids.into(), weights.into()],
                    experts.map(Operand::from),
                    None,
                    GatedAct::SwiGlu,
                )?;
                let Some((shared, gate)) = gated_shared else {
                    return Ok(y);
                };
                let s = shared.emit(f, &n("shared"), h)?;
                let g = f.matmul(&n("shared_gate"), h, *gate)?;
                let g = f.sigmoid(&n("shared_gate_act"), g)?;
                let s = f.mul(&n("shared_gated"), g, s)?;
                f.add(&n("moe_total"), y, s)
            }
            MlpParams::PreGated { experts, shared } => {
                let (ids, weights) = decision.ok_or(BuildError::MissingRouting(layer))?;
                f.moe(
                    &n("moe"),
                    [h.into(), ids.into(), weights.into()],
                    experts.map(Operand::from),
                    shared.as_ref().map(DenseMlp::moe_operands),
                    GatedAct::SwiGlu,
                )
            }
        }
    }
}

/// One pre-norm decoder layer.
struct LayerParams {
    input_norm: ParamId,
    attn: AttentionParams,
    post_norm: ParamId,
    mlp: MlpParams,
}

impl LayerParams {
    fn declare(d: &mut Declarer, n: &LayerNames, attn: AttentionSpec, mlp: &MlpSpec) -> Self {
        LayerParams {
            input_norm: d.param(&[attn.d_model], Source::Direct(n.input_norm())),
            attn: AttentionParams::declare(d, n, attn),
            post_norm: d.param(&[attn.d_model], Source::Direct(n.post_attention_norm())),
            mlp: MlpParams::declare(d, n, mlp, attn.d_model),
        }
    }

    /// `x += attn(norm(x)); x += mlp(norm(x))`.
    #[allow(clippy::too_many_arguments)]
    fn emit(
        &self,
        f: &mut FunctionBuilder<'_>,
        pre: &str,
        layer: usize,
        tokens: &Dim,
        x: ValueId,
        pos: ValueId,
        decision: Option<(ValueId, ValueId)>,
        cache: Option<KvCache>,
    ) -> Built {
        let n = |suffix: &str| format!("{pre}.{suffix}");
        let eps = self.attn.spec.eps;
        let h = f.rms_norm(&n("attn_in"), x, self.input_norm, eps)?;
        let a = self.attn.emit(f, pre, tokens, h, pos, cache)?;
        let x = f.add(&n("attn_res"), x, a)?;
        let h = f.rms_norm(&n("mlp_in"), x, self.post_norm, eps)?;
        let y = self.mlp.emit(f, pre, h, decision, layer)?;
        f.add(&n("mlp_res"), x, y)
    }
}

/// Read-ME's router: embedding, one dense decoder layer, norm, head.
struct RouterParams {
    embed: ParamId,
    layer: LayerParams,
    norm: ParamId,
    head: ParamId,
    eps: f32,
}

impl RouterParams {
    fn declare(d: &mut Declarer, r: &RouterSpec, vocab: u64) -> Self {
        let n = LayerNames::new(names::ROUTER_LAYER, Family::ReadMe);
        let dm = r.attn.d_model;
        RouterParams {
            embed: d.param(&[vocab, dm], Source::Direct(names::ROUTER_EMBED.into())),
            layer: LayerParams::declare(
                d,
                &n,
                r.attn,
                &MlpSpec::Dense {
                    ffn: r.ffn,
                    bias: false,
                },
            ),
            norm: d.param(&[dm], Source::Direct(names::ROUTER_NORM.into())),
            head: d.param(&[dm, r.experts], Source::Linear(names::ROUTER_HEAD.into())),
            eps: r.attn.eps,
        }
    }

    /// The one top-1 decision per token (weight 1) every layer uses.
    fn emit(
        &self,
        f: &mut FunctionBuilder<'_>,
        tokens: &Dim,
        ids: ValueId,
        pos: ValueId,
        cache: Option<KvCache>,
    ) -> Result<(ValueId, ValueId), BuildError> {
        let x = f.gather("router.x", self.embed, ids)?;
        let x = self
            .layer
            .emit(f, "router", 0, tokens, x, pos, None, cache)?;
        let h = f.rms_norm("router.out", x, self.norm, self.eps)?;
        let logits = f.matmul("router.logits", h, self.head)?;
        f.route(
            ["expert_ids", "expert_weights"],
            logits,
            None,
            1,
            RouteMode::TopkSoftmax,
            false,
        )
    }
}

/// Every parameter of the model.
struct ModelParams {
    router: Option<RouterParams>,
    embed: ParamId,
    layers: Vec<LayerParams>,
    norm: ParamId,
    lm_head: ParamId,
    eps: f32,
}

impl ModelParams {
    /// Emits the whole model over `tokens` rows at positions `pos`; `caches`
    /// (the router's first, then one per layer) is empty for `forward`.
    fn emit(
        &self,
        f: &mut FunctionBuilder<'_>,
        tokens: &Dim,
        ids: ValueId,
        pos: ValueId,
        caches: &[KvCache],
    ) -> Built {
        let mut caches = caches.iter().copied();
        let decision = match &self.router {
            Some(r) => Some(r.emit(f, tokens, ids, pos, caches.next())?),
            None => None,
        };
        let mut x = f.gather("x", self.embed, ids)?;
        for (l, layer) in self.layers.iter().enumerate() {
            let pre = format!("l{l}");
            x = layer.emit(f, &pre, l, tokens, x, pos, decision, caches.next())?;
        }
        let h = f.rms_norm("final_norm", x, self.norm, self.eps)?;
        f.matmul("logits", h, self.lm_head)
    }

    /// Declares a cache per attention block (router first) in `f`.
    fn declare_caches(&self, f: &mut FunctionBuilder<'_>, kv_len: &Dim) -> Vec<KvCache> {
        let router = self
            .router
            .iter()
            .map(|r| ("router".to_string(), &r.layer.attn));
        let layers = self
            .layers
            .iter()
            .enumerate()
            .map(|(l, p)| (format!("l{l}"), &p.attn));
        router
            .chain(layers)
            .map(|(pre, attn)| attn.declare_cache(f, &pre, kv_len))
            .collect()
    }
}

/// Builds the model of `spec` named `name` — with `kv_cache: Some(max_seq_len)`
/// also `prefill` and `decode` over a KV cache of that many positions; returns
/// it with the checkpoint source of every param, in declaration order.
pub(crate) fn build(
    spec: &Spec,
    name: &str,
    kv_cache: Option<u64>,
) -> Result<(Model, Vec<Source>), BuildError> {
    let mut d = Declarer {
        m: ModelBuilder::new(name),
        sources: Vec::new(),
    };
    let tokens = d.m.dim("tokens", spec.max_tokens);
    let kv_len = kv_cache.map(|max| d.m.dim("kv_len", max));
    let dm = spec.attn.d_model;
    let router = spec
        .router
        .as_ref()
        .map(|r| RouterParams::declare(&mut d, r, spec.vocab));
    let embed = d.param(&[spec.vocab, dm], Source::Direct(names::EMBED.into()));
    let layers: Vec<LayerParams> = spec
        .mlps
        .iter()
        .enumerate()
        .map(|(l, mlp)| {
            LayerParams::declare(
                &mut d,
                &LayerNames::new(names::layer(l), spec.family),
                spec.attn,
                mlp,
            )
        })
        .collect();
    let norm = d.param(&[dm], Source::Direct(names::FINAL_NORM.into()));
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

    let Declarer { mut m, sources } = d;
    let p = ModelParams {
        router,
        embed,
        layers,
        norm,
        lm_head,
        eps: spec.attn.eps,
    };
    let mut f = m.function("forward");
    let ids = f.input("ids", TensorType::new(DType::I32, [tokens.clone()]));
    let pos = f.iota("pos", 0, TensorType::new(DType::I32, [tokens.clone()]))?;
    let logits = p.emit(&mut f, &tokens, ids, pos, &[])?;
    f.finish(&[logits]);
    if let Some(kv_len) = &kv_len {
        add_cached_entry_points(
            &mut m,
            &tokens,
            kv_len,
            |f| p.declare_caches(f, kv_len),
            |f, rows, ids, pos, caches| p.emit(f, rows, ids, pos, caches),
        )?;
    }
    Ok((m.finish()?, sources))
}

#[cfg(test)]
mod tests {
    use super::stacked_name;

    #[test]
    fn stacked_expert_params_drop_the_expert_index() {
        assert_eq!(
            stacked_name("model.layers.3.mlp.experts.0.gate_proj.weight"),
            "model.layers.3.mlp.experts.gate_proj"
        );
        assert_eq!(
            stacked_name("model.layers.0.block_sparse_moe.experts.0.w2.weight"),
            "model.layers.0.block_sparse_moe.experts.w2"
        );
    }
}
