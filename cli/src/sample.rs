//! `seam sample`: flow-matching Euler sampling of a diffusion bundle (DDT),
//! from seeded Gaussian noise at `t = 0` to `t = 1`. The bundle is loaded once
//! and its entry point (the velocity model) runs on the device once per step;
//! the Euler update `x += dt·v`, one multiply-add per latent element, runs on
//! the host between steps, where the velocity is read back. On the steps the
//! share schedule skips, the bundle's caches (the encoder's self-condition)
//! keep their value and the dispatches only they need are not run.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use seam_bundle::Manifest;
use seam_core::flow::{euler, gaussian_noise, ShareSchedule};
use seam_ir::{CacheSession, DType, Tensor};
use seam_runtime::Timing;

use super::device::{warm_up, DeviceArgs};
use super::eval::{refuse_existing, write_npy_file};
use super::run::{input_id_bounds, reference_model, to_host};
use super::weight_dirs::WeightDirArgs;
use super::CliError;

/// Arguments of `seam sample`.
#[derive(Debug, Args)]
pub struct SampleArgs {
    /// The bundle (`.seamb`) written by `seam compile`; its entry point takes
    /// the latent `x` (f32, static shape), the time `t: f32[1]` and optionally
    /// a class `label: i32[1]`, and returns the velocity.
    pub bundle: PathBuf,
    /// Euler steps; step `i` runs the model at `t = i / steps`.
    #[arg(long, default_value_t = 8)]
    pub steps: u32,
    /// Which steps recompute the caches: `uniform:K` (steps 0, K, 2K, …) or
    /// `list:0,S1,S2,…` (increasing, starting at 0). Default: `uniform:R`, R
    /// the period written in the model's `cache` op.
    #[arg(long, value_name = "SCHEDULE")]
    pub share_schedule: Option<ShareSchedule>,
    /// Seed of the initial noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The class label (for an entry point with a `label` input).
    #[arg(long, default_value_t = 0)]
    pub label: i32,
    /// The entry point to run (default: the first).
    #[arg(long)]
    pub entry: Option<String>,
    /// Write the final latent as `.npy` to this path.
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Replace the `--out` file if it exists.
    #[arg(long)]
    pub force: bool,
    /// Also sample with the reference evaluator (same noise, same schedule,
    /// the caches shared alike) and print the difference of the final latents.
    #[arg(long)]
    pub check_reference: bool,
    /// Folders external weight files may lie in.
    #[command(flatten)]
    pub weights: WeightDirArgs,
    /// The device.
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// The model inputs of one step: the latent, `t`, and the label if taken.
fn step_inputs(
    shape: &[usize],
    x: &[f32],
    t: f32,
    label: Option<i32>,
) -> Result<Vec<Tensor>, CliError> {
    let mut inputs = vec![
        Tensor::f32(shape.to_vec(), x.to_vec())?,
        Tensor::f32(vec![1], vec![t])?,
    ];
    if let Some(label) = label {
        inputs.push(Tensor::i32(vec![1], vec![label])?);
    }
    Ok(inputs)
}

/// Refuses a `--label` outside the rows of the table input `name` indexes,
/// as `seam run` refuses ids (the GPU would read a clamped row).
fn check_label(label: i32, manifest: &Manifest, entry: &str, name: &str) -> Result<(), CliError> {
    let bound = input_id_bounds(manifest, entry)?.get(name).copied();
    match bound {
        Some(bound) if label < 0 || label as u64 >= bound => Err(CliError::Input(format!(
            "--label {label} is outside 0..{bound} (the classes of `%{name}`)"
        ))),
        _ => Ok(()),
    }
}

/// Runs `seam sample`.
pub fn run(args: &SampleArgs) -> Result<(), CliError> {
    refuse_existing(args.out.as_deref(), args.force)?;
    let bundle = args.weights.open(&args.bundle)?;
    let manifest = bundle.manifest().clone();
    let entry = match &args.entry {
        Some(name) => manifest.entry_points.iter().find(|e| &e.name == name),
        None => manifest.entry_points.first(),
    }
    .ok_or_else(|| CliError::Usage("the bundle has no such entry point".into()))?;
    let shape_error = || {
        CliError::Usage(format!(
            "`{}` must take x (f32, static shape), t: f32[1] and optionally label: i32[1]",
            entry.name
        ))
    };
    let (x_io, rest) = entry.inputs.split_first().ok_or_else(shape_error)?;
    let shape: Vec<usize> = x_io
        .shape
        .iter()
        .map(|e| e.as_const().map(|n| n as usize))
        .collect::<Option<_>>()
        .ok_or_else(shape_error)?;
    let label = match rest {
        [t] if t.dtype == DType::F32 => None,
        [t, l] if t.dtype == DType::F32 && l.dtype == DType::I32 => {
            check_label(args.label, &manifest, &entry.name, &l.name)?;
            Some(args.label)
        }
        _ => return Err(shape_error()),
    };
    let schedule = match (&args.share_schedule, manifest.caches.first()) {
        (Some(s), _) => s.clone(),
        (None, Some(c)) => ShareSchedule::Uniform(c.refresh),
        (None, None) => ShareSchedule::Uniform(1),
    };
    schedule.check(args.steps)?;
    let shares = (0..args.steps).any(|i| !schedule.refreshes(i));
    if shares && manifest.caches.is_empty() {
        return Err(CliError::Usage(format!(
            "the bundle has no cache to share, so only `uniform:1` applies (got `{schedule}`)"
        )));
    }
    let keys: Vec<String> = manifest.caches.iter().map(|c| c.key.clone()).collect();
    let reuse: Vec<&str> = keys.iter().map(String::as_str).collect();
    let reference = if args.check_reference {
        Some(reference_model(&bundle)?)
    } else {
        None
    };
    let noise = gaussian_noise(args.seed, shape.iter().product());

    let rt = args.device.open()?;
    let model = rt.load_bundle(bundle)?;
    let run_entry = model.entry(&entry.name)?;
    let mut session = model.session()?;
    warm_up(&mut session)?;
    let (mut computed, mut shared) = (Stat::default(), Stat::default());
    let started = Instant::now();
    let latent = euler::<CliError>(noise.clone(), args.steps, &schedule, |x, t, refresh| {
        let inputs = step_inputs(&shape, x, t, label)?;
        let host = inputs.iter().map(to_host).collect::<Result<Vec<_>, _>>()?;
        let skip: &[&str] = if refresh { &[] } else { &reuse };
        let out = session.run_reusing_with(&run_entry, &host, skip, Timing::Wall)?;
        let stat = if refresh { &mut computed } else { &mut shared };
        stat.add(out.timing.dispatches, out.timing.wall);
        tracing::debug!(t, refresh, dispatches = out.timing.dispatches, "step");
        let v = out.tensors.first().ok_or_else(shape_error)?;
        Ok(v.to_f32())
    })?;
    let total = started.elapsed();
    println!(
        "device: {} ({:?})",
        rt.gpu().adapter().name,
        rt.gpu().adapter().backend
    );
    println!(
        "{} steps, share schedule {schedule}: {} computing the caches, {} reusing them",
        args.steps, computed.steps, shared.steps
    );
    for (what, s) in [("computing", &computed), ("reusing", &shared)] {
        if let Some(per_step) = s.dispatches.checked_div(s.steps) {
            println!(
                "  {what}: {per_step} dispatches per step, {:.3} ms per step",
                s.wall.as_secs_f64() * 1e3 / s.steps as f64
            );
        }
    }
    println!(
        "sample: {:.3} ms ({:.3} ms per step)",
        total.as_secs_f64() * 1e3,
        total.as_secs_f64() * 1e3 / f64::from(args.steps)
    );
    if let Some((model, weights)) = reference {
        let mut cpu = CacheSession::new(&model, &weights);
        let expected = euler::<CliError>(noise, args.steps, &schedule, |x, t, refresh| {
            let skip: &[&str] = if refresh { &[] } else { &reuse };
            let out = cpu.run(&entry.name, &step_inputs(&shape, x, t, label)?, skip)?;
            Ok(out.first().ok_or_else(shape_error)?.to_f32_vec())
        })?;
        let err = latent
            .iter()
            .zip(&expected)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        let scale = expected.iter().fold(0f32, |m, x| m.max(x.abs()));
        println!("check-reference: max abs error {err:.3e} (max |reference| {scale:.3e})");
    }
    if let Some(path) = &args.out {
        write_npy_file(path, &Tensor::f32(shape, latent)?, args.force)?;
    }
    Ok(())
}

/// Dispatches and wall time of the steps of one kind.
#[derive(Default)]
struct Stat {
    steps: usize,
    dispatches: usize,
    wall: Duration,
}

impl Stat {
    fn add(&mut self, dispatches: usize, wall: Duration) {
        self.steps += 1;
        self.dispatches += dispatches;
        self.wall += wall;
    }
}
