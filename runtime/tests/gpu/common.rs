//! Shared test helpers: one device per test process, seeded inputs, tolerance checks.

use std::sync::{Mutex, OnceLock};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seam_runtime::device::{
    BufferView, DeviceOptions, Gpu, GpuBuffer, KernelPipeline, PipelineCache,
};
use seam_shaders::{DeviceLimits, Kernel};

/// Relative tolerance of every f32 comparison: |got − want| ≤ RTOL·scale + ATOL,
/// where `scale` is |want| or, for sums, the sum of the magnitudes of the terms.
pub const RTOL: f64 = 1e-4;
/// Absolute floor of the tolerance.
pub const ATOL: f64 = 1e-6;

/// The device shared by all tests of this binary (Vulkan unless WGPU_BACKEND says otherwise).
pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| {
        let opts = DeviceOptions {
            backends: seam_runtime::device::wgpu::Backends::VULKAN,
            ..DeviceOptions::default()
        };
        Gpu::new(&opts).expect("a Vulkan device (lavapipe on machines without a GPU)")
    })
}

/// The device's limits for the generators.
pub fn limits() -> DeviceLimits {
    gpu().shader_limits()
}

/// `n` seeded uniform values in [-1, 1).
pub fn rand_f32(seed: u64, n: usize) -> Vec<f32> {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| r.random_range(-1.0f32..1.0)).collect()
}

/// `n` seeded integers in `lo..hi`.
pub fn rand_i32(seed: u64, n: usize, lo: i32, hi: i32) -> Vec<i32> {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| r.random_range(lo..hi)).collect()
}

/// Uploads data.
pub fn up<T: bytemuck::Pod>(data: &[T]) -> GpuBuffer {
    gpu().upload("test input", data).unwrap()
}

/// A zeroed output buffer of `n` 4-byte elements.
pub fn out(n: usize) -> GpuBuffer {
    gpu()
        .create_buffer("test output", (n.max(1) * 4) as u64)
        .unwrap()
}

/// Validates and compiles a kernel (with runtime checks on), once per distinct
/// WGSL: lavapipe compiles every pipeline with LLVM, which dominates a cold run.
pub fn pipeline(k: &Kernel) -> KernelPipeline {
    static CACHE: OnceLock<Mutex<PipelineCache>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(PipelineCache::new()));
    seam_shaders::validate(k).unwrap_or_else(|e| panic!("{e}\n{}", k.wgsl));
    cache.lock().unwrap().get(gpu(), k).unwrap()
}

/// Runs one dispatch.
pub fn run(k: &KernelPipeline, bufs: &[&GpuBuffer], sizes: &[(&str, u32)]) {
    let views: Vec<BufferView<'_>> = bufs.iter().map(|b| b.view()).collect();
    gpu().run_once(k, &views, sizes).unwrap();
}

/// Reads `n` f32 values.
pub fn read_f32(b: &GpuBuffer, n: usize) -> Vec<f32> {
    gpu().read_range(b, 0, n).unwrap()
}

/// Reads `n` i32 values.
pub fn read_i32(b: &GpuBuffer, n: usize) -> Vec<i32> {
    gpu().read_range(b, 0, n).unwrap()
}

/// Checks `got` against `want` (f64 reference) elementwise with per-element scales.
pub fn assert_close_scaled(what: &str, got: &[f32], want: &[f64], scale: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = (0usize, 0.0f64);
    for i in 0..got.len() {
        let d = (f64::from(got[i]) - want[i]).abs();
        let tol = RTOL * scale[i].max(want[i].abs()) + ATOL;
        let ratio = d / tol;
        if ratio.is_nan() || ratio > 1.0 {
            panic!(
                "{what}: element {i}: got {}, want {} (|diff| {d:e} > tol {tol:e})",
                got[i], want[i]
            );
        }
        if ratio > worst.1 {
            worst = (i, ratio);
        }
    }
}

/// Checks `got` against `want` with scale |want|.
pub fn assert_close(what: &str, got: &[f32], want: &[f64]) {
    let scale: Vec<f64> = want.iter().map(|w| w.abs()).collect();
    assert_close_scaled(what, got, want, &scale);
}

/// Reference `a[m,k]·b[k,n]` in f64, with the magnitude Σ|a·b| per element.
pub fn ref_matmul(a: &[f32], b: &[f32], m: usize, n: usize, k: usize) -> (Vec<f64>, Vec<f64>) {
    let mut c = vec![0.0; m * n];
    let mut s = vec![0.0; m * n];
    for i in 0..m {
        for p in 0..k {
            let x = f64::from(a[i * k + p]);
            for j in 0..n {
                let y = f64::from(b[p * n + j]);
                c[i * n + j] += x * y;
                s[i * n + j] += (x * y).abs();
            }
        }
    }
    (c, s)
}

/// Transposes a row-major `[r, c]` matrix.
pub fn transpose(x: &[f32], r: usize, c: usize) -> Vec<f32> {
    let mut t = vec![0.0; r * c];
    for i in 0..r {
        for j in 0..c {
            t[j * r + i] = x[i * c + j];
        }
    }
    t
}
