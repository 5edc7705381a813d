//! Bounding the work of one dispatch: the total workgroups of its grid.

use seam_core::{Kernel, Launch};

use super::gpu::Gpu;
use crate::error::Error;

/// The most workgroups one dispatch may launch (2^24 = 16,777,216, x·y·z). A
/// real kernel's grid at the dims' bounds stays far below (an element-wise
/// kernel over 8,192 × 8,192 values at 64 per workgroup is 2^20); a grid of
/// 65,535 × 65,535 would keep a software device busy for hours, and some
/// drivers have no watchdog to stop it.
pub const MAX_WORKGROUPS_PER_DISPATCH: u64 = 1 << 24;

/// `kernel`'s launch at `sizes`, with its grid checked against the device's
/// per-dimension limit and against [`MAX_WORKGROUPS_PER_DISPATCH`].
pub(super) fn bounded_launch(
    gpu: &Gpu,
    kernel: &Kernel,
    sizes: &[(&str, u32)],
) -> Result<Launch, Error> {
    let launch = kernel.launch(sizes, gpu.limits.max_compute_workgroups_per_dimension)?;
    let workgroups = launch
        .grid
        .iter()
        .fold(1u64, |n, &g| n.saturating_mul(u64::from(g)));
    if workgroups > MAX_WORKGROUPS_PER_DISPATCH {
        return Err(Error::GridBudget {
            kernel: kernel.name.clone(),
            grid: launch.grid,
            workgroups,
            limit: MAX_WORKGROUPS_PER_DISPATCH,
        });
    }
    Ok(launch)
}
