//! KV-cache bundles on the default device (lavapipe on CI): `prefill` then
//! `decode` in one session give the reference evaluator's logits (the same
//! calls on [`StateSession`], and the cache-free `forward`) within 1e-4
//! relative to the largest logit; the
//! states persist across calls, `reset` starts over, and a run past the
//! capacity is a clear error. A decode timed dispatch by dispatch gives the
//! same logits, and an entry point runs only on its own model's sessions.

mod gpu_common;

use gpu_common::{load, runtime};
use seam_compiler::optimize::OptLevel;
use seam_frontends::examples::{mixtral_tiny, readme_moe, MoeTransformerConfig};
use seam_ir::eval::StateSession;
use seam_ir::{evaluate, random_weights, Model, Tensor, Weights};
use seam_runtime::{Error, HostTensor, Timing};

fn cached(mut c: MoeTransformerConfig, max_seq: u64) -> (Model, Weights) {
    c.kv_cache = Some(max_seq);
    let model = c.build().unwrap();
    let weights = random_weights(&model, 21);
    (model, weights)
}

fn ids(n: usize, salt: usize) -> Vec<i32> {
    (0..n).map(|i| ((i * 37 + salt) % 1024) as i32).collect()
}

/// Max |gpu − cpu| over max |cpu|.
fn rel_err(gpu: &HostTensor, cpu: &Tensor) -> f32 {
    assert_eq!(gpu.shape(), cpu.shape);
    let (g, c) = (gpu.to_f32(), cpu.to_f32_vec());
    let scale = c.iter().fold(0f32, |m, x| m.max(x.abs())).max(1.0);
    g.iter()
        .zip(&c)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()))
        / scale
}

/// Prefill of `prompt` tokens then `steps` decodes, twice (with a reset in
/// between, on a different sequence), each call checked against the evaluator's
/// same call, and each decode also against the cache-free `forward` over the
/// whole sequence (the row of that token).
fn check(config: MoeTransformerConfig, opt_level: OptLevel, prompt: usize, steps: usize) {
    let name = format!("{} -O{opt_level}", config.name);
    let (model, weights) = cached(config, 64);
    let rt = runtime();
    let loaded = load(&rt, &model, &weights, opt_level);
    let (prefill, decode) = (
        loaded.entry("prefill").unwrap(),
        loaded.entry("decode").unwrap(),
    );
    let mut gpu = loaded.session().unwrap();
    let mut cpu = StateSession::new(&model, &weights);
    for salt in [5, 11] {
        let seq = ids(prompt + steps, salt);
        let input = |r: std::ops::Range<usize>| {
            (
                HostTensor::from_i32(vec![r.len()], &seq[r.clone()]).unwrap(),
                Tensor::i32(vec![r.len()], seq[r].to_vec()).unwrap(),
            )
        };
        let n = prompt + steps;
        let full = evaluate(
            &model,
            "forward",
            &weights,
            &[Tensor::i32(vec![n], seq.clone()).unwrap()],
        )
        .unwrap()
        .remove(0);
        let vocab = full.shape[1];
        let (g, c) = input(0..prompt);
        let out_g = gpu.run(&prefill, &[g]).unwrap();
        let out_c = cpu.run("prefill", &[c]).unwrap();
        let err = rel_err(&out_g[0], &out_c[0]);
        println!("{name} prefill({prompt}): rel err {err:.3e}");
        assert!(err <= 1e-4, "{name} prefill: {err}");
        let mut worst = 0f32;
        for t in prompt..prompt + steps {
            let (g, c) = input(t..t + 1);
            // The first decode times each dispatch: between the dispatches
            // of its one pass where the device writes timestamps there (every
            // Vulkan device, lavapipe too), else each submitted on its own.
            let timing = if t == prompt {
                Timing::PerDispatch
            } else {
                Timing::Wall
            };
            let run = gpu.run_with(&decode, &[g], timing).unwrap();
            if t == prompt {
                let each = &run.timing.per_dispatch;
                assert_eq!(each.len(), decode.dispatches());
                if rt.gpu().has_timestamps_inside_passes() {
                    assert_eq!(run.timing.submits, 1);
                    let sum: Option<std::time::Duration> = each.iter().map(|d| d.device).sum();
                    assert_eq!(sum, run.timing.device);
                    assert!(sum.is_some_and(|s| s > std::time::Duration::ZERO));
                } else {
                    assert_eq!(run.timing.submits, decode.dispatches());
                }
            }
            let out_g = run.tensors;
            let out_c = cpu.run("decode", &[c]).unwrap();
            let err = rel_err(&out_g[0], &out_c[0]);
            assert!(err <= 1e-4, "{name} decode at {t}: {err}");
            let row = Tensor::f32(
                vec![1, vocab],
                full.to_f32_vec()[t * vocab..(t + 1) * vocab].to_vec(),
            )
            .unwrap();
            let err = rel_err(&out_g[0], &row);
            assert!(err <= 1e-4, "{name} decode at {t} vs forward: {err}");
            worst = worst.max(err);
        }
        println!("{name} {steps} decodes: worst rel err vs forward {worst:.3e}");
        assert_eq!(gpu.length(), (prompt + steps) as u64);
        gpu.reset().unwrap();
        cpu.reset();
        assert_eq!(gpu.length(), 0);
    }
}

#[test]
fn mixtral_tiny_cache_matches_reference_on_gpu() {
    check(mixtral_tiny(), OptLevel::O0, 6, 5);
}

#[test]
fn mixtral_tiny_cache_at_o2_matches_reference_on_gpu() {
    // The optimizer keeps the states and their in-place appends.
    check(mixtral_tiny(), OptLevel::O2, 4, 3);
}

#[test]
fn readme_moe_cache_matches_reference_on_gpu() {
    check(readme_moe(), OptLevel::O0, 6, 5);
}

#[test]
fn running_past_the_capacity_is_refused_and_reset_recovers() {
    let mut c = mixtral_tiny();
    c.layers = 1;
    let (model, weights) = cached(c, 4);
    let rt = runtime();
    let loaded = load(&rt, &model, &weights, OptLevel::O0);
    let (prefill, decode) = (
        loaded.entry("prefill").unwrap(),
        loaded.entry("decode").unwrap(),
    );
    let mut s = loaded.session().unwrap();
    assert_eq!(s.max_length(), Some(4));
    s.run(
        &prefill,
        &[HostTensor::from_i32(vec![3], &[1, 2, 3]).unwrap()],
    )
    .unwrap();
    let one = || HostTensor::from_i32(vec![1], &[7]).unwrap();
    s.run(&decode, &[one()]).unwrap();
    let err = s.run(&decode, &[one()]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::SequenceFull {
                stored: 4,
                adding: 1,
                max: 4,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(s.length(), 4, "a refused run changes nothing");
    let err = s
        .run(&prefill, &[HostTensor::from_i32(vec![2], &[1, 2]).unwrap()])
        .unwrap_err();
    assert!(err.to_string().contains("--max-seq-len"), "{err}");
    s.reset().unwrap();
    s.run(&decode, &[one()]).unwrap();
    assert_eq!(s.length(), 1);
    let err = loaded.entry("generate").unwrap_err();
    assert!(err.to_string().contains("prefill, decode"), "{err}");
    let other = load(&rt, &model, &weights, OptLevel::O0);
    let err = s
        .run(&other.entry("decode").unwrap(), &[one()])
        .unwrap_err();
    assert!(matches!(err, Error::ForeignEntry { .. }), "{err}");
    assert_eq!(s.length(), 1, "a refused run changes nothing");
}

/// `warm_up` runs every entry point once and leaves a fresh sequence: a
/// warmed-up session gives bit-identical prefill and decode logits to a new one.
#[test]
fn warm_up_leaves_a_fresh_sequence() {
    let rt = runtime();
    let (model, weights) = cached(mixtral_tiny(), 16);
    let loaded = load(&rt, &model, &weights, OptLevel::O0);
    let (prefill, decode) = (
        loaded.entry("prefill").unwrap(),
        loaded.entry("decode").unwrap(),
    );
    let logits = |session: &mut seam_runtime::Session| {
        let p = session
            .run(
                &prefill,
                &[HostTensor::from_i32(vec![3], &ids(3, 1)).unwrap()],
            )
            .unwrap();
        let d = session
            .run(&decode, &[HostTensor::from_i32(vec![1], &[5]).unwrap()])
            .unwrap();
        (p[0].bytes().to_vec(), d[0].bytes().to_vec())
    };
    let mut warmed = loaded.session().unwrap();
    warmed.warm_up().unwrap();
    assert_eq!(warmed.length(), 0);
    let mut fresh = loaded.session().unwrap();
    assert!(logits(&mut warmed) == logits(&mut fresh));
}
