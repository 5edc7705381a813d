//! `seam bench`: forward latency of a bundle, with dispatches and submits per
//! forward, and optionally where the time goes per kernel.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::model_args::ModelArgs;
use seam_core::DType;
use seam_runtime::{Entry, HostTensor, Timing};

use super::run::input_id_bounds;
use super::CliError;
use crate::ranks;

/// Arguments of `seam bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The bundle (`.seamb`).
    pub bundles: Vec<PathBuf>,
    /// Token counts to measure (a forward over that many tokens each).
    #[arg(long, value_delimiter = ',', default_value = "1,64")]
    pub tokens: Vec<usize>,
    /// The entry point to time (default: the bundle's first). A bundle with a
    /// KV cache is reset before every run, so each `prefill` starts a sequence.
    #[arg(long, value_name = "NAME")]
    pub entry: Option<String>,
    /// Timed runs per measurement (after one warm-up run).
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    /// Also time every dispatch on its own and print the slowest kernels.
    #[arg(long)]
    pub profile: bool,
    /// External weights, the device, the experts kept on it.
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Runs `seam bench`.
pub fn run(args: &BenchArgs) -> Result<(), CliError> {
    if args.bundles.is_empty() {
        return Err(CliError::Usage("give at least one bundle".into()));
    }
    let rt = args.model.device.open()?;
    println!(
        "device: {} ({:?})",
        rt.gpu().adapter().name,
        rt.gpu().adapter().backend
    );
    println!(
        "{:<28} {:>7} {:>11} {:>11} {:>12} {:>10} {:>7}",
        "bundle", "tokens", "mean ms", "min ms", "wall mean ms", "dispatches", "submits"
    );
    for path in &args.bundles {
        let (bundle, ranks) = ranks::open_bundle(&args.model.weights, path)?;
        let model = args.model.load(&rt, bundle)?;
        let first = model
            .manifest()
            .entry_points
            .first()
            .map(|e| e.name.clone());
        let name =
            args.entry.clone().or(first).ok_or_else(|| {
                CliError::Input(format!("`{}` has no entry point", path.display()))
            })?;
        let entry = model.entry(&name)?;
        let bounds = input_id_bounds(model.manifest(), &name)?;
        let mut session = model.session()?;
        let ranked = ranks.is_some();
        if let Some(c) = ranks {
            session.set_communicator(c);
        }
        let stateful = session.length_dim().is_some();
        for &n in &args.tokens {
            let inputs = synthetic_inputs(&entry, n, &bounds)?;
            if stateful {
                session.reset()?;
            }
            session.run(&entry, &inputs)?;
            let before = session.collective_stats();
            let mut times = Vec::with_capacity(args.iters);
            let mut walls = Vec::with_capacity(args.iters);
            let mut last = None;
            for _ in 0..args.iters.max(1) {
                if stateful {
                    session.reset()?;
                }
                let t = session.run_with(&entry, &inputs, Timing::Device)?.timing;
                times.push(t.device.unwrap_or(t.wall));
                walls.push(t.wall);
                last = Some(t);
            }
            let mean = times.iter().sum::<Duration>() / times.len() as u32;
            let wall = walls.iter().sum::<Duration>() / walls.len() as u32;
            let min = times.iter().min().copied().unwrap_or_default();
            let t = last.ok_or_else(|| CliError::Input("no run".into()))?;
            let name = path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            println!(
                "{name:<28} {n:>7} {:>11.3} {:>11.3} {:>12.3} {:>10} {:>7}",
                mean.as_secs_f64() * 1e3,
                min.as_secs_f64() * 1e3,
                wall.as_secs_f64() * 1e3,
                t.dispatches,
                t.submits
            );
            if ranked {
                let mut c = session.collective_stats();
                c.reductions -= before.reductions;
                let runs = times.len() as u32;
                let ms = |d: Duration| (d / runs).as_secs_f64() * 1e3;
                println!(
                    "  per run: {} reductions, read back {:.3} ms, overlapped {:.3} ms, blocked {:.3} ms",
                    c.reductions / u64::from(runs),
                    ms(c.read_back - before.read_back),
                    ms(c.overlapped - before.overlapped),
                    ms(c.blocked - before.blocked)
                );
            }
            if args.profile {
                let mut per_kernel: BTreeMap<String, (Duration, usize)> = BTreeMap::new();
                if stateful {
                    session.reset()?;
                }
                let run = session.run_with(&entry, &inputs, Timing::PerDispatch)?;
                for d in run.timing.per_dispatch {
                    let e = per_kernel.entry(d.kernel).or_default();
                    e.0 += d.device.unwrap_or(d.wall);
                    e.1 += 1;
                }
                let mut rows: Vec<_> = per_kernel.into_iter().collect();
                rows.sort_by_key(|r| std::cmp::Reverse(r.1 .0));
                for (k, (d, count)) in rows.iter().take(12) {
                    println!("    {:>9.3} ms  {count:>3}×  {k}", d.as_secs_f64() * 1e3);
                }
            }
        }
    }
    Ok(())
}

/// Inputs of the right shape for `tokens` tokens: ids `i mod 1000` (`i mod
/// bound` for an input with a bound in `bounds`, such as a modality id), floats 0.5.
fn synthetic_inputs(
    entry: &Entry,
    tokens: usize,
    bounds: &HashMap<String, u64>,
) -> Result<Vec<HostTensor>, CliError> {
    entry
        .inputs()
        .iter()
        .map(|io| {
            let modulus = bounds
                .get(&io.name)
                .map_or(1000, |&b| b.clamp(1, 1000) as usize);
            let shape: Vec<usize> = io
                .shape
                .iter()
                .map(|e| e.eval(&|_| Some(tokens as u64)).map(|v| v as usize))
                .collect::<Result<_, _>>()?;
            let n: usize = shape.iter().product();
            let t = match io.dtype {
                DType::I32 => HostTensor::from_i32(
                    shape,
                    &(0..n).map(|i| (i % modulus) as i32).collect::<Vec<_>>(),
                ),
                DType::U32 => HostTensor::from_u32(
                    shape,
                    &(0..n).map(|i| (i % modulus) as u32).collect::<Vec<_>>(),
                ),
                _ => HostTensor::from_f32(shape, &vec![0.5; n]),
            };
            t.map_err(CliError::from)
        })
        .collect()
}
