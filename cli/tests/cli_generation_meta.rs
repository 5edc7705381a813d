//! Generation metadata in bundles: `seam compile` stores EOS/BOS ids, the
//! chat template and the model's name from a checkpoint folder's
//! `generation_config.json` and `tokenizer_config.json` or from a GGUF
//! file's metadata; `seam inspect` shows them; `seam generate` stops at the
//! EOS ids unless `--ignore-eos`; malformed configs are named errors.

use std::path::{Path, PathBuf};

use seam_core::quant::GgmlType;
use serde_json::json;

#[path = "support/cli.rs"]
mod cli;
#[path = "../../frontends/tests/gguf_support/mod.rs"]
mod gguf_support;
use cli::{compile_small, llama_copy, scratch, seam, text as text_of};
use gguf_support::fixture_gguf;

/// What greedy decoding of the fixture's prompt generates (see
/// tests/fixtures/hf/llama/tokenizer_expected.json): 37 first appears fourth.
const PROMPT_IDS: &str = "1,106,27,118,44,102,14,6,38,122,27,117,87";
const EOS: u32 = 37;

/// A copy of the `llama` fixture with `generation_config` and `tokenizer_config`.
fn checkpoint(
    dir: &Path,
    generation: &serde_json::Value,
    tokenizer: &serde_json::Value,
) -> PathBuf {
    let ckpt = llama_copy(dir, &["config.json", "model.safetensors", "tokenizer.json"]);
    std::fs::write(ckpt.join("generation_config.json"), generation.to_string()).unwrap();
    std::fs::write(ckpt.join("tokenizer_config.json"), tokenizer.to_string()).unwrap();
    ckpt
}

/// Compiles `model` into `bundle`, which must succeed; returns the output.
fn compile(model: &Path, bundle: &Path) -> String {
    let o = compile_small(model, bundle);
    let out = text_of(&o);
    assert!(o.status.success(), "{out}");
    out
}

/// Compiles checkpoint `ckpt`, which must fail with exit code 1 saying `says`.
fn refused(ckpt: &Path, says: &str) {
    let o = compile_small(ckpt, &ckpt.join("never.seamb"));
    assert_eq!(o.status.code(), Some(1), "{}", text_of(&o));
    assert!(text_of(&o).contains(says), "{}", text_of(&o));
}

fn generate(bundle: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "generate",
        bundle.to_str().unwrap(),
        "--prompt-ids",
        PROMPT_IDS,
    ];
    args.extend_from_slice(extra);
    let o = seam(&args);
    let out = text_of(&o);
    assert!(o.status.success(), "{out}");
    out
}

fn generated(out: &str) -> Vec<u32> {
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("generated: "))
        .unwrap_or_else(|| panic!("no ids in:\n{out}"));
    line.split(',').map(|x| x.parse().unwrap()).collect()
}

#[test]
fn checkpoint_configs_travel_in_the_bundle_and_generate_stops_at_eos() {
    let d = scratch("meta-hf");
    let default = "{{ bos_token }}{{ messages[0]['content'] }}";
    let templates = json!([
        {"name": "tool_use", "template": "tools"},
        {"name": "default", "template": default},
    ]);
    let ckpt = checkpoint(
        &d,
        &json!({"eos_token_id": [EOS, 2], "bos_token_id": 1}),
        &json!({"chat_template": templates, "eos_token": "</s>"}),
    );
    let bundle = d.join("m.seamb");
    let out = compile(&ckpt, &bundle);
    assert!(out.contains("embedding generation metadata"), "{out}");
    let o = seam(&["inspect", bundle.to_str().unwrap()]);
    let out = text_of(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("section generation"), "{out}");
    let summary = format!(
        "generation: model name llama, eos ids 37,2, bos id 1, chat template {} bytes",
        default.len()
    );
    assert!(out.contains(&summary), "{out}");

    let out = generate(&bundle, &[]);
    assert_eq!(generated(&out), [18, 18, 18, EOS], "{out}");
    assert!(out.contains("stopped at end-of-sequence id 37"), "{out}");
    let out = generate(&bundle, &["--ignore-eos"]);
    assert_eq!(generated(&out).len(), 16, "{out}");
    assert!(!out.contains("stopped at"), "{out}");

    // Only a tokenizer_config: the EOS token's text is looked up.
    let d = scratch("meta-hf-token");
    let ckpt = checkpoint(&d, &json!({}), &json!({"eos_token": {"content": "</s>"}}));
    compile(&ckpt, &bundle);
    let out = text_of(&seam(&["inspect", bundle.to_str().unwrap()]));
    assert!(
        out.contains("eos ids 2, bos id none, chat template none"),
        "{out}"
    );

    // config.json's ids serve where generation_config.json gives none.
    let path = ckpt.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config["eos_token_id"] = json!(EOS);
    config["bos_token_id"] = json!(1);
    std::fs::write(&path, config.to_string()).unwrap();
    compile(&ckpt, &bundle);
    let out = text_of(&seam(&["inspect", bundle.to_str().unwrap()]));
    assert!(out.contains("eos ids 37, bos id 1,"), "{out}");
}

#[test]
fn malformed_configs_are_named_errors() {
    let d = scratch("meta-bad");
    for (generation, tokenizer, says) in [
        (json!({"eos_token_id": "two"}), json!({}), "eos_token_id"),
        (json!({"eos_token_id": [-1]}), json!({}), "eos_token_id"),
        (json!({}), json!({"chat_template": 7}), "chat_template"),
    ] {
        refused(&checkpoint(&d, &generation, &tokenizer), says);
    }
    let ckpt = d.join("llama");
    std::fs::write(ckpt.join("generation_config.json"), "{").unwrap();
    refused(&ckpt, "not valid JSON");
}

#[test]
fn gguf_metadata_travels_in_the_bundle() {
    let d = scratch("meta-gguf");
    let file = d.join("llama.gguf");
    let mut w = fixture_gguf("llama", GgmlType::F32);
    w.str("tokenizer.chat_template", "{{ messages[0]['content'] }}")
        .u32("tokenizer.ggml.eos_token_id", EOS)
        .u32("tokenizer.ggml.bos_token_id", 1);
    w.write(&file);
    let bundle = d.join("m.seamb");
    let out = compile(&file, &bundle);
    assert!(out.contains("embedding generation metadata"), "{out}");
    let out = text_of(&seam(&["inspect", bundle.to_str().unwrap()]));
    assert!(
        out.contains("generation: model name llama, eos ids 37, bos id 1, chat template 28 bytes"),
        "{out}"
    );
    let out = generate(&bundle, &[]);
    assert_eq!(generated(&out), [18, 18, 18, EOS], "{out}");
}
