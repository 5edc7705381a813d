//! A GGUF file's architecture: `general.architecture` and the `{arch}.*`
//! hyperparameters read into the Hugging Face importer's [`Spec`], with the
//! same limits (sizes at most 2^24, layers and experts at most 2^16) and the
//! block and expert counts checked against the tensors the file holds.

use std::collections::BTreeSet;

use super::container::GgufFile;
use super::error::GgufError;
use super::keys::Keys;
use super::names::{self, Heads, EXPERT_TENSORS, OUTPUT, ROPE_FREQS, TOKEN_EMBD};
use crate::hf::arch::{AttentionSpec, Family, MlpSpec, Spec};

/// `(general.architecture, what it holds)` for every supported architecture.
const ARCHITECTURES: &[(&str, &str)] = &[
    ("llama", "Llama, or Mixtral with `llama.expert_count`"),
    ("qwen2moe", "Qwen2-MoE"),
    ("olmoe", "OLMoE"),
];

/// The bound of `tokens` when neither the caller nor the file gives one.
const DEFAULT_MAX_TOKENS: u64 = 4096;

/// A GGUF file's model as the Hugging Face importer describes it.
pub(crate) struct Arch {
    /// The architecture.
    pub family: Family,
    /// The model.
    pub spec: Spec,
    /// The head counts (for undoing the q/k permutation).
    pub heads: Heads,
    /// `general.name`, if present.
    pub name: Option<String>,
}

/// Reads the architecture of `file`; `max_tokens` overrides the `tokens` bound.
pub(crate) fn read(file: &GgufFile, max_tokens: Option<u64>) -> Result<Arch, GgufError> {
    let meta = file.metadata();
    let arch = Keys::new(file.path(), meta, "general").str("general.architecture")?;
    let k = Keys::new(file.path(), meta, arch);
    let family = match arch {
        "llama" if k.opt_count(&k.arch_key("expert_count"))? > 0 => Family::Mixtral,
        "llama" => Family::Llama,
        "qwen2moe" => Family::Qwen2Moe,
        "olmoe" => Family::Olmoe,
        other => {
            return Err(GgufError::UnknownArchitecture {
                path: file.path().to_path_buf(),
                architecture: other.to_string(),
                supported: ARCHITECTURES
                    .iter()
                    .map(|(a, what)| format!("`{a}` ({what})"))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
    };
    let attn = attention(&k, file, family)?;
    let layers = k.count(&k.arch_key("block_count"))?;
    check_layers(&k, file, layers)?;
    let mlps = (0..layers)
        .map(|l| mlp(&k, file, family, l, attn.d_model))
        .collect::<Result<Vec<_>, _>>()?;
    let embd = file
        .tensor(TOKEN_EMBD)
        .ok_or_else(|| GgufError::MissingTensor {
            path: file.path().to_path_buf(),
            tensor: Some(TOKEN_EMBD.into()),
            hf_name: crate::hf::names::EMBED.into(),
        })?;
    let vocab = embd.dims.get(1).copied().unwrap_or(1);
    let vocab = k.at_most(
        &format!("{TOKEN_EMBD} (the vocabulary)"),
        vocab,
        crate::hf::config::MAX_SIZE,
    )?;
    let context = k.opt_u64(&k.arch_key("context_length"))?;
    let max_tokens = max_tokens
        .or(context.map(|c| c.min(DEFAULT_MAX_TOKENS)))
        .unwrap_or(DEFAULT_MAX_TOKENS);
    if max_tokens == 0 {
        return Err(k.error(&k.arch_key("context_length"), "must be positive"));
    }
    Ok(Arch {
        family,
        heads: Heads {
            q: attn.heads,
            kv: attn.kv_heads,
        },
        spec: Spec {
            family,
            vocab,
            attn,
            mlps,
            tie_embeddings: file.tensor(OUTPUT).is_none(),
            max_tokens,
            router: None,
        },
        name: k.opt_str("general.name")?.map(str::to_string),
    })
}

/// The attention hyperparameters, refusing scaled or partial RoPE.
fn attention(k: &Keys<'_>, file: &GgufFile, family: Family) -> Result<AttentionSpec, GgufError> {
    let d_model = k.size(&k.arch_key("embedding_length"))?;
    let heads_key = k.arch_key("attention.head_count");
    let heads = k.size(&heads_key)?;
    let kv_key = k.arch_key("attention.head_count_kv");
    let kv_heads = k.opt_size(&kv_key)?.unwrap_or(heads);
    if kv_heads == 0 || heads % kv_heads != 0 {
        return Err(k.error(
            &kv_key,
            format!("must divide {heads_key} = {heads}, found {kv_heads}"),
        ));
    }
    let key_len = k.arch_key("attention.key_length");
    let head_dim = match k.opt_size(&key_len)? {
        Some(h) => h,
        None if d_model % heads == 0 => d_model / heads,
        None => {
            return Err(k.error(
                &heads_key,
                format!(
                    "does not divide the embedding length {d_model} (and no key_length is given)"
                ),
            ))
        }
    };
    if head_dim == 0 || head_dim % 2 != 0 {
        return Err(k.error(
            &key_len,
            format!("must be even and positive for RoPE, found {head_dim}"),
        ));
    }
    for (suffix, why) in [
        (
            "attention.value_length",
            "a value head width other than the key's is not implemented",
        ),
        (
            "rope.dimension_count",
            "only full-width RoPE is implemented",
        ),
    ] {
        if let Some(v) = k.opt_u64(&k.arch_key(suffix))? {
            if v != head_dim {
                return Err(k.unsupported(
                    &k.arch_key(suffix),
                    format!("{v} ≠ head width {head_dim}: {why}"),
                ));
            }
        }
    }
    refuse_scaled_rope(k, file)?;
    let eps_key = k.arch_key("attention.layer_norm_rms_epsilon");
    let eps = k.opt_f64(&eps_key)?.ok_or_else(|| GgufError::MissingKey {
        path: k.path().to_path_buf(),
        key: eps_key.clone(),
    })?;
    let qk_norm = family == Family::Olmoe;
    if qk_norm && heads * head_dim != d_model {
        return Err(k.unsupported(&key_len, "OLMoE's q/k norms are sized by the embedding length, so the head width must be embedding_length / head_count"));
    }
    Ok(AttentionSpec {
        d_model,
        heads,
        kv_heads,
        head_dim,
        rope_theta: k.opt_f64(&k.arch_key("rope.freq_base"))?.unwrap_or(10000.0) as f32,
        eps: eps as f32,
        qkv_bias: file.tensor(&names::block(0, "attn_q.bias")).is_some(),
        o_bias: file.tensor(&names::block(0, "attn_output.bias")).is_some(),
        qk_norm,
    })
}

/// Refuses RoPE scaling: a `rope.scaling.type` other than `none`, or
/// llama.cpp's frequency-factor tensor (Llama 3.1-style scaling).
fn refuse_scaled_rope(k: &Keys<'_>, file: &GgufFile) -> Result<(), GgufError> {
    let key = k.arch_key("rope.scaling.type");
    if let Some(t) = k.opt_str(&key)? {
        if t != "none" {
            return Err(k.unsupported(&key, format!("`{t}`: only unscaled RoPE is implemented")));
        }
    }
    if file.tensor(ROPE_FREQS).is_some() {
        return Err(k.unsupported(
            ROPE_FREQS,
            "RoPE frequency factors (scaled RoPE) are not implemented",
        ));
    }
    Ok(())
}

/// The MLP of layer `l`: routed where the file holds fused expert tensors for
/// it (the MoE families), dense otherwise.
fn mlp(
    k: &Keys<'_>,
    file: &GgufFile,
    family: Family,
    l: u64,
    d_model: u64,
) -> Result<MlpSpec, GgufError> {
    let has = |suffix: &str| file.tensor(&names::block(l, suffix)).is_some();
    let dense_key = k.arch_key("feed_forward_length");
    let routed = family != Family::Llama && has(EXPERT_TENSORS[0]);
    if !routed {
        return Ok(MlpSpec::Dense {
            ffn: k.size(&dense_key)?,
            bias: has("ffn_gate.bias"),
        });
    }
    let experts_key = k.arch_key("expert_count");
    let experts = k.count(&experts_key)?;
    check_experts(k, file, l, experts, &experts_key)?;
    let used_key = k.arch_key("expert_used_count");
    let top_k = k.count(&used_key)?;
    if top_k > experts {
        return Err(k.error(&used_key, format!("{top_k} exceeds the {experts} experts")));
    }
    let expert_ffn = k.arch_key("expert_feed_forward_length");
    let ffn = match k.opt_size(&expert_ffn)? {
        Some(f) if f > 0 => f,
        _ => k.size(&dense_key)?,
    };
    // llama.cpp normalises the top-k weights for Mixtral, not for Qwen2-MoE or OLMoE.
    let renorm = k
        .opt_bool(&k.arch_key("expert_weights_norm"))?
        .unwrap_or(family == Family::Mixtral);
    let gated_shared = match family {
        Family::Qwen2Moe if has("ffn_gate_shexp.weight") => {
            Some(shared_width(k, file, l, d_model)?)
        }
        _ => None,
    };
    Ok(MlpSpec::Routed {
        experts,
        k: top_k,
        ffn,
        renorm,
        gated_shared,
    })
}

/// Qwen2-MoE's shared-expert width: `expert_shared_feed_forward_length`, or
/// the width of layer `l`'s shared gate projection `[d_model, width]`.
fn shared_width(k: &Keys<'_>, file: &GgufFile, l: u64, d_model: u64) -> Result<u64, GgufError> {
    let key = k.arch_key("expert_shared_feed_forward_length");
    if let Some(w) = k.opt_size(&key)?.filter(|&w| w > 0) {
        return Ok(w);
    }
    let name = names::block(l, "ffn_gate_shexp.weight");
    match file.tensor(&name).map(|t| t.dims.as_slice()) {
        Some(&[d, w]) if d == d_model => k.at_most(&name, w, crate::hf::config::MAX_SIZE),
        _ => Err(GgufError::MissingKey {
            path: k.path().to_path_buf(),
            key,
        }),
    }
}

/// Errors when `block_count` exceeds the blocks `blk.0.…`, `blk.1.…`, … the file holds.
fn check_layers(k: &Keys<'_>, file: &GgufFile, layers: u64) -> Result<(), GgufError> {
    let held: BTreeSet<u64> = file
        .tensors()
        .iter()
        .filter_map(|t| t.name.strip_prefix("blk.")?.split_once('.')?.0.parse().ok())
        .collect();
    let held = held
        .into_iter()
        .enumerate()
        .take_while(|&(i, n)| i as u64 == n)
        .count() as u64;
    if layers > held {
        return Err(GgufError::CountMismatch {
            path: k.path().to_path_buf(),
            key: k.arch_key("block_count"),
            value: layers,
            held,
            what: "blocks".into(),
        });
    }
    Ok(())
}

/// Errors when `expert_count` exceeds the experts layer `l`'s fused gate tensor holds.
fn check_experts(
    k: &Keys<'_>,
    file: &GgufFile,
    l: u64,
    experts: u64,
    key: &str,
) -> Result<(), GgufError> {
    let held = file
        .tensor(&names::block(l, EXPERT_TENSORS[0]))
        .and_then(|t| t.dims.get(2).copied())
        .unwrap_or(0);
    if experts > held {
        return Err(GgufError::CountMismatch {
            path: k.path().to_path_buf(),
            key: key.to_string(),
            value: experts,
            held,
            what: format!("experts in block {l}"),
        });
    }
    Ok(())
}
