//! Adapter listing and selection.

use crate::error::Error;

/// How to pick an adapter.
#[derive(Clone, Debug)]
pub struct DeviceOptions {
    /// Backends to consider; the `WGPU_BACKEND` environment variable (e.g.
    /// `vulkan`, `vulkan,gl`) overrides this when set.
    pub backends: wgpu::Backends,
    /// Among adapters of the preferred backend, whether to favour discrete
    /// (`HighPerformance`) or integrated (`LowPower`) GPUs.
    pub power_preference: wgpu::PowerPreference,
    /// Only adapters whose name contains this (case-insensitive).
    pub adapter_name_contains: Option<String>,
}

impl Default for DeviceOptions {
    /// All backends (Vulkan preferred), high performance, any name.
    fn default() -> Self {
        DeviceOptions {
            backends: wgpu::Backends::all(),
            power_preference: wgpu::PowerPreference::HighPerformance,
            adapter_name_contains: None,
        }
    }
}

/// A description of one adapter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterSummary {
    /// The adapter's name (`llvmpipe (LLVM 15.0.6, 256 bits)`).
    pub name: String,
    /// The backend (`Vulkan`, `Gl`, …).
    pub backend: wgpu::Backend,
    /// Discrete, integrated, CPU, …
    pub device_type: wgpu::DeviceType,
    /// The driver's name.
    pub driver: String,
    /// The driver's version information.
    pub driver_info: String,
}

impl AdapterSummary {
    pub(super) fn of(info: &wgpu::AdapterInfo) -> Self {
        AdapterSummary {
            name: info.name.clone(),
            backend: info.backend,
            device_type: info.device_type,
            driver: info.driver.clone(),
            driver_info: info.driver_info.clone(),
        }
    }
}

impl std::fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({:?}, {:?}, {} {})",
            self.name, self.backend, self.device_type, self.driver, self.driver_info
        )
    }
}

fn instance(backends: wgpu::Backends) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    wgpu::Instance::new(desc.with_env())
}

/// Every adapter the given backends (or `WGPU_BACKEND`) expose.
pub fn list_adapters(backends: wgpu::Backends) -> Vec<AdapterSummary> {
    let inst = instance(backends);
    pollster::block_on(inst.enumerate_adapters(backends.with_env()))
        .iter()
        .map(|a| AdapterSummary::of(&a.get_info()))
        .collect()
}

/// Ranks an adapter: lower is better. Vulkan first, then the other native
/// back ends, GL last; within a back end, by device type per the preference.
fn rank(info: &wgpu::AdapterInfo, pref: wgpu::PowerPreference) -> (u8, u8) {
    let backend = match info.backend {
        wgpu::Backend::Vulkan => 0,
        wgpu::Backend::Metal | wgpu::Backend::Dx12 => 1,
        wgpu::Backend::Gl => 3,
        _ => 2,
    };
    let (first, second) = match pref {
        wgpu::PowerPreference::LowPower => (
            wgpu::DeviceType::IntegratedGpu,
            wgpu::DeviceType::DiscreteGpu,
        ),
        _ => (
            wgpu::DeviceType::DiscreteGpu,
            wgpu::DeviceType::IntegratedGpu,
        ),
    };
    let ty = match info.device_type {
        t if t == first => 0,
        t if t == second => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        _ => 4,
    };
    (backend, ty)
}

/// The adapter `options` pick: among those matching the name filter, the best
/// ranked (Vulkan first, then the other native back ends, GL last).
pub(super) fn pick_adapter(options: &DeviceOptions) -> Result<wgpu::Adapter, Error> {
    let backends = options.backends.with_env();
    let inst = instance(options.backends);
    let adapters = pollster::block_on(inst.enumerate_adapters(backends));
    let filter = options
        .adapter_name_contains
        .as_ref()
        .map(|s| s.to_lowercase());
    adapters
        .into_iter()
        .filter(|a| match &filter {
            Some(f) => a.get_info().name.to_lowercase().contains(f),
            None => true,
        })
        .min_by_key(|a| rank(&a.get_info(), options.power_preference))
        .ok_or_else(|| Error::NoAdapter {
            backends: format!("{backends:?}"),
            filter: options.adapter_name_contains.clone(),
        })
}
