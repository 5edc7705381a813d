//! A kernel's `var<workgroup>` memory, checked against the device's limit
//! before its pipeline is created: drivers do not all refuse an oversized
//! declaration themselves (lavapipe allocates it, gigabytes, then crashes).

use seam_core::Kernel;
use wgpu::naga;

use crate::error::Error;

/// Refuses `kernel` when the `var<workgroup>` variables of its WGSL, summed
/// over the module (at least what any one entry point uses), exceed `limit`
/// bytes (the device's `max_compute_workgroup_storage_size`). Fails closed: a
/// variable too large to size is an error. A source that does not parse is
/// left to `create_shader_module`, which parses with this same naga and
/// reports a validation error, so nothing of it reaches the driver.
pub(super) fn check_workgroup_memory(kernel: &Kernel, limit: u32) -> Result<(), Error> {
    let Ok(module) = naga::front::wgsl::parse_str(&kernel.wgsl) else {
        return Ok(());
    };
    let mut bytes = 0u64;
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
        bytes = bytes.saturating_add(u64::from(size));
    }
    if bytes > u64::from(limit) {
        return Err(Error::WorkgroupMemory {
            kernel: kernel.name.clone(),
            bytes,
            limit,
        });
    }
    Ok(())
}
