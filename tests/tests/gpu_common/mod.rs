//! What the GPU tests share: the device and compiling a model onto it.

use seam_compiler::compile::{compile, CompileOptions};
use seam_compiler::lower::Target;
use seam_compiler::optimize::OptLevel;
use seam_ir::{Model, Weights};
use seam_runtime::bundle::BundleReader;
use seam_runtime::{DeviceOptions, Runtime};

/// The default Vulkan device (lavapipe on CI; `WGPU_BACKEND` may pick another).
pub fn runtime() -> Runtime {
    std::env::set_var(
        "WGPU_BACKEND",
        std::env::var("WGPU_BACKEND").unwrap_or("vulkan".into()),
    );
    Runtime::new(&DeviceOptions::default()).expect("a Vulkan device (lavapipe on CI)")
}

/// `model` with `weights` compiled at `opt_level` for `rt`'s device and loaded.
#[allow(dead_code)] // not every test binary using this module needs it
pub fn load(
    rt: &Runtime,
    model: &Model,
    weights: &Weights,
    opt_level: OptLevel,
) -> seam_runtime::Model {
    let bytes = bundle_bytes(rt, model, weights, opt_level);
    rt.load_bundle(BundleReader::from_bytes(bytes).unwrap())
        .unwrap()
}

/// The bundle of `model` with `weights` compiled at `opt_level` for `rt`'s device.
#[allow(dead_code)] // not every test binary using this module needs it
pub fn bundle_bytes(
    rt: &Runtime,
    model: &Model,
    weights: &Weights,
    opt_level: OptLevel,
) -> Vec<u8> {
    let options = CompileOptions::new(Target::from_limits(rt.gpu().shader_limits()), opt_level);
    compile(model, weights, &options)
        .unwrap()
        .bundle
        .to_bytes()
        .unwrap()
}
