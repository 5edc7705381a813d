//! `seam check`: parse and verify a model file and summarise it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;
use seam_ir::Model;

use super::model_source::load_source;
use super::tensor_parallel::{self, TensorParallelArgs};
use super::CliError;

/// Arguments of `seam check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The model: a file in Seam's text format (`.seam`), a Hugging Face
    /// checkpoint folder or a GGUF file (imported in full, weights included).
    pub file: PathBuf,
    /// Sharding and its check.
    #[command(flatten)]
    pub tensor_parallel: TensorParallelArgs,
}

/// Runs `seam check`.
pub fn run(args: &CheckArgs) -> Result<(), CliError> {
    tensor_parallel::validate(&args.file, &args.tensor_parallel)?;
    let source = load_source(&args.file)?;
    print!("{}", summary(source.model()));
    if let Some(summary) = source.import_summary() {
        println!("{summary}");
    }
    tensor_parallel::run(&args.file, &source, &args.tensor_parallel)
}

/// A human-readable summary: dims, functions, params, parameter bytes, ops per kind.
pub fn summary(model: &Model) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "model {}: ok", model.name);
    for d in &model.dims {
        let _ = writeln!(s, "  dim {} <= {}", d.name, d.max);
    }
    let _ = writeln!(
        s,
        "  params: {} ({} bytes, {})",
        model.params.len(),
        model.param_bytes(),
        human_bytes(model.param_bytes())
    );
    for f in &model.functions {
        let inputs: Vec<String> = f
            .inputs
            .iter()
            .map(|&v| format!("%{}: {}", f.value(v).name, f.value(v).ty))
            .collect();
        let outputs: Vec<String> = f
            .outputs
            .iter()
            .map(|&v| f.value(v).ty.to_string())
            .collect();
        let _ = writeln!(
            s,
            "  func {}({}) -> ({}): {} instructions",
            f.name,
            inputs.join(", "),
            outputs.join(", "),
            f.body.len()
        );
        let mut per_kind: BTreeMap<&str, usize> = BTreeMap::new();
        for instr in &f.body {
            *per_kind.entry(instr.op.name()).or_default() += 1;
        }
        let kinds: Vec<String> = per_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(s, "    ops: {}", kinds.join(", "));
    }
    s
}

/// `n` bytes in B, KiB, MiB or GiB, one decimal.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}
