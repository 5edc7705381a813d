//! Reductions across tensor-parallel ranks. A bundle compiled for one rank of
//! a shard set records its `all_reduce`s ([`seam_bundle::Collective`]); a
//! session given a [`Communicator`] ([`crate::Session::set_communicator`])
//! runs its dispatches in parts around them: at a reduction's start it reads
//! this rank's partial back and hands it to the communicator, which sums it
//! across ranks while the dispatches that do not read it run; at its wait it
//! writes the sum back. Without a communicator (one device) the reductions
//! are the identity and cost nothing.
//!
//! - [`Communicator`]: rank, size, a non-blocking sum, and a broadcast from
//!   rank 0 built from sums (how `seam serve` under `mpirun` sends each
//!   engine step to the other ranks);
//! - [`LocalGroup`]: the ranks of one process (threads), each with its own
//!   device — for tests and for several devices of one machine;
//! - `MpiWorld` (feature `mpi`): the ranks `mpirun` started, across
//!   processes and hosts.

mod broadcast;
mod communicator;
mod local;
#[cfg(feature = "mpi")]
mod mpi_world;

pub use broadcast::MAX_BROADCAST;
pub use communicator::{CollectiveError, CollectiveStats, Communicator, PendingSum};
pub use local::LocalGroup;
#[cfg(feature = "mpi")]
pub use mpi_world::MpiWorld;
