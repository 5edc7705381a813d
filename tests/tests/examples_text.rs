//! The example `.seam` files are exactly the models the builder API produces.
//!
//! Run with `SEAM_BLESS=1` to rewrite the files from the builder (then read the
//! diff before committing it).

use std::path::PathBuf;

use seam_frontends::examples::{
    adamoe, ddt_tiny, ladder_residual, mixtral_tiny, mot, mot_dense, mot_masked, pregated_dense,
    pregated_topk, readme_moe, MoeTransformerConfig, MotConfig, MotForm, TensorParallelConfig,
};
use seam_ir::text;
use seam_ir::{GatedAct, Model};

fn example_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(format!("{name}.seam"))
}

fn header(config: &MoeTransformerConfig) -> String {
    let routing = match config.routing {
        seam_frontends::examples::Routing::PreGatedShared(r) => format!(
            "Read-ME pre-gating router: its own 1-layer causal transformer (d={}, {} heads, ffn {})\n\
             # over its own token embedding; one top-1 decision per token (weight 1), shared by every layer.",
            r.d_model, r.heads, r.ffn
        ),
        seam_frontends::examples::Routing::PreGatedPerLayer(r, k) => format!(
            "Decoupled router transformer (d={}, {} heads, ffn {}) with one head per layer,\n\
             # each making a top-{k} decision (softmax, top-k, renormalised) before the backbone runs.",
            r.d_model, r.heads, r.ffn
        ),
        seam_frontends::examples::Routing::InLayer(k) => format!(
            "Mixtral-style routing: each layer routes its own normalised hidden state, top-{k}\n\
             # (softmax, top-k, renormalised)."
        ),
        seam_frontends::examples::Routing::Adaptive(k) => format!(
            "AdaMoE routing: each layer's router picks the top-{k} experts of softmax(h·router); their\n\
             # weights come from a separate scale adapter, softmax(h·router) + h·scale_adapter taken at the\n\
             # picked experts (route mode take, not renormalised). The layer's output is half its general\n\
             # FFN (the shared expert) plus half the routed experts."
        ),
    };
    let act = match config.routing.expert_act() {
        GatedAct::SwiGlu => "SwiGLU",
        GatedAct::GeGlu => "GeGLU",
    };
    let dense = if config.dense_experts {
        "\n# The experts are written as per-expert dense FFNs scaled by routing masks (the naive form);\n\
         # -O2 finds the grouped `moe` (dense-to-moe)."
    } else {
        ""
    };
    format!(
        "# {name}: a decoder-only MoE transformer, {layers} layers, d={d}, {h} query / {kv} kv heads,\n\
         # {e} {act} experts of {f}{shared}, vocab {v}.\n\
         # {routing}{dense}\n\
         {cache}\
         # Generated from seam_frontends::examples::{source} (SEAM_BLESS=1 cargo test -p seam-tests).\n\n",
        name = config.name,
        source = match config.kv_cache {
            Some(n) => format!("{}().with_kv_cache({n})", config.name.trim_end_matches("_kv")),
            None => format!("{}()", config.name),
        },
        layers = config.layers,
        d = config.d_model,
        h = config.heads,
        kv = config.kv_heads,
        e = config.experts,
        f = config.ffn,
        shared = config
            .shared_ffn
            .map(|s| format!(" plus an always-on shared expert of {s}"))
            .unwrap_or_default(),
        v = config.vocab,
        cache = config
            .kv_cache
            .map(|n| format!(
                "# With a KV cache of up to {n} positions (session states): `prefill` and `decode`\n\
                 # run on one sequence's cache; `step` decodes up to {b} sequences at once over\n\
                 # KV pools of {b} slots (`seam generate` and `seam serve` run it).\n{route}",
                b = config.max_batch.unwrap_or(0),
                route = if config.routing.is_pre_gated() {
                    "# `route` runs the router alone over `step`'s tokens and returns each head's\n\
                     # expert ids: the batch's experts, known before `step` runs (`--schedule expert-aware`).\n"
                } else {
                    ""
                },
            ))
            .unwrap_or_default(),
    )
}

fn check_example(config: MoeTransformerConfig) {
    let built = config.build().expect("example builds");
    check_file(&config.name, &header(&config), &built);
}

fn ladder_header(config: &TensorParallelConfig) -> String {
    format!(
        "# {name}: a dense transformer written for tensor parallelism, {layers} layers, d={d},\n\
         # {h} query / {kv} kv heads, SwiGLU of {f}, vocab {v}; an all_reduce after every attention and MLP\n\
         # (the identity on one device), in the Ladder Residual form: each module reads a residual\n\
         # without the previous module's output, which is added one module later (arXiv 2501.06589).\n\
         # Generated from seam_frontends::examples::{name}() (SEAM_BLESS=1 cargo test -p seam-tests).\n\n",
        name = config.name,
        layers = config.layers,
        d = config.d_model,
        h = config.heads,
        kv = config.kv_heads,
        f = config.ffn,
        v = config.vocab,
    )
}

fn mot_header(config: &MotConfig) -> String {
    let form = match config.form {
        MotForm::Grouped => {
            "Every non-embedding weight (q/k/v/o, FFN, norms, head) is stacked per modality and\n\
             # selected by each token's modality id: one grouped_matmul per projection."
        }
        MotForm::Masked => {
            "Every non-embedding weight (q/k/v/o, FFN, norms, head) is stacked per modality; the\n\
             # projections are in the naive form: each modality's dense product for all tokens, times\n\
             # its 0/1 mask cast(eq(modality, e)), summed. -O2 groups them (masked-to-grouped)."
        }
        MotForm::Dense => {
            "The dense baseline of the same width: one set of weights for all tokens\n\
             # (%modality is not read)."
        }
    };
    format!(
        "# {name}: a Mixture-of-Transformers decoder, {layers} layers, d={d}, {h} query / {kv} kv heads,\n\
         # SwiGLU of {f}, vocab {v}, modalities {mods} (ids 0..{n} in %modality).\n\
         # {form}\n\
         # Attention is global: causal over the whole interleaved sequence.\n\
         # Generated from seam_frontends::examples::{name}() (SEAM_BLESS=1 cargo test -p seam-tests).\n\n",
        name = config.name,
        layers = config.layers,
        d = config.d_model,
        h = config.heads,
        kv = config.kv_heads,
        f = config.ffn,
        v = config.vocab,
        mods = config.modalities.join(", "),
        n = config.modalities.len(),
    )
}

fn check_mot(config: MotConfig) {
    let built = config.build().expect("example builds");
    check_file(&config.name, &mot_header(&config), &built);
}

/// Compares `examples/<name>.seam` with `built` (rewriting it under `SEAM_BLESS`).
fn check_file(name: &str, header: &str, built: &Model) {
    let path = example_path(name);
    if std::env::var_os("SEAM_BLESS").is_some() {
        let text = format!("{header}{}", text::print(built));
        std::fs::write(&path, text).expect("write example");
    }
    let source = std::fs::read_to_string(&path).expect("example file exists");
    let (parsed, _) = text::parse_and_verify(&path.display().to_string(), &source)
        .unwrap_or_else(|d| panic!("{}", d.render(false)));
    assert!(
        parsed == *built,
        "{} differs from the builder's model",
        path.display()
    );
}

#[test]
fn readme_moe_file_matches_builder() {
    check_example(readme_moe());
}

#[test]
fn pregated_topk_file_matches_builder() {
    check_example(pregated_topk());
}

#[test]
fn mixtral_tiny_file_matches_builder() {
    check_example(mixtral_tiny());
}

#[test]
fn pregated_dense_file_matches_builder() {
    check_example(pregated_dense());
}

#[test]
fn ladder_residual_file_matches_builder() {
    let config = ladder_residual();
    let built = config.build().expect("example builds");
    check_file(&config.name, &ladder_header(&config), &built);
}

#[test]
fn adamoe_file_matches_builder() {
    check_example(adamoe());
}

#[test]
fn mixtral_tiny_kv_file_matches_builder() {
    check_example(mixtral_tiny().with_kv_cache(2048));
}

#[test]
fn readme_moe_kv_file_matches_builder() {
    check_example(readme_moe().with_kv_cache(2048));
}

#[test]
fn pregated_topk_kv_file_matches_builder() {
    check_example(pregated_topk().with_kv_cache(2048));
}

#[test]
fn mot_file_matches_builder() {
    check_mot(mot());
}

#[test]
fn mot_masked_file_matches_builder() {
    check_mot(mot_masked());
}

#[test]
fn mot_dense_file_matches_builder() {
    check_mot(mot_dense());
}

#[test]
fn ddt_file_matches_builder() {
    let c = ddt_tiny();
    let header = format!(
        "# {name}: a Decoupled Diffusion Transformer (DDT) on a {ch}x{s}x{s} latent in {p}x{p} patches,\n\
         # width {d}, {h} heads, MLP {f}, {classes} classes. A condition encoder of {enc} adaLN-Zero blocks computes\n\
         # the self-condition z from x_t, the timestep MLP and the class embedding; z goes through\n\
         # `cache` (key enc, recomputed every {k} steps by default) so samplers can share it between\n\
         # adjacent steps. A velocity decoder of {dec} blocks, modulated token by token by z plus the\n\
         # condition, returns the velocity (`seam sample` runs it).\n\
         # Generated from seam_frontends::examples::ddt_tiny() (SEAM_BLESS=1 cargo test -p seam-tests).\n\n",
        name = c.name,
        ch = c.channels,
        s = c.size,
        p = c.patch,
        d = c.d_model,
        h = c.heads,
        f = c.mlp,
        classes = c.classes,
        enc = c.encoder_layers,
        dec = c.decoder_layers,
        k = c.share_every,
    );
    check_file(&c.name, &header, &c.build().expect("ddt builds"));
}
