//! The device: creation with the features Seam uses, limits, error scopes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use seam_core::{DeviceClass, DeviceLimits};

use super::adapter::{pick_adapter, AdapterSummary, DeviceOptions};
use crate::error::Error;

/// A device ready to run kernels: adapter, device, queue and what they support.
///
/// Thread safety: `Send + Sync`; wgpu orders the submissions of several
/// threads on its one queue.
pub struct Gpu {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) summary: AdapterSummary,
    pub(crate) limits: wgpu::Limits,
    pub(crate) features: wgpu::Features,
    pub(crate) subgroup_size: Option<u32>,
    lost: Arc<Mutex<Option<String>>>,
    uncaptured: Arc<Mutex<Vec<String>>>,
    read_back: AtomicU64,
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
    /// adapter's limits, plus `TIMESTAMP_QUERY`, `TIMESTAMP_QUERY_INSIDE_PASSES`,
    /// `SHADER_F16` and `SUBGROUP` where offered.
    pub fn new(options: &DeviceOptions) -> Result<Gpu, Error> {
        let adapter = pick_adapter(options)?;
        let info = adapter.get_info();
        let offered = adapter.features();
        let wanted = wgpu::Features::TIMESTAMP_QUERY
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES
            | wgpu::Features::SHADER_F16
            | wgpu::Features::SUBGROUP;
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
            Error::RequestDevice {
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
            read_back: AtomicU64::new(0),
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

    /// Bytes copied back to the host so far by [`Gpu::read`] and
    /// [`Gpu::read_range`] (what a run's read-back costs).
    pub fn bytes_read_back(&self) -> u64 {
        self.read_back.load(Ordering::Relaxed)
    }

    /// Counts `bytes` copied back to the host.
    pub(super) fn count_read_back(&self, bytes: u64) {
        self.read_back.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Whether GPU timestamps are available ([`super::Recorded`] timing).
    pub fn has_timestamps(&self) -> bool {
        self.features.contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// Whether timestamps can also be written between the dispatches of one
    /// compute pass (each dispatch timed where it runs, for
    /// [`crate::Timing::PerDispatch`]).
    pub fn has_timestamps_inside_passes(&self) -> bool {
        self.has_timestamps()
            && self
                .features
                .contains(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES)
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
    pub fn check(&self) -> Result<(), Error> {
        if let Some(reason) = self.lost.lock().ok().and_then(|g| g.clone()) {
            return Err(Error::DeviceLost(reason));
        }
        if let Some(msg) = self.uncaptured.lock().ok().and_then(|mut v| v.pop()) {
            return Err(Error::Validation {
                context: "an earlier operation".into(),
                message: msg,
            });
        }
        Ok(())
    }

    /// Runs `f` inside out-of-memory, validation and internal error scopes and
    /// turns whatever they caught into an error.
    pub(crate) fn scoped<T>(&self, context: &str, f: impl FnOnce() -> T) -> Result<T, Error> {
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
            return Err(Error::from_wgpu(context, e));
        }
        self.check()?;
        Ok(out)
    }

    /// Blocks until the device has finished all submitted work.
    pub fn wait(&self) -> Result<(), Error> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Readback {
                label: "device".into(),
                message: e.to_string(),
            })?;
        self.check()
    }
}
