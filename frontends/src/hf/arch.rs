//! The supported architectures: which one a config names, and the
//! architecture-neutral [`Spec`] each config is read into.

use serde_json::Value;

use super::config::{ConfigReader, DecoderConfig};
use super::HfError;

/// A supported architecture.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Family {
    /// `LlamaForCausalLM`: dense SwiGLU MLPs.
    Llama,
    /// `MixtralForCausalLM`: in-layer softmax → top-k → renormalised routers.
    Mixtral,
    /// `Qwen2MoeForCausalLM`: in-layer routers, q/k/v biases, a sigmoid-gated shared expert.
    Qwen2Moe,
    /// `OlmoeForCausalLM`: in-layer routers, RMSNorm over the projected q and k.
    Olmoe,
    /// `ReadMeForCausalLM`: Seam's Read-ME convention (see the [module docs](super)).
    ReadMe,
}

/// `(architecture, model_type, family)` for every supported architecture.
const FAMILIES: &[(&str, &str, Family)] = &[
    ("LlamaForCausalLM", "llama", Family::Llama),
    ("MixtralForCausalLM", "mixtral", Family::Mixtral),
    ("Qwen2MoeForCausalLM", "qwen2_moe", Family::Qwen2Moe),
    ("OlmoeForCausalLM", "olmoe", Family::Olmoe),
    ("ReadMeForCausalLM", "readme", Family::ReadMe),
];

impl Family {
    /// The family a config names: `architectures[0]` and `model_type` must both be
    /// known (when present) and agree.
    pub(crate) fn detect(c: &ConfigReader) -> Result<Family, HfError> {
        let arch = match c.raw("architectures") {
            Some(Value::Array(a)) => a.first().and_then(Value::as_str),
            _ => None,
        };
        let model_type = c.opt_str("model_type")?;
        let by_arch = arch.map(|a| FAMILIES.iter().find(|(n, _, _)| *n == a));
        let by_type = model_type.map(|t| FAMILIES.iter().find(|(_, n, _)| *n == t));
        let found = match (by_arch, by_type) {
            (Some(Some(a)), Some(Some(t))) if a.2 == t.2 => Some(a.2),
            (Some(Some(a)), None) => Some(a.2),
            (None, Some(Some(t))) => Some(t.2),
            _ => None,
        };
        found.ok_or_else(|| HfError::UnknownArchitecture {
            path: c.path().to_path_buf(),
            architecture: arch.unwrap_or("?").into(),
            model_type: model_type.unwrap_or("?").into(),
            supported: FAMILIES
                .iter()
                .map(|(a, t, _)| format!("{a} ({t})"))
                .collect::<Vec<_>>()
                .join(", "),
        })
    }
}

/// Projections of one attention block, as the checkpoint stores them.
#[derive(Copy, Clone, Debug, PartialEq)]
pub(crate) struct AttentionSpec {
    pub d_model: u64,
    pub heads: u64,
    pub kv_heads: u64,
    pub head_dim: u64,
    pub rope_theta: f32,
    pub eps: f32,
    /// Biases on the q, k and v projections.
    pub qkv_bias: bool,
    /// A bias on the output projection.
    pub o_bias: bool,
    /// OLMoE: RMSNorm over the whole projected q (and k) before RoPE.
    pub qk_norm: bool,
}

/// The MLP of one layer.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum MlpSpec {
    /// A dense SwiGLU MLP of this width, with biases when `bias`.
    Dense { ffn: u64, bias: bool },
    /// In-layer routed experts.
    Routed {
        experts: u64,
        k: u64,
        ffn: u64,
        /// Divide the top-k probabilities by their sum.
        renorm: bool,
        /// Qwen2-MoE's shared expert: its width (gated by `sigmoid(x·g)`).
        gated_shared: Option<u64>,
    },
    /// Read-ME: experts chosen by the decoupled router, plus an ungated shared expert.
    PreGated {
        experts: u64,
        ffn: u64,
        shared: Option<u64>,
    },
}

/// Read-ME's router transformer.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RouterSpec {
    pub attn: AttentionSpec,
    pub ffn: u64,
    pub experts: u64,
}

/// An architecture-neutral description of a checkpoint's model.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Spec {
    pub family: Family,
    pub vocab: u64,
    pub attn: AttentionSpec,
    /// One MLP per layer.
    pub mlps: Vec<MlpSpec>,
    pub tie_embeddings: bool,
    /// Upper bound of the `tokens` dim.
    pub max_tokens: u64,
    pub router: Option<RouterSpec>,
}

/// The bound of `tokens` when neither the caller nor the config gives one.
const DEFAULT_MAX_TOKENS: u64 = 4096;

impl Spec {
    /// Reads the config of `family`; `max_tokens` overrides the `tokens` bound
    /// (default: `max_position_embeddings`, at most 4096).
    pub(crate) fn read(
        c: &ConfigReader,
        family: Family,
        max_tokens: Option<u64>,
    ) -> Result<Spec, HfError> {
        // transformers' defaults for absent `rope_theta` / `rms_norm_eps`.
        let (theta, eps) = match family {
            Family::Mixtral => (1e6, 1e-5),
            Family::Olmoe => (10000.0, 1e-5),
            Family::Qwen2Moe | Family::Llama | Family::ReadMe => (10000.0, 1e-6),
        };
        let d = DecoderConfig::read(c, theta, eps)?;
        let max_tokens = max_tokens
            .or(d.max_positions.map(|p| p.min(DEFAULT_MAX_TOKENS)))
            .unwrap_or(DEFAULT_MAX_TOKENS);
        if max_tokens == 0 {
            return Err(c.field_error("max_position_embeddings", "must be positive"));
        }
        refuse_sliding_window(c, max_tokens)?;
        let mut attn = AttentionSpec {
            d_model: d.d_model,
            heads: d.heads,
            kv_heads: d.kv_heads,
            head_dim: d.head_dim,
            rope_theta: d.rope_theta,
            eps: d.eps,
            qkv_bias: false,
            o_bias: false,
            qk_norm: false,
        };
        let dense_ffn = || {
            d.ffn
                .ok_or_else(|| c.field_error("intermediate_size", "is missing"))
        };
        let layers = d.layers as usize;
        let mut router = None;
        let mlps = match family {
            Family::Llama => {
                attn.qkv_bias = c.bool_or("attention_bias", false)?;
                attn.o_bias = attn.qkv_bias;
                let bias = c.bool_or("mlp_bias", false)?;
                vec![
                    MlpSpec::Dense {
                        ffn: dense_ffn()?,
                        bias
                    };
                    layers
                ]
            }
            Family::Mixtral => {
                let experts = c.count("num_local_experts")?;
                let k = top_k(c, experts)?;
                let ffn = dense_ffn()?;
                vec![
                    MlpSpec::Routed {
                        experts,
                        k,
                        ffn,
                        renorm: true,
                        gated_shared: None
                    };
                    layers
                ]
            }
            Family::Olmoe => {
                c.require_absent_or("clip_qkv", &[], "q/k/v clipping is not implemented")?;
                attn.qkv_bias = c.bool_or("attention_bias", false)?;
                attn.o_bias = attn.qkv_bias;
                attn.qk_norm = true;
                if attn.heads * attn.head_dim != attn.d_model {
                    return Err(c.unsupported(
                        "head_dim",
                        "OLMoE's q/k norms are sized by hidden_size, so head_dim must be hidden_size / num_attention_heads",
                    ));
                }
                let experts = c.count("num_experts")?;
                let k = top_k(c, experts)?;
                let renorm = c.bool_or("norm_topk_prob", false)?;
                let ffn = dense_ffn()?;
                vec![
                    MlpSpec::Routed {
                        experts,
                        k,
                        ffn,
                        renorm,
                        gated_shared: None
                    };
                    layers
                ]
            }
            Family::Qwen2Moe => {
                attn.qkv_bias = c.bool_or("qkv_bias", true)?;
                qwen2_moe_mlps(c, layers, dense_ffn)?
            }
            Family::ReadMe => {
                let experts = c.count("num_experts")?;
                let ffn = c.positive("expert_intermediate_size")?;
                let shared = c
                    .opt_size("shared_expert_intermediate_size")?
                    .filter(|&s| s > 0);
                router = Some(read_router(c, &d, experts)?);
                vec![
                    MlpSpec::PreGated {
                        experts,
                        ffn,
                        shared
                    };
                    layers
                ]
            }
        };
        Ok(Spec {
            family,
            vocab: d.vocab,
            attn,
            mlps,
            tie_embeddings: d.tie_embeddings,
            max_tokens,
            router,
        })
    }
}

/// `num_experts_per_tok`, between 1 and the expert count.
fn top_k(c: &ConfigReader, experts: u64) -> Result<u64, HfError> {
    let k = c.positive("num_experts_per_tok")?;
    if k > experts {
        return Err(c.field_error(
            "num_experts_per_tok",
            format!("{k} exceeds the {experts} experts"),
        ));
    }
    Ok(k)
}

/// Qwen2-MoE's layers: sparse where `(l + 1) % decoder_sparse_step == 0` and `l`
/// is not in `mlp_only_layers`, dense (`intermediate_size`) elsewhere.
fn qwen2_moe_mlps(
    c: &ConfigReader,
    layers: usize,
    dense_ffn: impl Fn() -> Result<u64, HfError>,
) -> Result<Vec<MlpSpec>, HfError> {
    let experts = match c.opt_u64("num_experts")? {
        None | Some(0) => 0,
        Some(_) => c.count("num_experts")?,
    };
    let step = c.opt_u64("decoder_sparse_step")?.unwrap_or(1);
    if step == 0 {
        return Err(c.field_error("decoder_sparse_step", "must be positive"));
    }
    let dense_only = c.u64_list("mlp_only_layers")?;
    let renorm = c.bool_or("norm_topk_prob", false)?;
    (0..layers as u64)
        .map(|l| {
            if experts > 0 && !dense_only.contains(&l) && (l + 1) % step == 0 {
                let shared = c
                    .opt_size("shared_expert_intermediate_size")?
                    .filter(|&s| s > 0);
                Ok(MlpSpec::Routed {
                    experts,
                    k: top_k(c, experts)?,
                    ffn: c.positive("moe_intermediate_size")?,
                    renorm,
                    gated_shared: shared,
                })
            } else {
                Ok(MlpSpec::Dense {
                    ffn: dense_ffn()?,
                    bias: false,
                })
            }
        })
        .collect()
}

/// Refuses a sliding window that would mask keys within `max_tokens`.
fn refuse_sliding_window(c: &ConfigReader, max_tokens: u64) -> Result<(), HfError> {
    if c.raw("use_sliding_window").is_some() && !c.bool_or("use_sliding_window", false)? {
        return Ok(());
    }
    match c.opt_u64("sliding_window")? {
        Some(w) if w > 0 && w < max_tokens => Err(c.unsupported(
            "sliding_window",
            format!("sliding-window attention is not implemented (the window is below the {max_tokens}-token bound)"),
        )),
        _ => {
            if let Some(Value::Array(types)) = c.raw("layer_types") {
                if types.iter().any(|t| t.as_str() != Some("full_attention")) {
                    return Err(c.unsupported("layer_types", "only `full_attention` layers are implemented"));
                }
            }
            Ok(())
        }
    }
}

/// Read-ME's `router_config`: its width, heads and MLP, inheriting `rms_norm_eps`
/// and the RoPE base from the backbone unless given.
fn read_router(c: &ConfigReader, d: &DecoderConfig, experts: u64) -> Result<RouterSpec, HfError> {
    let r = c
        .opt_object("router_config")?
        .ok_or_else(|| c.field_error("router_config", "is missing"))?;
    let d_model = r.positive("hidden_size")?;
    let heads = r.positive("num_attention_heads")?;
    let kv_heads = r.opt_size("num_key_value_heads")?.unwrap_or(heads);
    if kv_heads == 0 || heads % kv_heads != 0 || d_model % heads != 0 {
        return Err(r.field_error(
            "num_attention_heads",
            "must divide hidden_size and be a multiple of num_key_value_heads",
        ));
    }
    Ok(RouterSpec {
        attn: AttentionSpec {
            d_model,
            heads,
            kv_heads,
            head_dim: d_model / heads,
            rope_theta: r.opt_f64("rope_theta")?.map_or(d.rope_theta, |t| t as f32),
            eps: r.opt_f64("rms_norm_eps")?.map_or(d.eps, |e| e as f32),
            qkv_bias: false,
            o_bias: false,
            qk_norm: false,
        },
        ffn: r.positive("intermediate_size")?,
        experts,
    })
}
