//! Recording many dispatches into one command buffer and one compute pass.
//!
//! A [`Batch`] collects dispatches (pipeline, buffers, sizes); [`Batch::finish`]
//! packs every dispatch's `Params` into one uniform buffer (one slice per
//! dispatch, aligned as the device requires) and creates the bind groups once,
//! giving a [`Recorded`] that can be submitted any number of times — each
//! submission is one command buffer holding one compute pass — and whose sizes
//! can be changed between submissions ([`Recorded::update`]).

use seam_core::{Kernel, Launch};

use super::buffers::BufferView;
use super::gpu::Gpu;
use super::grid_budget::bounded_launch;
use super::pipeline::KernelPipeline;
use crate::error::Error;

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

/// One recorded dispatch: its pipeline, bind group, grid and parameter slice.
pub(super) struct Item {
    pub(super) pipeline: KernelPipeline,
    pub(super) bind_group: wgpu::BindGroup,
    pub(super) grid: [u32; 3],
    uniform_offset: Option<u64>,
}

/// A finished batch: bind groups and parameters on the device, ready to submit.
pub struct Recorded {
    pub(super) items: Vec<Item>,
    uniform: Option<wgpu::Buffer>,
    /// The parameters as last written to `uniform`.
    params: Vec<u8>,
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
    ) -> Result<(), Error> {
        let mut b = self.batch();
        b.dispatch(pipeline, buffers, sizes)?;
        let rec = b.finish()?;
        self.run(&rec)
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
    ) -> Result<&mut Self, Error> {
        let kernel = &pipeline.kernel;
        let launch = bounded_launch(self.gpu, kernel, sizes)?;
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
    pub fn finish(self) -> Result<Recorded, Error> {
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
        Ok(Recorded {
            items,
            uniform,
            params: bytes,
        })
    }
}

impl Recorded {
    /// Number of dispatches.
    pub fn dispatches(&self) -> usize {
        self.items.len()
    }

    /// Changes the sizes of dispatch `index` for later submissions (rewrites its
    /// parameters and grid; the buffers stay bound).
    pub fn update(&mut self, gpu: &Gpu, index: usize, sizes: &[(&str, u32)]) -> Result<(), Error> {
        self.update_many(gpu, [(index, sizes)])
    }

    /// Like [`Recorded::update`] for several dispatches, with one upload of
    /// the parameters that changed (a run after its dims changed rewrites
    /// every dispatch's; one write instead of one per dispatch).
    pub fn update_many<'s>(
        &mut self,
        gpu: &Gpu,
        updates: impl IntoIterator<Item = (usize, &'s [(&'s str, u32)])>,
    ) -> Result<(), Error> {
        let mut changed: Option<(usize, usize)> = None;
        for (index, sizes) in updates {
            let Some(item) = self.items.get_mut(index) else {
                return Err(Error::Binding {
                    kernel: "recorded batch".into(),
                    message: format!("no dispatch {index}"),
                });
            };
            let launch = bounded_launch(gpu, &item.pipeline.kernel, sizes)?;
            item.grid = launch.grid;
            let Some(off) = item.uniform_offset.map(|o| o as usize) else {
                continue;
            };
            let end = off + launch.uniform.len();
            let slot = self
                .params
                .get_mut(off..end)
                .ok_or_else(|| Error::Binding {
                    kernel: item.pipeline.kernel.name.clone(),
                    message: "its parameters changed size".into(),
                })?;
            if slot != launch.uniform.as_slice() {
                slot.copy_from_slice(&launch.uniform);
                changed = Some(changed.map_or((off, end), |(a, b)| (a.min(off), b.max(end))));
            }
        }
        if let (Some((start, end)), Some(buf)) = (changed, self.uniform.as_ref()) {
            let bytes = &self.params[start..end];
            gpu.scoped("updating parameters", || {
                gpu.queue.write_buffer(buf, start as u64, bytes)
            })?;
        }
        Ok(())
    }
}

fn check_buffers(gpu: &Gpu, kernel: &Kernel, buffers: &[BufferView<'_>]) -> Result<(), Error> {
    let err = |message: String| Error::Binding {
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
