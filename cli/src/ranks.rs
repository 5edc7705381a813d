//! Running one rank of a shard set (`seam compile --tensor-parallel N`)
//! under `mpirun`, with a `seam` built with `--features mpi`: every rank
//! opens its own bundle (`OUT.rankR.seamb` for `OUT`), all ranks agree that
//! they run one set — its identity, rank count and their ranks — before any
//! work (one failing rank fails them all, none hangs), and rank 0 alone
//! prints and writes files. Every reduction waits at most 60 s for the
//! other ranks (`SEAM_COLLECTIVE_TIMEOUT_S` to change it), then fails; a
//! rank that fails ends them all ([`abort_all`]). Under `seam serve`, rank
//! 0 serves and the others follow its engine, kept waiting while it idles
//! ([`keep_alive_interval`]).

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use seam_bundle::files::rank_path;
use seam_runtime::bundle::Bundle;
use seam_runtime::collective::Communicator;

use super::weight_dirs::WeightDirArgs;
use super::CliError;

/// The ranks this process runs among (set once, by [`init`]).
static WORLD: OnceLock<Arc<dyn Communicator>> = OnceLock::new();

/// The same ranks, as MPI's (for [`abort_all`]).
#[cfg(feature = "mpi")]
static MPI_WORLD: OnceLock<Arc<seam_runtime::collective::MpiWorld>> = OnceLock::new();

/// How long a reduction waits for the other ranks: 60 s, or
/// `SEAM_COLLECTIVE_TIMEOUT_S` seconds.
pub fn collective_timeout() -> Duration {
    let secs = std::env::var("SEAM_COLLECTIVE_TIMEOUT_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(secs)
}

/// How often an idle `seam serve` on rank 0 tells the other ranks it is
/// alive: a quarter of [`collective_timeout`], so that a follower waiting
/// for the next step never times out while rank 0 lives, and times out
/// when it does not.
pub fn keep_alive_interval() -> Duration {
    (collective_timeout() / 4).max(Duration::from_millis(10))
}

/// Joins the ranks `mpirun` started, when this process is one of them and
/// `seam` was built with MPI; returns what must live until the command ends
/// (MPI is finalised when it is dropped). Ranks other than 0 print nothing.
#[cfg(feature = "mpi")]
pub fn init() -> Option<impl Drop> {
    let launched = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"]
        .iter()
        .any(|v| std::env::var_os(v).is_some());
    if !launched {
        return None;
    }
    let (universe, world) = seam_runtime::collective::MpiWorld::init(collective_timeout())?;
    if world.rank() != 0 {
        silence_stdout();
    }
    let world = Arc::new(world);
    let _ = WORLD.set(Arc::clone(&world) as Arc<dyn Communicator>);
    let _ = MPI_WORLD.set(world);
    Some(universe)
}

/// Under `mpirun`, with other ranks: ends every rank with exit status
/// `code` (`MPI_Abort`), so that none waits for this failed one in a
/// reduction or in MPI's finalisation. Returns otherwise.
#[cfg(feature = "mpi")]
pub fn abort_all(code: u8) {
    if let Some(world) = MPI_WORLD.get().filter(|w| w.size() > 1) {
        world.abort(code.into());
    }
}

/// Without MPI there are no other ranks to end.
#[cfg(not(feature = "mpi"))]
pub fn abort_all(_code: u8) {}

/// Without MPI this process is never one of several ranks.
#[cfg(not(feature = "mpi"))]
pub fn init() -> Option<()> {
    None
}

/// Points this process's standard output at `/dev/null`.
#[cfg(all(feature = "mpi", unix))]
fn silence_stdout() {
    use std::os::fd::AsRawFd;
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        // SAFETY: duplicating an open descriptor onto stdout's.
        unsafe {
            libc::dup2(null.as_raw_fd(), libc::STDOUT_FILENO);
        }
    }
}

#[cfg(all(feature = "mpi", not(unix)))]
fn silence_stdout() {}

/// Refuses `--routing-trace` among several ranks: each rank's routing is
/// read after its expert-parallel layers map every expert id into the
/// rank's own stack, so the trace would hold rank-local ids, not the
/// model's.
pub fn refuse_routing_trace(trace: Option<&Path>) -> Result<(), CliError> {
    match WORLD.get() {
        Some(world) if trace.is_some() && world.size() > 1 => Err(CliError::Usage(
            "--routing-trace cannot be recorded under mpirun: a rank reads its experts' \
             rank-local ids, not the model's (record the trace on one device)"
                .into(),
        )),
        _ => Ok(()),
    }
}

/// Whether this process writes output files (rank 0, or a lone process).
pub fn is_leader() -> bool {
    WORLD.get().is_none_or(|w| w.rank() == 0)
}

/// Opens the bundle this process runs — `path`, or under `mpirun` this
/// rank's file of the set named `path` — and, among ranks, checks with every
/// other rank that they run one shard set; returns the ranks to run with
/// (`None` for a lone process).
pub fn open_bundle(
    weights: &WeightDirArgs,
    path: &Path,
) -> Result<(Bundle, Option<Arc<dyn Communicator>>), CliError> {
    let Some(world) = WORLD.get() else {
        return Ok((weights.open(path)?, None));
    };
    let rank = world.rank() as u32;
    let file = if path.exists() {
        path.to_path_buf()
    } else {
        rank_path(path, rank)
    };
    let opened = weights.open(&file).map_err(CliError::from).and_then(|b| {
        match b.manifest().shard.clone() {
            Some(s) if s.ranks as usize == world.size() && s.rank == rank => Ok((b, s.set)),
            Some(s) => Err(CliError::Input(format!(
                "`{}` is rank {} of a {}-rank shard set, but this is rank {rank} of {} \
                 (run it with `mpirun -np {}`)",
                file.display(),
                s.rank,
                s.ranks,
                world.size(),
                s.ranks
            ))),
            None => Err(CliError::Input(format!(
                "`{}` is not a shard set's rank (compile with --tensor-parallel {})",
                file.display(),
                world.size()
            ))),
        }
    });
    // Every rank takes part, failed or not: [ok, set bytes…]. A rank
    // that failed has its own error; the others learn that one did.
    let mut mine = vec![0f32; 5];
    if let Ok((_, set)) = &opened {
        mine[0] = 1.0;
        for (k, b) in set.to_le_bytes().iter().enumerate() {
            mine[1 + k] = f32::from(*b);
        }
    }
    let sums = world
        .start_sum(mine.clone())
        .and_then(|p| p.wait())
        .map_err(seam_runtime::Error::from)?;
    let (bundle, _) = opened?;
    let n = world.size() as f32;
    if sums[0] != n {
        return Err(CliError::Input(format!(
            "{} of {} ranks could not open their shard (see their errors)",
            world.size() - sums[0] as usize,
            world.size()
        )));
    }
    if sums[1..].iter().zip(&mine[1..]).any(|(s, m)| *s != m * n) {
        return Err(CliError::Input(
            "the ranks' bundles belong to different shard sets (compile them together with one --tensor-parallel)"
                .into(),
        ));
    }
    Ok((bundle, Some(Arc::clone(world))))
}
