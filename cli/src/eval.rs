//! `seam eval`: run a model on the CPU with the reference evaluator.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use clap::Args;
use seam_ir::eval::{EvalError, MemoryBudget, StateSession, Tensor};
use seam_ir::weights::random_weights;
use seam_ir::{index_bounds, npy, Function, Model, Weights};

use super::inputs::{describe, InputArgs, InputSpec};
use super::model_source::{load_source, ModelSource};
use super::output::write_atomic;
use super::CliError;

/// Arguments of `seam eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The model: a file in Seam's text format (`.seam`), a Hugging Face
    /// checkpoint folder or a GGUF file, which bring their weights.
    pub file: PathBuf,
    /// Fill every parameter with seeded random values (the same generator as
    /// `seam compile`); required for a text model.
    #[arg(long, value_name = "SEED")]
    pub random_weights: Option<u64>,
    /// The inputs.
    #[command(flatten)]
    pub inputs: InputArgs,
    /// The function to run (default: the model's first function).
    #[arg(long)]
    pub function: Option<String>,
    /// Write the first output as `.npy` to this path.
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Replace the `--out` file if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Runs `seam eval`.
pub fn run(args: &EvalArgs) -> Result<(), CliError> {
    refuse_existing(args.out.as_deref(), args.force)?;
    require_seed(&args.file, args.random_weights)?;
    let source = load_source(&args.file)?;
    let model = source.model();
    let weights = source_weights(&args.file, &source, args.random_weights)?;
    let func = pick_function(model, args.function.as_deref())?;
    // A function with states runs at the start of a sequence (empty states),
    // which are neither given nor shown.
    let bounds = index_bounds(model, func);
    let specs: Vec<InputSpec<'_>> = func
        .inputs
        .iter()
        .enumerate()
        .filter(|(i, _)| !func.is_state_input(*i))
        .map(|(i, &v)| InputSpec {
            name: &func.value(v).name,
            dtype: func.value(v).ty.dtype,
            rank: func.value(v).ty.rank(),
            id_bound: bounds[i],
        })
        .collect();
    let inputs = args.inputs.gather(&func.name, &specs)?;
    let started = std::time::Instant::now();
    let outputs = StateSession::new(model, &weights).run(&func.name, &inputs)?;
    tracing::info!(elapsed = ?started.elapsed(), "evaluated");
    let shown = func
        .outputs
        .iter()
        .enumerate()
        .filter(|(i, _)| !func.is_state_output(*i))
        .map(|(_, v)| v);
    for (i, (t, &v)) in outputs.iter().zip(shown).enumerate() {
        let shown = describe(t.dtype, &t.shape, &t.to_f32_vec());
        println!("output {i} %{}: {shown}", func.value(v).name);
    }
    if let Some(path) = &args.out {
        write_npy_file(path, &outputs[0], args.force)?;
    }
    Ok(())
}

/// [`random_weights`] for `model`, refused (naming the param, its size and
/// the budget) when the params exceed the [`MemoryBudget`] of this process.
pub(crate) fn budgeted_random_weights(model: &Model, seed: u64) -> Result<Weights, CliError> {
    MemoryBudget::from_env()
        .and_then(|budget| budget.check_params(model))
        .map_err(EvalError::from)?;
    Ok(random_weights(model, seed))
}

/// Fails before anything is read when `file` is a text model (which brings
/// no weights) and no seed was given for random ones.
pub(crate) fn require_seed(file: &Path, seed: Option<u64>) -> Result<(), CliError> {
    let brings_weights = file.is_dir() || seam_frontends::gguf::is_gguf(file);
    if !brings_weights && seed.is_none() {
        return Err(needs_seed());
    }
    Ok(())
}

/// The weights of `source` (loaded from `file`): its own, or, for a text
/// model, seeded random ones.
pub(crate) fn source_weights<'s>(
    file: &Path,
    source: &'s ModelSource,
    seed: Option<u64>,
) -> Result<Cow<'s, Weights>, CliError> {
    match (source.weights(), seed) {
        (Some(_), Some(_)) => Err(CliError::Usage(format!(
            "`{}` is a checkpoint folder or GGUF file with its own weights; drop --random-weights",
            file.display()
        ))),
        (Some(w), None) => Ok(Cow::Borrowed(w)),
        (None, Some(seed)) => Ok(Cow::Owned(budgeted_random_weights(source.model(), seed)?)),
        (None, None) => Err(needs_seed()),
    }
}

/// The function called `name` of `model`, or its first function.
pub(crate) fn pick_function<'m>(
    model: &'m Model,
    name: Option<&str>,
) -> Result<&'m Function, CliError> {
    match name {
        Some(name) => model.function(name).ok_or_else(|| {
            let names: Vec<&str> = model.functions.iter().map(|f| f.name.as_str()).collect();
            CliError::Usage(format!(
                "model `{}` has no function `{name}` (it has: {})",
                model.name,
                names.join(", ")
            ))
        }),
        None => Ok(&model.functions[0]),
    }
}

/// The usage error for a text model evaluated without `--random-weights`.
fn needs_seed() -> CliError {
    CliError::Usage("give the weights: --random-weights SEED".into())
}

/// Fails early when `--out` exists and `--force` was not given.
pub fn refuse_existing(out: Option<&Path>, force: bool) -> Result<(), CliError> {
    match out {
        Some(path) if path.exists() && !force => Err(CliError::Output {
            path: path.display().to_string(),
            reason: "the file exists (pass --force to replace it)".into(),
        }),
        _ => Ok(()),
    }
}

/// Writes a tensor as `.npy`, atomically.
pub fn write_npy_file(path: &Path, t: &Tensor, force: bool) -> Result<(), CliError> {
    let bytes = npy::to_npy_bytes(t).map_err(|e| CliError::Output {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    write_atomic(path, &bytes, force)?;
    println!("wrote {}", path.display());
    Ok(())
}
