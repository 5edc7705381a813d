//! `seam serve-bench`: replays a seeded request trace through the serving
//! engine (as `seam serve` runs it, without HTTP) and reports what a batch
//! schedule gives: the unique experts each step touches, tokens/s, and the
//! requests' latency.

mod trace;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;

use crate::model_args::ModelArgs;
use seam_runtime::generate::Sampling;
use seam_runtime::serving::{Engine, EngineOptions, Finish, Request, DEFAULT_MAX_SKIPS};

use super::device::warming_up;
use super::serve::Schedule;
use super::CliError;
use crate::experts::offload::expert_report;
use trace::{TraceShape, TracedRequest};

/// Arguments of `seam serve-bench`.
#[derive(Debug, Args)]
pub struct ServeBenchArgs {
    /// The bundle (`.seamb`), compiled with a KV cache (its batched `step`);
    /// a pre-gating model's also carries `route`, which `expert-aware` needs.
    pub bundle: PathBuf,
    /// Requests in the trace.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: u64,
    /// Mean arrivals per engine step (Poisson arrivals: exponential gaps,
    /// counted in steps so the trace is the same on any device).
    #[arg(long, value_name = "R", default_value_t = 0.5)]
    pub rate: f64,
    /// The shortest and longest prompt (uniform; ids uniform over the vocabulary).
    #[arg(long, value_name = "MIN,MAX", value_delimiter = ',', default_values_t = [4, 32])]
    pub prompt_len: Vec<usize>,
    /// The fewest and most tokens a request generates (uniform; greedy, no stop ids).
    #[arg(long, value_name = "MIN,MAX", value_delimiter = ',', default_values_t = [8, 48])]
    pub output_len: Vec<usize>,
    /// The seed of the trace.
    #[arg(long, value_name = "S", default_value_t = 7)]
    pub seed: u64,
    /// The most sequences running at once (default: the bundle's KV pool slots).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_batch: Option<u64>,
    /// The most sequences one step feeds (default: --max-batch).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub step_batch: Option<u64>,
    /// How each step's batch is formed (as `seam serve --schedule`).
    #[arg(long, value_enum, default_value_t = Schedule::Fcfs)]
    pub schedule: Schedule,
    /// With `expert-aware`: steps a sequence may be passed over in a row
    /// before it is fed first.
    #[arg(long, value_name = "K", default_value_t = DEFAULT_MAX_SKIPS)]
    pub max_skips: u32,
    /// Route every step's tokens (the bundle's `route`) to count the experts
    /// they use, also under `fcfs` (which then pays a `route` run per step;
    /// `expert-aware` routes anyway).
    #[arg(long)]
    pub count_experts: bool,
    /// External weights, the device, the experts kept on it.
    #[command(flatten)]
    pub model: ModelArgs,
}

/// What replaying the trace gave.
struct Replay {
    /// From the first submission to the last token.
    wall: Duration,
    /// Per request, from its submission to its last token.
    latency: Vec<Duration>,
    /// Per request, engine steps from its arrival to its last token.
    latency_steps: Vec<u64>,
}

/// Runs `seam serve-bench`.
pub fn run(args: &ServeBenchArgs) -> Result<(), CliError> {
    let range = |name: &str, v: &[usize]| match v {
        &[lo, hi] if 1 <= lo && lo <= hi => Ok(lo..=hi),
        _ => Err(CliError::Usage(format!(
            "--{name} takes MIN,MAX with 1 <= MIN <= MAX"
        ))),
    };
    if !(args.rate.is_finite() && args.rate > 0.0) {
        return Err(CliError::Usage(format!(
            "--rate must be a positive number of arrivals per step, found {}",
            args.rate
        )));
    }
    let prompt = range("prompt-len", &args.prompt_len)?;
    let output = range("output-len", &args.output_len)?;
    let bundle = args.model.weights.open(&args.bundle)?;
    let rt = args.model.device.open()?;
    let model = args.model.load(&rt, bundle)?;
    let options = EngineOptions {
        max_batch: args.max_batch.map(|n| n as usize),
        step_batch: args.step_batch.map(|n| n as usize),
        policy: args.schedule.policy(args.max_skips),
        count_experts: args.count_experts,
        ..EngineOptions::default()
    };
    let mut engine = warming_up(|| Engine::new(&model, options))?;
    let shape = TraceShape {
        requests: args.requests as usize,
        rate: args.rate,
        prompt,
        output,
        vocab: engine.vocab(),
        seed: args.seed,
    };
    let requests = shape.requests();
    let before = engine.stats();
    let replay = replay(&mut engine, &requests)?;
    let after = engine.stats();
    let generated = after.generated_tokens - before.generated_tokens;
    let steps = after.steps - before.steps;
    let routed = after.routed_steps - before.routed_steps;
    let experts = if routed == 0 {
        "n/a".to_string()
    } else {
        let pairs = after.expert_pairs - before.expert_pairs;
        format!("{:.3}", pairs as f64 / routed as f64)
    };
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mean = replay.latency.iter().sum::<Duration>() / replay.latency.len().max(1) as u32;
    println!(
        "trace: requests={} rate={} per step prompt={}..={} output={}..={} seed={} (last arrival at step {})",
        shape.requests,
        shape.rate,
        shape.prompt.start(),
        shape.prompt.end(),
        shape.output.start(),
        shape.output.end(),
        shape.seed,
        requests.last().map_or(0, |r| r.arrival),
    );
    println!(
        "schedule={} max_batch={} step_batch={} routed={} steps={steps} tokens={generated} \
         wall_s={:.3} tokens_per_s={:.2} unique_experts_per_step={experts} \
         latency_ms mean={:.1} p50={:.1} p95={:.1} latency_steps p50={} p95={}",
        args.schedule.name(),
        after.max_batch,
        after.step_batch,
        engine.knows_routing(),
        replay.wall.as_secs_f64(),
        generated as f64 / replay.wall.as_secs_f64().max(1e-9),
        ms(mean),
        ms(percentile(&replay.latency, 0.5)),
        ms(percentile(&replay.latency, 0.95)),
        percentile(&replay.latency_steps, 0.5),
        percentile(&replay.latency_steps, 0.95),
    );
    if let Some(line) = expert_report(&model, before.experts, after.experts, generated as usize) {
        println!("{line}");
    }
    Ok(())
}

/// Submits each request before the step it arrives at (jumping the step
/// clock over idle gaps) and steps `engine` until every one has finished.
fn replay(engine: &mut Engine, trace: &[TracedRequest]) -> Result<Replay, CliError> {
    let n = trace.len();
    let mut submitted = vec![None; n];
    let mut latency = vec![Duration::ZERO; n];
    let mut latency_steps = vec![0; n];
    let mut left = n;
    let mut next = 0;
    let mut clock = 0u64;
    let started = Instant::now();
    while left > 0 {
        while let Some(r) = trace.get(next).filter(|r| r.arrival <= clock) {
            let request = Request {
                prompt: r.prompt.clone(),
                max_new_tokens: r.output,
                sampling: Sampling::Greedy,
                stop_ids: Vec::new(),
            };
            engine.submit(next as u64, request)?;
            submitted[next] = Some(Instant::now());
            next += 1;
        }
        if engine.is_idle() {
            clock = trace.get(next).map(|r| r.arrival).ok_or_else(|| {
                CliError::Input("internal: the engine went idle with requests unfinished".into())
            })?;
            continue;
        }
        for event in engine.step()? {
            let k = event.id as usize;
            match (event.finish, submitted.get(k).copied().flatten()) {
                (Some(Finish::Length), Some(at)) => {
                    latency[k] = at.elapsed();
                    latency_steps[k] = clock + 1 - trace[k].arrival;
                    left -= 1;
                }
                (Some(finish), _) => {
                    return Err(CliError::Input(format!(
                        "request {k} ended {finish:?} instead of generating its tokens"
                    )))
                }
                (None, _) => {}
            }
        }
        clock += 1;
    }
    Ok(Replay {
        wall: started.elapsed(),
        latency,
        latency_steps,
    })
}

/// The nearest-rank `p` quantile of `values` (the default value for none).
fn percentile<T: Copy + Ord + Default>(values: &[T], p: f64) -> T {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=20).rev().collect();
        assert_eq!(
            (
                percentile(&v, 0.5),
                percentile(&v, 0.95),
                percentile(&v, 1.0)
            ),
            (10, 19, 20)
        );
        assert_eq!(percentile::<u64>(&[], 0.5), 0);
    }
}
