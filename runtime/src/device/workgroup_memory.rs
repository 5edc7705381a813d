//! A kernel's `var<workgroup>` memory, checked against the device's limit
//! before its pipeline is created: drivers do not all refuse an oversized
//! declaration themselves (lavapipe allocates it, gigabytes, then crashes).

use seam_core::Kernel;
use wgpu::naga;

use crate::error::Error;

/// The bytes of `var<workgroup>` memory `kernel`'s WGSL declares, summed over
/// every workgroup variable of the module (at least what any one entry point
/// uses). Fails closed: a source that does not parse, or a variable whose size
/// cannot be computed, is an error rather than a guess.
pub(super) fn workgroup_bytes(kernel: &Kernel) -> Result<u64, Error> {
    let module = naga::front::wgsl::parse_str(&kernel.wgsl).map_err(|e| Error::Shader {
        kernel: kernel.name.clone(),
        message: e.emit_to_string(&kernel.wgsl),
    })?;
    let mut total = 0u64;
    for (_, var) in module.global_variables.iter() {
        if var.space != naga::AddressSpace::WorkGroup {
            continue;
        }
        let size = module.types[var.ty]
            .inner
            .try_size(module.to_ctx())
            .ok_or_else(|| Error::Shader {
                kernel: kernel.name.clone(),
                message: format!(
                    "workgroup variable `{}` is too large to size",
                    var.name.as_deref().unwrap_or("?")
                ),
            })?;
        total = total.saturating_add(u64::from(size));
    }
    Ok(total)
}

/// Refuses `kernel` when its workgroup memory exceeds `limit` bytes (the
/// device's `max_compute_workgroup_storage_size`).
pub(super) fn check_workgroup_memory(kernel: &Kernel, limit: u32) -> Result<(), Error> {
    let bytes = workgroup_bytes(kernel)?;
    if bytes > u64::from(limit) {
        return Err(Error::WorkgroupMemory {
            kernel: kernel.name.clone(),
            bytes,
            limit,
        });
    }
    Ok(())
}
