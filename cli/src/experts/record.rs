//! `seam trace-record`: runs a model's routers with the reference evaluator
//! over seeded random prompts and writes the experts they chose as a trace.

use std::path::PathBuf;

use clap::Args;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seam_ir::{evaluate, index_bounds, DType, Model, Op, Tensor, ValueId};

use super::trace::{to_json_lines, TraceRecord, MAX_ACCESSES};
use crate::eval::{pick_function, refuse_existing, require_seed, source_weights};
use crate::model_source::load_source;
use crate::output::write_atomic;
use crate::CliError;

/// Arguments of `seam trace-record`.
#[derive(Debug, Args)]
pub struct TraceRecordArgs {
    /// The model (as for `seam eval`): its `route` ops, in program order, are
    /// the MoE layers 0, 1, …
    pub file: PathBuf,
    /// Fill every parameter with seeded random values; required for a text model.
    #[arg(long, value_name = "SEED")]
    pub random_weights: Option<u64>,
    /// The function to run (default: the model's first); it must take one
    /// rank-1 i32 input, the token ids, and hold no session state.
    #[arg(long)]
    pub function: Option<String>,
    /// Prompts (sequences) to route (1 to 4096).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub sequences: u32,
    /// Tokens per prompt (1 to 65536; the model's bound on its token dim applies).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub tokens: u32,
    /// The seed of the random prompts.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write the trace (JSON lines) here.
    #[arg(long, short, value_name = "FILE")]
    pub out: PathBuf,
    /// Replace `--out` if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Runs `seam trace-record`.
pub fn run(args: &TraceRecordArgs) -> Result<(), CliError> {
    refuse_existing(Some(&args.out), args.force)?;
    require_seed(&args.file, args.random_weights)?;
    if args.sequences == 0 || args.tokens == 0 {
        return Err(CliError::Usage(
            "--sequences and --tokens must be at least 1".into(),
        ));
    }
    let source = load_source(&args.file)?;
    let weights = source_weights(&args.file, &source, args.random_weights)?;
    let (model, function, vocab) = returning_routes(source.model(), args.function.as_deref())?;
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    // chosen[seq][layer]: the [tokens, k] expert ids of that layer's router.
    let mut chosen = Vec::with_capacity(args.sequences as usize);
    for _ in 0..args.sequences {
        let ids: Vec<i32> = (0..args.tokens)
            .map(|_| rng.random_range(0..vocab))
            .collect();
        let prompt = Tensor::i32(vec![args.tokens as usize], ids)?;
        let outputs = evaluate(&model, &function, &weights, &[prompt])?;
        if chosen.is_empty() {
            check_accesses(&outputs[1..], args.sequences)?;
        }
        chosen.push(outputs[1..].to_vec());
    }
    let records = interleave(&chosen, args.tokens)?;
    write_atomic(&args.out, to_json_lines(&records).as_bytes(), args.force)?;
    println!("wrote {} accesses to {}", records.len(), args.out.display());
    Ok(())
}

/// Refuses a trace of more than [`MAX_ACCESSES`] accesses, counted from the
/// expert ids `routes` the first prompt produced (every prompt produces as
/// many), before the other prompts are evaluated.
fn check_accesses(routes: &[Tensor], sequences: u32) -> Result<(), CliError> {
    let per_prompt: u64 = routes.iter().map(|t| t.len() as u64).sum();
    let accesses = per_prompt.saturating_mul(u64::from(sequences));
    if accesses > MAX_ACCESSES {
        return Err(CliError::Usage(format!(
            "{sequences} prompts of {per_prompt} expert choices each = {accesses} accesses; \
             at most {MAX_ACCESSES} (fewer --sequences or --tokens)"
        )));
    }
    Ok(())
}

/// A copy of `model` whose function `name` returns, after its own first
/// output, the expert ids of every `route` op in program order; with the
/// function's name and the token-id bound of its input.
fn returning_routes(model: &Model, name: Option<&str>) -> Result<(Model, String, i32), CliError> {
    let func = pick_function(model, name)?;
    let refuse = |why: &str| {
        Err(CliError::Usage(format!(
            "cannot record `{}`: {why}",
            func.name
        )))
    };
    if !func.states.is_empty() {
        return refuse(
            "it holds session state (record from a stateless function such as `forward`)",
        );
    }
    let [input] = func.inputs[..] else {
        return refuse("it must take exactly one input, the token ids");
    };
    let ty = &func.value(input).ty;
    if ty.dtype != DType::I32 || ty.rank() != 1 {
        return refuse("its input must be rank-1 i32 token ids");
    }
    let Some(vocab) = index_bounds(model, func)[0].and_then(|b| i32::try_from(b).ok()) else {
        return refuse("its input is not the ids of an embedding table of static size");
    };
    let routes: Vec<ValueId> = func
        .body
        .iter()
        .filter(|i| matches!(i.op, Op::Route { .. }))
        .map(|i| i.results[0])
        .collect();
    if routes.is_empty() {
        return refuse("it has no `route` op");
    }
    let mut model = model.clone();
    let index = model
        .functions
        .iter()
        .position(|f| f.name == func.name)
        .expect("found above");
    let recorded = &mut model.functions[index];
    recorded.outputs.truncate(1);
    recorded.outputs.extend(routes);
    let name = recorded.name.clone();
    Ok((model, name, vocab))
}

/// The accesses step by step, sequence by sequence, layer by layer (each
/// token's k experts in the router's order), from `chosen[seq][layer]`.
fn interleave(chosen: &[Vec<Tensor>], tokens: u32) -> Result<Vec<TraceRecord>, CliError> {
    let mut records = Vec::new();
    for step in 0..tokens {
        for (seq, layers) in (0u32..).zip(chosen) {
            for (layer, ids) in (0u32..).zip(layers) {
                let k = ids.shape.get(1).copied().unwrap_or(1);
                let ids = ids
                    .as_i32()
                    .ok_or_else(|| CliError::Input("a `route` op returned non-i32 ids".into()))?;
                for &id in &ids[step as usize * k..(step as usize + 1) * k] {
                    let expert = u32::try_from(id).map_err(|_| {
                        CliError::Input(format!("layer {layer}'s router chose expert {id}"))
                    })?;
                    records.push(TraceRecord::new(step, seq, layer, expert));
                }
            }
        }
    }
    Ok(records)
}
