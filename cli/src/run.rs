//! `seam run`: load a bundle on a device and run it; optionally compare with the
//! reference evaluator.

use std::path::PathBuf;

use clap::Args;

use crate::model_args::ModelArgs;
use seam_bundle::{Bundle, Manifest, Packing};
use seam_core::quant::unpack_rows;
use seam_ir::eval::StateSession;
use seam_ir::{index_bounds, text, DType, EncodedWeight, Tensor, TensorData, Weights};
use seam_runtime::{HostTensor, RunOutput, Timing};

use super::device::warm_up;
use super::eval::{refuse_existing, write_npy_file};
use super::inputs::{describe, InputArgs, InputSpec};
use super::CliError;
use crate::experts::offload::expert_report;
use crate::ranks;
use seam_compiler::emit::transpose_last2;
use seam_ir::eval::tensor::f32s_from_le_bytes;

/// Arguments of `seam run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The bundle (`.seamb`) written by `seam compile`.
    pub bundle: PathBuf,
    /// The inputs.
    #[command(flatten)]
    pub inputs: InputArgs,
    /// The entry point to run (default: the first).
    #[arg(long)]
    pub entry: Option<String>,
    /// Write the first output as `.npy` to this path.
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Replace the `--out` file if it exists.
    #[arg(long)]
    pub force: bool,
    /// Also evaluate the model on the CPU with the reference evaluator (on the
    /// bundle's own weights) and print the largest absolute difference.
    #[arg(long)]
    pub check_reference: bool,
    /// External weights, the device, the experts kept on it.
    #[command(flatten)]
    pub model: ModelArgs,
}

/// A reference tensor as the runtime's host tensor.
pub(crate) fn to_host(t: &Tensor) -> Result<HostTensor, CliError> {
    let (dtype, bytes): (DType, Vec<u8>) = match &t.data {
        TensorData::F32(v) => (DType::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        TensorData::F16(v) => (DType::F16, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        TensorData::I32(v) => (DType::I32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        TensorData::U32(v) => (DType::U32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
    };
    Ok(HostTensor::from_bytes(dtype, t.shape.clone(), bytes)?)
}

/// The bound on each id input of entry point `entry` (by name), read from the
/// model text a bundle's manifest carries (none without it), as `seam eval`
/// checks them.
pub(crate) fn input_id_bounds(
    manifest: &Manifest,
    entry: &str,
) -> Result<std::collections::HashMap<String, u64>, CliError> {
    let Some(source) = manifest.source_ir.as_deref() else {
        return Ok(Default::default());
    };
    let (model, _) =
        text::parse_and_verify("<bundle>", source).map_err(|d| CliError::Input(d.to_string()))?;
    let Some(func) = model.function(entry) else {
        return Ok(Default::default());
    };
    let bounds = index_bounds(&model, func);
    Ok(func
        .inputs
        .iter()
        .zip(bounds)
        .filter_map(|(&v, b)| Some((func.value(v).name.clone(), b?)))
        .collect())
}

/// The model and its weights as stored in the bundle, for the reference evaluator.
pub(crate) fn reference_model(bundle: &Bundle) -> Result<(seam_ir::Model, Weights), CliError> {
    let m = bundle.manifest();
    let source = m.source_ir.as_deref().ok_or_else(|| {
        CliError::Input("the bundle carries no model text; --check-reference is unavailable".into())
    })?;
    let (model, _) =
        text::parse_and_verify("<bundle>", source).map_err(|d| CliError::Input(d.to_string()))?;
    let mut tensors = Vec::with_capacity(model.params.len());
    for p in &model.params {
        let entry = m.params.iter().find(|e| e.name == p.name).ok_or_else(|| {
            CliError::Input(format!("the bundle has no weight for `@{}`", p.name))
        })?;
        let bytes = bundle.weight_bytes(entry.weight as usize);
        let shape = p.sizes();
        let r = shape.len();
        let values = match entry.packing {
            Packing::AsIs => f32s_from_le_bytes(bytes),
            Packing::TransposedLast2 => {
                transpose_last2(&f32s_from_le_bytes(bytes), shape[r - 1], shape[r - 2])
            }
            Packing::Rows(format) => {
                let (rows, k) = EncodedWeight::rows_and_k(&p.name, &shape)
                    .map_err(|e| CliError::Input(e.to_string()))?;
                let words: Vec<u32> = bytes
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                let rows_values = unpack_rows(format, &words, rows, k).map_err(|e| {
                    CliError::Input(format!("weight `@{}` in the bundle: {e}", p.name))
                })?;
                transpose_last2(&rows_values, rows as usize, k as usize)
            }
        };
        tensors.push(Tensor::f32(shape, values)?);
    }
    let weights = Weights::new(&model, tensors)?;
    Ok((model, weights))
}

/// Runs `seam run`.
pub fn run(args: &RunArgs) -> Result<(), CliError> {
    refuse_existing(args.out.as_deref(), args.force)?;
    let (bundle, ranks) = ranks::open_bundle(&args.model.weights, &args.bundle)?;
    let manifest = bundle.manifest().clone();
    let entry = match &args.entry {
        Some(name) => manifest.entry_points.iter().find(|e| &e.name == name),
        None => manifest.entry_points.first(),
    }
    .ok_or_else(|| {
        CliError::Usage(format!(
            "the bundle has no entry point `{}`",
            args.entry.as_deref().unwrap_or("")
        ))
    })?;
    let bounds = input_id_bounds(bundle.manifest(), &entry.name)?;
    let specs: Vec<InputSpec<'_>> = entry
        .inputs
        .iter()
        .map(|io| InputSpec {
            name: &io.name,
            dtype: io.dtype,
            rank: io.shape.len(),
            id_bound: bounds.get(&io.name).copied(),
        })
        .collect();
    let inputs = args.inputs.gather(&entry.name, &specs)?;
    if args.check_reference && ranks.is_some() {
        return Err(CliError::Usage(
            "--check-reference evaluates one device's model: check a shard set with `seam check --tensor-parallel N`".into(),
        ));
    }
    let reference = if args.check_reference {
        Some(reference_model(&bundle)?)
    } else {
        None
    };
    let rt = args.model.device.open()?;
    println!(
        "device: {} ({:?})",
        rt.gpu().adapter().name,
        rt.gpu().adapter().backend
    );
    let model = args.model.load(&rt, bundle)?;
    let mut session = model.session()?;
    if let Some(c) = ranks {
        session.set_communicator(c);
    }
    warm_up(&mut session)?;
    let before = session.expert_stats();
    let host = inputs.iter().map(to_host).collect::<Result<Vec<_>, _>>()?;
    let RunOutput {
        tensors: outputs,
        timing,
    } = session.run_with(&model.entry(&entry.name)?, &host, Timing::Device)?;
    for (i, (t, io)) in outputs.iter().zip(&entry.outputs).enumerate() {
        println!(
            "output {i} %{}: {}",
            io.name,
            describe(
                format!("{:?}", t.dtype()).to_lowercase(),
                t.shape(),
                &t.to_f32()
            )
        );
    }
    println!(
        "{} dispatches in {} submit, {:.2} ms wall{}",
        timing.dispatches,
        timing.submits,
        timing.wall.as_secs_f64() * 1e3,
        timing
            .device
            .map(|d| format!(", {:.2} ms on the device", d.as_secs_f64() * 1e3))
            .unwrap_or_default()
    );
    let tokens = entry
        .inputs
        .first()
        .and_then(|io| host.first().filter(|_| io.dtype == DType::I32));
    let tokens = tokens.map_or(1, |t| t.shape().iter().product());
    if let Some(line) = expert_report(&model, before, session.expert_stats(), tokens) {
        println!("{line}");
    }
    if let Some((model, weights)) = reference {
        // A fresh session on both sides: an entry with states starts a sequence.
        let cpu = StateSession::new(&model, &weights).run(&entry.name, &inputs)?;
        for (i, (g, c)) in outputs.iter().zip(&cpu).enumerate() {
            let (g, c) = (g.to_f32(), c.to_f32_vec());
            let err = g
                .iter()
                .zip(&c)
                .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            let scale = c.iter().fold(0f32, |m, x| m.max(x.abs()));
            println!(
                "check-reference output {i}: max abs error {err:.3e} (max |reference| {scale:.3e})"
            );
        }
    }
    if let Some(path) = args.out.as_ref().filter(|_| ranks::is_leader()) {
        let t = &outputs[0];
        let tensor = Tensor::f32(t.shape().to_vec(), t.to_f32())?;
        write_npy_file(path, &tensor, args.force)?;
    }
    Ok(())
}
