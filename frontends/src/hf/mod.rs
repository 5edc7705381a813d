//! Importing Hugging Face checkpoints: a folder with `config.json` and
//! `*.safetensors` weights (one file, or shards listed by
//! `model.safetensors.index.json`) becomes a [`Model`] with `forward(ids[tokens])
//! -> logits[tokens, vocab]` (and, with [`ImportOptions::kv_cache`], `prefill`
//! and `decode` over a KV cache) and its [`Weights`].
//!
//! Supported: `LlamaForCausalLM`, `MixtralForCausalLM`, `Qwen2MoeForCausalLM`,
//! `OlmoeForCausalLM` and the Read-ME convention below. Every config field that
//! changes the math is honoured (`rope_theta` at top level as in transformers 4.x
//! or in `rope_parameters` as in 5.x, `rms_norm_eps`, `num_key_value_heads`,
//! `head_dim`, `tie_word_embeddings`, attention/q-k-v/MLP biases, `norm_topk_prob`,
//! shared-expert sizes and gate, `decoder_sparse_step`, `mlp_only_layers`) or, when
//! its value is not implemented (scaled RoPE, an active sliding window, `clip_qkv`,
//! a non-SiLU activation), refused with an error naming it. Weights in f32, f16 or
//! bf16 are memory-mapped and converted to f32; `nn.Linear` weights (`[out, in]`)
//! are transposed to the IR's `[in, out]` and per-expert weights stacked. Experts
//! are read per expert as the hub stores them, or from transformers 5.x's fused
//! `experts.gate_up_proj` / `experts.down_proj` tensors
//! (`save_pretrained(save_original_format=False)`). [`Imported::origins`] records
//! which parameters are, byte for byte, a range of a checkpoint file (so a bundle
//! may reference it: `seam compile --weight-storage external`).
//!
//! Hostile numbers are refused before they size anything: config sizes are at
//! most 2^24 and layer and expert counts at most 2^16 ([`HfError::TooLarge`]),
//! and `num_hidden_layers` and the expert count must not exceed the layers and
//! experts the checkpoint's tensor names hold ([`HfError::CountMismatch`]),
//! checked before the graph is built.
//!
//! # The Read-ME convention
//!
//! Read-ME (VITA-Group/READ-ME) refactors a dense Llama into experts with a
//! decoupled router; no checkpoint format is fixed, so Seam reads this one:
//!
//! ```json
//! {
//!   "architectures": ["ReadMeForCausalLM"], "model_type": "readme",
//!   "vocab_size": 256, "hidden_size": 64, "num_hidden_layers": 2,
//!   "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5,
//!   "rope_theta": 10000.0, "max_position_embeddings": 128, "hidden_act": "silu",
//!   "tie_word_embeddings": false,
//!   "num_experts": 4, "expert_intermediate_size": 32,
//!   "shared_expert_intermediate_size": 64,
//!   "router_config": { "hidden_size": 32, "num_attention_heads": 2,
//!                      "num_key_value_heads": 2, "intermediate_size": 64 }
//! }
//! ```
//!
//! The backbone is a Llama whose MLPs are SwiGLU experts
//! (`model.layers.{l}.mlp.experts.{e}.{gate,up,down}_proj.weight`, each
//! `expert_intermediate_size` wide — slices of the dense FFN) plus an always-on
//! shared ("permanent") expert (`model.layers.{l}.mlp.shared_expert.*`). The router
//! is its own one-layer causal Llama over its own embedding
//! (`router.embed_tokens.weight`, `router.layers.0.*` with Llama names,
//! `router.norm.weight`) and a head `router.gate.weight` `[num_experts,
//! router hidden]`; it never reads the backbone. Each token's expert is the argmax
//! of the head's logits, with weight 1, and every layer uses that one decision.
//! `router_config` may set its own `rms_norm_eps` and `rope_theta`; otherwise the
//! backbone's apply. The reference PyTorch implementation is in
//! `tests/fixtures/hf/make_fixtures.py`.

pub(crate) mod arch;
mod checkpoint;
pub(crate) mod config;
mod counts;
mod declarer;
mod error;
pub(crate) mod graph;
pub(crate) mod names;
mod origin;
pub(crate) mod store;
pub(crate) mod weights;

use std::path::Path;

use seam_ir::{Model, Weights};

pub use arch::Family;
pub use error::HfError;
pub use origin::{OriginLayout, TensorOrigin};
pub use weights::ProgressFn;

/// The name of a checkpoint's config file.
pub const CONFIG_FILE: &str = "config.json";

/// Options of [`import`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImportOptions {
    /// Upper bound of the `tokens` dim; default `max_position_embeddings`
    /// (at most 4096, or 4096 when the config has none).
    pub max_tokens: Option<u64>,
    /// With `Some(max_seq_len)`, the model also has `prefill` and `decode`
    /// functions over a KV cache of that many positions (`seam generate`).
    pub kv_cache: Option<u64>,
    /// With [`ImportOptions::kv_cache`] and `Some(max_batch)`, the model also
    /// has the batched `step` (the runtime's serving engine) over KV pools
    /// of that many sequences.
    pub max_batch: Option<u64>,
}

/// An imported checkpoint.
#[derive(Clone, Debug)]
pub struct Imported {
    /// The architecture the config named.
    pub family: Family,
    /// The model: `forward(ids: i32[tokens]) -> f32[tokens, vocab]` (and
    /// `prefill`, `decode` with [`ImportOptions::kv_cache`]).
    pub model: Model,
    /// Its weights, converted to f32.
    pub weights: Weights,
    /// Per parameter (in the model's order), the checkpoint bytes holding its
    /// values exactly, where there are such (f32 tensors; see [`TensorOrigin`]).
    pub origins: Vec<Option<TensorOrigin>>,
}

/// Whether `path` looks like a checkpoint folder (a directory with `config.json`).
pub fn is_checkpoint_dir(path: &Path) -> bool {
    path.is_dir() && path.join(CONFIG_FILE).is_file()
}

/// Imports the checkpoint folder `dir`.
pub fn import(dir: &Path, options: &ImportOptions) -> Result<Imported, HfError> {
    import_with_progress(dir, options, &mut |_, _| {})
}

/// [`import`], calling `progress(bytes_done, bytes_total)` as weights are converted.
pub fn import_with_progress(
    dir: &Path,
    options: &ImportOptions,
    progress: &mut ProgressFn<'_>,
) -> Result<Imported, HfError> {
    let config_path = dir.join(CONFIG_FILE);
    if !config_path.is_file() {
        return Err(HfError::MissingConfig {
            dir: dir.to_path_buf(),
        });
    }
    let config = config::ConfigReader::open(&config_path)?;
    let family = Family::detect(&config)?;
    let spec = arch::Spec::read(&config, family, options.max_tokens)?;
    let ckpt = checkpoint::Checkpoint::open(dir)?;
    counts::check(&spec, &ckpt, &config_path)?;
    let folder = dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    let name = model_name(folder.as_deref().unwrap_or("model"));
    let (model, sources) = graph::build(&spec, &name, options.kv_cache, options.max_batch)?;
    weights::check_present(&sources, &ckpt)?;
    let weights = weights::load(&model, &sources, &ckpt, progress)?;
    let origins = origin::origins(&sources, &ckpt);
    Ok(Imported {
        family,
        model,
        weights,
        origins,
    })
}

/// A model's name from `raw` (a checkpoint folder's name, a model file's
/// stem) with characters the text format does not allow in identifiers
/// replaced by `_`.
pub(crate) fn model_name(raw: &str) -> String {
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        name.insert(0, '_');
    }
    name
}
