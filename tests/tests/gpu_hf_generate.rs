//! Imported Hugging Face checkpoints with a KV cache on the GPU (lavapipe on
//! CI): `generate` (prefill, then greedy decode; tokens picked on the host and
//! on the device) gives exactly the 16 tokens
//! `transformers` generated, and the prefill logits are within 1e-4 of its
//! logits, for every supported architecture.

mod hf_common;

use hf_common::*;
use seam_compiler::compile::{compile, CompileOptions};
use seam_compiler::lower::Target;
use seam_compiler::optimize::OptLevel;
use seam_frontends::hf::{import, ImportOptions};
use seam_runtime::bundle::BundleReader;
use seam_runtime::generate::{generate, generate_with, GenerateOptions, Sampler, Sampling};
use seam_runtime::{DeviceOptions, Runtime};

#[test]
fn greedy_generation_with_a_kv_cache_matches_transformers() {
    std::env::set_var(
        "WGPU_BACKEND",
        std::env::var("WGPU_BACKEND").unwrap_or("vulkan".into()),
    );
    let rt = Runtime::new(&DeviceOptions::default()).expect("a Vulkan device (lavapipe on CI)");
    for &name in FIXTURES {
        let exp = expected(name);
        let options = ImportOptions {
            kv_cache: Some((exp.prompt.len() + exp.generated.len()) as u64),
            ..ImportOptions::default()
        };
        let m = import(&fixture_dir(name), &options).unwrap();
        let compile_options =
            CompileOptions::new(Target::from_limits(rt.gpu().shader_limits()), OptLevel::O0);
        let bundle = compile(&m.model, &m.weights, &compile_options)
            .unwrap()
            .bundle;
        let loaded = rt
            .load_bundle(BundleReader::from_bytes(bundle.to_bytes().unwrap()).unwrap())
            .unwrap();
        let mut session = loaded.session().unwrap();
        let mut sampler = Sampler::new(Sampling::Greedy).unwrap();
        let options = GenerateOptions {
            prefill_logits: true,
            host_sampling: true,
        };
        let n = exp.generated.len();
        let g = generate_with(&mut session, &exp.prompt, n, &mut sampler, options).unwrap();
        let logits = g.prefill_logits.as_ref().expect("prefill logits");
        let err = max_abs_diff(&logits.to_f32(), &exp.logits.to_f32_vec());
        println!(
            "{name}: prefill max |Δlogit| {err:.3e}, tokens {:?}",
            g.tokens
        );
        assert!(err <= TOLERANCE, "{name}: prefill logits differ by {err}");
        assert_eq!(g.tokens, exp.generated, "{name}: greedy tokens (host)");
        // Picked on the device, reading back one id per token: the same tokens.
        let on_device = generate(&mut session, &exp.prompt, n, &mut sampler).unwrap();
        assert!(on_device.prefill_logits.is_none());
        assert_eq!(
            on_device.tokens, exp.generated,
            "{name}: greedy tokens (device)"
        );
        // Once the sampling kernel is built: one 4-byte id read back per token
        // (the prefill's and each decode step's), no logits.
        let before = rt.gpu().bytes_read_back();
        let again = generate(&mut session, &exp.prompt, n, &mut sampler).unwrap();
        assert_eq!(again.tokens, exp.generated, "{name}: greedy tokens (again)");
        assert_eq!(rt.gpu().bytes_read_back() - before, 4 * n as u64, "{name}");
    }
}
