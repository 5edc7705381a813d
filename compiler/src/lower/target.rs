//! The device a bundle is compiled for: its limits choose the kernel variants.

use std::str::FromStr;

use seam_shaders::{DeviceClass, DeviceLimits};

/// What the compiler specialises kernels for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Limits and class of the device.
    pub limits: DeviceLimits,
    /// Alignment of storage-buffer binding offsets.
    pub offset_align: u64,
}

/// A named target on the command line.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TargetKind {
    /// The default adapter of this machine, read at compile time.
    Local,
    /// Mesa's lavapipe (CPU) with its limits.
    Lavapipe,
    /// A discrete GPU with common limits (shared-memory tiled kernels).
    Gpu,
}

impl FromStr for TargetKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "local" => Ok(TargetKind::Local),
            "lavapipe" | "cpu" => Ok(TargetKind::Lavapipe),
            "gpu" => Ok(TargetKind::Gpu),
            other => Err(format!(
                "unknown target `{other}` (expected local, lavapipe or gpu)"
            )),
        }
    }
}

impl Target {
    /// Lavapipe's limits.
    pub fn lavapipe() -> Target {
        Target {
            limits: DeviceLimits::lavapipe(),
            offset_align: 256,
        }
    }

    /// A discrete GPU with limits every current desktop GPU meets.
    pub fn gpu() -> Target {
        Target {
            limits: DeviceLimits {
                class: DeviceClass::DiscreteGpu,
                ..DeviceLimits::default()
            },
            offset_align: 256,
        }
    }

    /// The limits of a device opened with the runtime.
    pub fn from_gpu(gpu: &seam_runtime::device::Gpu) -> Target {
        Target {
            limits: gpu.shader_limits(),
            offset_align: u64::from(gpu.limits().min_storage_buffer_offset_alignment.max(4)),
        }
    }
}
