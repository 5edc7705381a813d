//! Adapter selection and device creation.

use std::sync::{Arc, Mutex};

use seam_core::{DeviceClass, DeviceLimits};

use crate::error::RuntimeError;

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
    fn of(info: &wgpu::AdapterInfo) -> Self {
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

/// A device ready to run kernels: adapter, device, queue and what they support.
pub struct Gpu {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) summary: AdapterSummary,
    pub(crate) limits: wgpu::Limits,
    pub(crate) features: wgpu::Features,
    pub(crate) subgroup_size: Option<u32>,
    lost: Arc<Mutex<Option<String>>>,
    uncaptured: Arc<Mutex<Vec<String>>>,
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu")
            .field("adapter", &self.summary)
            .finish()
    }
}

impl Gpu {
    /// Picks an adapter per `options` and creates a device with all of the
    /// adapter's limits, plus `TIMESTAMP_QUERY`, `SHADER_F16` and `SUBGROUP` where offered.
    pub fn new(options: &DeviceOptions) -> Result<Gpu, RuntimeError> {
        let backends = options.backends.with_env();
        let inst = instance(options.backends);
        let adapters = pollster::block_on(inst.enumerate_adapters(backends));
        let filter = options
            .adapter_name_contains
            .as_ref()
            .map(|s| s.to_lowercase());
        let adapter = adapters
            .into_iter()
            .filter(|a| match &filter {
                Some(f) => a.get_info().name.to_lowercase().contains(f),
                None => true,
            })
            .min_by_key(|a| rank(&a.get_info(), options.power_preference))
            .ok_or_else(|| RuntimeError::NoAdapter {
                backends: format!("{backends:?}"),
                filter: options.adapter_name_contains.clone(),
            })?;
        let info = adapter.get_info();
        let offered = adapter.features();
        let wanted =
            wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SHADER_F16 | wgpu::Features::SUBGROUP;
        let features = offered & wanted;
        let limits = adapter.limits();
        let desc = wgpu::DeviceDescriptor {
            label: Some("seam"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc)).map_err(|e| {
            RuntimeError::RequestDevice {
                adapter: info.name.clone(),
                message: e.to_string(),
            }
        })?;
        let lost = Arc::new(Mutex::new(None));
        let lost_cb = Arc::clone(&lost);
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut slot) = lost_cb.lock() {
                *slot = Some(format!("{reason:?}: {message}"));
            }
        });
        let uncaptured = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&uncaptured);
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            tracing::error!("uncaptured wgpu error: {e}");
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        // Kernels that rely on the subgroup size need it to be fixed.
        let subgroup_size = features
            .contains(wgpu::Features::SUBGROUP)
            .then_some(info.subgroup_min_size)
            .filter(|&s| s > 0 && s == info.subgroup_max_size);
        tracing::info!("seam: using adapter {}", AdapterSummary::of(&info));
        Ok(Gpu {
            device,
            queue,
            summary: AdapterSummary::of(&info),
            limits,
            features,
            subgroup_size,
            lost,
            uncaptured,
        })
    }

    /// The adapter in use.
    pub fn adapter(&self) -> &AdapterSummary {
        &self.summary
    }

    /// The device's limits.
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    /// The underlying wgpu device (for callers that need more than Seam offers).
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// The underlying wgpu queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// Whether GPU timestamps are available ([`crate::Recorded`] timing).
    pub fn has_timestamps(&self) -> bool {
        self.features.contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// The limits the kernel generators should respect on this device.
    pub fn shader_limits(&self) -> DeviceLimits {
        let l = &self.limits;
        DeviceLimits {
            class: match self.summary.device_type {
                wgpu::DeviceType::Cpu => DeviceClass::Cpu,
                wgpu::DeviceType::DiscreteGpu => DeviceClass::DiscreteGpu,
                wgpu::DeviceType::IntegratedGpu => DeviceClass::IntegratedGpu,
                _ => DeviceClass::Other,
            },
            max_invocations_per_workgroup: l.max_compute_invocations_per_workgroup,
            max_workgroup_size: [
                l.max_compute_workgroup_size_x,
                l.max_compute_workgroup_size_y,
                l.max_compute_workgroup_size_z,
            ],
            max_workgroups_per_dimension: l.max_compute_workgroups_per_dimension,
            workgroup_storage_bytes: l.max_compute_workgroup_storage_size,
            subgroup_size: self.subgroup_size,
            max_storage_buffer_binding_size: l.max_storage_buffer_binding_size,
            max_storage_buffers_per_stage: l.max_storage_buffers_per_shader_stage,
            shader_f16: self.features.contains(wgpu::Features::SHADER_F16),
            min_storage_buffer_offset_alignment: l.min_storage_buffer_offset_alignment,
        }
    }

    /// Fails if the device was lost or an error escaped the error scopes.
    pub fn check(&self) -> Result<(), RuntimeError> {
        if let Some(reason) = self.lost.lock().ok().and_then(|g| g.clone()) {
            return Err(RuntimeError::DeviceLost(reason));
        }
        if let Some(msg) = self.uncaptured.lock().ok().and_then(|mut v| v.pop()) {
            return Err(RuntimeError::Validation {
                context: "an earlier operation".into(),
                message: msg,
            });
        }
        Ok(())
    }

    /// Runs `f` inside out-of-memory, validation and internal error scopes and
    /// turns whatever they caught into an error.
    pub(crate) fn scoped<T>(
        &self,
        context: &str,
        f: impl FnOnce() -> T,
    ) -> Result<T, RuntimeError> {
        self.check()?;
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let val = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let internal = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let out = f();
        let errors = [
            pollster::block_on(internal.pop()),
            pollster::block_on(val.pop()),
            pollster::block_on(oom.pop()),
        ];
        if let Some(e) = errors.into_iter().flatten().next() {
            return Err(RuntimeError::from_wgpu(context, e));
        }
        self.check()?;
        Ok(out)
    }

    /// Blocks until the device has finished all submitted work.
    pub fn wait(&self) -> Result<(), RuntimeError> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| RuntimeError::Readback {
                label: "device".into(),
                message: e.to_string(),
            })?;
        self.check()
    }
}
