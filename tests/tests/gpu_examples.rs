//! End to end on the default device (lavapipe on CI): each example compiled to a
//! bundle, loaded by the runtime, run, and compared with the reference evaluator.

use seam_compiler::compile::{compile, CompileOptions};
use seam_compiler::lower::Target;
use seam_compiler::optimize::OptLevel;
use seam_ir::{evaluate, random_weights, text, Tensor};
use seam_runtime::bundle::BundleReader;
use seam_runtime::{DeviceOptions, HostTensor, Runtime};

fn example(name: &str) -> seam_ir::Model {
    let path = format!("{}/../examples/{name}.seam", env!("CARGO_MANIFEST_DIR"));
    let src = std::fs::read_to_string(&path).unwrap();
    text::parse_and_verify(&path, &src).unwrap().0
}

fn runtime() -> Runtime {
    std::env::set_var(
        "WGPU_BACKEND",
        std::env::var("WGPU_BACKEND").unwrap_or("vulkan".into()),
    );
    Runtime::new(&DeviceOptions::default()).expect("a Vulkan device (lavapipe on CI)")
}

/// The `forward` inputs for `n` tokens, all `i32[n]`: token ids, and for a
/// Mixture-of-Transformers model each token's modality (runs of 2 text and
/// 3 image tokens).
fn forward_inputs(model: &seam_ir::Model, n: usize) -> Vec<Vec<i32>> {
    let forward = model.function("forward").unwrap();
    forward
        .inputs
        .iter()
        .map(|&v| match forward.value(v).name.as_str() {
            "modality" => (0..n).map(|i| i32::from(i % 5 >= 2)).collect(),
            _ => (0..n).map(|i| ((i * 37 + 5) % 1024) as i32).collect(),
        })
        .collect()
}

/// Compiles the example at `opt_level` and checks max |gpu − cpu| against
/// 1e-4 · max |cpu| over the logits, the reference being the evaluator on the
/// model as written (before optimization).
fn check(name: &str, opt_level: OptLevel, token_counts: &[usize]) {
    let model = example(name);
    let weights = random_weights(&model, 11);
    let rt = runtime();
    let target = Target::from_limits(rt.gpu().shader_limits());
    let bundle = compile(&model, &weights, &CompileOptions::new(target, opt_level))
        .unwrap()
        .bundle;
    let bytes = bundle.to_bytes().unwrap();
    let loaded = rt
        .load_bundle(BundleReader::from_bytes(bytes).unwrap())
        .unwrap();
    let forward = loaded.entry("forward").unwrap();
    let mut session = loaded.session().unwrap();
    for &n in token_counts {
        let inputs = forward_inputs(&model, n);
        let host: Vec<HostTensor> = inputs
            .iter()
            .map(|v| HostTensor::from_i32(vec![n], v).unwrap())
            .collect();
        let gpu = session.run(&forward, &host).unwrap();
        let reference: Vec<Tensor> = inputs
            .into_iter()
            .map(|v| Tensor::i32(vec![n], v).unwrap())
            .collect();
        let cpu = evaluate(&model, "forward", &weights, &reference).unwrap();
        let (g, c) = (gpu[0].to_f32(), cpu[0].to_f32_vec());
        assert_eq!(gpu[0].shape(), cpu[0].shape);
        let scale = c.iter().fold(0f32, |m, x| m.max(x.abs()));
        let err = g
            .iter()
            .zip(&c)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        println!("{name} -O{opt_level} tokens={n}: max abs err {err:.3e} (max |logit| {scale:.3})");
        assert!(
            err <= 1e-4 * scale.max(1.0),
            "{name} tokens={n}: max abs err {err}"
        );
    }
}

#[test]
fn readme_moe_matches_reference_on_gpu() {
    check("readme_moe", OptLevel::O0, &[1, 7, 33]);
    check("readme_moe", OptLevel::O2, &[1, 33]);
}

#[test]
fn mixtral_tiny_matches_reference_on_gpu() {
    check("mixtral_tiny", OptLevel::O0, &[1, 7, 33]);
    check("mixtral_tiny", OptLevel::O2, &[1, 33]);
}

#[test]
fn pregated_topk_matches_reference_on_gpu() {
    check("pregated_topk", OptLevel::O0, &[5]);
    check("pregated_topk", OptLevel::O2, &[5]);
}

#[test]
fn pregated_dense_matches_reference_on_gpu_at_o2() {
    check("pregated_dense", OptLevel::O2, &[1, 9]);
}

#[test]
fn ladder_residual_matches_reference_on_gpu() {
    check("ladder_residual", OptLevel::O0, &[1, 9]);
    check("ladder_residual", OptLevel::O2, &[1, 9]);
}

#[test]
fn adamoe_matches_reference_on_gpu() {
    check("adamoe", OptLevel::O0, &[1, 9]);
    check("adamoe", OptLevel::O2, &[1, 9]);
}

#[test]
fn mot_matches_reference_on_gpu() {
    check("mot", OptLevel::O0, &[1, 9, 33]);
    check("mot", OptLevel::O2, &[1, 33]);
}

#[test]
fn mot_masked_matches_reference_on_gpu() {
    check("mot_masked", OptLevel::O0, &[1, 9]);
    check("mot_masked", OptLevel::O2, &[1, 9]);
}

#[test]
fn mot_dense_matches_reference_on_gpu() {
    check("mot_dense", OptLevel::O0, &[1, 9]);
    check("mot_dense", OptLevel::O2, &[1, 9]);
}
