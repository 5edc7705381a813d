//! Imported Hugging Face checkpoints on the GPU (lavapipe on CI): compiled at the
//! default optimization level and at -O2, run by the runtime, logits within 1e-4
//! of `transformers` for every supported architecture.

mod hf_common;

use hf_common::*;
use seam_compiler::compile::{compile, CompileOptions};
use seam_compiler::lower::Target;
use seam_compiler::optimize::OptLevel;
use seam_runtime::bundle::BundleReader;
use seam_runtime::{DeviceOptions, HostTensor, Runtime};

/// The `-O` levels checked: `seam compile`'s default (0) and all rules (2).
const OPT_LEVELS: [OptLevel; 2] = [OptLevel::O0, OptLevel::O2];

fn runtime() -> Runtime {
    std::env::set_var(
        "WGPU_BACKEND",
        std::env::var("WGPU_BACKEND").unwrap_or("vulkan".into()),
    );
    Runtime::new(&DeviceOptions::default()).expect("a Vulkan device (lavapipe on CI)")
}

fn gpu_logits_match(name: &str) {
    let m = imported(name);
    let exp = expected(name);
    let rt = runtime();
    for opt_level in OPT_LEVELS {
        let options = CompileOptions::new(Target::from_limits(rt.gpu().shader_limits()), opt_level);
        let bundle = compile(&m.model, &m.weights, &options).unwrap().bundle;
        let loaded = rt
            .load_bundle(BundleReader::from_bytes(bundle.to_bytes().unwrap()).unwrap())
            .unwrap();
        let forward = loaded.entry("forward").unwrap();
        let mut session = loaded.session().unwrap();
        let n = exp.prompt.len();
        let out = session
            .run(
                &forward,
                &[HostTensor::from_i32(vec![n], &exp.prompt).unwrap()],
            )
            .unwrap();
        assert_eq!(out[0].shape(), exp.logits.shape, "{name}: logits shape");
        let err = max_abs_diff(&out[0].to_f32(), &exp.logits.to_f32_vec());
        println!("{name} -O{opt_level}: GPU max |Δlogit| = {err:.3e}");
        assert!(
            err <= TOLERANCE,
            "{name} -O{opt_level}: GPU max |Δlogit| {err} > {TOLERANCE}"
        );
    }
}

macro_rules! gpu_tests {
    ($($arch:ident),*) => {$(
        #[test]
        fn $arch() {
            gpu_logits_match(stringify!($arch));
        }
    )*};
}

gpu_tests!(llama, mixtral, qwen2_moe, olmoe, readme);
