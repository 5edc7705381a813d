//! What the kernels may assume about a device, as plain data.
//!
//! The runtime reads these from the wgpu adapter at start-up (see
//! `seam_runtime::device::Gpu::shader_limits`); the compiler may also build them by hand to
//! target a device it cannot see. Generators never query a device themselves.

/// The kind of device, which decides the kernel variants ([`KernelProfile`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum DeviceClass {
    /// A CPU implementation (lavapipe, SwiftShader, WARP): invocations are SIMD
    /// lanes, workgroup barriers are expensive, caches are large.
    Cpu,
    /// A discrete GPU.
    DiscreteGpu,
    /// An integrated GPU.
    IntegratedGpu,
    /// Unknown or virtual.
    Other,
}

/// Device limits and capabilities the generators respect.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DeviceLimits {
    /// The kind of device.
    pub class: DeviceClass,
    /// Maximum invocations in one workgroup.
    pub max_invocations_per_workgroup: u32,
    /// Maximum workgroup size along x, y and z.
    pub max_workgroup_size: [u32; 3],
    /// Maximum workgroups per dispatch dimension.
    pub max_workgroups_per_dimension: u32,
    /// Bytes of workgroup (shared) memory.
    pub workgroup_storage_bytes: u32,
    /// Subgroup (SIMD width) size, when subgroup operations are available.
    pub subgroup_size: Option<u32>,
    /// Largest storage-buffer binding in bytes; larger weights are split across
    /// bindings (`seam_shaders::WeightSplit`).
    pub max_storage_buffer_binding_size: u64,
    /// Storage buffers one shader stage may bind.
    pub max_storage_buffers_per_stage: u32,
    /// Whether `f16` is supported in shaders.
    pub shader_f16: bool,
    /// Alignment, in bytes, of a storage binding's offset into its buffer.
    pub min_storage_buffer_offset_alignment: u32,
}

impl Default for DeviceLimits {
    /// The WebGPU default limits: every conforming device meets them.
    fn default() -> Self {
        DeviceLimits {
            class: DeviceClass::Other,
            max_invocations_per_workgroup: 256,
            max_workgroup_size: [256, 256, 64],
            max_workgroups_per_dimension: 65535,
            workgroup_storage_bytes: 16384,
            subgroup_size: None,
            max_storage_buffer_binding_size: 128 << 20,
            max_storage_buffers_per_stage: 8,
            shader_f16: false,
            min_storage_buffer_offset_alignment: 256,
        }
    }
}

impl DeviceLimits {
    /// Limits of Mesa's lavapipe (Mesa 25, AVX2), as measured on the development
    /// machines; useful for tests and for compiling for a CPU-only target.
    pub fn lavapipe() -> Self {
        DeviceLimits {
            class: DeviceClass::Cpu,
            max_invocations_per_workgroup: 1024,
            max_workgroup_size: [1024, 1024, 1024],
            max_workgroups_per_dimension: 65535,
            workgroup_storage_bytes: 32768,
            subgroup_size: Some(8),
            max_storage_buffer_binding_size: 128 << 20,
            max_storage_buffers_per_stage: 8,
            shader_f16: true,
            min_storage_buffer_offset_alignment: 256,
        }
    }

    /// The kernel variants that suit this device.
    pub fn profile(&self) -> KernelProfile {
        match self.class {
            DeviceClass::Cpu => KernelProfile::CpuLike,
            _ => KernelProfile::GpuTiled,
        }
    }

    /// The largest 1-D workgroup no larger than `want` that the device allows.
    pub fn clamp_workgroup(&self, want: u32) -> u32 {
        want.min(self.max_invocations_per_workgroup)
            .min(self.max_workgroup_size[0])
            .max(1)
    }
}

/// Which family of kernel variants to generate.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum KernelProfile {
    /// For CPU-like devices: no barriers, workgroup-uniform loads of the left
    /// operand, several output rows per workgroup held in registers.
    CpuLike,
    /// For GPUs: shared-memory tiles with barriers, 2-D register blocks.
    GpuTiled,
}
