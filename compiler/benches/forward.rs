//! Forward latency of the example models on the default device, in one run:
//! each example compiled at `-O0` and `-O2`, then timed at 1 token
//! (decode-shaped) and 64 tokens (prefill-shaped), the levels interleaved run
//! by run so machine noise hits both alike, with dispatches and submits per
//! forward and the `-O0 / -O2` latency ratio.
//! `cargo bench -p seam-compiler --bench forward`
//! (kernel GFLOP/s next to a native sgemm: `cargo bench -p seam-runtime`).

use std::time::Duration;

use seam_bundle::BundleReader;
use seam_compiler::compile::{compile, CompileOptions};
use seam_compiler::lower::Target;
use seam_compiler::optimize::OptLevel;
use seam_ir::{random_weights, text};
use seam_runtime::{DeviceOptions, Entry, HostTensor, Runtime, Session, Timing};

/// The optimization levels compared: the op-by-op baseline first.
const OPT_LEVELS: [OptLevel; 2] = [OptLevel::O0, OptLevel::O2];

/// The example models measured (files under `examples/`).
const EXAMPLES: [&str; 4] = [
    "readme_moe",
    "mixtral_tiny",
    "pregated_topk",
    "pregated_dense",
];

/// Timed runs per level and token count (after one warm-up run each).
const RUNS: usize = 9;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Median and minimum of `times`, in ms.
fn median_min(times: &mut [Duration]) -> (f64, f64) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    (ms(times[times.len() / 2]), ms(times[0]))
}

fn main() -> Res<()> {
    let rt = Runtime::new(&DeviceOptions::default())?;
    println!("device: {}", rt.gpu().adapter().name);
    println!(
        "{:<14} {:>3} {:>7} {:>10} {:>10} {:>11} {:>8} {:>9}",
        "model", "-O", "tokens", "median ms", "min ms", "dispatches", "submits", "O0/this"
    );
    for name in EXAMPLES {
        let path = format!("{}/../examples/{name}.seam", env!("CARGO_MANIFEST_DIR"));
        let (model, _) = text::parse_and_verify(&path, &std::fs::read_to_string(&path)?)?;
        let weights = random_weights(&model, 7);
        let models = OPT_LEVELS
            .iter()
            .map(|&opt_level| {
                let options =
                    CompileOptions::new(Target::from_limits(rt.gpu().shader_limits()), opt_level);
                let bundle = compile(&model, &weights, &options)?.bundle;
                Ok(rt.load_bundle(BundleReader::from_bytes(bundle.to_bytes()?)?)?)
            })
            .collect::<Res<Vec<_>>>()?;
        let mut sessions = models
            .iter()
            .map(|m| Ok((m.entry("forward")?, m.session()?)))
            .collect::<Res<Vec<(Entry, Session)>>>()?;
        for tokens in [1usize, 64] {
            let ids: Vec<i32> = (0..tokens as i32).map(|i| (i * 31 + 7) % 1024).collect();
            let input = [HostTensor::from_i32(vec![tokens], &ids)?];
            let mut times = vec![Vec::new(); sessions.len()];
            let mut counts = vec![(0, 0); sessions.len()];
            for (entry, s) in &mut sessions {
                s.run(entry, &input)?;
            }
            for _ in 0..RUNS {
                for (i, (entry, s)) in sessions.iter_mut().enumerate() {
                    let t = s.run_with(entry, &input, Timing::Device)?.timing;
                    times[i].push(t.device.unwrap_or(t.wall));
                    counts[i] = (t.dispatches, t.submits);
                }
            }
            let medians: Vec<(f64, f64)> = times.iter_mut().map(|t| median_min(t)).collect();
            for (i, &level) in OPT_LEVELS.iter().enumerate() {
                let (median, min) = medians[i];
                println!(
                    "{name:<14} {level:>3} {tokens:>7} {median:>10.3} {min:>10.3} {:>11} {:>8} {:>8.2}x",
                    counts[i].0,
                    counts[i].1,
                    medians[0].0 / median
                );
            }
        }
    }
    Ok(())
}
