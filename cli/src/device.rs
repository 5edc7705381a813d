//! Device options on the command line, and `seam devices`.

use std::io::IsTerminal;
use std::time::Instant;

use clap::Args;
use seam_runtime::device::list_adapters;
use seam_runtime::{DeviceOptions, Runtime, Session};

use super::CliError;

/// Which device to use.
#[derive(Debug, Args, Clone)]
pub struct DeviceArgs {
    /// Use the first adapter whose name contains this text (see `seam devices`).
    #[arg(long, value_name = "NAME")]
    pub adapter: Option<String>,
    /// Prefer an integrated GPU over a discrete one.
    #[arg(long)]
    pub low_power: bool,
    /// The device memory a bundle's weights may take (bytes, or with a binary
    /// suffix: `8G`, `512M`); a bundle needing more is refused, naming its
    /// size (`--resident-experts` keeps experts in host memory, a shard set
    /// splits the weights over ranks). Default: no limit.
    #[arg(long, value_name = "SIZE", value_parser = parse_budget)]
    pub memory_budget: Option<u64>,
}

/// A `--memory-budget` value.
fn parse_budget(text: &str) -> Result<u64, String> {
    seam_ir::eval::budget::parse_size(text)
        .ok_or_else(|| format!("`{text}` is not a size (bytes, or a number with K, M, G or T)"))
}

impl DeviceArgs {
    /// Opens the chosen device.
    pub fn open(&self) -> Result<Runtime, CliError> {
        let options = DeviceOptions {
            adapter_name_contains: self.adapter.clone(),
            power_preference: if self.low_power {
                seam_runtime::device::wgpu::PowerPreference::LowPower
            } else {
                seam_runtime::device::wgpu::PowerPreference::HighPerformance
            },
            ..DeviceOptions::default()
        };
        let rt = Runtime::new(&options)?;
        let a = rt.gpu().adapter();
        tracing::info!(adapter = %a.name, backend = ?a.backend, "device opened");
        Ok(rt)
    }
}

/// Warms `session` up before anything is timed ([`Session::warm_up`]: a driver
/// that compiles kernels at their first dispatch does it now), saying so on a
/// terminal.
pub fn warm_up(session: &mut Session) -> Result<(), CliError> {
    warming_up(|| session.warm_up())
}

/// Runs `work` (which compiles a bundle's kernels by running them once),
/// saying so on a terminal with how long it took.
pub fn warming_up<T>(work: impl FnOnce() -> Result<T, seam_runtime::Error>) -> Result<T, CliError> {
    let terminal = std::io::stderr().is_terminal();
    if terminal {
        eprint!("warming up the kernels (a bundle's first run on a device compiles them)…");
    }
    let started = Instant::now();
    let done = work()?;
    if terminal {
        eprintln!(" {:.1} s", started.elapsed().as_secs_f64());
    }
    tracing::info!(elapsed = ?started.elapsed(), "warmed up");
    Ok(done)
}

/// Runs `seam devices`: every adapter wgpu sees, best first.
pub fn run() -> Result<(), CliError> {
    let adapters = list_adapters(seam_runtime::device::wgpu::Backends::all());
    if adapters.is_empty() {
        println!("no adapters found (install a Vulkan driver, e.g. `scripts/setup-vulkan.sh`)");
    }
    for (i, a) in adapters.iter().enumerate() {
        println!(
            "{i}: {} ({:?}, {:?}) driver {} {}",
            a.name, a.backend, a.device_type, a.driver, a.driver_info
        );
    }
    Ok(())
}
