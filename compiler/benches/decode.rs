//! Decode throughput with a KV cache on the default device: the cached examples
//! (`examples/*_kv.seam`) compiled at `-O0` and `-O2`, then, per level, a
//! prompt prefilled and tokens decoded greedily ([`generate`]), the levels
//! interleaved run by run. Reports prefill and decode tokens/s (wall time of
//! the runs, upload and read-back included), median of the runs, and the
//! decode rate against recomputing the whole sequence with `forward` per token.
//! `cargo bench -p seam-compiler --bench decode`

use std::time::{Duration, Instant};

use seam_bundle::BundleReader;
use seam_compiler::compile::{compile, CompileOptions};
use seam_compiler::lower::Target;
use seam_compiler::optimize::OptLevel;
use seam_ir::{random_weights, set_max_length, text};
use seam_runtime::generate::{generate, Sampler, Sampling};
use seam_runtime::{DeviceOptions, HostTensor, Runtime};

/// The optimization levels compared: the op-by-op baseline first.
const OPT_LEVELS: [OptLevel; 2] = [OptLevel::O0, OptLevel::O2];

/// The cached example models measured.
const EXAMPLES: [&str; 2] = ["mixtral_tiny_kv", "readme_moe_kv"];

/// Prompt length, tokens generated, and runs per level.
const PROMPT: usize = 16;
const NEW_TOKENS: usize = 64;
const RUNS: usize = 3;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Res<()> {
    let rt = Runtime::new(&DeviceOptions::default())?;
    println!("device: {}", rt.gpu().adapter().name);
    println!("prompt {PROMPT} tokens, {NEW_TOKENS} generated (greedy), median of {RUNS} runs");
    println!(
        "{:<16} {:>3} {:>14} {:>14} {:>18}",
        "model", "-O", "prefill tok/s", "decode tok/s", "forward-recompute"
    );
    for name in EXAMPLES {
        let path = format!("{}/../examples/{name}.seam", env!("CARGO_MANIFEST_DIR"));
        let (mut model, _) = text::parse_and_verify(&path, &std::fs::read_to_string(&path)?)?;
        set_max_length(&mut model, (PROMPT + NEW_TOKENS) as u64);
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
        let prompt: Vec<i32> = (0..PROMPT as i32).map(|i| (i * 31 + 7) % 1024).collect();
        let mut sessions = models
            .iter()
            .map(|m| m.session())
            .collect::<Result<Vec<_>, _>>()?;
        let mut rates = vec![(Vec::new(), Vec::new()); sessions.len()];
        // One warm-up generation each (pipelines, recording), then the runs.
        for round in 0..=RUNS {
            for (i, s) in sessions.iter_mut().enumerate() {
                let mut sampler = Sampler::new(Sampling::Greedy)?;
                let g = generate(s, &prompt, NEW_TOKENS, &mut sampler)?;
                if round > 0 {
                    rates[i].0.push(g.prefill_tokens_per_s());
                    rates[i].1.push(g.decode_tokens_per_s().unwrap_or(0.0));
                }
            }
        }
        // Without a cache each token reruns `forward` over the whole sequence;
        // timed at the mid-sequence length, at -O0.
        let mid = PROMPT + NEW_TOKENS / 2;
        let ids: Vec<i32> = (0..mid as i32).map(|i| (i * 31 + 7) % 1024).collect();
        let input = [HostTensor::from_i32(vec![mid], &ids)?];
        let forward = models[0].entry("forward")?;
        let mut session = models[0].session()?;
        session.run(&forward, &input)?;
        let started = Instant::now();
        for _ in 0..RUNS {
            session.run(&forward, &input)?;
        }
        let per_token: Duration = started.elapsed() / RUNS as u32;
        let recompute = 1.0 / per_token.as_secs_f64();
        for (i, &level) in OPT_LEVELS.iter().enumerate() {
            let (p, d) = (median(rates[i].0.clone()), median(rates[i].1.clone()));
            println!(
                "{name:<16} {level:>3} {p:>14.1} {d:>14.1} {:>11.1} tok/s",
                recompute
            );
        }
    }
    Ok(())
}
