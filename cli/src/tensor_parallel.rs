//! `seam check --tensor-parallel N`: shards a model over `N` ranks at compile
//! time and checks the shard set against the single-device model on the
//! reference evaluator (every rank evaluated together, `all_reduce` a real sum
//! across them) on seeded random inputs.

use std::path::Path;

use clap::Args;
use seam_compiler::shard::{max_relative_difference, random_inputs, shard_tensor_parallel};
use seam_ir::{Op, Weights};

use super::check::human_bytes;
use super::eval::{require_seed, source_weights};
use super::model_source::ModelSource;
use super::CliError;

/// The largest relative difference a shard set may show.
const TOLERANCE: f32 = 1e-4;

/// The seed of the random inputs.
const INPUT_SEED: u64 = 1;

/// Options of the tensor-parallel check of `seam check`.
#[derive(Debug, Args)]
pub struct TensorParallelArgs {
    /// Shard the model over N ranks (attention heads, FFN hidden units and
    /// MoE experts split, as Megatron does) and check that the shard set, every rank
    /// evaluated together with real all-reduce sums, computes what the model
    /// does on random inputs (within 1e-4 relative); print each rank's
    /// parameter bytes and the largest relative difference.
    #[arg(long, value_name = "N")]
    pub tensor_parallel: Option<usize>,
    /// Fill every parameter with seeded random values (the generator of
    /// `seam eval` and `seam compile`) before sharding; required for a text
    /// model.
    #[arg(long, value_name = "SEED", requires = "tensor_parallel")]
    pub random_weights: Option<u64>,
    /// The size of every symbolic dim of the random inputs (capped at its bound).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 8,
        requires = "tensor_parallel"
    )]
    pub check_tokens: u64,
}

/// Fails before anything is read when the check is asked for a text model
/// without `--random-weights`.
pub fn validate(file: &Path, args: &TensorParallelArgs) -> Result<(), CliError> {
    match args.tensor_parallel {
        Some(_) => require_seed(file, args.random_weights),
        None => Ok(()),
    }
}

/// Runs the check when `--tensor-parallel` was given.
pub fn run(file: &Path, source: &ModelSource, args: &TensorParallelArgs) -> Result<(), CliError> {
    let Some(ranks) = args.tensor_parallel else {
        return Ok(());
    };
    let weights = source_weights(file, source, args.random_weights)?;
    let model = source.model();
    let set = shard_tensor_parallel(model, &weights, ranks)?;
    let whole = weight_bytes(&weights);
    println!("tensor parallel over {ranks} rank(s): ok");
    for (rank, w) in set.weights.iter().enumerate() {
        let bytes = weight_bytes(w);
        println!(
            "  rank {rank}: {bytes} parameter bytes ({}, {:.1}% of {})",
            human_bytes(bytes),
            100.0 * bytes as f64 / whole.max(1) as f64,
            human_bytes(whole)
        );
    }
    for func in &set.model.functions {
        if func.body.iter().any(|i| matches!(i.op, Op::WriteRows)) {
            println!("  {}: not checked (its states are slot pools)", func.name);
            continue;
        }
        let inputs = random_inputs(model, &func.name, args.check_tokens, INPUT_SEED)?;
        let diff = max_relative_difference(model, &weights, &set, &func.name, &inputs)?;
        println!(
            "  {}: max relative difference {diff:.3e} (largest |difference| over largest |output|, every rank, random inputs, empty states)",
            func.name
        );
        if diff.is_nan() || diff > TOLERANCE {
            return Err(CliError::ShardMismatch {
                ranks,
                function: func.name.clone(),
                diff,
                tolerance: TOLERANCE,
            });
        }
    }
    Ok(())
}

/// The bytes of every tensor of `weights`.
fn weight_bytes(weights: &Weights) -> u64 {
    weights
        .tensors()
        .iter()
        .map(|t| (t.len() * t.dtype.size_bytes()) as u64)
        .sum()
}
