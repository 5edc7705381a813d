//! DDT on the default device (lavapipe on CI) against the reference
//! evaluator: one forward, and whole samples whose steps share the cached
//! encoder output, at -O0 and -O2.

mod gpu_common;

use gpu_common::{load, runtime};
use seam_compiler::optimize::OptLevel;
use seam_core::flow::{euler, gaussian_noise, ShareSchedule};
use seam_frontends::examples::ddt_tiny;
use seam_ir::{random_weights, CacheSession, Model, Tensor, Weights};
use seam_runtime::{HostTensor, Timing};

/// Why a test sample failed.
type SampleError = Box<dyn std::error::Error>;

const SHAPE: [usize; 3] = [4, 8, 8];
const LABEL: i32 = 3;

fn model() -> (Model, Weights) {
    let model = ddt_tiny().build().unwrap();
    let weights = random_weights(&model, 5);
    (model, weights)
}

fn host_inputs(x: &[f32], t: f32) -> Vec<HostTensor> {
    vec![
        HostTensor::from_f32(SHAPE.to_vec(), x).unwrap(),
        HostTensor::from_f32(vec![1], &[t]).unwrap(),
        HostTensor::from_i32(vec![1], &[LABEL]).unwrap(),
    ]
}

fn cpu_inputs(x: &[f32], t: f32) -> Vec<Tensor> {
    vec![
        Tensor::f32(SHAPE.to_vec(), x.to_vec()).unwrap(),
        Tensor::f32(vec![1], vec![t]).unwrap(),
        Tensor::i32(vec![1], vec![LABEL]).unwrap(),
    ]
}

/// Max |a − b| and max |b|.
fn max_err(a: &[f32], b: &[f32]) -> (f32, f32) {
    assert_eq!(a.len(), b.len());
    let err = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    (err, b.iter().fold(0f32, |m, x| m.max(x.abs())))
}

#[test]
fn ddt_forward_matches_reference_on_gpu() {
    let (model, weights) = model();
    let rt = runtime();
    let x = gaussian_noise(1, SHAPE.iter().product());
    let cpu = seam_ir::evaluate(&model, "forward", &weights, &cpu_inputs(&x, 0.25)).unwrap();
    for opt in [OptLevel::O0, OptLevel::O2] {
        let loaded = load(&rt, &model, &weights, opt);
        let forward = loaded.entry("forward").unwrap();
        let mut session = loaded.session().unwrap();
        let gpu = session.run(&forward, &host_inputs(&x, 0.25)).unwrap();
        assert_eq!(gpu[0].shape(), cpu[0].shape.as_slice());
        let (err, scale) = max_err(&gpu[0].to_f32(), &cpu[0].to_f32_vec());
        println!("ddt -O{opt} forward: max abs err {err:.3e} (max |v| {scale:.3})");
        assert!(err <= 1e-4 * scale.max(1.0), "-O{opt}: {err}");
    }
}

/// Samples `steps` steps under `schedule` on the GPU and with the evaluator
/// from the same noise, and compares the final latents.
fn check_sample(opt: OptLevel, steps: u32, schedule: &str) {
    let (model, weights) = model();
    let schedule: ShareSchedule = schedule.parse().unwrap();
    let rt = runtime();
    let loaded = load(&rt, &model, &weights, opt);
    let forward = loaded.entry("forward").unwrap();
    let mut session = loaded.session().unwrap();
    let noise = gaussian_noise(9, SHAPE.iter().product());
    let mut dispatches = (0, usize::MAX);
    let gpu = euler(noise.clone(), steps, &schedule, |x, t, refresh| {
        let reuse: &[&str] = if refresh { &[] } else { &["enc"] };
        let out = session.run_reusing_with(&forward, &host_inputs(x, t), reuse, Timing::Wall)?;
        if refresh {
            dispatches.0 = out.timing.dispatches;
        } else {
            dispatches.1 = out.timing.dispatches;
        }
        Ok::<_, SampleError>(out.tensors[0].to_f32())
    })
    .unwrap();
    let mut cpu_session = CacheSession::new(&model, &weights);
    let cpu = euler(noise, steps, &schedule, |x, t, refresh| {
        let reuse: &[&str] = if refresh { &[] } else { &["enc"] };
        let out = cpu_session.run("forward", &cpu_inputs(x, t), reuse)?;
        Ok::<_, SampleError>(out[0].to_f32_vec())
    })
    .unwrap();
    let (err, scale) = max_err(&gpu, &cpu);
    println!(
        "ddt -O{opt} sample {steps} steps {schedule}: max abs err {err:.3e} (max |x| {scale:.3}); \
         {} dispatches computing z, {} reusing it",
        dispatches.0, dispatches.1
    );
    assert!(err <= 1e-4 * scale.max(1.0), "-O{opt} {schedule}: {err}");
    assert!(dispatches.1 < dispatches.0, "reuse skips the encoder");
}

#[test]
fn ddt_samples_with_sharing_match_reference_on_gpu() {
    check_sample(OptLevel::O0, 6, "uniform:2");
    check_sample(OptLevel::O2, 6, "uniform:3");
    check_sample(OptLevel::O2, 6, "list:0,1,3");
}

#[test]
fn reusing_a_cache_before_computing_it_is_refused() {
    let (model, weights) = model();
    let rt = runtime();
    let loaded = load(&rt, &model, &weights, OptLevel::O0);
    let forward = loaded.entry("forward").unwrap();
    let mut session = loaded.session().unwrap();
    let x = vec![0.0; SHAPE.iter().product()];
    let err = session
        .run_reusing(&forward, &host_inputs(&x, 0.0), &["enc"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("holds no value yet"), "{err}");
    let err = session
        .run_reusing(&forward, &host_inputs(&x, 0.0), &["dec"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("no cache `dec`"), "{err}");
    session.run(&forward, &host_inputs(&x, 0.0)).unwrap();
    session
        .run_reusing(&forward, &host_inputs(&x, 0.5), &["enc"])
        .unwrap();
    session.reset().unwrap();
    assert!(session
        .run_reusing(&forward, &host_inputs(&x, 0.0), &["enc"])
        .is_err());
}
