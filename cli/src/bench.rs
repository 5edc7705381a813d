//! `seam bench`: forward latency of bundles measured side by side (rounds
//! that run each bundle once in turn), with dispatches and submits per
//! forward, the ratio to the first bundle, and optionally where the time goes
//! per kernel.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::model_args::ModelArgs;
use seam_core::DType;
use seam_runtime::{Entry, HostTensor, RunTiming, Session, Timing};

use super::run::input_id_bounds;
use super::CliError;
use crate::ranks;

/// Arguments of `seam bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The bundles (`.seamb`). With several, each round of `--iters` runs
    /// every bundle once in turn, and `vs first` is the median over the rounds
    /// of each round's time over the first bundle's (robust to the machine's
    /// speed changing while it measures).
    pub bundles: Vec<PathBuf>,
    /// Token counts to measure (a forward over that many tokens each).
    #[arg(long, value_delimiter = ',', default_value = "1,64")]
    pub tokens: Vec<usize>,
    /// The entry point to time (default: the bundle's first). A bundle with a
    /// KV cache is reset before every run, so each `prefill` starts a sequence.
    #[arg(long, value_name = "NAME")]
    pub entry: Option<String>,
    /// Timed rounds per measurement (after one warm-up run of each bundle; at
    /// most 100000).
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    /// Also time every dispatch and print the slowest kernels: with
    /// timestamps between the dispatches of the run's one pass where the
    /// device writes them (Vulkan, so lavapipe), else each dispatch submitted
    /// alone (then its time includes a submission's overhead).
    #[arg(long)]
    pub profile: bool,
    /// External weights, the device, the experts kept on it.
    #[command(flatten)]
    pub model: ModelArgs,
}

/// The most rounds `--iters` asks for (every round's timings are kept).
const MAX_ITERS: usize = 100_000;

/// One bundle under measurement: its loaded model, entry point and session.
struct Bench {
    name: String,
    entry: Entry,
    session: Session,
    bounds: HashMap<String, u64>,
    /// The bundle's symbolic dims and their bounds.
    dims: HashMap<String, u64>,
    ranked: bool,
    stateful: bool,
}

impl Bench {
    /// Opens `path` on `rt` with the entry point `entry` (default: its first).
    fn open(
        args: &BenchArgs,
        rt: &seam_runtime::Runtime,
        path: &std::path::Path,
    ) -> Result<Bench, CliError> {
        let (bundle, ranks) = ranks::open_bundle(&args.model.weights, path)?;
        let model = args.model.load(rt, bundle)?;
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
        let dims = model
            .manifest()
            .dims
            .iter()
            .map(|d| (d.name.clone(), d.max))
            .collect();
        let mut session = model.session()?;
        let ranked = ranks.is_some();
        if let Some(c) = ranks {
            session.set_communicator(c);
        }
        let stateful = session.length_dim().is_some();
        Ok(Bench {
            name: path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            entry,
            session,
            bounds,
            dims,
            ranked,
            stateful,
        })
    }

    /// One timed run (after a reset of a stateful session).
    fn time(&mut self, inputs: &[HostTensor], timing: Timing) -> Result<RunTiming, CliError> {
        if self.stateful {
            self.session.reset()?;
        }
        Ok(self.session.run_with(&self.entry, inputs, timing)?.timing)
    }
}

/// Runs `seam bench`. Bundles are measured side by side: every round runs
/// each bundle once in turn, so a change in the machine's speed during the
/// measurement (common on shared machines) falls on all of them alike, and
/// the ratio to the first bundle is the median of the rounds' ratios.
pub fn run(args: &BenchArgs) -> Result<(), CliError> {
    if args.bundles.is_empty() {
        return Err(CliError::Usage("give at least one bundle".into()));
    }
    if args.iters > MAX_ITERS {
        return Err(CliError::Usage(format!(
            "--iters {} is more than {MAX_ITERS} rounds",
            args.iters
        )));
    }
    let rt = args.model.device.open()?;
    println!(
        "device: {} ({:?})",
        rt.gpu().adapter().name,
        rt.gpu().adapter().backend
    );
    let mut benches = args
        .bundles
        .iter()
        .map(|path| Bench::open(args, &rt, path))
        .collect::<Result<Vec<_>, _>>()?;
    println!(
        "{:<28} {:>7} {:>11} {:>11} {:>12} {:>10} {:>7} {:>11} {:>9}",
        "bundle",
        "tokens",
        "mean ms",
        "min ms",
        "wall mean ms",
        "dispatches",
        "submits",
        "median ms",
        "vs first"
    );
    for &n in &args.tokens {
        let mut inputs = Vec::new();
        let mut before = Vec::new();
        for b in &mut benches {
            let x = synthetic_inputs(&b.entry, n, &b.bounds, &b.dims)?;
            b.time(&x, Timing::Device)?;
            before.push(b.session.collective_stats());
            inputs.push(x);
        }
        let rounds = args.iters.max(1);
        let mut runs: Vec<Vec<RunTiming>> = vec![Vec::new(); benches.len()];
        for _ in 0..rounds {
            for (i, b) in benches.iter_mut().enumerate() {
                runs[i].push(b.time(&inputs[i], Timing::Device)?);
            }
        }
        let device = |t: &RunTiming| t.device.unwrap_or(t.wall);
        for (i, b) in benches.iter().enumerate() {
            let times: Vec<Duration> = runs[i].iter().map(device).collect();
            let ratios: Vec<f64> = runs[i]
                .iter()
                .zip(&runs[0])
                .map(|(t, t0)| device(t).as_secs_f64() / device(t0).as_secs_f64().max(1e-12))
                .collect();
            let wall = runs[i].iter().map(|t| t.wall).sum::<Duration>() / rounds as u32;
            let last = runs[i]
                .last()
                .ok_or_else(|| CliError::Input("no run".into()))?;
            let vs_first = if benches.len() > 1 {
                format!("{:.3}x", median(ratios))
            } else {
                "-".into()
            };
            println!(
                "{:<28} {n:>7} {:>11.3} {:>11.3} {:>12.3} {:>10} {:>7} {:>11.3} {:>9}",
                b.name,
                ms(times.iter().sum::<Duration>() / rounds as u32),
                ms(times.iter().min().copied().unwrap_or_default()),
                ms(wall),
                last.dispatches,
                last.submits,
                median(times.iter().map(|t| ms(*t)).collect()),
                vs_first,
            );
            if b.ranked {
                let c = b.session.collective_stats();
                let runs = rounds as u32;
                let per = |d: Duration| ms(d / runs);
                println!(
                    "  per run: {} reductions, read back {:.3} ms, overlapped {:.3} ms, blocked {:.3} ms",
                    (c.reductions - before[i].reductions) / u64::from(runs),
                    per(c.read_back - before[i].read_back),
                    per(c.overlapped - before[i].overlapped),
                    per(c.blocked - before[i].blocked)
                );
            }
        }
        if args.profile {
            for (i, b) in benches.iter_mut().enumerate() {
                let run = b.time(&inputs[i], Timing::PerDispatch)?;
                let how = if run.submits == 1 {
                    "timed between dispatches inside the run's one pass"
                } else {
                    "each dispatch submitted and timed on its own"
                };
                println!("  {} at {n} tokens, {how}:", b.name);
                let mut per_kernel: BTreeMap<String, (Duration, usize)> = BTreeMap::new();
                for d in run.per_dispatch {
                    let e = per_kernel.entry(d.kernel).or_default();
                    e.0 += d.device.unwrap_or(d.wall);
                    e.1 += 1;
                }
                let mut rows: Vec<_> = per_kernel.into_iter().collect();
                rows.sort_by_key(|r| std::cmp::Reverse(r.1 .0));
                for (k, (d, count)) in rows.iter().take(12) {
                    println!("    {:>9.3} ms  {count:>3}×  {k}", ms(*d));
                }
            }
        }
    }
    Ok(())
}

/// Milliseconds.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The median (the mean of the middle two for an even count; 0 when empty).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Inputs of the right shape for `tokens` tokens (every symbolic dim
/// `tokens`; a dim the first input does not have, such as a batched `step`'s
/// `batch` rows, at most its bound in `dims`): ids `i mod 1000` (`i mod bound` for an input with a bound in
/// `bounds`, such as a modality id or a pool slot), floats 0.5.
fn synthetic_inputs(
    entry: &Entry,
    tokens: usize,
    bounds: &HashMap<String, u64>,
    dims: &HashMap<String, u64>,
) -> Result<Vec<HostTensor>, CliError> {
    // The first input's dims are the tokens measured (beyond their bound is
    // an error, named by the session); any other dim is at most its bound.
    let leading: Vec<String> = entry
        .inputs()
        .first()
        .map(|io| {
            io.shape
                .iter()
                .flat_map(|e| e.dims())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let size = |dim: &str| {
        let bound = dims.get(dim).filter(|_| !leading.iter().any(|l| l == dim));
        Some(bound.map_or(tokens as u64, |&b| b.min(tokens as u64)))
    };
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
                .map(|e| e.eval(&size).map(|v| v as usize))
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
