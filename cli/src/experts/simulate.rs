//! `seam cache-sim`: replays an expert-access trace through the runtime's
//! [`ExpertCache`] under each policy and capacity, and prints the hit ratios.

use std::path::PathBuf;

use clap::Args;
use seam_runtime::experts::{Counters, ExpertCache, Lookahead, PolicyKind, Replay};

use super::trace::read_trace;
use crate::CliError;

/// Arguments of `seam cache-sim`.
#[derive(Debug, Args)]
pub struct CacheSimArgs {
    /// The trace: JSON lines `{"step": s, "seq": q, "layer": l, "expert": e}`.
    #[arg(long, value_name = "FILE")]
    pub trace: PathBuf,
    /// Experts held per layer, one simulation each (comma-separated, 1 to 1024).
    #[arg(long, value_delimiter = ',', required = true,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub capacity: Vec<u32>,
    /// Policies, one simulation each (comma-separated): lru, belady, lookahead.
    #[arg(long, value_delimiter = ',', default_value = "lru,belady,lookahead")]
    pub policy: Vec<PolicyKind>,
    /// Upcoming accesses `lookahead` considers for prefetching after each
    /// access (0 to 4096).
    #[arg(long, default_value_t = Lookahead::DEFAULT_WINDOW as u32,
          value_parser = clap::value_parser!(u32).range(0..=4096))]
    pub prefetch_window: u32,
}

/// Runs `seam cache-sim`: one line per policy and capacity.
pub fn run(args: &CacheSimArgs) -> Result<(), CliError> {
    let records = read_trace(&args.trace)?;
    let replay = Replay::new(records.iter().map(|r| r.key()).collect());
    for &policy in &args.policy {
        for &capacity in &args.capacity {
            let mut cache = ExpertCache::new(
                replay.layers(),
                capacity as usize,
                policy.build(args.prefetch_window as usize),
            )?;
            println!("{}", line(policy, capacity, &replay.run(&mut cache)?));
        }
    }
    Ok(())
}

/// `policy=… capacity=… accesses=… hits=… hit_ratio=…` (and `prefetches=…`
/// for a prefetching policy).
fn line(policy: PolicyKind, capacity: u32, c: &Counters) -> String {
    let mut line = format!(
        "policy={policy} capacity={capacity} accesses={} hits={} hit_ratio={:.4}",
        c.accesses,
        c.hits,
        c.hit_ratio()
    );
    if policy == PolicyKind::Lookahead {
        line.push_str(&format!(" prefetches={}", c.prefetches));
    }
    line
}
