//! Recording many dispatches into one command buffer and one compute pass.
//!
//! A [`Batch`] collects dispatches (pipeline, buffers, sizes); [`Batch::finish`]
//! packs every dispatch's `Params` into one uniform buffer (one slice per
//! dispatch, aligned as the device requires) and creates the bind groups once,
//! giving a [`Recorded`] that can be submitted any number of times — each
//! submission is one command buffer holding one compute pass — and whose sizes
//! can be changed between submissions ([`Recorded::update`]).

use std::time::Duration;

use seam_core::{Kernel, Launch};

use crate::buffers::BufferView;
use crate::device::Gpu;
use crate::error::RuntimeError;
use crate::pipeline::KernelPipeline;

struct Pending {
    pipeline: KernelPipeline,
    buffers: Vec<(wgpu::Buffer, u64, Option<u64>)>,
    launch: Launch,
}

/// Dispatches being collected for one submission.
pub struct Batch<'g> {
    gpu: &'g Gpu,
    pending: Vec<Pending>,
}

struct Item {
    pipeline: KernelPipeline,
    bind_group: wgpu::BindGroup,
    grid: [u32; 3],
    uniform_offset: Option<u64>,
}

/// A finished batch: bind groups and parameters on the device, ready to submit.
pub struct Recorded {
    items: Vec<Item>,
    uniform: Option<wgpu::Buffer>,
}

impl Gpu {
    /// Starts a batch of dispatches.
    pub fn batch(&self) -> Batch<'_> {
        Batch {
            gpu: self,
            pending: Vec::new(),
        }
    }

    /// Records, submits and waits for a single dispatch (tests, tools).
    pub fn run_once(
        &self,
        pipeline: &KernelPipeline,
        buffers: &[BufferView<'_>],
        sizes: &[(&str, u32)],
    ) -> Result<(), RuntimeError> {
        let mut b = self.batch();
        b.dispatch(pipeline, buffers, sizes)?;
        let rec = b.finish()?;
        self.run(&rec)
    }

    /// Submits a recorded batch (one command buffer, one compute pass) without
    /// waiting.
    pub fn submit(&self, rec: &Recorded) -> Result<(), RuntimeError> {
        self.encode_and_submit(rec, None)
    }

    /// Submits a recorded batch and waits for it to finish.
    pub fn run(&self, rec: &Recorded) -> Result<(), RuntimeError> {
        self.submit(rec)?;
        self.wait()
    }

    /// Submits a recorded batch with GPU timestamps around its compute pass,
    /// waits, and returns the device time of the pass (`None` without
    /// `TIMESTAMP_QUERY`, in which case it is the same as [`Gpu::run`]).
    pub fn run_timed(&self, rec: &Recorded) -> Result<Option<Duration>, RuntimeError> {
        if !self.has_timestamps() {
            self.run(rec)?;
            return Ok(None);
        }
        let (set, resolve, staging) = self.scoped("creating timestamp queries", || {
            let set = self.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("seam timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: 2,
            });
            let resolve = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("seam timestamps resolve"),
                size: 16,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let staging = crate::buffers::GpuBuffer {
                buffer: self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("seam timestamps"),
                    size: 16,
                    usage: wgpu::BufferUsages::STORAGE
                        | wgpu::BufferUsages::COPY_DST
                        | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                }),
                size: 16,
                label: "seam timestamps".into(),
            };
            (set, resolve, staging)
        })?;
        self.encode_and_submit(rec, Some((&set, &resolve, &staging.buffer)))?;
        let ticks: Vec<u64> = self.read(&staging)?;
        let period = f64::from(self.queue.get_timestamp_period());
        let dt = ticks
            .get(1)
            .zip(ticks.first())
            .map(|(e, b)| e.saturating_sub(*b) as f64 * period)
            .unwrap_or(0.0);
        Ok(Some(Duration::from_nanos(dt as u64)))
    }

    fn encode_and_submit(
        &self,
        rec: &Recorded,
        timing: Option<(&wgpu::QuerySet, &wgpu::Buffer, &wgpu::Buffer)>,
    ) -> Result<(), RuntimeError> {
        self.scoped("submitting dispatches", || {
            let mut enc = self
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("seam dispatches"),
                });
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("seam"),
                    timestamp_writes: timing.map(|(set, _, _)| wgpu::ComputePassTimestampWrites {
                        query_set: set,
                        beginning_of_pass_write_index: Some(0),
                        end_of_pass_write_index: Some(1),
                    }),
                });
                for item in &rec.items {
                    if item.grid.contains(&0) {
                        continue;
                    }
                    pass.set_pipeline(&item.pipeline.pipeline);
                    pass.set_bind_group(0, &item.bind_group, &[]);
                    pass.dispatch_workgroups(item.grid[0], item.grid[1], item.grid[2]);
                }
            }
            if let Some((set, resolve, staging)) = timing {
                enc.resolve_query_set(set, 0..2, resolve, 0);
                enc.copy_buffer_to_buffer(resolve, 0, staging, 0, 16);
            }
            self.queue.submit([enc.finish()]);
        })
    }
}

impl Batch<'_> {
    /// Adds a dispatch of `pipeline` over `buffers` (one per storage binding, in
    /// binding order) with the given sizes (every dynamic size of the kernel).
    pub fn dispatch(
        &mut self,
        pipeline: &KernelPipeline,
        buffers: &[BufferView<'_>],
        sizes: &[(&str, u32)],
    ) -> Result<&mut Self, RuntimeError> {
        let kernel = &pipeline.kernel;
        let launch = kernel.launch(sizes, self.gpu.limits.max_compute_workgroups_per_dimension)?;
        check_buffers(self.gpu, kernel, buffers)?;
        self.pending.push(Pending {
            pipeline: pipeline.clone(),
            buffers: buffers
                .iter()
                .map(|v| (v.buffer.buffer.clone(), v.offset, v.size))
                .collect(),
            launch,
        });
        Ok(self)
    }

    /// Dispatches recorded so far.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether no dispatch was recorded.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Uploads the parameters and creates the bind groups.
    pub fn finish(self) -> Result<Recorded, RuntimeError> {
        let gpu = self.gpu;
        let align = u64::from(gpu.limits.min_uniform_buffer_offset_alignment.max(16));
        let mut bytes: Vec<u8> = Vec::new();
        let mut offsets = Vec::with_capacity(self.pending.len());
        for p in &self.pending {
            if p.launch.uniform.is_empty() {
                offsets.push(None);
            } else {
                let off = (bytes.len() as u64).div_ceil(align) * align;
                bytes.resize(off as usize, 0);
                bytes.extend_from_slice(&p.launch.uniform);
                offsets.push(Some(off));
            }
        }
        let uniform = if bytes.is_empty() {
            None
        } else {
            let buf = gpu.scoped("creating the parameter buffer", || {
                gpu.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("seam params"),
                    size: (bytes.len() as u64).div_ceil(16) * 16,
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            })?;
            gpu.scoped("writing the parameter buffer", || {
                gpu.queue.write_buffer(&buf, 0, &bytes)
            })?;
            Some(buf)
        };
        let mut items = Vec::with_capacity(self.pending.len());
        for (p, off) in self.pending.into_iter().zip(offsets) {
            let kernel = &p.pipeline.kernel;
            let mut entries = Vec::with_capacity(kernel.bindings.len());
            for (desc, (buf, offset, size)) in kernel.storage_bindings().zip(&p.buffers) {
                entries.push(wgpu::BindGroupEntry {
                    binding: desc.binding,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: buf,
                        offset: *offset,
                        size: size.and_then(std::num::NonZeroU64::new),
                    }),
                });
            }
            if let (Some(binding), Some(off), Some(ubuf)) =
                (kernel.params_binding(), off, uniform.as_ref())
            {
                entries.push(wgpu::BindGroupEntry {
                    binding,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: ubuf,
                        offset: off,
                        size: std::num::NonZeroU64::new(p.launch.uniform.len() as u64),
                    }),
                });
            }
            let bind_group = gpu.scoped(&format!("binding `{}`", kernel.name), || {
                gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some(&kernel.name),
                    layout: &p.pipeline.layout,
                    entries: &entries,
                })
            })?;
            items.push(Item {
                grid: p.launch.grid,
                pipeline: p.pipeline,
                bind_group,
                uniform_offset: off,
            });
        }
        Ok(Recorded { items, uniform })
    }
}

impl Recorded {
    /// Number of dispatches.
    pub fn dispatches(&self) -> usize {
        self.items.len()
    }

    /// Changes the sizes of dispatch `index` for later submissions (rewrites its
    /// parameters and grid; the buffers stay bound).
    pub fn update(
        &mut self,
        gpu: &Gpu,
        index: usize,
        sizes: &[(&str, u32)],
    ) -> Result<(), RuntimeError> {
        let Some(item) = self.items.get_mut(index) else {
            return Err(RuntimeError::Binding {
                kernel: "recorded batch".into(),
                message: format!("no dispatch {index}"),
            });
        };
        let launch = item
            .pipeline
            .kernel
            .launch(sizes, gpu.limits.max_compute_workgroups_per_dimension)?;
        if let (Some(off), Some(buf)) = (item.uniform_offset, self.uniform.as_ref()) {
            gpu.scoped("updating parameters", || {
                gpu.queue.write_buffer(buf, off, &launch.uniform)
            })?;
        }
        item.grid = launch.grid;
        Ok(())
    }
}

fn check_buffers(
    gpu: &Gpu,
    kernel: &Kernel,
    buffers: &[BufferView<'_>],
) -> Result<(), RuntimeError> {
    let err = |message: String| RuntimeError::Binding {
        kernel: kernel.name.clone(),
        message,
    };
    let expected = kernel.storage_bindings().count();
    if buffers.len() != expected {
        let names: Vec<&str> = kernel.storage_bindings().map(|b| b.name.as_str()).collect();
        return Err(err(format!(
            "expects {expected} buffers ({}), got {}",
            names.join(", "),
            buffers.len()
        )));
    }
    let align = u64::from(gpu.limits.min_storage_buffer_offset_alignment.max(4));
    for (desc, v) in kernel.storage_bindings().zip(buffers) {
        if v.offset % align != 0 {
            return Err(err(format!(
                "binding `{}`: offset {} is not a multiple of {align}",
                desc.name, v.offset
            )));
        }
        let len = v.len();
        if len == 0 || len % 4 != 0 || v.offset + len > v.buffer.size.div_ceil(16).max(1) * 16 {
            return Err(err(format!(
                "binding `{}`: {len} bytes at offset {} do not fit buffer `{}` of {} bytes",
                desc.name,
                v.offset,
                v.buffer.label(),
                v.buffer.size()
            )));
        }
        if len > gpu.limits.max_storage_buffer_binding_size {
            return Err(err(format!(
                "binding `{}`: {len} bytes exceed the binding limit of {} bytes (split the weight)",
                desc.name, gpu.limits.max_storage_buffer_binding_size
            )));
        }
    }
    Ok(())
}
