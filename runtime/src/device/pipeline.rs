//! Compute pipelines built once from generated kernels.

use std::sync::Arc;

use seam_core::{Access, Kernel};

use super::gpu::Gpu;
use super::workgroup_memory::check_workgroup_memory;
use crate::error::Error;

/// A kernel compiled for this device: its pipeline and bind-group layout.
#[derive(Clone, Debug)]
pub struct KernelPipeline {
    pub(crate) pipeline: wgpu::ComputePipeline,
    pub(crate) layout: wgpu::BindGroupLayout,
    pub(crate) kernel: Arc<Kernel>,
}

impl KernelPipeline {
    /// The kernel this pipeline runs.
    pub fn kernel(&self) -> &Kernel {
        &self.kernel
    }
}

impl Gpu {
    /// Compiles `kernel` with wgpu's runtime checks (bounds checks and loop
    /// bounding) on. Create pipelines once, at load time.
    pub fn pipeline(&self, kernel: &Kernel) -> Result<KernelPipeline, Error> {
        self.build_pipeline(kernel, None)
    }

    /// Compiles `kernel` without wgpu's injected bounds checks and loop bounding
    /// (5–10% faster on lavapipe), when the generator proved its indexing in range
    /// ([`Kernel::indexing_proven`]); otherwise the same as [`Gpu::pipeline`].
    /// The runtime never uses it; it is public for the kernel benchmarks,
    /// which measure what the checks cost.
    ///
    /// # Safety
    ///
    /// Every dispatch of the returned pipeline must bind buffers at least as large
    /// as the kernel's documented shapes at the launched sizes; an undersized
    /// buffer is then an out-of-bounds access (undefined behaviour on back ends
    /// without robust buffer access).
    pub unsafe fn pipeline_trusted(&self, kernel: &Kernel) -> Result<KernelPipeline, Error> {
        if kernel.indexing_proven {
            self.build_pipeline(kernel, Some(wgpu::ShaderRuntimeChecks::unchecked()))
        } else {
            self.build_pipeline(kernel, None)
        }
    }

    fn build_pipeline(
        &self,
        kernel: &Kernel,
        trusted: Option<wgpu::ShaderRuntimeChecks>,
    ) -> Result<KernelPipeline, Error> {
        let context = format!("creating pipeline `{}`", kernel.name);
        let storage = kernel.storage_bindings().count() as u32;
        if storage > self.limits.max_storage_buffers_per_shader_stage {
            return Err(Error::Binding {
                kernel: kernel.name.clone(),
                message: format!(
                    "{storage} storage buffers exceed the device limit of {}",
                    self.limits.max_storage_buffers_per_shader_stage
                ),
            });
        }
        check_workgroup_memory(kernel, self.limits.max_compute_workgroup_storage_size)?;
        let entries: Vec<wgpu::BindGroupLayoutEntry> = kernel
            .bindings
            .iter()
            .map(|b| wgpu::BindGroupLayoutEntry {
                binding: b.binding,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: match b.access {
                        Access::ReadOnly => wgpu::BufferBindingType::Storage { read_only: true },
                        Access::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
                        Access::Uniform => wgpu::BufferBindingType::Uniform,
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        let (pipeline, layout) = self.scoped(&context, || {
            let desc = wgpu::ShaderModuleDescriptor {
                label: Some(&kernel.name),
                source: wgpu::ShaderSource::Wgsl(kernel.wgsl.as_str().into()),
            };
            let module = match trusted {
                // SAFETY: the caller of `pipeline_trusted` guarantees in-range
                // bindings, and the generator proved the indexing for them.
                Some(checks) => unsafe { self.device.create_shader_module_trusted(desc, checks) },
                None => self.device.create_shader_module(desc),
            };
            let layout = self
                .device
                .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: Some(&kernel.name),
                    entries: &entries,
                });
            let pl = self
                .device
                .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                    label: Some(&kernel.name),
                    bind_group_layouts: &[Some(&layout)],
                    immediate_size: 0,
                });
            let pipeline = self
                .device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(&kernel.name),
                    layout: Some(&pl),
                    module: &module,
                    entry_point: Some(&kernel.entry_point),
                    compilation_options: wgpu::PipelineCompilationOptions::default(),
                    cache: None,
                });
            (pipeline, layout)
        })?;
        Ok(KernelPipeline {
            pipeline,
            layout,
            kernel: Arc::new(kernel.clone()),
        })
    }
}

/// Pipelines by kernel source: a model's layers share a handful of kernels,
/// and a CPU driver such as lavapipe compiles each pipeline with LLVM (tens of
/// milliseconds to seconds), so build each distinct kernel once.
#[derive(Debug, Default)]
pub struct PipelineCache {
    map: std::collections::HashMap<(String, String), KernelPipeline>,
}

impl PipelineCache {
    /// An empty cache.
    pub fn new() -> Self {
        PipelineCache::default()
    }

    /// The pipeline for `kernel` (runtime checks on), built on first request.
    pub fn get(&mut self, gpu: &Gpu, kernel: &Kernel) -> Result<KernelPipeline, Error> {
        let key = (kernel.wgsl.clone(), kernel.entry_point.clone());
        if let Some(p) = self.map.get(&key) {
            return Ok(p.clone());
        }
        let p = gpu.pipeline(kernel)?;
        self.map.insert(key, p.clone());
        Ok(p)
    }

    /// Distinct pipelines built so far.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no pipeline was built yet.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
