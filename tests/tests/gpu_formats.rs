//! Weight formats on the GPU (lavapipe on CI): every Hugging Face fixture
//! compiled with its product weights in each format (`seam compile --weights`),
//! at -O2 (and -O0 for `q4_0`), run by the runtime, against the reference evaluator on the
//! weights those blocks decode to — within 1e-4 of the largest |logit| — and,
//! to say what each format costs in fidelity, against the f32 model's logits
//! recorded by `transformers`. The expert stacks of `moe` ops are stored in
//! the format too (checked), and each run prints the bytes stored quantized.

mod hf_common;

use hf_common::*;
use seam_compiler::compile::{compile, CompileOptions};
use seam_compiler::formats::{assign_formats, param_roles, FormatReport, ParamRole, WeightPolicy};
use seam_compiler::lower::Target;
use seam_compiler::optimize::OptLevel;
use seam_core::WeightFormat;
use seam_ir::{evaluate, Model, Tensor};
use seam_runtime::bundle::BundleReader;
use seam_runtime::{DeviceOptions, HostTensor, Runtime};

/// GPU vs evaluator on the decoded weights, relative to the largest |logit|.
const RELATIVE: f32 = 1e-4;

fn runtime() -> Runtime {
    std::env::set_var(
        "WGPU_BACKEND",
        std::env::var("WGPU_BACKEND").unwrap_or("vulkan".into()),
    );
    Runtime::new(&DeviceOptions::default()).expect("a Vulkan device (lavapipe on CI)")
}

fn argmax_rows(v: &[f32], vocab: usize) -> Vec<usize> {
    v.chunks(vocab)
        .map(|row| {
            (0..row.len())
                .max_by(|&a, &b| row[a].total_cmp(&row[b]).then(b.cmp(&a)))
                .unwrap_or(0)
        })
        .collect()
}

/// `(bytes in a format other than f32, bytes of every product weight)` as ggml encodes them.
fn quantized_bytes(report: &FormatReport) -> (u64, u64) {
    report
        .by_format
        .iter()
        .fold((0, 0), |(q, all), (&f, &(_, bytes))| {
            let q = if f == WeightFormat::F32 { q } else { q + bytes };
            (q, all + bytes)
        })
}

/// The formats of the expert stacks of `model`, in param order.
fn expert_formats(model: &Model) -> Vec<WeightFormat> {
    param_roles(model)
        .iter()
        .zip(&model.params)
        .filter(|(role, _)| **role == ParamRole::Expert)
        .map(|(_, p)| p.format)
        .collect()
}

fn formats_match(name: &str) {
    let m = imported(name);
    let exp = expected(name);
    let rt = runtime();
    let n = exp.prompt.len();
    let ids = Tensor::i32(vec![n], exp.prompt.clone()).unwrap();
    let vocab = exp.logits.shape[1];
    let f32_logits = exp.logits.to_f32_vec();
    // Every format but f32 (that is `gpu_hf`'s).
    for format in WeightFormat::ALL
        .into_iter()
        .filter(|&f| f != WeightFormat::F32)
    {
        let policy = WeightPolicy::uniform(format);
        // The model as stored: what the device must compute.
        let (stored, stored_weights, report) =
            assign_formats(&m.model, &m.weights, &policy, &mut |_, _| {}).unwrap();
        let (quantized, all) = quantized_bytes(&report);
        let stacks = expert_formats(&stored);
        let encoded = stacks.iter().filter(|&&f| f != WeightFormat::F32).count();
        println!(
            "{name} {format}: {:.2} of {:.2} MB of product weights stored in a format other than f32; \
             {encoded}/{} expert stacks in {stacks:?}",
            quantized as f64 / 1e6,
            all as f64 / 1e6,
            stacks.len()
        );
        assert_eq!(
            encoded,
            stacks.len(),
            "{name} {format}: expert stacks left in f32"
        );
        let reference = evaluate(
            &stored,
            "forward",
            &stored_weights,
            std::slice::from_ref(&ids),
        )
        .unwrap();
        let reference = reference[0].to_f32_vec();
        let scale = reference.iter().fold(0f32, |a, x| a.max(x.abs()));
        let levels: &[OptLevel] = match format {
            WeightFormat::Q4_0 => &[OptLevel::O0, OptLevel::O2],
            _ => &[OptLevel::O2],
        };
        for &level in levels {
            let options = CompileOptions {
                weights: policy,
                ..CompileOptions::new(Target::from_limits(rt.gpu().shader_limits()), level)
            };
            let bundle = compile(&m.model, &m.weights, &options).unwrap().bundle;
            for stack_format in &stacks {
                // The expert products decode the stacks themselves (in the
                // format they are stored in, a fallback of `format`).
                let tag = format!("_{}_r", stack_format.name());
                let ran =
                    |prefix: &str| {
                        bundle.manifest.kernels.iter().any(|k| {
                            k.kernel.name.starts_with(prefix) && k.kernel.name.contains(&tag)
                        })
                    };
                assert!(
                    ran("moe_gate_up") && ran("moe_down"),
                    "{name} {format} -O{level}: no {stack_format} expert kernels"
                );
            }
            let loaded = rt
                .load_bundle(BundleReader::from_bytes(bundle.to_bytes().unwrap()).unwrap())
                .unwrap();
            let forward = loaded.entry("forward").unwrap();
            let out = loaded
                .session()
                .unwrap()
                .run(
                    &forward,
                    &[HostTensor::from_i32(vec![n], &exp.prompt).unwrap()],
                )
                .unwrap();
            let gpu = out[0].to_f32();
            let err = max_abs_diff(&gpu, &reference);
            let drift = max_abs_diff(&gpu, &f32_logits);
            let agree = argmax_rows(&gpu, vocab)
                .iter()
                .zip(argmax_rows(&f32_logits, vocab))
                .filter(|(a, b)| **a == *b)
                .count();
            println!(
                "{name} {format} -O{level}: GPU vs decoded-weights reference {err:.2e} \
                 (max |logit| {scale:.2}); vs f32 transformers {drift:.3e}, argmax agrees on {agree}/{n} rows"
            );
            assert!(
                err <= RELATIVE * scale.max(1.0),
                "{name} {format} -O{level}: {err} > {RELATIVE} · {scale}"
            );
        }
    }
}

macro_rules! format_tests {
    ($($arch:ident),*) => {$(
        #[test]
        fn $arch() {
            formats_match(stringify!($arch));
        }
    )*};
}

format_tests!(llama, mixtral, qwen2_moe, olmoe, readme);
