//! Forward latency of the example models on the default device, in one run:
//! each example compiled at every available optimization level, then timed at
//! 1 token (decode-shaped) and 64 tokens (prefill-shaped), with dispatches and
//! submits per forward. `cargo bench -p seam-compiler --bench forward`
//! (kernel GFLOP/s next to a native sgemm: `cargo bench -p seam-runtime`).

use std::time::Duration;

use seam_compiler::compile::{compile, CompileOptions};
use seam_compiler::lower::Target;
use seam_ir::{random_weights, text};
use seam_runtime::bundle::BundleReader;
use seam_runtime::{DeviceOptions, HostTensor, Runtime};

/// The optimization levels the compiler has (the e-graph optimizer adds 1 and 2).
const OPT_LEVELS: &[u8] = &[0];

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> Res<()> {
    let rt = Runtime::new(&DeviceOptions::default())?;
    println!("device: {}", rt.gpu().adapter().name);
    println!(
        "{:<14} {:>3} {:>7} {:>10} {:>10} {:>11} {:>8}",
        "model", "-O", "tokens", "median ms", "min ms", "dispatches", "submits"
    );
    for name in ["readme_moe", "mixtral_tiny"] {
        let path = format!("{}/../examples/{name}.seam", env!("CARGO_MANIFEST_DIR"));
        let (model, _) = text::parse_and_verify(&path, &std::fs::read_to_string(&path)?)?;
        let weights = random_weights(&model, 7);
        for &opt_level in OPT_LEVELS {
            let options = CompileOptions {
                target: Target::from_gpu(rt.gpu()),
                opt_level,
            };
            let bundle = compile(&model, &weights, &options)?;
            let loaded = rt.load_bundle(BundleReader::from_bytes(bundle.to_bytes()?)?)?;
            let mut session = loaded.session("forward")?;
            for tokens in [1usize, 64] {
                let ids: Vec<i32> = (0..tokens as i32).map(|i| (i * 31 + 7) % 1024).collect();
                let input = [HostTensor::from_i32(vec![tokens], &ids)?];
                session.run(&input)?;
                let mut times: Vec<Duration> = Vec::new();
                let mut last = None;
                for _ in 0..7 {
                    let (_, t) = session.run_timed(&input)?;
                    times.push(t.device.unwrap_or(t.wall));
                    last = Some(t);
                }
                times.sort();
                let t = last.ok_or("no run")?;
                println!(
                    "{name:<14} {opt_level:>3} {tokens:>7} {:>10.3} {:>10.3} {:>11} {:>8}",
                    times[times.len() / 2].as_secs_f64() * 1e3,
                    times[0].as_secs_f64() * 1e3,
                    t.dispatches,
                    t.submits
                );
            }
        }
    }
    Ok(())
}
