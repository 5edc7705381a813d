//! Soak tests on the default device (lavapipe on CI): long runs must not grow
//! host or device memory, and one model must serve sessions on several
//! threads at once.
//!
//! - `decode_steps_hold_memory_flat`: the serving engine runs
//!   `SEAM_SOAK_STEPS` steps (2,000 in the suite; `scripts/soak.sh` runs
//!   10,000) of a decoupled-MoE model,
//!   requests of 2–9 prompt tokens and 24–87 new tokens arriving as others
//!   finish, so every slot of the KV pool is reused again and again.
//! - `session_create_drop_holds_memory_flat`: `SEAM_SOAK_SESSIONS` cycles
//!   (200 in the suite; `scripts/soak.sh` runs 1,000) of creating a
//!   session, running the KV-cache prefill
//!   (which allocates the session's states) and dropping it.
//!
//! Both sample the process's resident set (`VmRSS`) and the device memory
//! wgpu's allocator holds ([`seam_runtime::device::Gpu::memory`]) after a
//! warm-up tenth of the run and at its end. Bounds: device memory allocated
//! at the end equals the warm-up figure exactly (nothing leaks on the device);
//! RSS grows by at most [`RSS_GROWTH_BOUND`], 8 MiB (allocator noise: a leak
//! of one step's logits, 4 × 1024 floats, would pass it within 1,800 steps).
//! Each prints its samples (`--nocapture`).
//!
//! - `sessions_on_several_threads_agree`: four threads, each with its own
//!   session on one loaded model, run the prefill 25 times; every result
//!   equals the single-threaded one bit for bit.
//!
//! The tests hold one lock so that RSS figures are not another test's.

mod gpu_common;

use std::sync::Mutex;

use gpu_common::{load, runtime};
use seam_compiler::optimize::OptLevel;
use seam_frontends::examples::readme_moe;
use seam_ir::random_weights;
use seam_runtime::device::DeviceMemory;
use seam_runtime::generate::Sampling;
use seam_runtime::serving::{Engine, EngineOptions, Request, RequestId};
use seam_runtime::{HostTensor, Runtime};

/// Largest resident-set growth allowed between the warm-up sample and the end.
const RSS_GROWTH_BOUND: u64 = 8 << 20;
/// Sequences the model's KV pool holds.
const SLOTS: u64 = 4;
/// Positions per sequence.
const POSITIONS: u64 = 96;

static SERIAL: Mutex<()> = Mutex::new(());

/// readme_moe (pre-gating router, top-2 experts) with a KV cache and the
/// batched step, random weights, compiled at `-O2` and loaded on the default
/// device.
fn loaded() -> (Runtime, seam_runtime::Model) {
    let mut config = readme_moe().with_kv_cache(POSITIONS);
    config.max_batch = Some(SLOTS);
    let model = config.build().unwrap();
    let weights = random_weights(&model, 5);
    let rt = runtime();
    let loaded = load(&rt, &model, &weights, OptLevel::O2);
    (rt, loaded)
}

/// `name` from the environment, else `default`.
fn count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v}: not a count"))
        })
        .unwrap_or(default)
}

/// The process's resident set in bytes (`VmRSS` of /proc/self/status).
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Host and device memory at one point of a run.
#[derive(Debug)]
struct Sample {
    at: usize,
    rss: u64,
    device: DeviceMemory,
}

fn sample(rt: &Runtime, at: usize) -> Sample {
    rt.gpu().wait().unwrap();
    let device = rt
        .gpu()
        .memory()
        .expect("the Vulkan backend reports its allocator");
    let s = Sample {
        at,
        rss: rss(),
        device,
    };
    eprintln!(
        "  at {:>6}: rss {:>8.1} MiB, device allocated {:>8.1} KiB, reserved {:>8.1} KiB",
        s.at,
        s.rss as f64 / 1048576.0,
        s.device.allocated as f64 / 1024.0,
        s.device.reserved as f64 / 1024.0
    );
    s
}

/// The bounds of the module doc between the warm-up sample and the end.
fn assert_flat(what: &str, start: &Sample, warm: &Sample, end: &Sample) {
    eprintln!(
        "  {what}: rss {:+.1} MiB since start",
        (end.rss as f64 - start.rss as f64) / 1048576.0
    );
    assert_eq!(
        end.device.allocated, warm.device.allocated,
        "{what}: device memory allocated grew from {} to {} bytes",
        warm.device.allocated, end.device.allocated
    );
    let growth = end.rss.saturating_sub(warm.rss);
    assert!(
        growth <= RSS_GROWTH_BOUND,
        "{what}: RSS grew by {growth} bytes (bound {RSS_GROWTH_BOUND})"
    );
}

/// Request `k`: 2–9 prompt tokens, 24–87 new tokens, greedy or seeded top-p.
fn request(k: usize, vocab: usize) -> Request {
    let prompt = (0..2 + k % 8)
        .map(|i| ((i * 13 + k * 7 + 1) % vocab) as i32)
        .collect();
    let sampling = if k % 2 == 0 {
        Sampling::Greedy
    } else {
        Sampling::TopP {
            temperature: 0.9,
            top_p: 0.95,
            seed: k as u64,
        }
    };
    Request {
        prompt,
        max_new_tokens: 24 + (k * 37) % 64,
        sampling,
        stop_ids: Vec::new(),
    }
}

#[test]
fn decode_steps_hold_memory_flat() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let steps = count("SEAM_SOAK_STEPS", 2_000);
    let (rt, loaded) = loaded();
    let options = EngineOptions {
        max_batch: Some(SLOTS as usize),
        ..EngineOptions::default()
    };
    let mut engine = Engine::new(&loaded, options).unwrap();
    let vocab = engine.vocab();
    eprintln!("{steps} engine steps, {SLOTS} slots:");
    let start = sample(&rt, 0);
    let mut next: RequestId = 0;
    let (mut tokens, mut finished) = (0usize, 0usize);
    let mut warm = None;
    for step in 1..=steps {
        while engine.stats().waiting < 2 {
            engine.submit(next, request(next as usize, vocab)).unwrap();
            next += 1;
        }
        for event in engine.step().unwrap() {
            tokens += usize::from(event.token.is_some());
            finished += usize::from(event.finish.is_some());
        }
        if step == steps / 10 {
            warm = Some(sample(&rt, step));
        }
    }
    let end = sample(&rt, steps);
    eprintln!("  {tokens} tokens, {finished} requests finished");
    assert!(
        finished as u64 >= steps as u64 / 100,
        "requests kept finishing"
    );
    assert_flat("decode", &start, &warm.unwrap(), &end);
}

#[test]
fn session_create_drop_holds_memory_flat() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cycles = count("SEAM_SOAK_SESSIONS", 200);
    let (rt, loaded) = loaded();
    let prefill = loaded.entry("prefill").unwrap();
    let ids = HostTensor::from_i32(vec![5], &[3, 1, 4, 1, 5]).unwrap();
    eprintln!("{cycles} session create/prefill/drop cycles:");
    let start = sample(&rt, 0);
    let mut warm = None;
    for cycle in 1..=cycles {
        let mut session = loaded.session().unwrap();
        session.run(&prefill, std::slice::from_ref(&ids)).unwrap();
        drop(session);
        if cycle == cycles / 10 {
            warm = Some(sample(&rt, cycle));
        }
    }
    let end = sample(&rt, cycles);
    assert_flat("sessions", &start, &warm.unwrap(), &end);
}

#[test]
fn sessions_on_several_threads_agree() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (_rt, loaded) = loaded();
    let prefill = loaded.entry("prefill").unwrap();
    let ids = HostTensor::from_i32(vec![6], &[2, 7, 1, 8, 2, 8]).unwrap();
    let expected = loaded
        .session()
        .unwrap()
        .run(&prefill, std::slice::from_ref(&ids))
        .unwrap();
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let (loaded, prefill, ids, expected) = (&loaded, &prefill, &ids, &expected);
            scope.spawn(move || {
                let mut session = loaded.session().unwrap();
                for run in 0..25 {
                    session.reset().unwrap();
                    let out = session.run(prefill, std::slice::from_ref(ids)).unwrap();
                    assert!(
                        out == *expected,
                        "thread {thread}, run {run}: logits differ from the single-threaded run"
                    );
                }
            });
        }
    });
}
