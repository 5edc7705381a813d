//! [`MpiWorld`]: the ranks `mpirun` started, as a [`Communicator`] (feature
//! `mpi`): `MPI_COMM_WORLD`, each sum a non-blocking `MPI_Iallreduce` that
//! [`PendingSum::wait`] polls with `MPI_Test` until it completes or the
//! timeout passes.

use std::time::{Duration, Instant};

use mpi::ffi;
use mpi::topology::Communicator as _;

use super::{CollectiveError, Communicator, PendingSum};

/// This process's rank of `MPI_COMM_WORLD`. MPI stays initialised while the
/// [`mpi::environment::Universe`] lives: keep it for as long as any session
/// uses the world.
#[derive(Debug)]
pub struct MpiWorld {
    rank: usize,
    size: usize,
    timeout: Duration,
}

impl MpiWorld {
    /// Initialises MPI (any thread may then reduce, one at a time) and
    /// returns the universe with this rank; each reduction waits at most
    /// `timeout` for the other ranks. `None` when MPI was initialised
    /// already or refused the thread level.
    pub fn init(timeout: Duration) -> Option<(mpi::environment::Universe, MpiWorld)> {
        let (universe, level) =
            mpi::initialize_with_threading(mpi::environment::Threading::Serialized)?;
        if level < mpi::environment::Threading::Serialized {
            return None;
        }
        let world = universe.world();
        let me = MpiWorld {
            rank: world.rank() as usize,
            size: world.size() as usize,
            timeout,
        };
        Some((universe, me))
    }

    /// Ends every rank's process with exit status `code` (`MPI_Abort`):
    /// what a rank that failed does, so that no other rank waits for it, in
    /// a reduction or in `MPI_Finalize` (which waits for every rank).
    pub fn abort(&self, code: i32) -> ! {
        // SAFETY: MPI is initialised while this rank exists.
        unsafe {
            ffi::MPI_Abort(ffi::RSMPI_COMM_WORLD, code);
        }
        std::process::exit(code)
    }
}

impl Communicator for MpiWorld {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn start_sum(&self, partial: Vec<f32>) -> Result<Box<dyn PendingSum>, CollectiveError> {
        let count = i32::try_from(partial.len()).map_err(|_| {
            CollectiveError::Broken(format!("{} elements exceed MPI's count", partial.len()))
        })?;
        let mut pending = Box::new(MpiPending {
            send: partial.into_boxed_slice(),
            recv: vec![0f32; count as usize].into_boxed_slice(),
            // SAFETY: reading an extern constant of the MPI library.
            request: unsafe { ffi::RSMPI_REQUEST_NULL },
            rank: self.rank,
            timeout: self.timeout,
        });
        // SAFETY: both buffers are heap slices of `count` f32 owned by
        // `pending`, which stays alive (and waits in `Drop`) until the
        // request completes.
        let rc = unsafe {
            ffi::MPI_Iallreduce(
                pending.send.as_ptr().cast(),
                pending.recv.as_mut_ptr().cast(),
                count,
                ffi::RSMPI_FLOAT,
                ffi::RSMPI_SUM,
                ffi::RSMPI_COMM_WORLD,
                &mut pending.request,
            )
        };
        if rc != ffi::MPI_SUCCESS as i32 {
            return Err(CollectiveError::Broken(format!(
                "MPI_Iallreduce failed ({rc})"
            )));
        }
        Ok(pending)
    }
}

/// An `MPI_Iallreduce` under way, owning its buffers.
struct MpiPending {
    send: Box<[f32]>,
    recv: Box<[f32]>,
    request: ffi::MPI_Request,
    rank: usize,
    timeout: Duration,
}

// SAFETY: the request handle and the buffers are only touched by the thread
// owning the pending sum; MPI is initialised with `Serialized`.
unsafe impl Send for MpiPending {}

impl MpiPending {
    /// Whether the request completed (polls once).
    fn done(&mut self) -> Result<bool, CollectiveError> {
        let mut flag = 0;
        // SAFETY: `request` came from `MPI_Iallreduce` (or is null, which
        // tests complete); the status is ignored.
        let rc = unsafe { ffi::MPI_Test(&mut self.request, &mut flag, ffi::RSMPI_STATUS_IGNORE) };
        if rc != ffi::MPI_SUCCESS as i32 {
            return Err(CollectiveError::Broken(format!("MPI_Test failed ({rc})")));
        }
        Ok(flag != 0)
    }
}

impl PendingSum for MpiPending {
    fn wait(mut self: Box<Self>) -> Result<Vec<f32>, CollectiveError> {
        let deadline = Instant::now() + self.timeout;
        while !self.done()? {
            if Instant::now() >= deadline {
                // The request may still write `recv`: its buffers are leaked
                // rather than freed under it; the group cannot go on.
                let (rank, timeout) = (self.rank, self.timeout);
                std::mem::forget(self);
                return Err(CollectiveError::Timeout { rank, timeout });
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        Ok(std::mem::take(&mut self.recv).into_vec())
    }
}

impl Drop for MpiPending {
    fn drop(&mut self) {
        // A sum never waited for still owns its buffers until it completes.
        // SAFETY: as in `done`.
        unsafe {
            ffi::MPI_Wait(&mut self.request, ffi::RSMPI_STATUS_IGNORE);
        }
    }
}
