//! `seam eval`: run a model on the CPU with the reference evaluator.

use std::path::PathBuf;

use clap::Args;
use seam_ir::eval::{evaluate, Tensor};
use seam_ir::weights::random_weights;
use seam_ir::{npy, Function, Model};

use super::output::write_atomic;
use super::CliError;
use crate::load::load_model;

/// Arguments of `seam eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The model file in Seam's text format (`.seam`).
    pub file: PathBuf,
    /// Fill every parameter with seeded random values (the same generator as `seam compile`).
    #[arg(long, value_name = "SEED")]
    pub random_weights: u64,
    /// Token ids for the function's single integer input, comma-separated: `1,2,3`.
    #[arg(long, value_name = "IDS", value_delimiter = ',', num_args = 1..)]
    pub tokens: Vec<i64>,
    /// An input by name from a `.npy` file: `--input ids=ids.npy` (repeatable).
    #[arg(long = "input", value_name = "NAME=FILE")]
    pub inputs: Vec<String>,
    /// The function to run (default: the model's first function).
    #[arg(long)]
    pub function: Option<String>,
    /// Write the first output as `.npy` (f32 little-endian, C order) to this path.
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Replace the `--out` file if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Runs `seam eval`.
pub fn run(args: &EvalArgs) -> Result<(), CliError> {
    if let Some(path) = args.out.as_deref().filter(|p| p.exists() && !args.force) {
        return Err(CliError::Output {
            path: path.display().to_string(),
            reason: "the file exists (pass --force to replace it)".into(),
        });
    }
    let model = load_model(&args.file)?;
    let func = match &args.function {
        Some(name) => model.function(name).ok_or_else(|| {
            let names: Vec<&str> = model.functions.iter().map(|f| f.name.as_str()).collect();
            CliError::Usage(format!(
                "model `{}` has no function `{name}` (it has: {})",
                model.name,
                names.join(", ")
            ))
        })?,
        None => &model.functions[0],
    };
    let inputs = gather_inputs(&model, func, args)?;
    let weights = random_weights(&model, args.random_weights);
    let started = std::time::Instant::now();
    let outputs = evaluate(&model, &func.name, &weights, &inputs)?;
    tracing::info!(elapsed = ?started.elapsed(), "evaluated");
    for (i, (t, &v)) in outputs.iter().zip(&func.outputs).enumerate() {
        println!("output {i} %{}: {}", func.value(v).name, describe(t));
    }
    if let Some(path) = &args.out {
        let mut bytes = Vec::new();
        npy::write_npy(&mut bytes, &outputs[0]).map_err(|e| CliError::Output {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        write_atomic(path, &bytes, args.force)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Builds the input tensors from `--tokens` and `--input` in signature order.
fn gather_inputs(model: &Model, func: &Function, args: &EvalArgs) -> Result<Vec<Tensor>, CliError> {
    let mut from_files = Vec::new();
    for spec in &args.inputs {
        let (name, path) = spec
            .split_once('=')
            .ok_or_else(|| CliError::Usage(format!("--input takes NAME=FILE, found `{spec}`")))?;
        let bytes = std::fs::read(path)
            .map_err(|e| CliError::Input(format!("cannot read `{path}`: {e}")))?;
        let tensor = npy::read_npy(&bytes)
            .map_err(|e| CliError::Input(format!("`{path}` is not a usable .npy file: {e}")))?;
        from_files.push((name.trim_start_matches('%').to_string(), tensor));
    }
    let mut tokens_used = false;
    let mut inputs = Vec::with_capacity(func.inputs.len());
    for &v in &func.inputs {
        let value = func.value(v);
        if let Some(i) = from_files.iter().position(|(n, _)| *n == value.name) {
            inputs.push(from_files.swap_remove(i).1);
        } else if !args.tokens.is_empty()
            && !tokens_used
            && value.ty.dtype.is_int()
            && value.ty.rank() == 1
        {
            tokens_used = true;
            inputs.push(tokens_tensor(&args.tokens, value.ty.dtype)?);
        } else {
            return Err(CliError::Usage(format!(
                "function `{}` needs input `%{}: {}`: give it with --tokens (a rank-1 integer input) or --input {}=FILE.npy",
                func.name, value.name, value.ty, value.name
            )));
        }
    }
    if let Some((name, _)) = from_files.first() {
        return Err(CliError::Usage(format!(
            "function `{}` of model `{}` has no input `%{name}`",
            func.name, model.name
        )));
    }
    if !args.tokens.is_empty() && !tokens_used {
        return Err(CliError::Usage(format!(
            "--tokens given but function `{}` has no rank-1 integer input left to take them",
            func.name
        )));
    }
    Ok(inputs)
}

fn tokens_tensor(tokens: &[i64], dtype: seam_ir::DType) -> Result<Tensor, CliError> {
    let out_of_range = |t: &i64| CliError::Input(format!("token id {t} does not fit {dtype}"));
    match dtype {
        seam_ir::DType::I32 => {
            let ids = tokens
                .iter()
                .map(|t| i32::try_from(*t).map_err(|_| out_of_range(t)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Tensor::i32(vec![ids.len()], ids).map_err(|e| CliError::Input(e.to_string()))?)
        }
        _ => {
            let ids = tokens
                .iter()
                .map(|t| u32::try_from(*t).map_err(|_| out_of_range(t)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Tensor::u32(vec![ids.len()], ids).map_err(|e| CliError::Input(e.to_string()))?)
        }
    }
}

/// Shape, dtype and a checksum (sum, mean absolute value, min, max) of a tensor.
fn describe(t: &Tensor) -> String {
    let v = t.to_f32_vec();
    let n = v.len().max(1) as f64;
    let sum: f64 = v.iter().map(|&x| f64::from(x)).sum();
    let mean_abs: f64 = v.iter().map(|&x| f64::from(x).abs()).sum::<f64>() / n;
    let min = v.iter().copied().fold(f32::INFINITY, f32::min);
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    format!(
        "{}{:?} checksum sum={sum:.6e} mean_abs={mean_abs:.6e} min={min:.6e} max={max:.6e}",
        t.dtype, t.shape
    )
}
