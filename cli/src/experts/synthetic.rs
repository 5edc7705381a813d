//! `seam trace-gen`: a synthetic expert-access trace — Zipf-distributed
//! experts with per-sequence temporal locality.

use std::path::PathBuf;

use clap::Args;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::trace::{to_json_lines, TraceRecord, MAX_ACCESSES, MAX_EXPERTS, MAX_LAYERS};
use crate::output::write_atomic;
use crate::CliError;

/// Arguments of `seam trace-gen`.
#[derive(Debug, Args)]
pub struct TraceGenArgs {
    /// Write the trace (JSON lines) here.
    #[arg(long, short, value_name = "FILE")]
    pub out: PathBuf,
    /// Replace `--out` if it exists.
    #[arg(long)]
    pub force: bool,
    /// Experts per layer.
    #[arg(long, default_value_t = 8)]
    pub experts: u32,
    /// MoE layers.
    #[arg(long, default_value_t = 4)]
    pub layers: u32,
    /// Sequences decoded side by side.
    #[arg(long, default_value_t = 8)]
    pub sequences: u32,
    /// Tokens (steps) per sequence.
    #[arg(long, default_value_t = 256)]
    pub tokens: u32,
    /// The Zipf exponent s: expert of rank r is drawn with weight 1/r^s (0: uniform).
    #[arg(long, default_value_t = 1.0)]
    pub zipf: f64,
    /// The probability that a sequence repeats its previous expert at a layer.
    #[arg(long, default_value_t = 0.3)]
    pub locality: f64,
    /// The seed of the generator.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Runs `seam trace-gen`.
pub fn run(args: &TraceGenArgs) -> Result<(), CliError> {
    let records = generate(args)?;
    write_atomic(&args.out, to_json_lines(&records).as_bytes(), args.force)?;
    println!("wrote {} accesses to {}", records.len(), args.out.display());
    Ok(())
}

/// The trace: step by step, sequence by sequence, layer by layer. Each layer
/// ranks its experts in its own seeded order; a sequence repeats its previous
/// expert at the layer with probability `locality`, else draws a rank from
/// Zipf(`zipf`).
fn generate(args: &TraceGenArgs) -> Result<Vec<TraceRecord>, CliError> {
    check(args)?;
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let cumulative = zipf_cumulative(args.experts, args.zipf);
    let ranking: Vec<Vec<u32>> = (0..args.layers)
        .map(|_| shuffled(args.experts, &mut rng))
        .collect();
    let mut previous: Vec<Option<u32>> = vec![None; (args.sequences * args.layers) as usize];
    let mut records = Vec::new();
    for step in 0..args.tokens {
        for seq in 0..args.sequences {
            for layer in 0..args.layers {
                let last = &mut previous[(seq * args.layers + layer) as usize];
                let expert = match *last {
                    Some(e) if rng.random_bool(args.locality) => e,
                    _ => {
                        let u: f64 = rng.random();
                        let rank = cumulative
                            .partition_point(|&c| c < u)
                            .min(cumulative.len() - 1);
                        ranking[layer as usize][rank]
                    }
                };
                *last = Some(expert);
                records.push(TraceRecord::new(step, seq, layer, expert));
            }
        }
    }
    Ok(records)
}

/// Refuses parameters outside their ranges.
fn check(args: &TraceGenArgs) -> Result<(), CliError> {
    let usage = |m: String| Err(CliError::Usage(m));
    if !(1..=MAX_EXPERTS).contains(&args.experts) {
        return usage(format!("--experts must be in 1..={MAX_EXPERTS}"));
    }
    if !(1..=MAX_LAYERS).contains(&args.layers) {
        return usage(format!("--layers must be in 1..={MAX_LAYERS}"));
    }
    if !(args.zipf.is_finite() && args.zipf >= 0.0) {
        return usage("--zipf must be a finite number ≥ 0".into());
    }
    if !(0.0..=1.0).contains(&args.locality) {
        return usage("--locality must be a probability in [0, 1]".into());
    }
    let accesses = u64::from(args.tokens) * u64::from(args.sequences) * u64::from(args.layers);
    if accesses == 0 || accesses > MAX_ACCESSES {
        return usage(format!(
            "tokens × sequences × layers = {accesses} accesses; give between 1 and {MAX_ACCESSES}"
        ));
    }
    Ok(())
}

/// The cumulative Zipf(`s`) distribution over ranks 1..=`n`.
fn zipf_cumulative(n: u32, s: f64) -> Vec<f64> {
    let weights: Vec<f64> = (1..=n).map(|r| f64::from(r).powf(-s)).collect();
    let total: f64 = weights.iter().sum();
    weights
        .iter()
        .scan(0.0, |acc, w| {
            *acc += w / total;
            Some(*acc)
        })
        .collect()
}

/// 0..n in a seeded random order.
fn shuffled(n: u32, rng: &mut ChaCha8Rng) -> Vec<u32> {
    let mut v: Vec<u32> = (0..n).collect();
    v.shuffle(rng);
    v
}
