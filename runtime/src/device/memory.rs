//! How much device memory the runtime holds: what soak tests and tools sample.

use super::Gpu;

/// Device memory held through wgpu's allocator.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct DeviceMemory {
    /// Bytes in live allocations (buffers and other resources).
    pub allocated: u64,
    /// Bytes of the memory blocks the allocator holds from the driver
    /// (live allocations plus free space kept for reuse).
    pub reserved: u64,
}

impl Gpu {
    /// Device memory in use now, from wgpu's allocator report; `None` where
    /// the backend does not report it (Vulkan and DX12 do). Resources dropped
    /// by the caller are freed once the device has finished with them: call
    /// [`Gpu::wait`] first for a settled figure.
    pub fn memory(&self) -> Option<DeviceMemory> {
        self.device
            .generate_allocator_report()
            .map(|report| DeviceMemory {
                allocated: report.total_allocated_bytes,
                reserved: report.total_reserved_bytes,
            })
    }
}
